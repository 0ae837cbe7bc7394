"""Defects found by a new-user trial of the rule types, against the real cluster: ``change`` on
overlapping windows and on values of different JSON types, default titles/messages of every type
for every shape of ``details`` (rendering, grammar, no Python reprs), detail keys that collide
with dict methods, and shard failures / unmatched index patterns made visible."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from tests.integration.ruletype_helpers import (RuleRunner, add_docs, create_index, delivered, ecs_doc, match_details,
                                               matches)

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)  # first scheduled time
MAPPINGS = {"host": {"properties": {"name": {"type": "keyword"}}},
            "user": {"properties": {"name": {"type": "keyword"}}},
            "service": {"properties": {"name": {"type": "keyword"}}},
            "version": {"type": "keyword"}, "tags": {"type": "keyword"},
            "bytes": {"type": "long"}, "status": {"type": "keyword"}}
DICT_ATTRIBUTES = set(dir(dict))


def at(minutes: float, seconds: float = 0, millis: int = 0) -> str:
    when = T + dt.timedelta(minutes=minutes, seconds=seconds, milliseconds=millis)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


doc = ecs_doc


def rule(index: str, rule_type: str, params: str, *, group_by: str | None = "host.name", window: str = "10m",
         schedule: str = "10m", name: str = "r", extra: str = "") -> str:
    group = f"group_by: {group_by}\n" if group_by else ""
    params_block = f"params:\n{params}" if params else ""
    return (f"name: {name}\ntype: {rule_type}\nindex: {index}\nwindow: {window}\nschedule: {schedule}\n{group}"
            f"{extra}{params_block}actions:\n  - connector: log\n")


def texts(record: dict) -> dict:
    """``{group: "title: message"}`` of the alerts rendered and (simulated) sent; every match must
    have been delivered (a template that fails to render loses its alert). The alert group of a
    rule without ``group_by`` is None (new_term's matches are then one alert per term)."""
    sent = [(group, text) for _, event, group, text in delivered(record) if event == "firing"]
    found = matches(record)
    assert len(sent) == len(found), record["result"].get("actions")
    return dict(sent)


@pytest.fixture
def index(es, index_name):
    create_index(es, index_name, MAPPINGS)
    return index_name


# ---- 1. change: overlapping windows, ties, keyword comparison ---------------------------------

def test_change_with_a_window_longer_than_the_schedule_reports_each_change_once(es, index, tmp_path):
    add_docs(es, index, [
        {"@timestamp": at(-25), "service": {"name": "api"}, "version": "1.4.2"},
        {"@timestamp": at(-12), "service": {"name": "api"}, "version": "1.4.2"},
        {"@timestamp": at(5, 32), "service": {"name": "api"}, "version": "1.5.0"},   # the one real change
        {"@timestamp": at(9), "service": {"name": "api"}, "version": "1.5.0"},
        {"@timestamp": at(20), "service": {"name": "api"}, "version": "1.5.0"},
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "change", "  compare_key: version\n", group_by="service.name",
                                           window="30m", schedule="1m"))
    fired = {}
    for minute in range(41):                      # runs at T, T+1m … T+40m, each over the last 30 minutes
        record = runner.run(T + dt.timedelta(minutes=minute))
        if matches(record):
            fired[minute] = match_details(record)["api"]["details"]["changes"]
    # 1.5.0 at 10:05:32 is first inside the window of the run at 10:06: that run alone fires.
    assert fired == {6: [{"old_value": "1.4.2", "new_value": "1.5.0", "time": "2026-11-29T10:05:32.000Z"}]}
    assert runner.state["type_state"]["data"]["api"] == {"value": "1.5.0", "time": "2026-11-29T10:20:00.000Z"}


def test_change_documents_in_the_kept_millisecond_are_not_walked_again(es, index, tmp_path):
    add_docs(es, index, [
        {"@timestamp": at(-9), "service": {"name": "db"}, "version": "a"},
        # two values in the same millisecond: walked in the cluster's order in this run
        {"@timestamp": at(-5, millis=7), "service": {"name": "db"}, "version": "b"},
        {"@timestamp": at(-5, millis=7), "service": {"name": "db"}, "version": "c"},
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "change", "  compare_key: version\n", group_by="service.name",
                                           window="10m", schedule="1m"))
    first = match_details(runner.run(T))["db"]
    assert first["count"] == 2                                       # a → b → c or a → c → b
    assert {c["new_value"] for c in first["details"]["changes"]} == {"b", "c"}
    kept = runner.state["type_state"]["data"]["db"]
    assert kept == {"value": first["details"]["new_value"], "time": "2026-11-29T09:55:00.007Z"}
    for minute in range(1, 5):                # both tied documents stay in the window: never again
        assert matches(runner.run(T + dt.timedelta(minutes=minute))) == {}
    add_docs(es, index, [{"@timestamp": at(4, millis=8), "service": {"name": "db"}, "version": "a"}])
    later = match_details(runner.run(T + dt.timedelta(minutes=5)))["db"]["details"]["changes"]
    assert later == [{"old_value": kept["value"], "new_value": "a", "time": "2026-11-29T10:04:00.008Z"}]


def test_change_compares_values_as_the_index_does_and_prints_json(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", version=1), doc(at(-8), "h1", version="1"),          # one term "1": no change
        doc(at(-7), "h1", version=2),                                            # 1 → 2
        doc(at(-9), "h2", version=True), doc(at(-8), "h2", version="true"),    # one term "true": no change
        doc(at(-7), "h2", version=False),                                        # true → false
        doc(at(-9), "h3", version="x"), doc(at(-8), "h3", version=["x", "y"]),  # an array: JSON text
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "change", "  compare_key: version\n"))
    record = runner.run(T)
    assert matches(record) == {"h1": 1, "h2": 1, "h3": 1}
    details = match_details(record)
    assert (details["h1"]["details"]["old_value"], details["h1"]["details"]["new_value"]) == ("1", 2)
    assert (details["h2"]["details"]["old_value"], details["h2"]["details"]["new_value"]) == ("true", False)
    window = "between 2026-11-29T09:50:00.000Z and 2026-11-29T10:00:00.000Z"
    assert texts(record) == {
        "h1": f"rule 'r': version changed for h1: version changed 1 time for h1 in {index} {window}: 1 → 2.",
        "h2": f"rule 'r': version changed for h2: version changed 1 time for h2 in {index} {window}: true → false.",
        "h3": f"rule 'r': version changed for h3: version changed 1 time for h3 in {index} {window}: "
              f'x → ["x", "y"].',
    }


