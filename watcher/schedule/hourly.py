"""``hourly`` schedule: fire every hour at given minutes.

Watcher syntax (docs/semantics.md#calendar-schedules; Watcher's
``HourlySchedule``)::

    {"hourly": {"minute": 30}}
    {"hourly": {"minute": [0, 15, 30, 45]}}

``minute`` takes numbers 0–59 or numeric strings, one or a list; the default is minute 0. Evaluated
as the cron ``0 <minutes> * * * ?`` on the trigger zone's wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.schedule import quartz
from watcher.schedule.daily import as_list, compile_crons, parse_int, read_keys

TYPE = "hourly"


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse an ``hourly`` body into its compiled cron (problems go to ``reader``)."""
    keys = read_keys(reader, body, path, {"minute": ("minute",)}, "a mapping such as {minute: [0, 30]}")
    if keys is None:
        return ()
    minutes: list[int] = []
    for item, item_path in (as_list(*keys["minute"]) if "minute" in keys else []):
        minute = parse_int(reader, item, item_path, 0, 59, "a minute")
        if minute is not None:
            minutes.append(minute)
    minutes = sorted(set(minutes)) or [0]
    return compile_crons([f"0 {','.join(map(str, minutes))} * * * ?"])


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; ``anchor`` is unused."""
    return quartz.earliest_after(config, after, tz)
