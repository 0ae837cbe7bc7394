"""Elasticsearch date math and instants, evaluated in Python against a given ``now``.

Used where Watcher evaluates date math itself rather than sending it to Elasticsearch: compare and
array_compare values such as ``"<{now-5m}>"`` (see :mod:`watcher.support.compare`), and our own
windows. Inside a search body, date math is left to Elasticsearch.

Conventions: every datetime returned is **aware and in UTC** (``tzinfo=datetime.timezone.utc``);
a naive datetime given as input is taken to be UTC (Elasticsearch's default zone). Epoch numbers
are **milliseconds**.

Source: Elasticsearch reference, common options, "Date math" (api-conventions); range query
"Missing date components"; server/.../common/time/JavaDateMathParser.java and the
``strict_date_optional_time||epoch_millis`` default date format (DateFormatters.java) that
Watcher's WatcherDateTimeUtils uses.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import math
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.errors import DefinitionProblem

__all__ = ["DateMathError", "UTC", "format_iso_millis", "parse_instant", "resolve"]

UTC = _dt.timezone.utc

EXPECTED_DATE = "a date such as 2024-05-01T10:15:30Z (ISO-8601) or epoch milliseconds"
DATE_MATH_UNITS = "y, M, w, d, h, H, m, s"

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)

# Elasticsearch's strict_date_optional_time: yyyy[-MM[-dd]][T[HH[:mm[:ss[(.|,)fraction]]]][zone]]
_ISO_RE = re.compile(
    r"""
    (?P<year>\d{4})
    (?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?
    (?:T
        (?:(?P<hour>\d{2})
            (?::(?P<minute>\d{2})
                (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
            )?
        )?
        (?P<zone>Z|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-/]*)?
    )?
    """,
    re.VERBOSE | re.ASCII,
)
# Elasticsearch's epoch_millis: an optionally signed number of milliseconds, optionally fractional.
_EPOCH_MILLIS_RE = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_OFFSET_RE = re.compile(r"(?P<sign>[+-])(?P<hh>\d{2})(?::?(?P<mm>\d{2}))?", re.ASCII)


class DateMathError(DefinitionProblem, ValueError):
    """A date math expression could not be resolved.

    ``expression`` holds the full expression, ``reason`` the specific problem; ``str(error)`` is
    ``'could not resolve date math "<expression>": <reason>'``.
    """

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f'could not resolve date math "{expression}": {reason}')


# --------------------------------------------------------------------------------------------------
# Instants


def _as_utc(value: _dt.datetime) -> _dt.datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_epoch_millis(millis: Decimal | int) -> _dt.datetime:
    """UTC datetime for a number of epoch milliseconds (sub-millisecond part kept to the microsecond)."""
    micros = int(Decimal(millis) * 1000)  # truncated toward zero, like Java's long conversion
    return _EPOCH + _dt.timedelta(microseconds=micros)


def _zone(name: str) -> _dt.tzinfo:
    """A tzinfo for an offset (``Z``, ``+02:00``, ``+0200``, ``+02``) or an IANA zone id."""
    if name == "Z":
        return UTC
    match = _OFFSET_RE.fullmatch(name)
    if match:
        hours, minutes = int(match["hh"]), int(match["mm"] or 0)
        if hours > 18 or minutes > 59:
            raise ValueError(f"offset {name} is out of range")
        delta = _dt.timedelta(hours=hours, minutes=minutes)
        return _dt.timezone(-delta if match["sign"] == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None


def _parse_es_date(text: str, default_tz: _dt.tzinfo, *, round_up: bool = False) -> _dt.datetime | None:
    """Parse with Elasticsearch's ``strict_date_optional_time||epoch_millis``; None when ``text`` has
    neither form, ValueError when it has the form but is not a valid date (month 13, bad zone...).

    ISO first: a 4-digit string such as ``"2024"`` is a year, not 2024 ms. Without a zone in the
    text the local time is read in ``default_tz``. With ``round_up`` missing components are
    filled as Elasticsearch's round-up parser does (month 1, day 1, 23:59:59.999).
    """
    match = _ISO_RE.fullmatch(text)
    if match is not None:
        if round_up:
            defaults = {"month": 1, "day": 1, "hour": 23, "minute": 59, "second": 59}
        else:
            defaults = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0}
        parts = {key: int(match[key]) if match[key] is not None else value for key, value in defaults.items()}
        if match["fraction"] is not None:
            micros = int(match["fraction"].ljust(9, "0")[:6])
        else:
            micros = 999_000 if round_up else 0  # nano-of-second 999_999_999, at millisecond precision
        local = _dt.datetime(int(match["year"]), microsecond=micros, **parts)
        zone = _zone(match["zone"]) if match["zone"] else default_tz
        return _as_utc(_localize(local, zone))
    if _EPOCH_MILLIS_RE.fullmatch(text):
        return _from_epoch_millis(Decimal(text))
    return None


def parse_instant(value: Any) -> _dt.datetime:
    """Parse an instant the way Watcher's ``WatcherDateTimeUtils.parseDate`` does.

    Accepts:

    * a string in Elasticsearch's default format ``strict_date_optional_time||epoch_millis``:
      ``"2024-05-01T10:15:30.123Z"``, ``"2024-05-01T12:15:30+02:00"``, ``"2024-05-01T10:15"``,
      ``"2024-05-01"`` (zone-less text is UTC; fraction 1-9 digits, ``.`` or ``,``), or epoch
      milliseconds ``"1714558530123"``. ISO is tried first, so a 4-digit string such as
      ``"2024"`` is the year 2024, not 2024 ms — as in Elasticsearch;
    * an ``int``/``float``: epoch **milliseconds** (a fractional part is kept to the microsecond);
    * a ``datetime``: converted to UTC (naive is taken as UTC).

    Returns an aware UTC datetime. Raises ValueError for anything else (booleans, NaN, blanks around
    the text, invalid calendar dates, out-of-range values) with a message naming what was found.
    """
    if isinstance(value, _dt.datetime):
        return _as_utc(value)
    if isinstance(value, bool):
        raise ValueError(f"expected {EXPECTED_DATE}, found {str(value).lower()}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected {EXPECTED_DATE}, found {value!r}")
        try:
            return _from_epoch_millis(Decimal(value) if isinstance(value, int) else Decimal(repr(value)))
        except OverflowError:
            raise ValueError(f"expected {EXPECTED_DATE}, found {value!r} (out of range)") from None
    if isinstance(value, str):
        try:
            parsed = _parse_es_date(value, UTC)
        except OverflowError:
            raise ValueError(f'expected {EXPECTED_DATE}, found "{value}" (out of range)') from None
        except ValueError as error:
            raise ValueError(f'expected {EXPECTED_DATE}, found "{value}" ({error})') from None
        if parsed is None:
            raise ValueError(f'expected {EXPECTED_DATE}, found "{value}"')
        return parsed
    found = "null" if value is None else f"{value!r} ({type(value).__name__})"
    raise ValueError(f"expected {EXPECTED_DATE}, found {found}")


def utc_now_millis() -> _dt.datetime:
    """Now, aware UTC, truncated to the millisecond: the precision of Watcher's times (records, state,
    ``ctx.execution_time``), so that ``{{ctx.trigger.scheduled_time}}`` renders as a record shows it."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_iso_millis(dt: _dt.datetime) -> str:
    """Format as Watcher records do: ``"2024-05-01T10:15:30.123Z"``.

    Converted to UTC (naive is taken as UTC); exactly three fraction digits, sub-millisecond part
    truncated; four-digit year.
    """
    dt = _as_utc(dt)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )


