"""Conditions against the real node: compare/array_compare over real search responses, and Painless
through the execute API (skipped, with the reason, on a node without lang-painless)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from watcher.model.watch import Component, Trigger, Watch
from watcher.engine.conditions import REGISTRY, evaluate
from watcher.engine.context import Run, Services
from watcher.es.painless import PainlessError, ScriptUnavailable, execute_script

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 29, 10, 5, tzinfo=UTC)


def make_run(es, payload: dict) -> Run:
    watch = Watch(id="cond_test", file="cond_test.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("search", {}, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata={"threshold": 5})
    return Run(watch=watch, execution_time=NOW, triggered_time=NOW, scheduled_time=NOW,
               services=Services(es=es, clock=lambda: NOW), payload=payload)


def condition(es, type_: str, body, payload: dict) -> dict:
    from watcher.model.problems import Reader
    from watcher.model.source import load_text
    import json

    document = load_text(json.dumps({type_: body}), "inline.json")
    reader = Reader(document)
    component = REGISTRY.parse(reader, document.data, ())
    assert reader.problems == []
    run = make_run(es, payload)
    return evaluate(component, run, run.model())


@pytest.fixture
def host_events(es, index_name):
    """Ten events: host-a 7, host-b 2, host-c 1; the search response a Watcher search input would give."""
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}}})
    hosts = ["host-a"] * 7 + ["host-b"] * 2 + ["host-c"]
    for i, host in enumerate(hosts):
        es.index(index=index_name, id=str(i), document={"@timestamp": f"2026-11-29T10:0{i % 5}:00Z", "host": host})
    es.indices.refresh(index=index_name)
    response = es.search(index=index_name, size=0, rest_total_hits_as_int=True,
                         aggs={"hosts": {"terms": {"field": "host"}}})
    return response.body


def test_compare_on_a_real_search_response(es, host_events):
    assert host_events["hits"]["total"] == 10  # an int, as Watcher's search input gives it
    result = condition(es, "compare", {"ctx.payload.hits.total": {"gte": "{{ctx.metadata.threshold}}"}}, host_events)
    assert result == {"type": "compare", "status": "success", "met": True, "compare": {
        "resolved_values": {"ctx.payload.hits.total": 10, "ctx.metadata.threshold": 5}}}
    # hits.total.value does not exist in this form: null, so only not_eq holds.
    assert condition(es, "compare", {"ctx.payload.hits.total.value": {"gte": 5}}, host_events)["met"] is False


def test_array_compare_over_real_terms_buckets(es, host_events):
    buckets = host_events["aggregations"]["hosts"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [("host-a", 7), ("host-b", 2), ("host-c", 1)]
    body = {"ctx.payload.aggregations.hosts.buckets": {"path": "doc_count", "gt": {"value": 5}}}
    result = condition(es, "array_compare", body, host_events)
    assert result == {"type": "array_compare", "status": "success", "met": True, "array_compare": {
        "resolved_values": {"ctx.payload.aggregations.hosts.buckets": buckets}}}
    body["ctx.payload.aggregations.hosts.buckets"]["gt"]["quantifier"] = "all"
    assert condition(es, "array_compare", body, host_events)["met"] is False


# --------------------------------------------------------------------------------------------------
# Painless


@pytest.mark.without_scripting
def test_node_without_painless_reports_script_unavailable(es, es_modules):
    if "lang-painless" in es_modules:
        pytest.skip("this cluster has lang-painless; the unavailable path cannot be observed here")
    with pytest.raises(ScriptUnavailable) as error:
        condition(es, "script", "return ctx.payload.hits.total > 5", {"hits": {"total": 7}})
    assert str(error.value) == (
        "this Elasticsearch cluster cannot run Painless scripts (POST /_scripts/painless/_execute answered 400: "
        "must specify lang for stored script); the lang-painless module is missing. Script conditions and "
        "transforms need a cluster with Painless (every regular Elasticsearch distribution has it)")
    with pytest.raises(ScriptUnavailable):
        execute_script(es, {"source": "return ['a': 1]", "params": {}}, {"ctx": {}})
    # Without the module the URL means "put stored script [painless]": make sure nothing was stored.
    assert es.options(ignore_status=404).get_script(id="painless").body["found"] is False


def test_missing_stored_script(es):
    script_id = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PainlessError) as error:
        condition(es, "script", {"id": script_id}, {})
    assert str(error.value) == f"unable to find stored script [{script_id}] in the cluster (GET _scripts/{script_id})"


def test_lambda_over_aggregation_buckets(es, host_events, requires_painless):
    source = "return ctx.payload.aggregations.hosts.buckets.stream().anyMatch(b -> b.doc_count > 5)"
    assert condition(es, "script", source, host_events) == {"type": "script", "status": "success", "met": True}
    stricter = {"source": source.replace("> 5", "> params.limit"), "params": {"limit": 7}}
    assert condition(es, "script", stricter, host_events)["met"] is False
    # A "ctx" inside a string literal and a member named ctx are left alone.
    quoted = "def s = 'ctx.payload'; return s.length() == 11 && ctx.payload.hits.total == 10"
    assert condition(es, "script", quoted, host_events)["met"] is True


def test_stored_script_by_id_with_params(es, requires_painless):
    script_id = f"cond-{uuid.uuid4().hex[:8]}"
    es.put_script(id=script_id, script={"lang": "painless",
                                        "source": "return ctx.payload.hits.total > params.threshold"})
    try:
        assert condition(es, "script", {"id": script_id, "params": {"threshold": 5}}, {"hits": {"total": 7}})["met"] is True
        assert condition(es, "script", {"id": script_id, "params": {"threshold": 9}}, {"hits": {"total": 7}})["met"] is False
    finally:
        es.options(ignore_status=404).delete_script(id=script_id)


def test_json_results_for_transforms(es, requires_painless):
    model = {"ctx": {"payload": {"hits": {"total": 3}, "name": "web"}, "execution_time": NOW}}
    source = ("String tag(def name) { return 'host:' + name }\n"
              "['count': ctx.payload.hits.total, 'label': tag(ctx.payload.name), 'quote': 'say \"hi\"\\\\',\n"
              " 'list': [1, 2.5, null, true], 'nan': Double.NaN,\n"
              " 'hour': ctx.execution_time.getHour(), 'p': params.p]")
    assert execute_script(es, {"source": source, "params": {"p": {"x": [1]}}}, model) == {
        "count": 3, "label": "host:web", "quote": 'say "hi"\\', "list": [1, 2.5, None, True], "nan": None,
        "hour": 10, "p": {"x": [1]}}
    # A path that returns nothing gives null (the retry with "return null;").
    assert execute_script(es, {"source": "if (ctx.payload.hits.total > 5) { return 1 }", "params": {}}, model) is None
    # Control characters, quotes and backslashes survive the Painless JSON serialiser.
    text = 'line1\nline2\t"quoted" \\ \u0001 é ✓'
    assert execute_script(es, {"source": "return [params.s]", "params": {"s": text}}, model) == [text]


def test_compile_and_runtime_errors(es, requires_painless):
    with pytest.raises(PainlessError) as error:
        condition(es, "script", "def n = ctx.payload.n;\nreturn n > foo", {"n": 1})
    assert error.value.reason == "compile error"
    assert "cannot resolve symbol [foo]" in error.value.cause
    assert error.value.position["line"] == 2
    with pytest.raises(PainlessError) as error:
        condition(es, "script", "return ctx.payload.missing.size() > 0", {})
    assert error.value.reason == "runtime error"
    with pytest.raises(PainlessError) as error:
        condition(es, "script", "return 7", {})
    assert str(error.value) == "condition [script] must return a boolean value (true|false) but instead returned [7]"
