"""The daemon's Prometheus metrics (issue 5, item 5), kept in their own ``CollectorRegistry``.

A dedicated registry rather than prometheus_client's global one, so that several daemons (or tests)
in one process do not collide. Exposed at ``/metrics`` by :mod:`watcher.http.operations`.

Metrics (names as exposed; counters get ``_total``, histograms ``_bucket``/``_sum``/``_count``):

* ``watcher_executions_total{watch,state}`` — watch records, by record ``state`` (``executed``,
  ``execution_not_needed``, ``throttled``, ``acknowledged``, ``failed``…).
* ``watcher_conditions_met_total{watch}`` — executions whose condition was met.
* ``watcher_actions_total{watch,action,status}`` — action results by ``status`` (``success``,
  ``failure``, ``simulated``, ``throttled``, ``condition_failed``…).
* ``watcher_delivery_latency_seconds{connector}`` — time of one delivery attempt.
* ``watcher_deliveries_total{connector,outcome}`` — delivery attempts by outcome (the caller's
  word: ``delivered``, ``retry``, ``dead``…).
* ``watcher_outbox_depth{state}`` — outbox entries by state (``pending``, ``dead``…).
* ``watcher_schedule_lag_seconds`` — how late runs started (:meth:`Scheduler.lag_samples`).
* ``watcher_watches{state}`` — loaded watches: ``active``, ``inactive``, ``invalid``.
* ``watcher_events_written_total`` / ``watcher_events_dropped_total`` — events stored in the event
  log, and dropped because the writer's queue was full (docs/events.md#writing).
* ``watcher_stream_subscribers{transport}`` — open event streams (``sse``, ``ws``, ``longpoll``).
* ``watcher_stream_buffered_events`` — events queued for subscribers, all together.
* ``watcher_stream_cutoffs_total{transport}`` — subscribers cut off because their buffer was full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, exposition,
                               generate_latest)

__all__ = ["CONTENT_TYPE", "Metrics"]

# The content type of what generate_latest() writes: the 0.0.4 text format. prometheus_client ≥ 0.23
# names it CONTENT_TYPE_PLAIN_0_0_4 (its CONTENT_TYPE_LATEST moved on to 1.0.0); older ones, LATEST.
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", CONTENT_TYPE_LATEST)

DELIVERY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
WATCH_STATES = ("active", "inactive", "invalid")


class Metrics:
    """The daemon's metrics; thread-safe (prometheus_client metrics are).

    Args:
        registry: where to register; default a new ``CollectorRegistry``.

    Attributes:
        registry: the registry to expose (``/metrics`` of :mod:`watcher.http.operations`).
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.executions = Counter("watcher_executions", "Watch executions by record state.",
                                  ["watch", "state"], registry=r)
        self.conditions_met = Counter("watcher_conditions_met", "Watch executions whose condition was met.",
                                      ["watch"], registry=r)
        self.actions = Counter("watcher_actions", "Action results by status.",
                               ["watch", "action", "status"], registry=r)
        self.delivery_latency = Histogram("watcher_delivery_latency_seconds", "Duration of one delivery attempt.",
                                          ["connector"], buckets=DELIVERY_BUCKETS_S, registry=r)
        self.deliveries = Counter("watcher_deliveries", "Delivery attempts by outcome.",
                                  ["connector", "outcome"], registry=r)
        self.outbox_depth = Gauge("watcher_outbox_depth", "Outbox entries by state.", ["state"], registry=r)
        self.schedule_lag = Histogram("watcher_schedule_lag_seconds",
                                      "Delay between a run's planned start and its actual start.",
                                      buckets=LAG_BUCKETS_S, registry=r)
        self.watches = Gauge("watcher_watches", "Loaded watches by state.", ["state"], registry=r)
        self.events_written = Counter("watcher_events_written", "Events stored in the event log.", registry=r)
        self.events_dropped = Counter("watcher_events_dropped",
                                      "Events dropped because the event writer's queue was full.", registry=r)
        self.stream_subscribers = Gauge("watcher_stream_subscribers", "Open event streams by transport.",
                                        ["transport"], registry=r)
        self.stream_buffered = Gauge("watcher_stream_buffered_events", "Events queued for stream subscribers.",
                                     registry=r)
        self.stream_cutoffs = Counter("watcher_stream_cutoffs", "Stream subscribers cut off on a full buffer.",
                                      ["transport"], registry=r)
        self._outbox_states: set[str] = set()
        for state in WATCH_STATES:
            self.watches.labels(state=state).set(0)

    def observe_record(self, record: Mapping[str, Any]) -> None:
        """Count one watch record (the shape of Watcher's ``watch_record``, see engine/execute.py).

        Reads ``watch_id``, ``state``, ``result.condition.met`` and each ``result.actions[]``'s
        ``id`` and ``status``; missing parts are skipped (a failed input has no condition result).
        """
        watch = str(record.get("watch_id", ""))
        self.executions.labels(watch=watch, state=str(record.get("state", "unknown"))).inc()
        result = record.get("result") or {}
        condition = result.get("condition") or {}
        if condition.get("met") is True:
            self.conditions_met.labels(watch=watch).inc()
        for action in result.get("actions") or ():
            self.actions.labels(watch=watch, action=str(action.get("id", "")),
                                status=str(action.get("status", "unknown"))).inc()

    def observe_delivery(self, connector: str, latency_s: float, outcome: str) -> None:
        """One delivery attempt to ``connector`` that took ``latency_s`` seconds and ended in ``outcome``."""
        self.delivery_latency.labels(connector=connector).observe(latency_s)
        self.deliveries.labels(connector=connector, outcome=outcome).inc()

    def set_outbox_depth(self, depth: Mapping[str, int]) -> None:
        """Outbox entries per state, e.g. ``{"pending": 3, "dead": 1}``; a state seen before and
        absent now is set to 0 rather than left at its old value."""
        for state in self._outbox_states - set(depth):
            self.outbox_depth.labels(state=state).set(0)
        for state, count in depth.items():
            self.outbox_depth.labels(state=state).set(count)
        self._outbox_states |= set(depth)

    def observe_lag(self, seconds: float) -> None:
        """One schedule-lag sample in seconds."""
        self.schedule_lag.observe(seconds)

    def set_watch_counts(self, active: int, inactive: int, invalid: int) -> None:
        """Loaded watches: scheduled, loaded but inactive, and files that failed to load."""
        for state, count in zip(WATCH_STATES, (active, inactive, invalid)):
            self.watches.labels(state=state).set(count)

    def render(self) -> bytes:
        """The registry in Prometheus text format (content type :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