# --------------------------------------------------------------------------------------------------
# Zone-aware arithmetic with java.time's rules


def _localize(local: _dt.datetime, tz: _dt.tzinfo, preferred: _dt.timedelta | None = None) -> _dt.datetime:
    """Attach ``tz`` to a naive local time as ``ZonedDateTime.ofLocal`` does.

    In an overlap keep the ``preferred`` offset when it is one of the two, else the earlier
    (summer) offset; in a gap move forward by the gap's length. Result normalised so that its
    wall time is the one Java would show.
    """
    local = local.replace(tzinfo=None)
    if preferred is not None:
        for fold in (0, 1):
            candidate = local.replace(tzinfo=tz, fold=fold)
            if candidate.utcoffset() == preferred and _wall(candidate) == local:
                return candidate
    # fold=0: earlier offset in an overlap; in a gap the offset before the transition, which is
    # the same instant as Java's "shift forward by the gap".
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


def _wall(aware: _dt.datetime) -> _dt.datetime:
    """The wall-clock time ``aware`` really shows in its zone (resolves gap times)."""
    tz = aware.tzinfo
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)


def _plus_months(dt: _dt.datetime, months: int) -> _dt.datetime:
    """Calendar month arithmetic in dt's zone, clamping the day (Jan 31 + 1M = Feb 28/29)."""
    index = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(dt.day, calendar.monthrange(year, month)[1])
    local = dt.replace(tzinfo=None).replace(year=year, month=month, day=day)
    return _localize(local, dt.tzinfo, dt.utcoffset())


