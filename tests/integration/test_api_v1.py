"""``/api/v1`` end to end: ``watcher run`` as a real subprocess with an HTTP configuration (an admin
and a read token), the session's real Elasticsearch, real webhook receivers on 127.0.0.1, and httpx
as the client.

One daemon serves the whole module (its rules: ``cpu-high`` fires every 2 s to a receiver answering
200; ``to-dead`` fires once to a receiver answering 400, so its delivery is dead; ``json-watch`` is a
Watcher watch with a basic-auth password, scheduled hourly; ``broken.yaml`` does not load). Tests
that change a watch's state use their own watch or undo what they did. Waits are on conditions.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import uuid

import httpx
import pytest

from api_helpers import ADMIN_TOKEN, READ_TOKEN, start_served, write_http_config
from daemon_helpers import SwitchableReceiver, delete_indices, wait_for, write_rule
from watcher.support.datemath import parse_instant

pytestmark = [pytest.mark.es, pytest.mark.http_surface]

HOOK_TOKEN = "hook-" + uuid.uuid4().hex
WATCH_PASSWORD = "pw-" + uuid.uuid4().hex
SECRETS = (ADMIN_TOKEN, READ_TOKEN, HOOK_TOKEN, WATCH_PASSWORD)


def json_watch(port: int) -> dict:
    return {"trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {"n": 1}},
            "condition": {"always": {}},
            "actions": {"page": {"webhook": {"method": "post", "host": "127.0.0.1", "port": port, "path": "/hook",
                                             "auth": {"basic": {"username": "u", "password": WATCH_PASSWORD}}}}}}


@pytest.fixture(scope="module")
def served(es, es_cluster, tmp_path_factory):
    """The module's daemon: ``{"url", "daemon", "prefix", "ok", "bad", "rules"}``."""
    folder = tmp_path_factory.mktemp("api")
    rules = folder / "rules"
    rules.mkdir()
    prefix = f"api-{uuid.uuid4().hex[:10]}"
    index = f"api-docs-{uuid.uuid4().hex[:8]}"
    es.index(index=index, document={"@timestamp": dt.datetime.now(dt.timezone.utc).isoformat(), "msg": "x"},
             refresh=True)
    with SwitchableReceiver() as ok, SwitchableReceiver(status=400) as bad:
        (rules / "connectors.yaml").write_text(
            f"connectors:\n  hook:\n    type: webhook\n    url: {ok.url}\n    method: post\n"
            f"    headers:\n      X-Token: ${{HOOK_TOKEN}}\n"
            f"  dead-hook:\n    type: webhook\n    url: {bad.url}\n    method: post\n")
        write_rule(rules, "cpu-high", index)
        write_rule(rules, "to-dead", index, throttle="1h").write_text(
            (rules / "to-dead.yaml").read_text().replace("connector: hook", "connector: dead-hook"))
        (rules / "json-watch.json").write_text(json.dumps(json_watch(ok.server_address[1])))
        (rules / "broken.yaml").write_text("name: broken\nschedule: 5 lightyears\nindex: x\n")
        daemon = start_served(es_cluster, folder, prefix, rules, write_http_config(folder),
                              env={"HOOK_TOKEN": HOOK_TOKEN})
        try:
            daemon.wait_healthy()
            yield {"url": f"http://127.0.0.1:{daemon.http_port}", "daemon": daemon, "prefix": prefix, "ok": ok,
                   "bad": bad, "rules": rules}
        finally:
            daemon.kill()
            delete_indices(es, prefix)
            es.options(ignore_status=404).indices.delete(index=[index, f"{prefix}-events"])


def client(served, token: str | None = ADMIN_TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=served["url"], headers=headers, timeout=30)


