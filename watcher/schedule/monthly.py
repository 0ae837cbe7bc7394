"""``monthly`` schedule: fire on given days of the month at given times.

Watcher syntax (docs/semantics.md#calendar-schedules; Watcher's
``MonthlySchedule`` / ``MonthTimes``)::

    {"monthly": {"on": 10, "at": "noon"}}
    {"monthly": {"on": [10, 20], "at": ["midnight", "noon"]}}          # cross product
    {"monthly": [{"on": 1, "at": "noon"}, {"on": "last_day", "at": "17:00"}]}

Days: ``1``…``31`` (numbers or numeric strings), ``first_day`` (= 1) or ``last_day``. A day a month
does not have is skipped that month (day 31 fires in 31-day months only), as Quartz does.
Synonyms ``day`` = ``on``, ``time`` = ``at``. Defaults: day 1, midnight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.schedule import quartz
from watcher.schedule.daily import MIDNIGHT, DayTimes, as_list, compile_crons, parse_names, parse_times, read_keys

TYPE = "monthly"

LAST_DAY = 32  # Watcher's marker for last_day
DAY_NAMES = {"first_day": 1, "last_day": LAST_DAY}
EXPECTED_DAY = "a day of the month (1..31, first_day or last_day)"
KEYS = {"on": ("on", "day"), "at": ("at", "time")}


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse a ``monthly`` body (an object or a list of objects) into compiled crons."""
    expressions: list[str] = []
    for entry, entry_path in as_list(body, path):
        keys = read_keys(reader, entry, entry_path, KEYS, "a mapping such as {on: 10, at: noon}")
        if keys is None:
            continue
        days = parse_days(reader, keys.get("on"))
        times = parse_times(reader, *keys["at"]) if "at" in keys else [MIDNIGHT]
        if days is not None:
            expressions += day_crons(days, times, month="*")
    return compile_crons(expressions)


def parse_days(reader: Reader, entry: tuple[Any, tuple] | None) -> list[int] | None:
    """``on``/``day`` values (absent or empty → [1]); ``last_day`` is :data:`LAST_DAY`."""
    if entry is None:
        return [1]
    days = parse_names(reader, *entry, DAY_NAMES, 1, 31, EXPECTED_DAY)
    return None if days is None else (days or [1])


def day_crons(days: Sequence[int], times: Sequence[DayTimes], month: str) -> list[str]:
    """Cron texts for days × times. Quartz only takes 'L' alone, so last_day gets its own cron."""
    numbered = sorted({d for d in days if d != LAST_DAY})
    fields = ([",".join(map(str, numbered))] if numbered else []) + (["L"] if LAST_DAY in days else [])
    return [t.cron(day_of_month=field, month=month) for field in fields for t in times]


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; ``anchor`` is unused."""
    return quartz.earliest_after(config, after, tz)
