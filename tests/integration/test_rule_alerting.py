"""Rule types any and frequency, and the alert features every rule has (recovery, silence, realert,
exponential realert, aggregation, top counts, include), on the real cluster. Expected alerts are
worked out by hand from each test's own documents."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.integration.ruletype_helpers import UTC, RuleRunner, add_docs, create_index, delivered, iso, matches

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
PARIS = dt.timezone(dt.timedelta(hours=1))  # Europe/Paris in November (CET)


def minutes(n: float) -> dt.datetime:
    return T + dt.timedelta(minutes=n)


def doc(when: dt.datetime, **fields) -> dict:
    return {"@timestamp": iso(when), **fields}


@pytest.fixture
def events(es, index_name):
    create_index(es, index_name, {"host": {"type": "keyword"}, "user": {"type": "keyword"},
                                  "status": {"type": "keyword"}})
    return index_name


def rule(index: str, body: str, **top) -> str:
    head = "\n".join(f"{key}: {value}" for key, value in {"name": "r", "index": index, "window": "5m", **top}.items())
    return head + "\n" + body


# ---- any ------------------------------------------------------------------------------------------

def test_any_counts_each_group_and_the_missing_group_in_the_half_open_window(es, events, tmp_path):
    add_docs(es, events, [
        doc(minutes(-5), host="a"),             # exactly on the start: in
        doc(minutes(-3), host="a"),
        doc(minutes(-1), host="b"),
        doc(minutes(-2)),                       # no host: the _missing group
        doc(minutes(0), host="c"),              # exactly on the end: the next window's
        doc(minutes(-5.01), host="d"),          # just before the start: out
    ])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\ngroup_by: host\nactions: [{connector: log}]\n"))
    record = runner.run(T)
    assert matches(record) == {"a": 2, "b": 1, "_missing": 1}
    assert record["state"] == "executed"
    sent = delivered(record)
    assert sorted(group for _, _, group, _ in sent) == ["_missing", "a", "b"]
    text = next(t for _, _, g, t in sent if g == "a")
    assert text.startswith("rule 'r' matched 2 documents: 2 documents matched in ")
    # The next window holds only c (on its start).
    assert matches(runner.run(minutes(5))) == {"c": 1}


def test_any_with_an_empty_window_is_not_met_and_sends_nothing(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(-30), host="a")])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\nactions: [{connector: log}]\n"))
    record = runner.run(T)
    assert matches(record) == {}
    assert record["state"] == "execution_not_needed"
    assert delivered(record) == []


def test_any_window_follows_a_paris_cron_schedule(es, events, tmp_path):
    # 09:00 in Paris is 08:00 UTC; the window of 5m is [08:55Z, 09:00Z) = [09:55+01:00, 10:00+01:00).
    paris_nine = dt.datetime(2026, 11, 30, 9, 0, tzinfo=PARIS)
    add_docs(es, events, [
        doc(dt.datetime(2026, 11, 30, 8, 57, tzinfo=PARIS), host="in"),      # 07:57Z: well before the window
        doc(dt.datetime(2026, 11, 30, 8, 56, tzinfo=PARIS), host="in"),
        doc(dt.datetime(2026, 11, 30, 8, 58, tzinfo=UTC), host="utc"),      # 09:58+01:00: after the window
    ])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\ngroup_by: host\nactions: [{connector: log}]\n",
                                           schedule="{cron: '0 9 * * *', timezone: Europe/Paris}"))
    record = runner.run(paris_nine.astimezone(UTC))
    assert matches(record) == {"in": 2}
    assert record["result"]["input"]["payload"]["window"] == {"start": "2026-11-30T07:55:00.000Z",
                                                              "end": "2026-11-30T08:00:00.000Z"}


# ---- frequency ------------------------------------------------------------------------------------

def test_frequency_fires_for_groups_with_at_least_num_events(es, events, tmp_path):
    add_docs(es, events, [
        *[doc(minutes(-4 + i), host="a") for i in range(3)],   # 3 → fires (num_events 3)
        *[doc(minutes(-4 + i), host="b") for i in range(2)],   # 2 → no
        *[doc(minutes(-3 + i)) for i in range(3)],             # 3 without host → _missing fires
        doc(minutes(0), host="b"),                             # on the end: not this window
    ])
    runner = RuleRunner(es, tmp_path, rule(events, "type: frequency\ngroup_by: host\nparams: {num_events: 3}\n"
                                                   "actions: [{connector: log}]\n"))
    record = runner.run(T)
    assert matches(record) == {"a": 3, "_missing": 3}
    (tmp_path / "ungrouped").mkdir()
    ungrouped = RuleRunner(es, tmp_path / "ungrouped",
                           rule(events, "type: frequency\nparams: {num_events: 8}\nactions: [{connector: log}]\n"))
    assert matches(ungrouped.run(T)) == {None: 8}
    assert matches(ungrouped.run(minutes(5))) == {}  # 1 document (host b at T): below 8


def test_frequency_counts_afresh_after_a_match_with_reset_after_match_and_not_without(es, events, tmp_path):
    # a: three events, then one more; b: two events, then three more. Window 10m, runs every minute.
    add_docs(es, events, [doc(minutes(m), host="a") for m in (1, 2, 3, 6)] +
                         [doc(minutes(m), host="b") for m in (1, 2, 5, 6, 7)])
    body = "type: frequency\ngroup_by: host\nparams: {num_events: 3%s}\nactions: [{connector: log}]\n"
    (tmp_path / "native").mkdir()
    (tmp_path / "ea2").mkdir()
    native = RuleRunner(es, tmp_path / "native", rule(events, body % "", window="10m"))
    afresh = RuleRunner(es, tmp_path / "ea2", rule(events, body % ", reset_after_match: true", window="10m"))
    ticks = [minutes(m) for m in (4, 5, 6, 7, 8)]
    native_runs = [matches(native.run(t)) for t in ticks]
    afresh_runs = [matches(afresh.run(t)) for t in ticks]
    # Without the reset every window that still holds three events fires again.
    assert native_runs == [{"a": 3}, {"a": 3}, {"a": 3, "b": 3}, {"a": 4, "b": 4}, {"a": 4, "b": 5}]
    # With it (ElastAlert2's way), a match's events are not counted again: a fires once (its 4th
    # event alone is not enough), b fires at 10:06 on its 3rd event and not again on the next two.
    assert afresh_runs == [{"a": 3}, {}, {"b": 3}, {}, {}]
    assert afresh.state["type_state"]["data"]["counted_until"] == {"a": "2026-11-29T10:03:00.000Z",
                                                                   "b": "2026-11-29T10:05:00.000Z"}


def test_frequency_window_follows_a_paris_cron_schedule_and_an_empty_window_sends_nothing(es, events, tmp_path):
    # 09:00 in Paris = 08:00Z; window 1h: [07:00Z, 08:00Z) = [08:00+01:00, 09:00+01:00).
    add_docs(es, events, [
        doc(dt.datetime(2026, 11, 30, 8, 0, tzinfo=PARIS), host="a"),     # on the start: in
        doc(dt.datetime(2026, 11, 30, 8, 30, tzinfo=PARIS), host="a"),
        doc(dt.datetime(2026, 11, 30, 9, 0, tzinfo=PARIS), host="a"),     # on the end: out
        doc(dt.datetime(2026, 11, 30, 8, 30, tzinfo=UTC), host="a"),      # 09:30 Paris: out
    ])
    body = "type: frequency\ngroup_by: host\nparams: {num_events: 2}\nactions: [{connector: log}]\n"
    runner = RuleRunner(es, tmp_path, rule(events, body, window="1h",
                                           schedule="{cron: '0 9 * * *', timezone: Europe/Paris}"))
    record = runner.run(dt.datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert matches(record) == {"a": 2}
    assert [g for _, _, g, _ in delivered(record)] == ["a"]
    empty = runner.run(dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC))   # the next day: no documents
    assert matches(empty) == {} and empty["state"] == "execution_not_needed" and delivered(empty) == []


# ---- recovery -------------------------------------------------------------------------------------

def test_threshold_rule_recovers_per_group_with_how_long_it_fired(es, events, tmp_path):
    add_docs(es, events, [
        *[doc(minutes(-4 + i * 0.5), host="a") for i in range(4)],    # a: 4 in [T-5, T)
        *[doc(minutes(-3 + i * 0.5), host="b") for i in range(4)],    # b: 4 in [T-5, T)
        *[doc(minutes(1 + i * 0.5), host="b") for i in range(4)],     # b: 4 more in [T, T+5): still firing
    ])
    body = """\
