"""Durations: Watcher time values, interval schedules and the rule file's ``window``/``delay``/``schedule``.

Three parsers, because the three sources accept different things:

* :func:`parse_time_value` — Watcher/Elasticsearch time values (``throttle_period``, timeouts):
  fractional numbers, units ``nanos micros ms s m h d w``, case-insensitive, bare ``"0"``/``"-1"``.
* :func:`parse_interval` — ``trigger.schedule.interval``: whole numbers, units ``s m h d w`` only
  (case-sensitive), at least one second.
* :func:`parse_rule_duration` — our YAML rule format: ``5m`` or ``{minutes: 5}``.

All three return :class:`datetime.timedelta` (resolution 1 µs) and raise :class:`DurationError`, a
:class:`ValueError` whose message says what was expected and what was found.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from watcher.errors import DefinitionProblem

__all__ = [
    "DurationError",
    "format_duration",
    "parse_interval",
    "parse_rule_duration",
    "parse_time_value",
    "to_millis",
]

EXPECTED_TIME_VALUE = "a duration such as 30s, 5m, 1.5h (units ms, s, m, h, d, w)"
EXPECTED_INTERVAL = "an interval such as 30s, 5m, 1h (a whole number and a unit s, m, h, d, w; at least 1s)"
EXPECTED_RULE_DURATION = (
    "a duration such as 30s, 5m, 1h (a whole number and a unit s, m, h, d, w) "
    "or a mapping such as {minutes: 5} (keys weeks, days, hours, minutes, seconds)"
)

# Unit sizes in microseconds (timedelta's resolution).
_US_PER_UNIT: dict[str, Decimal] = {
    "nanos": Decimal("0.001"),
    "micros": Decimal(1),
    "ms": Decimal(1_000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
    "d": Decimal(86_400_000_000),
    "w": Decimal(604_800_000_000),
}
_WHOLE_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}  # in seconds
_RULE_KEYS = {"weeks": 604_800, "days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}

# A time value: optional sign, decimal number (Java's Double.parseDouble accepts an exponent too),
# optional blanks, unit letters. Matched against the lower-cased, stripped text.
_TIME_VALUE_RE = re.compile(r"(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(?P<unit>[a-z]*)", re.ASCII)
_WHOLE_RE = re.compile(r"(?P<num>\d+)(?P<unit>[A-Za-z]*)", re.ASCII)
_NUMBER_UNIT_RE = re.compile(r"(?P<num>[+-]?\d*\.?\d*)\s*(?P<unit>[A-Za-z]*)", re.ASCII)


class DurationError(DefinitionProblem, ValueError):
    """A duration could not be parsed.

    Attributes: ``field`` (the setting name given by the caller, may be ``""``), ``value`` (what was
    found, unchanged) and ``reason`` (the specific problem, may be ``""``). ``str(error)`` is the full
    message: ``"<field>: expected <what>, found <value> (<reason>)"``.
    """

    def __init__(self, expected: str, value: Any, *, field: str = "", reason: str = "") -> None:
        self.field = field
        self.value = value
        self.reason = reason
        message = f"expected {expected}, found {_show(value)}"
        if reason:
            message += f" ({reason})"
        if field:
            message = f"{field}: {message}"
        super().__init__(message)


def _show(value: Any) -> str:
    """Render a found value for an error message: strings in double quotes, JSON-ish otherwise."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _decimal(number: int | float) -> Decimal:
    """The decimal a user wrote: ``0.3`` → ``Decimal("0.3")``, not the binary float's expansion."""
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def _loose_reason(text: str, *, strip: bool) -> str:
    """Why a number-and-unit string that failed the strict pattern is wrong ("" if it is not that shape)."""
    candidate = text.strip() if strip else text
    loose = _NUMBER_UNIT_RE.fullmatch(candidate.strip())
    if loose is None or loose["num"] in ("", "+", "-", "."):
        return ""
    if loose["num"].startswith("-"):
        return "negative durations are not allowed"
    if any(ch.isspace() for ch in candidate):
        return "blanks are not allowed"
    return "the number must be a whole number"


def _from_micros(micros: Decimal | int) -> _dt.timedelta:
    """Whole microseconds (truncated toward zero) as a timedelta."""
    return _dt.timedelta(microseconds=int(micros))


