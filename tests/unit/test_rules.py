"""The rule format: validation into RuleSpec, compilation to a watch, and the way back (watch → rule)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from watcher.definitions.compile import (NotConvertible, compile_rule, condition_json, jinja_template, search_body,
                                         watch_to_rule)
from watcher.definitions.load import load_definition, load_paths
from watcher.model.problems import DefinitionError, Reader
from watcher.definitions.rule import parse_rule
from watcher.model.rule import RuleSpec
from watcher.model.source import load_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "definitions"
VALID = FIXTURES / "valid"
SCHEDULED = "{{ctx.trigger.scheduled_time}}"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch):
    monkeypatch.setenv("TEST_OPSGENIE_KEY", "opsgenie-key-123")
    monkeypatch.setenv("TEST_HOOK_TOKEN", "hook-token-123")
    monkeypatch.setenv("TEST_HOOK_PASSWORD", "hook-password-123")
    monkeypatch.setenv("TEST_SLACK_URL", "https://hooks.slack.com/services/T0/B0/secret123")
    monkeypatch.setenv("TEST_CA_FILE", str(VALID / "ca.pem"))


@pytest.fixture(scope="module")
def loaded():
    mp = pytest.MonkeyPatch()
    for name, value in {"TEST_OPSGENIE_KEY": "k-123", "TEST_HOOK_TOKEN": "t-123", "TEST_HOOK_PASSWORD": "p-123",
                        "TEST_SLACK_URL": "https://hooks.slack.com/x", "TEST_CA_FILE": str(VALID / "ca.pem")}.items():
        mp.setenv(name, value)
    result = load_paths([VALID])
    mp.undo()
    assert result.problems == []
    return result


def rule_from(text: str, connectors=None) -> tuple[RuleSpec | None, list[str]]:
    document = load_text(text, "r.yaml")
    reader = Reader(document)
    spec = parse_rule(document, reader, connectors)
    return spec, [str(p) for p in reader.problems]


def test_every_rule_field_is_read(loaded):
    spec = loaded.watches["ssh-bruteforce"].rule
    assert spec.name == "ssh-bruteforce"
    assert spec.description == "Many failed SSH logins from one address"
    assert spec.enabled is True
    assert spec.tags == ["ssh", "security"]
    assert spec.schedule == "1m"
    assert spec.index == ["logs-ssh-*", "auth-*"]
    assert spec.time_field == "event.created"
    assert spec.window == dt.timedelta(minutes=5)
    assert spec.delay == dt.timedelta(seconds=30)
    assert spec.query == 'event.action:"ssh_login" AND event.outcome:failure'
    assert spec.group_by == "source.ip" and spec.max_groups == 50
    assert spec.condition.kind == "count" and spec.condition.count.operator() == ("gte", 10)
    assert spec.filter.include == {"user.name": ["root", "admin"]}
    assert spec.filter.exclude == {"source.ip": ["10.0.0.1"]}
    assert spec.filter.query == "NOT user.name:backup"
    assert spec.throttle == dt.timedelta(minutes=10)
    assert spec.hits == 5
    assert spec.title == "SSH brute force from {{ group }}"
    assert spec.message.startswith("{{ count }} failed logins from {{ group }} in {{ rule.window }}\n")
    assert [a.connector for a in spec.actions] == ["ops", "team-hook", "ops"]
    assert spec.actions[0].overrides == {"priority": "P1"}
    assert spec.metadata == {"runbook": "https://runbooks.example.com/ssh"}
    assert spec.file == str(VALID / "rule-full.yaml")
    assert spec.trigger.kind == "interval"


def test_compiled_rule_is_the_watch_model(loaded):
    watch = loaded.watches["ssh-bruteforce"]
    assert (watch.id, watch.active, watch.metadata) == ("ssh-bruteforce", True, {"runbook": "https://runbooks.example.com/ssh"})
    assert watch.input.type == "search" and watch.condition.type == "array_compare" and watch.transform is None
    assert [(a.id, a.type, a.throttle_period) for a in watch.actions] == [
        ("ops", "opsgenie", dt.timedelta(minutes=10)), ("team-hook", "webhook", dt.timedelta(minutes=10)),
        ("ops-2", "opsgenie", dt.timedelta(minutes=10))]
    assert watch.body["trigger"] == {"schedule": {"interval": "1m"}}
    sort = [{"event.created": {"order": "desc", "unmapped_type": "date"}}]
    assert watch.body["input"] == {"search": {"request": {"indices": ["logs-ssh-*", "auth-*"], "body": {
        "size": 5, "track_total_hits": True, "sort": sort,
        "query": {"bool": {"filter": [
            {"query_string": {"query": 'event.action:"ssh_login" AND event.outcome:failure'}},
            {"range": {"event.created": {"gte": SCHEDULED + "||-330s",
                                         "lt": SCHEDULED + "||-30s", "format": "strict_date_optional_time"}}}]}},
        "aggs": {"groups": {"terms": {"field": "source.ip", "size": 50, "min_doc_count": 10},
                            "aggs": {"sample": {"top_hits": {"size": 5, "sort": sort}}}}}}}}}
    assert watch.body["condition"] == {"array_compare": {"ctx.payload.aggregations.groups.buckets": {
        "path": "doc_count", "gte": {"value": 10, "quantifier": "some"}}}}
    # An alert_v2 OpsGenie connector gets the rule's title and message unless the rule overrides them.
    defaults = {"message": {"source": "{{ title }}", "lang": "jinja"},
                "description": {"source": "{{ message }}", "lang": "jinja"},
                "alias": {"source": "{{ rule.name }}{% if group is not none %}:{{ group }}{% endif %}", "lang": "jinja"}}
    assert watch.body["actions"] == {
        "ops": {"opsgenie": {"connector": "ops", **defaults, "priority": "P1"}, "throttle_period": "10m"},
        "team-hook": {"webhook": {
            "connector": "team-hook",
            "body": {"source": '{"title": {{ title | tojson }}, "count": {{ count }}}', "lang": "jinja"},
            "headers": {"X-Group": {"source": "{{ group }}", "lang": "jinja"}}}, "throttle_period": "10m"},
        "ops-2": {"opsgenie": {"connector": "ops", **defaults}, "throttle_period": "10m"}}
    assert watch.body["metadata"] == {"runbook": "https://runbooks.example.com/ssh"}


def test_metric_rule_with_cron_dsl_query_and_mapping_window(loaded):
    watch = loaded.watches["slow-checkout"]
    spec = watch.rule
    assert watch.active is False
    assert spec.window == dt.timedelta(minutes=15) and spec.hits == 0
    assert watch.trigger.kind == "cron" and watch.trigger.timezone == "Europe/Paris"
    assert watch.body["trigger"] == {"schedule": {"cron": "0 */5 * ? * MON-FRI", "timezone": "Europe/Paris"}}
    body = watch.body["input"]["search"]["request"]["body"]
    assert body["query"]["bool"]["filter"][0] == {"term": {"service.name": "checkout"}}
    assert body["query"]["bool"]["filter"][1] == {"range": {"@timestamp": {
        "gte": SCHEDULED + "||-15m", "lt": SCHEDULED, "format": "strict_date_optional_time"}}}
    assert body["aggs"] == {"metric": {"avg": {"field": "transaction.duration.us"}}}
    assert watch.body["condition"] == {"compare": {"ctx.payload.aggregations.metric.value": {"gt": 2000000}}}
    assert watch.body["actions"] == {"log": {"logging": {
        "connector": "log", "text": {"source": "checkout is slow: {{ value }}", "lang": "jinja"}}}}


def test_grouped_metric_rule(loaded):
    body = loaded.watches["big-responses-per-host"].body
    aggs = body["input"]["search"]["request"]["body"]["aggs"]
    assert aggs["groups"]["terms"] == {"field": "host.name", "size": 100,  # no min_doc_count from a metric
                                       "order": {"metric": "desc"}}      # ranked by what gte tests
    assert aggs["groups"]["aggs"]["metric"] == {"max": {"field": "http.response.bytes"}}
    assert aggs["groups"]["aggs"]["sample"]["top_hits"]["size"] == 10
    assert body["condition"] == {"array_compare": {"ctx.payload.aggregations.groups.buckets": {
        "path": "metric.value", "gte": {"value": 1000000, "quantifier": "some"}}}}


def test_compare_and_array_compare_pass_through(loaded):
    assert loaded.watches["no-heartbeat"].body["condition"] == {"compare": {"ctx.payload.hits.total": {"lt": 1}}}
    assert loaded.watches["top-hit-is-critical"].body["condition"] == {"array_compare": {"ctx.payload.hits.hits": {
        "path": "_source.severity", "eq": {"value": "critical", "quantifier": "some"}}}}
    assert loaded.watches["top-hit-is-critical"].actions == ()


def test_json_rule_and_defaults(loaded):
    watch = loaded.watches["json-rule"]
    spec = watch.rule
    assert (spec.schedule, spec.time_field, spec.delay, spec.hits, spec.max_groups, spec.enabled) == (
        "1m", "@timestamp", dt.timedelta(0), 10, 100, True)
    assert watch.body["condition"] == {"compare": {"ctx.payload.hits.total": {"not_eq": 0}}}
    assert watch.body["input"]["search"]["request"]["body"]["query"] == {"bool": {"filter": [{"range": {"@timestamp": {
        "gte": SCHEDULED + "||-1h", "lt": SCHEDULED, "format": "strict_date_optional_time"}}}]}}
    assert "aggs" not in watch.body["input"]["search"]["request"]["body"]


def test_default_condition_is_any_hit():
    spec, problems = rule_from("name: r\nindex: a\nwindow: 1m\n")
    assert problems == []
    assert condition_json(spec) == {"compare": {"ctx.payload.hits.total": {"gt": 0}}}


@pytest.mark.parametrize("threshold, min_doc_count", [
    ({"gte": 10}, 10), ({"gt": 10}, 11), ({"gt": 2.5}, 3), ({"gte": 2.5}, 3), ({"gte": 1}, None), ({"gt": 0}, None),
    ({"lt": 5}, None), ({"eq": 3}, None)])
def test_min_doc_count_follows_gt_and_gte(threshold, min_doc_count):
    spec = RuleSpec.model_validate({"name": "r", "index": "a", "window": "1m", "group_by": "host",
                                    "condition": {"count": threshold}, "hits": 0})
    terms = search_body(spec)["aggs"]["groups"]["terms"]
    assert terms.get("min_doc_count") == min_doc_count
    assert "aggs" not in search_body(spec)["aggs"]["groups"]  # hits: 0 → no sample


def test_sample_hits_are_capped_at_top_hits_limit():
    spec = RuleSpec.model_validate({"name": "r", "index": "a", "window": "1m", "group_by": "h", "hits": 500})
    body = search_body(spec)
    assert body["size"] == 500 and body["aggs"]["groups"]["aggs"]["sample"]["top_hits"]["size"] == 100


def test_index_forms():
    for value, expected in [("a", ["a"]), ("a, b-*", ["a", "b-*"]), (["x", "y*"], ["x", "y*"])]:
        assert RuleSpec.model_validate({"name": "r", "index": value, "window": "1m"}).index == expected


def test_jinja_template_wraps_only_markup():
    assert jinja_template("plain") == "plain"
    assert jinja_template("{{ a }}") == {"source": "{{ a }}", "lang": "jinja"}
    assert jinja_template({"h": "{% if a %}x{% endif %}", "n": 1}) == {
        "h": {"source": "{% if a %}x{% endif %}", "lang": "jinja"}, "n": 1}
    # list items too (an email's to, opsgenie tags): Jinja2 markup there is Jinja2, not Mustache
    assert jinja_template(["{{ a }}", "plain", 3]) == [{"source": "{{ a }}", "lang": "jinja"}, "plain", 3]


def test_compile_rule_built_in_code_parses_its_schedule():
    from watcher.model.connector import Connector

    spec = RuleSpec.model_validate({"name": "coded", "index": "a", "window": "1m",
                                    "schedule": {"cron": "0 9 * * *"}, "actions": [{"connector": "l", "text": "hi"}]})
    watch = compile_rule(spec, "<code>", {"l": Connector(name="l", type="logging", config=None)})
    assert watch.trigger.kind == "cron"
    assert watch.body["trigger"] == {"schedule": {"cron": "0 0 9 * * ?"}}
    assert watch.body["actions"] == {"l": {"logging": {"connector": "l", "text": "hi"}}}


def test_compile_rule_without_the_connector_raises():
    spec = RuleSpec.model_validate({"name": "r", "index": "a", "window": "1m", "actions": [{"connector": "gone"}]})
    with pytest.raises(DefinitionError) as error:
        compile_rule(spec, "r.yaml", {})
    assert str(error.value) == "r.yaml:1:1: actions[0].connector: unknown connector 'gone'"


def test_problems_are_all_reported_at_once():
    spec, problems = rule_from(
        "name: ''\nindex: a\nwindow: 0s\nschedule: {cron: '* * *'}\ntitle: '{{ x'\n")
    assert spec is None
    assert problems == [
        "r.yaml:1:7: name: expected a non-empty string, found a string ''",
        'r.yaml:3:9: window: expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, h, d, w) or a '
        'mapping such as {minutes: 5} (keys weeks, days, hours, minutes, seconds), found "0s" (must be greater than zero)',
        "r.yaml:4:18: schedule.cron: invalid cron expression '* * *': expected 5 fields (minute hour day-of-month "
        "month day-of-week), found 3",
        "r.yaml:5:8: title: template syntax error: unexpected end of template, expected 'end of print statement'.",
    ]


def test_to_document_round_trips(loaded):
    spec = loaded.watches["ssh-bruteforce"].rule
    document = spec.to_document()
    assert document["window"] == "5m" and document["delay"] == "30s" and document["throttle"] == "10m"
    assert document["index"] == ["logs-ssh-*", "auth-*"]
    assert "enabled" not in document and "time_field" in document
    again = RuleSpec.model_validate(document)
    assert again.model_dump() == spec.model_dump()


# ---- watch → rule --------------------------------------------------------------------------------

def test_compiled_rule_converts_back(loaded):
    for name in ("ssh-bruteforce", "slow-checkout", "big-responses-per-host", "json-rule", "no-heartbeat"):
        watch = loaded.watches[name]
        back = watch_to_rule(watch)
        spec = RuleSpec.model_validate(back)
        original = watch.rule
        for field in ("name", "index", "time_field", "window", "delay", "query", "group_by",
                      "throttle", "hits", "actions", "metadata", "enabled"):
            assert getattr(spec, field) == getattr(original, field), (name, field)
        assert condition_json(spec) == condition_json(original)  # compare on hits.total comes back as count


def _watch(text: str, name: str = "w.json"):
    from watcher.definitions.watch import parse_watch

    document = load_text(text, name)
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert reader.problems == []
    return watch


def test_classic_watch_with_now_range_converts():
    watch = _watch("""{
      "trigger": {"schedule": {"interval": 300}},
      "input": {"search": {"request": {"indices": "logs-*", "body": {
        "query": {"bool": {"must": [{"query_string": {"query": "level:error"}}],
                           "filter": {"range": {"@timestamp": {"gte": "now-10m", "lte": "now-1m"}}}}}}}}},
      "condition": {"compare": {"ctx.payload.hits.total": {"gte": 3}}},
      "actions": {"a": {"throttle_period": "1h", "opsgenie": {"connector": "ops", "message": {"source": "{{ count }}", "lang": "jinja"}}}}
    }""")
    assert watch_to_rule(watch) == {
        "name": "w", "schedule": "5m", "index": "logs-*", "window": "9m", "delay": "1m", "query": "level:error",
        "condition": {"count": {"gte": 3}}, "throttle": "1h",
        "actions": [{"connector": "ops", "message": "{{ count }}"}]}


def test_terms_watch_converts_to_group_by():
    watch = _watch("""{
      "trigger": {"schedule": {"cron": "0 */5 * * * ?"}},
      "input": {"search": {"request": {"indices": ["a"], "body": {"size": 0,
        "query": {"range": {"ts": {"gte": "{{ctx.trigger.scheduled_time}}||-1h"}}},
        "aggs": {"hosts": {"terms": {"field": "host"}, "aggs": {"avg_cpu": {"avg": {"field": "cpu"}}}}}}}}},
      "condition": {"array_compare": {"ctx.payload.aggregations.hosts.buckets": {"path": "avg_cpu.value", "gt": {"value": 0.9}}}}
    }""")
    assert watch_to_rule(watch) == {
        "name": "w", "schedule": {"cron": "0 */5 * * * ?"}, "index": "a", "time_field": "ts", "window": "1h",
        "group_by": "host", "max_groups": 10, "condition": {"metric": {"agg": "avg", "field": "cpu", "gt": 0.9}},
        "hits": 0}


@pytest.mark.parametrize("change, message", [
    ('"input": {"simple": {}}', "input.simple: the rule form has one search input"),
    ('"transform": {"script": "return 1"}', "transform: the rule form has no watch-level transform"),
    ('"input": {"search": {"request": {"indices": ["a"], "body": {"query": {"match_all": {}}}}}}',
     "input.search.request.body.query: the rule form needs a range on a time field in the query or in bool.filter"),
    ('"input": {"search": {"request": {"indices": ["a"], "body": {"query": {"range": {"t": {"gte": "now-1d/d"}}}}}}}',
     "input.search.request.body.query.t.gte: the rule form needs a plain offset such as -5m (no rounding, months or "
     "years), found 'now-1d/d'"),
    ('"condition": {"script": "return true"}',
     "condition.script: the rule form has count, metric, compare and array_compare conditions"),
    ('"actions": {"hook": {"webhook": {"host": "h", "port": 80}}}',
     "actions.hook.webhook: a Watcher webhook action without a connector; define the destination in connectors.yaml "
     "and write {webhook: {connector: NAME}}"),
    ('"actions": {"x": {"foreach": "ctx.payload.hits.hits", "logging": {"connector": "l", "text": "t"}}}',
     "actions.x.foreach: the rule form has no per-action foreach"),
])
def test_watch_that_does_not_fit_says_which_part(change, message):
    base = {
        "trigger": '{"schedule": {"interval": "1m"}}',
        "input": '{"search": {"request": {"indices": ["a"], "body": {"query": {"range": {"t": {"gte": "now-5m"}}}}}}}',
    }
    key = change.split('"')[1]
    parts = {**base, key: change.split(": ", 1)[1]}
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}"
    with pytest.raises(NotConvertible) as error:
        watch_to_rule(_watch(text))
    assert str(error.value) == message


def test_get_watch_response_keeps_its_id(loaded):
    watch = loaded.watches["from-get-api"]
    with pytest.raises(NotConvertible, match="input.simple"):
        watch_to_rule(watch)


def test_load_definition_returns_problems_for_a_rule_with_unknown_connector(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nindex: a\nwindow: 1m\nactions: [{connector: x}]\n")
    watch, problems = load_definition(path, {})
    assert watch is None
    assert [str(p) for p in problems] == [
        f"{path}:4:23: actions[0].connector: unknown connector 'x'; no connectors are defined (no connectors file)"]


def test_include_limits_the_fetched_fields_and_survives_the_round_trip_through_a_watch():
    spec = RuleSpec(name="r", index="logs", window="5m", group_by="host", include=["host", "user.name"])
    body = search_body(spec)
    assert body["_source"] == {"includes": ["host", "user.name"]}
    assert body["aggs"]["groups"]["aggs"]["sample"]["top_hits"]["_source"] == {"includes": ["host", "user.name"]}
    watch = compile_rule(spec, "r.yaml", {})
    assert watch_to_rule(watch)["include"] == ["host", "user.name"]


def test_typed_rules_compile_to_the_rule_input_and_a_matches_condition():
    spec = RuleSpec(name="r", type="frequency", params={"num_events": 3}, index="logs", window="5m")
    watch = compile_rule(spec, "r.yaml", {})
    assert watch.input.type == "rule"
    assert watch.body["input"] == {"rule": {"type": "frequency", "indices": ["logs"], "params": {"num_events": 3}}}
    assert watch.body["condition"] == {"compare": {"ctx.payload.total_matches": {"gt": 0}}}
    assert spec.type_params.num_events == 3


def test_a_slack_message_override_without_text_keeps_the_default_text():
    from watcher.definitions.compile import with_rule_defaults
    from watcher.destinations.slack import DEFAULT_RULE_TEXT as DEFAULT_SLACK_TEXT
    from watcher.model.connector import Connector

    slack = Connector(name="chat", type="slack", config=None, secrets=())
    merged = with_rule_defaults(slack, {"message": {"to": ["#ops"]}})
    assert merged == {"message": {"to": ["#ops"], "text": DEFAULT_SLACK_TEXT}}
    assert with_rule_defaults(slack, {"message": {"text": "mine"}}) == {"message": {"text": "mine"}}


@pytest.mark.parametrize("condition, order", [
    ({"metric": {"agg": "max", "field": "bytes", "gte": 10}}, {"metric": "desc"}),
    ({"metric": {"agg": "avg", "field": "bytes", "lt": 10}}, {"metric": "asc"}),
    ({"count": {"lte": 1}}, {"_count": "asc"}),
    ({"count": {"gte": 5}}, None),                   # the terms default (most documents first) serves it
    ({"metric": {"agg": "max", "field": "bytes", "eq": 10}}, None),
])
def test_groups_are_ranked_by_what_the_condition_tests(condition, order):
    from watcher.definitions.compile import group_order

    spec = RuleSpec(name="r", index="logs", window="5m", group_by="host", condition=condition)
    assert group_order(spec) == order
    terms = search_body(spec)["aggs"]["groups"]["terms"]
    assert terms.get("order") == order
