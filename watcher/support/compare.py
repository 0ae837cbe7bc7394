"""Watcher's lenient comparison and the operators of the ``compare`` and ``array_compare`` conditions.

Pure functions; the conditions themselves (parsing, building ``resolved_values``, results) live in
the engine. The comparison is *driven by the configured (right-hand) value's type*: a number
compares numerically, a string lexicographically, a date as an instant, anything else only for
equality. Values that cannot be compared are "incomparable" (``None``), which the two conditions
treat differently: in ``compare`` only ``not_eq`` is then true; in ``array_compare`` nothing is.

Elasticsearch's total-hits object (``{"value": 3, "relation": "eq"}``, what a search answers with
``rest_total_hits_as_int: false``) is compared by its count, not as an object (:func:`decide`);
with ``relation: gte`` the count is a lower bound and some comparisons cannot be decided
(docs/correctness.md#hit-totals-as-objects). Watcher compares the object itself, so ``gt 0`` is
never met there.

Source: docs/semantics.md#compare-condition and docs/semantics.md#array-compare-condition;
x-pack/plugin/watcher/.../condition/{LenientCompare,CompareCondition,ArrayCompareCondition,
AbstractCompareCondition}.java.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from watcher.support import datemath
from watcher.support.javatext import java_string
from watcher.support.paths import resolve_path

__all__ = [
    "OPERATORS",
    "QUANTIFIERS",
    "STRUCTURE_OPERATORS",
    "Decision",
    "array_compare_op",
    "compare_op",
    "decide",
    "lenient_compare",
    "quantified",
    "quantified_decision",
    "resolve_compare_value",
    "total_hits",
]

OPERATORS = ("eq", "not_eq", "gt", "gte", "lt", "lte")
"""The comparison operators of ``compare`` and ``array_compare``."""

STRUCTURE_OPERATORS = ("eq", "not_eq")
"""Operators whose configured value may be an object or an array (the others need a scalar or null)."""

QUANTIFIERS = ("some", "all")
"""``array_compare`` quantifiers; ``some`` is the default. There is no ``any``."""

_TESTS = {
    "eq": lambda c: c == 0,
    "not_eq": lambda c: c != 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}

# Java's "." matches anything but a line terminator; matches() requires the whole string.
_JAVA_DOT = "[^\n\r\u0085\u2028\u2029]"
_DATE_MATH_PATTERN = re.compile(rf"<\{{({_JAVA_DOT}+)\}}>")
_PATH_PATTERN = re.compile(rf"\{{\{{({_JAVA_DOT}+)\}}\}}")

# java.lang.Double.valueOf's grammar (FloatingDecimal.readJavaFormatString), ASCII digits.
_JAVA_DECIMAL = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)")
_JAVA_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?")
_JAVA_TRIM = "".join(chr(code) for code in range(0x21))  # String.trim(): every char <= U+0020


# --------------------------------------------------------------------------------------------------
# Java-flavoured helpers


def _is_number(value: Any) -> bool:
    """A JSON number: int, float or Decimal — never a bool (Java's Boolean is not a Number)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _is_nan(value: Any) -> bool:
    return (isinstance(value, float) and math.isnan(value)) or (isinstance(value, Decimal) and value.is_nan())


def _to_float(value: int | float | Decimal) -> float:
    """``Number.doubleValue()``: huge integers become ±infinity instead of raising."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _java_parse_double(text: str) -> float | None:
    """``Double.valueOf(text)``, or ``None`` where Java throws NumberFormatException."""
    text = text.strip(_JAVA_TRIM)
    if _JAVA_DECIMAL.fullmatch(text):
        body = text[:-1] if text[-1] in "fFdD" else text
        return float(body)
    if _JAVA_HEX.fullmatch(text):
        body = text[:-1] if text[-1] in "fFdD" else text
        try:
            return float.fromhex(body)
        except OverflowError:
            return -math.inf if body.startswith("-") else math.inf
    return None


def _utf16_compare(left: str, right: str) -> int:
    """``String.compareTo``'s order (UTF-16 code units), as -1/0/1."""
    a = left.encode("utf-16-be", "surrogatepass")
    b = right.encode("utf-16-be", "surrogatepass")
    return (a > b) - (a < b)


def _sign(left: float, right: float) -> int:
    return (left > right) - (left < right)


def _deep_equal(left: Any, right: Any) -> bool:
    """Structural equality for JSON-like values (``Objects.equals`` as this project defines it).

    Numbers compare by value (``5 == 5.0``), booleans only equal booleans (``True != 1``), strings
    only strings, mappings by keys and values, lists/tuples element-wise, datetimes as instants
    (naive taken as UTC). NaN equals nothing.
    """
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) or _is_number(right):
        return _is_number(left) and _is_number(right) and left == right
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if isinstance(left, _dt.datetime) or isinstance(right, _dt.datetime):
        return (isinstance(left, _dt.datetime) and isinstance(right, _dt.datetime)
                and datemath.parse_instant(left) == datemath.parse_instant(right))
    if isinstance(left, Mapping) or isinstance(right, Mapping):
        return (isinstance(left, Mapping) and isinstance(right, Mapping) and len(left) == len(right)
                and all(key in right and _deep_equal(value, right[key]) for key, value in left.items()))
    if isinstance(left, (list, tuple)) or isinstance(right, (list, tuple)):
        return (isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)) and len(left) == len(right)
                and all(_deep_equal(a, b) for a, b in zip(left, right)))
    return type(left) is type(right) and left == right


