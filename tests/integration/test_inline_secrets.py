"""Secrets written in a watch's own action (Watcher's inline ``auth.basic``, a credential header written
literally on a connector webhook) reach the receiver through the outbox
(docs/correctness.md#secret-placeholders), end to end: the daemon runs as a real subprocess against
the session's real Elasticsearch, the receiver is a real HTTP server on 127.0.0.1 that keeps the
headers it got, and no secret may show in the outbox, the history, the daemon's log or the record.

Also: a watch changed after its delivery was queued leaves that delivery dead with the rotation
reason (the old secret is gone), and ``watcher dry-run`` / ``watcher.api.execute`` in action mode
``execute`` (sent at once, no outbox) send inline secrets too.

Waits are on conditions with deadlines; nothing asserts a duration.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import uuid

import httpx
import pytest

import watcher
from daemon_helpers import start_daemon  # noqa: F401  (the fixture)
from daemon_helpers import REPO, SwitchableReceiver, delete_indices, outbox, records, wait_for, write_connectors
from watcher.delivery.outbox import SECRET_GONE

pytestmark = pytest.mark.http_surface
USER = "hook-user"
PASSWORD = "inl1ne-Passw0rd-7f3a9c"      # inline basic-auth password of the watch
NEW_PASSWORD = "r0tated-Passw0rd-4b8d1e"  # the same watch after its file was edited
API_KEY = "literal-api-key-5d2e8b"        # a credential header written literally on a connector webhook
ADMIN = "admin-" + "a" * 32


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def forms(*secrets: str) -> list[str]:
    """Each secret and the base64 token of its Basic header: what must never be stored or shown."""
    return [*secrets, *(basic(USER, s).split()[1] for s in secrets)]


def leaked(text: str, *secrets: str) -> list[str]:
    return [form for form in forms(*secrets) if form in text]


@pytest.fixture
def prefix(es):
    name = f"wi-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)
    es.options(ignore_status=404).indices.delete(index=f"{name}-watches,{name}-events", ignore_unavailable=True)


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


@pytest.fixture
def receiver():
    with SwitchableReceiver() as server:
        yield server


def basic_hook(receiver, password: str, action: str = "basic") -> dict:
    """Watcher's webhook action with basic auth written in the watch (no connector)."""
    return {"webhook": {"scheme": "http", "host": "127.0.0.1", "port": receiver.server_address[1], "method": "post",
                        "path": "/basic", "auth": {"basic": {"username": USER, "password": password}},
                        "body": '{"watch": "{{ctx.watch_id}}", "action": "%s"}' % action}}


def watch(receiver, password: str, interval: str = "2s") -> dict:
    return {"trigger": {"schedule": {"interval": interval}}, "input": {"simple": {"n": 1}},
            "condition": {"always": {}}, "throttle_period": "1s",
            "actions": {
                "basic": basic_hook(receiver, password),
                # our extension: a connector webhook with a credential header written literally in the action
                "keyed": {"webhook": {"connector": "hook", "headers": {"X-Api-Key": API_KEY},
                                      "body": '{"watch": "{{ctx.watch_id}}", "action": "keyed"}'}},
            }}


def write_watch(folder, name: str, body: dict) -> None:
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(body))
    tmp.replace(folder / f"{name}.json")  # atomic, as editors save


def received(receiver, action: str, status: int | None = None) -> list[dict]:
    """Headers of the requests of ``action`` the receiver got (answered ``status``, when given)."""
    with receiver.lock:
        return [r["headers"] for r in receiver.requests if isinstance(r["body"], dict)
                and r["body"].get("action") == action and (status is None or r["status"] == status)]


def finished(es, prefix: str, action: str) -> list[dict]:
    return [d for d in outbox(es, prefix) if d["action_id"] == action and d["state"] in ("delivered", "dead")]


def test_inline_secrets_of_a_watch_file_reach_the_receiver(es, prefix, rules_dir, receiver, start_daemon):
    write_connectors(rules_dir, receiver.url)
    write_watch(rules_dir, "inline-auth", watch(receiver, PASSWORD))
    daemon = start_daemon()
    daemon.wait_healthy(60)
    for action in ("basic", "keyed"):
        done = wait_for(lambda: finished(es, prefix, action), 60, what=f"a finished delivery of {action}")
        assert [(d["state"], d.get("last_error")) for d in done][0] == ("delivered", None)
    assert received(receiver, "basic", 200)[0]["Authorization"] == basic(USER, PASSWORD)
    assert received(receiver, "keyed", 200)[0]["X-Api-Key"] == API_KEY

    stored = outbox(es, prefix)
    assert [d["state"] for d in stored if d["state"] == "dead"] == []
    assert leaked(json.dumps(stored), PASSWORD, API_KEY) == []
    assert "${secret-basic:" in json.dumps(stored) and "${secret:hmac:" in json.dumps(stored)
    history = records(es, prefix, "inline-auth")
    assert [r for r in history if r["state"] == "executed"]
    assert leaked(json.dumps(history), PASSWORD, API_KEY) == []
    daemon.stop()
    assert leaked(daemon.log_path.read_text(), PASSWORD, API_KEY) == []


