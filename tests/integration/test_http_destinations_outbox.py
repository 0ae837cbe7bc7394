"""PagerDuty, Jira, Microsoft Teams and Discord through the real delivery path: a watch (or rule) is
executed, its action renders the request, the durable outbox on the real Elasticsearch writes it and
sends it to a real HTTP server on 127.0.0.1. Checked: the exact request (method, path, headers with
their authentication, JSON body), a 429 or 5xx retried then delivered, a 400 that is final, a rule
that fires then recovers (PagerDuty trigger then resolve, one dedup key), and what dry-run shows.

No test depends on thread timing: waits are on the stored delivery's state (their timeouts only
matter on failure), and the receivers answer from a script.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import textwrap

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Response

from outbox_helpers import make_outbox, prefix  # noqa: F401  (the fixtures)
from outbox_helpers import Receiver, local, state_of, wait_until
from tests.integration.ruletype_helpers import RuleRunner, add_docs, create_index, iso
from watcher.cli import main
from watcher.definitions.load import load_paths
from watcher.delivery.direct import Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.es.outbox_store import DEAD, DELIVERED
from watcher.model.status import WatchStatus

pytestmark = pytest.mark.es

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone.utc)
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
JIRA_TOKEN = "jira-api-token-do-not-leak"
ENV = {"PD_KEY": ROUTING_KEY, "JIRA_TOKEN": JIRA_TOKEN}
SECRETS = (ROUTING_KEY, JIRA_TOKEN, "teams-secret-path", "discord-secret-token")
PAYLOAD = {"host": "db-1", "pct": 97, "errors": ["timeout", 'quote " and \\ backslash']}


def connectors_yaml(server: HTTPServer) -> str:
    base = f"http://127.0.0.1:{server.port}"
    return textwrap.dedent(f"""\
        connectors:
          pd:
            type: pagerduty
            routing_key: ${{PD_KEY}}
            url: {base}/v2/enqueue
            event_defaults: {{client: watcher}}
          jira:
            type: jira
            url: {base}/jira
            allow_http: true
            user: alerts@example.com
            password: ${{JIRA_TOKEN}}
            issue_defaults: {{project: {{key: OPS}}, issuetype: {{name: Bug}}}}
          teams:
            type: ms_teams
            url: {base}/webhookb2/teams-secret-path
          chat:
            type: discord
            url: {base}/api/webhooks/42/discord-secret-token
        """)


def set_secrets(monkeypatch) -> None:
    """The environment the connectors file reads its secrets from."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def watch_json(actions: dict) -> str:
    return json.dumps({"trigger": {"schedule": {"interval": "5m"}}, "input": {"simple": PAYLOAD},
                       "condition": {"always": {}}, "actions": actions})


class WatchRunner:
    """One watch file (with the connectors file) executed through a delivery, as the daemon does."""

    def __init__(self, tmp_path, server: HTTPServer, actions: dict, monkeypatch):
        set_secrets(monkeypatch)
        (tmp_path / "connectors.yaml").write_text(connectors_yaml(server))
        (tmp_path / "disk.json").write_text(watch_json(actions))
        loaded = load_paths([tmp_path])
        assert [str(p) for p in loaded.problems] == []
        self.watch, self.connectors = loaded.watches["disk"], loaded.connectors

    def secrets(self) -> list[str]:
        """The outbox's secrets provider: every connector's secrets (as the daemon gives them)."""
        return [secret for connector in self.connectors.values() for secret in connector.secrets]

    def send(self, make_outbox, until: str) -> tuple:
        """Execute through a started outbox (secrets from the connectors, as the daemon gives them) and
        wait until the delivery is ``until``: ``(outbox, record, delivery id)``."""
        outbox = make_outbox(secrets_provider=self.secrets)
        outbox.start()
        record = self.run(outbox)
        identifier = queued(record)
        wait_until(lambda: state_of(outbox, identifier) == until)
        return outbox, record, identifier

    def run(self, delivery) -> dict:
        run = Run(watch=self.watch, execution_time=T, triggered_time=T, scheduled_time=T,
                  services=Services(connectors=self.connectors), record_id="disk_1-2026-11-29T10:00:00.000Z")
        return execute_watch(self.watch, run, WatchStatus(), {"simulate": Simulate(), "execute": delivery},
                             ExecuteOptions(action_modes={"_all": "execute"}))


