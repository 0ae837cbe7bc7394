"""The durable outbox on the real Elasticsearch, delivering to real HTTP receivers on 127.0.0.1.

Every test stops its workers in teardown and is bounded in time (waits poll with deadlines).
No test depends on thread timing: a receiver that must keep a request in flight holds it on a
gate the test opens (never a sleep), waits are on the condition itself (their timeouts only
matter on failure), and "nothing more happens" is checked after the worker has polled again.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
import stat
import threading
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from outbox_helpers import make_outbox, prefix  # noqa: F401  (fixtures)
from outbox_helpers import GATE_TIMEOUT_S, Receiver, local, state_of, wait_until
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watcher.delivery.outbox import OTHER_KEY, SECRET_GONE, Outbox, delivery_id, seal_request
from watcher.delivery.ratelimit import ConnectorLimits
from watcher.delivery.retry import RetryPolicy
from watcher.delivery.secretkey import SecretKey, load_secret_key
from watcher.es.outbox_store import DEAD, DELIVERED, DELIVERING, PENDING, OutboxStore
from watcher.model.requests import HttpRequest, LogMessage, basic_auth_header

pytestmark = pytest.mark.es

FAST = RetryPolicy(base_s=0.05, factor=2.0, max_delay_s=0.2, max_attempts=5)


@dataclasses.dataclass(frozen=True)
class Origin:
    """What the engine is to attach to a rendered request (see the proposed execute.py change)."""

    watch_id: str
    record_id: str
    action_id: str
    sequence: str = "0"
    connector: str | None = None


@dataclasses.dataclass(frozen=True)
class OriginRequest(HttpRequest):
    """An HttpRequest carrying ``origin``, as the proposed ``HttpRequest.origin`` field would."""

    origin: Any = dataclasses.field(default=None, compare=False)


@pytest.fixture
def gate():
    """A closed gate for gated receivers (see :class:`Receiver`): the test opens it; teardown opens
    it in any case, so no handler thread stays blocked after the test."""
    event = threading.Event()
    yield event
    event.set()


def polls(events: list) -> int:
    """Polls the worker completed so far (each ends with a ``depth`` event)."""
    return sum(kind == "depth" for kind, _ in events)


def wait_for_polls(events: list, count: int = 2) -> None:
    """Wait until the worker completed ``count`` more polls of the store: whatever it could still
    pick up there it has seen by then, so "nothing more was sent" is checked after it had its
    chances, not after a guessed delay."""
    done = polls(events)
    wait_until(lambda: polls(events) >= done + count)


class Clock:
    """The outbox's clock (``Outbox(clock=…)``), standing still unless the test moves it: lease
    arithmetic then depends on what the test does, not on how long the machine took."""

    def __init__(self):
        now = dt.datetime.now(dt.timezone.utc)
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # stored with milliseconds

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def post(url: str, body: str = '{"alert": "cpu high"}', *, read_timeout_s: float = 5.0, **kwargs) -> HttpRequest:
    """A webhook POST; requests to a gated receiver pass ``read_timeout_s=GATE_TIMEOUT_S`` so the
    client never gives up on a request the test holds."""
    return HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json"}, body=body,
                       timeout_s=2.0, read_timeout_s=read_timeout_s, connector_type="webhook", **kwargs)


def enqueue(outbox: Outbox, request: HttpRequest, record: str = "rec-1", action: str = "notify",
            sequence: str = "0", connector: str | None = None) -> str:
    outcome = outbox.enqueue(request, record_id=record, action_id=action, sequence=sequence,
                             watch_id="cpu", connector=connector)
    assert outcome.status == "success", outcome
    return outcome.response["outbox"]["id"]


# -- retries -------------------------------------------------------------------------------------------

def test_500_then_200_is_delivered_once_with_the_same_idempotency_key(httpserver, make_outbox):
    receiver = Receiver(500, 200)
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    events: list[tuple[str, dict]] = []
    outbox = make_outbox(on_event=lambda kind, **fields: events.append((kind, fields)))
    outbox.start()

    identifier = enqueue(outbox, post(local(httpserver, "/hook")))
    assert identifier == delivery_id("rec-1", "notify", "0")
    wait_until(lambda: state_of(outbox, identifier) == DELIVERED)
    wait_until(lambda: any(kind == "delivered" for kind, _ in events))  # emitted after the write

    assert receiver.keys == [identifier, identifier]          # the same key on both attempts
    assert len(set(receiver.keys)) == 1                       # a deduplicating receiver saw it once
    assert [body for _, _, body in receiver.calls] == ['{"alert": "cpu high"}'] * 2
    stored = outbox.store.get(identifier).source
    assert stored["attempts"] == 2 and stored["last_status"] == 200 and stored["last_error"] is None
    kinds = [kind for kind, _ in events if kind != "depth"]
    assert kinds == ["enqueued", "retried", "delivered"]
    retried = dict(events)["retried"]
    assert retried["reason"] == "received [500] status code" and 0 <= retried["delay_s"] <= 0.05
    delivered = dict(events)["delivered"]
    assert delivered["attempts"] == 2 and delivered["latency_s"] > 0 and delivered["connector"].startswith("webhook@127.0.0.1:")

    # the same record executed again: same id, nothing new written or sent
    again = outbox.enqueue(post(local(httpserver, "/hook")), record_id="rec-1", action_id="notify", sequence="0",
                           watch_id="cpu")
    assert again.response["outbox"] == {"id": identifier, "state": DELIVERED}  # the stored row, not a new one
    wait_for_polls(events)  # the worker searched the store again since: it found nothing to send
    assert len(receiver.calls) == 2


def test_400_is_dead_at_once_and_not_retried(httpserver, make_outbox):
    receiver = Receiver(Response('{"error": "bad"}', status=400))
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    events: list[tuple[str, dict]] = []
    outbox = make_outbox(on_event=lambda kind, **fields: events.append((kind, fields)))
    outbox.start()

    identifier = enqueue(outbox, post(local(httpserver, "/hook")))
    wait_until(lambda: state_of(outbox, identifier) == DEAD)
    wait_for_polls(events, 3)  # several polls of the store since: still one request
    assert len(receiver.calls) == 1
    stored = outbox.store.get(identifier).source
    assert stored["attempts"] == 1 and stored["last_status"] == 400
    assert stored["last_error"] == "received [400] status code (not retried)"


def test_retry_after_is_honoured(httpserver, make_outbox):
    receiver = Receiver(Response("busy", status=503, headers={"Retry-After": "1"}), 200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox()
    outbox.start()

    identifier = enqueue(outbox, post(local(httpserver, "/hook")))
    wait_until(lambda: state_of(outbox, identifier) == DELIVERED, timeout=10)
    (first, _, _), (second, _, _) = receiver.calls
    assert second - first >= 1.0


def test_attempts_are_capped_then_dead(httpserver, make_outbox):
    receiver = Receiver(503)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox(policy=RetryPolicy(base_s=0.02, max_delay_s=0.05, max_attempts=3))
    outbox.start()

    identifier = enqueue(outbox, post(local(httpserver, "/hook")))
    wait_until(lambda: state_of(outbox, identifier) == DEAD)
    assert len(receiver.calls) == 3
    assert outbox.store.get(identifier).source["last_error"] == (
        "gave up after 3 attempts (max_attempts 3); last error: received [503] status code")


def test_connection_refused_is_retried(make_outbox):
    # a port nobody listens on: bind, note the port, close
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outbox = make_outbox(policy=RetryPolicy(base_s=0.02, max_delay_s=0.05, max_attempts=2))
    outbox.start()
    identifier = enqueue(outbox, post(f"http://127.0.0.1:{port}/hook"))
    wait_until(lambda: state_of(outbox, identifier) == DEAD)
    stored = outbox.store.get(identifier).source
    assert stored["attempts"] == 2
    assert stored["last_error"].startswith("gave up after 2 attempts (max_attempts 2); last error: ConnectError:")


# -- durability ---------------------------------------------------------------------------------------------

def test_a_delivery_enqueued_without_worker_is_sent_by_a_new_outbox_after_restart(httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    before = make_outbox()  # never started: the process "dies" right after enqueueing
    identifier = enqueue(before, post(local(httpserver, "/hook")))
    assert state_of(before, identifier) == PENDING
    assert not before.running and receiver.calls == []  # no worker anywhere: nothing could send it

    after = make_outbox()
    after.start()
    wait_until(lambda: state_of(after, identifier) == DELIVERED)
    assert receiver.keys == [identifier]


def test_a_delivering_row_with_an_expired_lease_is_sent_again_after_restart(es, prefix, httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    store = OutboxStore(es, prefix)
    store.ensure()
    now = dt.datetime.now(dt.timezone.utc)

    def row(identifier: str, lease_until: dt.datetime) -> dict:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {"delivery_id": identifier, "watch_id": "cpu", "action_id": "notify", "record_id": "r",
                "connector": "hook", "state": DELIVERING, "attempts": 1, "created_at": stamp,
                "next_attempt_at": stamp, "updated_at": stamp,
                "lease_until": lease_until.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "last_error": None, "last_status": None, "request": seal_request(post(local(httpserver, "/hook")))}

    # killed mid-send (SIGKILL): its lease ran out a minute ago
    orphan = delivery_id("r", "notify", "orphan")
    store.create(orphan, row(orphan, now - dt.timedelta(minutes=1)))
    # claimed by a live process right now: must not be sent by us
    busy = delivery_id("r", "notify", "busy")
    store.create(busy, row(busy, now + dt.timedelta(minutes=5)))

    events: list[tuple[str, dict]] = []
    outbox = make_outbox(on_event=lambda kind, **fields: events.append((kind, fields)))
    outbox.start()
    wait_until(lambda: state_of(outbox, orphan) == DELIVERED)
    wait_for_polls(events)  # polled the store again since: the busy row is still not taken
    assert receiver.keys == [orphan]
    assert outbox.store.get(orphan).source["attempts"] == 2
    assert state_of(outbox, busy) == DELIVERING


def test_two_outboxes_on_one_store_never_send_the_same_delivery_twice(httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    writer = make_outbox()
    ids = [enqueue(writer, post(local(httpserver, "/hook")), record=f"rec-{n}") for n in range(10)]
    first, second = make_outbox(), make_outbox()
    first.start()
    second.start()
    wait_until(lambda: all(state_of(first, identifier) == DELIVERED for identifier in ids), timeout=15)
    assert sorted(receiver.keys) == sorted(ids)  # each exactly once


# -- lanes and backpressure ---------------------------------------------------------------------------------

@pytest.fixture
def two_receivers():
    servers = [HTTPServer(host="127.0.0.1", port=0, threaded=True) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.clear()
        server.stop()


def test_a_slow_receiver_does_not_delay_another_connector(two_receivers, make_outbox, gate):
    slow_server, fast_server = two_receivers
    slow, fast = Receiver(200, gate=gate), Receiver(200)  # A's receiver holds its requests until the end
    slow_server.expect_request("/a").respond_with_handler(slow)
    fast_server.expect_request("/b").respond_with_handler(fast)
    outbox = make_outbox(limits=ConnectorLimits({"A": {"concurrency": 1}}))
    outbox.start()

    def to_a(n: int) -> str:
        return enqueue(outbox, post(slow_server.url_for("/a"), read_timeout_s=GATE_TIMEOUT_S), record=f"a-{n}",
                       connector="A")

    slow_ids = [to_a(0)]
    wait_until(lambda: slow.calls)  # A's first request is out, held by its receiver
    # enqueueing (rule evaluation's part) returns while A's request is held: it never waits for A
    slow_ids += [to_a(1), to_a(2)]
    fast_id = enqueue(outbox, post(fast_server.url_for("/b")), record="b-0", connector="B")
    wait_until(lambda: state_of(outbox, fast_id) == DELIVERED)
    assert slow.answered == 0                 # B went out and was recorded while A's first request was held
    assert len(slow.calls) == 1               # A: one at a time
    outbox.stop(grace_s=0.2)                  # A's in-flight send is cut short…
    states = [state_of(outbox, identifier) for identifier in slow_ids]
    assert DELIVERING not in states           # …and put back: nothing is left half-done
    assert states.count(PENDING) == 3


def test_a_queue_of_one_still_delivers_all_twenty(httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox(queue_size=1)
    outbox.start()
    ids = [enqueue(outbox, post(local(httpserver, "/hook"), body=f'{{"n": {n}}}'), record=f"rec-{n}")
           for n in range(20)]
    wait_until(lambda: outbox.depth()[DELIVERED] == 20, timeout=20, interval=0.2)
    assert sorted(receiver.keys) == sorted(ids)
    assert sorted(json.loads(body)["n"] for _, _, body in receiver.calls) == list(range(20))


def test_stop_lets_an_in_flight_send_finish_within_the_grace_period(httpserver, make_outbox, gate):
    receiver = Receiver(200, gate=gate)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox()
    outbox.start()
    identifier = enqueue(outbox, post(local(httpserver, "/hook"), read_timeout_s=GATE_TIMEOUT_S))
    wait_until(lambda: receiver.calls)  # the send is out, held by the receiver
    stopping = threading.Thread(target=outbox.stop, kwargs={"grace_s": 120.0})
    stopping.start()
    wait_until(lambda: outbox._closing)  # the shutdown has begun while the send is in flight…
    assert stopping.is_alive() and receiver.answered == 0
    gate.set()                           # …and the send ends only now
    # stop() returns once the send ended, not at the end of its 120 s grace (join's 60 s only
    # matters on failure: the send is answered at once)
    stopping.join(60)
    assert not stopping.is_alive()
    assert state_of(outbox, identifier) == DELIVERED


# -- secrets ---------------------------------------------------------------------------------------------------

SECRET = "s3cr3t/p@ss w0rd"
TOKEN = "tok-0123456789abcdef"


def secret_request(url: str) -> HttpRequest:
    return HttpRequest(
        method="POST", url=f"{url}?key={quote(SECRET, safe='')}",
        headers={"Authorization": f"Bearer {TOKEN}", "Proxy-Authorization": basic_auth_header("alice", SECRET),
                 "Content-Type": "application/json"},
        body=json.dumps({"password": SECRET, "form": quote_plus(SECRET)}),
        timeout_s=2.0, read_timeout_s=5.0, secrets=(SECRET, TOKEN), connector_type="webhook")


def test_secrets_are_never_stored_and_are_resolved_at_send_time(es, httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    writer = make_outbox()
    identifier = enqueue(writer, secret_request(local(httpserver, "/hook")))

    raw = json.dumps(es.get(index=writer.store.index, id=identifier)["_source"])
    forbidden = [SECRET, TOKEN, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1],
                 base64.b64encode(f"alice:{SECRET}".encode()).decode()]
    assert [form for form in forbidden if form in raw] == []
    es.indices.refresh(index=writer.store.index)
    for form in (SECRET, TOKEN, "s3cr3t", "0123456789abcdef"):
        assert es.search(index=writer.store.index, q=f'"{form}"')["hits"]["total"]["value"] == 0
    assert "${secret:" in raw and "${secret-basic:" in raw

    outbox = make_outbox(secrets_provider=lambda: ["unrelated", SECRET, TOKEN])
    outbox.start()
    wait_until(lambda: state_of(outbox, identifier) == DELIVERED)
    (_, headers, body), = receiver.calls
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Proxy-Authorization"] == basic_auth_header("alice", SECRET)
    assert json.loads(body) == {"password": SECRET, "form": quote_plus(SECRET)}
    assert httpserver.log[0][0].args["key"] == SECRET


def test_a_rotated_secret_makes_the_delivery_dead(httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox(secrets_provider=lambda: [TOKEN])  # SECRET was rotated away
    outbox.start()
    identifier = enqueue(outbox, secret_request(local(httpserver, "/hook")))
    wait_until(lambda: state_of(outbox, identifier) == DEAD)
    assert outbox.store.get(identifier).source["last_error"] == SECRET_GONE
    assert receiver.calls == []


# -- keyed placeholders (docs/correctness.md#secret-placeholders) ----------------------------------------------

PIN, WORD = "4711", "hunter2"  # short, guessable secrets
# A dictionary an attacker would try: every 4-digit PIN and common passwords.
DICTIONARY = [f"{n:04d}" for n in range(10000)] + [
    "password", "123456", "qwerty", "letmein", "admin", "welcome", "monkey", "dragon", "hunter2", "changeme"]


def unkeyed(value: str) -> str:
    """How the previous version named a secret in the outbox: 16 hex of sha256(value), no key."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def short_secret_request(url: str) -> HttpRequest:
    return HttpRequest(method="POST", url=f"{url}?pin={PIN}",
                       headers={"X-Api-Key": WORD, "Content-Type": "application/json"},
                       body=json.dumps({"password": WORD}), timeout_s=2.0, read_timeout_s=5.0,
                       secrets=(PIN, WORD), connector_type="webhook")


