"""The webhook action with a body declared JSON (docs/correctness.md#json-bodies): values printed inside
the body's JSON strings are escaped (the action's headers or its connector's declare JSON); a rendered
body that still does not parse fails the action unsent, with the reason, the request it would have sent,
and a WARNING. Only APIs that existed before JSON bodies were handled are used here. The same with a
real receiver: tests/integration/test_json_bodies.py."""

from __future__ import annotations

import datetime as dt
import json
import logging

from watcher.definitions.connectors import load_connectors
from watcher.delivery.direct import Simulate
from watcher.destinations import ACTIONS as REGISTRY
from watcher.engine.context import Run, Services
from watcher.engine.perform import perform
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.watch import Action, Component, Trigger, Watch

# A Windows command line and event message as OTRF's Security-Datasets record them.
COMMAND = '"C:\\Windows\\System32\\rundll32.exe" C:\\windows\\System32\\comsvcs.dll MiniDump 756 full'
MESSAGE = 'A process has exited.\r\n\r\nSubject:\r\n\tAccount Name:\t\twardog'
T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)


def esc(text: str) -> str:
    """Python's JSON string escaping, without the quotes."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def make_run(payload, connectors=None) -> Run:
    watch = Watch(id="lsass", file="lsass.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=None)
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=connectors or {}), payload=payload, record_id="lsass_1")


def parse_webhook(text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = REGISTRY.get("webhook").parse(reader, document.data, ())
    assert [str(p) for p in reader.problems] == []
    return config


def connectors(text: str):
    document = load_text(text, "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ={})
    assert [str(p) for p in reader.problems] == []
    return loaded


def render(config, run):
    return REGISTRY.get("webhook").render(config, run, run.model())


def test_webhook_body_is_escaped_when_its_headers_declare_json():
    run = make_run({"cmd": COMMAND})
    config = parse_webhook("""
url: http://127.0.0.1:9/hook
headers: {Content-Type: application/json}
body: '{"text":"{{ctx.payload.cmd}}"}'
""")
    assert render(config, run).body == f'{{"text":"{esc(COMMAND)}"}}'
    plain = parse_webhook("""
url: http://127.0.0.1:9/hook
body: '{"text":"{{ctx.payload.cmd}}"}'
""")
    assert render(plain, run).body == f'{{"text":"{COMMAND}"}}'  # no JSON declared: Watcher's raw text


def test_connector_headers_declare_json_for_the_actions_body_and_its_own():
    loaded = connectors("""
connectors:
  hook:
    type: webhook
    url: http://127.0.0.1:9/hook
    headers: {Content-Type: application/json; charset=utf-8}
    body: '{"summary":"{{ctx.payload.msg}}"}'
""")
    run = make_run({"cmd": COMMAND, "msg": MESSAGE}, loaded)
    own_body = parse_webhook("connector: hook\n")
    assert render(own_body, run).body == f'{{"summary":"{esc(MESSAGE)}"}}'
    action_body = parse_webhook("""connector: hook\nbody: '{"text":"{{ctx.payload.cmd}}"}'\n""")
    assert render(action_body, run).body == f'{{"text":"{esc(COMMAND)}"}}'
    # the action's own Content-Type (same spelling) replaces the connector's: then it is text
    text_body = parse_webhook("""connector: hook\nheaders: {Content-Type: text/plain}\nbody: '"{{ctx.payload.cmd}}"'\n""")
    assert render(text_body, run).body == f'"{COMMAND}"'


def test_an_invalid_json_body_fails_the_action_unsent_and_says_why(caplog):
    config = parse_webhook("""
url: http://127.0.0.1:9/hook
headers: {Content-Type: application/json, Authorization: Bearer tok-123}
body: '{"text": {{ctx.payload.msg}}}'
""")
    run = make_run({"msg": MESSAGE})
    delivered = []

    class Recording(Simulate):
        def deliver(self, rendered, services=None):
            delivered.append(rendered)
            return super().deliver(rendered, services)

    action = Action(id="notify", type="webhook", config=config, body={})
    with caplog.at_level(logging.WARNING, logger="watcher.engine.perform"):
        result = perform(action, run, {"msg": MESSAGE}, Recording())
    assert delivered == []
    reason = ("the body is not valid JSON (Expecting value at body line 1, column 10), but its Content-Type is "
              "application/json; not sent")
    assert result["status"] == "failure" and result["reason"] == reason
    assert result["error"] == {"type": "invalid_json_body", "reason": reason}
    assert result["webhook"]["request"]["body"] == f'{{"text": {MESSAGE}}}'  # what would have been sent
    assert result["webhook"]["request"]["headers"]["Authorization"] == "::es_redacted::"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"watch lsass action notify not sent: {reason}")]
    assert "tok-123" not in caplog.text


def test_a_valid_json_body_is_delivered():
    config = parse_webhook("""
url: http://127.0.0.1:9/hook
headers: {Content-Type: application/json}
body: '{"text": "{{ctx.payload.cmd}}"}'
""")
    action = Action(id="notify", type="webhook", config=config, body={})
    result = perform(action, make_run({"cmd": COMMAND}), {"cmd": COMMAND}, Simulate())
    assert result["status"] == "simulated"
    assert json.loads(result["webhook"]["request"]["body"]) == {"text": COMMAND}
