"""Connectors (connectors.yaml), action parsing and rendering, without a network (Simulate)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from watcher.definitions.connectors import check_references, find_connector, load_connectors
from watcher.model.watch import Action, Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.destinations import ACTIONS as REGISTRY
from watcher.engine.context import Run, Services
from watcher.model.requests import HttpRequest, HttpResponse, IndexRequest, LogMessage, Outcome
from watcher.delivery.direct import SendNow, Simulate

T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)
ENV = {"OPSGENIE_API_KEY": "og-key-123", "HOOK_PASSWORD": "hook-pass", "SLACK_URL": "https://hooks.slack.com/services/T1/B2/sekret"}


def connectors_from(text: str, environ=ENV):
    document = load_text(text, "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ=environ)
    return loaded, [str(p) for p in reader.problems]


def make_run(payload=None, connectors=None, metadata=None) -> Run:
    watch = Watch(id="my_watch", file="my_watch.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=metadata)
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=connectors or {}), payload=payload if payload is not None else {},
               record_id="my_watch_1-2024-05-01T10:15:30.123Z")


def parse_action(kind: str, text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = REGISTRY.get(kind).parse(reader, document.data, ())
    return config, [str(p) for p in reader.problems]


def simulate(kind: str, config, run: Run):
    module = REGISTRY.get(kind)
    rendered = module.render(config, run, run.model())
    outcome = Simulate().deliver(rendered, run.services)
    return rendered, outcome, module.result(config, rendered, outcome)


CONNECTORS = """
connectors:
  hook:
    type: webhook
    url: https://hooks.example.com:8443/base?team=sre
    headers: {X-Source: watcher}
    body: '{"watch":"{{ctx.watch_id}}"}'
    auth: {basic: {username: bot, password: '${HOOK_PASSWORD}'}}
    timeout: 2s
    read_timeout: 1500ms
  ops:
    type: opsgenie
    api_key: ${OPSGENIE_API_KEY}
  ops-eu:
    type: opsgenie
    api_key: ${OPSGENIE_API_KEY}
    api_url: https://api.eu.opsgenie.com/
    mode: alert_v2
    priority: P2
    tags: [prod]
  chat:
    type: slack
    url: ${SLACK_URL}
    message_defaults: {from: watcher-bot, to: ['#ops']}
  log:
    type: logging
    level: warn
    category: alerts.log
  store:
    type: index
    index: alerts
    refresh: true
