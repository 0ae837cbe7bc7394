"""Helpers for the daemon integration tests: a real webhook receiver whose answer can be switched,
the daemon as a real subprocess (``python -m watcher.cli.run``), and queries of its indices."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- receiver -----------------------------------------------------------------------------------------

class SwitchableReceiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 answering ``status`` (switchable at any time) after ``delay_s``.

    With ``gate`` (a ``threading.Event``) every request is held until the test opens the gate (at
    most 60 s), so "a send is in flight" is a state the test controls, not a matter of elapsed time.

    ``requests`` keeps ``{"key": Idempotency-Key, "status": answered, "body": parsed JSON, "at": monotonic,
    "headers": {name: value}}``.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, status: int = 200, delay_s: float = 0.0,
                 gate: threading.Event | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.status = status
        self.delay_s = delay_s
        self.gate = gate
        self.requests: list[dict] = []
        self.started = 0  # requests received, answered or not
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def __enter__(self) -> "SwitchableReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.shutdown()
        self.server_close()

    def keys(self, status: int | None = None) -> list[str]:
        with self.lock:
            return [r["key"] for r in self.requests if status is None or r["status"] == status]


class _Handler(BaseHTTPRequestHandler):
    server: SwitchableReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.started += 1
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        if self.server.gate is not None:
            self.server.gate.wait(60)
        status = self.server.status
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.server.lock:
            self.server.requests.append({"key": self.headers.get("Idempotency-Key"), "status": status,
                                         "body": body, "at": time.monotonic(), "headers": dict(self.headers)})
        with contextlib.suppress(OSError):  # the sender may be gone (killed mid-request)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    do_PUT = do_GET = do_POST

    def log_message(self, *_args) -> None:
        pass


# --- definitions ----------------------------------------------------------------------------------------

def write_connectors(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "connectors.yaml"
    path.write_text(f"connectors:\n  hook:\n    type: webhook\n    url: {url}\n    method: post\n{extra}")
    return path


def rule_text(name: str, index: str, *, schedule: str = "2s", window: str = "1h", gte: int = 1,
              throttle: str = "1s", extra: str = "") -> str:
    # throttle 1s < the 2s period: every tick alerts. (``throttle: 0s`` would mean the 5s default:
    # the engine reads a zero period as "not set".)
    return (f"name: {name}\nschedule: {schedule}\nindex: {index}\nwindow: {window}\nthrottle: {throttle}\n"
            f"condition:\n  count: {{gte: {gte}}}\nactions:\n  - connector: hook\n{extra}")


def write_rule(folder: Path, name: str, index: str, **kwargs) -> Path:
    path = folder / f"{name}.yaml"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(rule_text(name, index, **kwargs))
    tmp.replace(path)  # atomic, as editors save
    return path


# --- the daemon as a subprocess -------------------------------------------------------------------------

class DaemonProcess:
    """``python -m watcher.cli.run`` with ``args`` and ``env``; output to ``log_path``."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, http_port: int):
        self.args, self.env, self.log_path, self.http_port = args, env, log_path, http_port
        self.process: subprocess.Popen | None = None

    def start(self) -> "DaemonProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watcher.cli.run", *self.args, "--http-port", str(self.http_port)],
            cwd=REPO, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())
        except OSError:
            return None

    def wait_healthy(self, timeout: float = 30.0) -> dict:
        def ok():
            assert self.process.poll() is None, f"daemon exited early:\n{self.log()}"
            document = self.health()
            return document if document and document.get("status") == "ok" else None
        return wait_for(ok, timeout, what="daemon /healthz ok")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


# --- the daemon's indices -------------------------------------------------------------------------------

def records(es, prefix: str, watch_id: str | None = None) -> list[dict]:
    """Every history record (optionally of one watch), oldest scheduled time first."""
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-history-*", allow_no_indices=True)
    query = {"term": {"watch_id": watch_id}} if watch_id else {"match_all": {}}
    response = es.options(ignore_status=404).search(
        index=f"{prefix}-history-*", size=10000, query=query, allow_no_indices=True, ignore_unavailable=True,
        sort=[{"trigger_event.schedule.scheduled_time": "asc"}])
    return [{"_id": h["_id"], **h["_source"]} for h in response.get("hits", {}).get("hits", [])]


def scheduled(record: dict) -> str:
    return record["trigger_event"]["schedule"]["scheduled_time"]


def outbox(es, prefix: str) -> list[dict]:
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-outbox")
    response = es.options(ignore_status=404).search(index=f"{prefix}-outbox", size=10000,
                                                    query={"match_all": {}})
    return [{"_id": h["_id"], **h["_source"]} for h in response.get("hits", {}).get("hits", [])]


def deliver_left_pending(es, prefix: str) -> list[str]:
    """After the daemon exited cleanly: send what its shutdown left ``pending``, as its next start
    would, with an outbox in this process (no scheduler, so nothing new comes in meanwhile); returns
    those delivery ids.

    A tick that ran as SIGTERM came queued its alert, and the shutdown keeps a delivery not yet
    claimed ``pending`` for the next start (by design). Whether a tick was running at that moment
    is thread timing, so the tests check the end state after this step, which is the same either
    way. Nothing may be left half-done by a clean exit: no delivery ``delivering`` or ``dead``.
    """
    from watcher.delivery.outbox import Outbox

    left = [d for d in outbox(es, prefix) if d["state"] != "delivered"]
    assert {d["state"] for d in left} <= {"pending"}, [(d["_id"], d["state"]) for d in left]
    if left:
        worker = Outbox(es, prefix, poll_interval_s=0.2)
        worker.start()
        try:
            wait_for(lambda: all(d["state"] == "delivered" for d in outbox(es, prefix)), 60,
                     what="the deliveries left pending delivered")
        finally:
            worker.stop(grace_s=5)
    return [d["_id"] for d in left]


def state(es, prefix: str, watch_id: str) -> dict | None:
    response = es.options(ignore_status=404).get(index=f"{prefix}-state", id=watch_id)
    return response.get("_source") if response.get("found") else None


def delete_indices(es, prefix: str) -> None:
    for pattern in (f"{prefix}-history-*", f"{prefix}-state", f"{prefix}-outbox"):
        with contextlib.suppress(Exception):
            es.options(ignore_status=404).indices.delete(index=pattern, allow_no_indices=True)
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-history")


# --- the fixture that starts daemons (imported by the daemon test modules) ------------------------------

@pytest.fixture
def start_daemon(es_cluster, prefix, rules_dir, tmp_path):
    """Start ``watcher run`` as a subprocess over the test module's ``rules_dir`` and ``prefix``;
    every process started is killed in teardown. Their state directory (the deployment key file) is
    the test's, never the user's."""
    started: list[DaemonProcess] = []

    def start(*extra: str, env: dict | None = None, http_port: int | None = None) -> DaemonProcess:
        args = ["--rules", str(rules_dir), "--index-prefix", prefix, "--jitter", "0", "--max-retry-delay", "1",
                "--max-attempts", "1000", "--grace", "10", *extra]
        daemon = DaemonProcess(args, {"WATCHER_STATE_DIR": str(tmp_path / "state"), **es_cluster.env(), **(env or {})},
                               tmp_path / "daemon.log", http_port or free_port())
        started.append(daemon.start())
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