def queued(record: dict) -> str:
    """The outbox id of the record's only action."""
    (action,) = record["result"]["actions"]
    assert action["status"] == "success", action
    return action[action["type"]]["response"]["outbox"]["id"]


def requests_of(receiver: Receiver) -> list[tuple[dict, dict]]:
    return [(headers, json.loads(body)) for _, headers, body in receiver.calls]


def assert_no_secret(*values) -> None:
    text = json.dumps(values, default=str)
    for secret in SECRETS:
        assert secret not in text


# ------------------------------------------------------------------------------------ pagerduty


def test_pagerduty_event_is_retried_after_429_then_delivered(tmp_path, httpserver, make_outbox, monkeypatch):
    receiver = Receiver(Response('{"status":"throttle event","message":"Requests for this service are arriving too '
                                 'quickly"}', status=429, content_type="application/json"),
                        Response('{"status":"success","message":"Event processed","dedup_key":"disk-db-1"}',
                                 status=202, content_type="application/json"))
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"page": {"pagerduty": {
        "description": "Disk {{ctx.payload.pct}}% full on {{ctx.payload.host}}",
        "incident_key": "disk-{{ctx.payload.host}}", "attach_payload": True,
        "contexts": [{"type": "link", "href": "https://grafana.example.com/d/{{ctx.payload.host}}"}]}}},
        monkeypatch)
    outbox, record, identifier = runner.send(make_outbox, DELIVERED)

    (first_headers, first), (headers, body) = requests_of(receiver)
    assert first == body and first_headers["Idempotency-Key"] == headers["Idempotency-Key"] == identifier
    assert headers["Content-Type"] == "application/json"
    assert body == {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "disk-db-1",
                    "payload": {"summary": "Disk 97% full on db-1", "source": "disk", "severity": "critical",
                                "custom_details": {"payload": PAYLOAD}},
                    "client": "watcher", "links": [{"href": "https://grafana.example.com/d/db-1"}]}
    stored = outbox.store.get(identifier).source
    assert (stored["attempts"], stored["last_status"], stored["result"]) == (2, 202, {"dedup_key": "disk-db-1"})
    assert_no_secret(record, stored)


def test_pagerduty_400_is_final_with_pagerdutys_reason(tmp_path, httpserver, make_outbox, monkeypatch):
    receiver = Receiver(Response(json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                             "errors": ["'payload.summary' is missing or blank"]}),
                                 status=400, content_type="application/json"))
    httpserver.expect_request("/v2/enqueue").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"page": {"pagerduty": {"description": "d"}}}, monkeypatch)
    outbox, _, identifier = runner.send(make_outbox, DEAD)
    stored = outbox.store.get(identifier).source
    assert (stored["attempts"], stored["last_status"]) == (1, 400)
    assert stored["last_error"] == ("received [400] status code: Event object is invalid: 'payload.summary' is "
                                    "missing or blank (not retried)")
    assert len(receiver.calls) == 1


def test_a_rule_pages_on_firing_and_resolves_on_recovery(es, index_name, tmp_path, httpserver, make_outbox,
                                                         monkeypatch):
    receiver = Receiver(Response('{"status":"success","message":"Event processed"}', status=202))
    httpserver.expect_request("/v2/enqueue", method="POST").respond_with_handler(receiver)
    set_secrets(monkeypatch)
    create_index(es, index_name, {"host": {"type": "keyword"}})
    add_docs(es, index_name, [{"@timestamp": iso(T - dt.timedelta(minutes=m)), "host": "db-1"} for m in (1, 2, 3)])
    runner = RuleRunner(es, tmp_path, f"""\
        name: disk
        index: {index_name}
        window: 5m
        group_by: host
        condition: {{count: {{gte: 3}}}}
        title: "Disk errors on {{{{ group }}}}"
        message: "{{{{ count }}}} errors"
        actions:
          - connector: pd
            on: [firing, recovered]
        """, connectors_yaml(httpserver))
    outbox = make_outbox(secrets_provider=lambda: [ROUTING_KEY])
    outbox.start()

    fired = runner.run(T, mode="execute", delivery=outbox)
    (firing,) = fired["result"]["actions"][0]["foreach"]
    wait_until(lambda: state_of(outbox, firing["pagerduty"]["response"]["outbox"]["id"]) == DELIVERED)
    recovered = runner.run(T + dt.timedelta(minutes=5), mode="execute", delivery=outbox)  # no documents any more
    assert recovered["result"]["rule"]["recovered"] == ["db-1"]
    (resolving,) = recovered["result"]["actions"][0]["foreach"]
    assert resolving["event"] == "recovered"
    wait_until(lambda: state_of(outbox, resolving["pagerduty"]["response"]["outbox"]["id"]) == DELIVERED)

    (_, trigger), (_, resolve) = requests_of(receiver)
    assert trigger == {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "disk:db-1",
                       "payload": {"summary": "Disk errors on db-1", "source": "disk", "severity": "critical",
                                   "custom_details": {"message": "3 errors"}},
                       "client": "watcher"}
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", "disk:db-1")
    assert resolve["payload"]["summary"] == "rule 'disk' recovered for db-1"
    assert_no_secret(fired, recovered)


