"""Loading definition files: the valid fixtures load, and each malformed fixture gives its exact problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.definitions.load import discover, load_definition, load_paths

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "definitions"
VALID = FIXTURES / "valid"
MALFORMED = FIXTURES / "malformed"
CONNECTORS = VALID / "connectors.yaml"

SECRETS = {
    "TEST_OPSGENIE_KEY": "opsgenie-key-123",
    "TEST_HOOK_TOKEN": "hook-token-123",
    "TEST_HOOK_PASSWORD": "hook-password-123",
    "TEST_SLACK_URL": "https://hooks.slack.com/services/T0/B0/secret123",
    "TEST_CA_FILE": str(VALID / "ca.pem"),
}


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WATCHER_TEST_UNDEFINED_KEY", raising=False)


# fixture file → the exact problems ({f} is the fixture's path), in the order they are reported
MALFORMED_CASES = {
    "broken-yaml.yaml": ["{f}:4:10: while parsing a flow sequence expected ',' or ']', but got ':'"],
    "not-a-mapping.yaml": ["{f}:1:1: expected a rule (a mapping with name, index, window, type or condition, "
                           "actions), found a list of 2 items"],
    "empty.yaml": ["{f}:1:1: expected a rule (a mapping with name, index, window, type or condition, actions), "
                   "found nothing (null)"],
    "duplicate-key.yaml": ['{f}:4:1: duplicate key: found duplicate key "name"'],  # values left out: secrets
    "unknown-key.yaml": [
        "{f}:1:1: missing required field 'window'",
        "{f}:3:1: windw: unknown key 'windw' (did you mean 'window'?); expected one of: actions, aggregation, "
        "allow_partial_results, calendar_window, condition, delay, description, enabled, exponential_realert, filter, group_by, hits, include, index, "
        "max_groups, message, metadata, name, params, query, realert, recovered_message, recovered_title, "
        "schedule, tags, throttle, time_field, title, "
        "top_count_keys, top_count_number, type, window"],
    "missing-index.yaml": ["{f}:1:1: missing required field 'index'"],
    "missing-name.yaml": ["{f}:1:1: missing required field 'name'"],
    "wrong-type-enabled.yaml": ["{f}:2:10: enabled: expected true or false, found a string 'yes'"],
    "wrong-type-tags.yaml": ["{f}:2:7: tags: expected a list, found a string 'ssh'"],
    "bad-duration.yaml": ['{f}:3:9: window: expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, '
                          'h, d, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, seconds), '
                          'found "5x" (unknown unit "x")'],
    "negative-delay.yaml": ['{f}:4:8: delay: expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, '
                            'h, d, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, seconds), '
                            'found "-30s" (negative durations are not allowed)'],
    "window-without-unit.yaml": ['{f}:3:9: window: expected a duration such as 30s, 5m, 1h (a whole number and a unit '
                                 's, m, h, d, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, '
                                 'seconds), found 300 (the unit is missing)'],
    "bad-cron.yaml": ["{f}:2:18: schedule.cron: invalid cron expression '61 * * * *': minute field: "
                      "expected 0-59, found '61'"],
    "bad-timezone.yaml": ["{f}:4:13: schedule.timezone: expected an IANA time zone such as Europe/Paris or UTC, "
                          "found a string 'Mars/Olympus_Mons'"],
    "bad-interval.yaml": ['{f}:2:11: schedule: expected an interval such as 30s, 5m, 1h (a whole number and a unit '
                          's, m, h, d, w; at least 1s), found "500ms" (unit "ms" is not supported for intervals)'],
    "empty-query.yaml": ["{f}:4:8: query: expected a non-empty Lucene query string or a query DSL object, "
                         "found an empty string"],
    "query-two-types.yaml": ["{f}:5:3: query: expected a query DSL object with exactly one query type such as "
                             "{{term: {{field: value}}}}, found a mapping with keys term, match"],
    "index-empty-list.yaml": ["{f}:2:8: index: expected an index name, pattern or comma-separated list (logs-*, a,b) "
                              "or a list of them, found a list of 0 items"],
    "two-conditions.yaml": ["{f}:5:3: condition: expected exactly one of count, metric, compare, array_compare, "
                            "found 2: count, metric"],
    "condition-unknown-op.yaml": ["{f}:5:11: condition.count.gtee: unknown key 'gtee' (did you mean 'gte'?); "
                                  "expected one of: eq, gt, gte, lt, lte, not_eq"],
    "condition-two-ops.yaml": ["{f}:5:10: condition.count: expected exactly one operator "
                               "(gt, gte, lt, lte, eq, not_eq), found 2: gt, lt"],
    "condition-threshold-string.yaml": ["{f}:5:16: condition.count.gte: expected a number, found a string 'ten'"],
    "metric-bad-agg.yaml": ["{f}:5:17: condition.metric.agg: expected one of 'avg', 'min', 'max', 'sum' or "
                            "'cardinality', found a string 'median'"],
    "compare-bad-op.yaml": ["{f}:6:30: condition.compare.ctx.payload.hits.total.greater: unknown comparison operator "
                            "'greater' (did you mean 'gte'?); expected one of: eq, gt, gte, lt, lte, not_eq"],
    "unknown-connector.yaml": ["{f}:5:16: actions[0].connector: unknown connector 'team-hok' (did you mean "
                               "'team-hook'?); connectors defined in {c}: archive, chat, key-hook, log, ops, "
                               "ops-watcher, parts-hook, team-hook"],
    "action-missing-connector.yaml": ["{f}:5:5: actions[0]: missing required field 'connector'"],
    "action-bad-override.yaml": [  # the logging connector's default text applies; the bad level does not
                                 "{f}:6:12: actions[0].level: expected one of error, warn, info, debug, trace, "
                                 "found a string 'loud'"],
    "jinja-syntax-message.yaml": ["{f}:6:3: message: template syntax error: unexpected '}}'"],
    "jinja-syntax-title.yaml": ["{f}:4:8: title: template syntax error: Unexpected end of template. Jinja was looking "
                                "for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs "
                                "to be closed is 'if'."],
    "jinja-syntax-override.yaml": ["{f}:7:16: actions[0].headers.X-Count: template syntax error: "
                                   "unexpected 'end of print statement'"],
    "max-groups-zero.yaml": ["{f}:5:13: max_groups: expected a number of at least 1, found an integer 0"],
    "hits-too-many.yaml": ["{f}:4:7: hits: expected a number of at most 10000, found an integer 20000"],
    "filter-unknown-key.yaml": ["{f}:5:3: filter.includes: unknown key 'includes' (did you mean 'include'?); "
                                "expected one of: exclude, include, query"],
    "filter-include-list.yaml": ["{f}:5:12: filter.include: expected a mapping of field name to a value or a list of "
                                 "values, such as {{user.name: [root, admin]}}, found a list of 2 items"],
    "group-by-list.yaml": ["{f}:4:11: group_by: expected a non-empty string, found a list of 2 items"],
    "metadata-not-mapping.yaml": ["{f}:4:11: metadata: expected a mapping, found a string 'runbook'"],
    "watch-broken-json.json": ["{f}:3:31: expected a member name in double quotes after ',', found ','"],
    "watch-unknown-condition.json": ["{f}:3:17: condition.compares: unknown condition type 'compares' (did you mean "
                                     "'compare'?); expected one of: always, array_compare, compare, never, script"],
    "watch-unknown-top-key.json": ["{f}:3:3: acions: unknown key 'acions' (did you mean 'actions'?); expected one of: "
                                   "actions, condition, input, metadata, status, throttle_period, "
                                   "throttle_period_in_millis, transform, trigger"],
    "watch-two-conditions.json": ["{f}:3:3: condition: expected exactly one condition type (one of: always, never, "
                                  "compare, array_compare, script), found 2: always, never"],
    "watch-bad-compare-op.json": ["{f}:3:56: condition.compare.ctx.payload.hits.total.greater_than: unknown comparison "
                                  "operator 'greater_than'; expected one of: eq, gt, gte, lt, lte, not_eq"],
    "watch-max-iterations-zero.json": ["{f}:6:25: actions.each.max_iterations: expected a whole number of at least 1, "
                                       "found an integer 0"],
    "watch-negative-throttle.json": ["{f}:3:32: throttle_period_in_millis: expected a whole number of milliseconds "
                                     "(0 or more), found an integer -5"],
    "watch-bad-interval.yaml": ['{f}:3:15: trigger.schedule.interval: expected an interval such as 30s, 5m, 1h (a whole '
                                'number and a unit s, m, h, d, w; at least 1s), found "1.5h" (the number must be a '
                                'whole number)'],
    "watch-bad-timezone.json": ["{f}:2:40: trigger.schedule.timezone: expected an IANA time zone such as Europe/Paris "
                                "or UTC, found a string 'Europe/Pariss'"],
    "watch-unknown-action-type.json": ["{f}:3:26: actions.notify.webhok: unknown action type 'webhok' (did you mean "
                                       "'webhook'?); expected one of: discord, email, index, jira, logging, "
                                       "ms_teams, opsgenie, pagerduty, slack, webhook"],
    "type-unknown.yaml": [
        "{f}:2:7: type: expected a rule type (threshold, any, blacklist, cardinality, change, flatline, frequency, "
        "metric_aggregation, new_term, percentage_match, spike, spike_aggregation, whitelist), found 'frequncy' "
        "(did you mean 'frequency'?)"],
    "type-params-unknown-key.yaml": [
        "{f}:5:1: params: missing required field 'num_events'",
        "{f}:6:3: params.num_event: unknown key 'num_event' (did you mean 'num_events'?); expected one of: num_events, reset_after_match"],
    "type-with-condition.yaml": [
        "{f}:5:1: condition: condition belongs to threshold rules; a rule of type any fires as its params say"],
    "threshold-with-params.yaml": [
        "{f}:4:1: params: params belong to rule types other than threshold (set type: frequency, spike, …) — "
        "a threshold rule uses condition"],
    "action-on-unknown-event.yaml": [
        "{f}:6:9: actions[0].on: expected a list of events among firing, recovered, found an item 'resolved' "
        "(did you mean 'recovered'?)"],
    "elastalert-rule.yaml": [
        "{f}:1:1: this looks like an ElastAlert2 rule (alert, query_key); convert it with `watcher convert {f} "
        "--from elastalert`",
        "{f}:6:1: query_key: unknown key 'query_key' (did you mean 'query'?); expected one of: actions, aggregation, "
        "allow_partial_results, calendar_window, condition, delay, description, enabled, exponential_realert, filter, group_by, hits, include, index, "
        "max_groups, message, metadata, name, params, query, realert, recovered_message, recovered_title, schedule, "
        "tags, throttle, time_field, title, top_count_keys, top_count_number, type, window",
        "{f}:7:1: alert: unknown key 'alert' (did you mean 'realert'?); expected one of: actions, aggregation, "
        "allow_partial_results, calendar_window, condition, delay, description, enabled, exponential_realert, filter, group_by, hits, include, index, "
        "max_groups, message, metadata, name, params, query, realert, recovered_message, recovered_title, schedule, "
        "tags, throttle, time_field, title, top_count_keys, top_count_number, type, window"],
    "exponential-realert-below-realert.yaml": [
        "{f}:5:22: exponential_realert: expected a cap at least realert (1h), found 5m"],
    "aggregation-bad-period.yaml": [
        "{f}:5:11: aggregation.period: expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, h, "
        "d, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, seconds), found \"soon\""],
}

CONNECTOR_CASES = {
    "connectors-undefined-env.yaml": ["{f}:4:14: connectors.ops.api_key: undefined environment variable "
                                      "WATCHER_TEST_UNDEFINED_KEY"],
    "connectors-unknown-type.yaml": ["{f}:3:11: connectors.pager.type: unknown connector type 'pagerduti' (did you "
                                     "mean 'pagerduty'?); expected one of: webhook, opsgenie, slack, email, logging, "
                                     "index, pagerduty, jira, ms_teams, discord"],
}


def test_every_malformed_fixture_has_a_case():
    files = {p.name for p in MALFORMED.iterdir() if p.is_file()}
    assert files == set(MALFORMED_CASES) | set(CONNECTOR_CASES)
    assert len(files) + 1 >= 30  # + the duplicate-names directory


@pytest.mark.parametrize("name", sorted(MALFORMED_CASES))
def test_malformed_file_reports_exact_problems(name):
    path = MALFORMED / name
    result = load_paths([path], connectors_path=CONNECTORS)
    expected = [line.format(f=path, c=CONNECTORS) for line in MALFORMED_CASES[name]]
    assert [str(p) for p in result.problems] == expected
    assert result.files_bad == [str(path)]
    assert result.files_ok == [str(CONNECTORS)]
    assert result.watches == {}


@pytest.mark.parametrize("name", sorted(CONNECTOR_CASES))
def test_malformed_connectors_file_reports_exact_problems(name):
    path = MALFORMED / name
    result = load_paths([], connectors_path=path)
    assert [str(p) for p in result.problems] == [line.format(f=path) for line in CONNECTOR_CASES[name]]
    assert result.files_bad == [str(path)] and result.connectors == {}


def test_duplicate_rule_name_is_reported_at_the_second_file_naming_the_first():
    directory = MALFORMED / "duplicate-names"
    result = load_paths([directory], connectors_path=CONNECTORS)
    assert [str(p) for p in result.problems] == [
        f"{directory / 'b.yaml'}:2:7: name: duplicate rule name 'same-name': already defined in {directory / 'a.yaml'}"]
    assert list(result.watches) == ["same-name"]
    assert result.watches["same-name"].file == str(directory / "a.yaml")
    assert result.files_bad == [str(directory / "b.yaml")]


def test_duplicate_watch_id_between_a_rule_and_a_watch(tmp_path):
    (tmp_path / "a-rule.yaml").write_text("name: errors\nindex: logs-*\nwindow: 5m\n")
    (tmp_path / "errors.json").write_text('{"trigger": {"schedule": {"interval": "1m"}}}')
    result = load_paths([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'errors.json'}:1:1: duplicate watch id 'errors': already defined in {tmp_path / 'a-rule.yaml'}"]


def test_valid_fixtures_load_without_problems():
    result = load_paths([VALID])
    assert [str(p) for p in result.problems] == []
    assert result.connectors_file == str(CONNECTORS)
    assert sorted(result.connectors) == ["archive", "chat", "key-hook", "log", "ops", "ops-watcher",
                                         "parts-hook", "team-hook"]
    assert sorted(result.watches) == ["big-responses-per-host", "from-get-api", "json-rule", "no-heartbeat",
                                      "slow-checkout", "ssh-bruteforce", "top-hit-is-critical", "watch",
                                      "watch-full"]
    assert len(result.files_ok) == 10 and result.files_bad == []
    assert result.watches["ssh-bruteforce"].rule is not None
    assert result.watches["watch-full"].rule is None


def test_connector_secrets_resolve_and_stay_masked():
    result = load_paths([], connectors_path=CONNECTORS)
    ops = result.connectors["ops-watcher"]
    assert "opsgenie-key-from-file" in ops.secrets
    assert ops.masked()["api_key"] == "***"


def test_a_bad_file_never_stops_the_good_ones(tmp_path):
    (tmp_path / "good.yaml").write_text("name: good\nindex: logs-*\nwindow: 5m\n")
    (tmp_path / "bad.yaml").write_text("name: bad\nindex: [\n")
    (tmp_path / "worse.json").write_text('{"trigger": {"schedule": {"interval": "soon"}}}')
    (tmp_path / "notes.txt").write_text("not a definition")
    result = load_paths([tmp_path])
    assert list(result.watches) == ["good"]
    assert result.files_ok == [str(tmp_path / "good.yaml")]
    assert result.files_bad == [str(tmp_path / "bad.yaml"), str(tmp_path / "worse.json")]
    assert result.connectors_file is None


def test_rules_without_connectors_file_name_the_missing_file(tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\nindex: logs-*\nwindow: 5m\nactions:\n  - connector: ops\n")
    result = load_paths([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'r.yaml'}:5:16: actions[0].connector: unknown connector 'ops'; no connectors are defined "
        "(no connectors file)"]


def test_missing_path_is_a_problem(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = load_paths([missing])
    assert len(result.problems) == 1
    assert str(result.problems[0]).startswith(f"{missing}:1:1: cannot read file: ")


def test_discover_lists_definition_files_in_name_order(tmp_path):
    for name in ("b.yml", "a.json", "c.yaml", "d.txt", "connectors.yaml"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in discover([tmp_path])] == ["a.json", "b.yml", "c.yaml"]  # connectors files are not definitions


def test_connectors_file_is_not_loaded_as_a_rule():
    result = load_paths([VALID / "connectors.yaml", VALID / "rule-compare.yaml"])
    assert list(result.watches) == ["no-heartbeat"] and result.problems == []


def test_load_definition_of_a_yaml_watch():
    watch, problems = load_definition(VALID / "watch.yaml", {})
    assert problems == []
    assert (watch.id, watch.trigger.kind, watch.input.type, watch.condition.type) == ("watch", "daily", "http", "never")
    assert [(a.id, a.type) for a in watch.actions] == [("index_it", "index")]


def test_a_rule_using_an_invalid_connector_points_at_the_connector_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    (tmp_path / "connectors.yaml").write_text("connectors:\n  ops:\n    type: opsgenie\n    api_key: ${NO_SUCH_KEY}\n")
    (tmp_path / "r.yaml").write_text("name: r\nindex: logs\nwindow: 5m\nactions:\n  - connector: ops\n")
    result = load_paths([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path}/connectors.yaml:4:14: connectors.ops.api_key: undefined environment variable NO_SUCH_KEY",
        f"{tmp_path}/r.yaml:5:16: actions[0].connector: connector 'ops' has problems in "
        f"{tmp_path}/connectors.yaml (reported there)"]
    assert result.connectors == {}


def test_alias_bombs_and_deep_nesting_are_refused_quickly(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\nname: bomb\nindex: logs\nwindow: 5m\ndescription: *i\n")
    (tmp_path / "deep.json").write_text('{"a":' * 1000 + "1" + "}" * 1000)
    # "quickly" = refused by the guards, which stop counting at 1,000,000 values / 100 levels: the
    # bomb's 387,420,489 values are never built (how fast is bench/'s business, not a timed assert)
    result = load_paths([tmp_path / "bomb.yaml", tmp_path / "deep.json"])
    assert [p.message for p in result.problems] == [
        "the document expands to more than 1,000,000 values (YAML aliases repeating large structures?)",
        "nested more than 100 levels deep"]


def test_watch_actions_naming_connectors_are_checked_like_rules(tmp_path):
    (tmp_path / "connectors.yaml").write_text("connectors:\n  hook: {type: webhook, url: 'http://127.0.0.1:8000/'}\n"
                                              "  log: {type: logging}\n")
    (tmp_path / "w.json").write_text(
        '{"trigger": {"schedule": {"interval": "10s"}},\n'
        ' "actions": {"a": {"webhook": {"connector": "hok"}},\n'
        '             "b": {"webhook": {"connector": "log"}},\n'
        '             "c": {"webhook": {"connector": "hook"}}}}\n')
    result = load_paths([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path}/w.json:2:45: actions.a.webhook.connector: unknown connector [hok] (did you mean 'hook'?); "
        "known connectors: hook, log",
        f"{tmp_path}/w.json:3:45: actions.b.webhook.connector: connector [log] is of type [logging], a webhook "
        "action needs a connector of type [webhook]"]
    assert "w" not in result.watches
