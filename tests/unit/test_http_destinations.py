"""PagerDuty, Jira, Microsoft Teams and Discord: connectors, action parsing and rendering, rule
defaults, response reading and ElastAlert2 conversion, without a network (Simulate)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import textwrap

import pytest
from click.testing import CliRunner

from watcher.cli.definitions import convert as convert_command
from watcher.definitions.compile import watch_to_rule
from watcher.definitions.connectors import load_connectors
from watcher.definitions.from_elastalert import ConversionError, NoActionsError, convert_text
from watcher.definitions.load import load_paths
from watcher.delivery.direct import Simulate
from watcher.delivery.retry import classify
from watcher.destinations import ACTIONS, CONNECTORS
from watcher.destinations import discord, jira, ms_teams, pagerduty
from watcher.engine.context import Run, Services
from watcher.model.problems import Reader
from watcher.model.requests import HttpResponse
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
JIRA_PASSWORD = "jira-api-token-XYZ"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/team-secret-1/IncomingWebhook/abc/def"
DISCORD_URL = "https://discord.com/api/webhooks/1234/discord-secret-token"
ENV = {"PD_KEY": ROUTING_KEY, "JIRA_TOKEN": JIRA_PASSWORD, "TEAMS_URL": TEAMS_URL, "DISCORD_URL": DISCORD_URL}
SECRETS = (ROUTING_KEY, JIRA_PASSWORD, "team-secret-1", "discord-secret-token")

CONNECTORS_FILE = """
connectors:
  pd:
    type: pagerduty
    routing_key: ${PD_KEY}
  jira:
    type: jira
    url: https://jira.example.com
    user: alerts@example.com
    password: ${JIRA_TOKEN}
    issue_defaults: {project: {key: OPS}, issuetype: {name: Bug}, labels: [watcher]}
  teams:
    type: ms_teams
    url: ${TEAMS_URL}
    theme_color: '#0076D7'
  chat:
    type: discord
    url: ${DISCORD_URL}