# ------------------------------------------------------------------------------------ jira


def test_jira_issue_is_retried_after_503_then_created(tmp_path, httpserver, make_outbox, monkeypatch):
    created = {"id": "10042", "key": "OPS-7", "self": f"{local(httpserver, '/jira/rest/api/2/issue/10042')}"}
    receiver = Receiver(Response("Service Unavailable", status=503),
                        Response(json.dumps(created), status=201, content_type="application/json"))
    httpserver.expect_request("/jira/rest/api/2/issue", method="POST").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"ticket": {"jira": {"account": "jira", "fields": {
        "summary": "Disk {{ctx.payload.pct}}% full on {{ctx.payload.host}}",
        "description": "{{#ctx.payload.errors}}- {{.}}\n{{/ctx.payload.errors}}",
        "labels": ["disk", "{{ctx.payload.host}}"], "priority": {"name": "High"}}}}}, monkeypatch)
    outbox, record, identifier = runner.send(make_outbox, DELIVERED)

    (_, first), (headers, body) = requests_of(receiver)
    assert first == body
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"alerts@example.com:{JIRA_TOKEN}".encode()).decode()
    assert (headers["Content-Type"], headers["Accept"]) == ("application/json", "application/json")
    assert body == {"fields": {"summary": "Disk 97% full on db-1",
                               "description": '- timeout\n- quote " and \\ backslash\n',
                               "labels": ["disk", "db-1"], "priority": {"name": "High"},
                               "project": {"key": "OPS"}, "issuetype": {"name": "Bug"}}}
    stored = outbox.store.get(identifier).source
    assert (stored["attempts"], stored["result"]) == (2, created)
    (action,) = record["result"]["actions"]
    assert action["jira"]["fields"] == body["fields"]
    assert action["jira"]["request"]["headers"]["Authorization"] == "::es_redacted::"
    assert_no_secret(record, stored)


def test_jira_refusing_a_field_is_final(tmp_path, httpserver, make_outbox, monkeypatch):
    receiver = Receiver(Response(json.dumps({"errorMessages": [], "errors": {"priority": "Priority name 'Urgent' "
                                                                                         "is not valid"}}),
                                 status=400, content_type="application/json"))
    httpserver.expect_request("/jira/rest/api/2/issue").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"ticket": {"jira": {"fields": {
        "summary": "s", "priority": {"name": "Urgent"}}}}}, monkeypatch)
    outbox, _, identifier = runner.send(make_outbox, DEAD)
    assert outbox.store.get(identifier).source["last_error"] == (
        "received [400] status code: Field [priority] has error [Priority name 'Urgent' is not valid] (not retried)")


# ------------------------------------------------------------------------------------ teams and discord


def test_ms_teams_card_is_retried_after_500_then_posted(tmp_path, httpserver, make_outbox, monkeypatch):
    receiver = Receiver(500, Response("1", status=200))
    httpserver.expect_request("/webhookb2/teams-secret-path", method="POST").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"notify": {"ms_teams": {
        "connector": "teams", "title": "Disk full on {{ctx.payload.host}}", "text": "{{ctx.payload.pct}}% used",
        "theme_color": "ff0000"}}}, monkeypatch)
    outbox, record, identifier = runner.send(make_outbox, DELIVERED)
    (_, first), (headers, body) = requests_of(receiver)
    assert first == body and headers["Content-Type"] == "application/json"
    assert body == {"@type": "MessageCard", "@context": "http://schema.org/extensions", "summary": "Disk full on db-1",
                    "title": "Disk full on db-1", "text": "97% used", "themeColor": "ff0000"}
    assert record["result"]["actions"][0]["ms_teams"]["request"]["path"] == "/***"
    assert_no_secret(record, outbox.store.get(identifier).source)


