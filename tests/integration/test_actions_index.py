"""The index action against the real Elasticsearch (single document, bulk `_doc`, `_id`, refresh…)."""

from __future__ import annotations

import datetime as dt

from watcher.definitions.connectors import load_connectors
from watcher.model.watch import Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.destinations import ACTIONS as REGISTRY
from watcher.engine.context import Run, Services
from watcher.delivery.direct import SendNow, Simulate

T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=dt.timezone.utc)


def make_run(es, payload, connectors=None) -> Run:
    watch = Watch(id="index_watch", file="index_watch.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=None)
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(es=es, connectors=connectors or {}), payload=payload)


def parse_action(text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = REGISTRY.get("index").parse(reader, document.data, ())
    assert [str(p) for p in reader.problems] == []
    return config


def execute(config, run: Run, delivery=None):
    module = REGISTRY.get("index")
    rendered = module.render(config, run, run.model())
    outcome = (delivery or SendNow()).deliver(rendered, run.services)
    return outcome, module.result(config, rendered, outcome)


def test_single_document_with_id_refresh_and_execution_time(es, index_name):
    config = parse_action(f"index: {index_name}\ndoc_id: alert-1\nrefresh: 'true'\nexecution_time_field: '@timestamp'\n")
    outcome, result = execute(config, make_run(es, {"hits": {"total": 3}, "msg": "ünï"}))
    assert outcome.status == "success"
    assert result == {"index": {"response": {"created": True, "result": "created", "id": "alert-1", "version": 1,
                                             "index": index_name}}}
    # refresh=true: searchable at once, without an explicit refresh
    hits = es.search(index=index_name, query={"match_all": {}})["hits"]["hits"]
    assert [(h["_id"], h["_source"]) for h in hits] == [
        ("alert-1", {"hits": {"total": 3}, "msg": "ünï", "@timestamp": "2024-05-01T10:15:30.123Z"})]
    mapping = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert mapping["@timestamp"]["type"] == "date"  # ISO with ms: dynamic date detection applies

    outcome, result = execute(config, make_run(es, {"v": 2}))
    assert result["index"]["response"] == {"created": False, "result": "updated", "id": "alert-1", "version": 2,
                                           "index": index_name}


def test_doc_list_is_bulk_with_per_document_index_and_id(es, index_name):
    other = f"{index_name}-b"
    try:
        config = parse_action("refresh: wait_for\n")
        payload = {"_doc": [{"_index": index_name, "_id": "1", "n": 1},
                            {"_index": other, "n": 2},
                            {"_index": index_name, "_id": "3", "n": 3}]}
        outcome, result = execute(config, make_run(es, payload))
        assert outcome.status == "success"
        responses = result["index"]["response"]
        assert [(r["index"], r["result"], r["created"]) for r in responses] == [
            (index_name, "created", True), (other, "created", True), (index_name, "created", True)]
        assert [responses[0]["id"], responses[2]["id"]] == ["1", "3"]
        assert es.get(index=index_name, id="1")["_source"] == {"n": 1}  # _index/_id removed from the source
        assert es.count(index=index_name)["count"] == 2 and es.count(index=other)["count"] == 1
    finally:
        es.options(ignore_status=404).indices.delete(index=other)


def test_create_op_type_conflict_is_partial_failure(es, index_name):
    es.index(index=index_name, id="dup", document={"n": 0}, refresh=True)
    config = parse_action(f"index: {index_name}\nop_type: create\nrefresh: 'true'\n")
    outcome, result = execute(config, make_run(es, {"_doc": [{"_id": "dup", "n": 1}, {"_id": "new", "n": 2}]}))
    assert outcome.status == "partial_failure"
    failed, created = result["index"]["response"]
    assert failed["failed"] is True and failed["id"] == "dup" and failed["index"] == index_name
    assert "version conflict" in failed["message"]
    assert created["result"] == "created"

    outcome, _ = execute(config, make_run(es, {"_doc": [{"_id": "dup", "n": 3}]}))
    assert outcome.status == "failure"
    assert "version conflict" in outcome.reason


def test_single_create_conflict_is_a_failure_with_error(es, index_name):
    es.index(index=index_name, id="x", document={"n": 0}, refresh=True)
    config = parse_action(f"index: {index_name}\ndoc_id: x\nop_type: create\n")
    outcome, result = execute(config, make_run(es, {"n": 1}))
    assert outcome.status == "failure"
    assert outcome.error["type"] == "conflict_error"
    assert "version conflict" in outcome.reason
    assert result == {}


def test_simulate_writes_nothing(es, index_name):
    config = parse_action(f"index: {index_name}\n")
    outcome, result = execute(config, make_run(es, {"n": 1}), delivery=Simulate())
    assert outcome.status == "simulated"
    assert result == {"index": {"request": {"index": index_name, "source": {"n": 1}}}}
    assert not es.indices.exists(index=index_name)


def test_index_connector_gives_defaults(es, index_name):
    document = load_text(f"connectors:\n  store:\n    type: index\n    index: {index_name}\n    refresh: true\n"
                         "    execution_time_field: fired_at\n", "connectors.yaml")
    reader = Reader(document)
    connectors = load_connectors(document, reader, environ={})
    assert reader.problems == []
    outcome, _ = execute(parse_action("connector: store\n"), make_run(es, {"n": 7}, connectors))
    assert outcome.status == "success"
    [hit] = es.search(index=index_name)["hits"]["hits"]
    assert hit["_source"] == {"n": 7, "fired_at": "2024-05-01T10:15:30.123Z"}
