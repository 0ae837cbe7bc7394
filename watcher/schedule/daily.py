"""``daily`` schedule: fire every day at given times, plus the helpers the other calendar types share.

Watcher syntax (docs/semantics.md#calendar-schedules; Watcher's
``DailySchedule`` / ``DayTimes``)::

    {"daily": {"at": "17:00"}}
    {"daily": {"at": ["midnight", "noon", "17:30"]}}
    {"daily": {"at": {"hour": [0, 12], "minute": [0, 30]}}}     # cross product: 4 times a day

``time`` is a synonym of ``at``; the default is midnight. A time is ``H:mm``/``HH:mm`` (24-h), or
``midnight`` / ``noon``; ``hour``/``minute`` take numbers or numeric strings, one or a list.

Like Watcher, every entry of ``at`` becomes one cron expression (``0 <minutes> <hours> * * ?``);
the next fire time is the earliest among them, on the trigger's zone wall clock
(see :mod:`watcher.schedule.quartz` for DST).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from watcher.model.problems import Reader, describe, did_you_mean
from watcher.model.source import plain
from watcher.schedule import quartz

TYPE = "daily"

EXPECTED_TIME = "a time such as 17:00 (HH:mm, 24-hour), midnight or noon, or {hour: [...], minute: [...]}"
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})")


@dataclasses.dataclass(frozen=True)
class DayTimes:
    """Times of day: every hour in ``hours`` combined with every minute in ``minutes`` (local time)."""

    hours: tuple[int, ...]
    minutes: tuple[int, ...]

    def cron(self, day_of_month: str = "*", month: str = "*", day_of_week: str = "?") -> str:
        """The Quartz expression firing at these times on the given days (Watcher's ``crons()``)."""
        return (f"0 {','.join(map(str, self.minutes))} {','.join(map(str, self.hours))} "
                f"{day_of_month} {month} {day_of_week}")


MIDNIGHT = DayTimes((0,), (0,))
NOON = DayTimes((12,), (0,))


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> tuple[quartz.QuartzCron, ...]:
    """Parse a ``daily`` body; returns one compiled cron per time entry (problems go to ``reader``)."""
    keys = read_keys(reader, body, path, {"at": ("at", "time")}, "a mapping such as {at: '17:00'}")
    if keys is None:
        return ()
    times = parse_times(reader, *keys["at"]) if "at" in keys else [MIDNIGHT]
    return compile_crons(times and [t.cron() for t in times])


def next_fire(config: tuple[quartz.QuartzCron, ...], after: dt.datetime, tz: dt.tzinfo,
              anchor: dt.datetime | None = None) -> dt.datetime | None:
    """First fire time strictly after ``after`` (aware), as aware UTC; ``anchor`` is unused."""
    return quartz.earliest_after(config, after, tz)


# --- helpers shared by the calendar schedule types ---------------------------------------------------

def read_keys(reader: Reader, body: Any, path: Sequence[str | int], keys: Mapping[str, Sequence[str]],
              expected: str) -> dict[str, tuple[Any, tuple]] | None:
    """Check a mapping's keys against ``{canonical: (name, synonym…)}``.

    Returns:
        ``{canonical: (value, path of the value)}`` for the keys present, or None when ``body`` is not
        a mapping. Unknown keys (with did-you-mean) and a key given under two synonyms are problems.
    """
    mapping = reader.mapping(path, body, expected)
    if mapping is None:
        return None
    allowed = [name for names in keys.values() for name in names]
    found: dict[str, tuple[Any, tuple]] = {}
    for key, value in mapping.items():
        canonical = next((c for c, names in keys.items() if key in names), None)
        if canonical is None:
            reader.unknown_key(path, str(key), allowed)
        elif canonical in found:
            first = found[canonical][1][-1]
            reader.problem((*path, key), f"{key!r} and {first!r} mean the same; give only one of them")
        else:
            found[canonical] = (value, (*path, key))
    return found


def as_list(value: Any, path: Sequence[str | int]) -> list[tuple[Any, tuple]]:
    """A value or a list of values → ``[(item, item path)]`` (ruamel lists keep their positions)."""
    if isinstance(value, list):
        return [(item, (*path, i)) for i, item in enumerate(value)]
    return [(value, tuple(path))]


def parse_int(reader: Reader, value: Any, path: Sequence[str | int], low: int, high: int, what: str) -> int | None:
    """A whole number in ``low..high`` given as a number or a numeric string (as Watcher accepts)."""
    raw = plain(value)
    number = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        number = int(raw)
    if number is None or not low <= number <= high:
        reader.expected(path, f"{what} from {low} to {high}", value)
        return None
    return number


def parse_times(reader: Reader, value: Any, path: Sequence[str | int]) -> list[DayTimes]:
    """``at``: a time string, an ``{hour, minute}`` object, or a list of those (empty → midnight)."""
    items = as_list(value, path)
    if not items:
        return [MIDNIGHT]
    times = []
    for item, item_path in items:
        parsed = parse_time(reader, item, item_path)
        if parsed is not None:
            times.append(parsed)
    return times


def parse_time(reader: Reader, value: Any, path: Sequence[str | int]) -> DayTimes | None:
    """One entry of ``at`` (Watcher's ``DayTimes.parse``: ``H:mm``, ``HH:mm``, midnight, noon, object)."""
    if isinstance(value, Mapping):
        keys = read_keys(reader, value, path, {"hour": ("hour",), "minute": ("minute",)}, EXPECTED_TIME)
        if keys is None:
            return None
        hours = _int_list(reader, keys.get("hour"), 0, 23, "an hour")
        minutes = _int_list(reader, keys.get("minute"), 0, 59, "a minute")
        if hours is None or minutes is None:
            return None
        return DayTimes(hours or (0,), minutes or (0,))
    raw = plain(value)
    if raw == "midnight":
        return MIDNIGHT
    if raw == "noon":
        return NOON
    match = _TIME_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        reader.expected(path, EXPECTED_TIME, value)
        return None
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        part = f"hour {hour} (0-23)" if hour > 23 else f"minute {minute} (0-59)"
        reader.problem(path, f"expected {EXPECTED_TIME}, found {describe(value)}: {part} is out of range",
                       at_value=True)
        return None
    return DayTimes((hour,), (minute,))


def _int_list(reader: Reader, entry: tuple[Any, tuple] | None, low: int, high: int,
              what: str) -> tuple[int, ...] | None:
    """Values of ``hour``/``minute`` (one or a list); () when absent; None when any was bad."""
    if entry is None:
        return ()
    values, ok = [], True
    for item, item_path in as_list(*entry):
        number = parse_int(reader, item, item_path, low, high, what)
        ok = ok and number is not None
        if number is not None:
            values.append(number)
    return tuple(sorted(set(values))) if ok else None


def parse_names(reader: Reader, value: Any, path: Sequence[str | int], names: Mapping[str, int],
                low: int, high: int, expected: str) -> list[int] | None:
    """Day or month values: names (case-insensitive) or numbers ``low..high``, one or a list.

    Returns the values in the order given (None when any was bad; problems recorded).
    """
    values, ok = [], True
    for item, item_path in as_list(value, path):
        raw = plain(item)
        number = None
        if isinstance(raw, str) and raw.strip().lower() in names:
            number = names[raw.strip().lower()]
        elif (isinstance(raw, int) and not isinstance(raw, bool)) or (isinstance(raw, str) and raw.strip().isdigit()):
            number = int(raw) if low <= int(raw) <= high else None
        if number is None:
            hint = did_you_mean(raw.lower(), names) if isinstance(raw, str) else ""
            reader.problem(item_path, f"expected {expected}, found {describe(item)}{hint}", at_value=True)
            ok = False
        else:
            values.append(number)
    return values if ok else None


def compile_crons(expressions: Sequence[str] | None) -> tuple[quartz.QuartzCron, ...]:
    """Parse generated cron texts (always valid) into the schedule's config."""
    return tuple(quartz.parse(text) for text in dict.fromkeys(expressions or ()))
