"""Field types shared by the rule model and the rule types' params: durations, numbers, names.

Each validator raises ``ValueError("expected …, found …")``, which the Reader reports at the value's
``file:line:column``. Kept apart from :mod:`watcher.definitions.rule` so rule type modules (imported
while the rule model is built) can use them without an import cycle.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from watcher.model.problems import Reader, describe
from watcher.model.source import plain
from watcher.support.durations import DurationError, parse_rule_duration, parse_time_value

__all__ = ["Duration", "DurationOrZero", "FieldName", "Number", "Text"]

_DURATION_SCHEMA = {
    "description": "A duration: a whole number and a unit s, m, h, d, w (30s, 5m, 1h), "
                   "or a mapping such as {minutes: 5} (keys weeks, days, hours, minutes, seconds).",
    "anyOf": [{"type": "string", "pattern": r"^\s*[0-9]+[smhdw]\s*$"},
              {"type": "object", "additionalProperties": False, "minProperties": 1,
               "properties": {k: {"type": "number", "minimum": 0}
                              for k in ("weeks", "days", "hours", "minutes", "seconds")}}],
}
def _duration(allow_zero: bool):
    def parse(value: Any) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        return parse_rule_duration(plain(value), allow_zero=allow_zero)  # DurationError is a ValueError
    return parse


Duration = Annotated[dt.timedelta, BeforeValidator(_duration(False)), WithJsonSchema(_DURATION_SCHEMA)]
"""A rule duration greater than zero (``window``)."""
DurationOrZero = Annotated[dt.timedelta, BeforeValidator(_duration(True)),
                           WithJsonSchema({**_DURATION_SCHEMA, "description": _DURATION_SCHEMA["description"] + " 0s allowed."})]
"""A rule duration that may be zero (``delay``, ``throttle``)."""


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a number, found {describe(value)}")
    return value


Number = Annotated[Any, BeforeValidator(_number), WithJsonSchema({"type": "number"})]


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, found {describe(value)}")
    return value


Text = Annotated[Any, BeforeValidator(_text), WithJsonSchema({"type": "string", "minLength": 1})]


def _field_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a field name (a non-empty string), found {describe(value)}")
    return value


FieldName = Annotated[Any, BeforeValidator(_field_name), WithJsonSchema({"type": "string", "minLength": 1})]
"""A non-empty string naming a document field."""


def parse_timeout(reader: Reader, holder: Mapping, path, human_key: str, millis_key: str,
                  default: dt.timedelta) -> dt.timedelta:
    """Read ``<human_key>`` (a time value such as ``30s``) or ``<millis_key>`` (integer ms); else ``default``."""
    if human_key in holder and millis_key in holder:
        reader.problem((*path, millis_key), f"give {human_key} or {millis_key}, not both")
        return default
    if millis_key in holder:
        millis = plain(holder[millis_key])
        if isinstance(millis, int) and not isinstance(millis, bool) and millis > 0:
            return dt.timedelta(milliseconds=millis)
        reader.expected((*path, millis_key), "a whole number of milliseconds greater than 0", millis)
    elif human_key in holder:
        try:
            parsed = parse_time_value(plain(holder[human_key]))
        except DurationError as error:
            reader.problem((*path, human_key), str(error), at_value=True)
            return default
        if parsed is None or parsed <= dt.timedelta(0):
            reader.expected((*path, human_key), "a duration greater than 0 such as 30s", holder[human_key])
            return default
        return parsed
    return default
