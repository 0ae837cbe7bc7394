"""Quartz cron expressions: parse them and compute the next fire time, with time zones and DST.

An expression has 6 or 7 blank-separated fields::

    <second> <minute> <hour> <day-of-month> <month> <day-of-week> [<year>]

``* , - /`` work in every field (``0/15``, ``*/5``, ``10-40/10``, wrapping ranges such as ``22-2``);
day-of-month also takes ``?``, ``L``, ``L-3``, ``LW``, ``L-3W`` and ``15W``; day-of-week takes
``?``, ``L`` (alone: Saturday), ``5L`` (last Thursday), ``6#3`` (third Friday); months are
``1-12`` or ``JAN-DEC``; weekdays ``1-7`` or ``SUN-SAT`` with **1 = Sunday**; years 1970–2099.
Names and letters are case-insensitive. Exactly one of day-of-month / day-of-week must be ``?``.

Semantics follow Elasticsearch's fork of Quartz's ``CronExpression``
(x-pack/plugin/core/src/main/java/org/elasticsearch/xpack/core/scheduler/Cron.java) and
https://elastic.co/guide/en/elasticsearch/reference/7.10/cron-expressions.html. Where Quartz is
undefined or lenient-calendar dependent we chose, and document:

* ``nW`` in a month that has no day *n* (``31W`` in April) does not fire that month.
* Time zones (docs/semantics.md#time-zones: calendar schedules are evaluated in the trigger's zone):
  fields are matched against the local wall clock. A wall time that does not exist (spring-forward
  gap) fires at the first instant after the gap (02:30 on a Europe/Paris spring-forward day → 03:00
  CEST); several missing wall times collapse into that one fire. A wall time that occurs twice
  (autumn overlap) fires once, at its first occurrence (the summer-time instant); nothing fires
  during the repeated hour — as Quartz's cron triggers behave.

Computation walks field sets with carries (year → month → day → hour → minute → second), never
second-by-second, so a next fire time costs a handful of set look-ups.
"""

from __future__ import annotations

import bisect
import calendar
import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Iterable, Sequence

from watcher.errors import DefinitionProblem

__all__ = ["QuartzCron", "QuartzError", "earliest_after", "format_weekdays", "parse", "wall_to_utc"]

UTC = dt.timezone.utc
MIN_YEAR, MAX_YEAR = 1970, 2099

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # Quartz numbering: SUN = 1

EXPECTED_SHAPE = "6 or 7 fields (second minute hour day-of-month month day-of-week [year])"


class QuartzError(DefinitionProblem, ValueError):
    """An invalid Quartz cron expression; the message names the field and what was expected."""


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    expected: str
    names: tuple[str, ...] = ()  # names[i] means low + i


_SECOND = _Field("second", 0, 59, "0-59")
_MINUTE = _Field("minute", 0, 59, "0-59")
_HOUR = _Field("hour", 0, 23, "0-23")
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, "1-31")
_MONTH = _Field("month", 1, 12, "1-12 or JAN-DEC", MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, "1-7 or SUN-SAT", DAY_NAMES)
_YEAR = _Field("year", MIN_YEAR, MAX_YEAR, f"{MIN_YEAR}-{MAX_YEAR}")


# --- day rules: which days of a given month fire ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DaysOfMonth:
    """Plain day-of-month values (days past the month's end never fire)."""

    days: frozenset[int]

    def days_in(self, year: int, month: int) -> set[int]:
        last = calendar.monthrange(year, month)[1]
        return {d for d in self.days if d <= last}


@dataclasses.dataclass(frozen=True)
class LastDayOfMonth:
    """``L`` / ``L-n`` (n days before the last day) / ``LW`` / ``L-nW`` (nearest weekday to it)."""

    offset: int = 0
    weekday: bool = False

    def days_in(self, year: int, month: int) -> set[int]:
        last = calendar.monthrange(year, month)[1]
        day = last - self.offset
        if day < 1:
            return set()
        return {_nearest_weekday(year, month, day, last)} if self.weekday else {day}


@dataclasses.dataclass(frozen=True)
class NearestWeekday:
    """``15W``: the weekday (Mon–Fri) nearest day 15, never crossing into another month."""

    day: int

    def days_in(self, year: int, month: int) -> set[int]:
        last = calendar.monthrange(year, month)[1]
        return {_nearest_weekday(year, month, self.day, last)} if self.day <= last else set()


@dataclasses.dataclass(frozen=True)
class DaysOfWeek:
    """Weekday values in Quartz numbering (1 = Sunday … 7 = Saturday)."""

    weekdays: frozenset[int]

    def days_in(self, year: int, month: int) -> set[int]:
        first, last = calendar.monthrange(year, month)
        first_q = _quartz_weekday(first)
        return {d for d in range(1, last + 1) if (first_q - 1 + d - 1) % 7 + 1 in self.weekdays}


