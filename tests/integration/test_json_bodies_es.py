"""Bodies declared JSON (docs/correctness.md#json-bodies), end to end: real Windows events from OTRF's
Security-Datasets (command lines with quotes and backslashes, messages with CR LF and tabs) in the real
cluster, Watcher watches (Mustache) and YAML rules (Jinja2) that build JSON by hand, and a real HTTP
receiver on 127.0.0.1 whose received bytes are checked exactly. A body that still does not parse is
not sent: the record, the dry-run and the log say why."""

from __future__ import annotations

import datetime as dt
import json
import logging
import textwrap

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from conftest import SHARED
from watcher.cli import main
from watcher.definitions.connectors import load_connectors
from watcher.definitions.load import load_paths
from watcher.delivery.direct import SendNow, Simulate
from watcher.destinations import ACTIONS
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.status import WatchStatus
from watcher.model.watch import Component, Trigger, Watch

OTRF = SHARED / "data" / "otrf" / "psh_lsass_memory_dump_comsvcs" / "psh_lsass_memory_dump_comsvcs_2020-10-18T19500924.json"
AT = dt.datetime(2020, 10, 18, 7, 52, 0, tzinfo=dt.timezone.utc)  # two minutes after the LSASS dump
UNICODE = "ünïcødé ✓ “quoted” 😀 \u2028 tab\t bell\x07 \\ \"end\""