# --------------------------------------------------------------------------------------------------
# Public API


def lenient_compare(left: Any, right: Any) -> int | None:
    """Compare a resolved value (``left``) with a configured one (``right``) as Watcher's LenientCompare.

    Returns ``-1``, ``0`` or ``1`` (left less than, equal to, greater than right) or ``None`` when
    the two are incomparable. In order:

    1. structurally equal values → ``0`` (numbers by value, ``5 == 5.0``; ``True`` ≠ ``1``; deep for
       mappings and lists; ``None`` equals ``None``);
    2. either side ``None`` → ``None``;
    3. either side NaN → ``None``;
    4. ``right`` a number (int/float/Decimal; **a bool is not a number**) → ``left`` as a double: a
       number as is, anything else through its Java string form and ``Double.valueOf`` (``"7"`` →
       7.0, ``" 7 "`` → 7.0, ``"1e3"`` → 1000.0, ``"7d"`` → 7.0; ``True``, ``"abc"``, ``"1_0"`` →
       ``None``); a NaN from that conversion → ``None``;
    5. ``right`` a string → ``left``'s Java string form (``3`` → ``"3"``, ``3.0`` → ``"3.0"``,
       ``True`` → ``"true"``, ``[1, 2]`` → ``"[1, 2]"``) compared lexicographically by UTF-16 code
       unit, so ``10`` vs ``"5"`` is ``-1``;
    6. ``right`` a datetime → ``left`` as an instant: a datetime, a string parsed by
       :func:`watcher.support.datemath.parse_instant` (ISO-8601 or epoch-millis text), or a number
       as epoch **milliseconds** truncated to a whole millisecond; anything else, or a parse failure
       → ``None``. Naive datetimes are taken as UTC;
    7. anything else (``right`` a bool, mapping, list…) → ``None`` — equality only.

    Never raises. Source: LenientCompare.java; docs/semantics.md#lenient-comparison.
    """
    if _deep_equal(left, right):
        return 0
    if left is None or right is None:
        return None
    if _is_nan(left) or _is_nan(right):
        return None

    if _is_number(right):
        if _is_number(left):
            number = _to_float(left)
        else:
            number = _java_parse_double(java_string(left))
            if number is None or math.isnan(number):
                return None
        return _sign(number, _to_float(right))

    if isinstance(right, str):
        return _utf16_compare(java_string(left), right)

    if isinstance(right, _dt.datetime):
        if isinstance(left, _dt.datetime):
            instant = datemath.parse_instant(left)
        elif isinstance(left, str):
            try:
                instant = datemath.parse_instant(left)
            except ValueError:
                return None
        elif _is_number(left):
            try:
                millis = int(left)  # Number.longValue(): truncation toward zero
                instant = datemath.parse_instant(millis)
            except (OverflowError, ValueError):
                return None
        else:
            return None
        right_instant = datemath.parse_instant(right)
        return (instant > right_instant) - (instant < right_instant)

    return None


def _operator(op: str) -> str:
    normalized = op.lower() if isinstance(op, str) else op
    if normalized not in _TESTS:
        raise ValueError(f'unknown comparison operator "{op}" (expected one of {", ".join(OPERATORS)})')
    return normalized


def compare_op(op: str, left: Any, right: Any) -> bool:
    """Evaluate one ``compare`` condition operator: ``left <op> right`` with :func:`lenient_compare`.

    ``op`` is one of :data:`OPERATORS` (case-insensitive, as Watcher's ``Op.resolve``). When the
    values are incomparable, ``eq``/``gt``/``gte``/``lt``/``lte`` are ``False`` and ``not_eq`` is
    ``True`` — so a missing (``None``) left value satisfies only ``not_eq``, unless ``right`` is
    ``None`` too (then ``eq`` is true: Watcher's ``{"eq": null}`` tests for a missing value).
    ``eq``/``not_eq`` compare mappings and lists deeply (``{"a": 5} == {"a": 5.0}``).

    Raises ValueError for an unknown operator. Source: CompareCondition.Op;
    docs/semantics.md#compare-condition.
    """
    name = _operator(op)
    result = lenient_compare(left, right)
    if result is None:
        return name == "not_eq"
    return _TESTS[name](result)