group_by: host
condition: {count: {gte: 3}}
actions:
  - connector: log
    on: [firing, recovered]
  - connector: log
"""
    runner = RuleRunner(es, tmp_path, rule(events, body))
    first = runner.run(T)
    assert sorted((a, e, g) for a, e, g, _ in delivered(first)) == [
        ("log", "firing", "a"), ("log", "firing", "b"), ("log-2", "firing", "a"), ("log-2", "firing", "b")]
    second = runner.run(minutes(5))          # a has no documents any more: it recovered
    assert second["result"]["rule"]["recovered"] == ["a"]
    assert sorted((a, e, g) for a, e, g, _ in delivered(second)) == [
        ("log", "firing", "b"), ("log", "recovered", "a"), ("log-2", "firing", "b")]
    recovered_text = next(t for _, e, _, t in delivered(second) if e == "recovered")
    assert recovered_text == ("rule 'r' recovered for a: Rule r for a no longer matches "
                              "(fired for 5m, since 2026-11-29T10:00:00.000Z).")
    third = runner.run(minutes(10))          # nothing matches: the condition is not met, b recovers
    assert third["state"] == "execution_not_needed"
    assert [(a, e, g) for a, e, g, _ in delivered(third)] == [("log", "recovered", "b")]
    assert "fired for 10m" in delivered(third)[0][3]
    fourth = runner.run(minutes(15))         # nothing fired before: nothing to recover
    assert delivered(fourth) == [] and runner.state["firing"] == {}


def test_recovered_title_and_message_are_the_rule_s_own_when_given(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(-1), host="a")])
    body = """\
