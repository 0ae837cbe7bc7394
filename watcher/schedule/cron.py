"""``cron`` schedule: one Quartz cron expression or a list of them (the earliest next fire wins).

Watcher syntax (docs/semantics.md#cron-expressions; Watcher's
``CronSchedule``)::

    {"cron": "0 0/2 * ? * MON-FRI"}
    {"cron": ["0 0 9 ? * MON-FRI", "0 0 12 ? * SAT,SUN"]}

Quartz syntax, seconds first and 1 = Sunday: see :mod:`watcher.schedule.quartz`. Evaluated on the
trigger zone's wall clock (UTC by default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.schedule import quartz
from watcher.schedule.daily import as_list

TYPE = "cron"

EXPECTED = "a Quartz cron expression such as '0 0/5 * * * ?' or a list of them"


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse the expression(s); each invalid one is a problem naming its field."""
    items = as_list(body, path)
    if not items:
        reader.expected(path, EXPECTED, body)
        return ()
    crons = []
    for item, item_path in items:
        text = plain(item)
        if not isinstance(text, str):
            reader.expected(item_path, EXPECTED, item)
            continue
        try:
            crons.append(quartz.parse(text))
        except quartz.QuartzError as error:
            reader.problem(item_path, f"invalid cron expression {text!r}: {error}", at_value=True)
    return tuple(crons)


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; None if none ever again."""
    return quartz.earliest_after(config, after, tz)
