"""watcher.support.compare: Watcher's LenientCompare, compare / array_compare operators, value forms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from watcher.support.compare import (
    OPERATORS,
    QUANTIFIERS,
    STRUCTURE_OPERATORS,
    array_compare_op,
    compare_op,
    decide,
    lenient_compare,
    quantified,
    quantified_decision,
    resolve_compare_value,
    total_hits,
)
from watcher.support.datemath import DateMathError

UTC = timezone.utc
NAN = float("nan")
T = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T_MS = 1714557600000  # T as epoch milliseconds


def test_constants():
    assert OPERATORS == ("eq", "not_eq", "gt", "gte", "lt", "lte")
    assert STRUCTURE_OPERATORS == ("eq", "not_eq")
    assert QUANTIFIERS == ("some", "all")


# --- lenient_compare -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        # equal objects first
        (5, 5, 0),
        (5, 5.0, 0),
        ("a", "a", 0),
        (None, None, 0),                      # Objects.equals(null, null)
        (True, True, 0),
        ({"a": 5}, {"a": 5.0}, 0),            # deep, numbers by value
        ([1, [2, "x"]], [1, [2, "x"]], 0),
        ((1, 2), [1, 2], 0),
        # null on either side
        (None, 5, None),
        (5, None, None),
        (None, "x", None),
        (None, T, None),
        # NaN
        (NAN, 5, None),
        (5, NAN, None),
        (NAN, NAN, None),
        ("NaN", 5, None),                     # parses to NaN: incomparable too
        (Decimal("NaN"), 5, None),
        # right is a number: left as a double
        (10, 5, 1),
        (5, 10, -1),
        (2.5, 2, 1),
        ("10", 5, 1),                         # string coerced via Double.valueOf
        (" 7 ", 7, 0),                        # Java trims
        ("1e3", 999.5, 1),
        ("7d", 7, 0),                         # Java's double suffix
        ("+3", 3, 0),
        ("0x10p0", 16, 0),                    # Java hex float
        ("abc", 5, None),
        ("1_000", 1000, None),                # Python float() would accept this; Java does not
        ("", 0, None),
        (True, 1, None),                      # a bool is not a number ...
        (1, True, None),                      # ... on either side
        ([5], 5, None),
        (T, 5, None),
        (Decimal("2.5"), 2, 1),
        (10**400, 5, 1),                      # doubleValue() → Infinity
        # right is a string: left stringified the Java way, lexicographic
        (10, "5", -1),                        # "10" < "5"
        ("10", "5", -1),
        ("b", "a", 1),
        ("B", "a", -1),                       # upper case sorts first
        (3, "3", 0),
        (3.0, "3.0", 0),
        (3.0, "3", 1),                        # "3.0" > "3"
        (1e20, "1.0E20", 0),
        (1.5e-4, "1.5E-4", 0),
        (1e7, "1.0E7", 0),
        (0.001, "0.001", 0),
        (True, "true", 0),
        (False, "true", -1),
        ([1, 2], "[1, 2]", 0),
        ({"a": 1, "b": None}, "{a=1, b=null}", 0),
        (T, "2024-05-01T10:00Z", 0),          # ZonedDateTime.toString drops zero seconds
        (datetime(2024, 5, 1, 10, 0, 5, 123000, tzinfo=UTC), "2024-05-01T10:00:05.123Z", 0),
        ("\U0001F600", "\uFFFF", -1),         # UTF-16 code units: surrogates sort below U+FFFF
        # right is a datetime: left as an instant
        (T, T, 0),
        (T + timedelta(seconds=1), T, 1),
        (datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), T, 0),
        (datetime(2024, 5, 1, 10, 0), T, 0),                  # naive: UTC
        ("2024-05-01T10:00:00Z", T, 0),
        ("2024-05-01T10:00:00.001Z", T, 1),
        ("2024-05-01T11:59:59+02:00", T, -1),
        ("2024-05-01", T, -1),
        (str(T_MS), T, 0),                                    # epoch-millis text
        (T_MS, T, 0),                                         # number: epoch ms
        (T_MS + 1, T, 1),
        (float(T_MS) + 0.9, T, 0),                            # longValue() truncates
        ("yesterday", T, None),
        (True, T, None),
        ({"t": T_MS}, T, None),
        # right is a bool: equality only
        (True, False, None),
        ("true", True, None),
        (1, True, None),
        # right is a structure: equality only
        ({"a": 1}, {"a": 2}, None),
        ([1, 2], [1, 2, 3], None),
        ([2], [1], None),
        ({"a": True}, {"a": 1}, None),        # deep equality keeps bool apart from numbers
        ("[1, 2]", [1, 2], None),
    ],
)
def test_lenient_compare(left, right, expected):
    assert lenient_compare(left, right) == expected


# --- compare_op ------------------------------------------------------------------------------------

def ops(eq, not_eq, gt, gte, lt, lte):
    return {"eq": eq, "not_eq": not_eq, "gt": gt, "gte": gte, "lt": lt, "lte": lte}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (7, 5, ops(False, True, True, True, False, False)),
        (5, 5, ops(True, False, False, True, False, True)),
        (5, 5.0, ops(True, False, False, True, False, True)),
        (3, 5, ops(False, True, False, False, True, True)),
        ("7", 5, ops(False, True, True, True, False, False)),
        # trap: "gte": "5" is a string comparison, and "10" < "5"
        (10, "5", ops(False, True, False, False, True, True)),
        (50, "5", ops(False, True, True, True, False, False)),
        # trap: null left ⇒ only not_eq
        (None, 5, ops(False, True, False, False, False, False)),
        (None, "x", ops(False, True, False, False, False, False)),
        (None, T, ops(False, True, False, False, False, False)),
        # ... but null vs null is equal ({"eq": null} tests for a missing value)
        (None, None, ops(True, False, False, True, False, True)),
        (5, None, ops(False, True, False, False, False, False)),
        # NaN: incomparable
        (NAN, 5, ops(False, True, False, False, False, False)),
        (NAN, NAN, ops(False, True, False, False, False, False)),
        # unparseable left
        ("abc", 5, ops(False, True, False, False, False, False)),
        # datetime right, ISO string / epoch left
        ("2024-05-01T10:05:00Z", T, ops(False, True, True, True, False, False)),
        ("2024-05-01T10:00:00.000Z", T, ops(True, False, False, True, False, True)),
        (T_MS - 60_000, T, ops(False, True, False, False, True, True)),
        ("not a date", T, ops(False, True, False, False, False, False)),
        # structures: eq / not_eq, deep
        ({"a": [1, 2]}, {"a": [1, 2.0]}, ops(True, False, False, True, False, True)),
        ({"a": [1, 2]}, {"a": [2, 1]}, ops(False, True, False, False, False, False)),
        ([], [], ops(True, False, False, True, False, True)),
        # bools
        (True, True, ops(True, False, False, True, False, True)),
        (False, True, ops(False, True, False, False, False, False)),
        ("true", True, ops(False, True, False, False, False, False)),
    ],
)
def test_compare_op(left, right, expected):
    assert {op: compare_op(op, left, right) for op in OPERATORS} == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (7, 5, ops(False, True, True, True, False, False)),
        (10, "5", ops(False, True, False, False, True, True)),
        (None, None, ops(True, False, False, True, False, True)),
        # incomparable ⇒ False for every operator, not_eq included
        (None, 5, ops(False, False, False, False, False, False)),
        (NAN, 5, ops(False, False, False, False, False, False)),
        ("abc", 5, ops(False, False, False, False, False, False)),
        ("not a date", T, ops(False, False, False, False, False, False)),
        ({"a": 1}, {"a": 2}, ops(False, False, False, False, False, False)),
        ("true", True, ops(False, False, False, False, False, False)),
    ],
)
def test_array_compare_op(left, right, expected):
    assert {op: array_compare_op(op, left, right) for op in OPERATORS} == expected


def test_operators_are_case_insensitive_like_watcher():
    assert compare_op("GTE", 5, 5) is True
    assert array_compare_op("Not_Eq", 4, 5) is True


@pytest.mark.parametrize("function", [compare_op, array_compare_op])
@pytest.mark.parametrize("op", ["ge", "neq", "", "==", None])
def test_unknown_operator(function, op):
    with pytest.raises(ValueError) as caught:
        function(op, 1, 2)
    assert str(caught.value) == f'unknown comparison operator "{op}" (expected one of eq, not_eq, gt, gte, lt, lte)'


# --- quantified ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("quantifier", "results", "expected"),
    [
        ("some", [False, True, False], True),
        ("some", [False, False], False),
        ("some", [], False),
        (None, [], False),
        (None, [True], True),
        ("all", [True, True], True),
        ("all", [True, False], False),
        ("all", [], True),
        ("ALL", [], True),
        ("Some", [True], True),
    ],
)
def test_quantified(quantifier, results, expected):
    assert quantified(quantifier, results) is expected
    assert quantified(quantifier, iter(results)) is expected


@pytest.mark.parametrize("quantifier", ["any", "none", ""])
def test_quantified_unknown(quantifier):
    with pytest.raises(ValueError) as caught:
        quantified(quantifier, [True])
    assert str(caught.value) == f'unknown comparison quantifier "{quantifier}" (expected some or all)'


def test_quantified_over_array_compare_ops():
    buckets = [{"doc_count": 10}, {"doc_count": 30}, {"doc_count": None}]
    counts = [b["doc_count"] for b in buckets]
    assert quantified("some", (array_compare_op("gte", c, 25) for c in counts)) is True
    assert quantified("all", (array_compare_op("gte", c, 5) for c in counts)) is False  # None fails
    assert quantified("all", (array_compare_op("not_eq", c, 99) for c in counts)) is False


# --- resolve_compare_value -------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 10, 7, 30, 250999, tzinfo=UTC)
CTX = {"ctx": {"payload": {"threshold": 25, "hits": {"hits": [{"_id": "a"}]}, "limit": None},
               "metadata": {"name": "cpu"}}}


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("<{now}>", (datetime(2024, 5, 1, 10, 7, 30, 250000, tzinfo=UTC), "now")),
        ("<{now-5m}>", (datetime(2024, 5, 1, 10, 2, 30, 250000, tzinfo=UTC), "now-5m")),
        ("<{now/d}>", (datetime(2024, 5, 1, tzinfo=UTC), "now/d")),                   # rounds down
        ("<{now-1h/h}>", (datetime(2024, 5, 1, 9, tzinfo=UTC), "now-1h/h")),
        ("<{2024-04-01||+1M}>", (datetime(2024, 5, 1, tzinfo=UTC), "2024-04-01||+1M")),
        ("{{ctx.payload.threshold}}", (25, "ctx.payload.threshold")),
        ("{{ctx.payload.hits.hits.0._id}}", ("a", "ctx.payload.hits.hits.0._id")),
        ("{{ctx.metadata}}", ({"name": "cpu"}, "ctx.metadata")),
        ("{{ctx.payload.missing}}", (None, "ctx.payload.missing")),
        ("{{ctx.payload.limit}}", (None, "ctx.payload.limit")),
        ("{{ ctx.payload.threshold }}", (None, " ctx.payload.threshold ")),         # used verbatim
        # anything else is a literal
        ("now-5m", ("now-5m", None)),
        ("<{now-5m}> ", ("<{now-5m}> ", None)),                                      # must be exact
        ("x <{now}>", ("x <{now}>", None)),
        ("above {{ctx.payload.threshold}}", ("above {{ctx.payload.threshold}}", None)),
        ("{ctx.payload.threshold}", ("{ctx.payload.threshold}", None)),
        ("<{}>", ("<{}>", None)),
        ("{{}}", ("{{}}", None)),
        (25, (25, None)),
        (None, (None, None)),
        ({"a": 1}, ({"a": 1}, None)),
    ],
)
def test_resolve_compare_value(configured, expected):
    assert resolve_compare_value(configured, CTX, NOW) == expected


def test_resolve_compare_value_bad_date_math():
    with pytest.raises(DateMathError) as caught:
        resolve_compare_value("<{now-5x}>", CTX, NOW)
    assert str(caught.value) == 'could not resolve date math "now-5x": unit "x" is not supported (units y, M, w, d, h, H, m, s)'


def test_date_math_value_against_payload_timestamp():
    # {"compare": {"ctx.payload.last_seen": {"lt": "<{now-5m}>"}}} with a string timestamp from a search hit
    right, key = resolve_compare_value("<{now-5m}>", CTX, NOW)
    assert key == "now-5m"
    assert compare_op("lt", "2024-05-01T10:00:00.000Z", right) is True
    assert compare_op("lt", "2024-05-01T10:05:00.000Z", right) is False


# --- total-hits objects (docs/correctness.md#hit-totals-as-objects) ---------------------------------

EXACT = {"value": 3, "relation": "eq"}
AT_LEAST_10 = {"value": 10, "relation": "gte"}


@pytest.mark.parametrize(("value", "expected"), [
    (EXACT, (3, True)),
    (AT_LEAST_10, (10, False)),
    ({"value": 0, "relation": "eq"}, (0, True)),
    ({"relation": "eq", "value": 3}, (3, True)),
    (3, None),
    ({"value": 3}, None),                                   # not the object: both keys, nothing else
    ({"value": 3, "relation": "eq", "extra": 1}, None),
    ({"value": 3, "relation": "lte"}, None),
    ({"value": "3", "relation": "eq"}, None),
    ({"value": True, "relation": "eq"}, None),
    ({"value": -1, "relation": "eq"}, None),
    ({"value": 3.0, "relation": "eq"}, None),
])
def test_total_hits_recognises_elasticsearch_s_object(value, expected):
    assert total_hits(value) == expected


def test_an_exact_total_is_compared_by_its_count_where_watcher_compares_the_object():
    assert {op: compare_op(op, EXACT, 0) for op in ("gt", "gte", "eq")} == {"gt": False, "gte": False, "eq": False}
    decisions = {op: decide(op, EXACT, 0).met for op in OPERATORS}
    assert decisions == {"eq": False, "not_eq": True, "gt": True, "gte": True, "lt": False, "lte": False}
    assert {op: decide(op, EXACT, 3).met for op in OPERATORS} == \
        {"eq": True, "not_eq": False, "gt": False, "gte": True, "lt": False, "lte": True}
    decision = decide("gt", EXACT, 0)
    assert (decision.left, decision.right, decision.counted, decision.lower_bound) == (3, 0, ("left",), ())
    assert decide("gte", EXACT, "3").met is True                # a string value compares text, as for a number
    assert decide("eq", EXACT, dict(EXACT), count_right=False).met is True  # a written object: compared as one
    assert decide("eq", EXACT, {"value": 3}).met is False                   # another mapping: compared as objects
    assert decide("eq", EXACT, {"value": 3}).counted == ()


@pytest.mark.parametrize(("op", "by_right"), [
    # the count is somewhere in [10, ∞): decided only where every count agrees
    ("gt", {9: True, 10: None, 20: None}),
    ("gte", {9: True, 10: True, 20: None}),
    ("lt", {9: False, 10: False, 20: None}),
    ("lte", {9: False, 10: None, 20: None}),
    ("eq", {9: False, 10: None, 20: None}),
    ("not_eq", {9: True, 10: None, 20: None}),
])
def test_a_lower_bound_is_decided_only_where_every_possible_count_agrees(op, by_right):
    assert {right: decide(op, AT_LEAST_10, right).met for right in by_right} == by_right
    assert decide(op, AT_LEAST_10, 9).lower_bound == ("left",)


def test_a_lower_bound_on_the_right_and_other_values():
    # 20 > count ≥ 10 is undecided; 5 > count is false for every count ≥ 10
    assert decide("gt", 20, AT_LEAST_10).met is None
    assert decide("gt", 5, AT_LEAST_10).met is False
    assert decide("lt", 5, AT_LEAST_10).met is True
    assert decide("gt", 5, AT_LEAST_10, count_right=False).met is False     # a written value stays an object
    assert decide("gt", 5, AT_LEAST_10, count_right=False).counted == ()
    assert decide("eq", AT_LEAST_10, None).met is False                     # a count is never null
    assert decide("not_eq", AT_LEAST_10, None).met is True
    assert decide("not_eq", AT_LEAST_10, None, array=True).met is False     # array_compare: incomparable is false
    assert decide("gt", AT_LEAST_10, "5").met is None                       # text order of an unknown count
    assert decide("gt", AT_LEAST_10, T).met is None
    assert decide("gt", AT_LEAST_10, AT_LEAST_10).met is None                # two lower bounds: nothing is sure
    assert decide("gt", AT_LEAST_10, EXACT).met is True                     # two totals compare their counts
    assert decide("eq", EXACT, dict(EXACT), count_right=False).counted == ()


@pytest.mark.parametrize(("quantifier", "results", "expected"), [
    ("some", [False, None, True], True),
    ("some", [False, None], None),
    ("some", [False, False], False),
    ("some", [], False),
    ("all", [True, None, False], False),
    ("all", [True, None], None),
    ("all", [True, True], True),
    ("all", [], True),
    (None, [None], None),
])
def test_quantifiers_over_undecided_elements(quantifier, results, expected):
    assert quantified_decision(quantifier, results) is expected


def test_quantified_decision_rejects_any():
    with pytest.raises(ValueError, match="expected some or all"):
        quantified_decision("any", [True])