def array_compare_op(op: str, left: Any, right: Any) -> bool:
    """Evaluate one element of an ``array_compare`` condition: ``left <op> right``.

    Like :func:`compare_op` except that an incomparable pair is ``False`` for **every** operator,
    ``not_eq`` included (``None`` vs ``5`` is not "not equal" here).

    Raises ValueError for an unknown operator. Source: ArrayCompareCondition.Quantifier;
    docs/semantics.md#array-compare-quantifiers.
    """
    test = _TESTS[_operator(op)]
    result = lenient_compare(left, right)
    return result is not None and test(result)


def quantified(quantifier: str | None, results: Iterable[bool]) -> bool:
    """Combine per-element ``array_compare`` results with a quantifier.

    ``"some"`` (the default, also for ``None``): true if at least one result is true — an empty
    array gives ``False``. ``"all"``: true if every result is true — an empty array gives ``True``.
    Case-insensitive; stops at the first deciding element. Raises ValueError for anything else
    (notably ``"any"``, which Watcher does not have).

    Source: ArrayCompareCondition.Quantifier; docs/semantics.md#array-compare-quantifiers.
    """
    name = "some" if quantifier is None else (quantifier.lower() if isinstance(quantifier, str) else quantifier)
    if name == "some":
        return any(results)
    if name == "all":
        return all(results)
    raise ValueError(f'unknown comparison quantifier "{quantifier}" (expected some or all)')


def resolve_compare_value(configured: Any, ctx_model: Mapping[str, Any], now: _dt.datetime) -> tuple[Any, str | None]:
    """Resolve a configured compare/array_compare value before comparing.

    * A string that is exactly ``<{expr}>`` (e.g. ``"<{now-5m}>"``, ``"<{now/d}>"``) → the date math
      ``expr`` resolved in UTC against ``now`` (rounding down), returned as ``(aware UTC datetime,
      expr)``. Pass the wall clock at evaluation time as ``now`` (Watcher uses its clock, not
      ``ctx.execution_time``). Watcher records ``resolved_values[expr]`` as the formatted date:
      use :func:`watcher.support.datemath.format_iso_millis`.
    * A string that is exactly ``{{path}}`` (e.g. ``"{{ctx.payload.threshold}}"``) → the value at
      ``path`` in ``ctx_model`` (a mapping ``{"ctx": {...}}``; missing → ``None``), returned as
      ``(value, path)``. The path is used verbatim: ``"{{ ctx.x }}"`` looks up ``" ctx"`` and
      yields ``None``, as in Watcher.
    * Anything else, including strings that merely contain such forms → ``(configured, None)``.

    Raises :class:`watcher.support.datemath.DateMathError` for invalid date math (Watcher fails
    the condition). Source: AbstractCompareCondition.resolveConfiguredValue;
    docs/semantics.md#compare-condition.
    """
    if isinstance(configured, str):
        match = _DATE_MATH_PATTERN.fullmatch(configured)
        if match:
            expression = match.group(1)
            return datemath.resolve(expression, now), expression
        match = _PATH_PATTERN.fullmatch(configured)
        if match:
            path = match.group(1)
            return resolve_path(ctx_model, path), path
    return configured, None


# --------------------------------------------------------------------------------------------------
# Total-hits objects (docs/correctness.md#hit-totals-as-objects)

TOTAL_HITS_RELATIONS = ("eq", "gte")
"""``hits.total.relation`` values: ``eq`` (an exact count) and ``gte`` (a lower bound)."""