"""


def connectors_from(text: str = CONNECTORS_FILE, environ=ENV):
    document = load_text(textwrap.dedent(text), "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ=environ)
    return loaded, [str(p) for p in reader.problems]


def make_run(payload=None, connectors=None, watch_id: str = "disk_watch") -> Run:
    watch = Watch(id=watch_id, file=f"{watch_id}.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=None)
    if connectors is None:
        connectors, problems = connectors_from()
        assert problems == []
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=connectors), payload=payload if payload is not None else {},
               record_id=f"{watch_id}_1-2024-05-01T10:15:30.123Z")


def parse_action(kind: str, text: str):
    document = load_text(textwrap.dedent(text), "watch.yaml")
    reader = Reader(document)
    config = ACTIONS.get(kind).parse(reader, document.data, ())
    return config, [str(p) for p in reader.problems]


def parsed(kind: str, text: str):
    config, problems = parse_action(kind, text)
    assert problems == []
    return config


def simulate(kind: str, config, run: Run, model: dict | None = None):
    module = ACTIONS.get(kind)
    rendered = module.render(config, run, model if model is not None else run.model())
    outcome = Simulate().deliver(rendered, run.services)
    return rendered, module.result(config, rendered, outcome)


def sent_json(rendered) -> dict:
    return json.loads(rendered.body)


def assert_no_secret(*values) -> None:
    text = json.dumps(values, default=repr)
    for secret in SECRETS:
        assert secret not in text


# ------------------------------------------------------------------------------------ pagerduty


def test_pagerduty_watcher_action_renders_the_events_api_v2_body():
    config = parsed("pagerduty", """
        description: 'Disk {{ctx.payload.pct}}% full on {{ctx.payload.host}}'
        incident_key: 'disk-{{ctx.payload.host}}'
        client: '/watcher/{{ctx.watch_id}}'
        client_url: https://kibana.example.com
        attach_payload: true
        contexts:
          - {type: link, href: 'https://grafana.example.com/d/{{ctx.payload.host}}', text: dashboard}
          - {type: image, src: 'https://img.example.com/{{ctx.payload.host}}.png', alt: graph}
        """)
    run = make_run({"host": "db-1", "pct": 97})
    rendered, result = simulate("pagerduty", config, run)
    assert (rendered.method, rendered.url) == ("POST", "https://events.pagerduty.com/v2/enqueue")
    assert rendered.headers == {"Content-Type": "application/json"}
    assert sent_json(rendered) == {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "disk-db-1",
        "payload": {"summary": "Disk 97% full on db-1", "source": "disk_watch", "severity": "critical",
                    "custom_details": {"payload": {"host": "db-1", "pct": 97}}},
        "client": "/watcher/disk_watch", "client_url": "https://kibana.example.com",
        "links": [{"href": "https://grafana.example.com/d/db-1", "text": "dashboard"}],
        "images": [{"src": "https://img.example.com/db-1.png", "alt": "graph"}]}
    assert result == {"pagerduty": {
        "event": {"description": "Disk 97% full on db-1", "incident_key": "disk-db-1",
                  "client": "/watcher/disk_watch", "client_url": "https://kibana.example.com",
                  "attach_payload": True, "event_type": "trigger",
                  "contexts": [{"type": "link", "href": "https://grafana.example.com/d/db-1", "text": "dashboard"},
                               {"type": "image", "src": "https://img.example.com/db-1.png", "alt": "graph"}]},
        "request": result["pagerduty"]["request"]}}
    assert json.loads(result["pagerduty"]["request"]["body"])["routing_key"] == "***"
    assert_no_secret(result, rendered.masked(), repr(rendered))


def test_pagerduty_defaults_are_watchers_then_the_connectors():
    rendered, _ = simulate("pagerduty", parsed("pagerduty", "description: down\n"), make_run())
    body = sent_json(rendered)
    assert (body["event_action"], body["dedup_key"], body["payload"]) == (
        "trigger", "disk_watch", {"summary": "down", "source": "disk_watch", "severity": "critical"})
    connectors, problems = connectors_from("""
        connectors:
          pd:
            type: pagerduty
            routing_key: ${PD_KEY}
            url: https://events.eu.pagerduty.com/v2/enqueue
            event_defaults: {description: from defaults, incident_key: key-1, client: watcher, severity: warning,
                             source: prod, component: disk, group: db, class: capacity, attach_payload: true}
        """)
    assert problems == []
    rendered, _ = simulate("pagerduty", parsed("pagerduty", "event_type: acknowledge\n"),
                           make_run({"a": 1}, connectors))
    assert rendered.url == "https://events.eu.pagerduty.com/v2/enqueue"
    assert sent_json(rendered) == {
        "routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "key-1",
        "payload": {"summary": "from defaults", "source": "prod", "severity": "warning", "component": "disk",
                    "group": "db", "class": "capacity", "custom_details": {"payload": {"a": 1}}},
        "client": "watcher"}


def test_pagerduty_limits_summary_and_dedup_key():
    long_key = "k" * 300
    config = parsed("pagerduty", f"description: '{'x' * 1100}'\nincident_key: '{long_key}'\nevent_type: resolve\n")
    body = sent_json(simulate("pagerduty", config, make_run())[0])
    assert len(body["payload"]["summary"]) == 1024
    assert body["dedup_key"] == "sha-" + hashlib.sha256(long_key.encode()).hexdigest()


@pytest.mark.parametrize("text, message", [
    ("event_type: '{{ctx.payload.kind}}'\ndescription: d\n",
     "pagerduty event_type rendered as 'page'; expected one of trigger, acknowledge, resolve"),
    ("severity: '{{ctx.payload.kind}}'\ndescription: d\n",
     "pagerduty severity rendered as 'page'; expected one of critical, error, warning, info"),
    ("incident_key: ''\nevent_type: resolve\ndescription: d\n",
     "a pagerduty resolve event needs a dedup key: incident_key rendered empty"),
    ("client: c\n", "could not create pagerduty event: missing required [description] (give it in the action or "
                    "in the connector's event_defaults)"),
])
def test_pagerduty_render_errors_say_what_was_expected(text, message):
    with pytest.raises(ValueError) as raised:
        simulate("pagerduty", parsed("pagerduty", text), make_run({"kind": "page"}))
    assert str(raised.value) == message


def test_pagerduty_account_is_the_connector_or_the_only_one():
    run = make_run()
    rendered, result = simulate("pagerduty", parsed("pagerduty", "account: pd\ndescription: d\n"), run)
    assert result["pagerduty"]["event"]["account"] == "pd"
    two, _ = connectors_from(CONNECTORS_FILE + "  pd2:\n    type: pagerduty\n    routing_key: other\n")
    with pytest.raises(LookupError, match="no pagerduty account given and 2 pagerduty connectors are defined"):
        simulate("pagerduty", parsed("pagerduty", "description: d\n"), make_run(connectors=two))
    with pytest.raises(LookupError, match=r"connector \[jira\] is of type \[jira\]"):
        simulate("pagerduty", parsed("pagerduty", "account: jira\ndescription: d\n"), run)


def test_pagerduty_parse_problems_name_line_field_and_expectation():
    _, problems = parse_action("pagerduty", """
        description: d
        event_type: tigger
        severity: fatal
        attach_payload: 'yes'
        account: pd
        connector: other
        contexts:
          - {type: link, text: no href}
          - {type: image, src: 'x', text: images have no text}
          - {type: video, href: 'x'}
        incidentkey: k
        """)
    assert problems == [
        "watch.yaml:12:1: incidentkey: unknown key 'incidentkey' (did you mean 'incident_key'?); expected one of: "
        "account, attach_payload, class, client, client_url, component, connector, context, contexts, custom_details, "
        "description, event_type, group, incident_key, proxy, severity, source",
        "watch.yaml:6:1: account: 'account' (pd) and 'connector' (other) name different connectors",
        "watch.yaml:3:13: event_type: expected one of trigger, acknowledge, resolve (or a template that renders one), "
        "found a string 'tigger'",
        "watch.yaml:4:11: severity: expected one of critical, error, warning, info (or a template that renders one), "
        "found a string 'fatal'",
        "watch.yaml:5:17: attach_payload: expected true or false, found a string 'yes'",
        "watch.yaml:9:5: contexts[0]: missing required field 'href' for a link context",
        "watch.yaml:10:29: contexts[1].text: unknown key 'text'; expected one of: alt, href, src, type",
        "watch.yaml:11:12: contexts[2].type: expected link or image, found a string 'video'"]


def test_pagerduty_connector_problems_never_show_the_key():
    _, problems = connectors_from("""
        connectors:
          pd:
            type: pagerduty
            routing_key: ${PD_KEY}
            url: events.pagerduty.com
            event_defaults: {severity: fatal, dedup: x}
          pd2:
            type: pagerduty
        """)
    assert problems == [
        "connectors.yaml:6:10: connectors.pd.url: expected a URL such as https://events.pagerduty.com/v2/enqueue, "
        "found 'events.pagerduty.com'",
        "connectors.yaml:7:32: connectors.pd.event_defaults.severity: expected one of 'critical', 'error', 'warning' "
        "or 'info', found a string 'fatal'",
        "connectors.yaml:7:39: connectors.pd.event_defaults.dedup: unknown key 'dedup'; expected one of: "
        "attach_payload, class, client, client_url, component, description, event_type, group, incident_key, "
        "severity, source",
        "connectors.yaml:8:3: connectors.pd2: missing required field 'routing_key'"]
    assert_no_secret(problems)


def test_pagerduty_answers_202_success_400_final_with_reason_429_and_5xx_retried():
    accepted = pagerduty.interpret(HttpResponse(202, body='{"status":"success","message":"Event processed",'
                                                          '"dedup_key":"disk-db-1"}'))
    assert accepted.status == "success" and classify(accepted) == "delivered"
    assert pagerduty.delivered(accepted) == {"dedup_key": "disk-db-1"}
    invalid = pagerduty.interpret(HttpResponse(400, body=json.dumps({
        "status": "invalid event", "message": "Event object is invalid",
        "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]})))
    assert invalid.reason == ("received [400] status code: Event object is invalid: Length of 'routing_key' is "
                              "incorrect (should be 32 characters)")
    assert classify(invalid) == "dead"
    assert classify(pagerduty.interpret(HttpResponse(429, body="rate limited"))) == "retry"
    assert classify(pagerduty.interpret(HttpResponse(502, body="<html>"))) == "retry"
    assert pagerduty.interpret(HttpResponse(502, body="<html>")).reason == "received [502] status code"


def test_pagerduty_result_after_a_failure_carries_watchers_reason_and_the_response():
    config = parsed("pagerduty", "description: d\naccount: pd\n")
    rendered = ACTIONS.get("pagerduty").render(config, make_run(), make_run().model())
    outcome = pagerduty.interpret(HttpResponse(400, body='{"message":"Event object is invalid","errors":["x"]}'))
    result = pagerduty.result(config, rendered, outcome)["pagerduty"]
    assert result["account"] == "pd"
    assert result["sent_event"]["reason"] == "received [400] status code: Event object is invalid: x"
    assert result["response"]["status"] == 400
    assert_no_secret(result)


# ------------------------------------------------------------------------------------ rules


RULE = """\
name: disk
index: metrics-*
window: 5m
group_by: host.name
condition: {count: {gte: 1}}
title: "Disk full on {{ group }}"
message: "{{ count }} samples above 90%"
actions:
"""


@pytest.fixture
def rule_env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def alert_model(run: Run, status: str, group="db-1") -> dict:
    """The model a rule's action is rendered with (watcher.engine.rules.RuleAlerts.variables)."""
    title = f"Disk full on {group}" if status == "firing" else f"rule 'disk' recovered for {group}"
    variables = {"rule": {"name": "disk"}, "group": group, "count": 3, "status": status, "title": title,
                 "message": "3 samples above 90%", "hits": [], "details": {}}
    return {**run.model(), **variables}


