"""Elastic Watcher's REST API on the daemon (``/_watcher``, docs/watcher-api.md), end to end: the
daemon runs as a real subprocess with API tokens, against the session's real Elasticsearch; the
client is elasticsearch-py's own ``watcher`` namespace pointed at the daemon (``api_key`` = our
token), plus raw httpx for what the client cannot express (a bad body, no token, an inline
execute). Alerts go to a real webhook receiver on 127.0.0.1.

Waits are on conditions with deadlines; nothing asserts a duration. Watches that are executed by
hand have a one-hour interval, so no scheduled run of theirs happens during the test, and a one-hour
throttle period, so "throttled" never depends on how fast two requests follow each other.
"""

from __future__ import annotations

import json
import signal
import uuid

import httpx
import pytest
from elasticsearch import AuthenticationException, AuthorizationException, ConflictError, Elasticsearch

from daemon_helpers import start_daemon  # noqa: F401  (the fixture)
from daemon_helpers import SwitchableReceiver, delete_indices, records, state, wait_for

ADMIN = "admin-" + "a" * 32
READ = "reader-" + "r" * 32


@pytest.fixture
def prefix(es):
    name = f"wr-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)
    es.options(ignore_status=404).indices.delete(index=f"{name}-watches,{name}-events", ignore_unavailable=True)


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "file-watch.json").write_text(json.dumps({
        "trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {"n": 1}},
        "condition": {"always": {}}, "actions": {"log": {"logging": {"text": "from a file"}}}}))
    return folder


@pytest.fixture
def http_config(tmp_path):
    path = tmp_path / "http.yaml"
    path.write_text(f"tokens:\n  ops: {{role: admin, token: {ADMIN}}}\n  board: {{role: read, token: {READ}}}\n")
    return path


@pytest.fixture
def receiver():
    with SwitchableReceiver() as server:
        yield server


def _hook(receiver, path: str = "/hook", auth: bool = False) -> dict:
    port = receiver.server_address[1]
    hook = {"scheme": "http", "host": "127.0.0.1", "port": port, "method": "post", "path": path,
            "body": "{\"watch\": \"{{ctx.watch_id}}\"}"}
    if auth:
        hook["auth"] = {"basic": {"username": "hook-user", "password": "hook-password-123"}}
    return {"webhook": hook}


def _from(receiver, watch_id: str) -> int:
    with receiver.lock:
        return sum(1 for r in receiver.requests if isinstance(r["body"], dict) and r["body"].get("watch") == watch_id)


def _client(daemon, token: str) -> Elasticsearch:
    return Elasticsearch(f"http://127.0.0.1:{daemon.http_port}", api_key=token, request_timeout=60)


def _raw(daemon, method: str, path: str, token: str | None = ADMIN, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"http://127.0.0.1:{daemon.http_port}{path}", headers=headers, timeout=60, **kwargs)


def _manual_watch(receiver) -> dict:
    return {"trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {"n": 1}},
            "condition": {"compare": {"ctx.payload.n": {"gte": 1}}}, "throttle_period": "1h",
            "actions": {"hook": _hook(receiver, "/manual")}}