def _plus_local(dt: _dt.datetime, delta: _dt.timedelta) -> _dt.datetime:
    """Add days/weeks to the local date-time (``plusDays``): same wall time, offset re-resolved."""
    return _localize(dt.replace(tzinfo=None) + delta, dt.tzinfo, dt.utcoffset())


def _plus_instant(dt: _dt.datetime, delta: _dt.timedelta) -> _dt.datetime:
    """Add hours/minutes/seconds on the timeline (``plusHours``): elapsed time, across DST."""
    return (dt.astimezone(UTC) + delta).astimezone(dt.tzinfo)


def _with_local(dt: _dt.datetime, **fields: int) -> _dt.datetime:
    """Set local fields (``with(LocalTime.MIN)``, ``withDayOfMonth(1)``…), keeping the offset if valid."""
    return _localize(dt.replace(tzinfo=None).replace(**fields), dt.tzinfo, dt.utcoffset())


_MIDNIGHT = {"hour": 0, "minute": 0, "second": 0, "microsecond": 0}


def _apply(dt: _dt.datetime, unit: str, round_: bool, sign: int, num: int, round_up: bool) -> _dt.datetime:
    """One date math step, JavaDateMathParser.parseMath's switch."""
    if unit == "y":
        if round_:
            dt = _with_local(dt, month=1, day=1, **_MIDNIGHT)
            return _plus_months(dt, 12) if round_up else dt
        return _plus_months(dt, 12 * sign * num)
    if unit == "M":
        if round_:
            dt = _with_local(dt, day=1, **_MIDNIGHT)
            return _plus_months(dt, 1) if round_up else dt
        return _plus_months(dt, sign * num)
    if unit == "w":
        if round_:
            monday = dt.replace(tzinfo=None) - _dt.timedelta(days=dt.weekday())
            dt = _localize(monday.replace(**_MIDNIGHT), dt.tzinfo, dt.utcoffset())
            return _plus_local(dt, _dt.timedelta(weeks=1)) if round_up else dt
        return _plus_local(dt, _dt.timedelta(weeks=sign * num))
    if unit == "d":
        if round_:
            dt = _with_local(dt, **_MIDNIGHT)
            return _plus_local(dt, _dt.timedelta(days=1)) if round_up else dt
        return _plus_local(dt, _dt.timedelta(days=sign * num))
    if unit in ("h", "H"):
        if round_:
            dt = _with_local(dt, minute=0, second=0, microsecond=0)
            return _plus_instant(dt, _dt.timedelta(hours=1)) if round_up else dt
        return _plus_instant(dt, _dt.timedelta(hours=sign * num))
    if unit == "m":
        if round_:
            dt = _with_local(dt, second=0, microsecond=0)
            return _plus_instant(dt, _dt.timedelta(minutes=1)) if round_up else dt
        return _plus_instant(dt, _dt.timedelta(minutes=sign * num))
    # unit == "s"
    if round_:
        dt = _with_local(dt, microsecond=0)
        return _plus_instant(dt, _dt.timedelta(seconds=1)) if round_up else dt
    return _plus_instant(dt, _dt.timedelta(seconds=sign * num))


