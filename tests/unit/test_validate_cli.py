"""`watcher validate`, `watcher schema` and `watcher convert` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from watcher.cli.definitions import convert, schema_command, validate
from watcher.definitions.schema import schema

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "definitions"
VALID = FIXTURES / "valid"
MALFORMED = FIXTURES / "malformed"


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPSGENIE_API_KEY", "local-test-key")  # rules/connectors.yaml reads it (with a default)
    for name, value in {"TEST_OPSGENIE_KEY": "k-123", "TEST_HOOK_TOKEN": "t-123", "TEST_HOOK_PASSWORD": "p-123",
                        "TEST_SLACK_URL": "https://hooks.slack.com/x", "TEST_CA_FILE": str(VALID / "ca.pem")}.items():
        monkeypatch.setenv(name, value)


def run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_validate_passes_on_the_shipped_rules():
    result = run(validate)  # default: rules/
    assert result.output == "6 files OK, 0 with problems\n"
    assert result.exit_code == 0


def test_shipped_examples_validate_without_any_secret_set(monkeypatch):
    monkeypatch.delenv("OPSGENIE_API_KEY")  # the shipped connector falls back to a local placeholder
    result = run(validate, "rules/")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "6 files OK, 0 with problems"


def test_validate_prints_every_problem_and_a_summary():
    files = [MALFORMED / "unknown-key.yaml", MALFORMED / "wrong-type-tags.yaml", VALID / "rule-compare.yaml"]
    result = run(validate, *files, "--connectors", VALID / "connectors.yaml")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{files[0]}:1:1: missing required field 'window'",
        f"{files[0]}:3:1: windw: unknown key 'windw' (did you mean 'window'?); expected one of: actions, aggregation, "
        "allow_partial_results, calendar_window, condition, delay, description, enabled, exponential_realert, filter, group_by, hits, include, index, "
        "max_groups, message, metadata, name, params, query, realert, recovered_message, recovered_title, "
        "schedule, tags, throttle, time_field, title, "
        "top_count_keys, top_count_number, type, window",
        f"{files[1]}:2:7: tags: expected a list, found a string 'ssh'",
        "2 files OK, 2 with problems",
    ]


def test_validate_a_whole_fixture_directory():
    result = run(validate, VALID)
    assert result.exit_code == 0
    assert result.output.splitlines() == [  # what only logs or has no action is a warning, not a problem
        f"warning: {VALID / 'rule-array-compare.yaml'}:1:1: actions: none, so nobody is alerted when the rule fires",
        f"warning: {VALID / 'rule-metric.yaml'}:12:1: actions: only logging, which writes to watcher's own log, so "
        "nobody is alerted when the rule fires",
        f"warning: {VALID / 'watch-get-response.json'}:12:5: watch.actions: only logging, which writes to watcher's own "
        "log, so nobody is alerted when the watch fires",
        "10 files OK, 0 with problems"]


def test_schema_prints_one_or_all():
    one = json.loads(run(schema_command, "rule").output)
    assert one["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert one["required"] == ["name", "index", "window"]
    every = json.loads(run(schema_command).output)
    assert sorted(every) == ["connectors", "rule", "watch"]
    assert every["watch"]["required"] == ["trigger"]


def test_schema_out_writes_three_files(tmp_path):
    result = run(schema_command, "--out", tmp_path / "schemas")
    assert result.exit_code == 0
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert names == ["connectors.schema.json", "rule.schema.json", "watch.schema.json"]
    assert json.loads((tmp_path / "schemas" / "rule.schema.json").read_text()) == schema("rule")


def _yaml(path: Path):
    return json.loads(json.dumps(YAML(typ="safe").load(path.read_text())))


@pytest.mark.parametrize("kind, files", [
    ("rule", ["rule-full.yaml", "rule-metric.yaml", "rule-grouped-metric.yaml", "rule-compare.yaml",
              "rule-array-compare.yaml", "rule.json", "../../../../rules/ssh-bruteforce.yaml",
              "../../../../rules/slow-checkout.yaml"]),
    ("watch", ["watch-full.json", "watch.yaml", "../../../../rules/errors-in-logs.json"]),
    ("connectors", ["connectors.yaml", "../../../../rules/connectors.yaml"]),
])
def test_schemas_accept_the_valid_files(kind, files):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema(kind))
    jsonschema.Draft202012Validator.check_schema(schema(kind))
    for name in files:
        errors = [e.message for e in validator.iter_errors(_yaml(VALID / name))]
        assert errors == [], name


@pytest.mark.parametrize("kind, document, fragment", [
    ("rule", {"name": "r", "index": "a", "window": "5m", "windw": 1}, "'windw' was unexpected"),
    ("rule", {"name": "r", "index": "a"}, "'window' is a required property"),
    ("watch", {"trigger": {"schedule": {"interval": "5m"}}, "acions": {}}, "'acions' was unexpected"),
    ("connectors", {"connectors": {"x": {"type": "victorops"}}}, "'victorops' is not one of"),
])
def test_schemas_reject_what_validate_rejects(kind, document, fragment):
    jsonschema = pytest.importorskip("jsonschema")
    messages = [e.message for e in jsonschema.Draft202012Validator(schema(kind)).iter_errors(document)]
    assert any(fragment in m for m in messages), messages


def test_convert_rule_to_watch_prints_the_watch_json():
    result = CliRunner().invoke(convert, ["rules/ssh-bruteforce.yaml", "--to", "watch"])
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert sorted(body) == ["actions", "condition", "input", "metadata", "trigger"]
    assert body["condition"] == {"array_compare": {"ctx.payload.aggregations.groups.buckets": {
        "path": "doc_count", "gte": {"value": 10, "quantifier": "some"}}}}
    assert list(body["actions"]) == ["opsgenie"]
    assert sorted(body["metadata"]["watcher_rule"]) == ["description", "message", "tags", "title"]
    assert result.stderr.splitlines() == [
        "note: the rule's description, tags, title, message are steps of watcher's rule engine, not of a watch; "
        "they travel in metadata.watcher_rule (Elastic Watcher ignores it) so `convert --to rule` restores them",
        "note: actions name connectors (connector: NAME), resolved by watcher from connectors.yaml; for an Elastic "
        "Watcher cluster, write the destination into each action"]


def test_convert_watch_to_rule_when_it_fits(tmp_path):
    watch = tmp_path / "recent-errors.json"
    watch.write_text(json.dumps({
        "trigger": {"schedule": {"interval": "10m"}},
        "input": {"search": {"request": {"indices": ["logs-*"], "body": {"size": 0, "query": {"bool": {"filter": [
            {"term": {"log.level": "error"}}, {"range": {"@timestamp": {"gte": "now-10m"}}}]}}}}}},
        "condition": {"compare": {"ctx.payload.hits.total": {"gt": 100}}},
        "actions": {"page": {"opsgenie": {"connector": "opsgenie"}}}}))
    result = run(convert, watch, "--to", "rule", "--connectors", "rules/connectors.yaml")
    assert result.exit_code == 0
    assert result.output == (
        "name: recent-errors\nschedule: 10m\nindex: logs-*\nwindow: 10m\nquery:\n  term:\n    log.level: error\n"
        "condition:\n  count:\n    gt: 100\nhits: 0\nactions:\n  - connector: opsgenie\n")
    converted = tmp_path / "out" / "recent-errors.yaml"
    converted.parent.mkdir()
    converted.write_text(result.output)
    again = run(validate, converted, "--connectors", "rules/connectors.yaml")
    assert (again.exit_code, again.output) == (0, "2 files OK, 0 with problems\n")


def test_convert_watch_that_does_not_fit_says_why():
    result = CliRunner().invoke(convert, ["rules/errors-in-logs.json", "--to", "rule"])
    assert result.exit_code == 1
    assert result.stderr == ("rules/errors-in-logs.json: cannot convert to a rule: actions.log_it.logging: a Watcher "
                             "logging action without a connector; define the destination in connectors.yaml and "
                             "write {logging: {connector: NAME}}\n")


def test_convert_reports_problems_of_a_bad_file():
    path = MALFORMED / "missing-index.yaml"
    result = CliRunner().invoke(convert, [str(path), "--to", "watch", "--connectors", str(VALID / "connectors.yaml")])
    assert result.exit_code == 1
    assert result.stderr == f"{path}:1:1: missing required field 'index'\n"


def test_convert_rule_to_rule_normalises():
    result = run(convert, "rules/slow-checkout.yaml", "--to", "rule")
    assert result.exit_code == 0
    assert result.output.startswith("name: slow-checkout\ndescription: The checkout service answers slowly.\n")
    assert "window: 15m\n" in result.output


@pytest.mark.parametrize("kind", ["rule", "watch", "connectors"])
def test_committed_schemas_are_up_to_date(kind):
    """schemas/*.schema.json (referenced by the shipped rules for editors) match `watcher schema`."""
    committed = Path(__file__).resolve().parents[2] / "schemas" / f"{kind}.schema.json"
    assert json.loads(committed.read_text()) == schema(kind), "run: watcher schema --out schemas/"


def test_rule_to_watch_to_rule_keeps_the_rule_only_steps(tmp_path):
    rule_file = tmp_path / "ssh.yaml"
    rule_file.write_text(
        "name: ssh\nindex: logs\nwindow: 5m\ngroup_by: source.ip\ncondition: {count: {gte: 3}}\n"
        "filter: {exclude: {source.ip: [10.0.0.5]}}\ntitle: 'From {{ group }}'\nmessage: '{{ count }} failures'\n"
        "tags: [ssh]\nactions:\n  - connector: log\n")
    (tmp_path / "connectors.yaml").write_text("connectors:\n  log: {type: logging}\n")
    watch = run(convert, rule_file, "--to", "watch")
    assert watch.exit_code == 0, watch.output
    body = json.loads(watch.stdout)
    assert body["metadata"]["watcher_rule"] == {"tags": ["ssh"], "filter": {"exclude": {"source.ip": ["10.0.0.5"]}},
                                               "title": "From {{ group }}", "message": "{{ count }} failures"}
    (tmp_path / "ssh-watch.json").write_text(watch.stdout)
    back = run(convert, tmp_path / "ssh-watch.json", "--to", "rule", "--connectors", tmp_path / "connectors.yaml")
    assert back.exit_code == 0, back.output
    for line in ("filter:", "  exclude:", "title: From {{ group }}", "message: '{{ count }} failures'", "group_by: source.ip"):
        assert line in back.stdout.splitlines(), back.stdout
