"""Events end to end (docs/events.md): a real ``watcher run`` subprocess with API tokens, the real
cluster, a real webhook receiver, and real clients of the three ways to wait (httpx-sse, the
``websockets`` client, httpx long-poll) on 127.0.0.1.

Waits are on conditions with deadlines (the deadlines only matter on failure); nothing asserts a
duration."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid

import h11
import httpx
import pytest
from daemon_helpers import start_daemon  # noqa: F401  (the fixture)
from daemon_helpers import (SwitchableReceiver, delete_indices, wait_for,
                            write_connectors)
from httpx_sse import aconnect_sse
from stream_helpers import (ADMIN, OTHER, READER, SseCollector, WsCollector,
                            auth, long_poll, read_all, write_http_config)

from watcher.es.events import Cursor, EventLog
from watcher.model.events import Event, event_id

pytestmark = pytest.mark.http_surface
UTC = dt.timezone.utc


@pytest.fixture
def prefix(es):
    name = f"wev-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)
    es.options(ignore_status=404).indices.delete(index=f"{name}-events")


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


def _grouped_rule(index: str) -> str:
    return (f"name: hosts\nschedule: 2s\nindex: {index}\nwindow: 1h\nthrottle: 1s\ngroup_by: host\n"
            "condition:\n  count: {gte: 1}\nactions:\n  - connector: hook\n    on: [firing, recovered]\n"
            "  - connector: broken\n")


def _start(start_daemon, tmp_path, *extra, **streams):  # noqa: F811 (the fixture)
    config = write_http_config(tmp_path, **streams)
    daemon = start_daemon("--http-config", str(config), *extra)
    daemon.wait_healthy(60)
    return daemon, f"http://127.0.0.1:{daemon.http_port}"


def _key(event: dict) -> tuple:
    return event["cursor"], event["id"], event["kind"]


def test_three_ways_deliver_the_identical_sequence(es, index_name, rules_dir, tmp_path, start_daemon):  # noqa: F811
    es.index(index=index_name, id="a", document={"@timestamp": dt.datetime.now(UTC).isoformat(), "host": "a"})
    es.index(index=index_name, id="b", document={"@timestamp": dt.datetime.now(UTC).isoformat(), "host": "b"},
             refresh=True)
    with SwitchableReceiver() as good, SwitchableReceiver(status=500) as bad:
        write_connectors(rules_dir, good.url, f"  broken:\n    type: webhook\n    url: {bad.url}\n    method: post\n")
        (rules_dir / "hosts.yaml").write_text(_grouped_rule(index_name))
        daemon, base = _start(start_daemon, tmp_path, "--max-attempts", "2")
        sse = SseCollector(base, after="beginning")
        sse.start()
        ws = WsCollector(base, after="beginning")
        ws.start()
        polled: list[dict] = []
        cursor = "beginning"

        def poll_until(kinds: set[str]) -> bool:
            nonlocal cursor
            page = long_poll(base, cursor, wait=5)
            polled.extend(page["events"])
            cursor = page["cursor"]
            return kinds <= {event["kind"] for event in polled}

        wait_for(lambda: poll_until({"fired", "delivered", "delivery_failed", "dead"}), 90, interval=0,
                 what="fired, delivered, delivery_failed and dead events")
        assert {e["group"] for e in polled if e["kind"] == "fired"} >= {"a", "b"}
        es.delete(index=index_name, id="a", refresh=True)  # group a matches no more: it recovers
        wait_for(lambda: poll_until({"recovered"}), 60, interval=0, what="a recovered event")
        recovered = [e for e in polled if e["kind"] == "recovered"]
        # operator events (watcher.operations through the API) are in the same log and the same streams
        acked = httpx.post(f"{base}/api/v1/watches/hosts/_ack", json={}, headers=auth(ADMIN))
        assert acked.status_code == 200, acked.text
        silenced = httpx.post(f"{base}/api/v1/watches/hosts/_silence", json={"for": "1h", "group": "b"},
                              headers=auth(ADMIN))
        assert silenced.status_code == 200, silenced.text
        wait_for(lambda: poll_until({"acked", "silenced"}), 60, interval=0, what="acked and silenced events")
        operator = {e["kind"]: e for e in polled if e["kind"] in ("acked", "silenced")}
        assert operator["silenced"]["group"] == "b" and operator["acked"]["actor"] == "api:ops"
        assert recovered[0]["group"] == "a" and recovered[0]["watch_id"] == "hosts"
        dead = next(e for e in polled if e["kind"] == "dead")
        assert dead["connector"] == "broken" and dead["details"]["attempts"] == 2 and dead["delivery_id"]
        target = polled[-1]["cursor"]
        wait_for(lambda: target in {e["cursor"] for e in sse.events} and target in {e["cursor"] for e in ws.events},
                 60, what="the SSE and WebSocket clients reaching the long-poll's last cursor")
        sse.stop()
        ws.stop()
        assert sse.error is None and ws.error is None

        def upto(events):
            cut = [e["cursor"] for e in events].index(target)
            return events[:cut + 1]

        assert upto(sse.events) == polled
        assert upto(ws.events) == polled
        seq = [Cursor.parse(e["cursor"]).seq_no for e in polled]
        assert seq == sorted(seq) and len(set(seq)) == len(seq)
        # the log in Elasticsearch holds the same, and a filter gives the same subsequence
        truth = EventLog(es, daemon.args[daemon.args.index("--index-prefix") + 1])
        stored = truth.read(Cursor.parse("beginning"), limit=len(polled)).events
        assert [(e.cursor, e.id, e.kind) for e in stored] == [_key(e) for e in polled]
        only_dead, _ = read_all(base, "beginning", kind="dead")
        polled_dead = [_key(e) for e in polled if e["kind"] == "dead"]
        assert [_key(e) for e in only_dead][:len(polled_dead)] == polled_dead
        assert ws.messages[0] == {"type": "subscribed", "after": "beginning", "resumed": False}

        # `watcher events` prints the same, as JSON lines; --follow from a cursor prints what comes after it
        token_file = tmp_path / "token"
        token_file.write_text(READER)
        cli = [sys.executable, "-m", "watcher.cli", "events", "--url", base, "--token-file", str(token_file), "--json"]
        printed = subprocess.run([*cli, "--after", "beginning"], capture_output=True, text=True, timeout=60, check=True)
        lines = [json.loads(line) for line in printed.stdout.splitlines()]
        assert lines[:len(polled)] == polled and READER not in printed.stdout + printed.stderr
        follower = subprocess.Popen([*cli, "--follow", "--after", polled[1]["cursor"]], stdout=subprocess.PIPE,
                                    text=True)
        try:
            followed = [json.loads(follower.stdout.readline()) for _ in range(3)]
        finally:
            follower.kill()
            follower.wait(10)
        assert followed == polled[2:5]
        refused = subprocess.run([sys.executable, "-m", "watcher.cli", "events", "--url", base], capture_output=True,
                                 text=True, timeout=60, env={**os.environ, "WATCHER_TOKEN": "unknown-token-0000000"})
        assert refused.returncode == 3 and "401" in refused.stderr and "unknown-token" not in refused.stderr


def test_reconnecting_with_the_cursor_gets_exactly_the_missed_events_also_across_a_restart(
        es, index_name, rules_dir, tmp_path, start_daemon, prefix):  # noqa: F811
    es.index(index=index_name, document={"@timestamp": dt.datetime.now(UTC).isoformat(), "host": "a"}, refresh=True)
    with SwitchableReceiver() as good, SwitchableReceiver() as other:
        write_connectors(rules_dir, good.url, f"  broken:\n    type: webhook\n    url: {other.url}\n    method: post\n")
        (rules_dir / "hosts.yaml").write_text(_grouped_rule(index_name))
        daemon, base = _start(start_daemon, tmp_path)
        log = EventLog(es, prefix)
        first = SseCollector(base)
        first.start()
        wait_for(lambda: len(first.events) >= 3, 60, what="three live events")
        first.stop()
        seen = first.events[-1]["cursor"]
        wait_for(lambda: len(log.read(Cursor.parse(seen)).events) >= 4, 60, what="events missed while away")
        again = SseCollector(base, last_event_id=seen)
        again.start()
        wait_for(lambda: len(again.events) >= 4, 60, what="the missed events")
        again.stop()
        truth = [(e.cursor, e.id) for e in log.read(Cursor.parse(seen), limit=len(again.events)).events]
        assert [(e["cursor"], e["id"]) for e in again.events] == truth

        # across a restart: stop the daemon, let events be written meanwhile, resume with the old cursor
        last = again.events[-1]["cursor"]
        assert daemon.stop(signal.SIGTERM) == 0
        while_down = [Event(id=event_id("fired", "while-down", n), kind="fired", watch_id="elsewhere",
                            time=dt.datetime.now(UTC), message=f"written by another daemon {n}") for n in range(3)]
        log.append(while_down)
        daemon = start_daemon("--http-config", str(tmp_path / "http.yaml"), http_port=daemon.http_port)
        daemon.wait_healthy(60)
        resumed = WsCollector(base, after=last)
        resumed.start()
        wait_for(lambda: {e.id for e in while_down} <= {e["id"] for e in resumed.events}, 60,
                 what="the events written while the daemon was down")
        resumed.stop()
        truth = [(e.cursor, e.id) for e in log.read(Cursor.parse(last), limit=len(resumed.events)).events]
        assert [(e["cursor"], e["id"]) for e in resumed.events] == truth


def _subscribers(base: str) -> dict[str, float]:
    prefix = 'watcher_stream_subscribers{transport="'
    return {line[len(prefix):].split('"')[0]: float(line.split()[-1])
            for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith(prefix)}


def test_a_stopping_daemon_ends_every_stream_cleanly(rules_dir, tmp_path, start_daemon):  # noqa: F811
    """docs/events.md#shutdown: SIGTERM ends an open SSE response (complete, not cut), closes a
    WebSocket with 1012 and answers a waiting long-poll, without an error in the daemon's log."""
    write_connectors(rules_dir, "http://127.0.0.1:9/hook")
    daemon, base = _start(start_daemon, tmp_path)
    end = long_poll(base, None)["cursor"]
    sse, ws = SseCollector(base), WsCollector(base)
    sse.start()
    ws.start()
    polled: dict = {}
    poller = threading.Thread(target=lambda: polled.update(long_poll(base, end, wait=60)), daemon=True)
    poller.start()
    wait_for(lambda: _subscribers(base) == {"sse": 1.0, "ws": 1.0, "longpoll": 1.0}, 30, what="three open streams")

    assert daemon.stop(signal.SIGTERM) == 0
    sse.join(30)
    ws.join(30)
    poller.join(30)
    assert not sse.is_alive() and sse.error is None  # the response was complete: no protocol error
    assert not ws.is_alive() and ws.connection.close_code == 1012
    assert polled == {"events": [], "cursor": end, "gap": False}
    log = (tmp_path / "daemon.log").read_text()
    assert "Exception in ASGI application" not in log and "ERROR" not in log, log[-3000:]