def rule_action(tmp_path, actions: str):
    (tmp_path / "connectors.yaml").write_text(textwrap.dedent(CONNECTORS_FILE))
    (tmp_path / "rule.yaml").write_text(RULE + textwrap.dedent(actions))
    loaded = load_paths([tmp_path])
    assert [str(p) for p in loaded.problems] == []
    (watch,) = loaded.watches.values()
    return watch, loaded.connectors


def test_a_rule_pages_on_firing_and_resolves_on_recovery_with_the_same_dedup_key(tmp_path, rule_env):
    watch, connectors = rule_action(tmp_path, "  - connector: pd\n    on: [firing, recovered]\n    severity: error\n")
    (action,) = watch.actions
    run = make_run(connectors=connectors, watch_id="disk")
    firing, _ = simulate("pagerduty", action.config, run, alert_model(run, "firing"))
    recovered, _ = simulate("pagerduty", action.config, run, alert_model(run, "recovered"))
    assert sent_json(firing) == {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "disk:db-1",
        "payload": {"summary": "Disk full on db-1", "source": "disk", "severity": "error",
                    "custom_details": {"message": "3 samples above 90%"}}}
    assert sent_json(recovered)["event_action"] == "resolve"
    assert sent_json(recovered)["dedup_key"] == "disk:db-1"
    ungrouped = {**alert_model(run, "firing"), "group": None}
    assert sent_json(simulate("pagerduty", action.config, run, ungrouped)[0])["dedup_key"] == "disk"


