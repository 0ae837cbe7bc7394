"""Watcher's per-action throttle: the default throttle period, over the status kept across executions.

Semantics (watcher-semantics §1.6, §1.8; Watcher's PeriodThrottler, AckThrottler): an action is
throttled when the time since its last *successful* execution is at most its throttle period
(inclusive; the action's ``throttle_period``, else the watch's, else :data:`DEFAULT_THROTTLE`); an
``acked`` action reports ``acknowledged``. The status these decisions read and update — per-action
throttle and ack states (:meth:`ActionStatus.throttled_reason`, ``record_result``, ``ack``…) and
their JSON form — is :mod:`watcher.model.status`, which the state index stores without knowing the
engine.
"""

from __future__ import annotations

import datetime as dt

from watcher.model.status import ACKABLE, ACKED, AWAITS, ActionStatus, WatchStatus  # noqa: F401 (the status decided on)

DEFAULT_THROTTLE = dt.timedelta(seconds=5)  # xpack.watcher.execution.default_throttle_period