# ---- 2–4, 6. default templates, detail keys, grammar ---------------------------------------------

WINDOW = "between 2026-11-29T09:50:00.000Z and 2026-11-29T10:00:00.000Z"


def test_whitelist_default_message_renders_with_and_without_ignore_null(es, index, tmp_path):
    add_docs(es, index, [doc(at(-9), "h1", "mallory"), doc(at(-8), "h2"), doc(at(-7), "h3", "eve"),
                         doc(at(-6), "h3")])
    listed = "  compare_key: user.name\n  whitelist: [alice]\n"
    (tmp_path / "a").mkdir()
    record = RuleRunner(es, tmp_path / "a", rule(index, "whitelist", listed)).run(T)
    assert texts(record) == {
        "h1": f"rule 'r': 1 document with a user.name not in the whitelist for h1: 1 document in {index} {WINDOW} "
              f"has a user.name not in the whitelist: mallory (group h1).",
        "h3": f"rule 'r': 1 document with a user.name not in the whitelist for h3: 1 document in {index} {WINDOW} "
              f"has a user.name not in the whitelist: eve (group h3).",
    }
    (tmp_path / "b").mkdir()
    record = RuleRunner(es, tmp_path / "b", rule(index, "whitelist", listed + "  ignore_null: false\n")).run(T)
    sent = texts(record)
    assert sent["h2"] == (f"rule 'r': 1 document with a user.name not in the whitelist for h2: 1 document in {index} "
                          f"{WINDOW} lacks user.name (group h2).")
    assert sent["h3"] == (f"rule 'r': 2 documents with a user.name not in the whitelist for h3: 2 documents in {index} "
                          f"{WINDOW} have a user.name not in the whitelist: eve (1 without the field) (group h3).")


def test_blacklist_details_offending_values_and_singular_message(es, index, tmp_path):
    add_docs(es, index, [doc(at(-9), "h1", "root"), doc(at(-8), "h2", "root"), doc(at(-7), "h2", "admin")])
    runner = RuleRunner(es, tmp_path, rule(index, "blacklist", "  compare_key: user.name\n  blacklist: [root, admin]\n")
                        .replace("actions:", "message: '{{ details.offending_values | map(attribute=\"value\") "
                                             "| join(\",\") }}'\nactions:"))
    record = runner.run(T)
    assert match_details(record)["h2"]["details"]["offending_values"] == [{"value": "admin", "count": 1},
                                                                          {"value": "root", "count": 1}]
    assert "values" not in match_details(record)["h2"]["details"]
    assert texts(record) == {"h1": "rule 'r': 1 document with a blacklisted user.name for h1: root",
                             "h2": "rule 'r': 2 documents with a blacklisted user.name for h2: admin,root"}
    (tmp_path / "d").mkdir()
    default = RuleRunner(es, tmp_path / "d", rule(index, "blacklist", "  compare_key: user.name\n  blacklist: [root]\n",
                                                  group_by=None)).run(T)
    assert texts(default) == {None: f"rule 'r': 2 documents with a blacklisted user.name: 2 documents in {index} "
                                    f"{WINDOW} have a blacklisted user.name: root."}


