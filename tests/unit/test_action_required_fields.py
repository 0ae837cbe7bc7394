"""A watch action that can never be sent — a field it requires is in neither the action nor its
connector's defaults — is a problem when the files load (validate), not a failure at every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcher.definitions.load import load_paths

CONNECTORS = """\
connectors:
  mail:
    type: email
    host: 127.0.0.1
    security: none
    from: watcher@example.com
  mail_with_to:
    type: email
    host: 127.0.0.1
    security: none
    email_defaults: {to: [oncall@example.com]}
  pd:
    type: pagerduty
    routing_key: r0uting-key-0123456789
  pd_with_description:
    type: pagerduty
    routing_key: r0uting-key-0123456789
    event_defaults: {description: something is wrong}
  jira:
    type: jira
    url: https://jira.example.com
    token: t0ken-0123456789
  jira_with_defaults:
    type: jira
    url: https://jira.example.com
    token: t0ken-0123456789
    issue_defaults: {project: {key: OPS}, issuetype: {name: Bug}}
"""


def problems_of(tmp_path: Path, actions: dict) -> list[str]:
    (tmp_path / "connectors.yaml").write_text(CONNECTORS)
    watch = {"trigger": {"schedule": {"interval": "1m"}}, "input": {"simple": {}},
             "condition": {"always": {}}, "actions": actions}
    (tmp_path / "w.json").write_text(json.dumps(watch, indent=2))
    return [str(problem).replace(str(tmp_path) + "/", "") for problem in load_paths([tmp_path]).problems]


@pytest.mark.parametrize(("action", "message"), [
    ({"email": {"account": "mail", "subject": "x"}},
     "missing required email [to] field (in the action or the connector's email_defaults)"),
    ({"pagerduty": {"account": "pd", "event_type": "trigger"}},
     "missing required [description] (give it in the action or in the connector's event_defaults); "
     "it is the event's summary"),
    ({"jira": {"account": "jira", "fields": {"summary": "x"}}},
     "the jira issue has no project, issuetype: give them in the action's fields or the connector's issue_defaults "
     "(e.g. project: {key: OPS}, issuetype: {name: Bug}, summary: '…')"),
])
def test_a_required_field_in_neither_place_is_a_problem_at_the_action(tmp_path, action, message):
    (problem,) = problems_of(tmp_path, {"a": action})
    kind = next(iter(action))
    assert problem.startswith("w.json:") and problem.endswith(f": actions.a.{kind}: {message}"), problem


@pytest.mark.parametrize("action", [
    {"email": {"account": "mail", "to": "{{ctx.payload.who}}"}},  # a template: known at run time only
    {"email": {"account": "mail_with_to"}},
    {"pagerduty": {"account": "pd_with_description"}},
    {"pagerduty": {"account": "pd", "description": "{{ctx.watch_id}} fired"}},
    {"jira": {"account": "jira_with_defaults", "fields": {"summary": "x"}}},
])
def test_the_field_given_in_either_place_is_enough(tmp_path, action):
    assert problems_of(tmp_path, {"a": action}) == []
