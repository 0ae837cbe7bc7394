"""The benchmark's alert receiver: a minimal threaded HTTP/1.1 server on 127.0.0.1, in its own process.

``python -m bench.receiver [--port 0]`` prints ``{"port": N}`` on stdout once listening, then serves
until SIGTERM. ``POST`` any path: the JSON body's ``alert`` (an id) and ``sent_at`` (``time.time()``
when the alert was handed to the sender) are recorded with the arrival time; the answer is 200 with a
small JSON body, keep-alive (HTTP/1.1, ``Content-Length``), so pooled clients reuse connections.
``GET /stats`` answers ``{"received", "distinct", "latencies_s": [arrival − sent_at, …],
"first_at", "last_at"}``; ``DELETE /stats`` clears them. It is a separate process so the receiver
takes no interpreter time from the sender being measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.latencies: list[float] = []
        self.alerts: set = set()
        self.received = 0
        self.first_at: float | None = None
        self.last_at: float | None = None


STATE = _State()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without TCP_NODELAY each keep-alive answer waits ~40 ms

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        with STATE.lock:
            STATE.received += 1
            STATE.first_at = arrived if STATE.first_at is None else STATE.first_at
            STATE.last_at = arrived
            if isinstance(body, dict) and "alert" in body:
                STATE.alerts.add(body["alert"])
                if isinstance(body.get("sent_at"), (int, float)):
                    STATE.latencies.append(arrived - body["sent_at"])
        self._answer(200, {"result": "ok"})

    def do_GET(self) -> None:  # noqa: N802
        with STATE.lock:
            stats = {"received": STATE.received, "distinct": len(STATE.alerts), "latencies_s": STATE.latencies,
                     "first_at": STATE.first_at, "last_at": STATE.last_at}
            self._answer(200, stats)

    def do_DELETE(self) -> None:  # noqa: N802
        with STATE.lock:
            STATE.clear()
        self._answer(200, {"cleared": True})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # no access log: it would cost more than the work
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = _Server(("127.0.0.1", args.port), _Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


class Running:
    """The receiver as a child process, for a ``with`` block: ``.url``, ``.stats()``, ``.clear()``.

    Stopped (SIGTERM, then killed after 5 s) on exit.
    """

    def __enter__(self) -> "Running":
        import subprocess

        self.process = subprocess.Popen([sys.executable, "-m", "bench.receiver"], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark receiver did not start")
        self.port = json.loads(line)["port"]
        self.url = f"http://127.0.0.1:{self.port}/alert"
        return self

    def stats(self) -> dict:
        """``GET /stats`` (see the module docstring)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=30) as answer:
            return json.loads(answer.read())

    def clear(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/stats", method="DELETE")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def __exit__(self, *exc) -> None:
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
