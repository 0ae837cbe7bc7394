"""Webhook, OpsGenie and Slack actions against real HTTP servers on 127.0.0.1, checked byte for byte."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import socket
import ssl

import pytest
from outbox_helpers import tls_files  # noqa: F401  (fixtures)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from watcher.definitions.connectors import load_connectors
from watcher.delivery.direct import SendNow, Simulate
from watcher.destinations import ACTIONS as REGISTRY
from watcher.engine.context import Run, Services
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)
API_KEY = "og-integration-key-0123456789"


def make_run(payload=None, connectors=None) -> Run:
    watch = Watch(id="errors_watch", file="errors_watch.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata={"team": "sre"})
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=connectors or {}), payload=payload if payload is not None else {},
               record_id="errors_watch_1-2024-05-01T10:15:30.123Z")


def parse_action(kind: str, text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = REGISTRY.get(kind).parse(reader, document.data, ())
    assert [str(p) for p in reader.problems] == []
    return config


def connectors_from(text: str, environ=None):
    document = load_text(text, "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ=environ or {"OPSGENIE_API_KEY": API_KEY})
    assert [str(p) for p in reader.problems] == []
    return loaded


def execute(kind: str, config, run: Run, delivery=None):
    module = REGISTRY.get(kind)
    rendered = module.render(config, run, run.model())
    outcome = (delivery or SendNow()).deliver(rendered, run.services)
    return rendered, outcome, module.result(config, rendered, outcome)


def only_request(httpserver: HTTPServer):
    assert len(httpserver.log) == 1, httpserver.log
    return httpserver.log[0][0]


# ------------------------------------------------------------------------------------ webhook


def test_webhook_post_byte_for_byte(httpserver: HTTPServer):
    httpserver.expect_request("/hooks/errors_watch").respond_with_data("ok", status=200, content_type="text/plain")
    config = parse_action("webhook", f"""