def test_a_stored_placeholder_does_not_reveal_a_short_secret_to_a_dictionary_attack(es, httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    writer = make_outbox()
    identifier = enqueue(writer, short_secret_request(local(httpserver, "/hook")))

    stored = es.get(index=writer.store.index, id=identifier)["_source"]
    raw = json.dumps(stored)
    # the attack: hash every candidate the way unkeyed placeholders were made, look for it in the document
    hexes = re.findall(r"[0-9a-f]{16,}", raw)
    recovered = [word for word in DICTIONARY if any(unkeyed(word) in text for text in hexes)]
    assert recovered == []
    request = stored["request"]
    assert WORD not in raw
    assert re.fullmatch(re.escape(local(httpserver, "/hook")) + r"\?pin=\$\{secret:hmac:[0-9a-f]{32}\}", request["url"])
    assert re.fullmatch(r"\$\{secret:hmac:[0-9a-f]{32}\}", request["headers"]["X-Api-Key"])

    outbox = make_outbox(secrets_provider=lambda: [PIN, WORD])  # same process, same key
    outbox.start()
    wait_until(lambda: state_of(outbox, identifier) == DELIVERED)
    (_, headers, body), = receiver.calls
    assert headers["X-Api-Key"] == WORD and json.loads(body) == {"password": WORD}
    assert httpserver.log[0][0].args["pin"] == PIN
    es.indices.refresh(index=writer.store.index)
    assert es.search(index=writer.store.index, q=f'"{WORD}"')["hits"]["total"]["value"] == 0
    assert WORD not in json.dumps(es.get(index=writer.store.index, id=identifier)["_source"])


def test_the_key_file_lets_a_restart_send_and_another_key_makes_the_delivery_dead_until_retried(
        es, tmp_path, httpserver, make_outbox):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    state = tmp_path / "state"
    key = load_secret_key(state_dir=state, environ={})  # created: the daemon's default
    assert stat.S_IMODE((state / "secret-key").stat().st_mode) == 0o600
    writer = make_outbox(secret_key=key)
    identifier = enqueue(writer, short_secret_request(local(httpserver, "/hook")))
    assert es.get(index=writer.store.index, id=identifier)["_source"]["request"]["secret_key_id"] == key.key_id

    # a process with another key (another daemon on the prefix, or the key file lost): dead, with the reason
    stranger = make_outbox(secret_key=SecretKey.generate(), secrets_provider=lambda: [PIN, WORD])
    stranger.start()
    wait_until(lambda: state_of(stranger, identifier) == DEAD)
    stranger.stop(grace_s=0.5)
    reason = writer.store.get(identifier).source["last_error"]
    assert reason.startswith(f"{OTHER_KEY} (key id {key.key_id}; this process has {stranger.secret_key.key_id})")
    assert receiver.calls == []

    # the next start reads the same key file: the operator retries it and it is sent
    restarted = make_outbox(secret_key=load_secret_key(state_dir=state, environ={}),
                            secrets_provider=lambda: [PIN, WORD])
    assert restarted.secret_key == key
    restarted.start()
    assert restarted.retry(identifier) is True
    wait_until(lambda: state_of(restarted, identifier) == DELIVERED)
    (_, headers, body), = receiver.calls
    assert headers["X-Api-Key"] == WORD and json.loads(body) == {"password": WORD}
    assert httpserver.log[0][0].args["pin"] == PIN


def test_a_delivery_stored_with_unkeyed_placeholders_is_sent_and_stored_again_keyed(es, prefix, httpserver,
                                                                                     make_outbox, caplog):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    store = OutboxStore(es, prefix)
    store.ensure()
    # a pending row exactly as the previous version wrote it (no key id, sha256 prefixes)
    basic = base64.b64encode(f"alice:${{secret:{unkeyed(WORD)}}}".encode()).decode()
    request = {"method": "POST", "url": f"{local(httpserver, '/hook')}?pin=${{secret:{unkeyed(PIN)}}}",
               "headers": {"X-Api-Key": f"${{secret:{unkeyed(WORD)}}}", "Authorization": f"Basic ${{secret-basic:{basic}}}",
                           "Content-Type": "application/json"},
               "body": json.dumps({"password": f"${{secret:{unkeyed(WORD)}}}"}), "timeout_s": 2.0,
               "read_timeout_s": 5.0, "verify": True, "ca_file": None, "proxy": None, "connector_type": "webhook"}
    identifier = delivery_id("r", "notify", "unkeyed")
    store.create(identifier, {**_pending_row("http://unused", identifier), "request": request})

    key = SecretKey.generate()
    outbox = make_outbox(secret_key=key, secrets_provider=lambda: [PIN, WORD])
    with caplog.at_level("WARNING", logger="watcher.delivery.outbox"):
        outbox.start()
        wait_until(lambda: state_of(outbox, identifier) == DELIVERED)
    (_, headers, body), = receiver.calls
    assert headers["X-Api-Key"] == WORD and headers["Authorization"] == basic_auth_header("alice", WORD)
    assert json.loads(body) == {"password": WORD}
    assert httpserver.log[0][0].args["pin"] == PIN

    stored = es.get(index=store.index, id=identifier)["_source"]["request"]
    raw = json.dumps(stored)
    assert unkeyed(PIN) not in raw and unkeyed(WORD) not in raw and WORD not in raw
    assert stored["secret_key_id"] == key.key_id
    assert stored["headers"]["X-Api-Key"] == f"${{secret:hmac:{key.digest(WORD)}}}"
    assert [r.getMessage() for r in caplog.records if r.name == "watcher.delivery.outbox"] == [
        f"outbox delivery {identifier} was stored with unkeyed secret placeholders (written by an older version); "
        "it is sent, and stored again with keyed ones, as is every such delivery when it is next attempted"]


# -- the seam and the admin helpers ---------------------------------------------------------------------------

def test_deliver_writes_http_requests_and_sends_log_lines_now(es, httpserver, make_outbox, caplog):
    receiver = Receiver(200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox()
    origin = Origin(watch_id="cpu", record_id="cpu_1-2024", action_id="slack", connector="ops")
    pair = tuple(OriginRequest(method="POST", url=local(httpserver, "/hook"), body=f"to {who}", origin=origin)
                 for who in ("#a", "#b"))

    outcome = outbox.deliver(pair, None)
    assert outcome.status == "success"
    ids = [part.response["outbox"]["id"] for part in outcome.parts]
    assert ids == [delivery_id("cpu_1-2024", "slack", "0", 0), delivery_id("cpu_1-2024", "slack", "0", 1)]
    assert [part.response["outbox"]["state"] for part in outcome.parts] == [PENDING, PENDING]
    assert outbox.deliver(pair, None).parts[0].response["outbox"]["id"] == ids[0]  # re-execution: same ids
    assert outbox.store.get(ids[0]).source["connector"] == "ops"
    assert outbox.depth()[PENDING] == 2

    with caplog.at_level("INFO", logger="watcher.test.outbox"):
        logged = outbox.deliver(LogMessage(level="info", category="watcher.test.outbox", text="hello"), None)
    assert logged.status == "success"
    assert [r.getMessage() for r in caplog.records if r.name == "watcher.test.outbox"] == ["hello"]
    assert outbox.depth()[PENDING] == 2  # nothing written for the log line

    outbox.start()
    wait_until(lambda: outbox.depth()[DELIVERED] == 2)
    assert sorted(body for _, _, body in receiver.calls) == ["to #a", "to #b"]


def test_list_retry_and_depth(httpserver, make_outbox):
    receiver = Receiver(404, 200)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox()
    outbox.start()
    identifier = enqueue(outbox, post(local(httpserver, "/hook")))
    wait_until(lambda: state_of(outbox, identifier) == DEAD)

    dead = outbox.list_deliveries(state=DEAD)
    assert [(d["id"], d["attempts"], d["last_status"]) for d in dead] == [(identifier, 1, 404)]
    assert outbox.list_deliveries(state=PENDING) == []
    assert outbox.depth() == {PENDING: 0, DELIVERING: 0, DELIVERED: 0, DEAD: 1}

    assert outbox.retry(identifier) is True  # dead → pending, attempts reset; the receiver now says 200
    wait_until(lambda: state_of(outbox, identifier) == DELIVERED)
    assert outbox.store.get(identifier).source["attempts"] == 1
    assert outbox.retry(identifier) is False  # not dead: nothing to do
    with pytest.raises(KeyError):
        outbox.retry("no-such-delivery")
    with pytest.raises(ValueError):
        outbox.list_deliveries(state="lost")


def test_an_unreachable_cluster_gives_a_failure_outcome_not_an_exception():
    import socket

    from elasticsearch import Elasticsearch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    es = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=1, max_retries=0)
    outcome = Outbox(es, "nowhere").enqueue(post("http://127.0.0.1:1/x"), record_id="r", action_id="a")
    assert outcome.status == "failure"
    assert outcome.reason.startswith("could not write the delivery to the outbox: ")


# -- batched writes (group commit): claims and results share _bulk requests ---------------------------------

def _pending_row(url: str, identifier: str) -> dict:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"delivery_id": identifier, "watch_id": "cpu", "action_id": "notify", "record_id": "r",
            "connector": "hook", "state": PENDING, "attempts": 0, "created_at": stamp, "next_attempt_at": stamp,
            "updated_at": stamp, "lease_until": None, "last_error": None, "last_status": None,
            "request": seal_request(post(url))}