def test_rule_defaults_of_each_new_connector_and_their_inverse(tmp_path, rule_env):
    watch, connectors = rule_action(tmp_path, """\
          - connector: pd
            custom_details: {host: "{{ group }}"}
          - connector: jira
            fields: {labels: ["{{ group }}", disk], priority: {name: High}}
          - connector: teams
          - connector: chat
            embed_footer: "rule {{ rule.name }}"
        """)
    run = make_run(connectors=connectors, watch_id="disk")
    model = alert_model(run, "firing")
    by_type = {action.type: action.config for action in watch.actions}
    page = sent_json(simulate("pagerduty", by_type["pagerduty"], run, model)[0])
    assert page["payload"]["custom_details"] == {"message": "3 samples above 90%", "host": "db-1"}
    issue = sent_json(simulate("jira", by_type["jira"], run, model)[0])
    assert issue == {"fields": {"summary": "Disk full on db-1", "description": "3 samples above 90%",
                                "labels": ["db-1", "disk"], "priority": {"name": "High"},
                                "project": {"key": "OPS"}, "issuetype": {"name": "Bug"}}}
    card = sent_json(simulate("ms_teams", by_type["ms_teams"], run, model)[0])
    assert card == {"@type": "MessageCard", "@context": "http://schema.org/extensions", "summary": "Disk full on db-1",
                    "title": "Disk full on db-1", "text": "3 samples above 90%", "themeColor": "0076D7"}
    message = sent_json(simulate("discord", by_type["discord"], run, model)[0])
    assert message == {"content": ":warning: Disk full on db-1 :warning:",
                       "embeds": [{"description": "3 samples above 90%", "color": 0xFFFFFF,
                                   "footer": {"text": "rule disk"}}]}
    back = watch_to_rule(watch)["actions"]
    assert back == [{"connector": "pd", "custom_details": {"host": "{{ group }}"}},
                    {"connector": "jira", "fields": {"labels": ["{{ group }}", "disk"], "priority": {"name": "High"}}},
                    {"connector": "teams"}, {"connector": "chat", "embed_footer": "rule {{ rule.name }}"}]


def test_a_rule_action_with_a_bad_override_is_reported_at_its_line(tmp_path, rule_env):
    (tmp_path / "connectors.yaml").write_text(textwrap.dedent(CONNECTORS_FILE))
    (tmp_path / "rule.yaml").write_text(RULE + "  - connector: pd\n    severity: fatal\n"
                                               "  - connector: jira\n    fields: {project: OPS}\n"
                                               "  - connector: chat\n    embed_color: blue\n")
    problems = [str(p) for p in load_paths([tmp_path]).problems]
    rule = str(tmp_path / "rule.yaml")
    assert problems == [
        f"{rule}:10:15: actions[0].severity: expected one of critical, error, warning, info (or a template that "
        "renders one), found a string 'fatal'",
        f"{rule}:12:23: actions[1].fields.project: expected an object with key or id, such as {{key: OPS}}, found a "
        "string 'OPS'",
        f"{rule}:14:18: actions[2].embed_color: expected a colour number from 0 to 16777215 (0xFFFFFF), found a "
        "string 'blue'"]


# ------------------------------------------------------------------------------------ jira


def test_jira_issue_from_fields_with_defaults_and_basic_auth():
    config = parsed("jira", """
        account: jira
        fields:
          summary: '{{ctx.payload.count}} errors on {{ctx.payload.host}}'
          description: "Errors:\\n{{#ctx.payload.errors}}- {{.}}\\n{{/ctx.payload.errors}}"
          labels: ['{{ctx.payload.host}}', prod]
          priority: {name: High}
          customfield_{{ctx.payload.field}}: {value: '{{ctx.payload.host}}'}
        """)
    run = make_run({"count": 2, "host": "db-1", "errors": ["timeout", "refused"], "field": "10010"})
    rendered, result = simulate("jira", config, run)
    assert (rendered.method, rendered.url) == ("POST", "https://jira.example.com/rest/api/2/issue")
    assert rendered.headers["Authorization"] == "Basic " + __import__("base64").b64encode(
        f"alerts@example.com:{JIRA_PASSWORD}".encode()).decode()
    assert rendered.headers["Accept"] == "application/json"
    fields = {"summary": "2 errors on db-1", "description": "Errors:\n- timeout\n- refused\n",
              "labels": ["db-1", "prod"], "priority": {"name": "High"}, "customfield_10010": {"value": "db-1"},
              "project": {"key": "OPS"}, "issuetype": {"name": "Bug"}}
    assert sent_json(rendered) == {"fields": fields}
    assert result["jira"]["account"] == "jira" and result["jira"]["fields"] == fields
    assert result["jira"]["request"]["headers"]["Authorization"] == "::es_redacted::"
    assert_no_secret(result, rendered.masked())