def test_unknown_tokens_and_stream_limits(rules_dir, tmp_path, start_daemon):  # noqa: F811
    write_connectors(rules_dir, "http://127.0.0.1:9/hook")
    _, base = _start(start_daemon, tmp_path, max_subscribers=3, max_subscribers_per_token=2)
    url = f"{base}/api/v1/events"
    assert httpx.get(url).status_code == 401
    answer = httpx.get(url, headers=auth("not-a-token-we-know-0000"))
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "security_exception"
    assert "not-a-token" not in answer.text
    assert httpx.get(f"{url}/stream", headers=auth("not-a-token-we-know-0000")).status_code == 401
    assert httpx.get(url, params={"kind": "exploded"}, headers=auth()).status_code == 400
    assert httpx.get(url, params={"after": "x.y"}, headers=auth()).status_code == 400
    open_streams = [SseCollector(base), SseCollector(base)]
    for stream in open_streams:
        stream.start()
        stream.opened.wait(30)
        assert stream.status == 200
    try:
        third = httpx.get(f"{url}/stream", headers=auth(READER))
        assert third.status_code == 429 and third.json()["error"]["type"] == "too_many_subscribers"
        other = SseCollector(base, token=OTHER)
        other.start()
        other.opened.wait(30)
        open_streams.append(other)
        assert other.status == 200
        fourth = httpx.get(url, params={"wait": 1}, headers=auth(OTHER))
        assert fourth.status_code == 503
        metrics = httpx.get(f"{base}/metrics").text
        assert 'watcher_stream_subscribers{transport="sse"} 3.0' in metrics
    finally:
        for stream in open_streams:
            stream.stop()