type: any
group_by: host
title: "errors on {{ group }}"
recovered_title: "{{ group }} is {{ status }}"
recovered_message: "quiet again after {{ fired_for }}"
actions: [{connector: log, on: [firing, recovered]}]
"""
    runner = RuleRunner(es, tmp_path, rule(events, body))
    assert [t.split(":")[0] for _, _, _, t in delivered(runner.run(T))] == ["errors on a"]
    assert [t for _, _, _, t in delivered(runner.run(minutes(10)))] == ["a is recovered: quiet again after 10m"]


def test_ungrouped_typed_rule_recovers_once(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(-1), host="a")])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\nactions: [{connector: log, on: recovered}]\n"))
    first = runner.run(T)
    assert first["state"] == "executed" and delivered(first) == []   # recovered-only action: nothing yet
    assert first["result"]["actions"][0]["status"] == "condition_failed"
    second = runner.run(minutes(5))
    assert [(e, g) for _, e, g, _ in delivered(second)] == [("recovered", None)]
    assert delivered(second)[0][3] == ("rule 'r' recovered: Rule r no longer matches "
                                       "(fired for 5m, since 2026-11-29T10:00:00.000Z).")


# ---- silence --------------------------------------------------------------------------------------

def test_silence_of_one_key_and_of_the_whole_rule(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(-1), host="a"), doc(minutes(-1), host="b")])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\ngroup_by: host\nactions: [{connector: log}]\n"))
    runner.silences = {"a": iso(minutes(30))}
    record = runner.run(T)
    assert [g for _, _, g, _ in delivered(record)] == ["b"]
    assert record["result"]["rule"]["silenced"] == ["a"]
    runner.silences = {"*": iso(minutes(30))}
    record = runner.run(T)
    assert delivered(record) == []
    assert record["result"]["actions"][0]["reason"] == "the rule is silenced for every matching group (watcher silence)"
    runner.silences = {"*": iso(minutes(1))}   # ends exactly at the run: no longer silenced
    assert sorted(g for _, _, g, _ in delivered(runner.run(minutes(1)))) == ["a", "b"]


# ---- realert ---------------------------------------------------------------------------------------

def test_realert_keeps_a_key_quiet_for_the_period(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(m - 0.5), host="a") for m in range(0, 12)])  # one event every minute
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\ngroup_by: host\nrealert: 5m\n"
                                                   "actions: [{connector: log}]\n", window="1m"))
    sent = [m for m in range(0, 12) if delivered(runner.run(minutes(m)))]
    assert sent == [0, 5, 10]
    assert runner.records[1]["result"]["rule"]["realert_suppressed"] == ["a"]


def test_exponential_realert_doubles_while_firing_and_starts_over_after_a_quiet_spell(es, events, tmp_path):
    firing_minutes = [*range(0, 17), *range(40, 42)]  # fires every minute 0..16, quiet, fires again at 40
    add_docs(es, events, [doc(minutes(m - 0.5), host="a") for m in firing_minutes])
    runner = RuleRunner(es, tmp_path, rule(events, "type: any\ngroup_by: host\nrealert: 1m\n"
                                                   "exponential_realert: 8m\nactions: [{connector: log}]\n",
                                           window="1m"))
    sent = [m for m in [*range(0, 17), 40, 41] if delivered(runner.run(minutes(m)))]
    # waits 1m, 2m, 4m, 8m (the cap), 8m: alerts at 0, 1, 3, 7, 15; after the quiet spell the wait is 1m again.
    assert sent == [0, 1, 3, 7, 15, 40, 41]
    assert runner.state["realert"]["a"] == {"until": "2026-11-29T10:43:00.000Z", "exponent": 1}


# ---- aggregation, top counts, include ----------------------------------------------------------------

def test_aggregation_sends_one_summary_per_key_when_the_period_ends(es, events, tmp_path):
    add_docs(es, events, [
        doc(minutes(-0.5), host="a", user="root"), doc(minutes(-0.4), host="a", user="root"),
        doc(minutes(0.5), host="b", user="root"),
        doc(minutes(1.5), host="a", user="admin"),
        doc(minutes(3.5), host="c", user="admin"),
    ])
    body = """\