def test_jira_created_issue_is_in_the_result_and_errors_read_like_watchers():
    config = parsed("jira", "fields: {summary: s}\n")
    run = make_run()
    rendered = ACTIONS.get("jira").render(config, run, run.model())
    created = jira.interpret(HttpResponse(201, body='{"id":"10042","key":"OPS-7","self":'
                                                    '"https://jira.example.com/rest/api/2/issue/10042"}'))
    assert jira.result(config, rendered, created)["jira"]["result"] == {
        "id": "10042", "key": "OPS-7", "self": "https://jira.example.com/rest/api/2/issue/10042"}
    assert jira.delivered(created) == {"id": "10042", "key": "OPS-7",
                                       "self": "https://jira.example.com/rest/api/2/issue/10042"}
    refused = jira.interpret(HttpResponse(400, body=json.dumps({
        "errorMessages": [], "errors": {"customfield_10004": "Epic Name is required."}})))
    assert refused.reason == "received [400] status code: Field [customfield_10004] has error [Epic Name is required.]"
    assert classify(refused) == "dead"
    assert "result" not in jira.result(config, rendered, refused)["jira"]
    assert jira.result(config, rendered, refused)["jira"]["reason"] == refused.reason
    assert classify(jira.interpret(HttpResponse(429))) == "retry"
    assert classify(jira.interpret(HttpResponse(503, body="maintenance"))) == "retry"


def test_jira_bearer_token_context_path_and_summary_limit():
    connectors, problems = connectors_from("""
        connectors:
          jira:
            type: jira
            url: https://example.com/jira/
            token: ${JIRA_TOKEN}
        """)
    assert problems == []
    config = parsed("jira", f"fields: {{project: {{id: '10000'}}, issuetype: {{id: '3'}}, summary: '{'s' * 300}'}}\n")
    rendered, _ = simulate("jira", config, make_run(connectors=connectors))
    assert rendered.url == "https://example.com/jira/rest/api/2/issue"
    assert rendered.headers["Authorization"] == f"Bearer {JIRA_PASSWORD}"
    summary = sent_json(rendered)["fields"]["summary"]
    assert len(summary) == 255 and summary.endswith("s…")


@pytest.mark.parametrize("url, endpoint", [
    ("https://jira.example.com", "https://jira.example.com/rest/api/2/issue"),
    ("https://jira.example.com/", "https://jira.example.com/rest/api/2/issue"),
    ("https://jira.example.com/rest/api/2/issue", "https://jira.example.com/rest/api/2/issue"),
    ("https://example.com/jira/rest/api/3/issue/", "https://example.com/jira/rest/api/3/issue/"),
    ("https://example.com:8443/tools/jira", "https://example.com:8443/tools/jira/rest/api/2/issue"),
])
def test_jira_endpoint(url, endpoint):
    config = jira.Config(type="jira", url=url, token="t")
    assert config.endpoint() == endpoint


def test_jira_missing_required_fields_fail_before_sending():
    connectors, _ = connectors_from("connectors:\n  j:\n    type: jira\n    url: https://j.example.com\n    token: t\n")
    with pytest.raises(ValueError, match=r"the jira issue has no project, issuetype: give them in the action's "
                                         r"fields or the connector's issue_defaults"):
        simulate("jira", parsed("jira", "fields: {summary: s}\n"), make_run(connectors=connectors))


def test_jira_connector_problems():
    _, problems = connectors_from("""
        connectors:
          a: {type: jira, url: 'http://jira.local', user: u, password: '${JIRA_TOKEN}'}
          b: {type: jira, url: 'https://jira.local', user: u, password: p, token: t}
          c: {type: jira, url: 'https://jira.local'}
          d: {type: jira, url: 'https://jira.local', password: p}
          e: {type: jira, url: 'https://jira.local', token: t, issue_defaults: {summary: '{{#x}}'}}
          f: {type: jira, url: 'http://jira.local', token: t, allow_http: true}
        """)
    assert problems == [
        "connectors.yaml:3:6: connectors.a: the url is http: Jira credentials would travel in clear; use https, or "
        "set allow_http: true (Watcher's setting of the same name)",
        "connectors.yaml:4:6: connectors.b: expected exactly one of password (with user) or token, found both",
        "connectors.yaml:5:6: connectors.c: expected exactly one of password (with user) or token, found neither",
        "connectors.yaml:6:6: connectors.d: password needs user (the Jira account's user name or e-mail)",
        "connectors.yaml:7:72: connectors.e.issue_defaults: summary: invalid Mustache template: unclosed section "
        "{{#x}}: missing {{/x}} (template line 1, column 1)"]
    assert_no_secret(problems)


