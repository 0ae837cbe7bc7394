"""``weekly`` schedule: fire on given days of the week at given times.

Watcher syntax (docs/semantics.md#calendar-schedules; Watcher's
``WeeklySchedule`` / ``WeekTimes`` / ``DayOfWeek``)::

    {"weekly": {"on": "friday", "at": "17:00"}}
    {"weekly": {"on": ["monday", "friday"], "at": ["noon", "17:00"]}}     # cross product
    {"weekly": [{"on": "tuesday", "at": "noon"}, {"on": "friday", "at": "17:00"}]}

Days: ``sunday``…``saturday``, ``sun``…``sat`` (case-insensitive) or ``1``…``7`` with **1 = Sunday**.
Synonyms ``day`` = ``on``, ``time`` = ``at``. Defaults: Monday, midnight. Each (entry, time) pair is
the cron ``0 <minutes> <hours> ? * <days>`` on the trigger zone's wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.schedule import quartz
from watcher.schedule.daily import MIDNIGHT, as_list, compile_crons, parse_names, parse_times, read_keys

TYPE = "weekly"

DAYS = {name: number for number, names in enumerate(
    (("sunday", "sun"), ("monday", "mon"), ("tuesday", "tue"), ("wednesday", "wed"),
     ("thursday", "thu"), ("friday", "fri"), ("saturday", "sat")), start=1) for name in names}
EXPECTED_DAY = "a day of the week (sunday..saturday, sun..sat, or 1..7 with 1 = Sunday)"
KEYS = {"on": ("on", "day"), "at": ("at", "time")}


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse a ``weekly`` body (an object or a list of objects) into compiled crons."""
    expressions: list[str] = []
    for entry, entry_path in as_list(body, path):
        keys = read_keys(reader, entry, entry_path, KEYS, "a mapping such as {on: friday, at: '17:00'}")
        if keys is None:
            continue
        days = parse_names(reader, *keys["on"], DAYS, 1, 7, EXPECTED_DAY) if "on" in keys else [2]
        times = parse_times(reader, *keys["at"]) if "at" in keys else [MIDNIGHT]
        if days:
            weekdays = quartz.format_weekdays(days)
            expressions += [t.cron(day_of_month="?", day_of_week=weekdays) for t in times]
        elif days is not None:  # an empty list: Watcher's default day
            expressions += [t.cron(day_of_month="?", day_of_week="MON") for t in times]
    return compile_crons(expressions)


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; ``anchor`` is unused."""
    return quartz.earliest_after(config, after, tz)
