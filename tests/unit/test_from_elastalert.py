"""ElastAlert2 rules → our rules (watcher.definitions.from_elastalert and `watcher convert --from elastalert`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli.definitions import convert
from watcher.definitions.from_elastalert import ConversionError, convert_file, convert_text, merge_connectors
from watcher.definitions.load import load_paths
from watcher.templates.jinja import render_jinja

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "elastalert"
RULES = sorted(FIXTURES.glob("*.yaml"))
# Every secret written in the fixtures: none may appear in any output.
SECRETS = ("3f1c9a2e-5b7d-4e21-9c0a-fake0pskey11", "fAkEtOkEn0123456789abcd", "s3cr3t-hook-token",
           "fake-bearer-token-42", "deployTokenFake987654", "9b8c7d6e-0000-4fff-8aaa-fake0pskey22",
           "5e5e5e5e-1111-4222-8333-fake0pskey33", "cpuTokenFake555")


def convert_yaml(text: str, allow_no_actions: bool = True):
    """Convert an inline rule; most of these name no alerter, so no action is allowed by default."""
    return convert_text(textwrap.dedent(text), "rule.yaml", allow_no_actions=allow_no_actions)


def variables(**overrides) -> dict:
    """Template variables as rule alerts have them (watcher.engine.rules.RuleAlerts.variables)."""
    base = {"rule": {"name": "r", "index": ["logs"], "window": "5m"}, "group": None, "count": 0, "value": None,
            "hits": [], "details": {}, "top_counts": {}, "matches": None, "summary_table": None}
    return {**base, **overrides}


def test_there_are_ten_distinct_types_among_the_fixtures():
    types = {convert_file(path).rule["type"] for path in RULES}
    assert len(RULES) == 12 and len(types) == 12


@pytest.mark.parametrize("path", RULES, ids=[p.stem for p in RULES])
def test_each_fixture_converts_and_validates_with_its_connectors(path, tmp_path, monkeypatch):
    result = CliRunner().invoke(convert, [str(path), "--from", "elastalert", "--connectors-out",
                                          str(tmp_path / "connectors.yaml")])
    assert result.exit_code == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.output and secret not in result.stderr
        assert secret not in (tmp_path / "connectors.yaml").read_text()
    conversion = convert_file(path)
    for name in _env_names(conversion.connectors):
        monkeypatch.setenv(name, "http://127.0.0.1:9/hook")
    (tmp_path / "rule.yaml").write_text(result.stdout)
    loaded = load_paths([tmp_path])
    assert [str(p) for p in loaded.problems] == []
    assert list(loaded.watches) == [conversion.rule["name"]]


def _env_names(connectors: dict) -> list[str]:
    import re

    return re.findall(r"\$\{([A-Z0-9_]+)\}", repr(connectors))


def test_frequency_rule_maps_every_option():
    conversion = convert_file(FIXTURES / "checkout-5xx-burst.yaml")
    assert conversion.rule == {
        "name": "checkout 5xx burst", "type": "frequency", "index": "logs-web-*", "window": "10m",
        "query": {"range": {"http.response.status_code": {"gte": 500}}}, "group_by": "service.name",
        "params": {"num_events": 20, "reset_after_match": True}, "realert": "10m", "exponential_realert": "2h",
        "top_count_keys": ["url.path"], "top_count_number": 3,
        "title": "{{ group }}: {{ count }} server errors in 10 minutes",
        "message": conversion.rule["message"],
        "actions": [{"connector": "checkout-5xx-burst-slack",
                     "message": {"to": ["#payments-oncall"], "from": "elastalert"}}]}
    assert conversion.connectors == {"checkout-5xx-burst-slack": {
        "type": "slack", "url": "${CHECKOUT_5XX_BURST_SLACK_WEBHOOK_URL}"}}
    assert conversion.not_carried == ["slack_msg_color"]
    assert conversion.not_needed == ["use_count_query", "doc_type"]
    # alert_text_type default: alert_text, then the top counts, then the first document as JSON
    text = render_jinja(conversion.rule["message"], variables(
        group="checkout", top_counts={"url.path": [{"key": "/pay", "count": 15}, {"key": "/cart", "count": 6}]},
        hits=[{"service": {"name": "checkout"}}]))
    assert text == ('Service checkout answered 5xx at least 20 times. Most hit paths below.\n\n'
                    'url.path:\n/pay: 15\n/cart: 6\n\n{\n  "service": {\n    "name": "checkout"\n  }\n}')


def test_any_rule_filters_legacy_wrapper_metadata_include_and_defaults():
    conversion = convert_file(FIXTURES / "ssh-root-login.yaml")
    rule = conversion.rule
    assert rule["query"] == {"bool": {"filter": [{"term": {"event.action": "ssh_login"}},
                                                 {"term": {"event.outcome": "success"}},
                                                 {"query_string": {"query": "user.name:root"}}]}}
    assert (rule["schedule"], rule["window"], rule["delay"], rule["realert"]) == ("1m", "5m", "30s", "30m")
    assert rule["include"] == ["source.ip", "host.name", "@timestamp"]  # ElastAlert2 adds the timestamp
    assert rule["metadata"] == {"owner": "secops", "priority": 1}
    assert rule["actions"] == [{"connector": "ssh-root-login-debug"},
                               {"connector": "ssh-root-login-opsgenie", "priority": "P1",
                                "tags": ["ssh", "root-login"]}]
    assert conversion.connectors["ssh-root-login-opsgenie"] == {
        "type": "opsgenie", "api_key": "${SSH_ROOT_LOGIN_OPSGENIE_KEY}", "mode": "alert_v2"}
    assert conversion.connectors["ssh-root-login-debug"]["type"] == "logging"
    assert conversion.not_carried == []


def test_subject_args_read_nested_and_dotted_fields_and_missing_values():
    title = convert_file(FIXTURES / "ssh-root-login.yaml").rule["title"]
    nested = [{"host": {"name": "db-1"}, "source": {"ip": "10.0.0.7"}}]
    dotted = [{"host.name": "db-2", "source.ip": "10.0.0.8"}]
    assert render_jinja(title, variables(hits=nested)).strip() == "Root SSH login on db-1 from 10.0.0.7"
    assert render_jinja(title, variables(hits=dotted)).strip() == "Root SSH login on db-2 from 10.0.0.8"
    assert render_jinja(title, variables(hits=[{"host": {"name": "db-3"}}])).strip() == \
        "Root SSH login on db-3 from <MISSING VALUE>"
    assert render_jinja(title, variables(hits=[])).strip() == \
        "Root SSH login on <MISSING VALUE> from <MISSING VALUE>"


def test_field_args_reach_dotted_keys_inside_objects():
    # Falco writes {"output_fields": {"container.image.repository": …}}: ElastAlert2 finds it, so must we.
    conversion = convert_yaml("""\
        name: falco
        type: any
        index: falco-*
        filter: [{term: {priority: Critical}}]
        alert_subject: "{0} in {1}"
        alert_subject_args: [output_fields.container.image.repository, output_fields.k8s.ns.name]
        alert: [debug]
    """)
    title = conversion.rule["title"]
    hits = [{"output_fields": {"container.image.repository": "docker.io/library/nginx", "k8s.ns.name": "prod"}}]
    assert render_jinja(title, variables(hits=hits)).strip() == "docker.io/library/nginx in prod"
    mixed = [{"output_fields": {"container": {"image.repository": "quay.io/app"}}, "output_fields.k8s.ns.name": "dev"}]
    assert render_jinja(title, variables(hits=mixed)).strip() == "quay.io/app in dev"


def test_format_details_kw_auto_numbering_braces_and_rule_keys():
    conversion = convert_yaml("""\
        name: fmt
        type: any
        index: logs
        owner: team-a
        alert_missing_value: n/a
        alert_subject: "{} and {} for {{literal}}"
        alert_subject_args: [user.name, owner]
        alert_text: "at {time:%H} by {who!r}"
        alert_text_kw: {"@timestamp": time, user.name: who}
        alert_text_type: alert_text_only
        """)
    rule = conversion.rule
    assert render_jinja(rule["title"], variables(hits=[{"user": {"name": "eve"}}])).strip() == \
        "eve and team-a for {literal}"  # owner is not in the document: the rule's own value (ElastAlert2)
    message = render_jinja(rule["message"], variables(hits=[{"@timestamp": "2026-01-01T10:00:00Z"}]))
    assert message.strip() == "at 2026-01-01T10:00:00Z by n/a"
    assert any("{time:%H}" in note for note in conversion.notes)
    assert any("{who!r}" in note for note in conversion.notes)


def test_type_facts_map_to_details():
    conversion = convert_file(FIXTURES / "service-version-change.yaml")
    assert conversion.rule["message"] == "{{ group }}: {{ details.old_value }} -> {{ details.new_value }}"
    assert conversion.rule["params"] == {"compare_key": "service.version", "ignore_null": True, "timeframe": "1d"}
    assert (conversion.rule["window"], conversion.rule["schedule"], conversion.rule["realert"]) == ("10m", "5m", "0s")
    ratio = convert_file(FIXTURES / "error-ratio.yaml").rule
    assert ratio["message"] == "{{ details.percentage }}% of {{ group }}'s lines were errors."


def test_options_not_carried_are_listed_by_name():
    heartbeat = convert_file(FIXTURES / "heartbeat-missing.yaml")
    assert heartbeat.not_carried == []                   # the email alerter converts (see test_email_alerter)
    assert heartbeat.not_needed == ["use_terms_query"]
    new_term = convert_file(FIXTURES / "new-process-on-db-hosts.yaml")
    assert new_term.not_carried == ["window_step_size", "jira", "jira_server", "jira_project", "jira_issuetype"]
    spike = convert_file(FIXTURES / "login-failure-spike.yaml")
    assert spike.not_carried == ["http_post_static_payload"]
    assert spike.connectors == {"login-failure-spike-webhook": {
        "type": "webhook", "url": "${LOGIN_FAILURE_SPIKE_HTTP_POST_URL}",
        "headers": {"Authorization": "${LOGIN_FAILURE_SPIKE_HTTP_POST_HEADERS_AUTHORIZATION}", "X-Team": "identity"},
        "timeout": "5s", "read_timeout": "5s"}}


def test_window_defaults_realert_default_and_strftime_index():
    conversion = convert_yaml("""\
        name: d
        type: blacklist
        index: logstash-%Y.%m.%d
        use_strftime_index: true
        compare_key: user.name
        blacklist: [root]
        run_every: {minutes: 2}
        """)
    rule = conversion.rule
    assert (rule["index"], rule["window"], rule["schedule"], rule["realert"]) == ("logstash-*", "2m", "2m", "1m")
    assert conversion.not_carried == ["use_strftime_index"]
    assert any(note.startswith("window: 2m (run_every)") for note in conversion.notes)
    assert any(note.startswith("realert: 1m written out") for note in conversion.notes)
    aggregated = convert_yaml("""\
        name: a
        type: any
        index: logs
        aggregation: {minutes: 10}
        summary_table_fields: [user.name, {path: source.ip, header: IP}]
        """)
    assert "realert" not in aggregated.rule  # ElastAlert2: realert 0 with aggregation
    assert aggregated.rule["aggregation"] == {"period": "10m", "summary_table_fields": ["user.name", "source.ip"]}
    assert aggregated.rule["window"] == "1m"


def test_blacklist_file_item_made_absolute():
    rule = convert_file(FIXTURES / "blocked-countries.yaml").rule
    assert rule["params"]["blacklist"] == [f"!file {FIXTURES / 'blocked-countries.txt'}", "KP"]
    assert rule["aggregation"]["key"] == "source.geo.country_iso_code"


def test_aggregated_message_shows_the_summary():
    message = convert_file(FIXTURES / "blocked-countries.yaml").rule["message"]
    text = render_jinja(message, variables(matches=[{}, {}], count=7, summary_table="| a |",
                                           details={"aggregation_start": "T0"}))
    assert text.strip() == "2 alerts (7 documents) collected since T0.\n\n| a |"


def test_compound_query_key_and_jinja_text_type_are_listed():
    conversion = convert_yaml("""\
        name: c
        type: frequency
        index: logs
        num_events: 3
        timeframe: {minutes: 5}
        query_key: [user.name, source.ip]
        alert_text_type: alert_text_jinja
        alert_text: "{{ user.name }}"
        """)
    assert "group_by" not in conversion.rule and "message" not in conversion.rule
    assert conversion.not_carried == ["query_key", "alert_text_type", "alert_text"]


@pytest.mark.parametrize("text, line, column, message", [
    ("name: x\ntype: my_modules.Custom\nindex: a\n", 2, 7, "type: a string 'my_modules.Custom' is not a rule type"),
    ("name: x\ntype: frequency\nindex: a\nnum_events: 3\n", 1, 1, "missing required option 'timeframe'"),
    ("name: x\ntype: any\nindex: a\nfilter:\n  - term: {a: 1}\n  - eql: 'any where true'\n", 6, 5,
     "filter[1]: EQL filters have no equivalent"),
    ("name: x\ntype: any\nindex: a\nrealert: 5\n", 4, 10, "realert: expected a duration such as {minutes: 5}"),
    ("name: x\ntype: spike\nindex: a\ntimeframe: {minutes: 5}\nspike_height: 2\nspike_type: sideways\n", 6, 13,
     "spike_type: expected "),
    ("name: x\ntype: any\n  index: [\n", 3, 8, "mapping values are not allowed here"),
    ("- just\n- a list\n", 1, 1, "expected an ElastAlert2 rule"),
])
def test_rules_that_cannot_convert_say_where(text, line, column, message):
    with pytest.raises(ConversionError) as caught:
        convert_text(text, "r.yaml")
    error = caught.value
    assert (error.file, error.line, error.column) == ("r.yaml", line, column), str(error)
    assert message in error.message


def test_cli_exit_status_and_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntype: my_modules.Custom\nindex: a\n")
    result = CliRunner().invoke(convert, [str(bad), "--from", "elastalert"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"{bad}:2:7: type: ")
    neither = CliRunner().invoke(convert, [str(bad)])
    assert neither.exit_code == 2 and "give either --to (watch or rule) or --from elastalert" in neither.stderr
    both = CliRunner().invoke(convert, [str(bad), "--to", "rule", "--from", "elastalert"])
    assert both.exit_code == 2 and "not both" in both.stderr
    ok = CliRunner().invoke(convert, [str(FIXTURES / "heartbeat-missing.yaml"), "--from", "elastalert"])
    assert ok.exit_code == 0
    assert ok.stderr.splitlines()[0] == ("note: not needed here (the cluster counts and aggregates on every run): "
                                         "use_terms_query")
    assert "--connectors-out FILE" in ok.stderr
    assert ok.stdout.startswith("name: heartbeat missing\ntype: flatline\n")


def test_merge_connectors_keeps_the_file_and_replaces_same_names(tmp_path):
    existing = "# ours\nconnectors:\n  log:\n    type: logging   # keep me\n  x-slack:\n    type: logging\n"
    text, replaced = merge_connectors(existing, {"x-slack": {"type": "slack", "url": "${X}"},
                                                 "x-debug": {"type": "logging"}})
    assert replaced == ["x-slack"]
    assert text.startswith("# ours\nconnectors:\n  log:\n    type: logging   # keep me\n")
    assert "x-slack:\n    type: slack\n    url: ${X}\n" in text and "x-debug:\n    type: logging\n" in text
    with pytest.raises(ConversionError):
        merge_connectors("[1, 2]", {"a": {"type": "logging"}})
