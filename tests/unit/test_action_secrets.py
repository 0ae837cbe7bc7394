"""Secrets written in a watch's own actions are known when the watch loads
(:func:`watcher.destinations.action_secrets`), so every secret a rendered request carries can be
sealed for the outbox and restored from what the daemon knows; a credential header rendered from a
template on a connector webhook is refused at load (docs/correctness.md#secret-placeholders)."""

from __future__ import annotations

import datetime as dt
import json

from watcher.definitions.load import load_paths
from watcher.delivery.outbox import seal_request, unseal_request
from watcher.delivery.secretkey import SecretKey
from watcher.destinations import ACTIONS, action_secrets
from watcher.engine.context import Run, Services
from watcher.model.requests import basic_auth_header

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone.utc)
CONNECTORS = "connectors:\n  hook:\n    type: webhook\n    url: http://127.0.0.1:8011/hook\n"
ACTIONS_WRITTEN = {
    "basic": {"webhook": {"host": "127.0.0.1", "port": 8011, "method": "post", "path": "/basic",
                          "auth": {"basic": {"username": "u", "password": "inline-password-1"}}}},
    "keyed": {"webhook": {"connector": "hook", "headers": {"X-Api-Key": "literal-key-2", "X-Trace": "{{ctx.id}}"},
                          "auth": {"basic": {"username": "u", "password": "override-password-3"}}}},
    "genie": {"opsgenie": {"api_key": "inline-genie-key-4", "message": "{{ctx.watch_id}}"}},
    "plain": {"webhook": {"host": "127.0.0.1", "port": 8011, "path": "/{{ctx.watch_id}}"}},
}


def load(tmp_path, actions: dict):
    (tmp_path / "connectors.yaml").write_text(CONNECTORS)
    (tmp_path / "w.json").write_text(json.dumps({"trigger": {"schedule": {"interval": "1m"}},
                                                 "input": {"simple": {}}, "actions": actions}))
    return load_paths([tmp_path])


def test_the_secrets_written_in_each_action_are_known_from_the_definition(tmp_path):
    loaded = load(tmp_path, ACTIONS_WRITTEN)
    assert [str(p) for p in loaded.problems] == []
    found = {a.id: action_secrets(a.type, a.config) for a in loaded.watches["w"].actions}
    assert found == {"basic": ["inline-password-1"], "keyed": ["override-password-3", "literal-key-2"],
                     "genie": ["inline-genie-key-4"], "plain": []}
    assert action_secrets("no-such-type", object()) == []


def test_every_secret_of_a_rendered_request_is_restored_from_the_connectors_and_the_actions(tmp_path):
    loaded = load(tmp_path, ACTIONS_WRITTEN)
    watch = loaded.watches["w"]
    run = Run(watch=watch, execution_time=T, triggered_time=T, scheduled_time=T,
              services=Services(connectors=loaded.connectors), record_id="w_1")
    known = [*(s for c in loaded.connectors.values() for s in c.secrets),
             *(s for a in watch.actions for s in action_secrets(a.type, a.config))]
    key = SecretKey.generate()
    for action in watch.actions:
        rendered = ACTIONS.get(action.type).render(action.config, run, {"ctx": {"watch_id": "w", "id": "trace-9"}})
        sealed = seal_request(rendered, key)
        assert [s for s in rendered.secrets if s in json.dumps(sealed)] == []
        request, _ = unseal_request(sealed, known, key)
        assert (request["url"], request["headers"], request["body"]) == (rendered.url, rendered.headers, rendered.body)
    assert rendered.url.endswith("/w")  # the last, "plain", has nothing secret and is rendered as usual
    basic = ACTIONS.get("webhook").render(watch.action("basic").config, run, {"ctx": {}})
    assert basic.headers["Authorization"] == basic_auth_header("u", "inline-password-1")


def test_a_credential_header_rendered_from_a_template_on_a_connector_webhook_is_refused_at_load(tmp_path):
    loaded = load(tmp_path, {"hook": {"webhook": {"connector": "hook",
                                                  "headers": {"Authorization": "Bearer {{ctx.payload.token}}"}}}})
    assert len(loaded.problems) == 1
    problem = str(loaded.problems[0])
    assert "actions.hook.webhook.headers.Authorization" in problem
    assert "carries a credential and is a template" in problem and "give it in the connector" in problem


def test_watchers_own_webhook_keeps_templated_headers(tmp_path):
    # Without a connector header values are not secrets (as in Watcher: only Authorization is redacted
    # in the record), so a template there is stored and sent as rendered.
    loaded = load(tmp_path, {"hook": {"webhook": {"host": "127.0.0.1", "port": 8011,
                                                  "headers": {"Authorization": "Bearer {{ctx.payload.token}}"}}}})
    assert [str(p) for p in loaded.problems] == []
