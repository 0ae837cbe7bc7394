"""``compare``: compare one value of the execution context with a configured value.

Definition (docs/semantics.md#compare-condition)::

    {"compare": {"ctx.payload.hits.total": {"gte": 5}}}

Exactly one path (a dot path into ``{"ctx": …}``, so it starts with ``ctx.``; numeric segments
index arrays) and exactly one operator: ``eq``, ``not_eq``, ``gt``, ``gte``, ``lt``, ``lte``
(Watcher also accepts them in any letter case). ``eq``/``not_eq`` take any JSON value; the ordering
operators need a scalar (number, string, boolean) or null. The configured value may be date math
``"<{now-5m}>"`` (against the run's clock, UTC, rounding down) or ``"{{ctx.some.path}}"`` (the value
there); the comparison is lenient and typed by the configured value (docs/semantics.md#lenient-comparison and
#date-math-and-now; :mod:`watcher.support.compare`).

Result::

    {"type": "compare", "status": "success", "met": true,
     "compare": {"resolved_values": {"ctx.payload.hits.total": 7, "now-5m": "2024-05-01T10:00:00.000Z"}}}

Source: CompareCondition.java, AbstractCompareCondition.java (x-pack watcher).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.support import datemath
from watcher.support.compare import OPERATORS, STRUCTURE_OPERATORS, compare_op, resolve_compare_value
from watcher.support.paths import resolve_path

TYPE = "compare"

_DATE_MATH = re.compile(r"<\{([^\n\r\u0085\u2028\u2029]+)\}>")


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """``path`` (``ctx.…``), ``op`` (lower case, one of OPERATORS), ``value`` (as configured)."""

    path: str
    op: str
    value: Any


def parse(reader: Reader, body: Any, path) -> CompareConfig | None:
    """Validate ``{"<ctx path>": {"<op>": value}}``; problems go to ``reader``."""
    found = parse_path_and_body(reader, body, path, example="{ctx.payload.hits.total: {gte: 5}}")
    if found is None:
        return None
    field, spec = found
    spec_path = (*path, field)
    if reader.mapping(spec_path, spec, "an operator and value such as {gte: 5}") is None:
        return None
    if len(spec) != 1:
        reader.problem(spec_path, f"expected exactly one operator (one of: {', '.join(OPERATORS)}), "
                                  f"found {len(spec)}" + (f": {', '.join(map(str, spec))}" if spec else ""))
        return None
    op_key = next(iter(spec))
    op = parse_operator(reader, spec_path, op_key)
    if op is None:
        return None
    value = plain(spec[op_key])
    if not check_value(reader, (*spec_path, op_key), op, value):
        return None
    return CompareConfig(path=field, op=op, value=value)


def execute(config: CompareConfig, run: Any, model: dict) -> dict:
    """Compare the value at ``config.path`` in ``model`` with the configured value.

    Date math ``now`` is ``run.services.clock()``. Raises DateMathError (a ValueError) only for
    invalid date math, which :func:`parse` already rejects.
    """
    actual = resolve_path(model, config.path)
    expected, resolved_key = resolve_compare_value(config.value, model, run.services.clock())
    resolved = {config.path: result_value(actual)}
    if resolved_key is not None:
        resolved[resolved_key] = result_value(expected)
    met = compare_op(config.op, actual, expected)
    return {"type": TYPE, "status": "success", "met": met, TYPE: {"resolved_values": resolved}}


# --------------------------------------------------------------------------------------------------
# Shared with array_compare


def parse_path_and_body(reader: Reader, body: Any, path, *, example: str) -> tuple[str, Any] | None:
    """The single ``{"<ctx path>": spec}`` entry of a compare/array_compare body, or None."""
    if reader.mapping(path, body, f"a mapping such as {example}") is None:
        return None
    if len(body) != 1:
        keys = ", ".join(map(str, body)) if body else "none"
        reader.problem(path, f"expected exactly one path such as ctx.payload.hits.total, found {len(body)}: {keys}")
        return None
    field = next(iter(body))
    if not isinstance(field, str) or not field.startswith("ctx."):
        reader.problem((*path, field), f"expected a path starting with 'ctx.' such as ctx.payload.hits.total, "
                                       f"found {field!r}")
        return None
    return field, body[field]


def parse_operator(reader: Reader, path, key: Any, also: tuple[str, ...] = ()) -> str | None:
    """The operator named by ``key`` (any letter case, as Watcher's ``Op.resolve``), or None.

    ``also`` lists other keys allowed beside the operator (offered in the "did you mean" hint).
    """
    op = key.lower() if isinstance(key, str) else key
    if op not in OPERATORS:
        what = "key" if also else "comparison operator"
        reader.unknown_key(path, str(key), (*also, *OPERATORS), what=what)
        return None
    return op


def check_value(reader: Reader, path, op: str, value: Any) -> bool:
    """Ordering operators need a scalar or null; date math must be valid. Records a problem if not."""
    if op not in STRUCTURE_OPERATORS and isinstance(value, (Mapping, list)):
        reader.expected(path, f"a number, string, boolean or null for '{op}' (only eq and not_eq compare "
                              "objects and arrays)", value)
        return False
    if isinstance(value, str):
        match = _DATE_MATH.fullmatch(value)
        if match:
            try:
                datemath.resolve(match.group(1), dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
            except ValueError as error:
                reader.problem(path, str(error), at_value=True)
                return False
    return True


def result_value(value: Any) -> Any:
    """A value as Watcher's result JSON shows it: datetimes as ``2024-05-01T10:00:00.000Z``
    (:func:`watcher.support.datemath.format_iso_millis`), inside mappings and lists too."""
    if isinstance(value, dt.datetime):
        return datemath.format_iso_millis(value)
    if isinstance(value, Mapping):
        return {key: result_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [result_value(item) for item in value]
    return value