"""


@pytest.fixture
def connectors():
    loaded, problems = connectors_from(CONNECTORS)
    assert problems == []
    return loaded


# ------------------------------------------------------------------------------------ loading


def test_load_all_types(connectors):
    assert {name: c.type for name, c in connectors.items()} == {
        "hook": "webhook", "ops": "opsgenie", "ops-eu": "opsgenie", "chat": "slack", "log": "logging", "store": "index"}
    hook = connectors["hook"].config
    assert hook.timeout == 2.0 and hook.read_timeout == 1.5 and hook.method == "post"
    assert hook.base() == {"scheme": "https", "host": "hooks.example.com", "port": 8443, "path": "/base",
                           "params": {"team": "sre"}}
    assert connectors["ops-eu"].config.api_url == "https://api.eu.opsgenie.com"
    assert connectors["store"].config.refresh == "true"


def test_secrets_collected_and_masked(connectors):
    assert connectors["ops"].secrets == ("og-key-123",)
    assert connectors["hook"].secrets == ("hook-pass",)
    assert connectors["chat"].secrets[0] == "services/T1/B2/sekret"
    shown = json.dumps([c.masked() for c in connectors.values()])
    for secret in ENV.values():
        assert secret not in shown
    assert connectors["ops"].masked()["api_key"] == "***"
    assert "og-key-123" not in repr(connectors["ops"])


def test_empty_file_and_empty_mapping():
    assert connectors_from("") == ({}, [])
    assert connectors_from("connectors: {}\n") == ({}, [])


def test_unknown_type_with_suggestion():
    _, problems = connectors_from("connectors:\n  a:\n    type: webhok\n    url: http://x\n")
    assert problems == ["connectors.yaml:3:11: connectors.a.type: unknown connector type 'webhok' "
                        "(did you mean 'webhook'?); expected one of: webhook, opsgenie, slack, email, logging, "
                        "index, pagerduty, jira, ms_teams, discord"]


def test_missing_type():
    _, problems = connectors_from("connectors:\n  a:\n    url: http://x\n")
    assert problems == ["connectors.yaml:2:3: connectors.a: missing required field 'type' "
                        "(one of: webhook, opsgenie, slack, email, logging, index, pagerduty, jira, ms_teams, "
                        "discord)"]


def test_unknown_key_with_suggestion_and_others_still_load():
    loaded, problems = connectors_from(
        "connectors:\n  bad:\n    type: opsgenie\n    api_kee: x\n    api_key: k\n  good:\n    type: logging\n")
    assert list(loaded) == ["good"]
    assert problems[0].startswith("connectors.yaml:4:5: connectors.bad.api_kee: unknown key 'api_kee' "
                                  "(did you mean 'api_key'?); expected one of: ")


def test_wrong_type_at_value_position():
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    host: example.com\n    port: many\n")
    assert problems == ["connectors.yaml:5:11: connectors.h.port: expected an integer, found a string 'many'"]


def test_substituted_value_never_shown_in_a_problem():
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    host: h\n    port: ${PORT}\n",
                                  environ={"PORT": "topsecretport"})
    assert problems == ["connectors.yaml:5:11: connectors.h.port: expected an integer, found a string '***'"]


def test_undefined_variable_reported_with_position():
    _, problems = connectors_from("connectors:\n  ops:\n    type: opsgenie\n    api_key: ${OPSGENIE_API_KEY}\n",
                                  environ={})
    assert problems == ["connectors.yaml:4:14: connectors.ops.api_key: undefined environment variable OPSGENIE_API_KEY"]


def test_webhook_needs_url_or_host_and_one_auth():
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    method: post\n")
    assert problems == ["connectors.yaml:3:5: connectors.h: give either url or host (with scheme, port, path, "
                        "params), not neither"]
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    url: http://x\n    auth: {}\n")
    assert problems == ["connectors.yaml:5:11: connectors.h.auth: expected exactly one of basic, bearer, api_key, found none"]


def test_bad_duration_and_method():
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    url: http://x\n    timeout: 10\n"
                                  "    method: fetch\n")
    assert problems == [
        "connectors.yaml:5:14: connectors.h.timeout: expected a duration such as 10s or 1500ms, found 10",
        "connectors.yaml:6:13: connectors.h.method: expected one of head, get, post, put, patch, delete, found 'fetch'",
    ]


def test_find_connector_and_check_references(connectors):
    assert find_connector(connectors, "ops", "opsgenie").name == "ops"
    with pytest.raises(LookupError, match=r"unknown connector \[opz\] \(did you mean 'ops'\?\)"):
        find_connector(connectors, "opz", "opsgenie")
    with pytest.raises(LookupError, match=r"connector \[log\] is of type \[logging\]"):
        find_connector(connectors, "log", "webhook")
    action = Action(id="a", type="webhook", config=parse_action("webhook", "connector: nope\n")[0], body={})
    assert check_references([action], connectors) == [
        "actions.a.webhook.connector: unknown connector [nope] (did you mean 'ops-eu'?); known connectors: chat, hook, log, ops, ops-eu, store"]


# ------------------------------------------------------------------------------------ delivery


def test_http_request_masked_and_repr():
    request = HttpRequest(method="POST", url="https://api/x?apiKey=k%2B1z", headers={"Authorization": "GenieKey k+1z",
                          "X-Other": "has k+1z inside"}, body='{"key":"k+1z"}', secrets=("k+1z",))
    assert request.masked() == {"method": "POST", "url": "https://api/x?apiKey=***",
                                "headers": {"Authorization": "::es_redacted::", "X-Other": "has *** inside"},
                                "body": '{"key":"***"}'}
    assert "k+1z" not in repr(request) and "k%2B1z" not in repr(request)


def test_response_record_shape():
    response = HttpResponse(503, (("Content-Type", "text/plain"), ("X.Trace", "a"), ("x.trace", "b")), "busy")
    assert response.as_record() == {"status": 503, "headers": {"content-type": ["text/plain"], "x_trace": ["a", "b"]},
                                    "body": "busy"}


def test_simulate_sends_nothing():
    assert Simulate().deliver(HttpRequest("GET", "http://127.0.0.1:9/"), None) == Outcome("simulated")


def test_send_now_logs_under_category(caplog):
    with caplog.at_level(logging.DEBUG, logger="alerts.x"):
        outcome = SendNow().deliver(LogMessage("warn", "alerts.x", "3 errors"), None)
    assert outcome.status == "success"
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [("alerts.x", "WARNING", "3 errors")]


def test_send_now_index_without_client_fails():
    outcome = SendNow().deliver(IndexRequest(docs=({"index": "i", "id": None, "source": {}},)), Services())
    assert outcome.status == "failure" and outcome.reason == "no Elasticsearch client is configured"


# ------------------------------------------------------------------------------------ logging


def test_logging_action_renders_and_results():
    config, problems = parse_action("logging", "text: '{{ctx.payload.hits.total}} errors in {{ctx.watch_id}}'\n")
    assert problems == []
    rendered, outcome, result = simulate("logging", config, make_run({"hits": {"total": 7}}))
    assert rendered == LogMessage("info", "watcher.actions.logging", "7 errors in my_watch")
    assert outcome.status == "simulated"
    assert result == {"logging": {"logged_text": "7 errors in my_watch"}}


def test_logging_action_uses_connector_defaults(connectors):
    config, _ = parse_action("logging", "text: hi\nconnector: log\n")
    rendered, _, _ = simulate("logging", config, make_run(connectors=connectors))
    assert (rendered.level, rendered.category) == ("warn", "alerts.log")
    config, _ = parse_action("logging", "text: hi\nconnector: log\nlevel: ERROR\ncategory: c\n")
    rendered, _, _ = simulate("logging", config, make_run(connectors=connectors))
    assert (rendered.level, rendered.category) == ("error", "c")


def test_logging_action_problems():
    _, problems = parse_action("logging", "txt: a\nlevel: loud\n")
    assert problems == [
        "watch.yaml:1:1: txt: unknown key 'txt' (did you mean 'text'?); expected one of: category, connector, level, text",
        "watch.yaml:1:1: missing required field 'text'",
        "watch.yaml:2:8: level: expected one of error, warn, info, debug, trace, found a string 'loud'",
    ]


def test_broken_mustache_is_a_definition_problem():
    _, problems = parse_action("logging", "text: 'x {{#a}} y'\n")
    assert len(problems) == 1 and problems[0].startswith("watch.yaml:1:7: text: invalid Mustache template: ")


# ------------------------------------------------------------------------------------ webhook


def test_webhook_url_shortcut_and_defaults():
    config, problems = parse_action("webhook", "url: http://127.0.0.1:8000/hook/{{ctx.watch_id}}?a=1&b=x%20y\n"
                                               "body: 'n={{ctx.payload.n}}'\n")
    assert problems == []
    rendered, outcome, result = simulate("webhook", config, make_run({"n": 5}))
    assert rendered.method == "GET"
    assert rendered.url == "http://127.0.0.1:8000/hook/my_watch?a=1&b=x+y"
    assert rendered.headers == {}  # no Content-Type unless set (trap 16)
    assert rendered.body == "n=5"
    assert (rendered.timeout_s, rendered.read_timeout_s) == (10.0, 10.0)
    assert result == {"webhook": {"request": {"host": "127.0.0.1", "port": 8000, "scheme": "http", "method": "get",
                                              "path": "/hook/my_watch", "params": {"a": "1", "b": "x y"}, "body": "n=5"}}}


def test_webhook_basic_auth_is_redacted_in_record():
    config, _ = parse_action("webhook", "host: h\nport: 80\nmethod: POST\nauth: {basic: {username: u, password: pw}}\n"
                                        "headers: {Content-Type: text/plain}\nconnection_timeout: 3s\nread_timeout_millis: 2500\n")
    rendered, _, result = simulate("webhook", config, make_run())
    assert rendered.headers == {"Content-Type": "text/plain", "Authorization": "Basic dTpwdw=="}
    assert (rendered.timeout_s, rendered.read_timeout_s) == (3.0, 2.5)
    assert result["webhook"]["request"]["auth"] == {"basic": {"username": "u", "password": "::es_redacted::"}}
    assert result["webhook"]["request"]["method"] == "post"
    assert "pw" not in json.dumps(result) and "dTpwdw" not in json.dumps(result)


def test_webhook_with_connector(connectors):
    config, problems = parse_action("webhook", "connector: hook\npath: /alerts/{{ctx.watch_id}}\n"
                                               "headers: {X-Run: '{{ctx.id}}'}\nparams: {p: '1'}\n")
    assert problems == []
    rendered, _, result = simulate("webhook", config, make_run(connectors=connectors))
    assert rendered.method == "POST"
    assert rendered.url == "https://hooks.example.com:8443/alerts/my_watch?team=sre&p=1"
    assert rendered.headers == {"X-Source": "watcher", "X-Run": "my_watch_1-2024-05-01T10:15:30.123Z",
                                "Authorization": "Basic Ym90Omhvb2stcGFzcw=="}
    assert rendered.body == '{"watch":"my_watch"}'  # the connector's body template
    assert (rendered.timeout_s, rendered.read_timeout_s) == (2.0, 1.5)
    assert "hook-pass" in rendered.secrets
    assert result["webhook"]["request"]["headers"]["Authorization"] == "::es_redacted::"


def test_webhook_connector_excludes_destination_fields():
    _, problems = parse_action("webhook", "connector: hook\nhost: other\n")
    assert problems == ["watch.yaml:2:1: host: 'host' cannot be combined with 'connector': the connector [hook] "
                        "gives the destination"]


def test_webhook_missing_host_and_port():
    _, problems = parse_action("webhook", "path: /x\n")
    assert problems == ["watch.yaml:1:1: missing required field 'host' (or 'url')",
                        "watch.yaml:1:1: missing required field 'port' (or 'url')"]


def test_unknown_connector_fails_at_render():
    config, _ = parse_action("webhook", "connector: nope\n")
    with pytest.raises(LookupError, match=r"unknown connector \[nope\]"):
        REGISTRY.get("webhook").render(config, make_run(), make_run().model())


# ------------------------------------------------------------------------------------ opsgenie


def test_opsgenie_eswatcher_request(connectors):
    config, problems = parse_action("opsgenie", "connector: ops\n")
    assert problems == []
    run = make_run({"hits": {"total": 2}}, connectors=connectors)
    rendered, _, result = simulate("opsgenie", config, run)
    assert rendered.method == "POST"
    assert rendered.url == "https://api.opsgenie.com/v1/json/eswatcher?apiKey=og-key-123"
    assert rendered.headers == {"Content-Type": "application/json"}
    body = json.loads(rendered.body)
    assert body == {"watch_id": "my_watch", "id": "my_watch_1-2024-05-01T10:15:30.123Z",
                    "execution_time": "2024-05-01T10:15:30.123Z",
                    "trigger": {"triggered_time": "2024-05-01T10:15:30.123Z",
                                "scheduled_time": "2024-05-01T10:15:30.123Z"},
                    "metadata": None, "payload": {"hits": {"total": 2}}, "vars": {}}
    assert result["opsgenie"]["mode"] == "eswatcher"
    assert result["opsgenie"]["request"]["params"] == {"apiKey": "***"}
    assert "og-key-123" not in json.dumps(result) and "og-key-123" not in json.dumps(rendered.masked())


def test_opsgenie_alert_v2_request(connectors):
    config, problems = parse_action("opsgenie", "connector: ops-eu\nmessage: '{{ctx.payload.msg}}'\n"
                                                "alias: 'w-{{ctx.watch_id}}'\ntags: ['{{ctx.watch_id}}', team]\n"
                                                "details: {count: '{{ctx.payload.n}}'}\n")
    assert problems == []
    rendered, _, result = simulate("opsgenie", config, make_run({"msg": "x" * 200, "n": 3}, connectors=connectors))
    assert rendered.url == "https://api.eu.opsgenie.com/v2/alerts"
    assert rendered.headers == {"Content-Type": "application/json", "Authorization": "GenieKey og-key-123"}
    assert json.loads(rendered.body) == {"message": "x" * 130, "alias": "w-my_watch", "priority": "P2",
                                         "tags": ["my_watch", "team"], "details": {"count": "3"}}
    assert result["opsgenie"]["mode"] == "alert_v2"
    assert result["opsgenie"]["request"]["headers"]["Authorization"] == "::es_redacted::"


def test_opsgenie_problems():
    _, problems = parse_action("opsgenie", "mode: eswatcher\nmessage: hi\n")
    assert problems == ["watch.yaml:1:1: missing required field 'connector' (an opsgenie connector of connectors.yaml)",
                        "watch.yaml:2:1: message: 'message' is only used in mode alert_v2 (mode eswatcher sends ctx as JSON)"]
    _, problems = parse_action("opsgenie", "connector: ops\npriority: P9\n")
    assert problems == ["watch.yaml:2:11: priority: expected one of P1, P2, P3, P4, P5, found a string 'P9'"]


# ------------------------------------------------------------------------------------ slack


def test_slack_message_per_recipient(connectors):
    config, problems = parse_action("slack", "account: chat\nmessage:\n  to: ['#a', '@b']\n  icon: ':fire:'\n"
                                             "  text: '{{ctx.payload.n}} hits'\n"
                                             "  attachments: [{title: 'T {{ctx.watch_id}}', color: danger}]\n")
    assert problems == []
    rendered, outcome, result = simulate("slack", config, make_run({"n": 4}, connectors=connectors))
    assert [r.url for r in rendered] == ["https://hooks.slack.com/services/T1/B2/sekret"] * 2
    assert [json.loads(r.body) for r in rendered] == [
        {"channel": channel, "username": "watcher-bot", "icon_emoji": ":fire:", "text": "4 hits",
         "attachments": [{"title": "T my_watch", "color": "danger"}]} for channel in ("#a", "@b")]
    assert result == {"slack": {"message": {"from": "watcher-bot", "to": ["#a", "@b"], "icon": ":fire:",
                                            "text": "4 hits", "attachments": [{"title": "T my_watch", "color": "danger"}]}}}
    assert rendered[0].masked()["url"] == "***"  # the whole URL came from ${SLACK_URL}


def test_slack_url_written_in_clear_masks_its_path():
    loaded, _ = connectors_from("connectors:\n  s:\n    type: slack\n    url: https://hooks.slack.com/services/X/Y/Z\n")
    config, _ = parse_action("slack", "message: {text: hi}\n")
    rendered, _, _ = simulate("slack", config, make_run(connectors=loaded))
    assert rendered[0].masked()["url"] == "https://hooks.slack.com/***"


def test_slack_defaults_and_dynamic_attachments(connectors):
    config, _ = parse_action("slack", "message:\n  dynamic_attachments:\n    list_path: ctx.payload.items\n"
                                      "    attachment_template: {title: '{{name}}', text: '{{count}}'}\n")
    rendered, _, _ = simulate("slack", config, make_run({"items": [{"name": "a", "count": 1}, {"name": "b", "count": 2}]},
                                                        connectors=connectors))
    assert [json.loads(r.body) for r in rendered] == [
        {"channel": "#ops", "username": "watcher-bot",
         "attachments": [{"title": "a", "text": "1"}, {"title": "b", "text": "2"}]}]


def test_slack_needs_text_or_attachments(connectors):
    config, _ = parse_action("slack", "account: chat\nmessage: {to: '#x'}\n")
    with pytest.raises(ValueError, match="Both text and attachments cannot be null."):
        simulate("slack", config, make_run(connectors=connectors))


# ------------------------------------------------------------------------------------ index


def test_index_single_document_simulated():
    config, problems = parse_action("index", "index: alerts\ndoc_id: d1\nrefresh: wait_for\n"
                                             "execution_time_field: '@timestamp'\n")
    assert problems == []
    rendered, _, result = simulate("index", config, make_run({"n": 1}))
    assert rendered.docs == ({"index": "alerts", "id": "d1", "source": {"n": 1, "@timestamp": "2024-05-01T10:15:30.123Z"}},)
    assert result == {"index": {"request": {"index": "alerts", "doc_id": "d1", "refresh": "wait_for",
                                            "source": {"n": 1, "@timestamp": "2024-05-01T10:15:30.123Z"}}}}


def test_index_doc_list_is_bulk_with_per_doc_metadata():
    config, _ = parse_action("index", "op_type: create\n")
    run = make_run({"_doc": [{"_index": "a", "_id": "1", "v": 1}, {"_index": "b", "v": 2}]})
    rendered, _, result = simulate("index", config, run)
    assert rendered.bulk and rendered.op_type == "create"
    assert rendered.docs == ({"index": "a", "id": "1", "source": {"v": 1}}, {"index": "b", "id": None, "source": {"v": 2}})
    assert result == {"index": {"request": {"index": "", "doc_id": "", "source": [{"_id": "1", "_index": "a"},
                                                                                  {"_id": None, "_index": "b"}]}}}


def test_index_conflicts_are_errors():
    module = REGISTRY.get("index")
    config, _ = parse_action("index", "index: alerts\n")
    run = make_run({"_index": "other", "v": 1})
    with pytest.raises(ValueError, match=r"\[ctx.payload._index\] or \[ctx.payload._doc._index\] were set together "
                                         r"with action \[index\] field"):
        module.render(config, run, run.model())
    config, _ = parse_action("index", "index: alerts\ndoc_id: x\n")
    run = make_run({"_doc": [{"v": 1}]})
    with pytest.raises(ValueError, match=r"\[doc_id\] cannot be used with bulk \[_doc\] indexing"):
        module.render(config, run, run.model())
    run = make_run({"_doc": "text"})
    with pytest.raises(ValueError, match=r"must either hold a Map or an List/Array of Maps"):
        module.render(config, run, run.model())


def test_index_connector_defaults(connectors):
    config, _ = parse_action("index", "connector: store\n")
    rendered, _, _ = simulate("index", config, make_run({"v": 1}, connectors=connectors))
    assert rendered.docs[0]["index"] == "alerts" and rendered.refresh == "true" and rendered.timeout_s == 60.0


def test_index_problems():
    _, problems = parse_action("index", "op_type: upsert\nrefresh: sometimes\ntimeout: soon\n")
    assert problems == [
        "watch.yaml:1:10: op_type: expected index or create, found a string 'upsert'",
        "watch.yaml:2:10: refresh: expected true, false or wait_for, found a string 'sometimes'",
        "watch.yaml:3:10: timeout: " + problems[2].split("timeout: ", 1)[1],
    ]
    assert "expected" in problems[2]


def test_a_mustache_syntax_error_in_a_webhook_body_is_a_load_problem():
    _, problems = connectors_from("connectors:\n  h:\n    type: webhook\n    url: http://127.0.0.1:8000/x\n"
                                  "    body: '{{#toJson}}ctx.payload'\n")
    assert problems == ["connectors.yaml:5:11: connectors.h.body: Mustache template error at line 1, column 1: "
                        "unclosed section {{#toJson}}: missing {{/toJson}}"]