def _claim(lease: str) -> dict:
    return {"state": DELIVERING, "lease_until": lease, "updated_at": lease}


def test_concurrent_claims_of_one_delivery_in_one_bulk_exactly_one_wins(es, prefix):
    import asyncio

    from watcher.es.groupcommit import AsyncGroupCommit, write_documents

    store = OutboxStore(es, prefix)
    store.ensure()
    identifier = delivery_id("r", "notify", "contended")
    store.create(identifier, _pending_row("http://127.0.0.1:9/hook", identifier))
    copy = store.get(identifier)  # every claimer read the same version
    leases = [f"2030-01-01T00:00:{second:02d}.000Z" for second in range(8)]
    # one request out at a time: the first claim goes alone, the seven others share the next _bulk
    writes = AsyncGroupCommit(lambda batch: write_documents(es, batch), max_in_flight=1)

    async def claim_all():
        return await asyncio.gather(*(store.update_async(copy, _claim(lease), writes) for lease in leases))

    results = asyncio.run(claim_all())

    assert writes.stats == {"requests": 2, "items": 8, "largest_batch": 7}
    winners = [(lease, result) for lease, result in zip(leases, results) if result is not None]
    assert [lease for lease, _ in winners] == [leases[0]]  # the first write applies; the 7 others conflict
    stored = store.get(identifier)
    assert stored.state == DELIVERING and stored.source["lease_until"] == leases[0]
    assert (stored.seq_no, stored.primary_term) == (winners[0][1].seq_no, winners[0][1].primary_term)
    assert stored.source["request"] == copy.source["request"]  # the whole document was kept