def events(es, prefix: str, watch_id: str) -> list[dict]:
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-events")
    response = es.options(ignore_status=404).search(index=f"{prefix}-events", size=100,
                                                    query={"term": {"watch_id": watch_id}}, sort=[{"_seq_no": "asc"}])
    return [hit["_source"] for hit in response.get("hits", {}).get("hits", [])]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def executed(served, watch_id: str) -> bool:
    """Whether ``watch_id`` has an executed record; False while the history cannot be searched yet
    (the first record creates the day's index: a search during its creation answers 503)."""
    with client(served) as http:
        answer = http.get(f"/api/v1/watches/{watch_id}/history", params={"state": "executed"})
    return answer.status_code == 200 and bool(answer.json()["records"])


# -- auth ----------------------------------------------------------------------------------------------------

def routes(served) -> list[tuple[str, str, bool]]:
    """``(method, path with ids filled, needs admin)`` of every /api/v1 operation in the OpenAPI document."""
    with client(served) as http:
        document = http.get("/api/v1/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/") or "/events" in path:
            continue
        for method in operations:
            concrete = path.replace("{watch_id}", "cpu-high").replace("{delivery_id}", "no-such-delivery")
            found.append((method.upper(), concrete, method != "get"))
    return found


def test_every_api_route_needs_a_token_and_changes_need_admin(served):
    found = routes(served)
    assert {("GET", "/api/v1/watches", False), ("POST", "/api/v1/watches/cpu-high/_ack", True),
            ("DELETE", "/api/v1/watches/cpu-high/_silence", True), ("GET", "/api/v1/outbox", False),
            ("POST", "/api/v1/outbox/no-such-delivery/_retry", True)} <= set(found)
    for token in (None, "not-a-configured-token-123456"):
        with client(served, token) as http:
            for method, path, _ in found:
                answer = http.request(method, path)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.json()["error"]["type"] == "security_exception"
                assert answer.headers["www-authenticate"].startswith("Bearer")
    with client(served, READ_TOKEN) as http:
        for method, path, needs_admin in found:
            answer = http.request(method, path)
            assert answer.status_code == (403 if needs_admin else 200), (method, path, answer.text)
            assert_no_secret(answer.text)
    with httpx.Client(base_url=served["url"], headers={"Authorization": f"ApiKey {READ_TOKEN}"}) as http:
        assert http.get("/api/v1/watches").status_code == 200
    with client(served, None) as http:  # open
        assert http.get("/healthz").status_code == 200
        assert http.get("/metrics").status_code == 200


def test_tokens_and_secrets_never_appear_in_the_log(served):
    with client(served, READ_TOKEN) as http:
        http.get("/api/v1/watches/json-watch")
    with client(served, "wrong-token-but-long-enough") as http:
        http.get("/api/v1/watches")
    assert_no_secret(served["daemon"].log())


# -- reading -------------------------------------------------------------------------------------------------

def test_watches_list_status_files_schedule_and_invalid_files(served):
    wait_for(lambda: executed(served, "cpu-high"), 30, what="a run of cpu-high")
    with client(served, READ_TOKEN) as http:
        answer = http.get("/api/v1/watches")
    assert answer.status_code == 200
    body = answer.json()
    assert [w["id"] for w in body["watches"]] == ["cpu-high", "json-watch", "to-dead"]
    assert body["total"] == 3 and body["connectors"] == {"hook": "webhook", "dead-hook": "webhook"}
    cpu = body["watches"][0]
    assert (cpu["kind"], cpu["file"], cpu["line"], cpu["active"]) == (
        "threshold", str(served["rules"] / "cpu-high.yaml"), 1, True)
    assert cpu["schedule"] == {"schedule": {"interval": "2s"}}
    assert cpu["saved"] and parse_instant(cpu["last_checked"]) and parse_instant(cpu["last_fired"])
    assert parse_instant(cpu["next_run"]) > parse_instant(cpu["last_checked"])
    assert [(a["id"], a["type"]) for a in cpu["actions"]] == [("hook", "webhook")]
    watch = body["watches"][1]
    assert (watch["kind"], watch["saved"], watch["last_checked"]) == ("watch", False, None)
    assert watch["actions"][0]["ack_state"] == "awaits_successful_execution"
    [invalid] = body["invalid"]
    assert invalid["file"] == str(served["rules"] / "broken.yaml")
    assert invalid["problems"] and all(p["line"] >= 1 and p["file"] == invalid["file"] for p in invalid["problems"])


