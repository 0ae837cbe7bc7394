"""The daemon's events (docs/events.md#kinds): what a run and a delivery produce, and the background
writer that stores them in the event log without ever holding up a tick or a delivery.

* :func:`run_events` — ``fired`` (per firing group of a rule), ``recovered``, ``execution_failed``
  from a watch record;
* :func:`delivery_event` — ``delivered``, ``delivery_failed``, ``dead`` from the outbox's
  ``on_event`` fields;
* :class:`EventWriter` — a bounded queue and one thread writing batches with one bulk request,
  retrying with backoff while the cluster is away; when the queue is full an event is dropped,
  counted (``watcher_events_dropped_total``) and logged at ERROR (docs/events.md#writing).

Ids are deterministic (:func:`watcher.model.events.event_id` over the record id and group, or the
delivery id and attempt), so a tick run again after a crash stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from watcher.es.events import EventLog, EventNotStored
from watcher.model.events import Event, event_id
from watcher.support.datemath import parse_instant

__all__ = ["EventWriter", "delivery_event", "failure_reason", "run_events"]

LOG = logging.getLogger("watcher.events")
ACTOR = f"daemon:{socket.gethostname()}"
DELIVERY_KINDS = {"delivered": "delivered", "retried": "delivery_failed", "dead": "dead"}


def failure_reason(record: dict) -> str:
    """Why ``record`` (state ``failed``) failed: its exception, else its input's error, else its last
    message; one line."""
    result = record.get("result") or {}
    for error in (record.get("exception"), (result.get("input") or {}).get("error")):
        if isinstance(error, dict) and (error.get("reason") or error.get("type")):
            return f"{error.get('type')}: {error.get('reason')}"
    messages = record.get("messages") or []
    return str(messages[-1]) if messages else "failed"


def run_events(record: dict) -> list[Event]:
    """The events of one watch record (the shape :func:`watcher.engine.execute.execute_watch` writes,
    with ``_id``).

    Returns:
        ``execution_failed`` for a ``failed`` record; else ``fired`` when the condition was met — a
        rule: one per group of ``result.rule.groups`` (``group`` set), or one when it is not grouped
        and alerted; a watch: one — and one ``recovered`` per group of ``result.rule.recovered``.
    """
    record_id, watch_id = record["_id"], record["watch_id"]
    result = record.get("result") or {}
    scheduled_text = ((record.get("trigger_event") or {}).get("schedule") or {}).get("scheduled_time")
    scheduled = parse_instant(scheduled_text) if scheduled_text else None
    when = parse_instant(result["execution_time"]) if result.get("execution_time") else scheduled
    common = {"watch_id": watch_id, "time": when, "record_id": record_id, "scheduled_time": scheduled, "actor": ACTOR}
    if record.get("state") == "failed":
        reason = failure_reason(record)
        return [Event(id=event_id("execution_failed", record_id), kind="execution_failed", **common,
                      message=f"watch {watch_id} failed: {reason}"[:500], details={"reason": reason[:2000]})]
    events = []
    rule = result.get("rule")
    if (result.get("condition") or {}).get("met"):
        if rule is None:
            groups: list = [None]
        elif rule.get("groups") is not None:
            groups = list(rule["groups"])
        else:
            groups = [None] if rule.get("alerts") else []
        for group in groups:
            events.append(Event(id=event_id("fired", record_id, group), kind="fired", group=_text(group), **common,
                                message=f"watch {watch_id} fired" + (f" for {group}" if group is not None else ""),
                                details={"state": record.get("state")}))
    for group in (rule or {}).get("recovered") or ():
        events.append(Event(id=event_id("recovered", record_id, group), kind="recovered", group=_text(group), **common,
                            message=f"watch {watch_id} recovered" + (f" for {group}" if group is not None else "")))
    return events


def _text(group: Any) -> str | None:
    return None if group is None else str(group)


def delivery_event(kind: str, fields: dict, now: dt.datetime) -> Event | None:
    """The event of one outbox ``on_event`` call (:class:`watcher.delivery.outbox.Outbox`), or None
    for the kinds that are not events (``enqueued``, ``depth``).

    Args:
        kind: ``delivered``, ``retried`` (→ ``delivery_failed``) or ``dead``.
        fields: ``id``, ``connector``, ``attempts``, ``watch_id``, ``record_id``, ``action_id``, and
            ``reason`` for failures (the receiver's status or the transport error; no payload).
        now: aware UTC, the event's time.
    """
    ours = DELIVERY_KINDS.get(kind)
    if ours is None or not fields.get("watch_id"):
        return None
    delivery, attempts = str(fields.get("id")), fields.get("attempts")
    details: dict[str, Any] = {"attempts": attempts}
    message = f"delivery {delivery} to {fields.get('connector')}: {ours}"
    if kind != "delivered":
        details["reason"] = str(fields.get("reason"))[:2000]
        message += f" after {attempts} attempt(s)"
    if kind == "retried":
        details["retry_in_s"] = fields.get("delay_s")
    return Event(id=event_id(ours, delivery, attempts), kind=ours, watch_id=str(fields["watch_id"]), time=now,
                 record_id=fields.get("record_id"), action_id=fields.get("action_id"), delivery_id=delivery,
                 connector=fields.get("connector"), actor=ACTOR, message=message, details=details)


class EventWriter:
    """Stores events in the log from one background thread (module docstring).

    Args:
        metrics: the daemon's :class:`~watcher.daemon.metrics.Metrics` (``events_written``, ``events_dropped``).
        capacity: events queued at most; one more is dropped.
        batch: events per bulk request at most.
        retention: events older than this are deleted (:meth:`EventLog.expire`) every
            ``retention_every_s`` seconds; None keeps them forever.

    Listeners (:meth:`add_listener`) are called on the writer thread after each stored batch;
    they must only hand over (e.g. ``loop.call_soon_threadsafe``), never block.
    """

    def __init__(self, metrics, *, capacity: int = 10000, batch: int = 500, retention: dt.timedelta | None = None,
                 retention_every_s: float = 600.0):
        self.metrics = metrics
        self.log: EventLog | None = None
        self.batch = batch
        self.retention = retention
        self.retention_every_s = retention_every_s
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=capacity)
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each batch is stored (thread: the writer's)."""
        self._listeners.append(callback)

    def start(self, log: EventLog) -> None:
        """Write to ``log`` (its index must exist) from now on."""
        self.log = log
        self._thread = threading.Thread(target=self._run, name="watcher-events", daemon=True)
        self._thread.start()

    def emit(self, events: list[Event]) -> None:
        """Queue ``events`` without blocking; those that do not fit are dropped (counted, ERROR log)."""
        for event in events:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.metrics.events_dropped.inc()
                LOG.error("event queue full (%d): event %s (%s of %s) dropped; the cluster is not taking the event "
                          "log's writes", self._queue.maxsize, event.id, event.kind, event.watch_id)

    def stop(self, grace_s: float = 5.0) -> None:
        """Write what is queued (within ``grace_s`` seconds), then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=grace_s)
            self._thread = None

    def _run(self) -> None:
        retention_due = 0.0
        while True:
            batch = self._take()
            if batch:
                self._write(batch)
            elif self._stop.is_set():
                return
            if self.retention is not None and not self._stop.is_set():
                now = time.monotonic()
                if now >= retention_due:
                    retention_due = now + self.retention_every_s
                    try:
                        self.log.expire(self.retention)
                    except Exception as error:
                        LOG.warning("event retention failed (retried in %.0fs): %s", self.retention_every_s, error)

    def _take(self) -> list[Event]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Event]) -> None:
        delay = 0.2
        while True:
            try:
                created = self.log.append(batch)
            except EventNotStored as error:  # refused for good: retrying would stall every later event
                LOG.error("event log refused a batch of %d events: %s", len(batch), error)
                self.metrics.events_dropped.inc(len(batch))
                return
            except Exception as error:
                if self._stop.is_set():
                    LOG.error("event log unreachable at shutdown: %d events not stored (%s)", len(batch), error)
                    self.metrics.events_dropped.inc(len(batch))
                    return
                LOG.warning("could not store %d events (%s: %s); retrying in %.1fs", len(batch),
                            type(error).__name__, error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.metrics.events_written.inc(created)
            for listener in self._listeners:
                listener()
            return
