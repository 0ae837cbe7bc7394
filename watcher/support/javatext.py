"""How Java prints values, for Watcher compatibility: ``Double.toString``, ``ZonedDateTime.toString``
and ``String.valueOf`` of the objects Watcher holds (maps ``{k=v}``, lists ``[a, b]``).

Used by Mustache (``{{x}}`` output) and by the lenient compare (a string compared with a number
compares the number's Java text). Semantics: the JDK's Double.toString and ZonedDateTime.toString.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from watcher.errors import WatcherError


class SelfReferenceError(WatcherError, ValueError):
    """A map or list contains itself (Java would recurse forever)."""


def java_double(value: float) -> str:
    """``Double.toString``: ``3.0``, ``0.001``, ``1.0E7``, ``1.5E-4``, ``NaN``, ``-Infinity``.

    Shortest round-tripping digits (Python's ``repr``), plain notation inside [1e-3, 1e7), ``E``
    notation outside it.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    decimal = Decimal(repr(abs(value))).as_tuple()
    exponent = len(decimal.digits) + decimal.exponent - 1  # scientific exponent of the first digit
    digits = "".join(map(str, decimal.digits)).rstrip("0") or "0"
    if 1e-3 <= abs(value) < 1e7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1:] or "0"
        else:
            whole, fraction = "0", "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{fraction}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def java_datetime(value: _dt.datetime) -> str:
    """``ZonedDateTime.toString``: ``2024-05-01T10:15Z``, ``…T10:15:30Z``, ``…T10:15:30.123Z``,
    ``…T10:15:30.123456Z``; seconds and fraction only when non-zero; a non-UTC value keeps its
    offset (and ``[Zone/Id]`` for named zones). A naive value is taken as UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        text += f":{value.second:02d}"
        if value.microsecond:
            micros = value.microsecond
            text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    offset = value.utcoffset()
    if not offset:
        text += "Z"
    else:
        seconds = int(offset.total_seconds())
        sign = "-" if seconds < 0 else "+"
        hours, rest = divmod(abs(seconds), 3600)
        minutes, secs = divmod(rest, 60)
        text += f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
    if isinstance(value.tzinfo, ZoneInfo):
        text += f"[{value.tzinfo.key}]"
    return text


def java_string(value: Any, *, utc: bool = False) -> str:
    """``String.valueOf`` of the Java object Watcher would hold for ``value``.

    ``None`` → ``null``, ``True`` → ``true``, ``3`` → ``3``, ``3.0`` → ``3.0``, ``1e20`` → ``1.0E20``,
    mappings → ``{k=v, k2=v2}`` and lists/tuples/sets → ``[a, b]`` (recursive, insertion order),
    datetimes as :func:`java_datetime` (converted to UTC first when ``utc``), dates ISO.

    Raises:
        SelfReferenceError: a map or list contains itself.
    """
    return _java_string(value, (), utc)


def _java_string(value: Any, path: tuple[int, ...], utc: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, _dt.datetime):
        if utc and value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc)
        return java_datetime(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in path:
            raise SelfReferenceError("Iterable object is self-referencing itself")
        path = (*path, id(value))
        if isinstance(value, Mapping):
            items = (f"{_java_string(k, path, utc)}={_java_string(v, path, utc)}" for k, v in value.items())
            return "{" + ", ".join(items) + "}"
        return "[" + ", ".join(_java_string(item, path, utc) for item in value) + "]"
    return str(value)
