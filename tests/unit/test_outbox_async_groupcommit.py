"""Unit tests of AsyncGroupCommit (watcher.es.groupcommit), the group commit the outbox worker's
claims and results go through: a lone write leaves at once, concurrent ones share a request, each
caller gets its own answer or error.

The requests are held on a gate the test opens once the expected ones are out (never a sleep), and
the order of requests that are out at the same time is not asserted (their threads race)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from watcher.es.groupcommit import AsyncGroupCommit, Pending


class Recorder:
    """send_batch that records each batch's payloads; answers payload × 10, fails payloads in
    ``fail_items`` alone, and the whole request when a payload is in ``fail_requests``."""

    def __init__(self, fail_items=(), fail_requests=(), gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.fail_items, self.fail_requests, self.gate = set(fail_items), set(fail_requests), gate

    def __call__(self, batch: list[Pending]) -> None:
        payloads = [item.payload for item in batch]
        self.batches.append(payloads)
        if self.gate is not None:
            assert self.gate.wait(30)  # opened by the test; the bound only matters on failure
        if self.fail_requests & set(payloads):
            raise ConnectionError("cluster unreachable")
        for item in batch:
            if item.payload in self.fail_items:
                item.error = ValueError(f"item {item.payload} refused")
            else:
                item.result = item.payload * 10


async def out(send: Recorder, count: int) -> None:
    """Wait until ``count`` requests are out (in ``send``, held by its gate)."""
    deadline = time.monotonic() + 30
    while len(send.batches) < count:
        assert time.monotonic() < deadline, send.batches
        await asyncio.sleep(0.001)


def test_a_lone_call_is_sent_alone_at_once():
    send = Recorder()
    commit = AsyncGroupCommit(send)
    assert asyncio.run(commit.submit(Pending(None, 4))) == 40
    assert send.batches == [[4]]
    assert commit.stats == {"requests": 1, "items": 1, "largest_batch": 1}


def test_calls_arriving_while_requests_are_out_share_the_next_request():
    gate = threading.Event()
    send = Recorder(gate=gate)
    commit = AsyncGroupCommit(send, max_in_flight=2, max_batch=3)

    async def run():
        calls = [asyncio.ensure_future(commit.submit(Pending(None, n))) for n in range(1, 8)]
        await out(send, 2)  # 1 and 2 are out (one request each); 3..7 wait
        assert sorted(send.batches) == [[1], [2]]
        gate.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(run()) == [10, 20, 30, 40, 50, 60, 70]
    # oldest first, at most max_batch each; two requests are out at a time, so their threads may
    # record them in either order
    assert sorted(send.batches) == [[1], [2], [3, 4, 5], [6, 7]]


def test_only_items_with_the_same_key_share_a_request():
    gate = threading.Event()
    send = Recorder(gate=gate)
    commit = AsyncGroupCommit(send, max_in_flight=1)

    async def run():
        calls = [asyncio.ensure_future(commit.submit(Pending(key, n)))
                 for key, n in [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)]]
        await out(send, 1)
        gate.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(run()) == [10, 20, 30, 40, 50]
    assert send.batches == [[1], [2, 4], [3, 5]]


def test_an_item_error_reaches_its_caller_only():
    gate = threading.Event()
    send = Recorder(fail_items={3}, gate=gate)
    commit = AsyncGroupCommit(send, max_in_flight=1)

    async def run():
        calls = [asyncio.ensure_future(commit.submit(Pending(None, n))) for n in range(1, 5)]
        await out(send, 1)
        gate.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    first, second, third, fourth = asyncio.run(run())
    assert send.batches == [[1], [2, 3, 4]]
    assert (first, second, fourth) == (10, 20, 40)
    assert isinstance(third, ValueError) and str(third) == "item 3 refused"


def test_a_failed_request_reaches_every_caller_in_it_and_the_next_request_still_goes():
    gate = threading.Event()
    send = Recorder(fail_requests={2}, gate=gate)
    commit = AsyncGroupCommit(send, max_in_flight=1, max_batch=2)

    async def run():
        calls = [asyncio.ensure_future(commit.submit(Pending(None, n))) for n in range(1, 6)]
        await out(send, 1)
        gate.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    assert send.batches == [[1], [2, 3], [4, 5]]
    assert results[0] == 10 and results[3:] == [40, 50]
    assert all(isinstance(error, ConnectionError) for error in results[1:3])


def test_a_cancelled_caller_does_not_lose_the_answers_of_the_others():
    gate = threading.Event()
    send = Recorder(gate=gate)
    commit = AsyncGroupCommit(send, max_in_flight=1)

    async def run():
        calls = [asyncio.ensure_future(commit.submit(Pending(None, n))) for n in range(1, 4)]
        await out(send, 1)
        calls[1].cancel()  # its item is queued (or out): the request still carries it
        gate.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    first, second, third = asyncio.run(run())
    assert (first, third) == (10, 30)
    assert isinstance(second, asyncio.CancelledError)
    assert send.batches == [[1], [2, 3]]


def test_limits_below_one_are_refused():
    with pytest.raises(ValueError):
        AsyncGroupCommit(Recorder(), max_batch=0)
    with pytest.raises(ValueError):
        AsyncGroupCommit(Recorder(), max_in_flight=0)
