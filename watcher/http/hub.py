"""The event hub of one daemon's HTTP server: one tailer reading the event log, a ring of recent
events, and the subscribers of the streams, each with a bounded queue (docs/events.md#backpressure).

Everything here runs on the server's event loop (single-threaded), so "check the ring, then join
the live feed" happens without an ``await`` in between: a subscriber catching up never misses nor
repeats an event.

* The **tailer** reads the log after its position (:meth:`EventLog.read`, gap-free), woken at once
  when this daemon's writer stored events (:meth:`Hub.notify_threadsafe`) and every
  :data:`POLL_S` seconds for the other daemons' events.
* **Live** subscribers are fed with ``put_nowait``: the tailer never waits for anyone. A subscriber
  whose queue is full is **cut off**: it gets nothing more; what is queued is flushed to it, then a
  last message with its resume cursor; a client that does not read within :data:`FLUSH_S` seconds
  is disconnected hard (its task is cancelled), so it cannot hold memory.
* A subscriber starting from an older cursor **catches up** in its own task — from the ring when
  it still holds the events after the cursor, else from the log — awaiting its own queue (which
  slows only itself), then joins the live feed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from watcher.es.events import Cursor, EventFilter, EventLog, StaleCursorError
from watcher.http.access import StreamLimits
from watcher.http.errors import RequestProblem
from watcher.model.events import Event
from watcher.support.datemath import format_iso_millis

__all__ = ["FLUSH_S", "GAP", "HEARTBEAT", "Hub", "Item", "POLL_S", "Subscriber", "event_json"]

LOG = logging.getLogger("watcher.http")
POLL_S = 0.5
FLUSH_S = 30.0
RING_SIZE = 10000
PAGE_SIZE = 500
READY_TIMEOUT_S = 10.0
HEARTBEAT = object()  # queue marker: nothing happened for heartbeat_s
GAP = object()  # queue marker: retention deleted events after the subscriber's cursor


def event_json(event: Event) -> dict[str, Any]:
    """The JSON of an event as every way of waiting sends it (docs/events.md#fields)."""
    return {"cursor": event.cursor, "id": event.id, "kind": event.kind, "watch_id": event.watch_id,
            "group": event.group, "time": format_iso_millis(event.time), "record_id": event.record_id,
            "action_id": event.action_id, "delivery_id": event.delivery_id, "connector": event.connector,
            "scheduled_time": format_iso_millis(event.scheduled_time) if event.scheduled_time else None,
            "actor": event.actor, "message": event.message, "details": event.details}


@dataclasses.dataclass
class Item:
    """One event as the hub holds it: its ``_seq_no``, the event, its JSON text and its SSE frame
    (made once, sent to every subscriber)."""

    seq: int
    event: Event
    text: str
    sse: bytes

    @classmethod
    def of(cls, event: Event) -> Item:
        """The item of an event read from the log (``event.cursor`` set)."""
        text = json.dumps(event_json(event), separators=(",", ":"))
        frame = f"id: {event.cursor}\nevent: {event.kind}\ndata: {text}\n\n".encode()
        return cls(Cursor.parse(event.cursor).seq_no, event, text, frame)


class Subscriber:
    """One open stream: its filter, a bounded queue of :class:`Item` (and :data:`HEARTBEAT` /
    :data:`GAP` markers), and where it resumes (``resume``: the cursor of the last event queued).

    Attributes:
        cut: True once cut off (no more events; flush, then the cut-off message).
        ending: True once the server is stopping (its task is cancelled to end the stream cleanly).
        task: the task sending to the client (cancelled on a hard close and at shutdown).
    """

    def __init__(self, where: EventFilter, transport: str, token: str, capacity: int, start: Cursor):
        self.where = where
        self.transport = transport
        self.token = token
        self.queue: asyncio.Queue = asyncio.Queue(capacity)
        self.start = start
        self.resume = start
        self.skip_through = start.seq_no
        self.cut = False
        self.hard_closed = False
        self.ending = False
        self.task: asyncio.Task | None = None
        self.follower: asyncio.Task | None = None

    async def put(self, item: Item) -> None:
        """Queue ``item``, waiting for room (catch-up: only this subscriber waits)."""
        await self.queue.put(item)
        self.resume = Cursor.parse(item.event.cursor)

    def offer(self, item: Item) -> bool:
        """Queue ``item`` without waiting; False when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        self.resume = Cursor.parse(item.event.cursor)
        return True


class Hub:
    """The event hub (module docstring).

    Args:
        source: ``() -> EventLog | None`` (None while the daemon has not reached the cluster yet).
        limits: the stream limits (:class:`~watcher.http.access.StreamLimits`).
        metrics: the daemon's :class:`~watcher.daemon.metrics.Metrics`.
        flush_s: seconds a cut-off subscriber gets to read what was queued before a hard close.
    """

    def __init__(self, source: Callable[[], EventLog | None], limits: StreamLimits, metrics, *,
                 flush_s: float = FLUSH_S, ring_size: int = RING_SIZE):
        self._source = source
        self.limits = limits
        self.metrics = metrics
        self.flush_s = flush_s
        self.position: Cursor | None = None
        self._ring: collections.deque[Item] = collections.deque()
        self._ring_size = ring_size
        self._floor = -1  # the ring holds every event with floor < seq <= position
        self._live: set[Subscriber] = set()
        self._open: set[Subscriber] = set()
        self._per_token: collections.Counter[str] = collections.Counter()
        self._waiters = 0
        self._advanced = asyncio.Event()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._tasks = [self._loop.create_task(self._tail()), self._loop.create_task(self._heartbeats())]
        metrics.stream_buffered.set_function(self.buffered)

    # -- admission -----------------------------------------------------------------------------------

    def admit(self, token: str) -> None:
        """Check the limits for one more stream of ``token``.

        Raises:
            RequestProblem: 503 when the server is stopping or ``max_subscribers`` are open, 429 when
                ``token`` has ``max_subscribers_per_token`` open (all with ``Retry-After``).
        """
        if self.closed:
            raise RequestProblem(503, "shutting_down", "the server is stopping; resume from your last cursor "
                                 "once it is back", {"Retry-After": "5"})
        if len(self._open) + self._waiters >= self.limits.max_subscribers:
            raise RequestProblem(503, "too_many_subscribers", f"the server holds its maximum of "
                                 f"{self.limits.max_subscribers} event streams; try again later", {"Retry-After": "5"})
        if self._per_token[token] >= self.limits.max_subscribers_per_token:
            raise RequestProblem(429, "too_many_subscribers", f"this token holds its maximum of "
                                 f"{self.limits.max_subscribers_per_token} event streams; close one first",
                                 {"Retry-After": "5"})

    async def ready(self) -> Cursor:
        """The tailer's position, once it knows the log.

        Raises:
            RequestProblem: 503 when the event log cannot be read yet (the daemon waits for the cluster).
        """
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise RequestProblem(503, "event_log_unavailable", "the event log cannot be read yet (the cluster is "
                                 "not reachable); try again later", {"Retry-After": "5"}) from None
        return self.position

    # -- subscribers ---------------------------------------------------------------------------------

    async def subscribe(self, where: EventFilter, after: Cursor | None, transport: str, token: str) -> Subscriber:
        """A new subscriber from ``after`` (None: the end of the log). Call :meth:`admit` first and
        :meth:`unsubscribe` at the end.

        Raises:
            RequestProblem: 503 as :meth:`ready`; 410 when ``after`` belongs to a log created again.
        """
        head = await self.ready()
        self._check(after, head)
        subscriber = Subscriber(where, transport, token, self.limits.buffer_events, after or head)
        self._open.add(subscriber)
        self._per_token[token] += 1
        self.metrics.stream_subscribers.labels(transport=transport).inc()
        if after is None:
            self._live.add(subscriber)
        else:
            subscriber.follower = self._loop.create_task(self._catch_up(subscriber, after))
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (idempotent)."""
        if subscriber not in self._open:
            return
        self._open.discard(subscriber)
        self._live.discard(subscriber)
        self._per_token[subscriber.token] -= 1
        self.metrics.stream_subscribers.labels(transport=subscriber.transport).dec()
        if subscriber.follower is not None:
            subscriber.follower.cancel()

    def buffered(self) -> int:
        """Events queued for all subscribers together (read by the metrics scrape, on another thread:
        a set changing while it is copied is copied again)."""
        while True:
            try:
                subscribers = list(self._open)
            except RuntimeError:  # "set changed size during iteration"
                continue
            return sum(subscriber.queue.qsize() for subscriber in subscribers)

    @staticmethod
    def _check(after: Cursor | None, head: Cursor) -> None:
        if after is not None and after.index_uuid not in (None, head.index_uuid):
            raise RequestProblem(410, "stale_cursor_exception", f"the cursor {after} belongs to an event log that no "
                                 "longer exists (it was created again); start again from 'beginning' or from the end")

    async def _catch_up(self, subscriber: Subscriber, after: Cursor) -> None:
        position = after.seq_no
        while True:
            head = self.position
            if position >= self._floor:  # the ring holds the rest: copy it and go live, no await in between
                items = [item for item in self._ring if item.seq > position and subscriber.where.matches(item.event)]
                if len(items) <= subscriber.queue.maxsize - subscriber.queue.qsize():
                    for item in items:
                        subscriber.offer(item)
                    subscriber.skip_through = max(position, head.seq_no)
                    self._live.add(subscriber)
                    return
                for item in items:
                    await subscriber.put(item)
                position = max(position, head.seq_no)
                continue
            page = await asyncio.to_thread(self._source().read, Cursor(position, head.index_uuid), subscriber.where,
                                           limit=PAGE_SIZE)
            if page.gap and position == after.seq_no:
                await subscriber.queue.put(GAP)
            for event in page.events:
                await subscriber.put(Item.of(event))
            position = page.cursor.seq_no

    def _cut(self, subscriber: Subscriber) -> None:
        self._live.discard(subscriber)
        subscriber.cut = True
        self.metrics.stream_cutoffs.labels(transport=subscriber.transport).inc()
        LOG.warning("event stream (%s, token %s) cut off: its buffer of %d events is full; it resumes from %s",
                    subscriber.transport, subscriber.token, subscriber.queue.maxsize, subscriber.resume)
        self._loop.call_later(self.flush_s, self._hard_close, subscriber)

    def _hard_close(self, subscriber: Subscriber) -> None:
        if subscriber in self._open and subscriber.task is not None and not subscriber.task.done():
            subscriber.hard_closed = True
            subscriber.task.cancel()

    # -- long-poll -----------------------------------------------------------------------------------

    async def page(self, where: EventFilter, after: Cursor | None, limit: int, wait_s: float,
                   token: str) -> tuple[list[Item], Cursor, bool]:
        """Events after ``after`` (None: the end of the log), at once if there are some, else the first
        that arrive within ``wait_s`` seconds.

        Returns:
            ``(items, cursor, gap)``: ``cursor`` is the last item's, or ``after`` (the end of the log
            for None) when there is none.

        Raises:
            RequestProblem: 503 as :meth:`ready`; 410 as :meth:`subscribe`.
        """
        head = await self.ready()
        self._check(after, head)
        start = after or head
        deadline = self._loop.time() + wait_s
        self._waiters += 1
        self._per_token[token] += 1
        self.metrics.stream_subscribers.labels(transport="longpoll").inc()
        try:
            while True:
                items, gap = await self._read(where, start, limit)
                remaining = deadline - self._loop.time()
                if items or gap or remaining <= 0 or self.closed:
                    cursor = Cursor.parse(items[-1].event.cursor) if items else start
                    return items, cursor, gap
                advanced = self._advanced
                try:
                    await asyncio.wait_for(advanced.wait(), remaining)
                except TimeoutError:
                    pass
        finally:
            self._waiters -= 1
            self._per_token[token] -= 1
            self.metrics.stream_subscribers.labels(transport="longpoll").dec()

    async def _read(self, where: EventFilter, start: Cursor, limit: int) -> tuple[list[Item], bool]:
        if start.seq_no >= self._floor:
            return [item for item in self._ring if item.seq > start.seq_no and where.matches(item.event)][:limit], False
        page = await asyncio.to_thread(self._source().read, Cursor(start.seq_no, self.position.index_uuid), where,
                                       limit=limit)
        return [Item.of(event) for event in page.events], page.gap

    # -- the tailer ----------------------------------------------------------------------------------

    def notify_threadsafe(self) -> None:
        """Wake the tailer now (from any thread: the event writer calls it after storing events)."""
        self._loop.call_soon_threadsafe(self._wake.set)

    async def _tail(self) -> None:
        failures = 0
        while True:
            log = self._source()
            try:
                if log is None:
                    raise LookupError("the daemon has not reached the cluster yet")
                if self.position is None:
                    self.position = await asyncio.to_thread(log.head)
                    self._floor = self.position.seq_no
                    self._ready.set()
                self._wake.clear()  # before the read: a wake-up during it makes the next read start at once
                page = await asyncio.to_thread(log.read, self.position, limit=PAGE_SIZE)
            except StaleCursorError:
                LOG.warning("the event log was created again: every event stream is cut off and resumes from there")
                self._restart()
                continue
            except Exception as error:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    LOG.warning("event hub cannot read the event log (%s: %s); retrying", type(error).__name__, error)
                await asyncio.sleep(POLL_S)
                continue
            failures = 0
            self._publish(page.events, page.cursor)
            if len(page.events) >= PAGE_SIZE:
                await asyncio.sleep(0)  # let the senders run between pages
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except TimeoutError:
                pass

    def _restart(self) -> None:
        for subscriber in list(self._live):
            self._cut(subscriber)
        self.position = None
        self._ring.clear()

    def _publish(self, events: list[Event], cursor: Cursor) -> None:
        for event in events:
            item = Item.of(event)
            self._ring.append(item)
            if len(self._ring) > self._ring_size:
                self._floor = self._ring.popleft().seq
            for subscriber in list(self._live):
                if item.seq > subscriber.skip_through and subscriber.where.matches(event) and not subscriber.offer(item):
                    self._cut(subscriber)
        if not self._ring:
            self._floor = cursor.seq_no  # nothing held: the ring is complete from here
        self.position = cursor
        if events:
            self._advanced.set()
            self._advanced = asyncio.Event()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.limits.heartbeat_s)
            for subscriber in list(self._open):
                if subscriber.queue.empty() and not subscriber.cut:
                    subscriber.queue.put_nowait(HEARTBEAT)

    def close(self) -> None:
        """At shutdown (docs/events.md#shutdown): stop the tailer and the heartbeats, refuse new streams
        (503), end every open stream cleanly and answer every waiting long-poll now."""
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for subscriber in list(self._open):
            subscriber.ending = True
            if subscriber.task is not None and not subscriber.task.done():
                subscriber.task.cancel()
        self._advanced.set()

    def close_threadsafe(self) -> None:
        """:meth:`close` from another thread (the one stopping the HTTP server); nothing once the loop is gone."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self.close)
