"""``hits.total`` as an object (``rest_total_hits_as_int: false``) in compare and array_compare, on
the real node: the cluster decides the count and whether it is exact (``relation: eq``) or a lower
bound (``relation: gte``, when ``track_total_hits`` stops counting); the conditions compare the count
and say when a lower bound cannot decide (docs/correctness.md#hit-totals-as-objects)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.definitions.watch import parse_watch
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.status import WatchStatus

AT = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def events(es, index_name):
    """Five events: host-a 3, host-b 2."""
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}}})
    for i, host in enumerate(["host-a", "host-a", "host-a", "host-b", "host-b"]):
        es.index(index=index_name, id=str(i), document={"@timestamp": f"2026-11-29T10:0{i}:00Z", "host": host})
    es.indices.refresh(index=index_name)
    return index_name


def watch_json(index: str, condition: dict, track_total_hits, aggs: dict | None = None) -> str:
    body = {"size": 0, "track_total_hits": track_total_hits, "query": {"match_all": {}}}
    if aggs:
        body["aggs"] = aggs
    return json.dumps({
        "trigger": {"schedule": {"interval": "1m"}},
        "input": {"search": {"request": {"indices": [index], "rest_total_hits_as_int": False, "body": body}}},
        "condition": condition,
        "actions": {"log": {"logging": {"text": "{{ctx.payload.hits.total.value}} events"}}}})


def execute(es, text: str) -> dict:
    document = load_text(text, "totals.json")
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert not reader.problems, [str(p) for p in reader.problems]
    run = Run(watch=watch, execution_time=AT, triggered_time=AT, scheduled_time=AT, services=Services(es=es))
    return execute_watch(watch, run, WatchStatus(), {"simulate": Simulate(), "execute": SendNow()},
                         ExecuteOptions(default_mode="simulate"))


def compare(op: str, value) -> dict:
    return {"compare": {"ctx.payload.hits.total": {op: value}}}


def test_an_exact_total_object_is_compared_by_its_count(es, events):
    record = execute(es, watch_json(events, compare("gt", 0), True))
    assert record["result"]["input"]["payload"]["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert record["result"]["condition"] == {"type": "compare", "status": "success", "met": True, "compare": {
        "resolved_values": {"ctx.payload.hits.total": {"value": 5, "relation": "eq"}},
        "total_hits": {"ctx.payload.hits.total": {"compared": 5, "lower_bound": False}}}}
    assert record["state"] == "executed"
    assert record["result"]["actions"][0]["logging"]["logged_text"] == "5 events"
    assert execute(es, watch_json(events, compare("eq", 5), True))["result"]["condition"]["met"] is True
    assert execute(es, watch_json(events, compare("lt", 5), True))["result"]["condition"]["met"] is False


def test_a_lower_bound_decides_what_it_can_and_says_what_it_cannot(es, events, caplog):
    # track_total_hits: 2 over five documents: the cluster stops counting and answers gte 2.
    met = execute(es, watch_json(events, compare("gt", 1), 2))
    assert met["result"]["input"]["payload"]["hits"]["total"] == {"value": 2, "relation": "gte"}
    assert met["result"]["condition"] == {"type": "compare", "status": "success", "met": True, "compare": {
        "resolved_values": {"ctx.payload.hits.total": {"value": 2, "relation": "gte"}},
        "total_hits": {"ctx.payload.hits.total": {"compared": 2, "lower_bound": True}}}}
    assert met["state"] == "executed"
    # at least 2 is never below 2: decided, not met, nothing to say
    not_met = execute(es, watch_json(events, compare("lt", 2), 2))["result"]["condition"]
    assert not_met["met"] is False and "unsure" not in not_met["compare"]
    with caplog.at_level("WARNING", logger="watcher.engine"):
        unsure = execute(es, watch_json(events, compare("gt", 3), 2))
    condition = unsure["result"]["condition"]
    assert condition["met"] is False
    assert unsure["state"] == "execution_not_needed"
    assert condition["compare"]["unsure"] == (
        "ctx.payload.hits.total counts at least 2 hits, not an exact number (hits.total relation gte: the search "
        "stopped counting at track_total_hits), so 'ctx.payload.hits.total gt 3' cannot be decided; reported as "
        "not met. Set track_total_hits to true, or to a number above 3, in the search body.")
    (warning,) = [r for r in caplog.records if r.name == "watcher.engine" and "cannot be decided" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith("watch [totals] condition compare cannot be decided: "
                                           "ctx.payload.hits.total counts at least 2 hits")
    # with a limit above the bound, the same watch is decided: the count is exact again
    assert execute(es, watch_json(events, compare("gt", 3), 4))["result"]["condition"]["met"] is True
    assert execute(es, watch_json(events, compare("lte", 4), 2))["result"]["condition"]["compare"]["unsure"]


def test_array_compare_reads_the_count_of_top_hits_totals(es, events):
    aggs = {"hosts": {"terms": {"field": "host"}, "aggs": {"latest": {"top_hits": {"size": 1}}}}}
    condition = {"array_compare": {"ctx.payload.aggregations.hosts.buckets": {
        "path": "latest.hits.total", "gte": {"value": 3, "quantifier": "some"}}}}
    record = execute(es, watch_json(events, condition, True, aggs))
    buckets = record["result"]["input"]["payload"]["aggregations"]["hosts"]["buckets"]
    assert [b["latest"]["hits"]["total"] for b in buckets] == [{"value": 3, "relation": "eq"},
                                                              {"value": 2, "relation": "eq"}]
    result = record["result"]["condition"]
    assert result["met"] is True
    assert result["array_compare"]["total_hits"] == {
        "ctx.payload.aggregations.hosts.buckets.0.latest.hits.total": {"compared": 3, "lower_bound": False},
        "ctx.payload.aggregations.hosts.buckets.1.latest.hits.total": {"compared": 2, "lower_bound": False}}
    condition["array_compare"]["ctx.payload.aggregations.hosts.buckets"]["gte"]["quantifier"] = "all"
    assert execute(es, watch_json(events, condition, True, aggs))["result"]["condition"]["met"] is False


def test_dry_run_prints_why_the_condition_cannot_be_decided(es_cluster, events, tmp_path):
    path = tmp_path / "totals.json"
    path.write_text(watch_json(events, compare("gt", 3), 2))
    result = CliRunner().invoke(main, ["dry-run", str(path), "--at", "2026-11-29T10:05:00Z"],
                                env=es_cluster.env(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "condition compare: not met" in result.output
    assert ("warning: the condition cannot be decided: ctx.payload.hits.total counts at least 2 hits, not an exact "
            "number") in result.output