def _apply_math(expression: str, math_text: str, anchor: _dt.datetime, round_up: bool, tz: _dt.tzinfo) -> _dt.datetime:
    dt = anchor.astimezone(tz)
    i, n = 0, len(math_text)
    while i < n:
        op = math_text[i]
        i += 1
        if op not in "+-/":
            raise DateMathError(expression, f'operator "{op}" is not supported (expected +, - or / before a unit)')
        round_ = op == "/"
        sign = -1 if op == "-" else 1
        if i >= n:
            raise DateMathError(expression, f'"{op}" at the end is not followed by a unit ({DATE_MATH_UNITS})')
        start = i
        while i < n and "0" <= math_text[i] <= "9":
            i += 1
        if i >= n:
            raise DateMathError(expression, f'"{math_text[start - 1:]}" has no unit ({DATE_MATH_UNITS})')
        digits = math_text[start:i]
        num = int(digits) if digits else 1
        if num > 2**31 - 1:
            raise DateMathError(expression, f'the number "{digits}" is too large')
        if round_ and digits:
            raise DateMathError(expression, f'rounding takes a unit without a number, such as /d, found "/{digits}"')
        unit = math_text[i]
        i += 1
        if unit not in "yMwdhHms":
            raise DateMathError(expression, f'unit "{unit}" is not supported (units {DATE_MATH_UNITS})')
        try:
            dt = _apply(dt, unit, round_, sign, num, round_up)
            if round_ and round_up:
                dt = _plus_instant(dt, _dt.timedelta(milliseconds=-1))
        except OverflowError:
            raise DateMathError(expression, "the result is out of range") from None
    return dt.astimezone(UTC)


def resolve(
    expression: str,
    now: _dt.datetime,
    *,
    round_up: bool = False,
    tz: _dt.tzinfo | str = UTC,
) -> _dt.datetime:
    """Resolve an Elasticsearch date math expression against ``now``.

    ``expression`` is ``now`` or an anchor date followed by ``||``, then any number of steps
    ``+<n><unit>``, ``-<n><unit>`` (``n`` defaults to 1) or ``/<unit>`` (rounding), units ``y`` year,
    ``M`` month, ``w`` week, ``d`` day, ``h``/``H`` hour, ``m`` minute, ``s`` second. Examples:
    ``"now"``, ``"now-5m"``, ``"now+1h/d"``, ``"now/M"``, ``"2024-05-01T00:00:00Z||+1M/d"``. An
    expression without ``now`` or ``||`` is a plain date (see :func:`parse_instant` for the format).
    No blanks are allowed (as in Elasticsearch).

    ``now`` (a datetime; naive is taken as UTC) is truncated to the millisecond first, as
    Elasticsearch's clock is. Calendar steps (``y M w d``) and rounding work on the local date-time
    in ``tz`` (a tzinfo or an IANA name; default UTC): months and years clamp the day
    (Jan 31 ``+1M`` = Feb 28/29), days keep the wall time across DST; ``h m s`` steps add elapsed
    time. Rounding goes **down** (start of the unit; weeks start on Monday) unless ``round_up``,
    which gives the last millisecond of the unit (Elasticsearch's ``lte``/``gt`` behaviour); for a
    plain date ``round_up`` fills missing components with month 1, day 1, 23:59:59.999, as
    Elasticsearch does. An anchor date with its own offset is read in that offset, otherwise in ``tz``.

    Returns an aware UTC datetime. Raises :class:`DateMathError` (a ValueError) for an unknown
    operator or unit, a missing unit, a number after ``/``, an anchor that is not a date, or a result
    out of range; ValueError if ``now`` is not a datetime or ``tz`` is unknown.

    Source: Elasticsearch reference, common options, "Date math"; JavaDateMathParser.java.
    """
    if not isinstance(expression, str):
        raise DateMathError(str(expression), "date math must be a string")
    if not isinstance(now, _dt.datetime):
        raise ValueError(f"now must be a datetime, found {type(now).__name__}")
    if isinstance(tz, str):
        try:
            tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone "{tz}"') from None
    now = _as_utc(now)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)

    if expression.startswith("now"):
        anchor, math_text = now, expression[3:]
    else:
        index = expression.find("||")
        date_text = expression if index == -1 else expression[:index]
        if not date_text:
            raise DateMathError(expression, 'the date before "||" is empty')
        try:
            anchor = _parse_es_date(date_text, tz, round_up=round_up and index == -1)
        except OverflowError:
            raise DateMathError(expression, "the date is out of range") from None
        except ValueError as error:
            raise DateMathError(expression, f'"{date_text}" is not {EXPECTED_DATE} ({error})') from None
        if anchor is None:
            raise DateMathError(expression, f'"{date_text}" is not {EXPECTED_DATE}')
        if index == -1:
            return anchor
        math_text = expression[index + 2:]
    return _apply_math(expression, math_text, anchor, round_up, tz)