def test_watches_paging_search_and_state_filter(served):
    with client(served, READ_TOKEN) as http:
        page = http.get("/api/v1/watches", params={"offset": 1, "size": 1}).json()
        assert (page["total"], [w["id"] for w in page["watches"]]) == (3, ["json-watch"])
        assert [w["id"] for w in http.get("/api/v1/watches", params={"q": "CPU"}).json()["watches"]] == ["cpu-high"]
        assert http.get("/api/v1/watches", params={"state": "inactive"}).json()["total"] == 0
        bad = http.get("/api/v1/watches", params={"size": 0, "state": "sleepy"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "illegal_argument_exception"
    assert "query.size" in bad.json()["error"]["reason"] and "query.state" in bad.json()["error"]["reason"]


def test_one_watch_with_its_definition_secrets_masked(served):
    with client(served, READ_TOKEN) as http:
        answer = http.get("/api/v1/watches/json-watch")
        rule = http.get("/api/v1/watches/cpu-high").json()
    assert answer.status_code == 200
    body = answer.json()
    assert body["definition"]["actions"]["page"]["webhook"]["auth"]["basic"] == {"username": "u", "password": "::es_redacted::"}
    assert body["rule"] is None and body["status"]["state"]["active"] is True
    assert_no_secret(answer.text)
    assert rule["rule"]["name"] == "cpu-high" and rule["definition"]["trigger"] == {"schedule": {"interval": "2s"}}


def test_unknown_watch_is_404_with_did_you_mean(served):
    with client(served, READ_TOKEN) as http:
        answer = http.get("/api/v1/watches/cpu-hihg")
        history = http.get("/api/v1/watches/cpu-hihg/history")
    assert answer.status_code == 404 and history.status_code == 404
    assert answer.json() == {"error": {"type": "resource_not_found_exception",
                                       "reason": "no watch [cpu-hihg]; did you mean 'cpu-high'?"}, "status": 404}


def test_history_newest_first_with_state_filter(served):
    wait_for(lambda: executed(served, "cpu-high"), 30, what="a run of cpu-high")
    with client(served, READ_TOKEN) as http:
        records = http.get("/api/v1/watches/cpu-high/history", params={"size": 5}).json()["records"]
        failed = http.get("/api/v1/watches/cpu-high/history", params={"state": "failed"}).json()["records"]
    times = [r["result"]["execution_time"] for r in records]
    assert records and times == sorted(times, reverse=True)
    assert all(r["watch_id"] == "cpu-high" for r in records) and failed == []
    assert_no_secret(json.dumps(records))


# -- execute -------------------------------------------------------------------------------------------------

def test_execute_simulates_and_sends_nothing(served):
    at = "2030-01-01T00:00:00+01:00"
    with client(served) as http:
        answer = http.post("/api/v1/watches/json-watch/_execute", json={"at": at})
        skipped = http.post("/api/v1/watches/json-watch/_execute", json={"action_mode": "skip"})
        naive = http.post("/api/v1/watches/json-watch/_execute", json={"at": "2030-01-01T00:00:00"})
        history = http.get("/api/v1/watches/json-watch/history").json()["records"]
    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert record["trigger_event"]["triggered_time"] == "2029-12-31T23:00:00.000Z"
    [action] = record["result"]["actions"]
    assert (action["id"], action["status"]) == ("page", "simulated")
    assert skipped.json()["record"]["result"]["actions"] == [] or \
        all(a["status"] != "success" for a in skipped.json()["record"]["result"]["actions"])
    assert naive.status_code == 400 and "body.at" in naive.json()["error"]["reason"]
    assert history == []  # not recorded
    assert not any(r["headers"].get("Authorization") for r in served["ok"].requests)  # json-watch never sent
    assert_no_secret(answer.text)


# -- changes -------------------------------------------------------------------------------------------------

def test_ack_acks_the_ackable_action_and_logs_the_event(es, served):
    wait_for(lambda: executed(served, "cpu-high"), 30, what="a run of cpu-high")
    with client(served) as http:
        answer = http.post("/api/v1/watches/cpu-high/_ack", json={"actions": ["hook"]})
        unknown = http.post("/api/v1/watches/cpu-high/_ack", json={"actions": ["hok"]})
        missing = http.post("/api/v1/watches/nope/_ack")
    assert answer.status_code == 200, answer.text
    assert answer.json()["actions"]["hook"]["result"] in ("acked", "already_acked")
    assert answer.json()["status"]["actions"]["hook"]["ack"]["state"] == "acked"
    assert unknown.status_code == 400 and "did you mean 'hook'?" in unknown.json()["error"]["reason"]
    assert missing.status_code == 404
    acked = [e for e in events(es, served["prefix"], "cpu-high") if e["kind"] == "acked"]
    assert acked and acked[-1]["actor"] == "api:ops" and acked[-1]["action_id"] == "hook"


def test_deactivate_then_activate_and_the_daemon_stops_running_it(es, served):
    with client(served) as http:
        off = http.post("/api/v1/watches/cpu-high/_deactivate")
        again = http.post("/api/v1/watches/cpu-high/_deactivate")
        listed = http.get("/api/v1/watches", params={"state": "inactive"}).json()
        on = http.post("/api/v1/watches/cpu-high/_activate")
    assert (off.status_code, off.json()["active"], off.json()["changed"]) == (200, False, True)
    assert again.json()["changed"] is False
    assert [w["id"] for w in listed["watches"]] == ["cpu-high"]
    assert on.json()["active"] is True and on.json()["status"]["state"]["active"] is True
    kinds = [(e["kind"], e["actor"]) for e in events(es, served["prefix"], "cpu-high")
             if e["kind"] in ("activated", "deactivated")]
    assert kinds[-2:] == [("deactivated", "api:ops"), ("activated", "api:ops")]


def test_silence_for_a_duration_a_group_and_lift_it(es, served):
    with client(served) as http:
        whole = http.post("/api/v1/watches/to-dead/_silence", json={"for": "2h"})
        group = http.post("/api/v1/watches/to-dead/_silence", json={"until": "2099-01-01T01:00:00+01:00",
                                                                     "group": "10.0.0.1"})
        shown = http.get("/api/v1/watches/to-dead").json()["silences"]
        lifted = http.delete("/api/v1/watches/to-dead/_silence")
        not_silenced = http.delete("/api/v1/watches/to-dead/_silence", params={"group": "never"})
        both = http.post("/api/v1/watches/to-dead/_silence", json={"for": "1h", "until": "2099-01-01T00:00:00Z"})
        past = http.post("/api/v1/watches/to-dead/_silence", json={"until": "2001-01-01T00:00:00Z"})
        a_watch = http.post("/api/v1/watches/json-watch/_silence", json={"for": "1h"})  # its runs ignore silences
        watch_silences = http.get("/api/v1/watches/json-watch").json()["silences"]
        http.delete("/api/v1/watches/to-dead/_silence", params={"group": "10.0.0.1"})
    assert whole.status_code == 200, whole.text
    until = parse_instant(whole.json()["silences"]["*"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=119) < until <= dt.timedelta(hours=2)
    assert group.json()["silences"]["10.0.0.1"] == "2099-01-01T00:00:00.000Z"
    assert set(shown) == {"*", "10.0.0.1"}
    assert (lifted.json()["was_silenced"], set(lifted.json()["silences"])) == (True, {"10.0.0.1"})
    assert (not_silenced.json()["was_silenced"], not_silenced.json()["changed"]) == (False, False)
    assert both.status_code == 400 and "exactly one" in both.json()["error"]["reason"]
    assert past.status_code == 400 and "expected a time in the future" in past.json()["error"]["reason"]
    assert a_watch.status_code == 400 and a_watch.json()["error"]["reason"] == (
        "[json-watch] is an Elastic Watcher watch, and silences apply to rules only: ack its actions or deactivate "
        "it instead")
    assert watch_silences == {}
    kinds = [(e["kind"], e.get("group")) for e in events(es, served["prefix"], "to-dead")
             if e["kind"] in ("silenced", "unsilenced")]  # the daemon's own events (fired, dead…) are there too
    assert kinds == [("silenced", None), ("silenced", "10.0.0.1"), ("unsilenced", None), ("unsilenced", "10.0.0.1")]


# -- outbox --------------------------------------------------------------------------------------------------

def dead_deliveries(served) -> list[dict]:
    with client(served, READ_TOKEN) as http:
        return [d for d in http.get("/api/v1/outbox", params={"state": "dead"}).json()["deliveries"]
                if d.get("watch_id") == "to-dead"]


def test_outbox_lists_without_secrets_and_retry_sends_a_dead_delivery_again(served):
    [dead] = wait_for(lambda: dead_deliveries(served), 30, what="the dead delivery of to-dead")
    with client(served, READ_TOKEN) as http:
        listing = http.get("/api/v1/outbox", params={"state": "all", "size": 100})
    assert listing.status_code == 200
    assert listing.json()["depth"]["dead"] >= 1
    assert_no_secret(listing.text)
    hook = next(d for d in listing.json()["deliveries"] if d.get("connector") == "hook")
    assert HOOK_TOKEN not in json.dumps(hook["request"])
    served["bad"].status = 200
    with client(served) as http:
        retried = http.post(f"/api/v1/outbox/{dead['id']}/_retry")
        unknown = http.post("/api/v1/outbox/no-such-id/_retry")
    assert retried.json() == {"id": dead["id"], "state": "pending"}
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "resource_not_found_exception"

    def delivered():
        with client(served, READ_TOKEN) as http:
            found = http.get("/api/v1/outbox", params={"state": "delivered", "size": 1000}).json()["deliveries"]
        return any(d["id"] == dead["id"] for d in found)

    wait_for(delivered, 30, what="the retried delivery delivered")
    with client(served) as http:
        not_dead = http.post(f"/api/v1/outbox/{dead['id']}/_retry")
    assert not_dead.status_code == 409 and "is delivered, not dead" in not_dead.json()["error"]["reason"]


# -- TLS -----------------------------------------------------------------------------------------------------

def test_the_daemon_serves_https_with_a_configured_certificate(es, es_cluster, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    rules = tmp_path / "rules"
    rules.mkdir()
    prefix = f"api-tls-{uuid.uuid4().hex[:8]}"
    config = write_http_config(tmp_path, f"tls:\n  certfile: {cert}\n  keyfile: {key}\n")
    daemon = start_served(es_cluster, tmp_path, prefix, rules, config)
    url = f"https://127.0.0.1:{daemon.http_port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        def healthy():
            assert daemon.process.poll() is None, daemon.log()
            try:
                return httpx.get(f"{url}/healthz", verify=trusted, timeout=2).json().get("status") == "ok"
            except httpx.TransportError:
                return False

        wait_for(healthy, 30, what="https /healthz ok")
        answer = httpx.get(f"{url}/api/v1/watches", verify=trusted, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert answer.status_code == 200 and answer.json()["watches"] == []
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port is refused
            httpx.get(f"http://127.0.0.1:{daemon.http_port}/healthz", timeout=5).raise_for_status()
    finally:
        daemon.kill()
        delete_indices(es, prefix)

