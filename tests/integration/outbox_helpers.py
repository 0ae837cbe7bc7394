"""Helpers for tests of the durable outbox against the real Elasticsearch: a real HTTP receiver on
127.0.0.1 that answers from a script (and can hold requests on a gate the test opens), waits on
conditions (never on elapsed time), and outboxes on a per-test index prefix stopped at teardown."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import pytest
from werkzeug import Request, Response

from watcher.delivery.outbox import Outbox
from watcher.delivery.retry import RetryPolicy

FAST = RetryPolicy(base_s=0.05, factor=2.0, max_delay_s=0.2, max_attempts=5)


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


@pytest.fixture
def prefix(es):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-outbox")


@pytest.fixture
def make_outbox(es, prefix):
    """``make_outbox(**kwargs)`` → an Outbox on the test's prefix; every one is stopped afterwards."""
    made: list[Outbox] = []

    def make(**kwargs) -> Outbox:
        kwargs.setdefault("policy", FAST)
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