def test_discord_message_honours_retry_after_then_is_posted(tmp_path, httpserver, make_outbox, monkeypatch):
    receiver = Receiver(Response('{"message": "You are being rate limited.", "retry_after": 0.2, "global": false}',
                                 status=429, headers={"Retry-After": "0.2"}, content_type="application/json"),
                        Response("", status=204))
    httpserver.expect_request("/api/webhooks/42/discord-secret-token", method="POST").respond_with_handler(receiver)
    runner = WatchRunner(tmp_path, httpserver, {"notify": {"discord": {
        "connector": "chat", "title": "Disk full on {{ctx.payload.host}}", "text": "{{ctx.payload.pct}}% used",
        "embed_footer": "watcher"}}}, monkeypatch)
    outbox, _, identifier = runner.send(make_outbox, DELIVERED)
    (first_at, _, _), (second_at, _, _) = receiver.calls
    assert second_at - first_at >= 0.2  # Retry-After is a floor
    (_, first), (_, body) = requests_of(receiver)
    assert first == body == {"content": ":warning: Disk full on db-1 :warning:",
                             "embeds": [{"description": "97% used", "color": 16777215, "footer": {"text": "watcher"}}]}


# ------------------------------------------------------------------------------------ dry-run


def test_dry_run_shows_each_request_with_secrets_masked_and_execute_sends(es_cluster, tmp_path, httpserver):
    httpserver.expect_request("/v2/enqueue").respond_with_json({"status": "success", "dedup_key": "disk"}, status=202)
    httpserver.expect_request("/jira/rest/api/2/issue").respond_with_json(
        {"id": "1", "key": "OPS-1", "self": "http://jira/1"}, status=201)
    httpserver.expect_request("/webhookb2/teams-secret-path").respond_with_data("1")
    httpserver.expect_request("/api/webhooks/42/discord-secret-token").respond_with_data("", status=204)
    (tmp_path / "connectors.yaml").write_text(connectors_yaml(httpserver))
    (tmp_path / "disk.json").write_text(watch_json({
        "page": {"pagerduty": {"description": "Disk full on {{ctx.payload.host}}"}},
        "ticket": {"jira": {"fields": {"summary": "Disk full on {{ctx.payload.host}}"}}},
        "teams": {"ms_teams": {"connector": "teams", "text": "Disk full on {{ctx.payload.host}}"}},
        "chat": {"discord": {"connector": "chat", "text": "Disk full on {{ctx.payload.host}}"}}}))
    env = {**es_cluster.env(), **ENV}

    def dry_run(*args):
        result = CliRunner().invoke(main, ["dry-run", str(tmp_path / "disk.json"), *args], env=env,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert_no_secret(result.output)
        return result.output

    shown = dry_run()
    assert httpserver.log == []
    assert f"POST http://127.0.0.1:{httpserver.port}/v2/enqueue" in shown
    assert '"routing_key":"***","event_action":"trigger","dedup_key":"disk"' in shown
    assert f"POST http://127.0.0.1:{httpserver.port}/jira/rest/api/2/issue" in shown
    assert "Authorization: ::es_redacted::" in shown
    assert f"POST http://127.0.0.1:{httpserver.port}/***" in shown  # teams and discord: the URL path is the secret
    record = json.loads(dry_run("--json"))
    assert {a["id"]: a["status"] for a in record["result"]["actions"]} == {
        "page": "simulated", "ticket": "simulated", "teams": "simulated", "chat": "simulated"}

    sent = json.loads(dry_run("--json", "--action-mode", "execute"))
    actions = {a["id"]: a for a in sent["result"]["actions"]}
    assert {name: a["status"] for name, a in actions.items()} == {
        "page": "success", "ticket": "success", "teams": "success", "chat": "success"}
    assert actions["ticket"]["jira"]["result"] == {"id": "1", "key": "OPS-1", "self": "http://jira/1"}
    assert len(httpserver.log) == 4