def test_stored_watches_through_elasticsearch_py(es, start_daemon, rules_dir, prefix, http_config, receiver):
    daemon = start_daemon("--http-config", str(http_config))
    daemon.wait_healthy(60)
    client = _client(daemon, ADMIN)

    # put: Watcher's answer; the stored watch is scheduled at once and fires to the receiver
    put = client.watcher.put_watch(id="stored-hook", trigger={"schedule": {"interval": "1s"}},
                                   input={"simple": {"n": 1}}, condition={"always": {}},
                                   actions={"hook": _hook(receiver)}, metadata={"team": "ops"})
    assert put.meta.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (put["_id"], put["_version"], put["created"]) == ("stored-hook", 1, True)
    assert isinstance(put["_seq_no"], int) and isinstance(put["_primary_term"], int)
    wait_for(lambda: _from(receiver, "stored-hook") >= 1, 60, what="an alert of the stored watch")
    stored = es.get(index=f"{prefix}-watches", id="stored-hook")["_source"]
    assert stored["watch"]["metadata"] == {"team": "ops"}

    # get: the definition, the status, the version; a secret in a definition is redacted
    got = client.watcher.get_watch(id="stored-hook")
    assert got["found"] is True and got["_version"] == 1 and got["_seq_no"] == put["_seq_no"]
    assert got["watch"]["actions"]["hook"] == _hook(receiver)
    assert got["status"]["state"]["active"] is True
    client.watcher.put_watch(id="with-secret", trigger={"schedule": {"interval": "1h"}},
                             actions={"hook": _hook(receiver, auth=True)}, active=False)
    secret = client.watcher.get_watch(id="with-secret")
    assert secret["watch"]["actions"]["hook"]["webhook"]["auth"]["basic"] == {"username": "hook-user",
                                                                              "password": "::es_redacted::"}
    assert "hook-password-123" not in json.dumps(secret.body)
    assert secret["status"]["state"]["active"] is False
    assert "hook-password-123" not in json.dumps(client.watcher.query_watches().body)
    client.watcher.delete_watch(id="with-secret")

    # versions: a stale if_seq_no is a 409, the current one replaces (version 2, not created)
    with pytest.raises(ConflictError):
        client.watcher.put_watch(id="stored-hook", trigger={"schedule": {"interval": "1s"}},
                                 actions={"hook": _hook(receiver)}, if_seq_no=put["_seq_no"] + 100,
                                 if_primary_term=put["_primary_term"])
    again = client.watcher.put_watch(id="stored-hook", trigger={"schedule": {"interval": "1s"}},
                                     actions={"hook": _hook(receiver)}, metadata={"team": "sre"},
                                     if_seq_no=put["_seq_no"], if_primary_term=put["_primary_term"])
    assert (again["_version"], again["created"]) == (2, False)
    wait_for(lambda: client.watcher.get_watch(id="stored-hook")["watch"].get("metadata") == {"team": "sre"}, 30,
             what="the new version")

    # a file already defines this id: 409 naming the file
    with pytest.raises(ConflictError) as taken:
        client.watcher.put_watch(id="file-watch", trigger={"schedule": {"interval": "1h"}})
    assert str(rules_dir / "file-watch.json") in taken.value.body["error"]["reason"]

    # query: stored and file watches, by id, with from/size and a term query on metadata
    listed = client.watcher.query_watches()
    assert [(w["_id"], w["origin"]["type"]) for w in listed["watches"]] == [("file-watch", "file"),
                                                                           ("stored-hook", "stored")]
    assert listed["count"] == 2 and listed["watches"][1]["_seq_no"] == again["_seq_no"]
    by_team = client.watcher.query_watches(query={"term": {"metadata.team": "sre"}})
    assert [w["_id"] for w in by_team["watches"]] == ["stored-hook"]
    assert client.watcher.query_watches(from_=1, size=1)["watches"][0]["_id"] == "stored-hook"

    # stats in Watcher's shape
    stats = client.watcher.stats()
    assert stats["stats"][0]["watcher_state"] == "started" and stats["stats"][0]["watch_count"] == 2
    assert stats["_nodes"] == {"total": 1, "successful": 1, "failed": 0}

    # a file added later with the id of the stored watch: reported, the stored one keeps running
    (rules_dir / "stored-hook.json").write_text(json.dumps({
        "trigger": {"schedule": {"interval": "1h"}}, "actions": {"log": {"logging": {"text": "file"}}}}))
    health = wait_for(lambda: (h := daemon.health()) and any("also a stored watch" in p for p in
                                                              h["definitions"]["problems"]) and h, 30,
                      what="the file conflicting with the stored watch reported")
    assert str(rules_dir / "stored-hook.json") in health["definitions"]["invalid_files"]
    seen = _from(receiver, "stored-hook")
    wait_for(lambda: _from(receiver, "stored-hook") > seen, 60, what="the stored watch still firing")

    # survives a restart: the new process schedules it from the index
    assert daemon.stop() == 0
    daemon = start_daemon("--http-config", str(http_config))
    daemon.wait_healthy(60)
    seen = _from(receiver, "stored-hook")
    wait_for(lambda: _from(receiver, "stored-hook") > seen, 60, what="the stored watch firing after a restart")
    client = _client(daemon, ADMIN)

    # a second daemon on the same prefix picks up a watch put through the first one
    other = start_daemon("--http-config", str(http_config))
    other.wait_healthy(60)
    client.watcher.put_watch(id="late", trigger={"schedule": {"interval": "1h"}}, actions={"hook": _hook(receiver)})
    other_client = _client(other, READ)
    wait_for(lambda: "late" in [w["_id"] for w in other_client.watcher.query_watches()["watches"]], 30,
             what="the second daemon scheduling the watch put through the first")

    # delete: gone from the schedule, state and history stay; the file of the same id now runs
    assert state(es, prefix, "stored-hook") is not None
    deleted = client.watcher.delete_watch(id="stored-hook")
    assert deleted["found"] is True
    assert client.watcher.get_watch(id="stored-hook")["watch"]["actions"] == {"log": {"logging": {"text": "file"}}}
    assert not any("also a stored watch" in p for p in daemon.health()["definitions"]["problems"])
    assert state(es, prefix, "stored-hook") is not None and records(es, prefix, "stored-hook")
    missing = _raw(daemon, "DELETE", "/_watcher/watch/never-stored")
    assert missing.status_code == 404 and missing.json()["found"] is False
    daemon.stop()
    other.stop()