def test_jira_action_problems():
    _, problems = parse_action("jira", """
        account: jira
        fields:
          project: OPS
          issuetype: {title: Bug}
          summary: {text: s}
          labels: [ok, 'two words']
          priority: High
          description: '{{#open}}'
        """)
    assert problems == [
        "watch.yaml:9:16: fields.description: invalid Mustache template: unclosed section {{#open}}: missing "
        "{{/open}} (template line 1, column 1)",
        "watch.yaml:4:12: fields.project: expected an object with key or id, such as {key: OPS}, found a string 'OPS'",
        "watch.yaml:5:14: fields.issuetype: expected an object with name or id, such as {name: Bug}, found a mapping "
        "with keys title",
        "watch.yaml:8:13: fields.priority: expected an object with name or id, such as {name: …}, found a string "
        "'High'",
        "watch.yaml:6:12: fields.summary: expected a text (template), found a mapping with keys text",
        "watch.yaml:7:16: fields.labels[1]: expected a label without spaces (Jira refuses them), found a string "
        "'two words'"]
    _, problems = parse_action("jira", "fields: [summary]\n")
    assert problems == ["watch.yaml:1:9: fields: expected a mapping of Jira field name to value, such as "
                        "{summary: '…'}, found a list of 1 item"]


# ------------------------------------------------------------------------------------ teams and discord


def test_ms_teams_card_and_fixed_width_text():
    config = parsed("ms_teams", "connector: teams\ntitle: 'Disk on {{ctx.payload.host}}'\n"
                                "text: \"97% used\\n`df` says so\"\nsummary: disk\ntheme_color: ff0000\n")
    rendered, result = simulate("ms_teams", config, make_run({"host": "db-1"}))
    assert rendered.url == TEAMS_URL
    assert sent_json(rendered) == {"@type": "MessageCard", "@context": "http://schema.org/extensions",
                                   "summary": "disk", "title": "Disk on db-1", "text": "97% used\n`df` says so",
                                   "themeColor": "ff0000"}
    assert result["ms_teams"]["request"]["path"] == "/***"
    assert_no_secret(result, rendered.masked())
    fixed = parsed("ms_teams", "connector: teams\nfixed_width: true\ntext: \"a `b`\\n\\nc\"\n")
    card = sent_json(simulate("ms_teams", fixed, make_run())[0])
    assert card["text"] == "```a 'b'```\n\n\n```c```"  # ElastAlert2's format_body gives exactly this
    assert card["summary"] == "a `b`\n\nc" and "title" not in card and card["themeColor"] == "0076D7"


def test_discord_message_embed_and_limits():
    config = parsed("discord", "connector: chat\ntitle: 'Disk on {{ctx.payload.host}}'\ntext: '97%'\n"
                               "emoji_title: ':fire:'\nembed_color: 0xff0000\nembed_footer: watcher\n"
                               "embed_icon_url: https://example.com/i.png\n")
    rendered, result = simulate("discord", config, make_run({"host": "db-1"}))
    assert rendered.url == DISCORD_URL
    assert sent_json(rendered) == {"content": ":fire: Disk on db-1 :fire:", "embeds": [{
        "description": "97%", "color": 0xFF0000,
        "footer": {"text": "watcher", "icon_url": "https://example.com/i.png"}}]}
    assert result["discord"]["request"]["path"] == "/***"
    assert_no_secret(result, rendered.masked())
    long_text = parsed("discord", f"connector: chat\ntext: '{'x' * 5000}'\nemoji_title: ''\ntitle: '{'t' * 2100}'\n")
    message = sent_json(simulate("discord", long_text, make_run())[0])
    assert len(message["content"]) == 2000
    description = message["embeds"][0]["description"]
    assert len(description) == 4096 and description.endswith(discord.CROPPED)


@pytest.mark.parametrize("kind, text, expected", [
    ("ms_teams", "title: t\n", ["watch.yaml:1:1: missing required field 'connector' (an ms_teams connector of "
                                "connectors.yaml)", "watch.yaml:1:1: missing required field 'text' (the card's text)"]),
    ("ms_teams", "connector: teams\ntext: t\ntheme_color: red\nfixed_width: 'no'\n",
     ["watch.yaml:3:14: theme_color: expected a hex colour such as ff0000, found a string 'red'",
      "watch.yaml:4:14: fixed_width: expected true or false, found a string 'no'"]),
    ("discord", "connector: chat\ntext: t\nembed_color: 16777216\ncolour: 1\n",
     ["watch.yaml:4:1: colour: unknown key 'colour'; expected one of: connector, embed_color, embed_footer, "
      "embed_icon_url, emoji_title, text, title",
      "watch.yaml:3:14: embed_color: expected a colour number from 0 to 16777215 (0xFFFFFF), found an integer "
      "16777216"]),
    ("discord", "connector: chat\n", ["watch.yaml:1:1: missing required field 'text' (the embed's description)"]),
])
def test_message_action_problems(kind, text, expected):
    assert parse_action(kind, text)[1] == expected