def test_a_stored_watch_with_inline_basic_auth_reaches_the_receiver(es, prefix, rules_dir, receiver, start_daemon,
                                                                     tmp_path):
    http_config = tmp_path / "http.yaml"
    http_config.write_text(f"tokens:\n  ops: {{role: admin, token: {ADMIN}}}\n")
    daemon = start_daemon("--http-config", str(http_config))
    daemon.wait_healthy(60)
    body = {**watch(receiver, PASSWORD), "actions": {"basic": basic_hook(receiver, PASSWORD)}}
    put = httpx.put(f"http://127.0.0.1:{daemon.http_port}/_watcher/watch/stored-auth", json=body,
                    headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    assert put.status_code == 201, put.text
    done = wait_for(lambda: finished(es, prefix, "basic"), 60, what="a finished delivery of the stored watch")
    assert [(d["state"], d.get("last_error")) for d in done][0] == ("delivered", None)
    assert received(receiver, "basic", 200)[0]["Authorization"] == basic(USER, PASSWORD)

    # a watch sent inline to the execute API is sent at once: the outbox could not resolve its secret
    inline = {"trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {}}, "condition": {"always": {}},
              "actions": {"once": basic_hook(receiver, NEW_PASSWORD, action="once")}}
    executed = httpx.post(f"http://127.0.0.1:{daemon.http_port}/_watcher/watch/_execute",
                          json={"watch": inline, "action_modes": {"_all": "execute"}},
                          headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    assert executed.status_code == 200, executed.text
    [result] = executed.json()["watch_record"]["result"]["actions"]
    assert (result["id"], result["status"], result["webhook"]["response"]["status"]) == ("once", "success", 200)
    assert received(receiver, "once", 200)[0]["Authorization"] == basic(USER, NEW_PASSWORD)
    assert [d for d in outbox(es, prefix) if d["action_id"] == "once"] == []
    assert leaked(executed.text, NEW_PASSWORD) == []

    assert leaked(json.dumps(outbox(es, prefix)), PASSWORD) == []
    daemon.stop()
    assert leaked(daemon.log_path.read_text(), PASSWORD, NEW_PASSWORD) == []


def test_a_delivery_queued_before_its_watch_changed_is_dead_with_the_rotation_reason(
        es, prefix, rules_dir, receiver, start_daemon):
    write_connectors(rules_dir, receiver.url)
    receiver.status = 503  # every delivery stays pending, retried
    write_watch(rules_dir, "rotating", watch(receiver, PASSWORD))
    daemon = start_daemon()
    daemon.wait_healthy(60)
    wait_for(lambda: received(receiver, "basic"), 60, what="a first attempt with the first password")
    first = [d["_id"] for d in outbox(es, prefix) if d["action_id"] == "basic"][0]

    write_watch(rules_dir, "rotating", watch(receiver, NEW_PASSWORD))
    wait_for(lambda: any(h["Authorization"] == basic(USER, NEW_PASSWORD) for h in received(receiver, "basic")), 60,
             what="an attempt with the new password (the edit was loaded)")
    dead = wait_for(lambda: [d for d in outbox(es, prefix) if d["_id"] == first and d["state"] == "dead"], 60,
                    what="the delivery sealed with the first password dead")
    assert dead[0]["last_error"] == SECRET_GONE

    receiver.status = 200
    wait_for(lambda: received(receiver, "basic", 200), 60, what="a delivery with the new password")
    assert {h["Authorization"] for h in received(receiver, "basic", 200)} == {basic(USER, NEW_PASSWORD)}
    assert leaked(json.dumps(outbox(es, prefix)), PASSWORD, NEW_PASSWORD) == []
    daemon.stop()
    assert leaked(daemon.log_path.read_text(), PASSWORD, NEW_PASSWORD) == []


def test_dry_run_in_execute_mode_sends_inline_secrets_without_showing_them(es_cluster, tmp_path, receiver):
    path = tmp_path / "dry.json"
    path.write_text(json.dumps({**watch(receiver, PASSWORD), "actions": {"basic": basic_hook(receiver, PASSWORD)}}))
    done = subprocess.run([sys.executable, "-m", "watcher.cli", "dry-run", str(path), "--action-mode", "execute",
                           "--json"], cwd=REPO, env={**os.environ, **es_cluster.env()}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert received(receiver, "basic", 200)[0]["Authorization"] == basic(USER, PASSWORD)
    record = json.loads(done.stdout)
    record = record[0] if isinstance(record, list) else record
    result = record["result"]["actions"][0]
    assert (result["status"], result["webhook"]["response"]["status"]) == ("success", 200)
    assert result["webhook"]["request"]["auth"]["basic"] == {"username": USER, "password": "::es_redacted::"}
    assert leaked(done.stdout + done.stderr, PASSWORD) == []


def test_api_execute_in_execute_mode_sends_inline_secrets_without_logging_them(receiver, tmp_path, caplog):
    path = tmp_path / "api-inline.json"
    path.write_text(json.dumps({**watch(receiver, PASSWORD), "actions": {"basic": basic_hook(receiver, PASSWORD)}}))
    loaded = watcher.load([path])
    assert [str(p) for p in loaded.problems] == []
    receiver.status = 500  # a failure is logged and recorded with its request: still no secret
    with caplog.at_level(logging.DEBUG, logger="watcher"):
        failed = watcher.execute(loaded.watches["api-inline"], None, action_mode="execute")
        receiver.status = 200
        sent = watcher.execute(loaded.watches["api-inline"], None, action_mode="execute")
    assert [r["Authorization"] for r in received(receiver, "basic")] == [basic(USER, PASSWORD)] * 2
    assert failed["result"]["actions"][0]["status"] == "failure"
    assert sent["result"]["actions"][0]["webhook"]["response"]["status"] == 200
    assert leaked(json.dumps([failed, sent]), PASSWORD) == []
    assert leaked(caplog.text, PASSWORD) == []
