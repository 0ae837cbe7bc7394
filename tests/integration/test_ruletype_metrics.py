"""``cardinality``, ``metric_aggregation`` and ``percentage_match`` against the real cluster.

Every test writes its own documents around one window and asserts what fires, worked out by hand
from those documents. The window of a run at SCHEDULED with ``window: 1h`` is [09:37, 10:37) UTC —
not on a round hour, so bucket alignment and the half-open bounds are both visible.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.integration.ruletype_helpers import (UTC, RuleRunner, add_docs, create_index, delivered, iso,
                                                match_details, matches)
from watcher.schedule import next_fire

SCHEDULED = dt.datetime(2026, 3, 10, 10, 37, tzinfo=UTC)
START = SCHEDULED - dt.timedelta(hours=1)   # 09:37:00Z, inside the window
END = SCHEDULED                             # 10:37:00Z, outside (next run's)
MS = dt.timedelta(milliseconds=1)


def at(minutes: float) -> dt.datetime:
    """START + minutes."""
    return START + dt.timedelta(minutes=minutes)


def rule(index: str, rule_type: str, params: str, extra: str = "") -> str:
    """A rule YAML over ``index`` with ``window: 1h``; ``params`` and ``extra`` are YAML lines."""
    params = "\n".join("  " + line for line in params.strip().splitlines())
    return (f"name: r\ntype: {rule_type}\nindex: {index}\nwindow: 1h\nschedule: 1h\n{extra}"
            f"params:\n{params}\nactions:\n  - connector: log\n")


def run_once(es, tmp_path, text: str, when: dt.datetime = SCHEDULED) -> dict:
    return RuleRunner(es, tmp_path, text).run(when)


def doc(when: dt.datetime, **fields) -> dict:
    return {"@timestamp": iso(when), **fields}


# ---- cardinality ---------------------------------------------------------------------------------

@pytest.fixture
def users_index(es, index_name):
    create_index(es, index_name, {"host": {"type": "keyword"}, "user": {"type": "keyword"}})
    return index_name


def test_cardinality_above_max_counts_only_the_half_open_window(es, users_index, tmp_path):
    add_docs(es, users_index, [
        doc(START, user="a"),                 # on the start: in
        doc(at(10), user="b"),
        doc(at(20), user="c"),
        doc(END - MS, user="a"),              # last millisecond: in, not a new value
        doc(END, user="x"),                   # on the end: next window
        doc(START - MS, user="y"),            # before the window
    ])
    record = run_once(es, tmp_path, rule(users_index, "cardinality", "cardinality_field: user\nmax_cardinality: 2"))
    assert matches(record) == {None: 4}
    found = match_details(record)[None]
    assert found["value"] == 3
    assert found["details"] == {"cardinality": 3, "cardinality_field": "user", "crossed": "max_cardinality",
                                "limit": 2}
    # Exclusive bound: 3 distinct values do not exceed max_cardinality 3 (x or y counted would make 4).
    (tmp_path / "again").mkdir()
    record = run_once(es, tmp_path / "again", rule(users_index, "cardinality",
                                                    "cardinality_field: user\nmax_cardinality: 3"))
    assert matches(record) == {}


def test_cardinality_below_min_per_group_with_missing_group(es, users_index, tmp_path):
    add_docs(es, users_index, [
        doc(at(1), host="h1", user="a"), doc(at(2), host="h1", user="b"), doc(at(3), host="h1", user="c"),
        doc(at(4), host="h2", user="a"), doc(at(5), host="h2", user="a"),
        doc(at(6), host="h3"), doc(at(7), host="h3"),               # no user: cardinality 0
        doc(at(8), user="a"), doc(at(9), user="b"),                 # no host: the _missing group, 2 users
        doc(START - MS, host="h4", user="a"),                       # h4 only outside: unknown, not evaluated
        doc(END, host="h4", user="a"),
    ])
    record = run_once(es, tmp_path, rule(users_index, "cardinality", "cardinality_field: user\nmin_cardinality: 2",
                                         extra="group_by: host\n"))
    # h1 has 3, _missing has 2 (not below 2: exclusive), h2 has 1, h3 has 0.
    assert matches(record) == {"h2": 2, "h3": 2}
    found = match_details(record)
    assert (found["h2"]["value"], found["h3"]["value"]) == (1, 0)
    assert found["h3"]["details"]["crossed"] == "min_cardinality"
    assert record["result"]["input"]["payload"]["info"]["groups_evaluated"] == 4


def test_cardinality_outside_min_and_max(es, users_index, tmp_path):
    add_docs(es, users_index, [
        *[doc(at(i), host="h1", user=u) for i, u in enumerate("abcd")],   # 4: above 3
        doc(at(10), host="h2", user="a"),                                 # 1: below 2
        *[doc(at(20 + i), host="h3", user=u) for i, u in enumerate("ab")],  # 2: on the min, quiet
        *[doc(at(30 + i), host="h4", user=u) for i, u in enumerate("abc")],  # 3: on the max, quiet
    ])
    record = run_once(es, tmp_path, rule(users_index, "cardinality",
                                         "cardinality_field: user\nmin_cardinality: 2\nmax_cardinality: 3",
                                         extra="group_by: host\n"))
    found = match_details(record)
    assert {k: (m["value"], m["details"]["crossed"]) for k, m in found.items()} == {
        "h1": (4, "max_cardinality"), "h2": (1, "min_cardinality")}


def test_cardinality_empty_window(es, users_index, tmp_path):
    add_docs(es, users_index, [doc(END, user="a"), doc(START - MS, user="b")])
    record = run_once(es, tmp_path, rule(users_index, "cardinality", "cardinality_field: user\nmin_cardinality: 1"))
    assert matches(record) == {None: 0}
    assert match_details(record)[None]["value"] == 0
    (tmp_path / "max").mkdir()
    record = run_once(es, tmp_path / "max", rule(users_index, "cardinality",
                                                  "cardinality_field: user\nmax_cardinality: 0"))
    assert matches(record) == {}


def test_cron_schedule_in_paris_time_moves_the_window(es, users_index, tmp_path):
    """09:00 Paris in January is 08:00Z: the window is [07:00Z, 08:00Z) = [08:00, 09:00) Paris."""
    paris = dt.timezone(dt.timedelta(hours=1))
    runner = RuleRunner(es, tmp_path, rule(users_index, "cardinality", "cardinality_field: user\nmax_cardinality: 1",
                                           extra="").replace("schedule: 1h\n",
                                                             "schedule: {cron: '0 9 * * *', timezone: Europe/Paris}\n"))
    scheduled = next_fire(runner.watch.rule.trigger, dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert scheduled == dt.datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    summer = next_fire(runner.watch.rule.trigger, dt.datetime(2026, 7, 15, tzinfo=UTC))
    assert summer == dt.datetime(2026, 7, 15, 7, 0, tzinfo=UTC)   # CEST: 09:00 Paris is 07:00Z
    add_docs(es, users_index, [
        doc(dt.datetime(2026, 1, 15, 8, 0, tzinfo=paris), user="a"),       # on the start: in
        doc(dt.datetime(2026, 1, 15, 8, 59, 59, tzinfo=paris), user="b"),  # in
        doc(dt.datetime(2026, 1, 15, 9, 0, tzinfo=paris), user="c"),       # on the end: out
        doc(dt.datetime(2026, 1, 15, 7, 59, 59, tzinfo=paris), user="d"),  # before: out
        doc(dt.datetime(2026, 1, 15, 9, 30, tzinfo=paris), user="e"),      # in a UTC-09:00 window only
        doc(dt.datetime(2026, 1, 15, 9, 45, tzinfo=paris), user="f"),      # in a UTC-09:00 window only
    ])
    record = runner.run(scheduled)
    payload = record["result"]["input"]["payload"]
    assert payload["window"] == {"start": "2026-01-15T07:00:00.000Z", "end": "2026-01-15T08:00:00.000Z"}
    assert {k: m["value"] for k, m in match_details(record).items()} == {None: 2}
    assert sorted(hit["user"] for hit in match_details(record)[None]["hits"]) == ["a", "b"]


# ---- metric_aggregation --------------------------------------------------------------------------

@pytest.fixture
def metrics_index(es, index_name):
    create_index(es, index_name, {"service": {"type": "keyword"}, "ms": {"type": "long"}})
    return index_name


@pytest.mark.parametrize("agg, expected", [("min", 2), ("max", 10), ("avg", 5.0), ("sum", 20.0),
                                           ("cardinality", 3), ("value_count", 4)])
def test_metric_value_of_each_type_with_exclusive_bounds(es, metrics_index, tmp_path, agg, expected):
    add_docs(es, metrics_index, [doc(START, ms=2), doc(at(10), ms=4), doc(at(20), ms=4), doc(END - MS, ms=10),
                                 doc(END, ms=1000), doc(START - MS, ms=0)])
    base = f"metric_agg_key: ms\nmetric_agg_type: {agg}\n"
    record = run_once(es, tmp_path, rule(metrics_index, "metric_aggregation",
                                         base + f"max_threshold: {expected - 0.5}"))
    found = match_details(record)
    assert found[None]["value"] == expected
    assert found[None]["count"] == 4
    assert found[None]["details"] == {"metric_agg_type": agg, "metric_agg_key": "ms", "crossed": "max_threshold",
                                      "limit": expected - 0.5}
    for name, bounds in (("on_max", f"max_threshold: {expected}"), ("on_min", f"min_threshold: {expected}")):
        (tmp_path / name).mkdir()
        record = run_once(es, tmp_path / name, rule(metrics_index, "metric_aggregation", base + bounds))
        assert matches(record) == {}, bounds
    (tmp_path / "below").mkdir()
    record = run_once(es, tmp_path / "below", rule(metrics_index, "metric_aggregation",
                                                   base + f"min_threshold: {expected + 0.5}"))
    assert match_details(record)[None]["details"]["crossed"] == "min_threshold"


def test_metric_per_group_not_between_with_missing_group_and_min_doc_count(es, metrics_index, tmp_path):
    add_docs(es, metrics_index, [
        doc(at(1), service="api", ms=300), doc(at(2), service="api", ms=500),      # avg 400: above 250
        doc(at(3), service="db", ms=10), doc(at(4), service="db", ms=30),          # avg 20: below 50
        doc(at(5), service="web", ms=100), doc(at(6), service="web", ms=200),      # avg 150: between
        doc(at(7), ms=900), doc(at(8), ms=1100),                                   # _missing avg 1000: above
        doc(at(9), service="cache", ms=1),                                         # 1 document: not evaluated
        doc(END, service="web", ms=100000),                                        # outside
    ])
    record = run_once(es, tmp_path, rule(metrics_index, "metric_aggregation",
                                         "metric_agg_key: ms\nmetric_agg_type: avg\nmin_threshold: 50\n"
                                         "max_threshold: 250\nmin_doc_count: 2", extra="group_by: service\n"))
    found = match_details(record)
    assert {k: (m["value"], m["count"], m["details"]["crossed"]) for k, m in found.items()} == {
        "api": (400.0, 2, "max_threshold"), "db": (20.0, 2, "min_threshold"), "_missing": (1000.0, 2, "max_threshold")}
    assert record["result"]["input"]["payload"]["info"]["groups_evaluated"] == 4   # api, db, web, _missing
    # With the default min_doc_count 1, cache (avg 1) is evaluated and fires too.
    (tmp_path / "one").mkdir()
    record = run_once(es, tmp_path / "one", rule(metrics_index, "metric_aggregation",
                                                 "metric_agg_key: ms\nmetric_agg_type: avg\nmin_threshold: 50",
                                                 extra="group_by: service\n"))
    assert {k: m["value"] for k, m in match_details(record).items()} == {"db": 20.0, "cache": 1.0}


@pytest.mark.parametrize("agg", ["sum", "value_count", "avg"])
def test_metric_empty_window_never_fires(es, metrics_index, tmp_path, agg):
    add_docs(es, metrics_index, [doc(END, ms=5), doc(START - MS, ms=5)])
    record = run_once(es, tmp_path, rule(metrics_index, "metric_aggregation",
                                         f"metric_agg_key: ms\nmetric_agg_type: {agg}\nmin_threshold: 1"))
    assert matches(record) == {}
    assert record["result"]["input"]["payload"]["info"]["groups_evaluated"] == 0


def test_metric_bucket_interval_slices_start_at_the_window_start(es, metrics_index, tmp_path):
    """Slices of 15m from 09:37: [09:37, 09:52) [09:52, 10:07) [10:07, 10:22) [10:22, 10:37) — epoch-aligned
    ones (09:45, 10:00…) would put 09:51:59.999 and 09:52 together and report other starts."""
    add_docs(es, metrics_index, [
        doc(START, service="api", ms=60),                    # slice 1: max 60 > 50
        doc(at(15) - MS, service="api", ms=10),              # slice 1
        doc(at(15), service="api", ms=70),                   # slice 2 on its start: max 70 > 50
        doc(at(33), service="api", ms=20),                   # slice 3: max 20, between
        doc(at(45), service="api", ms=5),                    # slice 4: max 5 < 10
        doc(END, service="api", ms=999),                     # outside
        doc(START - MS, service="api", ms=999),              # outside
        doc(at(16), service="db", ms=30),                    # db: quiet
    ])
    text = rule(metrics_index, "metric_aggregation",
                "metric_agg_key: ms\nmetric_agg_type: max\nmax_threshold: 50\nmin_threshold: 10\nbucket_interval: 15m",
                extra="group_by: service\n")
    record = run_once(es, tmp_path, text)
    found = match_details(record)
    assert set(found) == {"api"}
    api = found["api"]
    assert (api["value"], api["count"]) == (5.0, 5)       # the latest crossing slice's value
    assert api["details"]["bucket_interval"] == "15m"
    assert api["details"]["crossed"] == "min_threshold"
    assert [(b["start"], b["value"], b["count"], b["crossed"]) for b in api["details"]["buckets"]] == [
        ("2026-03-10T09:37:00.000Z", 60.0, 2, "max_threshold"),
        ("2026-03-10T09:52:00.000Z", 70.0, 1, "max_threshold"),
        ("2026-03-10T10:22:00.000Z", 5.0, 1, "min_threshold"),
    ]
    # min_doc_count 2: only the first slice has two documents.
    (tmp_path / "two").mkdir()
    record = run_once(es, tmp_path / "two", text.replace("bucket_interval: 15m", "bucket_interval: 15m\n"
                                                                                 "  min_doc_count: 2"))
    assert [b["start"] for b in match_details(record)["api"]["details"]["buckets"]] == ["2026-03-10T09:37:00.000Z"]


def test_metric_percentiles_use_the_value_at_percentile_range(es, metrics_index, tmp_path):
    # 19 × 10 and one 1000: p50 is 10, p100 is 1000, the average 59.5.
    add_docs(es, metrics_index, [*[doc(at(i), ms=10) for i in range(19)], doc(at(30), ms=1000),
                                 doc(END, ms=1), doc(START - MS, ms=1)])
    p50 = "metric_agg_key: ms\nmetric_agg_type: percentiles\npercentile_range: 50\n"
    record = run_once(es, tmp_path, rule(metrics_index, "metric_aggregation", p50 + "max_threshold: 50"))
    assert matches(record) == {}                         # the average (59.5) would fire
    (tmp_path / "min").mkdir()
    record = run_once(es, tmp_path / "min", rule(metrics_index, "metric_aggregation", p50 + "min_threshold: 11"))
    found = match_details(record)[None]
    assert (found["value"], found["count"]) == (10.0, 20)
    assert found["details"] == {"metric_agg_type": "percentiles", "metric_agg_key": "ms", "percentile_range": 50,
                                "crossed": "min_threshold", "limit": 11}
    (tmp_path / "p100").mkdir()
    record = run_once(es, tmp_path / "p100", rule(metrics_index, "metric_aggregation",
                                                  p50.replace("50", "100") + "max_threshold: 999"))
    assert match_details(record)[None]["value"] == 1000.0


# ---- percentage_match ----------------------------------------------------------------------------

@pytest.fixture
def status_index(es, index_name):
    create_index(es, index_name, {"host": {"type": "keyword"}, "status": {"type": "keyword"},
                                  "ms": {"type": "long"}})
    return index_name


def statuses(host: str | None, errors: int, oks: int, first_minute: int) -> list[dict]:
    """``errors`` error documents then ``oks`` ok documents, one a minute from ``first_minute``."""
    group = {"host": host} if host else {}
    kinds = ["error"] * errors + ["ok"] * oks
    return [doc(at(first_minute + i), status=kind, **group) for i, kind in enumerate(kinds)]


def test_percentage_outside_min_and_max_per_group(es, status_index, tmp_path):
    add_docs(es, status_index, [
        *statuses("h1", 1, 3, 0),        # 25 %: below 30
        *statuses("h2", 3, 1, 10),       # 75 %: above 60
        *statuses("h3", 2, 2, 20),       # 50 %: between
        *statuses(None, 1, 0, 30),       # _missing, 100 %: above
        *statuses("h4", 3, 0, 40),       # 100 % of 3 documents: below min_denominator 4, not evaluated
        doc(END, host="h3", status="error"), doc(START - MS, host="h3", status="error"),   # outside
    ])
    record = run_once(es, tmp_path, rule(status_index, "percentage_match",
                                         "match_bucket_filter: {term: {status: error}}\nmin_percentage: 30\n"
                                         "max_percentage: 60\nmin_denominator: 4", extra="group_by: host\n"))
    found = match_details(record)
    assert {k: (m["value"], m["details"]["crossed"]) for k, m in found.items()} == {
        "h1": (25.0, "min_percentage"), "h2": (75.0, "max_percentage")}
    assert found["h1"]["details"] == {"match_count": 1, "total_count": 4, "percentage": 25.0,
                                      "crossed": "min_percentage", "limit": 30}
    assert record["result"]["input"]["payload"]["info"]["groups_evaluated"] == 3   # h1, h2, h3
    # min_denominator 0 (default): _missing (1 of 1) and h4 (3 of 3) are evaluated too.
    (tmp_path / "all").mkdir()
    record = run_once(es, tmp_path / "all", rule(status_index, "percentage_match",
                                                 "match_bucket_filter: {term: {status: error}}\nmax_percentage: 60",
                                                 extra="group_by: host\n"))
    assert {k: m["value"] for k, m in match_details(record).items()} == {"h2": 75.0, "_missing": 100.0, "h4": 100.0}


def test_percentage_window_bounds_and_exclusive_limit(es, status_index, tmp_path):
    # In the window: error on the start, ok, ok, ok on the last millisecond → 25 %.
    add_docs(es, status_index, [doc(START, status="error"), doc(at(5), status="ok"), doc(at(6), status="ok"),
                                doc(END - MS, status="ok"), doc(END, status="error"), doc(START - MS, status="error")])
    record = run_once(es, tmp_path, rule(status_index, "percentage_match",
                                         "match_bucket_filter: 'status:error'\nmax_percentage: 24.9"))
    assert match_details(record)[None]["details"]["percentage"] == 25.0
    (tmp_path / "on").mkdir()
    record = run_once(es, tmp_path / "on", rule(status_index, "percentage_match",
                                                "match_bucket_filter: 'status:error'\nmax_percentage: 25"))
    assert matches(record) == {}


def test_percentage_list_filter_is_anded(es, status_index, tmp_path):
    add_docs(es, status_index, [doc(at(1), status="error", ms=500), doc(at(2), status="error", ms=5),
                                doc(at(3), status="ok", ms=500)])
    # Slow errors: 1 of 3 → 33.33… %.
    record = run_once(es, tmp_path, rule(status_index, "percentage_match",
                                         "match_bucket_filter:\n  - {term: {status: error}}\n  - 'ms:>100'\n"
                                         "min_percentage: 50"))
    found = match_details(record)[None]
    assert found["value"] == pytest.approx(100 / 3)
    assert (found["details"]["match_count"], found["details"]["total_count"]) == (1, 3)


def test_percentage_empty_window_and_min_denominator(es, status_index, tmp_path):
    add_docs(es, status_index, [doc(END, status="ok"), doc(START - MS, status="ok")])
    record = run_once(es, tmp_path, rule(status_index, "percentage_match",
                                         "match_bucket_filter: {term: {status: error}}\nmin_percentage: 50"))
    assert matches(record) == {}
    # Two documents in the window, none an error (0 %): min_denominator 3 keeps it quiet, 2 lets it fire.
    add_docs(es, status_index, [doc(at(1), status="ok"), doc(at(2), status="ok")])
    for least, expected in ((3, {}), (2, {None: 2})):
        (tmp_path / str(least)).mkdir()
        record = run_once(es, tmp_path / str(least), rule(status_index, "percentage_match",
                                                          "match_bucket_filter: {term: {status: error}}\n"
                                                          f"min_percentage: 50\nmin_denominator: {least}"))
        assert matches(record) == expected, least


# ---- default title and message -------------------------------------------------------------------

@pytest.mark.parametrize("rule_type, params, text", [
    ("cardinality", "cardinality_field: user\nmax_cardinality: 1",
     "rule 'r': 2 distinct user for api: 2 distinct values of user in {index} between 2026-03-10T09:37:00.000Z "
     "and 2026-03-10T10:37:00.000Z for api (more than 1; 2 documents)."),
    ("metric_aggregation", "metric_agg_key: ms\nmetric_agg_type: avg\nmin_threshold: 500",
     "rule 'r': avg(ms) = 60.0 for api: avg of ms is 60.0 (below 500) in {index} between "
     "2026-03-10T09:37:00.000Z and 2026-03-10T10:37:00.000Z for api."),
    ("metric_aggregation", "metric_agg_key: ms\nmetric_agg_type: percentiles\npercentile_range: 100\n"
                           "max_threshold: 50\nbucket_interval: 30m",
     "rule 'r': percentiles(ms) = 100.0 for api: percentiles of ms (percentile 100) is 100.0 (above 50) in "
     "{index} between 2026-03-10T09:37:00.000Z and 2026-03-10T10:37:00.000Z for api. Slices of 30m that "
     "crossed: 2026-03-10T10:07:00.000Z (100.0)."),
    ("percentage_match", "match_bucket_filter: 'ms:>50'\nmax_percentage: 40",
     "rule 'r': 50.0% of documents match for api: 1 of 2 documents (50.00%) match the bucket filter in "
     "{index} between 2026-03-10T09:37:00.000Z and 2026-03-10T10:37:00.000Z for api (above 40%)."),
])
def test_default_title_and_message(es, index_name, tmp_path, rule_type, params, text):
    create_index(es, index_name, {"service": {"type": "keyword"}, "ms": {"type": "long"}, "user": {"type": "keyword"}})
    add_docs(es, index_name, [doc(at(5), service="api", ms=20, user="a"), doc(at(40), service="api", ms=100, user="b")])
    record = run_once(es, tmp_path, rule(index_name, rule_type, params, extra="group_by: service\n"))
    assert delivered(record) == [("log", "firing", "api", text.format(index=index_name))]