def test_webhook_urls_are_secrets_in_every_message():
    _, problems = connectors_from("""
        connectors:
          t: {type: ms_teams, url: 'not a url ${TEAMS_URL}'}
          d: {type: discord, url: 'ftp://discord.com/${DISCORD_URL}'}
          c: {type: ms_teams, url: 'https://x.webhook.office.com/a', theme_color: blue}
        """)
    assert problems == [
        "connectors.yaml:3:28: connectors.t.url: expected an http(s) webhook URL such as "
        "https://example.webhook.office.com/webhookb2/…",
        "connectors.yaml:4:27: connectors.d.url: expected an http(s) webhook URL such as "
        "https://discord.com/api/webhooks/…",
        "connectors.yaml:5:75: connectors.c.theme_color: expected a hex colour such as ff0000, found 'blue'"]
    assert_no_secret(problems)
    loaded, _ = connectors_from()
    for name in ("teams", "chat"):
        assert "***" in json.dumps(loaded[name].masked())
        assert_no_secret(loaded[name].masked())


@pytest.mark.parametrize("module", [ms_teams, discord])
def test_chat_answers(module):
    assert module.interpret(HttpResponse(204)).status == "success"
    assert module.interpret(HttpResponse(200, body="1")).status == "success"
    assert classify(module.interpret(HttpResponse(429, headers=(("Retry-After", "2"),)))) == "retry"
    assert classify(module.interpret(HttpResponse(500))) == "retry"
    not_found = module.interpret(HttpResponse(404, body='{"message": "Unknown Webhook"}'))
    assert (not_found.reason, classify(not_found)) == ("received [404] status code", "dead")


def test_every_new_type_is_an_action_and_a_connector_type():
    for name in ("pagerduty", "jira", "ms_teams", "discord"):
        assert name in ACTIONS and name in CONNECTORS


# ------------------------------------------------------------------------------------ ElastAlert2


def convert(text: str):
    """Convert an ElastAlert2 rule: :data:`BASE` followed by the (dedented) alerter part."""
    if text.startswith(BASE):
        text = BASE + textwrap.dedent(text[len(BASE):])
    return convert_text(text, "ea2-rule.yaml")


BASE = """\
name: Disk full
type: any
index: metrics-*
query_key: host.name
alert_subject: "Disk full on {0}"
alert_subject_args: [host.name]
"""


def test_pagerduty_alerter_converts_with_its_options():
    conversion = convert(BASE + """\
        alert: [pagerduty]
        pagerduty_service_key: "fake-routing-key-do-not-print"
        pagerduty_client_name: ElastAlert
        pagerduty_api_version: v2
        pagerduty_event_type: trigger
        pagerduty_incident_key: "disk-{0}"
        pagerduty_incident_key_args: [host.name]
        pagerduty_v2_payload_severity: warning
        pagerduty_v2_payload_source: "{0}"
        pagerduty_v2_payload_source_args: [host.name]
        pagerduty_v2_payload_class: capacity
        pagerduty_v2_payload_custom_details: {mount: system.filesystem.mount_point}
        pagerduty_v2_payload_include_all_info: true
        pagerduty_proxy: proxy.example.com:3128
        pagerduty_ignore_ssl_errors: true
        """)
    assert conversion.connectors == {"disk-full-pagerduty": {
        "type": "pagerduty", "routing_key": "${DISK_FULL_PAGERDUTY_SERVICE_KEY}",
        "proxy": "http://proxy.example.com:3128", "verify": False}}
    (action,) = conversion.rule["actions"]
    details = action.pop("custom_details")
    assert action == {"connector": "disk-full-pagerduty", "client": "ElastAlert", "event_type": "trigger",
                      "severity": "warning", "incident_key": "disk-{{ group }}", "source": "{{ group }}",
                      "class": "capacity"}
    assert details["mount"].endswith('{{ field("system.filesystem.mount_point", "system.filesystem.mount_point") }}')
    assert conversion.not_carried == []
    assert "fake-routing-key-do-not-print" not in json.dumps([conversion.rule, conversion.connectors,
                                                              conversion.messages()])


def test_pagerduty_alerter_v1_and_without_incident_key_says_what_differs():
    conversion = convert(BASE + "alert: pagerduty\npagerduty_service_key: k\npagerduty_client_name: c\n")
    notes = conversion.messages()
    assert any("posts to the Events API v1 unless pagerduty_api_version is v2" in n for n in notes)
    assert any("without pagerduty_incident_key ElastAlert2 opens a new incident per alert" in n for n in notes)
    assert conversion.rule["actions"] == [{"connector": "disk-full-pagerduty", "client": "c"}]
    with pytest.raises(NoActionsError) as raised:  # without its key, the only alerter converts to nothing
        convert(BASE + "alert: pagerduty\npagerduty_client_name: c\n")
    missing = raised.value.conversion
    assert "actions" not in missing.rule and missing.not_carried == ["pagerduty", "pagerduty_client_name"]
    assert "pagerduty: no pagerduty_service_key; the alerter is not carried over" in missing.notes