def test_execute_ack_and_activation_through_elasticsearch_py(es, start_daemon, prefix, http_config, receiver):
    daemon = start_daemon("--http-config", str(http_config))
    daemon.wait_healthy(60)
    client = _client(daemon, ADMIN)
    client.watcher.put_watch(id="manual", **_manual_watch(receiver))

    # ack before any run: nothing to ack, every action shows as awaiting its first successful run
    early = client.watcher.ack_watch(watch_id="manual")
    assert early["status"]["actions"]["hook"]["ack"]["state"] == "awaits_successful_execution"

    # simulate: the record says what would be sent; nothing is sent, stored or recorded
    simulated = client.watcher.execute_watch(id="manual", action_modes={"_all": "simulate"},
                                             trigger_data={"scheduled_time": "2026-01-01T00:00:00Z",
                                                           "triggered_time": "2026-01-01T00:00:05Z"})
    record = simulated["watch_record"]
    assert simulated["_id"].startswith("manual_")
    assert record["state"] == "executed" and record["result"]["actions"][0]["status"] == "simulated"
    assert record["trigger_event"] == {"type": "manual", "triggered_time": "2026-01-01T00:00:05.000Z",
                                       "manual": {"schedule": {"scheduled_time": "2026-01-01T00:00:00.000Z"}}}
    assert record["result"]["actions"][0]["webhook"]["request"]["path"] == "/manual"
    assert records(es, prefix, "manual") == [] and (state(es, prefix, "manual") or {}).get("status", {}).get(
        "last_checked") is None
    assert _from(receiver, "manual") == 0

    # alternative_input makes the condition false; ignore_condition overrides it; skip skips
    not_met = client.watcher.execute_watch(id="manual", alternative_input={"n": 0},
                                           action_modes={"_all": "simulate"})["watch_record"]
    assert not_met["state"] == "execution_not_needed" and not_met["result"]["input"]["payload"] == {"n": 0}
    ignored = client.watcher.execute_watch(id="manual", alternative_input={"n": 0}, ignore_condition=True,
                                           action_modes={"hook": "simulate"})["watch_record"]
    assert ignored["result"]["condition"] == {"type": "always", "status": "success", "met": True}
    assert ignored["result"]["actions"][0]["status"] == "simulated"
    skipped = client.watcher.execute_watch(id="manual", action_modes={"hook": "skip"})["watch_record"]
    assert skipped["result"]["actions"][0] == {"id": "hook", "type": "webhook", "status": "throttled",
                                               "reason": "manually skipped"}

    # record_execution: the record goes to history and the status is saved (ackable, last checked/met)
    recorded = client.watcher.execute_watch(id="manual", record_execution=True, action_modes={"_all": "simulate"})
    history = wait_for(lambda: records(es, prefix, "manual"), 30, what="the recorded execution")
    assert [r["_id"] for r in history] == [recorded["_id"]]
    saved = state(es, prefix, "manual")["status"]
    assert saved["actions"]["hook"]["ack"]["state"] == "ackable"
    assert saved["last_checked"] == recorded["watch_record"]["result"]["execution_time"]
    assert saved["last_met_condition"] == saved["last_checked"]

    # the saved status throttles the next run (period 1h); force_simulate ignores the throttle
    throttled = client.watcher.execute_watch(id="manual", action_modes={"_all": "simulate"})["watch_record"]
    assert throttled["state"] == "throttled" and throttled["result"]["actions"][0]["status"] == "throttled"
    forced = client.watcher.execute_watch(id="manual", action_modes={"_all": "force_simulate"})["watch_record"]
    assert forced["result"]["actions"][0]["status"] == "simulated"

    # ack: Watcher's status shape, saved; the next run starts from it (force modes ignore acks)
    acked = client.watcher.ack_watch(watch_id="manual", action_id="hook")
    assert acked["status"]["actions"]["hook"]["ack"]["state"] == "acked"
    assert state(es, prefix, "manual")["status"]["actions"]["hook"]["ack"]["state"] == "acked"
    after_ack = client.watcher.execute_watch(id="manual", action_modes={"_all": "force_simulate"})["watch_record"]
    assert after_ack["status"]["actions"]["hook"]["ack"]["state"] == "acked"
    assert after_ack["result"]["actions"][0]["status"] == "simulated"
    with pytest.raises(Exception) as unknown_action:
        client.watcher.ack_watch(watch_id="manual", action_id="nope")
    assert unknown_action.value.meta.status == 404

    # deactivate / activate: status.state.active, saved
    assert client.watcher.deactivate_watch(watch_id="manual")["status"]["state"]["active"] is False
    assert state(es, prefix, "manual")["active"] is False
    assert client.watcher.get_watch(id="manual")["status"]["state"]["active"] is False
    assert client.watcher.activate_watch(watch_id="manual")["status"]["state"]["active"] is True

    # execute mode sends for real (through the outbox) ; debug adds vars
    executed = client.watcher.execute_watch(id="manual", action_modes={"_all": "force_execute"}, debug=True)
    assert "vars" in executed["watch_record"]
    wait_for(lambda: _from(receiver, "manual") == 1, 60, what="the executed action's delivery")

    # inline watch (raw HTTP: the client's body is the same, the id is ours to check)
    inline = _raw(daemon, "POST", "/_watcher/watch/_execute",
                  json={"watch": _manual_watch(receiver), "action_modes": {"_all": "simulate"}})
    assert inline.status_code == 200, inline.text
    assert inline.json()["watch_record"]["watch_id"] == "_inlined_"
    refused = _raw(daemon, "POST", "/_watcher/watch/_execute",
                   json={"watch": _manual_watch(receiver), "record_execution": True})
    assert refused.status_code == 400
    daemon.stop(signal.SIGTERM)


