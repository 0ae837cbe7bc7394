"""A watch's status: Watcher's ``status`` object and its per-action throttle and acknowledgement states.

The data kept across executions (in the state index, :mod:`watcher.es.state`) with its JSON form
(Watcher's ``WatchStatus``/``ActionStatus``) and its transitions. Semantics (docs/semantics.md#action-wrapper,
docs/semantics.md#status-and-ack; Watcher's ActionStatus, WatchStatus, PeriodThrottler, AckThrottler): an
action is throttled when the time since its last *successful* execution is at most its throttle period
(inclusive; the default period is :data:`DEFAULT_THROTTLE`); an ``acked`` action reports ``acknowledged``. Ack
states: ``awaits_successful_execution`` → (success or simulated) → ``ackable`` → (ack API) → ``acked``; a
watch condition or the action's own condition that is not met resets the action to
``awaits_successful_execution``. Acking an action that is not ``ackable`` changes nothing.

Rules with ``group_by`` also throttle per group key (ElastAlert's ``realert`` per ``query_key``):
``groups`` maps ``<action id>/<group key>`` to the last successful execution for that key.

Catch-up runs (ours, docs/correctness.md#catch-up-runs): a run that catches up a missed tick is
throttled as if it had started on time. Each success keeps, beside its execution time, the instant the
throttle measures from (``on_time``: the on-time start of a catch-up, else the execution time), and
``groups`` holds that instant per key, so a tick caught up milliseconds after the previous one is
still a period after it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Iterable

from watcher.support.datemath import format_iso_millis, parse_instant
from watcher.support.durations import format_duration

DEFAULT_THROTTLE = dt.timedelta(seconds=5)  # xpack.watcher.execution.default_throttle_period
"""Watcher's throttle period when neither the action nor the watch sets one."""

AWAITS = "awaits_successful_execution"
ACKABLE = "ackable"
ACKED = "acked"
# Watcher's ExecutionState values, the states of a watch record (docs/semantics.md#record-state).
RECORD_STATES = ("execution_not_needed", "throttled", "acknowledged", "executed", "failed",
                 "threadpool_rejection", "not_executed_watch_missing", "not_executed_already_queued",
                 "executed_multiple_times")


def _iso(value: dt.datetime | None) -> str | None:
    return format_iso_millis(value) if value is not None else None


def _time(value) -> dt.datetime | None:
    return parse_instant(value) if value else None