def dumps(value) -> str:
    """The JSON string of ``value`` as Python writes it (UTF-8 kept): a second opinion on ours."""
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture(scope="module")
def events() -> list[dict]:
    if not OTRF.is_file():
        pytest.skip(f"OTRF data set not found at {OTRF}")
    return [json.loads(line) for line in OTRF.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def lsass(es, index_name, events):
    """The 184 events of OTRF's "LSASS memory dump with comsvcs" set; one 4688 (process creation)."""
    es.indices.create(index=index_name, mappings={"dynamic": False, "properties": {
        "@timestamp": {"type": "date"}, "EventID": {"type": "integer"}, "Hostname": {"type": "keyword"},
        "CommandLine": {"type": "keyword"}, "Message": {"type": "text"}}})
    operations = []
    for number, event in enumerate(events):
        stamp = event["TimeCreated"].replace(" ", "T") + "Z"  # the data set gives no zone: read as UTC
        operations += [{"index": {"_index": index_name, "_id": str(number)}}, {**event, "@timestamp": stamp}]
    es.bulk(operations=operations, refresh=True)
    (creation,) = [e for e in events if e["EventID"] == 4688]
    return index_name, creation


def webhook(port: int, path: str, body: str, content_type: str = "application/json") -> dict:
    return {"webhook": {"method": "post", "host": "127.0.0.1", "port": port, "path": path,
                        "headers": {"Content-Type": content_type}, "body": body}}


def watch_text(index: str, actions: dict) -> str:
    return json.dumps({
        "trigger": {"schedule": {"interval": "1m"}},
        "input": {"search": {"request": {"indices": [index], "body": {
            "size": 1, "query": {"bool": {"filter": [{"term": {"EventID": 4688}}]}}}}}},
        "condition": {"compare": {"ctx.payload.hits.total": {"gt": 0}}},
        "actions": actions})


def load_one(tmp_path, name: str, text: str, connectors: str | None = None):
    (tmp_path / name).write_text(text)
    if connectors is not None:
        (tmp_path / "connectors.yaml").write_text(connectors)
    loaded = load_paths([tmp_path])
    assert not loaded.problems, [str(p) for p in loaded.problems]
    (watch,) = loaded.watches.values()
    return watch, loaded.connectors


def execute(watch, connectors, es, mode: str = "execute") -> dict:
    run = Run(watch=watch, execution_time=AT, triggered_time=AT, scheduled_time=AT,
              services=Services(es=es, connectors=connectors))
    return execute_watch(watch, run, WatchStatus(), {"simulate": Simulate(), "execute": SendNow()},
                         ExecuteOptions(default_mode=mode))


def received(httpserver: HTTPServer) -> dict[str, bytes]:
    return {request.path: request.get_data() for request, _ in httpserver.log}


HIT = "ctx.payload.hits.hits.0._source"


def test_watch_with_mustache_bodies_sends_valid_json(es, lsass, httpserver, tmp_path):
    index, event = lsass
    httpserver.expect_request("/hand").respond_with_data("ok")
    httpserver.expect_request("/tojson").respond_with_data("ok")
    httpserver.expect_request("/prefix").respond_with_data("ok")
    httpserver.expect_request("/plain").respond_with_data("ok")
    port = httpserver.port
    watch, connectors = load_one(tmp_path, "lsass.json", watch_text(index, {
        "hand": webhook(port, "/hand", f'{{"text":"{{{{{HIT}.CommandLine}}}}","message":"{{{{{HIT}.Message}}}}",'
                                       f'"count":{{{{ctx.payload.hits.total}}}}}}'),
        "tojson": webhook(port, "/tojson", f'{{"event":{{{{#toJson}}}}{HIT}{{{{/toJson}}}}}}'),
        "prefix": webhook(port, "/prefix", f'__json__::{{"text":"{{{{{HIT}.CommandLine}}}}"}}'),
        "plain": webhook(port, "/plain", f'{{"text":"{{{{{HIT}.CommandLine}}}}"}}', content_type="text/plain")}))

    record = execute(watch, connectors, es)

    assert [(a["id"], a["status"]) for a in record["result"]["actions"]] == [
        ("hand", "success"), ("tojson", "success"), ("prefix", "success"), ("plain", "success")]
    bodies = received(httpserver)
    command, message = event["CommandLine"], event["Message"]
    assert command.startswith('"C:\\Windows\\System32\\rundll32.exe" ') and "\r\n\t" in message
    # values inside the hand-built JSON strings are escaped: the receiver gets exactly these bytes
    assert bodies["/hand"] == f'{{"text":{dumps(command)},"message":{dumps(message)},"count":1}}'.encode()
    assert json.loads(bodies["/hand"]) == {"text": command, "message": message, "count": 1}
    # toJson is JSON already: not escaped a second time
    assert json.loads(bodies["/tojson"])["event"]["CommandLine"] == command
    assert json.loads(bodies["/tojson"])["event"]["Message"] == message
    # Watcher's own __json__:: form: unchanged
    assert bodies["/prefix"] == f'{{"text":{dumps(command)}}}'.encode()
    # not declared JSON: Watcher's raw text, as before
    assert bodies["/plain"] == f'{{"text":"{command}"}}'.encode()


def test_unicode_and_control_characters_arrive_as_written(es, index_name, httpserver, tmp_path):
    es.index(index=index_name, id="u", refresh=True,
             document={"@timestamp": "2020-10-18T07:50:00Z", "EventID": 4688, "CommandLine": UNICODE})
    httpserver.expect_request("/hand").respond_with_data("ok")
    watch, connectors = load_one(tmp_path, "uni.json", watch_text(index_name, {
        "hand": webhook(httpserver.port, "/hand", f'{{"text":"{{{{{HIT}.CommandLine}}}}"}}')}))

    record = execute(watch, connectors, es)

    assert record["result"]["actions"][0]["status"] == "success"
    body = received(httpserver)["/hand"]
    assert body == ('{"text":"ünïcødé ✓ “quoted” 😀 \u2028 tab\\t bell\\u0007 \\\\ \\"end\\""}').encode()
    assert json.loads(body) == {"text": UNICODE}


RULE_CONNECTORS = """\
connectors:
  hook:
    type: webhook
    url: http://127.0.0.1:{port}/rule
    headers: {{Content-Type: application/json}}
  summary:
    type: webhook
    url: http://127.0.0.1:{port}/summary
    headers: {{Content-Type: application/vnd.api+json}}
    body: '{{"summary":"{{{{ctx.vars.alert.message}}}}","title":"{{{{ctx.vars.alert.title}}}}"}}'
"""


def rule_text(index: str, body: str) -> str:
    return textwrap.dedent(f"""\
        name: lsass-dump
        schedule: 1m
        index: {index}
        window: 5m
        query: 'EventID:4688'
        condition:
          count: {{gte: 1}}
        title: 'LSASS dump on {{{{ hits[0].Hostname }}}}'
        message: '{{{{ hits[0].CommandLine }}}}'
        actions:
          - connector: hook
            body: '{body}'
          - connector: summary
        """)


def test_rule_with_jinja_and_connector_bodies_sends_valid_json(es, lsass, httpserver, tmp_path):
    index, event = lsass
    httpserver.expect_request("/rule").respond_with_data("ok")
    httpserver.expect_request("/summary").respond_with_data("ok")
    body = '{"text": "{{ message }}", "count": {{ count }}, "alert": {{ alert | tojson }}}'
    watch, connectors = load_one(tmp_path, "lsass.yaml", rule_text(index, body),
                                 RULE_CONNECTORS.format(port=httpserver.port))

    record = execute(watch, connectors, es)

    assert [action["status"] for action in record["result"]["actions"]] == ["success", "success"]
    bodies = received(httpserver)
    command = event["CommandLine"]
    # the rule's own Jinja2 body: escaped inside its strings, tojson left as it is
    assert bodies["/rule"].startswith(f'{{"text": {dumps(command)}, "count": 1, "alert": {{'.encode())
    sent = json.loads(bodies["/rule"])
    assert sent["text"] == command and sent["alert"]["message"] == command
    assert sent["alert"]["title"] == "LSASS dump on WORKSTATION5"
    # the connector's Mustache body, under a +json Content-Type
    assert bodies["/summary"] == f'{{"summary":{dumps(command)},"title":"LSASS dump on WORKSTATION5"}}'.encode()


def test_a_body_that_is_still_not_json_is_not_sent_and_says_why(es, lsass, httpserver, tmp_path, caplog):
    index, event = lsass
    httpserver.expect_request("/hand").respond_with_data("ok")
    watch, connectors = load_one(tmp_path, "lsass.json", watch_text(index, {
        "hand": webhook(httpserver.port, "/hand", f'{{"message": {{{{{HIT}.Message}}}}}}')}))  # outside a string

    with caplog.at_level(logging.WARNING, logger="watcher.engine.perform"):
        record = execute(watch, connectors, es)

    assert len(httpserver.log) == 0
    action = record["result"]["actions"][0]
    reason = ("the body is not valid JSON (Expecting value at body line 1, column 13), but its Content-Type is "
              "application/json; not sent")
    assert (action["status"], action["reason"]) == ("failure", reason)
    assert action["error"] == {"type": "invalid_json_body", "reason": reason}
    assert action["webhook"]["request"]["body"] == f'{{"message": {event["Message"]}}}'
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"watch lsass action hand not sent: {reason}")]


