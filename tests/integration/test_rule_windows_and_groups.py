"""Rule windows and groups on the real cluster. Daily digests on daylight-saving days: with a calendar window each document
is counted in exactly one digest; with the fixed 24 h window one is counted twice in March and one
missed in October (the defect this guards against)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import watcher

pytestmark = pytest.mark.es
UTC = dt.timezone.utc

# Europe/Paris, 08:00 every day: 07:00 UTC in winter (CET), 06:00 UTC in summer (CEST). Clocks go
# forward on 2026-03-29 and back on 2026-10-25.
DOCS = {
    "mar-28-0730-paris": "2026-03-28T06:30:00Z",  # before the 08:00 digest of the 28th (CET)
    "mar-28-0830-paris": "2026-03-28T07:30:00Z",  # after it: belongs to the digest of the 29th
    "oct-24-0730-paris": "2026-10-24T05:30:00Z",  # before the 08:00 digest of the 24th (CEST)
    "oct-24-0830-paris": "2026-10-24T06:30:00Z",  # after it: belongs to the digest of the 25th
}


@pytest.fixture
def events(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {"@timestamp": {"type": "date"},
                                                                 "name": {"type": "keyword"}}})
    for name, at in DOCS.items():
        es.index(index=index_name, id=name, document={"@timestamp": at, "name": name})
    es.indices.refresh(index=index_name)
    return index_name


def digests(es, tmp_path, index: str, extra: str = "") -> dict[str, list[str]]:
    """``{digest time (UTC): names of the documents it counted}`` for the daily rule run at every
    fire time around both daylight-saving changes."""
    (tmp_path / "daily.yaml").write_text(
        f"name: daily\nindex: {index}\nwindow: 24h\nhits: 10\n"
        f"schedule: {{cron: '0 8 * * *', timezone: Europe/Paris}}\n{extra}")
    watch = watcher.load([tmp_path]).watches["daily"]
    out = {}
    for first, last in (("2026-03-27", "2026-03-30"), ("2026-10-23", "2026-10-26")):
        times = watcher.schedule_times(watch, dt.datetime.fromisoformat(first + "T00:00:00+00:00"),
                                       dt.datetime.fromisoformat(last + "T00:00:00+00:00"))
        for record in watcher.backtest(watch, es, times):
            hits = record["result"]["input"]["payload"]["hits"]["hits"]
            out[record["trigger_event"]["triggered_time"]] = sorted(hit["_source"]["name"] for hit in hits)
    return out


def test_a_calendar_window_counts_each_document_in_exactly_one_daily_digest(es, events, tmp_path):
    assert digests(es, tmp_path, events) == {
        "2026-03-27T07:00:00.000Z": [],
        "2026-03-28T07:00:00.000Z": ["mar-28-0730-paris"],
        "2026-03-29T06:00:00.000Z": ["mar-28-0830-paris"],          # a 23-hour day
        "2026-10-23T06:00:00.000Z": [],
        "2026-10-24T06:00:00.000Z": ["oct-24-0730-paris"],
        "2026-10-25T07:00:00.000Z": ["oct-24-0830-paris"],          # a 25-hour day
    }


def test_the_fixed_window_counts_one_document_twice_and_misses_another(es, events, tmp_path):
    fixed = digests(es, tmp_path, events, "calendar_window: false\n")
    assert fixed["2026-03-29T06:00:00.000Z"] == ["mar-28-0730-paris", "mar-28-0830-paris"]  # counted again
    assert fixed["2026-10-25T07:00:00.000Z"] == []                                          # never counted
    assert "oct-24-0830-paris" not in sum(fixed.values(), [])


# ---- which groups a threshold rule looks at when there are more than max_groups -----------------

@pytest.fixture
def responses(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "bytes": {"type": "long"}}})
    docs = ([("busy-1", 10)] * 5 + [("busy-2", 20)] * 4 + [("quiet", 9000)] +   # quiet: one huge response
            [("idle", 1)])
    operations = []
    for n, (host, size) in enumerate(docs):
        operations += [{"index": {"_index": index_name}},
                       {"@timestamp": f"2026-11-29T10:0{n % 5}:00Z", "host": host, "bytes": size}]
    es.bulk(operations=operations, refresh=True)
    return index_name


@pytest.mark.parametrize("condition, fired", [
    ("{metric: {agg: max, field: bytes, gte: 5000}}", ["quiet"]),   # not among the 2 busiest hosts
    ("{metric: {agg: max, field: bytes, lt: 5}}", ["idle"]),
    ("{count: {lte: 1}}", ["idle", "quiet"]),
])
def test_groups_are_ranked_by_what_the_condition_tests(es, responses, tmp_path, condition, fired):
    (tmp_path / "r.yaml").write_text(f"name: r\nindex: {responses}\nwindow: 10m\ngroup_by: host\nmax_groups: 2\n"
                                     f"condition: {condition}\n")
    record = watcher.execute(watcher.load([tmp_path]).watches["r"], es,
                             at=dt.datetime(2026, 11, 29, 10, 6, tzinfo=UTC))
    assert record["result"]["condition"]["met"] is True
    assert sorted(record["result"]["rule"]["groups"]) == fired


@pytest.mark.parametrize("params, fired", [
    ("{metric_agg_key: bytes, metric_agg_type: max, max_threshold: 5000}", ["quiet"]),
    ("{metric_agg_key: bytes, metric_agg_type: avg, min_threshold: 5}", ["idle"]),
])
def test_metric_aggregation_groups_are_ranked_by_the_bound_they_may_cross(es, responses, tmp_path, params, fired):
    (tmp_path / "r.yaml").write_text(f"name: r\nindex: {responses}\nwindow: 10m\ngroup_by: host\nmax_groups: 2\n"
                                     f"type: metric_aggregation\nparams: {params}\n")
    record = watcher.execute(watcher.load([tmp_path]).watches["r"], es,
                             at=dt.datetime(2026, 11, 29, 10, 6, tzinfo=UTC))
    assert sorted(m["group"] for m in record["result"]["input"]["payload"]["matches"]) == fired


# ---- group keys the cluster cannot aggregate -----------------------------------------------------

@pytest.fixture
def logins(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"},
        "user": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},   # ElastAlert2's usual shape
        "note": {"type": "text"},                                               # no keyword sub-field
        "details": {"type": "object", "enabled": False}}})                     # kept, never indexed
    for n, (user, ip) in enumerate([("alice", "1.1.1.1"), ("alice", "1.1.1.1"), ("bob", "2.2.2.2")]):
        es.index(index=index_name, id=str(n), document={"@timestamp": f"2026-11-29T10:0{n}:00Z", "user": user,
                                                        "note": "x", "details": {"ip": ip}})
    es.indices.refresh(index=index_name)
    return index_name


def dry_run(es_cluster, path, *args):
    from click.testing import CliRunner

    from watcher.cli import main
    result = CliRunner().invoke(main, ["dry-run", str(path), "--at", "2026-11-29T10:05:00Z", *args],
                                env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_text_group_by_is_grouped_by_its_keyword_sub_field_and_dry_run_says_so(es_cluster, logins, tmp_path):
    (tmp_path / "r.yaml").write_text(f"name: r\nindex: {logins}\nwindow: 10m\ngroup_by: user\n")
    code, out, err = dry_run(es_cluster, tmp_path / "r.yaml", "--json")
    assert code == 0, err
    assert "note: r: group_by user is a text field; grouping by its aggregatable sub-field user.keyword" in err
    buckets = json.loads(out)["result"]["input"]["payload"]["aggregations"]["groups"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in buckets} == {"alice": 2, "bob": 1}


@pytest.mark.parametrize("field, why", [
    ("details.ip", "no index of {index} maps it (not indexed — e.g. inside an object with enabled: false — or "
                   "misspelt), so every document would fall in the _missing group"),
    ("note", "it is a text field in {index}, not aggregatable, and has no aggregatable note.keyword sub-field; "
             "group by a keyword field"),
])
def test_a_group_by_the_cluster_cannot_aggregate_is_refused_where_it_is_written(es_cluster, logins, tmp_path,
                                                                                 field, why):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: r\nindex: {logins}\nwindow: 10m\ngroup_by: {field}\n")
    code, out, err = dry_run(es_cluster, path)
    assert code == 1 and out == ""
    assert err.strip() == f"{path}:4:11: group_by: the cluster cannot group by {field}: " + why.format(index=logins)


def test_no_index_yet_leaves_the_rule_as_written(es, tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\nindex: not-created-yet-*\nwindow: 10m\ngroup_by: user\n")
    loaded = watcher.load([tmp_path])
    assert watcher.check_fields(loaded, es) == [] and loaded.watches["r"].rule.group_by == "user"


def test_fields_the_templates_read_that_no_index_maps_are_warned_about(es_cluster, logins, tmp_path):
    (tmp_path / "r.yaml").write_text(
        f"name: r\nindex: {logins}\nwindow: 10m\ngroup_by: user.keyword\n"
        "message: \"{{ hits[0].user }} from {{ hits[0].clientip }} ({{ hits | map(attribute='details.ip') | join }})\"\n")
    from click.testing import CliRunner

    from watcher.cli import main
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--cluster"], env=es_cluster.env())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line for line in lines if " reads hits[]." in line] == [
        f"warning: {tmp_path / 'r.yaml'}: r: message reads hits[].clientip, which no index of {logins} maps; unless "
        "the documents carry it anyway, it renders as <MISSING VALUE>",
        f"warning: {tmp_path / 'r.yaml'}: r: message reads hits[].details.ip, which no index of {logins} maps; unless "
        "the documents carry it anyway, it renders as <MISSING VALUE>"]
    assert lines[-1] == "1 file OK, 0 with problems"  # the rule has no action: validate warns about that too
    code, _, err = dry_run(es_cluster, tmp_path / "r.yaml")
    assert code == 0 and "warning: " in err and "hits[].clientip" in err
