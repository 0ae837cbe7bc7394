"""One watch over several executions against the real cluster: the reference's Appendix A.

A search input over real documents, a compare condition, a 15-minute throttle, a logging action and
a webhook action to a real HTTP server on 127.0.0.1; then throttle, ack, acknowledged and the reset
to ``awaits_successful_execution`` when the condition stops being met (watcher-semantics §8 traps 7–9).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.definitions.watch import parse_watch
from watcher.engine.context import Run, Services
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.status import WatchStatus

T0 = dt.datetime(2024, 5, 1, 10, 0, 30, tzinfo=dt.timezone.utc)


def load_watch(text: str, name: str = "appendix_a"):
    document = load_text(text, f"{name}.json")
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert not reader.problems, [str(p) for p in reader.problems]
    return watch


@pytest.fixture
def logs(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "seq": {"type": "integer"}, "message": {"type": "text"}}})
    for seq, doc_id in enumerate(["4", "1", "3"]):
        es.index(index=index_name, id=doc_id, document={
            "@timestamp": f"2024-05-01T10:00:0{seq}Z", "seq": seq, "message": f'error "{doc_id}"\nline'})
    es.indices.refresh(index=index_name)
    return index_name


def appendix_watch(index: str, port: int) -> str:
    return json.dumps({
        "trigger": {"schedule": {"interval": "1m"}},
        "input": {"search": {"request": {"indices": [index], "body": {
            "size": 5, "sort": [{"seq": "asc"}],
            "query": {"range": {"@timestamp": {"gte": "{{ctx.trigger.scheduled_time}}||-1m",
                                               "lte": "{{ctx.trigger.scheduled_time}}"}}}}}}},
        "condition": {"compare": {"ctx.payload.hits.total": {"gt": 0}}},
        "throttle_period": "15m",
        "actions": {
            "log": {"logging": {"text": "{{ctx.payload.hits.total}} errors:{{#ctx.payload.hits.hits}}{{_id}}:{{/ctx.payload.hits.hits}}"}},
            "og": {"webhook": {"scheme": "http", "host": "127.0.0.1", "port": port, "method": "post",
                               "path": "/v1/json/eswatcher", "params": {"apiKey": "k"},
                               "headers": {"Content-Type": "application/json"},
                               "body": "{{#toJson}}ctx{{/toJson}}"}}}})


def execute(watch, es, at, status, mode="execute"):
    run = Run(watch=watch, execution_time=at, triggered_time=at, scheduled_time=at, services=Services(es=es))
    return execute_watch(watch, run, status, {"simulate": Simulate(), "execute": SendNow()},
                         ExecuteOptions(default_mode=mode))


def test_appendix_a_throttle_ack_and_reset(es, logs, httpserver):
    httpserver.expect_request("/v1/json/eswatcher", method="POST").respond_with_json({"result": "ok"})
    watch = load_watch(appendix_watch(logs, httpserver.port))
    status = WatchStatus()

    first = execute(watch, es, T0, status)
    assert first["state"] == "executed"
    actions = {a["id"]: a for a in first["result"]["actions"]}
    assert actions["log"]["status"] == "success"
    assert actions["log"]["logging"]["logged_text"] == "3 errors:4:1:3:"
    assert actions["og"]["status"] == "success"
    assert first["result"]["condition"] == {
        "type": "compare", "status": "success", "met": True,
        "compare": {"resolved_values": {"ctx.payload.hits.total": 3}}}
    sent = httpserver.log[0][0]
    assert sent.args.get("apiKey") == "k" and sent.headers["Content-Type"] == "application/json"
    body = json.loads(sent.get_data(as_text=True))
    assert body["watch_id"] == "appendix_a" and body["payload"]["hits"]["total"] == 3
    assert body["trigger"]["scheduled_time"] == "2024-05-01T10:00:30.000Z"
    assert body["payload"]["hits"]["hits"][0]["_source"]["message"] == 'error "4"\nline'
    assert status.actions["og"].ack_state == "ackable"

    second = execute(watch, es, T0 + dt.timedelta(seconds=10), status)  # same documents, 10 s later
    assert second["state"] == "throttled"
    assert {a["status"] for a in second["result"]["actions"]} == {"throttled"}
    assert len(httpserver.log) == 1

    assert status.ack(["og"], T0 + dt.timedelta(minutes=2)) == ["og"]
    third = execute(watch, es, T0 + dt.timedelta(minutes=16), status)  # 10:16:30 → no hits
    assert third["state"] == "execution_not_needed" and third["result"]["actions"] == []
    assert status.actions["og"].ack_state == "awaits_successful_execution"

    # Documents again inside the window, after the throttle period: both run.
    es.index(index=logs, id="9", document={"@timestamp": "2024-05-01T10:20:00Z", "seq": 9, "message": "again"},
             refresh=True)
    fourth = execute(watch, es, dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=dt.timezone.utc), status)
    assert fourth["state"] == "executed"
    assert [a["status"] for a in fourth["result"]["actions"]] == ["success", "success"]
    assert len(httpserver.log) == 2


def test_acked_action_reports_acknowledged_and_force_bypasses_it(es, logs, httpserver):
    httpserver.expect_request("/v1/json/eswatcher").respond_with_json({})
    definition = json.loads(appendix_watch(logs, httpserver.port))
    definition["throttle_period"] = "0s"  # no period throttle: only the ack decides
    watch = load_watch(json.dumps(definition))
    status = WatchStatus()
    assert execute(watch, es, T0, status)["state"] == "executed"
    assert status.ack(["og"], T0) == ["og"]

    again = execute(watch, es, T0 + dt.timedelta(seconds=10), status)
    by_id = {a["id"]: a for a in again["result"]["actions"]}
    assert again["state"] == "acknowledged"
    assert by_id["og"]["status"] == "acknowledged"
    assert by_id["og"]["reason"] == "action [og] was acked at [2024-05-01T10:00:30.000Z]"
    assert by_id["log"]["status"] == "success"
    assert len(httpserver.log) == 1

    forced = execute(watch, es, T0 + dt.timedelta(seconds=20), status, mode="force_execute")
    assert [a["status"] for a in forced["result"]["actions"]] == ["success", "success"]
    assert len(httpserver.log) == 2
    skipped = execute(watch, es, T0 + dt.timedelta(seconds=30), status, mode="skip")
    assert [(a["status"], a["reason"]) for a in skipped["result"]["actions"]] == [
        ("throttled", "manually skipped"), ("throttled", "manually skipped")]


def test_input_failure_gives_a_failed_record(es):
    watch = load_watch(json.dumps({
        "trigger": {"schedule": {"interval": "1m"}},
        "input": {"search": {"request": {"indices": ["x"], "body": {"query": {"no_such_query": {}}}}}},
        "actions": {"log": {"logging": {"text": "never"}}}}), name="broken")
    record = execute(watch, es, T0, WatchStatus())
    assert record["state"] == "failed"
    assert record["messages"] == ["failed to execute watch input"]
    assert record["result"]["input"]["status"] == "failure"
    assert "no_such_query" in record["result"]["input"]["error"]["reason"] or record["result"]["input"]["error"]
