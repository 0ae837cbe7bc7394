"""Search, script and chain transforms against the real Elasticsearch node."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from watcher.model.watch import Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.engine.context import Run, Services
from watcher.engine.inputs import REGISTRY as INPUTS
from watcher.engine.transforms import REGISTRY as TRANSFORMS
from watcher.engine.transforms.chain import ChainTransformError

SCHEDULED = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.timezone.utc)


def parse(definition: dict, registry=TRANSFORMS):
    document = load_text(json.dumps({"x": definition}), "watch.json")
    reader = Reader(document)
    component = registry.parse(reader, document.data["x"], ("x",))
    assert reader.problems == []
    return component


def make_run(es, payload=None) -> Run:
    watch = Watch(id="transforms-it", file="transforms-it.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}),
                  transform=None, actions=(), throttle_period=None, metadata=None)
    return Run(watch=watch, execution_time=SCHEDULED, triggered_time=SCHEDULED, scheduled_time=SCHEDULED,
               services=Services(es=es), payload=payload or {})


def transform(definition: dict, run: Run, payload=None) -> dict:
    component = parse(definition)
    return TRANSFORMS.get(component.type).execute(component.config, run, run.model(payload))


@pytest.fixture
def hosts(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "cpu": {"type": "double"}}})
    for number, (host, cpu) in enumerate([("web-1", 0.5), ("web-1", 0.9), ("web-2", 0.2)]):
        es.index(index=index_name, id=str(number), document={
            "@timestamp": f"2026-11-29T10:0{number}:00Z", "host": host, "cpu": cpu})
    es.indices.refresh(index=index_name)
    return index_name


def test_search_transform_replaces_the_payload_and_sees_ctx_payload(es, hosts):
    run = make_run(es, payload={"input": "kept aside"})
    result = transform({"search": {"request": {"indices": [hosts], "body": {
        "query": {"term": {"host": "{{ctx.payload.host}}"}},
        "aggs": {"max_cpu": {"max": {"field": "cpu"}}}}}}}, run, payload={"host": "web-1"})
    assert result["type"] == "search" and result["status"] == "success"
    assert result["payload"]["hits"]["total"] == 2
    assert result["payload"]["aggregations"]["max_cpu"]["value"] == 0.9
    assert result["search"]["request"] == {
        "search_type": "query_then_fetch", "indices": [hosts], "rest_total_hits_as_int": True,
        "body": {"query": {"term": {"host": "web-1"}}, "aggs": {"max_cpu": {"max": {"field": "cpu"}}}}}
    assert run.payload == {"input": "kept aside"}  # the pipeline, not the transform, stores the payload


def test_chain_transform_each_step_sees_the_previous_payload(es, hosts):
    definition = {"chain": [
        {"search": {"request": {"indices": [hosts], "body": {
            "size": 0, "aggs": {"top": {"terms": {"field": "host", "size": 1}}}}}}},
        {"search": {"request": {"indices": [hosts], "rest_total_hits_as_int": False, "body": {
            "query": {"term": {"host": "{{ctx.payload.aggregations.top.buckets.0.key}}"}},
            "sort": [{"@timestamp": "asc"}]}}}},
    ]}
    result = transform(definition, make_run(es), payload={"ignored": True})
    assert result["type"] == "chain"
    assert [step["type"] for step in result["chain"]] == ["search", "search"]
    assert result["chain"][1]["search"]["request"]["body"]["query"] == {"term": {"host": "web-1"}}
    assert result["payload"]["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert [hit["_id"] for hit in result["payload"]["hits"]["hits"]] == ["0", "1"]


def test_chain_transform_fails_when_a_step_fails(es, index_name):
    definition = {"chain": [{"search": {"request": {"indices": [index_name], "body": {}}}},
                            {"search": {"request": {"indices": [index_name], "body": {"query": {"nope": {}}}}}}]}
    with pytest.raises(ChainTransformError, match=r"failed to execute sub-transform \[search\] \(step 1") as caught:
        transform(definition, make_run(es))
    assert [step["type"] for step in caught.value.results] == ["search"]


@pytest.mark.without_scripting
def test_script_transform_without_painless_raises_script_unavailable(es, es_modules):
    from watcher.es.painless import ScriptUnavailable

    if "lang-painless" in es_modules:
        pytest.skip("this node runs Painless; test_script_transform_map_and_value covers it")
    with pytest.raises(ScriptUnavailable):
        transform({"script": "return ['total': ctx.payload.n]"}, make_run(es), payload={"n": 3})


def test_script_transform_map_and_value(es, requires_painless):
    run = make_run(es)
    result = transform({"script": {"source": "return ['total': ctx.payload.n * params.k]", "params": {"k": 2}}},
                       run, payload={"n": 3})
    assert result == {"type": "script", "status": "success", "payload": {"total": 6}}
    result = transform({"script": "return ctx.payload.n > 2"}, run, payload={"n": 3})
    assert result["payload"] == {"_value": True}


def test_transform_link_in_a_chain_input(es, requires_painless):
    component = parse({"chain": {"inputs": [
        {"first": {"simple": {"n": 4}}},
        {"second": {"transform": {"script": "return ['double': ctx.payload.first.n * 2]"}}}]}}, INPUTS)
    result = INPUTS.get("chain").execute(component.config, make_run(es))
    assert result["payload"] == {"first": {"n": 4}, "second": {"double": 8}}
    assert result["chain"]["second"] == {"type": "transform", "status": "success", "payload": {"double": 8}}


@pytest.mark.without_scripting
def test_transform_link_failure_does_not_stop_a_chain_input(es, es_modules):
    if "lang-painless" in es_modules:
        pytest.skip("this node runs Painless; the link would succeed")
    component = parse({"chain": {"inputs": [
        {"first": {"simple": {"n": 4}}},
        {"second": {"transform": {"script": "return ['double': ctx.payload.first.n * 2]"}}},
        {"third": {"simple": {"after": True}}}]}}, INPUTS)
    result = INPUTS.get("chain").execute(component.config, make_run(es))
    # Watcher's ExecutableChainInput: each link catches its own failure and the chain goes on
    assert result["status"] == "success"
    assert result["payload"] == {"first": {"n": 4}, "second": {}, "third": {"after": True}}
    assert result["chain"]["second"]["status"] == "failure"
    assert result["chain"]["second"]["reason"].startswith("ScriptUnavailable: ")