type: any
group_by: host
aggregation: {period: 3m, key: user, summary_table_fields: [host, user]}
actions: [{connector: log}]
"""
    runner = RuleRunner(es, tmp_path, rule(events, body, window="1m", schedule="1m"))
    assert delivered(runner.run(T)) == []                     # a/root collected; root's summary due at T+3m
    assert runner.records[0]["result"]["rule"]["aggregation_pending"] == 1
    assert delivered(runner.run(minutes(1))) == []            # b/root
    assert delivered(runner.run(minutes(2))) == []            # a/admin: admin's summary due at T+5m
    third = runner.run(minutes(3))                            # root's period is over; nothing new matched
    assert third["state"] == "execution_not_needed"
    (summary,) = delivered(third)
    assert summary[2] == "root"
    assert summary[3] == ("rule 'r': 2 alerts for root since 2026-11-29T10:00:00.000Z: 2 alerts (3 documents) "
                          "collected since 2026-11-29T10:00:00.000Z.\n\n"
                          "| host | user | count |\n"
                          "|------|------|-------|\n"
                          "| a    | root | 2     |\n"
                          "| b    | root | 1     |")
    assert delivered(runner.run(minutes(4))) == []            # c/admin joins admin's pending summary
    (admin,) = delivered(runner.run(minutes(5)))
    assert admin[2] == "admin" and "| a    | admin | 1     |" in admin[3] and "| c    | admin | 1     |" in admin[3]
    assert runner.state["aggregation"] == {}


def test_top_counts_and_include(es, events, tmp_path):
    add_docs(es, events, [
        *[doc(minutes(-1), host="a", user="root", status="x") for _ in range(3)],
        *[doc(minutes(-2), host="a", user="admin", status="x") for _ in range(2)],
        doc(minutes(-2), host="a", user="guest", status="x"),
        doc(minutes(-2), host="b", user="nobody", status="x"),
    ])
    body = """\
type: any
group_by: host
top_count_keys: [user]
top_count_number: 2
include: [user]
hits: 2
message: "{% for item in top_counts.user %}{{ item.key }}={{ item.count }} {% endfor %}/ {{ hits | tojson }}"
actions: [{connector: log}]
"""
    runner = RuleRunner(es, tmp_path, rule(events, body))
    sent = {g: t for _, _, g, t in delivered(runner.run(T))}
    assert sent["a"].endswith(': root=3 admin=2 / [{"user": "root"}, {"user": "root"}]')
    assert sent["b"].endswith(': nobody=1 / [{"user": "nobody"}]')


def test_summary_table_counts_each_document_not_the_first_sample_of_each_alert(es, events, tmp_path):
    # One ungrouped alert per minute holding several users: the table must count documents per user.
    add_docs(es, events, [
        doc(minutes(-0.5), user="test"), doc(minutes(-0.4), user="test"), doc(minutes(-0.3), user="admin"),
        doc(minutes(0.5), user="admin"), doc(minutes(0.6), user="guest"), doc(minutes(0.7), user="test"),
        doc(minutes(0.8)),                                                    # no user: an empty cell
    ])
    body = """\