def test_errors_and_tokens(start_daemon, prefix, http_config, receiver):
    daemon = start_daemon("--http-config", str(http_config))
    daemon.wait_healthy(60)

    # a bad body: 400 in Elasticsearch's error shape, naming the field and what was expected
    bad = _raw(daemon, "PUT", "/_watcher/watch/bad", json={"trigger": {"schedule": {"interval": "1s"}},
                                                           "actions": {"x": {"webhook": {"port": "not a port"}}}})
    assert bad.status_code == 400 and bad.headers["X-Elastic-Product"] == "Elasticsearch"
    error = bad.json()["error"]
    assert error["type"] == "parse_exception" and error["root_cause"] == [{"type": error["type"],
                                                                           "reason": error["reason"]}]
    assert "[actions.x.webhook.port]" in error["reason"]
    missing = _raw(daemon, "PUT", "/_watcher/watch/bad", json={"input": {"simple": {}}})
    assert missing.status_code == 400 and "missing required field 'trigger'" in missing.json()["error"]["reason"]
    bad_mode = _raw(daemon, "POST", "/_watcher/watch/x/_execute", json={"action_modes": {"_all": "later"}})
    assert bad_mode.status_code == 400 and "action_modes._all" in bad_mode.json()["error"]["reason"]
    unknown = _raw(daemon, "POST", "/_watcher/watch/nope/_execute", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "resource_not_found_exception"
    assert _raw(daemon, "GET", "/_watcher/watch/nope").json() == {"found": False, "_id": "nope"}

    # no token: 401 (with Watcher's error shape and the product header); read token: reads, no changes
    anonymous = _raw(daemon, "GET", "/_watcher/stats", token=None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["root_cause"][0]["type"] == "security_exception"
    with pytest.raises(AuthenticationException):
        _client(daemon, "not-a-token-" + "x" * 20).watcher.stats()
    board = _client(daemon, READ)
    assert board.watcher.stats()["stats"][0]["watcher_state"] == "started"
    assert board.watcher.query_watches()["count"] == 1
    for call in (lambda: board.watcher.put_watch(id="w", trigger={"schedule": {"interval": "1h"}}),
                 lambda: board.watcher.execute_watch(id="w"), lambda: board.watcher.delete_watch(id="w"),
                 lambda: board.watcher.ack_watch(watch_id="w"), lambda: board.watcher.deactivate_watch(watch_id="w")):
        with pytest.raises(AuthorizationException):
            call()
    daemon.stop()
