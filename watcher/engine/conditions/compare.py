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

Ours adds (docs/correctness.md#hit-totals-as-objects): a total-hits object (``hits.total`` with
``rest_total_hits_as_int: false``) is compared by its count, listed under ``total_hits``; when its
relation is ``gte`` and the comparison cannot be decided, ``met`` is false and ``unsure`` says why::

    {"type": "compare", "status": "success", "met": false,
     "compare": {"resolved_values": {"ctx.payload.hits.total": {"value": 10, "relation": "gte"}},
                 "total_hits": {"ctx.payload.hits.total": {"compared": 10, "lower_bound": true}},
                 "unsure": "ctx.payload.hits.total counts at least 10 hits …"}}

Source: CompareCondition.java, AbstractCompareCondition.java (x-pack watcher).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.support import datemath
from watcher.support.compare import OPERATORS, STRUCTURE_OPERATORS, Decision, decide, resolve_compare_value
from watcher.support.paths import resolve_path

TYPE = "compare"

log = logging.getLogger("watcher.engine")

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

    Date math ``now`` is ``run.services.clock()``. A total-hits object (``{"value", "relation"}``)
    is compared by its count; the result then has ``total_hits: {<path>: {"compared": n,
    "lower_bound": bool}}``, and when a lower-bound count cannot decide the comparison, ``met`` is
    false, ``unsure`` gives the reason and a WARNING is logged on ``watcher.engine``
    (docs/correctness.md#hit-totals-as-objects). Raises DateMathError (a ValueError) only for
    invalid date math, which :func:`parse` already rejects.
    """
    actual = resolve_path(model, config.path)
    expected, resolved_key = resolve_compare_value(config.value, model, run.services.clock())
    resolved = {config.path: result_value(actual)}
    if resolved_key is not None:
        resolved[resolved_key] = result_value(expected)
    decision = decide(config.op, actual, expected, count_right=resolved_key is not None)
    body: dict[str, Any] = {"resolved_values": resolved}
    names = {"left": config.path, "right": resolved_key if resolved_key is not None else json_text(expected)}
    note_totals(body, [(decision, names)])
    if decision.met is None:
        body["unsure"] = unsure_reason(config.op, decision, names)
        warn_unsure(run, TYPE, body["unsure"])
    return {"type": TYPE, "status": "success", "met": decision.met is True, TYPE: body}


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


def note_totals(body: dict, decisions: list[tuple[Decision, dict[str, str]]]) -> None:
    """Add ``total_hits: {<path>: {"compared": count, "lower_bound": bool}}`` to a result body for
    every side of ``decisions`` that was a total-hits object; ``names`` maps ``"left"``/``"right"``
    to the path shown."""
    totals = {}
    for decision, names in decisions:
        for side in decision.counted:
            totals[names[side]] = {"compared": decision.left if side == "left" else decision.right,
                                   "lower_bound": side in decision.lower_bound}
    if totals:
        body["total_hits"] = totals


def unsure_reason(op: str, decision: Decision, names: dict[str, str], suffix: str = "") -> str:
    """Why ``decision`` (undecided) could not be made, and how to make it decidable. ``names`` maps
    ``"left"``/``"right"`` to how each side is shown (a path, or the configured value's JSON)."""
    side = decision.lower_bound[0]
    count = decision.left if side == "left" else decision.right
    other = decision.right if side == "left" else decision.left
    return (f"{names[side]} counts at least {count} hits, not an exact number (hits.total relation gte: the "
            f"search stopped counting at track_total_hits), so '{names['left']} {op} {names['right']}' cannot be "
            f"decided{suffix}; reported as not met. Set track_total_hits to true, or to a number above "
            f"{json_text(other)}, in the search body.")


def warn_unsure(run: Any, condition_type: str, reason: str) -> None:
    """One WARNING on ``watcher.engine`` for a condition that could not be decided."""
    watch = getattr(getattr(run, "watch", None), "id", None)
    log.warning("watch [%s] condition %s cannot be decided: %s", watch, condition_type, reason)


def json_text(value: Any) -> str:
    """A compared value as text: JSON for numbers, strings, null and booleans."""
    try:
        return json.dumps(result_value(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
