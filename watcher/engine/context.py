"""The execution context of one run of one watch, and the services a run may use.

``ctx`` as templates and scripts see it has Watcher's names and shapes (docs/semantics.md#the-ctx-model):
``ctx.watch_id``, ``ctx.id``, ``ctx.execution_time``, ``ctx.trigger.triggered_time``,
``ctx.trigger.scheduled_time``, ``ctx.metadata``, ``ctx.payload``, ``ctx.vars``. Times are aware UTC
``datetime`` objects in the model (Mustache prints them the way Watcher 8.x does; ``toJson`` and
records use ISO-8601 with milliseconds).
"""

from __future__ import annotations

import dataclasses
import functools
import datetime as dt
import uuid
from typing import Any, Callable

from watcher.engine.run_warnings import Warnings
from watcher.engine.windows import uses_calendar_window, window_of
from watcher.model.watch import Watch


def utcnow() -> dt.datetime:
    """The current time, aware UTC (microsecond precision)."""
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass
class Services:
    """What a run may talk to. Anything not given is unavailable (a type that needs it fails clearly).

    Attributes:
        es: a synchronous ``elasticsearch.Elasticsearch`` client (search inputs, index actions,
            Painless through the cluster).
        http: an ``httpx.Client`` for http inputs (actions never send directly: see delivery).
        connectors: the loaded connectors by name (``watcher.definitions.connectors``).
        clock: returns "now" (aware UTC); tests pin it. Date math ``now`` uses it.
        history_prefix: index prefix for state and history (``watcher`` → ``watcher-history``).
    """

    es: Any = None
    http: Any = None
    connectors: dict = dataclasses.field(default_factory=dict)
    clock: Callable[[], dt.datetime] = utcnow
    history_prefix: str = "watcher"


@dataclasses.dataclass
class Run:
    """One execution of ``watch``. ``payload`` and ``vars`` change as the run proceeds.

    Attributes:
        watch: the watch being executed.
        execution_time: when this execution started (aware UTC).
        triggered_time: when the scheduler fired (aware UTC).
        scheduled_time: when it was due (aware UTC).
        services: clients and settings (see :class:`Services`).
        record_id: ``<watch_id>_<uuid>-<ISO execution time>``, Watcher's record id form.
        rule_state: a rule's state across runs (type state, firing keys, realert, aggregation;
            :mod:`watcher.engine.alerting`); the caller loads it before and persists it after.
        silences: ``{group key or "*": ISO until}`` set by ``watcher silence`` (read only).
        on_time: set for a **catch-up** run (aware UTC): when the run would have started had it run
            on time — its scheduled time plus the watch's start offset. Throttle periods are then
            measured from it instead of from ``execution_time`` (:attr:`throttle_time`), and the
            record says the run was a catch-up (docs/correctness.md#catch-up-runs). None: an
            on-time run (the daemon's current tick, a dry-run, a backtest).
        warnings: what the run could not be sure of (:class:`~watcher.engine.run_warnings.Warnings`),
            filled as it goes; the record carries them as ``result.warnings``.
    """

    watch: Watch
    execution_time: dt.datetime
    triggered_time: dt.datetime
    scheduled_time: dt.datetime
    services: Services
    payload: dict = dataclasses.field(default_factory=dict)
    vars: dict = dataclasses.field(default_factory=dict)
    record_id: str = ""
    rule_state: dict = dataclasses.field(default_factory=dict)
    silences: dict = dataclasses.field(default_factory=dict)
    on_time: dt.datetime | None = None
    warnings: Warnings = dataclasses.field(init=False, repr=False)

    @property
    def catch_up(self) -> bool:
        """True when this run catches up a tick it missed (:attr:`on_time` is set)."""
        return self.on_time is not None

    @property
    def throttle_time(self) -> dt.datetime:
        """The instant throttle periods are measured at (aware UTC): :attr:`on_time` for a
        catch-up, else :attr:`execution_time` (Watcher's rule, docs/semantics.md#throttling)."""
        return self.on_time if self.on_time is not None else self.execution_time

    def __post_init__(self) -> None:
        self.warnings = Warnings(self.watch.id)
        if not self.record_id:
            stamp = self.execution_time.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
            self.record_id = f"{self.watch.id}_{uuid.uuid4()}-{stamp.replace('+00:00', 'Z')}"

    @functools.cached_property
    def rule_window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """``(start, end)`` of the window a rule searches at this run (aware UTC; calendar windows
        follow the previous fire time, :mod:`watcher.engine.windows`), computed once per run; None
        for a watch."""
        return window_of(self.watch.rule, self.scheduled_time) if self.watch.rule is not None else None

    @functools.cached_property
    def _calendar_window_start(self) -> dt.datetime | None:
        # ctx is built for every template, condition and action: the schedule is looked at once.
        rule = self.watch.rule
        return self.rule_window[0] if rule is not None and uses_calendar_window(rule) else None

    def ctx(self, payload: Any = None) -> dict:
        """The ``ctx`` object (``payload`` overrides the run's payload, e.g. for a foreach item)."""
        trigger = {"triggered_time": self.triggered_time, "scheduled_time": self.scheduled_time}
        window_start = self._calendar_window_start
        if window_start is not None:  # ours, for rules with a calendar window (docs/rule-types.md)
            trigger["window_start"] = window_start
        return {
            "watch_id": self.watch.id,
            "id": self.record_id,
            "execution_time": self.execution_time,
            "trigger": trigger,
            "metadata": self.watch.metadata,
            "payload": self.payload if payload is None else payload,
            "vars": self.vars,
        }

    def model(self, payload: Any = None) -> dict:
        """``{"ctx": ctx}``: the model that Mustache templates, compare paths and scripts see."""
        return {"ctx": self.ctx(payload)}