def parse_time_value(text: str | int | float, *, field: str = "") -> _dt.timedelta | None:
    """Parse a Watcher/Elasticsearch time value such as ``throttle_period`` or a timeout.

    Accepts:

    * a string ``<number><unit>``: the number may be fractional (``"1.5h"``) and may carry a Java
      style exponent (``"1e3ms"``); blanks around it are ignored; units ``nanos``, ``micros``, ``ms``,
      ``s``, ``m``, ``h``, ``d``, ``w``, case-insensitive (``"5M"`` is five minutes);
    * the unit-less strings ``"0"`` (zero) and ``"-1"``;
    * an ``int`` or ``float``: a number of **milliseconds** (``throttle_period_in_millis``).

    Returns a :class:`datetime.timedelta`, truncated toward zero to whole microseconds (Watcher
    itself keeps whole milliseconds; :func:`to_millis` gives that value). Returns ``None`` for
    ``"-1"`` / ``-1``, Elasticsearch's "no value" marker (``TimeValue.MINUS_ONE``); callers decide
    what "unset" means for their setting.

    Raises :class:`DurationError` for any other negative value ("Time value cannot be negative" in
    Watcher), a missing or unknown unit, a non-numeric number, NaN/infinity, booleans and other types.
    ``field`` only prefixes the message.

    Source: WatcherDateTimeUtils.parseTimeValueSupportingFractional / parseTimeValue (x-pack core),
    plus Elasticsearch TimeValue's ``nanos``/``micros`` units.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="not a string or a number")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="not a finite number")
        if text == -1:
            return None
        if text < 0:
            raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="negative durations are not allowed")
        return _from_micros(_decimal(text) * 1_000)

    lowered = text.strip().lower()
    if lowered == "-1":
        return None
    if lowered == "0":
        return _dt.timedelta(0)
    match = _TIME_VALUE_RE.fullmatch(lowered)
    if match is None:
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field)
    unit = match["unit"]
    if not unit:
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="the unit is missing")
    if unit not in _US_PER_UNIT:
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason=f'unknown unit "{unit}"')
    try:
        number = Decimal(match["num"])
    except InvalidOperation:  # pragma: no cover - the regex only lets valid decimals through
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field) from None
    if number < 0:
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="negative durations are not allowed")
    try:
        return _from_micros(number * _US_PER_UNIT[unit])
    except OverflowError:
        raise DurationError(EXPECTED_TIME_VALUE, text, field=field, reason="too large") from None


def parse_interval(text: str | int | float, *, field: str = "trigger.schedule.interval") -> _dt.timedelta:
    """Parse Watcher's ``trigger.schedule.interval``.

    Accepts a string ``<whole number><unit>`` with unit ``s``, ``m``, ``h``, ``d`` or ``w``
    (lower-case, no blanks, as Watcher's ``IntervalSchedule.Interval.parse``), or a JSON number,
    which means **seconds** (``30`` ≡ ``"30s"``; an integral float such as ``30.0`` is accepted too).
    A unit-less *string* such as ``"30"`` is rejected, as Watcher rejects it.

    Returns a :class:`datetime.timedelta` of at least one second. Raises :class:`DurationError` for
    ``ms``/``micros``/``nanos`` or any other unit, fractions (``"1.5h"``), intervals under one second
    (``"0s"``), negative numbers, booleans and other types. ``field`` only prefixes the message.

    Source: docs/semantics.md#interval-anchor;
    x-pack/plugin/watcher/.../trigger/schedule/IntervalSchedule.java.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="not a string or a number")
    if isinstance(text, float):
        if not math.isfinite(text) or not text.is_integer():
            raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="the number must be a whole number")
        text = int(text)
    if isinstance(text, int):
        if text < 1:
            raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="must be at least 1s")
        return _dt.timedelta(seconds=text)

    match = _WHOLE_RE.fullmatch(text)
    if match is None:
        reason = _loose_reason(text, strip=False).replace("durations", "intervals")
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason=reason)
    unit = match["unit"]
    if not unit:
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="the unit is missing")
    if unit in ("ms", "micros", "nanos"):
        reason = f'unit "{unit}" is not supported for intervals'
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason=reason)
    if unit not in _WHOLE_UNITS:
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason=f'unknown unit "{unit}"')
    seconds = int(match["num"]) * _WHOLE_UNITS[unit]
    if seconds < 1:
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="must be at least 1s")
    try:
        return _dt.timedelta(seconds=seconds)
    except OverflowError:
        raise DurationError(EXPECTED_INTERVAL, text, field=field, reason="too large") from None


