"""``spike``, ``spike_aggregation`` and ``flatline`` against the real cluster.

Every test writes its own documents around one scheduled time ``S`` (window 10m unless said):
current window ``[S − 10m, S)``, reference (spike) / seed (flatline first run) window
``[S − 20m, S − 10m)``. The expected matches are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt

from tests.integration.ruletype_helpers import (RuleRunner, add_docs, create_index, delivered, iso, match_details,
                                                matches)
from watcher.schedule import next_fire

UTC = dt.timezone.utc
S = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CUR = S - dt.timedelta(minutes=10)      # current window start (11:50)
REF = S - dt.timedelta(minutes=20)      # reference / seed window start (11:40)
LONG_AGO = S - dt.timedelta(hours=1)     # before the reference window (11:00)
MAPPING = {"service": {"type": "keyword"}, "bytes": {"type": "long"}, "code": {"type": "long"},
           "user": {"type": "keyword"}}


def at(minute: int, second: float = 0, base: dt.datetime = S) -> dt.datetime:
    """``base`` shifted by ``minute`` minutes and ``second`` seconds (negative = before)."""
    return base + dt.timedelta(minutes=minute, seconds=second)


def doc(when: dt.datetime, **fields) -> dict:
    return {"@timestamp": iso(when), **fields}


def docs_of(field: str, value, times, **extra) -> list[dict]:
    """One document per time, with ``field: value`` (value None → the field is absent)."""
    fields = {} if value is None else {field: value}
    return [doc(t, **fields, **extra) for t in times]


def rule(index: str, rule_type: str, params: str, group_by: str | None = "service", extra: str = "") -> str:
    lines = [f"name: {rule_type}-test", f"type: {rule_type}", f"index: {index}", "window: 10m", "schedule: 10m"]
    if group_by:
        lines.append(f"group_by: {group_by}")
    lines.append("params:")
    lines += [f"  {line}" for line in params.strip().splitlines()]
    lines += [line for line in extra.strip().splitlines()]
    lines += ["actions:", "  - connector: log"]
    return "\n".join(lines) + "\n"


def payload(record: dict) -> dict:
    return record["result"]["input"]["payload"]


def setup(es, index_name, documents):
    create_index(es, index_name, MAPPING)
    add_docs(es, index_name, documents)


def runner(es, tmp_path, text, name="r"):
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return RuleRunner(es, path, text)


# ---- spike ---------------------------------------------------------------------------------


def test_spike_up_per_group_with_window_boundaries(es, index_name, tmp_path):
    documents = (
        # api: ref = {11:40:00 (ref start, included), 11:45} = 2; cur = {11:50:00 (cur start, so not
        # ref), 11:52..11:56} = 6; 11:39:59.999 is before ref, 12:00:00 is the end (excluded).
        docs_of("service", "api", [LONG_AGO, at(-20, -0.001), REF, at(-15), CUR, at(-8), at(-7), at(-6), at(-5),
                                   at(-4), S])
        # web: ref 2, cur 5 → 2.5 < 3.
        + docs_of("service", "web", [LONG_AGO, at(-18), at(-17), *[at(-9 + i) for i in range(5)]])
        # db: ref 0 (only older data), cur 4 → new data, alert_on_new_data false → quiet.
        + docs_of("service", "db", [LONG_AGO, *[at(-9 + i) for i in range(4)]])
        # no service field: ref 1, cur 3 → ratio 3 → fires as _missing.
        + docs_of("service", None, [LONG_AGO, at(-19), at(-9), at(-8), at(-7)])
    )
    setup(es, index_name, documents)
    r = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 3\nspike_type: up"))
    record = r.run(S)
    assert matches(record) == {"api": 6, "_missing": 3}
    api = match_details(record)["api"]
    assert api["value"] == 3.0
    assert api["details"] == {"spike_ref": 2, "spike_cur": 6, "spike_height": 3, "spike_type": "up",
                              "spike_direction": "up",
                              "reference_window": {"start": "2026-03-02T11:40:00.000Z", "end": "2026-03-02T11:50:00.000Z"}}
    assert len(api["hits"]) == 6 and api["hits"][0]["@timestamp"] == iso(at(-4))  # current window, newest first
    assert match_details(record)["_missing"]["details"]["spike_ref"] == 1
    assert payload(record)["window"] == {"start": "2026-03-02T11:50:00.000Z", "end": "2026-03-02T12:00:00.000Z"}
    assert sorted(group for _, _, group, _ in delivered(record)) == ["_missing", "api"]
    assert delivered(record)[0] == (
        "log", "firing", "api", f"rule 'spike-test': up-spike for api: 6 events against 2: 6 events in {index_name} "
        "between 2026-03-02T11:50:00.000Z and 2026-03-02T12:00:00.000Z for api, against 2 in the 10m before "
        "(spike_height 3, spike_type up).")


def test_spike_both_directions_and_a_group_only_in_the_reference_window(es, index_name, tmp_path):
    documents = (
        docs_of("service", "api", [LONG_AGO, at(-19), at(-18), at(-17), at(-16), at(-9), at(-8)])   # 4 → 2: down
        + docs_of("service", "web", [LONG_AGO, at(-19), at(-18), at(-17), at(-16), at(-9), at(-8), at(-7)])  # 4 → 3
        + docs_of("service", "gone", [LONG_AGO, at(-19), at(-18)])                                   # 2 → 0: down
        + docs_of("service", "burst", [LONG_AGO, at(-19), at(-9), at(-8)])                            # 1 → 2: up
    )
    setup(es, index_name, documents)
    record = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 2\nspike_type: both")).run(S)
    assert matches(record) == {"api": 2, "gone": 0, "burst": 2}
    details = match_details(record)
    assert {g: (m["details"]["spike_direction"], m["value"]) for g, m in details.items()} == {
        "api": ("down", 0.5), "gone": ("down", 0.0), "burst": ("up", 2.0)}
    assert details["gone"]["hits"] == [] and details["gone"]["details"]["spike_ref"] == 2


def test_spike_thresholds_are_floors_on_both_windows(es, index_name, tmp_path):
    def group(name, ref, cur):
        return docs_of("service", name, [LONG_AGO, *[at(-20, 20 * i) for i in range(ref)],
                                         *[at(-10, 20 * i) for i in range(cur)]])

    documents = (group("a", 2, 10)      # up ×5 but ref 2 < threshold_ref 3
                 + group("b", 3, 6)     # up ×2, ref 3, cur 6 ≥ 5 → fires
                 + group("d", 12, 4)    # down ÷3 but cur 4 < threshold_cur 5
                 + group("e", 12, 5))   # down ÷2.4, cur 5 → fires
    setup(es, index_name, documents)
    params = "spike_height: 2\nspike_type: both\nthreshold_ref: 3\nthreshold_cur: 5"
    record = runner(es, tmp_path, rule(index_name, "spike", params)).run(S)
    assert matches(record) == {"b": 6, "e": 5}
    assert match_details(record)["e"]["details"]["spike_direction"] == "down"


def test_spike_new_data_and_a_reference_window_that_predates_the_stream(es, index_name, tmp_path):
    documents = (
        docs_of("service", "new", [at(-9), at(-8), at(-7), at(-6), at(-5)])           # ref 0, cur 5
        + docs_of("service", "young", [at(-15), at(-9), at(-8), at(-7), at(-6), at(-5)])  # began inside ref: 1 → 5
        + docs_of("service", "old", [LONG_AGO, at(-15), at(-9), at(-8), at(-7), at(-6), at(-5)])  # 1 → 5
    )
    setup(es, index_name, documents)
    quiet = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 3\nspike_type: up"), "quiet").run(S)
    assert matches(quiet) == {"old": 5}
    assert payload(quiet)["info"]["new_groups_held"] == ["young"]

    loud = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 3\nspike_type: up\nalert_on_new_data: true"),
                  "loud").run(S)
    assert matches(loud) == {"new": 5, "young": 5, "old": 5}
    assert match_details(loud)["new"]["value"] is None
    assert match_details(loud)["young"]["value"] == 5.0
    assert "new_groups_held" not in payload(loud)["info"]


def test_spike_first_data_on_a_fresh_index_is_not_a_spike(es, index_name, tmp_path):
    # A stream of 4 documents per 10 minutes that begins at 11:46, inside the reference window of S.
    stream = [at(-14), at(-12), at(-9), at(-7), at(-5), at(-3), at(1), at(3), at(5), at(7),
              *[at(10, 60 * i) for i in range(8)]]
    setup(es, index_name, docs_of("service", None, stream))
    r = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 2\nspike_type: up", group_by=None))
    first = r.run(CUR)             # ref [11:30, 11:40) = 0, cur [11:40, 11:50) = 2: new data
    assert matches(first) == {} and "new_groups_held" not in payload(first)["info"]
    second = r.run(S)              # ref 2 (a partial window: the stream began at 11:46), cur 4: ×2, held
    assert matches(second) == {} and payload(second)["info"]["new_groups_held"] == [None]
    assert matches(r.run(at(10))) == {}        # ref 4, cur 4
    assert matches(r.run(at(20))) == {None: 8}  # ref 4, cur 8: a real spike, the stream predates ref


def test_spike_empty_windows(es, index_name, tmp_path):
    setup(es, index_name, [])
    for group_by in ("service", None):
        params = "spike_height: 2\nspike_type: both\nalert_on_new_data: true"
        record = runner(es, tmp_path, rule(index_name, "spike", params, group_by=group_by), f"g{group_by}").run(S)
        assert matches(record) == {}
    # Only the reference window has documents (ungrouped): 3 → 0 is a down-spike.
    add_docs(es, index_name, docs_of("service", "api", [LONG_AGO, at(-19), at(-18), at(-11, 59.999)]))
    down = runner(es, tmp_path, rule(index_name, "spike", "spike_height: 2\nspike_type: down", group_by=None),
                  "down").run(S)
    assert matches(down) == {None: 0}
    assert match_details(down)[None]["details"]["spike_ref"] == 3
    # Only the current window has documents (a new stream, ungrouped): fires only with alert_on_new_data.
    later = at(20)  # cur [12:10, 12:20), ref [12:00, 12:10): empty
    add_docs(es, index_name, docs_of("service", "api", [at(15), at(16)]))
    params = "spike_height: 2\nspike_type: up"
    assert matches(runner(es, tmp_path, rule(index_name, "spike", params, group_by=None), "q").run(later)) == {}
    loud = runner(es, tmp_path, rule(index_name, "spike", params + "\nalert_on_new_data: true", group_by=None),
                  "l").run(later)
    assert matches(loud) == {None: 2} and match_details(loud)[None]["value"] is None


def test_spike_keeps_no_state_and_a_restart_does_not_warm_up(es, index_name, tmp_path):
    # api: 1 per window up to 11:50, then 3 in [11:50, 12:00) and 9 in [12:00, 12:10).
    documents = docs_of("service", "api", [LONG_AGO, at(-15), at(-9), at(-8), at(-7),
                                           *[at(1, 30 * i) for i in range(9)]])
    setup(es, index_name, documents)
    text = rule(index_name, "spike", "spike_height: 3\nspike_type: up")
    first = runner(es, tmp_path, text)
    assert matches(first.run(S)) == {"api": 3}           # the very first run already compares: 1 → 3
    assert first.state["type_state"] == {"type": "spike", "data": {}}
    restarted = runner(es, tmp_path, text, "restarted")
    restarted.state = first.state
    assert matches(restarted.run(at(10))) == {"api": 9}  # 3 → 9, right after the restart


def test_spike_cron_schedule_in_paris_follows_the_paris_instant(es, index_name, tmp_path):
    text = rule(index_name, "spike", "spike_height: 3\nspike_type: up", group_by=None).replace(
        "window: 10m\nschedule: 10m", "window: 1h\nschedule: {cron: '0 9 * * *', timezone: Europe/Paris}")
    paris = dt.timezone(dt.timedelta(hours=1))  # CET in January
    day = dt.datetime(2026, 1, 15, tzinfo=paris)
    documents = [doc(day.replace(hour=5)),                                   # before the reference window
                 doc(day.replace(hour=7)),                                   # ref [07:00, 08:00) Paris: 1
                 doc(day.replace(hour=8)), doc(day.replace(hour=8, minute=30)),
                 doc(day.replace(hour=8, minute=59, second=59)),             # cur [08:00, 09:00) Paris: 3
                 doc(day.replace(hour=9))]                                   # 09:00 Paris: the end, excluded
    setup(es, index_name, documents)
    r = runner(es, tmp_path, text)
    scheduled = next_fire(r.watch.trigger, dt.datetime(2026, 1, 14, 12, 0, tzinfo=UTC))
    assert scheduled == dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    record = r.run(scheduled)
    assert payload(record)["window"] == {"start": "2026-01-15T07:00:00.000Z", "end": "2026-01-15T08:00:00.000Z"}
    assert matches(record) == {None: 3}
    assert match_details(record)[None]["details"]["spike_ref"] == 1
    # Had the cron been read in UTC (09:00Z), the windows would be [09:00, 10:00) Paris (1 document)
    # against [08:00, 09:00) Paris (3): no up-spike.
    assert matches(runner(es, tmp_path, text, "utc").run(dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC))) == {}


# ---- spike_aggregation ---------------------------------------------------------------------


def test_spike_aggregation_sum_per_group(es, index_name, tmp_path):
    def group(name, ref_bytes, cur_bytes):
        return ([doc(LONG_AGO, service=name, bytes=1)]
                + [doc(at(-19, i), service=name, bytes=b) for i, b in enumerate(ref_bytes)]
                + [doc(at(-9, i), service=name, bytes=b) for i, b in enumerate(cur_bytes)])

    documents = (
        group("a", [100], [300]) + [doc(REF, service="a", bytes=100), doc(CUR, service="a", bytes=100),
                                    doc(S, service="a", bytes=10000)]   # ref 200 → cur 400 (12:00 excluded): up ×2
        + group("b", [100, 100], [150])                                  # 200 → 150
        + group("c", [400], [])                                          # 400 → 0 (only in ref): down
        + group("d", [100], [50])                                        # 100 → 50: down ÷2
        + [doc(LONG_AGO, bytes=1), doc(at(-19), bytes=10), doc(at(-9), bytes=20)]  # _missing 10 → 20: up
    )
    setup(es, index_name, documents)
    params = "spike_height: 2\nspike_type: both\nmetric_agg_key: bytes\nmetric_agg_type: sum"
    record = runner(es, tmp_path, rule(index_name, "spike_aggregation", params)).run(S)
    assert matches(record) == {"a": 2, "c": 0, "d": 1, "_missing": 1}
    details = match_details(record)
    assert {g: (m["details"]["spike_ref"], m["details"]["spike_cur"], m["details"]["spike_direction"], m["value"])
            for g, m in details.items()} == {"a": (200.0, 400.0, "up", 2.0), "c": (400.0, 0.0, "down", 0.0),
                                            "d": (100.0, 50.0, "down", 0.5), "_missing": (10.0, 20.0, "up", 2.0)}
    assert details["a"]["details"]["ref_count"] == 2 and details["a"]["details"]["cur_count"] == 2


def test_spike_aggregation_avg_with_metric_thresholds(es, index_name, tmp_path):
    documents = (
        [doc(LONG_AGO, service=s, bytes=1) for s in "abcd"]
        + [doc(at(-19), service="a", bytes=50), doc(at(-18), service="a", bytes=150), doc(at(-9), service="a", bytes=300)]
        + [doc(at(-19), service="b", bytes=50), doc(at(-18), service="b", bytes=150), doc(at(-9), service="b", bytes=290)]
        + [doc(at(-19), service="c", bytes=100)]                           # no current value: avg is null
        + [doc(at(-19), service="d", bytes=20), doc(at(-9), service="d", bytes=400)]
    )
    setup(es, index_name, documents)
    params = ("spike_height: 2.5\nspike_type: both\nmetric_agg_key: bytes\nmetric_agg_type: avg\n"
              "threshold_ref: 50.5\nthreshold_cur: 300")
    record = runner(es, tmp_path, rule(index_name, "spike_aggregation", params)).run(S)
    # a: 100 → 300 (×3, cur ≥ 300); b: 100 → 290 < threshold_cur; c: cur null; d: ref 20 < 50.5.
    assert matches(record) == {"a": 1}
    assert match_details(record)["a"]["value"] == 3.0


def test_spike_aggregation_cardinality_new_data_and_empty_index(es, index_name, tmp_path):
    setup(es, index_name, [])
    params = "spike_height: 2\nspike_type: both\nmetric_agg_key: user\nmetric_agg_type: cardinality"
    assert matches(runner(es, tmp_path, rule(index_name, "spike_aggregation", params + "\nalert_on_new_data: true",
                                             group_by=None), "empty").run(S)) == {}
    add_docs(es, index_name, [doc(at(-9), user="u1"), doc(at(-8), user="u2"), doc(at(-7), user="u2"),
                              doc(at(-6), user="u3")])
    assert matches(runner(es, tmp_path, rule(index_name, "spike_aggregation", params, group_by=None),
                          "quiet").run(S)) == {}
    loud = runner(es, tmp_path, rule(index_name, "spike_aggregation", params + "\nalert_on_new_data: true",
                                     group_by=None), "loud").run(S)
    assert matches(loud) == {None: 4}
    assert match_details(loud)[None]["details"]["spike_cur"] == 3 and match_details(loud)[None]["value"] is None


# ---- flatline ------------------------------------------------------------------------------


def test_flatline_ungrouped_first_run_and_window_boundaries(es, index_name, tmp_path):
    # 11:49:59.999 is before the window, 11:50:00 its start (counted), 12:00:00 its end (not counted).
    setup(es, index_name, [doc(LONG_AGO), doc(at(-10, -0.001)), doc(CUR), doc(at(-1)), doc(S)])
    text = rule(index_name, "flatline", "threshold: 3", group_by=None)
    record = runner(es, tmp_path, text).run(S)
    assert matches(record) == {None: 2}
    assert match_details(record)[None]["details"] == {"threshold": 3, "last_seen": "2026-03-02T11:59:00.000Z"}
    # An empty window on the first run: the stream existed before (11:00 is the newest before 12:10).
    quiet = runner(es, tmp_path, text, "quiet").run(at(20))
    assert matches(quiet) == {None: 0}
    assert match_details(quiet)[None]["details"]["last_seen"] == "2026-03-02T12:00:00.000Z"
    assert payload(quiet)["info"]["history_checked"] is True
    assert matches(runner(es, tmp_path, rule(index_name, "flatline", "threshold: 2", group_by=None), "ok2").run(S)) == {}


def test_flatline_ungrouped_stream_that_never_existed_then_appears_then_stops(es, index_name, tmp_path):
    setup(es, index_name, [])
    text = rule(index_name, "flatline", "threshold: 2", group_by=None)
    r = runner(es, tmp_path, text)
    empty = r.run(S)
    assert matches(empty) == {}                                   # nothing ever: no alert
    assert payload(empty)["info"] == {"history_checked": True, "known_keys": 0}
    assert r.state["type_state"]["data"] == {}
    add_docs(es, index_name, [doc(at(5))])                        # one document in [12:00, 12:10)
    assert matches(r.run(at(10))) == {None: 1}
    assert r.state["type_state"]["data"] == {"*": "2026-03-02T12:05:00.000Z"}
    silent = r.run(at(20))                                        # [12:10, 12:20): nothing
    assert matches(silent) == {None: 0} and "history_checked" not in payload(silent)["info"]
    restarted = runner(es, tmp_path, text, "restarted")
    restarted.state = r.state
    again = restarted.run(at(30))
    assert matches(again) == {None: 0} and "history_checked" not in payload(again)["info"]


def test_flatline_grouped_first_run_seeds_known_keys_from_the_window_before(es, index_name, tmp_path):
    documents = (
        docs_of("service", "a", [REF, at(-9), at(-8), at(-7)])          # seed (11:40:00 included), cur 3
        + docs_of("service", "b", [at(-19), at(-18), at(-9)])           # seed, cur 1 → fires
        + docs_of("service", "c", [at(-10, -1)])                        # seed (11:49:59), cur 0 → fires with 0
        + docs_of("service", "d", [LONG_AGO])                           # before the seed window: never fires
        + docs_of("service", "e", [at(-5)])                             # new in the window: learnt
        + docs_of("service", "f", [CUR])                                # 11:50:00 is the window, not the seed
        + docs_of("service", "g", [at(-20, -1)])                        # 11:39:59: before the seed window
        + docs_of("service", "h", [at(-15), S])                         # seed; 12:00:00 is outside: cur 0
        + docs_of("service", None, [at(-12)])                           # _missing: seed, cur 0
    )
    setup(es, index_name, documents)
    r = runner(es, tmp_path, rule(index_name, "flatline", "threshold: 2"))
    record = r.run(S)
    assert matches(record) == {"b": 1, "c": 0, "h": 0, "_missing": 0}
    assert match_details(record)["c"]["details"] == {"threshold": 2, "last_seen": "2026-03-02T11:49:59.000Z"}
    assert match_details(record)["b"]["details"]["last_seen"] == "2026-03-02T11:51:00.000Z"
    titles = {group: text.split(": ")[1] for _, _, group, text in delivered(record)}
    assert titles == {"b": "only 1 event in 10m for b", "c": "no events in 10m for c", "h": "no events in 10m for h",
                      "_missing": "no events in 10m for _missing"}
    assert len(match_details(record)["b"]["hits"]) == 1
    info = payload(record)["info"]
    assert info["seeded"] is True and info["seeded_keys"] == 5
    assert sorted(info["learnt"]) == ["e", "f"] and info["known_keys"] == 7
    assert sorted(r.state["type_state"]["data"]) == ["_missing", "a", "b", "c", "e", "f", "h"]
    assert r.state["type_state"]["data"]["a"] == "2026-03-02T11:53:00.000Z"


def test_flatline_grouped_state_across_a_restart_and_forget_keys(es, index_name, tmp_path):
    documents = (docs_of("service", "x", [at(-15), at(-5)])              # seed, run 1; quiet after 12:00
                 + docs_of("service", "y", [at(-15), at(-5), at(5), at(15)])
                 + docs_of("service", "z", [at(-5)])                     # learnt on run 1; quiet after
                 + docs_of("service", "w", [LONG_AGO]))                  # ancient: never known
    setup(es, index_name, documents)
    for forget in (False, True):
        text = rule(index_name, "flatline", f"threshold: 1\nforget_keys: {str(forget).lower()}")
        first = runner(es, tmp_path, text, f"first{forget}")
        assert matches(first.run(S)) == {}
        restarted = runner(es, tmp_path, text, f"restarted{forget}")
        restarted.state = first.state
        second = restarted.run(at(10))
        assert matches(second) == {"x": 0, "z": 0}                       # no seeding again, no flood (w)
        assert "seeded" not in payload(second)["info"]
        third = restarted.run(at(20))
        assert matches(third) == ({} if forget else {"x": 0, "z": 0})  # y has 12:15
        if forget:
            assert sorted(payload(second)["info"]["forgotten"]) == ["x", "z"]
            assert sorted(restarted.state["type_state"]["data"]) == ["y"]


def test_flatline_forgets_keys_not_seen_for_a_week(es, index_name, tmp_path):
    setup(es, index_name, docs_of("service", "live", [at(-15), at(-5)]))
    r = runner(es, tmp_path, rule(index_name, "flatline", "threshold: 1"))
    assert matches(r.run(S)) == {}
    data = r.state["type_state"]["data"]
    data["ancient"] = "2026-02-23T12:09:59.999Z"   # 7 days + 1 ms before the next window end (12:10)
    data["recent"] = "2026-02-23T12:10:00.000Z"    # exactly 7 days: still known
    record = r.run(at(10))
    assert matches(record) == {"live": 0, "recent": 0}
    assert payload(record)["info"]["forgotten"] == ["ancient"]
    assert "ancient" not in r.state["type_state"]["data"]


def test_flatline_numeric_keys_read_the_same_with_and_without_documents(es, index_name, tmp_path):
    # 200 and 201 (3 documents each, new) are the groups the terms aggregation keeps (max_groups 2);
    # the counts of the known keys 500 and 404 come from the terms restricted to them (include on a
    # long field).
    setup(es, index_name, [doc(at(-15), code=500), doc(at(-15), code=404), doc(at(-5), code=404),
                           *[doc(at(-4), code=c) for c in (200, 201) for _ in range(3)]])
    text = rule(index_name, "flatline", "threshold: 2", group_by="code", extra="max_groups: 2")
    record = runner(es, tmp_path, text).run(S)
    assert matches(record) == {"500": 0, "404": 1}


def test_flatline_quiet_key_is_not_lost_behind_busier_groups(es, index_name, tmp_path):
    busy = [doc(at(-9, i), service=f"busy{n}") for n in range(3) for i in range(3)]
    setup(es, index_name, busy + [doc(at(-15), service="quiet"), doc(at(-5), service="quiet")])
    text = rule(index_name, "flatline", "threshold: 2", extra="max_groups: 2")
    # The terms aggregation keeps the 2 busiest groups; quiet (1 document) still gets its real count.
    assert matches(runner(es, tmp_path, text).run(S)) == {"quiet": 1}


def test_flatline_cron_schedule_in_paris(es, index_name, tmp_path):
    text = rule(index_name, "flatline", "threshold: 3", group_by=None).replace(
        "window: 10m\nschedule: 10m", "window: 1h\nschedule: {cron: '0 9 * * *', timezone: Europe/Paris}")
    paris = dt.timezone(dt.timedelta(hours=1))
    day = dt.datetime(2026, 1, 15, tzinfo=paris)
    setup(es, index_name, [doc(day.replace(hour=7, minute=59)), doc(day.replace(hour=8)),
                           doc(day.replace(hour=8, minute=30)), doc(day.replace(hour=9))])
    r = runner(es, tmp_path, text)
    scheduled = next_fire(r.watch.trigger, dt.datetime(2026, 1, 15, 7, 30, tzinfo=UTC))
    assert scheduled == dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    record = r.run(scheduled)
    # [08:00, 09:00) Paris holds 08:00 and 08:30 (07:59 before, 09:00 the excluded end).
    assert matches(record) == {None: 2}
    assert match_details(record)[None]["details"]["last_seen"] == "2026-01-15T07:30:00.000Z"