def test_pagerduty_alerter_bad_event_type_is_reported_at_its_line():
    with pytest.raises(ConversionError) as raised:
        convert(BASE + "alert: pagerduty\npagerduty_service_key: k\npagerduty_event_type: page\n")
    assert str(raised.value) == ("ea2-rule.yaml:9:23: pagerduty_event_type: expected one of trigger, acknowledge, "
                                 "resolve, found a string 'page'")


def test_ms_teams_and_discord_alerters_convert():
    conversion = convert(BASE + """\
        alert:
          - ms_teams
          - discord
        ms_teams_webhook_url: ["https://a.webhook.office.com/webhookb2/fake-1", "https://b.webhook.office.com/x"]
        ms_teams_alert_summary: "Disk {alert}"
        ms_teams_theme_color: "#ff8800"
        ms_teams_alert_fixed_width: true
        ms_teams_alert_facts: [{name: host, value: host.name}]
        ms_teams_proxy: http://proxy:3128
        discord_webhook_url: "https://discord.com/api/webhooks/1/fake-discord-token"
        discord_emoji_title: ":fire:"
        discord_embed_color: 0xff0000
        discord_embed_footer: ElastAlert
        discord_embed_icon_url: https://example.com/i.png
        discord_proxy_login: bob
        """)
    assert conversion.connectors == {
        "disk-full-ms_teams": {"type": "ms_teams", "url": "${DISK_FULL_MS_TEAMS_WEBHOOK_URL}",
                               "proxy": "http://proxy:3128"},
        "disk-full-ms_teams-2": {"type": "ms_teams", "url": "${DISK_FULL_MS_TEAMS_WEBHOOK_URL_2}",
                                 "proxy": "http://proxy:3128"},
        "disk-full-discord": {"type": "discord", "url": "${DISK_FULL_DISCORD_WEBHOOK_URL}"}}
    teams = {"summary": "{{ \"Disk {alert}\" }}", "theme_color": "#ff8800", "fixed_width": True}
    assert conversion.rule["actions"] == [
        {"connector": "disk-full-ms_teams", **teams}, {"connector": "disk-full-ms_teams-2", **teams},
        {"connector": "disk-full-discord", "emoji_title": ":fire:", "embed_footer": "ElastAlert",
         "embed_icon_url": "https://example.com/i.png", "embed_color": 0xFF0000}]
    assert conversion.not_carried == ["ms_teams_alert_facts", "discord_proxy_login"]
    assert "fake-discord-token" not in json.dumps([conversion.rule, conversion.connectors, conversion.messages()])


def test_converted_http_alerters_validate_with_their_connectors(tmp_path, monkeypatch):
    (tmp_path / "ea2.yaml").write_text(BASE + textwrap.dedent("""\
        alert: [pagerduty, ms_teams, discord]
        pagerduty_service_key: fake-routing-key-do-not-print
        ms_teams_webhook_url: "https://a.webhook.office.com/webhookb2/fake-teams-token"
        discord_webhook_url: "https://discord.com/api/webhooks/1/fake-discord-token"
        """))
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(convert_command, [str(tmp_path / "ea2.yaml"), "--from", "elastalert",
                                                  "--connectors-out", str(out / "connectors.yaml")])
    assert result.exit_code == 0, result.stderr
    for secret in ("fake-routing-key-do-not-print", "fake-teams-token", "fake-discord-token"):
        assert secret not in result.output + result.stderr + (out / "connectors.yaml").read_text()
    (out / "rule.yaml").write_text(result.stdout)
    monkeypatch.setenv("DISK_FULL_PAGERDUTY_SERVICE_KEY", "k")
    monkeypatch.setenv("DISK_FULL_MS_TEAMS_WEBHOOK_URL", "https://a.webhook.office.com/webhookb2/x")
    monkeypatch.setenv("DISK_FULL_DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1/t")
    loaded = load_paths([out])
    assert [str(p) for p in loaded.problems] == []
    assert [a.type for a in loaded.watches["Disk full"].actions] == ["pagerduty", "ms_teams", "discord"]


@pytest.mark.parametrize("option, value, message", [
    ("ms_teams_theme_color", "red", "ms_teams_theme_color: expected a hex colour such as ff0000, found a string 'red'"),
    ("discord_embed_color", "red", "discord_embed_color: expected a colour number from 0 to 0xFFFFFF, found a string "
                                   "'red'"),
])
def test_chat_alerter_bad_colours(option, value, message):
    alerter = option.split("_")[0] if option.startswith("discord") else "ms_teams"
    url_option = f"{alerter}_webhook_url"
    with pytest.raises(ConversionError, match=message):
        convert(BASE + f"alert: {alerter}\n{url_option}: https://example.com/x\n{option}: {value}\n")
