"""The pure parts of events: cursors, filters, the events of a record and of a delivery, the
writer's queue, and the hub's queues (over an in-memory log that keeps the order it was given)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from watcher.daemon.events import EventWriter, delivery_event, run_events
from watcher.daemon.metrics import Metrics
from watcher.es.events import (BEGINNING, Cursor, CursorError, EventFilter,
                               EventPage)
from watcher.http.access import StreamLimits
from watcher.http.errors import RequestProblem
from watcher.http.hub import HEARTBEAT, Hub
from watcher.model.events import Event, event_id

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_cursor_text_round_trips_and_bad_ones_are_refused():
    cursor = Cursor(41, "Ab_-9xYz")
    assert str(cursor) == "Ab_-9xYz.41" and Cursor.parse(str(cursor)) == cursor
    assert Cursor.parse("beginning") is BEGINNING and Cursor.parse("0") is BEGINNING
    for bad in ("", "41", "uuid.", "a.b", "a.-2", "x" * 70 + ".1"):
        with pytest.raises(CursorError, match="expected a cursor"):
            Cursor.parse(bad)


def test_filter_needs_every_non_empty_part():
    event = Event(id="e", kind="fired", watch_id="w", time=NOW, group="g")
    assert EventFilter().matches(event)
    assert EventFilter(watch_ids=("w",), kinds=("fired", "dead"), groups=("g",)).matches(event)
    assert not EventFilter(kinds=("dead",)).matches(event)
    assert not EventFilter(groups=("g",)).matches(Event(id="e", kind="fired", watch_id="w", time=NOW))
    assert EventFilter(watch_ids=("w",), kinds=("dead",)).query() == [{"terms": {"watch_id": ["w"]}},
                                                                      {"terms": {"kind": ["dead"]}}]


def _record(**result) -> dict:
    return {"_id": "r1", "watch_id": "w", "state": "executed",
            "trigger_event": {"schedule": {"scheduled_time": "2026-12-03T12:00:00.000Z"}},
            "result": {"execution_time": "2026-12-03T12:00:01.000Z", **result}}


def test_run_events_per_group_recovered_and_failures():
    grouped = run_events(_record(condition={"met": True}, rule={"alerts": 2, "groups": ["a", "b"], "recovered": ["c"]}))
    assert [(e.kind, e.group) for e in grouped] == [("fired", "a"), ("fired", "b"), ("recovered", "c")]
    assert grouped[0].id == event_id("fired", "r1", "a") and grouped[0].record_id == "r1"
    assert grouped[0].time == NOW + dt.timedelta(seconds=1) and grouped[0].scheduled_time == NOW
    assert [e.kind for e in run_events(_record(condition={"met": False}, rule={"alerts": 0, "groups": None,
                                                                              "recovered": ["x"]}))] == ["recovered"]
    assert [(e.kind, e.group) for e in run_events(_record(condition={"met": True}))] == [("fired", None)]
    assert run_events(_record(condition={"met": True}, rule={"alerts": 0, "groups": None})) == []
    failed = run_events({**_record(), "state": "failed", "exception": {"type": "painless_error", "reason": "boom"}})
    assert [(e.kind, e.details["reason"]) for e in failed] == [("execution_failed", "painless_error: boom")]


def test_delivery_events_name_the_attempt():
    fields = {"id": "d1", "connector": "hook", "attempts": 2, "watch_id": "w", "record_id": "r1", "action_id": "a1",
              "reason": "received [500] status code", "delay_s": 1.5}
    failed = delivery_event("retried", fields, NOW)
    assert (failed.kind, failed.id, failed.details["retry_in_s"]) == ("delivery_failed", event_id("delivery_failed", "d1", 2),
                                                                      1.5)
    assert delivery_event("dead", fields, NOW).details["reason"] == "received [500] status code"
    assert "reason" not in delivery_event("delivered", fields, NOW).details
    assert delivery_event("enqueued", fields, NOW) is None and delivery_event("depth", {}, NOW) is None


def test_writer_drops_what_does_not_fit_and_counts_it():
    metrics = Metrics()
    writer = EventWriter(metrics, capacity=2)
    writer.emit([Event(id=f"e{n}", kind="fired", watch_id="w", time=NOW) for n in range(3)])
    assert metrics.registry.get_sample_value("watcher_events_dropped_total") == 1


# --- the hub over an in-memory log ------------------------------------------------------------------------

class MemoryLog:
    """Events in the order appended; ``read`` as EventLog.read (cursor = position)."""

    def __init__(self):
        self.events: list[Event] = []

    def append(self, count: int, group: str = "g") -> None:
        for _ in range(count):
            n = len(self.events)
            self.events.append(Event(id=f"e{n}", kind="fired", watch_id="w", time=NOW, group=group,
                                     cursor=str(Cursor(n, "log"))))

    def head(self) -> Cursor:
        return Cursor(len(self.events) - 1, "log")

    def read(self, after: Cursor, where: EventFilter = EventFilter(), *, limit: int = 100) -> EventPage:
        found = [e for e in self.events[after.seq_no + 1:] if where.matches(e)][:limit]
        end = Cursor.parse(found[-1].cursor) if len(found) >= limit else self.head()
        return EventPage(found, end)


async def _drain(subscriber) -> list[str]:
    out = []
    while not subscriber.queue.empty():
        item = subscriber.queue.get_nowait()
        if item is not HEARTBEAT:
            out.append(item.event.id)
    return out


async def _settle(hub: Hub, log: MemoryLog) -> None:
    for _ in range(200):
        if hub.position is not None and hub.position.seq_no == len(log.events) - 1:
            return
        hub.notify_threadsafe()
        await asyncio.sleep(0.01)
    raise AssertionError("the hub did not reach the end of the log")


def test_hub_cuts_off_a_full_subscriber_and_catches_up_without_gap_or_repeat():
    async def scenario():
        log, metrics = MemoryLog(), Metrics()
        log.append(3)
        hub = Hub(lambda: log, StreamLimits(buffer_events=4, heartbeat_s=60), metrics, ring_size=5)
        try:
            live = await hub.subscribe(EventFilter(), None, "sse", "t")
            log.append(5)
            await _settle(hub, log)
            assert live.cut and await _drain(live) == ["e3", "e4", "e5", "e6"] and str(live.resume) == "log.6"
            assert metrics.registry.get_sample_value("watcher_stream_cutoffs_total", {"transport": "sse"}) == 1
            # from an old cursor: the log for what the ring lost, then the ring, then live
            late = await hub.subscribe(EventFilter(), Cursor(0, "log"), "ws", "t")
            got = []
            while len(got) < 7:
                got.extend(await _drain(late))
                await asyncio.sleep(0.01)
            log.append(2)
            await _settle(hub, log)
            got.extend(await _drain(late))
            assert got == [f"e{n}" for n in range(1, 10)]
            with pytest.raises(RequestProblem) as stale:
                await hub.subscribe(EventFilter(), Cursor(1, "other"), "sse", "t")
            assert stale.value.status == 410
        finally:
            hub.close()

    asyncio.run(scenario())


def test_hub_limits_answer_503_and_429():
    async def scenario():
        log = MemoryLog()
        hub = Hub(lambda: log, StreamLimits(max_subscribers=2, max_subscribers_per_token=1), Metrics())
        try:
            await hub.subscribe(EventFilter(), None, "sse", "a")
            with pytest.raises(RequestProblem) as per_token:
                hub.admit("a")
            assert per_token.value.status == 429
            await hub.subscribe(EventFilter(), None, "sse", "b")
            with pytest.raises(RequestProblem) as total:
                hub.admit("c")
            assert total.value.status == 503
        finally:
            hub.close()

    asyncio.run(scenario())


def test_a_cut_off_sse_client_that_never_reads_is_closed_hard_and_forgotten():
    from watcher.http.events import EventStream  # deferred: the route module, only this test needs it

    async def scenario():
        log, metrics = MemoryLog(), Metrics()
        hub = Hub(lambda: log, StreamLimits(buffer_events=4, heartbeat_s=60), metrics, flush_s=0.05)
        never = asyncio.Event()
        sent: list[dict] = []

        async def stalled_send(message):  # the client stopped reading: the first body write never returns
            sent.append(message)
            if message["type"] == "http.response.body":
                await never.wait()

        async def receive():
            await never.wait()

        try:
            subscriber = await hub.subscribe(EventFilter(), None, "sse", "t")
            response = asyncio.create_task(EventStream(hub, subscriber)({"type": "http"}, receive, stalled_send))
            log.append(10)
            await _settle(hub, log)
            assert subscriber.cut
            await asyncio.wait_for(response, 5)  # the hard close ends the response
            assert subscriber.hard_closed and hub.buffered() == 0
            assert metrics.registry.get_sample_value("watcher_stream_subscribers", {"transport": "sse"}) == 0
        finally:
            hub.close()

    asyncio.run(scenario())