def test_concurrent_claims_from_threads_exactly_one_wins(es, prefix):
    store = OutboxStore(es, prefix)
    store.ensure()
    ids = [delivery_id("r", "notify", f"threads-{n}") for n in range(5)]
    for identifier in ids:
        store.create(identifier, _pending_row("http://127.0.0.1:9/hook", identifier))
    copies = [store.get(identifier) for identifier in ids]
    start = threading.Barrier(40)
    results: dict[tuple[str, int], Any] = {}

    def claimer(copy, n: int) -> None:
        start.wait()
        results[(copy.id, n)] = store.update(copy, _claim(f"2030-01-01T00:00:{n:02d}.000Z"))

    threads = [threading.Thread(target=claimer, args=(copy, n)) for copy in copies for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for copy in copies:
        won = [n for n in range(8) if results[(copy.id, n)] is not None]
        assert len(won) == 1, (copy.id, won)
        assert store.get(copy.id).source["lease_until"] == f"2030-01-01T00:00:{won[0]:02d}.000Z"
        assert es.get(index=store.index, id=copy.id)["_version"] == 2  # created, then one write landed: no more


def test_a_bulk_with_one_failing_item_fails_that_caller_only(es, prefix):
    import asyncio

    from elasticsearch import BadRequestError

    from watcher.es.groupcommit import AsyncGroupCommit, write_documents

    store = OutboxStore(es, prefix)
    store.ensure()
    ids = [delivery_id("r", "notify", f"bulk-{n}") for n in range(4)]
    for identifier in ids:
        store.create(identifier, _pending_row("http://127.0.0.1:9/hook", identifier))
    first, stale, unmappable, last = (store.get(identifier) for identifier in ids)
    store.update(stale, {"attempts": 3})  # someone else wrote it since: our copy is stale
    writes = AsyncGroupCommit(lambda batch: write_documents(es, batch), max_in_flight=1)
    lease = "2030-01-01T00:00:00.000Z"

    async def together():
        return await asyncio.gather(
            store.update_async(first, _claim(lease), writes),
            store.update_async(first, {"attempts": 1}, writes),         # same version as the first: conflict
            store.update_async(stale, _claim(lease), writes),
            store.update_async(unmappable, {"attempts": "three"}, writes),  # not an integer: 400 for this item
            store.update_async(last, _claim(lease), writes),
            return_exceptions=True)

    claimed, same_version, stale_claim, refused, last_claim = asyncio.run(together())

    assert writes.stats == {"requests": 2, "items": 5, "largest_batch": 4}  # the four after the first shared one _bulk
    assert claimed is not None and claimed.state == DELIVERING
    assert same_version is None and stale_claim is None  # conflicts: None to their callers only
    assert isinstance(refused, BadRequestError) and refused.meta.status == 400
    # document_parsing_exception since Elasticsearch 8.8; mapper_parsing_exception before and on OpenSearch
    assert re.search(r"(document|mapper)_parsing_exception", str(refused)) and "[attempts]" in str(refused)
    assert last_claim is not None and store.get(last.id).state == DELIVERING
    assert store.get(first.id).source["lease_until"] == lease and store.get(first.id).attempts == 0
    assert store.get(stale.id).state == PENDING and store.get(stale.id).attempts == 3
    assert es.get(index=store.index, id=unmappable.id)["_version"] == 1  # nothing written for the refused item


def test_creates_of_many_threads_share_bulk_requests_and_a_repeat_is_not_written_again(es, prefix):
    from tests.groupcommit_helpers import held
    from watcher.es.groupcommit import document_requests

    store = OutboxStore(es, prefix)
    store.ensure()
    ids = [delivery_id("r", "notify", f"create-{n}") for n in range(30)]
    writes = document_requests(es).writes
    before = dict(writes.stats)
    created: list[bool] = []
    lock = threading.Lock()

    def create(identifier: str) -> None:
        _, new = store.create(identifier, _pending_row("http://127.0.0.1:9/hook", identifier))
        with lock:
            created.append(new)

    threads = [threading.Thread(target=create, args=(identifier,)) for identifier in ids * 2]  # each id twice
    # every request slot stays taken until all 60 creates are queued (as behind a slow _bulk), so
    # they are concurrent by construction, not by luck of the scheduler
    with held(writes, len(threads)):
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)

    assert sorted(created) == [False] * 30 + [True] * 30  # each id created once; its repeat found it
    # the 60 creates, the repeats included, shared one _bulk (max_batch 100), each with its own answer
    assert writes.stats["items"] - before["items"] == 60
    assert writes.stats["requests"] - before["requests"] == 1
    store.refresh()
    assert es.count(index=store.index)["count"] == 30