def parse_rule_duration(
    text: str | Mapping[str, Any], *, field: str = "", allow_zero: bool = False
) -> _dt.timedelta:
    """Parse a duration of our YAML rule format (``window: 5m``, ``delay: 30s``, ``schedule: 1m``).

    Accepts a string ``<whole number><unit>`` with unit ``s``, ``m``, ``h``, ``d`` or ``w``
    (lower-case; blanks around the whole value are ignored), or a mapping of whole or fractional
    non-negative numbers under the keys ``weeks``, ``days``, ``hours``, ``minutes``, ``seconds``
    (ElastAlert's form, e.g. ``{minutes: 5}`` or ``{hours: 1, minutes: 30}``), which are summed.

    Returns a :class:`datetime.timedelta`, which must be greater than zero unless ``allow_zero`` is
    true. Raises :class:`DurationError` otherwise, and for bare numbers (the unit is required),
    ``ms``, unknown units or keys, an empty mapping, negative or non-numeric values, booleans.
    ``field`` only prefixes the message (e.g. ``"window"``).

    Source: this project's rule format (docs/rules), modelled on ElastAlert2's ``timeframe`` mapping.
    """
    if isinstance(text, Mapping):
        return _parse_rule_mapping(text, field=field, allow_zero=allow_zero)
    if not isinstance(text, str):
        reason = "the unit is missing" if isinstance(text, (int, float)) and not isinstance(text, bool) else ""
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason=reason or "not a string or a mapping")
    stripped = text.strip()
    match = _WHOLE_RE.fullmatch(stripped)
    if match is None:
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason=_loose_reason(text, strip=True))
    unit = match["unit"]
    if not unit:
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason="the unit is missing")
    if unit in ("ms", "micros", "nanos"):
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason=f'unit "{unit}" is not supported here')
    if unit not in _WHOLE_UNITS:
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason=f'unknown unit "{unit}"')
    try:
        result = _dt.timedelta(seconds=int(match["num"]) * _WHOLE_UNITS[unit])
    except OverflowError:
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason="too large") from None
    if not result and not allow_zero:
        raise DurationError(EXPECTED_RULE_DURATION, text, field=field, reason="must be greater than zero")
    return result


def _parse_rule_mapping(value: Mapping[str, Any], *, field: str, allow_zero: bool) -> _dt.timedelta:
    if not value:
        raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason="the mapping is empty")
    total = Decimal(0)
    for key, amount in value.items():
        if key not in _RULE_KEYS:
            raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason=f'unknown key "{key}"')
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
            raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason=f'"{key}" must be a number')
        if amount < 0:
            raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason="negative durations are not allowed")
        total += _decimal(amount) * _RULE_KEYS[key] * 1_000_000
    try:
        result = _from_micros(total)
    except OverflowError:
        raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason="too large") from None
    if not result and not allow_zero:
        raise DurationError(EXPECTED_RULE_DURATION, value, field=field, reason="must be greater than zero")
    return result


_FORMAT_UNITS = (  # largest first; sizes in microseconds
    ("w", 604_800_000_000),
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("micros", 1),
)


def _total_micros(td: _dt.timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def format_duration(td: _dt.timedelta) -> str:
    """Format a timedelta in the shortest exact form: a whole number and the largest unit that divides it.

    ``timedelta(minutes=5)`` → ``"5m"``, ``timedelta(seconds=90)`` → ``"90s"``,
    ``timedelta(milliseconds=1500)`` → ``"1500ms"``, ``timedelta(days=14)`` → ``"2w"``; a
    sub-millisecond remainder gives ``micros`` (``"1500micros"``); zero gives ``"0s"``; a negative
    duration gets a leading ``-``. The result parses back with :func:`parse_time_value` (and, for
    whole seconds or more, :func:`parse_interval` / :func:`parse_rule_duration`).
    """
    micros = _total_micros(td)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    for unit, size in _FORMAT_UNITS:
        if micros % size == 0:
            return f"{sign}{micros // size}{unit}"
    raise AssertionError("unreachable: every duration is a whole number of microseconds")  # pragma: no cover


def to_millis(td: _dt.timedelta) -> int:
    """Whole milliseconds in ``td``, truncated toward zero (Java's ``(long)`` cast, as Watcher stores them).

    ``to_millis(timedelta(seconds=1.5))`` → ``1500``; ``to_millis(timedelta(microseconds=1999))`` → ``1``;
    ``to_millis(timedelta(microseconds=-1500))`` → ``-1``.
    """
    micros = _total_micros(td)
    return micros // 1_000 if micros >= 0 else -((-micros) // 1_000)