# Every type, every shape of details: (rule type, params, group_by, extra rule lines, documents, runs).
# The documents are in the window [09:50, 10:00) unless at(-20 … -11) (the window before).
CASES = {
    "any-grouped": ("any", "", "host.name", "", [doc(at(-5), "h1")]),
    "any-ungrouped": ("any", "", None, "", [doc(at(-5), "h1")]),
    "frequency": ("frequency", "  num_events: 1\n", None, "", [doc(at(-5), "h1")]),
    "spike-up": ("spike", "  spike_height: 2\n  spike_type: up\n", None, "",
                 [doc(at(-25), "h1"), doc(at(-15), "h1"), doc(at(-5), "h1"), doc(at(-4), "h1")]),
    "spike-down-one-event": ("spike", "  spike_height: 2\n  spike_type: down\n", "host.name", "",
                             [doc(at(-25), "h1"), doc(at(-15), "h1"), doc(at(-14), "h1"), doc(at(-5), "h1")]),
    "spike-new-data": ("spike", "  spike_height: 2\n  spike_type: up\n  alert_on_new_data: true\n", "host.name", "",
                       [doc(at(-5), "h1")]),
    "spike_aggregation-up": ("spike_aggregation", "  metric_agg_key: bytes\n  metric_agg_type: sum\n"
                                                  "  spike_height: 2\n  spike_type: up\n", None, "",
                             [doc(at(-25), "h1", bytes=1), doc(at(-15), "h1", bytes=1), doc(at(-5), "h1", bytes=5)]),
    "flatline-ungrouped": ("flatline", "  threshold: 1\n", None, "", [doc(at(-15), "h1")]),
    "flatline-grouped": ("flatline", "  threshold: 2\n", "host.name", "",
                         [doc(at(-15), "h1"), doc(at(-15), "h2"), doc(at(-5), "h2")]),
    "change": ("change", "  compare_key: user.name\n", "host.name", "",
               [doc(at(-9), "h1", "a"), doc(at(-8), "h1", "b")]),
    "change-compound-nulls": ("change", "  compare_key: [user.name, tags]\n  ignore_null: false\n", "host.name", "",
                              [doc(at(-9), "h1", "a", tags=True), doc(at(-8), "h1", "a")]),
    "blacklist": ("blacklist", "  compare_key: user.name\n  blacklist: [root]\n", None, "",
                  [doc(at(-5), "h1", "root")]),
    "whitelist": ("whitelist", "  compare_key: user.name\n  whitelist: [alice]\n", "host.name", "",
                  [doc(at(-5), "h1", "eve")]),
    "whitelist-no-ignore-null": ("whitelist", "  compare_key: user.name\n  whitelist: [alice]\n  ignore_null: false\n",
                                 None, "", [doc(at(-5), "h1", "eve"), doc(at(-4), "h1")]),
    "new_term": ("new_term", "  fields: [user.name]\n", None, "", [doc(at(-15), "h1", "alice"), doc(at(5), "h1", "bob")]),
    "new_term-missing": ("new_term", "  fields: [user.name]\n  alert_on_missing_field: true\n", None, "",
                         [doc(at(-15), "h1", "alice"), doc(at(6), "h1")]),
    "new_term-composite": ("new_term", "  fields: [[host.name, user.name]]\n", None, "",
                           [doc(at(-15), "h1", "alice"), doc(at(5), "h1", "bob")]),
    "cardinality-max": ("cardinality", "  cardinality_field: user.name\n  max_cardinality: 1\n", None, "",
                        [doc(at(-5), "h1", "a"), doc(at(-4), "h1", "b")]),
    "cardinality-min": ("cardinality", "  cardinality_field: user.name\n  min_cardinality: 2\n", "host.name", "",
                        [doc(at(-5), "h1", "a")]),
    "metric_aggregation": ("metric_aggregation", "  metric_agg_key: bytes\n  metric_agg_type: max\n"
                                                 "  max_threshold: 3\n", None, "", [doc(at(-5), "h1", bytes=5)]),
    "metric_aggregation-percentiles": ("metric_aggregation", "  metric_agg_key: bytes\n  metric_agg_type: percentiles\n"
                                                             "  percentile_range: 50\n  min_threshold: 3\n", "host.name",
                                       "", [doc(at(-5), "h1", bytes=1)]),
    "metric_aggregation-buckets": ("metric_aggregation", "  metric_agg_key: bytes\n  metric_agg_type: sum\n"
                                                         "  max_threshold: 3\n  bucket_interval: 5m\n", None, "",
                                   [doc(at(-9), "h1", bytes=5), doc(at(-2), "h1", bytes=9)]),
    "percentage_match": ("percentage_match", "  match_bucket_filter: 'user.name:root'\n  max_percentage: 10\n",
                         None, "", [doc(at(-5), "h1", "root")]),
}
SECOND_RUN = {"new_term", "new_term-missing", "new_term-composite"}   # learn on the first run, alert on the second