class CountingReceiver(Receiver):
    """A Receiver that also records the most requests it ever held at once."""

    def __init__(self, *responses, gate: threading.Event | None = None):
        super().__init__(*responses, gate=gate)
        self.now = self.most = 0

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return super().__call__(request)
        finally:
            with self.lock:
                self.now -= 1


def test_claims_run_ahead_but_requests_in_flight_stay_within_the_connector_concurrency(two_receivers, make_outbox,
                                                                                      gate):
    httpserver = two_receivers[0]  # threaded: it can hold several requests at once
    receiver = CountingReceiver(200, gate=gate)  # holds every request until the gate opens
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox(limits=ConnectorLimits({"A": {"concurrency": 3}}))
    outbox.start()
    ids = [enqueue(outbox, post(local(httpserver, "/hook"), read_timeout_s=GATE_TIMEOUT_S), record=f"rec-{n}",
                   connector="A") for n in range(12)]
    wait_until(lambda: len(receiver.calls) >= 3)  # 3 requests out, all held
    # while those 3 are held, the next ones are claimed (delivering) ahead, waiting for a slot…
    wait_until(lambda: sum(state_of(outbox, identifier) == DELIVERING for identifier in ids) > 3)
    assert len(receiver.calls) == 3 and receiver.answered == 0  # …and none of them was sent
    gate.set()
    wait_until(lambda: all(state_of(outbox, identifier) == DELIVERED for identifier in ids), timeout=15)
    assert receiver.most == 3  # 3 at once, never more
    assert sorted(receiver.keys) == sorted(ids)  # each once