# --- backpressure -------------------------------------------------------------------------------------------

def _stalled_subscriber(port: int, after: str) -> socket.socket:
    """A raw SSE client with a tiny receive buffer that sends its request and then reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/v1/events/stream?after={after} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
                 f"\r\nAuthorization: Bearer {READER}\r\n\r\n".encode())
    return sock


def _read_to_eof(sock: socket.socket) -> tuple[int, bytes, bool]:
    """Read the response with h11 until the connection closes: (status, body, ended cleanly)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))  # h11 needs its side of the exchange
    conn.send(h11.EndOfMessage())
    status, body, ended = 0, bytearray(), False
    sock.settimeout(60)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            conn.receive_data(data)
            if not data:
                return status, bytes(body), ended
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            ended = True
        elif isinstance(event, h11.ConnectionClosed):
            return status, bytes(body), ended


def _sse_blocks(body: bytes) -> list[dict[str, str]]:
    blocks = []
    for raw in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in raw.split("\n") if line and not line.startswith(":")
                      and ": " in line)
        if "data" in fields:
            blocks.append(fields)
    return blocks


class HealthySubscribers(threading.Thread):
    """``count`` httpx-sse clients on one asyncio loop, each keeping every event id it receives."""

    def __init__(self, base: str, after: str, count: int):
        super().__init__(daemon=True)
        self.base, self.after, self.count = base, after, count
        self.received: list[list[str]] = [[] for _ in range(count)]
        self.cut_off: list[int] = []
        self.opened = 0
        self.error: BaseException | None = None
        self._done: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:
            self.error = error

    async def _main(self) -> None:
        self._done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=self.count + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None), limits=limits) as client:
            tasks = [asyncio.create_task(self._follow(client, n)) for n in range(self.count)]
            await self._done.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, client: httpx.AsyncClient, n: int) -> None:
        async with aconnect_sse(client, "GET", f"{self.base}/api/v1/events/stream", params={"after": self.after},
                                headers=auth()) as source:
            self.opened += 1
            async for sse in source.aiter_sse():
                if sse.event == "cutoff":
                    self.cut_off.append(n)
                elif sse.data:
                    self.received[n].append(json.loads(sse.data)["id"])

    def stop(self) -> None:
        if self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        self.join(30)


