"""Fixtures several integration modules share: a self-signed certificate for 127.0.0.1, and outboxes on a
fresh index prefix (stopped at teardown). Imported by name (``from outbox_helpers import …``), as
daemon_helpers.py is: a tests/integration/conftest.py would shadow tests/conftest.py, which modules import
as ``conftest`` for SHARED."""

from __future__ import annotations

import contextlib
import subprocess
import uuid

import pytest

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
