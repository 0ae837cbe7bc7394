"""``yearly`` schedule: fire in given months, on given days, at given times.

Watcher syntax (docs/semantics.md#calendar-schedules; Watcher's
``YearlySchedule`` / ``YearTimes`` / ``Month``)::

    {"yearly": {"in": "january", "on": 10, "at": "noon"}}
    {"yearly": {"in": ["jan", "jul"], "on": [1, 15], "at": ["noon", "17:00"]}}   # cross product
    {"yearly": [{"in": "feb", "on": 29, "at": "noon"}, {"in": 12, "on": "last_day"}]}

Months: ``january``…``december``, ``jan``…``dec`` (case-insensitive), ``1``…``12``, and Watcher's
``first`` (January) / ``last`` (December). Days as in ``monthly`` (``on: 29`` in February fires in
leap years only). Synonyms ``month`` = ``in``, ``day`` = ``on``, ``time`` = ``at``. Defaults:
January, day 1, midnight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.schedule import quartz
from watcher.schedule.daily import MIDNIGHT, as_list, compile_crons, parse_names, parse_times, read_keys
from watcher.schedule.monthly import day_crons, parse_days

TYPE = "yearly"

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
MONTHS = {**{name: i for i, name in enumerate(_MONTHS, 1)}, **{name[:3]: i for i, name in enumerate(_MONTHS, 1)},
          "first": 1, "last": 12}
EXPECTED_MONTH = "a month (january..december, jan..dec, or 1..12)"
KEYS = {"in": ("in", "month"), "on": ("on", "day"), "at": ("at", "time")}


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse a ``yearly`` body (an object or a list of objects) into compiled crons."""
    expressions: list[str] = []
    for entry, entry_path in as_list(body, path):
        keys = read_keys(reader, entry, entry_path, KEYS, "a mapping such as {in: january, on: 10, at: noon}")
        if keys is None:
            continue
        months = parse_names(reader, *keys["in"], MONTHS, 1, 12, EXPECTED_MONTH) if "in" in keys else [1]
        days = parse_days(reader, keys.get("on"))
        times = parse_times(reader, *keys["at"]) if "at" in keys else [MIDNIGHT]
        if months is not None and days is not None:
            month_field = ",".join(map(str, sorted(set(months or [1]))))
            expressions += day_crons(days, times, month=month_field)
    return compile_crons(expressions)


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; ``anchor`` is unused."""
    return quartz.earliest_after(config, after, tz)
