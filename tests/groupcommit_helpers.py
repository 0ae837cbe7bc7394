"""A test helper shared by the group-commit tests (unit and on the real cluster)."""

from __future__ import annotations

import contextlib
import time


@contextlib.contextmanager
def held(group, waiting: int):
    """Keep every request slot of ``group`` (a ``GroupCommit``) taken until ``waiting`` calls are
    queued, then free the slots and wake the next sender: the queued calls go out as batches."""
    with group._guard:
        saved = group._in_flight
        group._in_flight = group.max_in_flight
    try:
        yield
        deadline = time.monotonic() + 10
        while len(group._queue) < waiting:
            assert time.monotonic() < deadline, f"only {len(group._queue)} of {waiting} calls queued"
            time.sleep(0.002)
    finally:
        with group._guard:
            group._in_flight = saved
            group._wake_next_sender()