scheme: http
host: 127.0.0.1
port: {httpserver.port}
method: POST
path: /hooks/{{{{ctx.watch_id}}}}
params: {{count: '{{{{ctx.payload.count}}}}', q: 'a b&c'}}
headers: {{Content-Type: application/json, X-Watch: '{{{{ctx.watch_id}}}}'}}
auth: {{basic: {{username: bot, password: 'p@ss:w0rd'}}}}
body: '{{{{#toJson}}}}ctx.payload{{{{/toJson}}}}'
""")
    message = 'He said "hi"\nnext line – ünïcødé ✓ \\ done'
    rendered, outcome, result = execute("webhook", config, make_run({"msg": message, "count": 3}))

    request = only_request(httpserver)
    assert request.method == "POST"
    assert request.path == "/hooks/errors_watch"
    assert request.query_string == b"count=3&q=a+b%26c"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot:p@ss:w0rd").decode()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Watch"] == "errors_watch"
    # toJson: compact JSON, UTF-8 (no \\u escapes), quotes/newlines/backslashes escaped
    assert request.get_data() == '{"msg":"He said \\"hi\\"\\nnext line – ünïcødé ✓ \\\\ done","count":3}'.encode()
    assert json.loads(request.get_data()) == {"msg": message, "count": 3}

    assert outcome.status == "success" and outcome.reason is None
    response = result["webhook"]["response"]
    assert (response["status"], response["body"]) == (200, "ok")
    assert response["headers"]["content-type"] == ["text/plain"]
    assert response["headers"]["content-length"] == ["2"]
    shown = result["webhook"]["request"]
    assert shown["auth"] == {"basic": {"username": "bot", "password": "::es_redacted::"}}
    assert shown["method"] == "post" and shown["path"] == "/hooks/errors_watch"
    assert shown["params"] == {"count": "3", "q": "a b&c"}
    assert "p@ss:w0rd" not in json.dumps(result)


def test_webhook_sends_no_content_type_unless_set(httpserver: HTTPServer):
    httpserver.expect_request("/plain", method="PUT").respond_with_data("")
    config = parse_action("webhook", f"url: http://127.0.0.1:{httpserver.port}/plain\nmethod: put\nbody: hello\n")
    _, outcome, _ = execute("webhook", config, make_run())
    request = only_request(httpserver)
    assert "Content-Type" not in request.headers
    assert request.get_data() == b"hello"
    assert outcome.status == "success"


def test_webhook_failure_on_500_uses_watchers_reason(httpserver: HTTPServer):
    httpserver.expect_request("/down").respond_with_response(
        Response("overloaded", status=500, headers={"X.Trace-Id": "abc"}))
    config = parse_action("webhook", f"url: http://127.0.0.1:{httpserver.port}/down\n")
    _, outcome, result = execute("webhook", config, make_run())
    assert outcome.status == "failure"
    assert outcome.reason == "received [500] status code"
    response = result["webhook"]["response"]
    assert response["status"] == 500 and response["body"] == "overloaded"
    assert response["headers"]["x_trace-id"] == ["abc"]  # lower-cased, '.' → '_' (trap 16)


def test_webhook_3xx_is_success_not_followed(httpserver: HTTPServer):
    httpserver.expect_request("/moved").respond_with_response(Response("", status=302, headers={"Location": "/x"}))
    config = parse_action("webhook", f"url: http://127.0.0.1:{httpserver.port}/moved\n")
    _, outcome, _ = execute("webhook", config, make_run())
    assert outcome.status == "success" and len(httpserver.log) == 1


def test_webhook_transport_error_is_a_failure_with_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    config = parse_action("webhook", f"url: http://127.0.0.1:{port}/x\nconnection_timeout: 2s\n")
    _, outcome, result = execute("webhook", config, make_run())
    assert outcome.status == "failure"
    assert outcome.error["type"] == "connect_error"
    assert "response" not in result["webhook"]


def test_simulate_sends_nothing_send_now_sends(httpserver: HTTPServer):
    httpserver.expect_request("/x").respond_with_data("ok")
    config = parse_action("webhook", f"url: http://127.0.0.1:{httpserver.port}/x\nmethod: post\nbody: b\n")
    _, outcome, result = execute("webhook", config, make_run(), delivery=Simulate())
    assert outcome.status == "simulated" and httpserver.log == []
    assert set(result["webhook"]) == {"request"}
    _, outcome, _ = execute("webhook", config, make_run(), delivery=SendNow())
    assert outcome.status == "success" and len(httpserver.log) == 1


def test_webhook_connector_bearer_and_api_key_auth(httpserver: HTTPServer):
    httpserver.expect_request("/in").respond_with_data("ok")
    connectors = connectors_from(f"""
connectors:
  bearer:
    type: webhook
    url: http://127.0.0.1:{httpserver.port}/in?source=watcher
    headers: {{Content-Type: application/json}}
    body: '{{{{#toJson}}}}ctx.payload{{{{/toJson}}}}'
    auth: {{bearer: {{token: '${{TOKEN}}'}}}}
  keyed:
    type: webhook
    url: http://127.0.0.1:{httpserver.port}/in
    method: put
    auth: {{api_key: {{header: X-API-Key, key: '${{TOKEN}}'}}}}