def grammar_ok(text: str) -> bool:
    return not any(wrong in text for wrong in (" 1 documents", " 1 events", " 1 times", "1 document have",
                                               "1 document lack ", "of 1 documents"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_title_and_message_render_for_every_details_shape(es, index, tmp_path, case):
    rule_type, params, group_by, extra, docs = CASES[case]
    add_docs(es, index, docs)
    runner = RuleRunner(es, tmp_path, rule(index, rule_type, params, group_by=group_by, extra=extra))
    record = runner.run(T)
    if case in SECOND_RUN:
        assert matches(record) == {}
        record = runner.run(T + dt.timedelta(minutes=10))
    assert matches(record), f"{case}: the case's documents should fire"
    for match in match_details(record).values():
        assert not set(match["details"]) & DICT_ATTRIBUTES, f"{case}: a details key is a dict method"
    sent = texts(record)
    for text in sent.values():
        for python_text in ("None", "True", "False", "<built-in", "{{", "{%", "['", "[]"):
            assert python_text not in text, f"{case}: {text!r}"
    for text in sent.values():
        assert grammar_ok(text), f"{case}: {text!r}"


# ---- 5. shard failures and unmatched patterns ----------------------------------------------------

def test_shard_failures_are_recorded_and_logged_and_unmatched_patterns_noted(es, index_name, tmp_path, caplog):
    keyword, number = f"{index_name}-a", f"{index_name}-b"
    try:
        create_index(es, keyword, {"user": {"properties": {"id": {"type": "keyword"}}}})
        create_index(es, number, {"user": {"properties": {"id": {"type": "long"}}}})
        add_docs(es, keyword, [{"@timestamp": at(-5), "user": {"id": "root"}}, {"@timestamp": at(-4), "user": {"id": "7"}}])
        add_docs(es, number, [{"@timestamp": at(-5), "user": {"id": 7}}])
        # By default a partial answer fails the run (retried by the daemon); the rule opts in here.
        (tmp_path / "refused").mkdir()
        refused = RuleRunner(es, tmp_path / "refused", rule(f"{index_name}-*", "blacklist",
                                                            "  compare_key: user.id\n  blacklist: [root, '7']\n",
                                                            group_by=None, name="conflict"))
        assert refused.run(T)["result"]["input"]["error"]["type"] == "partial_results_error"
        caplog.clear()
        runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", "blacklist",
                                               "  compare_key: user.id\n  blacklist: [root, '7']\n",
                                               group_by=None, name="conflict", extra="allow_partial_results: true\n"))
        with caplog.at_level(logging.WARNING, logger="watcher.warnings"):
            record = runner.run(T)
        assert matches(record) == {None: 2}           # the long index's shard failed: its 7 is missing
        info = record["result"]["input"]["payload"]["info"]
        (failures,) = record["result"]["warnings"]
        assert (failures["type"], failures["failed_shards"], failures["total_shards"]) == ("partial_results", 1, 2)
        assert failures["reason"].startswith(f"index [{number}]: ")
        assert "root" in failures["reason"] and len(failures["reason"]) <= 300
        assert "note" not in info
        warnings = [r for r in caplog.records if r.name == "watcher.warnings" and r.levelno == logging.WARNING]
        assert len(warnings) == 1 and warnings[0].getMessage().startswith("conflict: ")
        assert "1 of 2 shards failed" in warnings[0].getMessage()
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{keyword},{number}")

    (tmp_path / "none").mkdir()
    nothing = RuleRunner(es, tmp_path / "none", rule(f"{index_name}-none-*", "flatline", "  threshold: 1\n",
                                                     group_by=None))
    nothing_record = nothing.run(T)
    info = nothing_record["result"]["input"]["payload"]["info"]
    assert info["note"] == f"no index matched {index_name}-none-*"
    assert "warnings" not in nothing_record["result"]
    for name, rule_type, params, group_by in [("g", "flatline", "  threshold: 1\n", "host.name"),
                                              ("t", "new_term", "  fields: [user.name]\n", None)]:
        (tmp_path / name).mkdir()
        other = RuleRunner(es, tmp_path / name, rule(f"{index_name}-none-*", rule_type, params, group_by=group_by))
        for minutes in (0, 10):                  # new_term: baseline, then the window
            record = other.run(T + dt.timedelta(minutes=minutes))
            assert matches(record) == {}
            assert record["result"]["input"]["payload"]["info"]["note"] == f"no index matched {index_name}-none-*"