def total_hits(value: Any) -> tuple[int, bool] | None:
    """``(count, exact)`` when ``value`` is Elasticsearch's total-hits object, else None.

    The object is a mapping of exactly ``value`` (a whole number ≥ 0, not a bool) and ``relation``
    (``"eq"``: the count is exact; ``"gte"``: the search stopped counting at ``track_total_hits``
    and the true count is at least ``value``). ``{"value": 3, "relation": "eq"}`` → ``(3, True)``;
    ``{"value": 10, "relation": "gte"}`` → ``(10, False)``; ``7`` or ``{"value": 3}`` → None.
    Source: Elasticsearch's "Search API" page (``hits.total``, ``track_total_hits``).
    """
    if not isinstance(value, Mapping) or len(value) != 2 or set(value) != {"value", "relation"}:
        return None
    count, relation = value["value"], value["relation"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0 or relation not in TOTAL_HITS_RELATIONS:
        return None
    return count, relation == "eq"


@dataclasses.dataclass(frozen=True)
class Decision:
    """One comparison where a side may be a total-hits object.

    Attributes:
        met: True or False when decided; None when it cannot be decided (a lower-bound count and a
            bound the count may lie on either side of).
        left, right: the values compared — a total-hits object replaced by its count.
        counted: which sides were total-hits objects compared by their count (``"left"``,
            ``"right"``).
        lower_bound: which of those counts are lower bounds (relation ``gte``).
    """

    met: bool | None
    left: Any
    right: Any
    counted: tuple[str, ...] = ()
    lower_bound: tuple[str, ...] = ()


def _interval(op: str, low: float, high: float, other: float) -> bool | None:
    """``x <op> other`` for every x in [low, high]: True/False when all agree, else None."""
    if op == "gt":
        return True if low > other else False if high <= other else None
    if op == "gte":
        return True if low >= other else False if high < other else None
    if op == "lt":
        return True if high < other else False if low >= other else None
    if op == "lte":
        return True if high <= other else False if low > other else None
    equal = True if low == high == other else False if (high < other or low > other) else None
    if op == "eq" or equal is None:
        return equal
    return not equal


_MIRROR = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte", "eq": "eq", "not_eq": "not_eq"}


def decide(op: str, left: Any, right: Any, *, array: bool = False, count_right: bool = True) -> Decision:
    """``left <op> right`` as :func:`compare_op` (``array=True``: :func:`array_compare_op`), where a
    total-hits object on either side is compared by its count.

    * A side that is a total-hits object (:func:`total_hits`) is replaced by its count, unless the
      other side is some other mapping (then ``eq``/``not_eq`` compare the two objects, as before):
      ``{"value": 3, "relation": "eq"} gt 0`` is met, and two totals compare their counts.
      ``count_right=False`` leaves the right side as it is (a value written in the definition, not
      one resolved from ``{{ctx.path}}``).
    * With relation ``gte`` the count is only a lower bound N ≥ value. Against a number the result
      holds for every possible count or is not decided: ``{"value": 10, "relation": "gte"}`` is
      ``gt 5`` (met) and not ``lt 10`` (not met), but ``gt 20``, ``lt 20``, ``eq 20`` are undecided
      (``met`` None). Against null or NaN the count does not matter (decided as usual); against
      any other value (a string, a date) it is undecided.

    Raises ValueError for an unknown operator. Source: docs/correctness.md#hit-totals-as-objects.
    """
    name = _operator(op)
    base = array_compare_op if array else compare_op
    left_total, right_total = total_hits(left), (total_hits(right) if count_right else None)
    if left_total and not right_total and isinstance(right, Mapping):
        left_total = None
    elif right_total and not left_total and isinstance(left, Mapping):
        right_total = None
    if left_total is None and right_total is None:
        return Decision(base(name, left, right), left, right)
    counted = tuple(side for side, total in (("left", left_total), ("right", right_total)) if total)
    lower = tuple(side for side, total in (("left", left_total), ("right", right_total)) if total and not total[1])
    left_value = left_total[0] if left_total else left
    right_value = right_total[0] if right_total else right
    if not lower:
        return Decision(base(name, left_value, right_value), left_value, right_value, counted)
    # A lower bound: the count is somewhere in [value, infinity).
    bounded_side, other = ("left", right_value) if "left" in lower else ("right", left_value)
    if other is None or _is_nan(other):
        return Decision(base(name, left_value, right_value), left_value, right_value, counted, lower)
    if not _is_number(other):
        return Decision(None, left_value, right_value, counted, lower)
    if len(lower) == 2:  # two lower bounds: nothing but what holds for any two counts
        return Decision(None, left_value, right_value, counted, lower)
    count = left_value if bounded_side == "left" else right_value
    if not _is_number(count):
        return Decision(None, left_value, right_value, counted, lower)
    test = name if bounded_side == "left" else _MIRROR[name]
    met = _interval(test, _to_float(count), math.inf, _to_float(other))
    return Decision(met, left_value, right_value, counted, lower)


def quantified_decision(quantifier: str | None, results: Iterable[bool | None]) -> bool | None:
    """:func:`quantified` over decided (True/False) and undecided (None) element results.

    ``"some"``: True when one element is True; else None when one is undecided; else False.
    ``"all"``: False when one element is False; else None when one is undecided; else True. So an
    undecided element matters only when no decided one settles the quantifier. Raises ValueError
    for an unknown quantifier.
    """
    name = "some" if quantifier is None else (quantifier.lower() if isinstance(quantifier, str) else quantifier)
    if name not in QUANTIFIERS:
        raise ValueError(f'unknown comparison quantifier "{quantifier}" (expected some or all)')
    settles = name == "some"   # the element result that decides the whole
    undecided = False
    for result in results:
        if result is None:
            undecided = True
        elif result is settles:
            return settles
    return None if undecided else not settles