""", environ={"TOKEN": "tok-987"})
    run = make_run({"n": 1, "s": "x"}, connectors)
    _, outcome, result = execute("webhook", parse_action("webhook", "connector: bearer\n"), run)
    request = httpserver.log[0][0]
    assert (request.method, request.path, request.query_string) == ("POST", "/in", b"source=watcher")
    assert request.headers["Authorization"] == "Bearer tok-987"
    assert request.get_data() == b'{"n":1,"s":"x"}'
    assert outcome.status == "success" and "tok-987" not in json.dumps(result)

    _, outcome, result = execute("webhook", parse_action("webhook", "connector: keyed\nbody: raw\n"), run)
    request = httpserver.log[1][0]
    assert (request.method, request.headers["X-API-Key"], request.get_data()) == ("PUT", "tok-987", b"raw")
    assert result["webhook"]["request"]["headers"] == {"X-API-Key": "***"}


# ------------------------------------------------------------------------------------ opsgenie


def test_opsgenie_eswatcher_integration(httpserver: HTTPServer, caplog):
    httpserver.expect_request("/v1/json/eswatcher", method="POST").respond_with_json(
        {"result": "Request will be processed", "took": 0.01, "requestId": "r-1"}, status=202)
    connectors = connectors_from(f"connectors:\n  ops:\n    type: opsgenie\n    api_url: http://127.0.0.1:{httpserver.port}\n"
                                 "    api_key: ${OPSGENIE_API_KEY}\n")
    payload = {"hits": {"total": 2, "hits": [{"_id": "a", "_source": {"message": 'quote " and \n newline'}}]}}
    with caplog.at_level(logging.DEBUG):
        rendered, outcome, result = execute("opsgenie", parse_action("opsgenie", "connector: ops\n"),
                                            make_run(payload, connectors))
    request = only_request(httpserver)
    assert request.query_string == f"apiKey={API_KEY}".encode()
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.get_data())
    assert body["watch_id"] == "errors_watch"
    assert body["id"] == "errors_watch_1-2024-05-01T10:15:30.123Z"
    assert body["trigger"] == {"triggered_time": "2024-05-01T10:15:30.123Z", "scheduled_time": "2024-05-01T10:15:30.123Z"}
    assert body["payload"] == payload and body["metadata"] == {"team": "sre"}
    assert outcome.status == "success"
    assert result["opsgenie"]["response"]["status"] == 202
    assert json.loads(result["opsgenie"]["response"]["body"])["requestId"] == "r-1"
    # the key is in the query string that was sent, and nowhere a person can read
    assert result["opsgenie"]["request"]["params"] == {"apiKey": "***"}
    assert API_KEY not in json.dumps(result)
    assert API_KEY not in json.dumps(rendered.masked()) and API_KEY not in repr(rendered)
    # our log lines and httpx's own ("HTTP Request: POST …?apiKey=***") never show the key
    assert [r for r in caplog.records if r.name != "werkzeug" and API_KEY in r.getMessage()] == []
    assert any(r.name == "httpx" and "apiKey=***" in r.getMessage() for r in caplog.records)


def test_opsgenie_alert_v2(httpserver: HTTPServer):
    httpserver.expect_request("/v2/alerts", method="POST").respond_with_json({"result": "ok"}, status=202)
    connectors = connectors_from(f"connectors:\n  ops:\n    type: opsgenie\n    api_url: http://127.0.0.1:{httpserver.port}\n"
                                 "    api_key: ${OPSGENIE_API_KEY}\n    mode: alert_v2\n    source: watcher\n")
    config = parse_action("opsgenie", "connector: ops\nmessage: '{{ctx.payload.n}} errors on {{ctx.payload.host}}'\n"
                                      "alias: 'errors-{{ctx.payload.host}}'\npriority: P1\n"
                                      "description: '{{#toJson}}ctx.payload{{/toJson}}'\ntags: [prod, errors]\n"
                                      "details: {host: '{{ctx.payload.host}}'}\nentity: '{{ctx.payload.host}}'\n")
    _, outcome, result = execute("opsgenie", config, make_run({"n": 5, "host": "web-1"}, connectors))
    request = only_request(httpserver)
    assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
    assert request.query_string == b""
    assert json.loads(request.get_data()) == {
        "message": "5 errors on web-1", "alias": "errors-web-1", "description": '{"n":5,"host":"web-1"}',
        "priority": "P1", "tags": ["prod", "errors"], "details": {"host": "web-1"}, "entity": "web-1",
        "source": "watcher"}
    assert outcome.status == "success"
    assert result["opsgenie"]["request"]["headers"]["Authorization"] == "::es_redacted::"
    assert API_KEY not in json.dumps(result)


def test_opsgenie_failure(httpserver: HTTPServer):
    httpserver.expect_request("/v1/json/eswatcher").respond_with_json({"message": "Key invalid"}, status=422)
    connectors = connectors_from(f"connectors:\n  ops:\n    type: opsgenie\n    api_url: http://127.0.0.1:{httpserver.port}\n"
                                 "    api_key: ${OPSGENIE_API_KEY}\n")
    _, outcome, _ = execute("opsgenie", parse_action("opsgenie", "connector: ops\n"), make_run({}, connectors))
    assert outcome.status == "failure" and outcome.reason == "received [422] status code"


# ------------------------------------------------------------------------------------ slack


def test_slack_posts_one_message_per_recipient(httpserver: HTTPServer):
    httpserver.expect_request("/services/T1/B2/xyz", method="POST").respond_with_data("ok")
    connectors = connectors_from(f"connectors:\n  chat:\n    type: slack\n"
                                 f"    url: http://127.0.0.1:{httpserver.port}/services/T1/B2/xyz\n")
    config = parse_action("slack", "account: chat\nmessage:\n  from: bot\n  to: ['#ops', '@ann']\n"
                                   "  text: '{{ctx.payload.n}} errors – ünïcødé'\n  icon: 'http://x/i.png'\n")
    _, outcome, result = execute("slack", config, make_run({"n": 2}, connectors))
    bodies = [entry[0].get_data() for entry in httpserver.log]
    assert bodies == [('{"channel":"%s","username":"bot","icon_url":"http://x/i.png","text":"2 errors – ünïcødé"}'
                       % channel).encode() for channel in ("#ops", "@ann")]
    assert all(entry[0].headers["Content-Type"] == "application/json" for entry in httpserver.log)
    assert outcome.status == "success"
    assert result == {"slack": {"account": "chat", "sent_messages": [
        {"status": "success", "to": to, "message": {"from": "bot", "icon": "http://x/i.png", "text": "2 errors – ünïcødé"}}
        for to in ("#ops", "@ann")]}}


def test_slack_failure_shows_masked_request(httpserver: HTTPServer):
    httpserver.expect_request("/services/T1/B2/xyz").respond_with_data("invalid_payload", status=400)
    connectors = connectors_from(f"connectors:\n  chat:\n    type: slack\n"
                                 f"    url: http://127.0.0.1:{httpserver.port}/services/T1/B2/xyz\n")
    config = parse_action("slack", "message: {text: hi}\n")
    _, outcome, result = execute("slack", config, make_run({}, connectors))
    assert outcome.status == "failure" and outcome.reason == "received [400] status code"
    [sent] = result["slack"]["sent_messages"]
    assert sent["status"] == "failure"
    assert sent["response"]["status"] == 400 and sent["response"]["body"] == "invalid_payload"
    assert sent["request"]["path"] == "/***"
    assert "T1/B2/xyz" not in json.dumps(result)


# ------------------------------------------------------------------------------------ TLS


@pytest.fixture
def tls_server(tls_files):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    server.expect_request("/secure").respond_with_data("ok")
    yield server
    server.clear()
    server.stop()


def test_tls_verify_with_ca_file_and_without(tls_server, tls_files):
    cert, _ = tls_files
    url = f"https://127.0.0.1:{tls_server.port}/secure"
    connectors = connectors_from(f"""
connectors:
  with-ca: {{type: webhook, url: '{url}', ca_file: '{cert}'}}
  default: {{type: webhook, url: '{url}'}}
  no-verify: {{type: webhook, url: '{url}', verify: false}}
""")
    run = make_run({}, connectors)
    outcomes = {name: execute("webhook", parse_action("webhook", f"connector: {name}\n"), run)[1]
                for name in ("with-ca", "default", "no-verify")}
    assert outcomes["with-ca"].status == "success"
    assert outcomes["no-verify"].status == "success"
    assert outcomes["default"].status == "failure"
    assert "CERTIFICATE_VERIFY_FAILED" in outcomes["default"].error["reason"]
    assert len(tls_server.log) == 2
