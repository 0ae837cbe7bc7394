"""Fixtures and helpers several integration modules share: a self-signed certificate for 127.0.0.1,
outboxes on a fresh index prefix (stopped at teardown), a real HTTP receiver that answers from a
script (and can hold requests on a gate the test opens), and waits on conditions, never on elapsed
time. Imported by name (``from outbox_helpers import …``), as daemon_helpers.py is: a
tests/integration/conftest.py would shadow tests/conftest.py, which modules import as ``conftest`` for
SHARED."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid

import pytest
from werkzeug import Request, Response

from watcher.delivery.outbox import Outbox
from watcher.delivery.retry import RetryPolicy

OUTBOX_POLICY = RetryPolicy(base_s=0.05, factor=2.0, max_delay_s=0.2, max_attempts=5)
"""The retry policy of :func:`make_outbox`'s outboxes unless a test gives one: fast, five attempts."""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI): ``(cert, key)`` paths."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"openssl cannot make a test certificate: {error}")
    return cert, key


@pytest.fixture
def prefix(es):
    """A fresh index prefix; its outbox index is deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-outbox")


@pytest.fixture
def make_outbox(es, prefix):
    """``make_outbox(**kwargs)`` → an Outbox on the test's prefix; every one is stopped afterwards."""
    made: list[Outbox] = []

    def make(**kwargs) -> Outbox:
        kwargs.setdefault("policy", OUTBOX_POLICY)
        kwargs.setdefault("poll_interval_s", 0.2)
        outbox = Outbox(es, prefix, **kwargs)
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        outbox.stop(grace_s=0.5)


def state_of(outbox: Outbox, identifier: str) -> str | None:
    item = outbox.store.get(identifier)
    return item.state if item else None


# How long a gated receiver holds a request at most: only reached when a test fails to open its gate.
GATE_TIMEOUT_S = 60.0


class Receiver:
    """Records (arrival time, headers, body) of every request; answers with ``responses`` in order
    (the last one repeats).

    With ``gate`` (a ``threading.Event``), every request is held until the test opens the gate, so
    "this request is still in flight" is a fact the test controls, not a matter of elapsed time;
    ``answered`` counts the requests let through."""

    def __init__(self, *responses: Response | int, gate: threading.Event | None = None):
        self.responses = [r if isinstance(r, Response) else Response("", status=r) for r in responses] or [Response("ok")]
        self.gate = gate
        self.calls: list[tuple[float, dict, str]] = []
        self.answered = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.calls.append((time.monotonic(), dict(request.headers), request.get_data(as_text=True)))
            index = min(len(self.calls) - 1, len(self.responses) - 1)
        if self.gate is not None:
            self.gate.wait(GATE_TIMEOUT_S)
        with self.lock:
            self.answered += 1
        response = self.responses[index]
        return Response(response.get_data(), status=response.status_code, headers=dict(response.headers))

    @property
    def keys(self) -> list[str]:
        return [headers.get("Idempotency-Key") for _, headers, _ in self.calls]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def local(server, path: str) -> str:
    """The receiver's URL on 127.0.0.1 (the fixture's own url_for says ``localhost``)."""
    return f"http://127.0.0.1:{server.port}{path}"