@dataclasses.dataclass(frozen=True)
class LastWeekdayOfMonth:
    """``5L``: the last Thursday (Quartz weekday 5) of the month."""

    weekday: int

    def days_in(self, year: int, month: int) -> set[int]:
        days = DaysOfWeek(frozenset({self.weekday})).days_in(year, month)
        return {max(days)}


@dataclasses.dataclass(frozen=True)
class NthWeekdayOfMonth:
    """``6#3``: the third Friday of the month; months without an n-th such day do not fire."""

    weekday: int
    nth: int

    def days_in(self, year: int, month: int) -> set[int]:
        days = sorted(DaysOfWeek(frozenset({self.weekday})).days_in(year, month))
        return {days[self.nth - 1]} if self.nth <= len(days) else set()


DayRule = DaysOfMonth | LastDayOfMonth | NearestWeekday | DaysOfWeek | LastWeekdayOfMonth | NthWeekdayOfMonth


def _quartz_weekday(python_weekday: int) -> int:
    """Python's Monday=0…Sunday=6 → Quartz's Sunday=1…Saturday=7."""
    return (python_weekday + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    weekday = dt.date(year, month, day).weekday()
    if weekday == 5:  # Saturday → Friday, unless that leaves the month (1st → Monday the 3rd)
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday → Monday, unless that leaves the month (last → Friday)
        return day + 1 if day < last else day - 2
    return day


@functools.lru_cache(maxsize=4096)
def _month_days(rules: tuple[DayRule, ...], year: int, month: int) -> tuple[int, ...]:
    days: set[int] = set()
    for rule in rules:
        days |= rule.days_in(year, month)
    return tuple(sorted(days))


# --- the expression --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class QuartzCron:
    """A parsed Quartz cron expression (or one built by a calendar schedule type).

    Attributes:
        expression: the source text (upper-cased, blanks normalised).
        seconds, minutes, hours, months, years: sorted allowed values.
        day_rules: union of rules giving the firing days of a month.
    """

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_rules: tuple[DayRule, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]

    def next_after(self, after: dt.datetime, tz: dt.tzinfo = UTC) -> dt.datetime | None:
        """The first fire time strictly after ``after``.

        Args:
            after: an aware datetime (any zone).
            tz: the zone whose wall clock the fields describe (a ``ZoneInfo`` or fixed offset).

        Returns:
            An aware UTC datetime with whole seconds, or None when the expression never fires again
            (e.g. only past years, or ``30 2`` = February 30th).

        Raises:
            ValueError: ``after`` is naive.

        DST: see the module docstring (gap → first instant after it; overlap → first occurrence).
        """
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("after must be an aware datetime")
        local = after.astimezone(tz)
        start = local.replace(tzinfo=None, microsecond=0) + dt.timedelta(seconds=1)
        for _ in range(16):
            wall = self.next_wall(start)
            if wall is None:
                return None
            instant = wall_to_utc(wall, tz)
            if instant > after:
                return instant
            # ``wall`` occurs twice and ``after`` lies in its second occurrence: its (first)
            # occurrence is past, so continue from the end of the repeated period.
            start = max(_overlap_end(wall, tz), wall + dt.timedelta(seconds=1))
        raise RuntimeError(f"no fire time found for {self.expression!r} after {after}")  # pragma: no cover

    def next_wall(self, start: dt.datetime) -> dt.datetime | None:
        """The first naive wall-clock time at or after ``start`` (naive) matching every field."""
        y, mo, d, h, mi, s = start.year, start.month, start.day, start.hour, start.minute, start.second
        while True:
            i = bisect.bisect_left(self.years, y)
            if i == len(self.years):
                return None
            if self.years[i] != y:
                y, mo, d, h, mi, s = self.years[i], 1, 1, 0, 0, 0
            i = bisect.bisect_left(self.months, mo)
            if i == len(self.months):
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            if self.months[i] != mo:
                mo, d, h, mi, s = self.months[i], 1, 0, 0, 0
            days = _month_days(self.day_rules, y, mo)
            i = bisect.bisect_left(days, d)
            if i == len(days):
                y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
                d, h, mi, s = 1, 0, 0, 0
                continue
            if days[i] != d:
                d, h, mi, s = days[i], 0, 0, 0
            i = bisect.bisect_left(self.hours, h)
            if i == len(self.hours):
                tomorrow = dt.date(y, mo, d) + dt.timedelta(days=1)
                y, mo, d, h, mi, s = tomorrow.year, tomorrow.month, tomorrow.day, 0, 0, 0
                continue
            if self.hours[i] != h:
                h, mi, s = self.hours[i], 0, 0
            i = bisect.bisect_left(self.minutes, mi)
            if i == len(self.minutes):
                h, mi, s = h + 1, 0, 0  # hour 24 overflows into the next day above
                continue
            if self.minutes[i] != mi:
                mi, s = self.minutes[i], 0
            i = bisect.bisect_left(self.seconds, s)
            if i == len(self.seconds):
                mi, s = mi + 1, 0  # minute 60 overflows into the next hour above
                continue
            return dt.datetime(y, mo, d, h, mi, self.seconds[i])


def earliest_after(crons: Iterable[QuartzCron], after: dt.datetime, tz: dt.tzinfo = UTC) -> dt.datetime | None:
    """The earliest :meth:`QuartzCron.next_after` among ``crons`` (None if none fires again)."""
    times = [t for t in (cron.next_after(after, tz) for cron in crons) if t is not None]
    return min(times) if times else None


# --- wall clock ↔ instants ---------------------------------------------------------------------------

def wall_to_utc(wall: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The instant (aware UTC) at which a naive local wall time fires in ``tz``.

    Ambiguous wall times (autumn overlap) give their first occurrence; wall times inside a
    spring-forward gap give the first instant after the gap (the transition itself).
    """
    off0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
    if off0 >= off1:  # unambiguous, or an overlap where fold=0 is the earlier instant
        return (wall - off0).replace(tzinfo=UTC)
    # In a gap fold=0 uses the offset before the transition, fold=1 the one after.
    return _transition(wall - off1, wall - off0, tz).replace(tzinfo=UTC)


def _offset_at(instant: dt.datetime, tz: dt.tzinfo) -> dt.timedelta:
    return instant.replace(tzinfo=UTC).astimezone(tz).utcoffset()


def _transition(before: dt.datetime, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """First naive-UTC instant in ``(before, after]`` carrying ``after``'s offset (binary search, 1 s)."""
    target = _offset_at(after, tz)
    while after - before > dt.timedelta(seconds=1):
        middle = before + dt.timedelta(seconds=(after - before).total_seconds() // 2)
        if _offset_at(middle, tz) == target:
            after = middle
        else:
            before = middle
    return after


def _overlap_end(wall: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """For a wall time that occurs twice: the first wall time after the repeated period."""
    off0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
    if off0 <= off1:
        return wall
    transition = _transition(wall - off0, wall - off1, tz)
    return transition + off0


# --- parsing ---------------------------------------------------------------------------------------

_ALL_YEARS = tuple(range(MIN_YEAR, MAX_YEAR + 1))
_LAST_DAY_RE = re.compile(r"L(?:-(\d+))?(W?)")
_NEAREST_RE = re.compile(r"(\d+)W")
_ITEM_RE = re.compile(r"(?P<base>[^/]*)(?:/(?P<step>.*))?")


def parse(expression: str) -> QuartzCron:
    """Parse a Quartz cron expression (see the module docstring for the syntax).

    Returns:
        A :class:`QuartzCron`.

    Raises:
        QuartzError: with a message such as
            ``day-of-week field: expected 1-7 or SUN-SAT, found '8'``.
    """
    if not isinstance(expression, str):
        raise QuartzError(f"expected a cron expression string, found {type(expression).__name__}")
    parts = expression.upper().split()
    if len(parts) not in (6, 7):
        hint = ("; Quartz starts with seconds and needs '?' in one day field: "
                "Unix '*/5 * * * *' is '0 */5 * * * ?'") if len(parts) == 5 else ""
        raise QuartzError(f"expected {EXPECTED_SHAPE}, found {len(parts)} field{'s' if len(parts) != 1 else ''}{hint}")
    second, minute, hour, dom, month, dow = parts[:6]
    year = parts[6] if len(parts) == 7 else "*"
    for field, text in ((_SECOND, second), (_MINUTE, minute), (_HOUR, hour), (_MONTH, month), (_YEAR, year)):
        if "?" in text:
            raise QuartzError(f"{field.name} field: '?' is only allowed in the day-of-month or day-of-week field")
    if (dom == "?") == (dow == "?"):
        raise QuartzError(
            "day-of-month and day-of-week fields: exactly one must be '?', "
            f"found {dom!r} and {dow!r} (Quartz does not support both; e.g. '0 0 12 ? * MON-FRI' or '0 0 12 1 * ?')")
    day_rule = _parse_day_of_week(dow) if dom == "?" else _parse_day_of_month(dom)
    return QuartzCron(
        expression=" ".join(parts),
        seconds=_values(_SECOND, second),
        minutes=_values(_MINUTE, minute),
        hours=_values(_HOUR, hour),
        day_rules=(day_rule,),
        months=_values(_MONTH, month),
        years=_values(_YEAR, year) if len(parts) == 7 else _ALL_YEARS,
    )


def _parse_day_of_month(text: str) -> DayRule:
    items = text.split(",")
    specials = [item for item in items if "L" in item or "W" in item]
    if specials:
        if len(items) > 1:
            raise QuartzError(f"day-of-month field: 'L' and 'W' must stand alone, found {text!r}")
        match = _LAST_DAY_RE.fullmatch(text)
        if match:
            offset = int(match[1]) if match[1] is not None else 0
            if offset > 30:
                raise QuartzError(f"day-of-month field: expected an offset from 0 to 30 after 'L-', found {match[1]!r}")
            return LastDayOfMonth(offset=offset, weekday=bool(match[2]))
        match = _NEAREST_RE.fullmatch(text)
        if match:
            day = int(match[1])
            if not 1 <= day <= 31:
                raise QuartzError(f"day-of-month field: expected 1-31 before 'W', found {match[1]!r}")
            return NearestWeekday(day)
        raise QuartzError(f"day-of-month field: expected 1-31, L, L-n, LW or nW, found {text!r}")
    return DaysOfMonth(frozenset(_values(_DAY_OF_MONTH, text)))


def _parse_day_of_week(text: str) -> DayRule:
    items = text.split(",")  # no day name contains 'L', so any 'L' here is the special
    if len(items) > 1 and any("L" in item or "#" in item for item in items):
        raise QuartzError(f"day-of-week field: 'L' and '#' must stand alone, found {text!r}")
    if text == "L":
        return DaysOfWeek(frozenset({7}))  # 'L' alone means the last day of the week: Saturday
    if "#" in text:
        day, _, nth = text.partition("#")
        weekday = _single(_DAY_OF_WEEK, day)
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise QuartzError(f"day-of-week field: expected 1-5 after '#', found {nth!r}")
        return NthWeekdayOfMonth(weekday, int(nth))
    if text.endswith("L"):
        return LastWeekdayOfMonth(_single(_DAY_OF_WEEK, text[:-1]))
    return DaysOfWeek(frozenset(_values(_DAY_OF_WEEK, text)))


def _values(field: _Field, text: str) -> tuple[int, ...]:
    """Expand ``* , - /`` over a field into sorted values."""
    values: set[int] = set()
    for item in text.split(","):
        if item == "":
            raise QuartzError(f"{field.name} field: expected {field.expected}, found an empty list item in {text!r}")
        match = _ITEM_RE.fullmatch(item)
        base, step_text = match["base"], match["step"]
        step = 1
        if step_text is not None:
            limit = field.high if field is not _YEAR else MAX_YEAR - MIN_YEAR
            if not step_text.isdigit() or not 1 <= int(step_text) <= limit:
                raise QuartzError(f"{field.name} field: expected a step from 1 to {limit} after '/', "
                                  f"found {step_text!r}")
            step = int(step_text)
        if base in ("*", ""):
            start, end = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _single(field, first), _single(field, last)
        else:
            start = _single(field, base)
            end = field.high if step_text is not None else start  # '5/15' runs to the field's end
        values.update(_expand(field, start, end, step))
    return tuple(sorted(values))


def _expand(field: _Field, start: int, end: int, step: int) -> list[int]:
    if end >= start:
        return list(range(start, end + 1, step))
    if field is _YEAR:
        raise QuartzError(f"year field: expected a range from low to high, found '{start}-{end}'")
    # Overflowing range ('22-2', 'NOV-FEB'), as Quartz allows: wrap past the field's maximum.
    size = field.high - field.low + 1
    return [field.low + (v - field.low) % size for v in range(start, end + size + 1, step)]


def _single(field: _Field, token: str) -> int:
    """One value: a number in the field's range or (months, weekdays) a three-letter name."""
    if token.isdigit():
        value = int(token)
        if field.low <= value <= field.high:
            return value
    elif token in field.names:
        return field.low + field.names.index(token)
    raise QuartzError(f"{field.name} field: expected {field.expected}, found {token!r}")


def format_weekdays(values: Sequence[int]) -> str:
    """Day-of-week field text for Quartz weekdays (1 = Sunday): ``[2,3,4,5,6]`` → ``MON-FRI``."""
    ordered = sorted(set(values))
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    parts = []
    for run in runs:
        first, last = DAY_NAMES[run[0] - 1], DAY_NAMES[run[-1] - 1]
        parts.append(first if len(run) == 1 else (f"{first},{last}" if len(run) == 2 else f"{first}-{last}"))
    return ",".join(parts)