def test_a_claim_that_waited_too_long_for_its_slot_is_claimed_anew_before_sending(es, httpserver, make_outbox,
                                                                                   gate):
    # lease = timeouts (2 s + 60 s) + 5 s = 67 s; a send needs timeouts + 2.5 s = 64.5 s of it left.
    # The outbox's clock stands still but when the test moves it: the first delivery is sent with its
    # whole lease left; the second, claimed ahead while the first one's request is held, has 57 s
    # left once the test moved the clock 10 s, and is claimed again before it is sent.
    clock = Clock()
    receiver = CountingReceiver(200, gate=gate)
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    outbox = make_outbox(limits=ConnectorLimits({"A": {"concurrency": 1}}), lease_s=1.0, clock=clock)
    outbox.start()
    first, second = (enqueue(outbox, post(local(httpserver, "/hook"), read_timeout_s=GATE_TIMEOUT_S),
                             record=f"rec-{n}", connector="A") for n in range(2))
    # one request held by the receiver, both deliveries claimed (the other one ahead, waiting for the slot)
    wait_until(lambda: receiver.calls and all(state_of(outbox, identifier) == DELIVERING
                                              for identifier in (first, second)))
    clock.advance(10)
    gate.set()
    wait_until(lambda: all(state_of(outbox, identifier) == DELIVERED for identifier in (first, second)), timeout=15)
    # Either delivery may be claimed first (two claims race for one slot): the order is not the point.
    assert sorted(receiver.keys) == sorted([first, second]) and receiver.most == 1
    sent_first, sent_second = receiver.keys
    versions = {identifier: es.get(index=outbox.store.index, id=identifier)["_version"]
                for identifier in (first, second)}
    # the one sent first: created, claimed, delivered; the other: created, claimed (ahead), claimed
    # again, delivered
    assert versions == {sent_first: 3, sent_second: 4}