@dataclasses.dataclass
class ActionStatus:
    """One action's status; timestamps are aware UTC datetimes (None = never)."""

    ack_state: str = AWAITS
    ack_timestamp: dt.datetime | None = None
    last_execution: dt.datetime | None = None
    last_execution_successful: bool | None = None
    last_execution_reason: str | None = None
    last_successful_execution: dt.datetime | None = None
    last_throttle: dt.datetime | None = None
    last_throttle_reason: str | None = None
    groups: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    last_successful_on_time: dt.datetime | None = None

    @property
    def throttled_since(self) -> dt.datetime | None:
        """The instant the throttle period runs from (aware UTC; None = never succeeded): the last
        success's on-time start when it was a catch-up, else its execution time."""
        return self.last_successful_on_time or self.last_successful_execution

    def to_json(self) -> dict:
        """Watcher's JSON shape (``ack``, ``last_execution``…) plus ``groups`` for rules."""
        out: dict = {"ack": {"timestamp": _iso(self.ack_timestamp), "state": self.ack_state}}
        if self.last_execution:
            out["last_execution"] = {"timestamp": _iso(self.last_execution),
                                     "successful": bool(self.last_execution_successful)}
            if self.last_execution_reason:
                out["last_execution"]["reason"] = self.last_execution_reason
        if self.last_successful_execution:
            out["last_successful_execution"] = {"timestamp": _iso(self.last_successful_execution),
                                                "successful": True}
            if self.last_successful_on_time and self.last_successful_on_time != self.last_successful_execution:
                out["last_successful_execution"]["on_time"] = _iso(self.last_successful_on_time)
        if self.last_throttle:
            out["last_throttle"] = {"timestamp": _iso(self.last_throttle), "reason": self.last_throttle_reason}
        if self.groups:
            out["groups"] = {key: _iso(value) for key, value in self.groups.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> "ActionStatus":
        ack = data.get("ack") or {}
        last = data.get("last_execution") or {}
        throttle = data.get("last_throttle") or {}
        success = data.get("last_successful_execution") or {}
        return cls(
            ack_state=ack.get("state", AWAITS), ack_timestamp=_time(ack.get("timestamp")),
            last_execution=_time(last.get("timestamp")), last_execution_successful=last.get("successful"),
            last_execution_reason=last.get("reason"),
            last_successful_execution=_time(success.get("timestamp")),
            last_successful_on_time=_time(success.get("on_time")),
            last_throttle=_time(throttle.get("timestamp")), last_throttle_reason=throttle.get("reason"),
            groups={k: _time(v) for k, v in (data.get("groups") or {}).items() if v},
        )

    # -- transitions ------------------------------------------------------------------------
    def throttled_reason(self, period: dt.timedelta, now: dt.datetime, group: str | None = None) -> str | None:
        """The throttle reason if the action (or its group key) ran successfully ≤ ``period`` ago.

        Args:
            period: the throttle period (≤ 0: never throttled).
            now: aware UTC; the run's throttle time (``Run.throttle_time``: its execution time, or
                its on-time start for a catch-up run).
            group: the group key of a rule with ``group_by`` (None: the action as a whole).

        Returns:
            Watcher's reason text (``throttling interval is set to [5s] but time elapsed since last
            execution is [41ms]``), or None when not throttled. The elapsed time runs from
            :attr:`throttled_since` (or the group's entry), so two catch-up runs are as far apart as
            their scheduled times.
        """
        last = self.groups.get(group) if group is not None else self.throttled_since
        if last is None or period <= dt.timedelta(0):
            return None
        elapsed = now - last
        if elapsed <= period:
            return (f"throttling interval is set to [{format_duration(period)}] but time elapsed since "
                    f"last execution is [{format_duration(elapsed)}]")
        return None

    def record_throttle(self, now: dt.datetime, reason: str) -> None:
        self.last_throttle, self.last_throttle_reason = now, reason

    def record_result(self, status: str, now: dt.datetime, reason: str | None = None, group: str | None = None,
                      on_time: dt.datetime | None = None) -> None:
        """Update after the action ran: ``status`` is the action result status.

        Args:
            status: the action result status (``success``/``simulated`` start a throttle period).
            now: aware UTC execution time (the status timestamps, as in Watcher).
            reason: why it failed (kept with a failure).
            group: the group key whose throttle period starts (rules with ``group_by``).
            on_time: for a catch-up run, its on-time start (``Run.on_time``): the throttle period
                runs from it instead of from ``now``.
        """
        if status in ("success", "simulated"):
            self.last_execution, self.last_execution_successful, self.last_execution_reason = now, True, None
            self.last_successful_execution = now
            self.last_successful_on_time = on_time or now
            if group is not None:
                self.groups[group] = on_time or now
            if self.ack_state == AWAITS:
                self.ack_state, self.ack_timestamp = ACKABLE, now
        elif status in ("failure", "partial_failure"):
            self.last_execution, self.last_execution_successful = now, False
            self.last_execution_reason = reason

    def reset_ack(self, now: dt.datetime) -> None:
        """Back to ``awaits_successful_execution`` (condition not met); timestamp only on change."""
        if self.ack_state != AWAITS:
            self.ack_state, self.ack_timestamp = AWAITS, now

    def ack(self, now: dt.datetime) -> bool:
        """Acknowledge: ``ackable`` → ``acked``. Returns True if the state changed."""
        if self.ack_state == ACKABLE:
            self.ack_state, self.ack_timestamp = ACKED, now
            return True
        return False


@dataclasses.dataclass
class WatchStatus:
    """A watch's status (Watcher's ``status`` object), kept across executions."""

    active: bool = True
    state_timestamp: dt.datetime | None = None
    last_checked: dt.datetime | None = None
    last_met_condition: dt.datetime | None = None
    actions: dict[str, ActionStatus] = dataclasses.field(default_factory=dict)
    execution_state: str | None = None
    version: int = 0

    def action(self, action_id: str) -> ActionStatus:
        """The status of ``action_id`` (created in ``awaits_successful_execution`` if new)."""
        return self.actions.setdefault(action_id, ActionStatus())

    def reset_acks(self, now: dt.datetime) -> None:
        for status in self.actions.values():
            status.reset_ack(now)

    def ack(self, action_ids: Iterable[str] | None, now: dt.datetime) -> list[str]:
        """Ack the given actions (None or ``_all`` = all); returns the ids whose state changed."""
        ids = list(self.actions) if not action_ids or "_all" in action_ids else list(action_ids)
        return [action_id for action_id in ids if self.action(action_id).ack(now)]

    def to_json(self) -> dict:
        out: dict = {"state": {"active": self.active, "timestamp": _iso(self.state_timestamp)},
                     "actions": {k: v.to_json() for k, v in self.actions.items()},
                     "version": self.version}
        if self.last_checked:
            out["last_checked"] = _iso(self.last_checked)
        if self.last_met_condition:
            out["last_met_condition"] = _iso(self.last_met_condition)
        if self.execution_state:
            out["execution_state"] = self.execution_state
        return out

    @classmethod
    def from_json(cls, data: dict | None) -> "WatchStatus":
        if not data:
            return cls()
        state = data.get("state") or {}
        return cls(active=state.get("active", True), state_timestamp=_time(state.get("timestamp")),
                   last_checked=_time(data.get("last_checked")),
                   last_met_condition=_time(data.get("last_met_condition")),
                   actions={k: ActionStatus.from_json(v) for k, v in (data.get("actions") or {}).items()},
                   execution_state=data.get("execution_state"), version=data.get("version", 0))


def merge_status(before: WatchStatus, ours: WatchStatus, fresh: WatchStatus) -> WatchStatus:
    """The status to save when the stored one changed while a run computed ``ours`` (a concurrent
    ack or (de)activation is never lost).

    Args:
        before: the status loaded before the run.
        ours: the status after the run (a copy is returned, ``ours`` is left as it is).
        fresh: the status stored now.

    Returns:
        ``ours`` with, from ``fresh``: the ``active`` flag and its timestamp, and the ack state of
        every action whose ack state changed between ``before`` and ``fresh``.
    """
    merged = copy.deepcopy(ours)
    merged.active, merged.state_timestamp = fresh.active, fresh.state_timestamp
    for action_id, stored in fresh.actions.items():
        loaded = before.actions.get(action_id)
        if loaded is None or (loaded.ack_state, loaded.ack_timestamp) != (stored.ack_state, stored.ack_timestamp):
            mine = merged.action(action_id)
            mine.ack_state, mine.ack_timestamp = stored.ack_state, stored.ack_timestamp
    return merged