def test_a_rule_body_that_is_not_json_fails_that_action_only(es, lsass, httpserver, tmp_path):
    index, _ = lsass
    httpserver.expect_request("/rule").respond_with_data("ok")
    httpserver.expect_request("/summary").respond_with_data("ok")
    watch, connectors = load_one(tmp_path, "lsass.yaml", rule_text(index, '{"text": {{ message }}}'),
                                 RULE_CONNECTORS.format(port=httpserver.port))

    record = execute(watch, connectors, es)

    hook, summary = record["result"]["actions"]
    assert (hook["status"], hook["error"]["type"]) == ("failure", "invalid_json_body")
    assert hook["reason"] == ("the body is not valid JSON (Invalid \\escape at body line 1, column 13), but its "
                              "Content-Type is application/json; not sent")  # the command line opened a string
    assert summary["status"] == "success"
    assert list(received(httpserver)) == ["/summary"]


def dry_run(es_cluster, *args):
    result = CliRunner().invoke(main, ["dry-run", *map(str, args)], env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.output


def test_dry_run_shows_the_escaped_body_and_fails_on_a_body_that_is_not_json(es_cluster, lsass, tmp_path):
    index, event = lsass
    good = tmp_path / "good"
    good.mkdir()
    (good / "lsass.json").write_text(watch_text(index, {
        "notify": webhook(9, "/hook", f'{{"text":"{{{{{HIT}.CommandLine}}}}"}}')}))
    code, out = dry_run(es_cluster, good / "lsass.json", "--at", AT.isoformat())
    assert code == 0, out
    assert "action notify [webhook]: simulated" in out
    assert f'    {{"text":{dumps(event["CommandLine"])}}}\n' in out

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lsass.json").write_text(watch_text(index, {
        "notify": webhook(9, "/hook", f'{{"text":{{{{{HIT}.CommandLine}}}}}}')}))
    code, out = dry_run(es_cluster, bad / "lsass.json", "--at", AT.isoformat())
    assert code == 1, out
    assert ("action notify [webhook]: failure — the body is not valid JSON (Invalid \\escape at body line 1, "
            "column 12), but its Content-Type is application/json; not sent") in out
    assert f'    {{"text":{event["CommandLine"]}}}\n' in out  # the body it would have sent
    assert "state: executed" in out


def test_opsgenie_and_slack_build_their_json_from_the_rendered_text(lsass, httpserver):
    """Not changed by JSON bodies: these connectors put the rendered text into JSON themselves."""
    _, event = lsass
    document = load_text(textwrap.dedent(f"""\
        connectors:
          og: {{type: opsgenie, api_key: k-123, api_url: 'http://127.0.0.1:{httpserver.port}', mode: alert_v2}}
          chat: {{type: slack, url: 'http://127.0.0.1:{httpserver.port}/slack/T1/B2'}}
        """), "connectors.yaml")
    reader = Reader(document)
    connectors = load_connectors(document, reader, environ={})
    assert not reader.problems
    httpserver.expect_request("/v2/alerts").respond_with_json({"result": "ok"}, status=202)
    httpserver.expect_request("/slack/T1/B2").respond_with_data("ok")
    watch = Watch(id="lsass", file="lsass.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=None)
    run = Run(watch=watch, execution_time=AT, triggered_time=AT, scheduled_time=AT,
              services=Services(connectors=connectors), payload={"e": event}, record_id="lsass_1")
    for kind, text in (("opsgenie", {"connector": "og", "message": "{{ctx.payload.e.CommandLine}}",
                                     "description": "{{ctx.payload.e.Message}}"}),
                       ("slack", {"account": "chat", "message": {"text": "{{ctx.payload.e.CommandLine}}"}})):
        doc = load_text(json.dumps(text), "watch.json")
        action_reader = Reader(doc)
        config = ACTIONS.get(kind).parse(action_reader, doc.data, ())
        rendered = ACTIONS.get(kind).render(config, run, run.model())
        assert SendNow().deliver(rendered, run.services).status == "success"
    bodies = received(httpserver)
    command, message = event["CommandLine"], event["Message"]
    assert bodies["/v2/alerts"] == (f'{{"message":{dumps(command[:130])},"alias":"lsass",'
                                    f'"description":{dumps(message)}}}').encode()
    assert bodies["/slack/T1/B2"] == f'{{"username":"lsass","text":{dumps(command)}}}'.encode()