type: any
aggregation: {period: 2m, summary_table_fields: [user]}
actions: [{connector: log}]
"""
    runner = RuleRunner(es, tmp_path, rule(events, body, window="1m", schedule="1m"))
    assert delivered(runner.run(T)) == [] and delivered(runner.run(minutes(1))) == []
    (summary,) = delivered(runner.run(minutes(2)))
    assert summary[3].endswith("| user  | count |\n"
                               "|-------|-------|\n"
                               "| test  | 3     |\n"
                               "| admin | 2     |\n"
                               "|       | 1     |\n"
                               "| guest | 1     |")
    assert "2 alerts (7 documents)" in summary[3]


def test_top_counts_on_a_text_field_keeps_the_alert_and_says_why(es, index_name, tmp_path):
    create_index(es, index_name, {"message": {"type": "text"}, "user": {"type": "keyword"}})
    add_docs(es, index_name, [doc(minutes(-1), message="login failed", user="root")])
    body = """\
type: any
top_count_keys: [message, user]
message: "{{ top_counts | tojson }}"
actions: [{connector: log}]
"""
    runner = RuleRunner(es, tmp_path, rule(index_name, body))
    record = runner.run(T)
    (sent,) = delivered(record)
    assert sent[3].endswith(': {"message": [], "user": [{"key": "root", "count": 1}]}')
    (note,) = record["result"]["rule"]["notes"]
    assert note.startswith("top_count_keys: message could not be counted: ")
    assert "set fielddata=true on [message]" in note  # the cluster's reason (worded differently by each product)
    assert note.endswith("(a text field: count its keyword sub-field, e.g. message.keyword)")


def test_new_term_sends_one_alert_per_new_term(es, events, tmp_path):
    add_docs(es, events, [doc(minutes(-3), user="alice"),                       # learned by the first run
                          doc(minutes(2), user="bob"), doc(minutes(3), user="carol"), doc(minutes(4), user="alice")])
    runner = RuleRunner(es, tmp_path, rule(events, "type: new_term\nparams: {fields: [user]}\n"
                                                   "actions: [{connector: log}]\n"))
    assert delivered(runner.run(T)) == []
    assert sorted(g for _, _, g, _ in delivered(runner.run(minutes(5)))) == ["bob", "carol"]


def test_backtest_table_of_a_typed_rule_shows_matches_recoveries_and_realert_holds(es_cluster, es, events, tmp_path):
    from click.testing import CliRunner

    from watcher.cli import main

    add_docs(es, events, [doc(minutes(m - 0.5), host="a") for m in (1, 2, 3)])  # fires at T+1m … T+3m
    (tmp_path / "connectors.yaml").write_text("connectors:\n  log:\n    type: logging\n")
    (tmp_path / "r.yaml").write_text(rule(events, "type: any\ngroup_by: host\nrealert: 2m\n"
                                                  "actions: [{connector: log, on: [firing, recovered]}]\n",
                                          window="1m", schedule="1m"))
    result = CliRunner().invoke(main, ["dry-run", str(tmp_path / "r.yaml"), "--from", iso(T), "--to", iso(minutes(5))],
                                env=es_cluster.env(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "r: 6 scheduled times, condition met at 3, alerts sent at 3, failed at 0"
    assert lines[1].split() == ["scheduled", "time", "state", "matches", "alerts"]
    assert [line.split(None, 3) for line in lines[2:]] == [
        ["2026-11-29T10:01:00.000Z", "executed", "1", "a"],
        ["2026-11-29T10:02:00.000Z", "executed", "1", "0; held by realert: a"],
        ["2026-11-29T10:03:00.000Z", "executed", "1", "a"],
        ["2026-11-29T10:04:00.000Z", "execution_not_needed", "0", "0; recovered: a"],
    ]