def _cutoffs(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith('watcher_stream_cutoffs_total{transport="sse"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_subscriber_that_never_reads_is_cut_off_while_100_others_receive_every_event(
        es, rules_dir, tmp_path, start_daemon, prefix):  # noqa: F811
    write_connectors(rules_dir, "http://127.0.0.1:9/hook")
    daemon, base = _start(start_daemon, tmp_path, buffer_events=50, heartbeat_s=1)
    head = long_poll(base, None)["cursor"]
    stalled = _stalled_subscriber(daemon.http_port, head)
    healthy = HealthySubscribers(base, head, 100)
    healthy.start()
    wait_for(lambda: healthy.opened == 100, 60, what="100 healthy subscribers connected")
    log = EventLog(es, prefix)
    written: list[str] = []
    padding = "x" * 1000

    def write_batch() -> None:
        batch = [Event(id=event_id("fired", "load", len(written) + n), kind="fired", watch_id="load",
                       time=dt.datetime.now(UTC), group=f"g{n}", message=padding) for n in range(40)]
        log.append(batch)
        written.extend(event.id for event in batch)
        wait_for(lambda: all(len(got) == len(written) for got in healthy.received), 60, interval=0.05,
                 what=f"100 subscribers receiving {len(written)} events")

    while _cutoffs(base) < 1:
        assert len(written) < 4000, "the stalled subscriber was never cut off"
        write_batch()
    write_batch()  # events written after the cut: the stalled client gets them by resuming
    assert healthy.cut_off == []
    assert all(got == written for got in healthy.received)
    healthy.stop()
    assert healthy.error is None

    status, body, ended = _read_to_eof(stalled)
    stalled.close()
    assert status == 200 and ended
    blocks = _sse_blocks(body)
    *events, last = blocks
    assert last["event"] == "cutoff"
    resume = json.loads(last["data"])["cursor"]
    got = [json.loads(block["data"])["id"] for block in events]
    assert got == written[:len(got)] and 0 < len(got) < len(written)
    assert resume == events[-1]["id"]  # the SSE id is the cursor of the last event it was sent
    rest, _ = read_all(base, resume)
    assert got + [event["id"] for event in rest] == written
