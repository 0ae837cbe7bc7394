"""Bounds — "value outside ``[min, max]``" — for the rule types that compare one number with optional bounds
(``cardinality``, ``metric_aggregation``, ``percentage_match``): the "at least one bound" check
and the comparison.

Bounds are exclusive, as in ElastAlert2 (docs, Rule Types: cardinality, metric_aggregation,
percentage_match): a value equal to a bound does not fire.

Their params field types are in :mod:`watcher.model.fields`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watcher.support.durations import DurationError, parse_rule_duration


def check_bounds(params: Any, min_name: str, max_name: str) -> list[tuple[tuple, str]]:
    """The cross-field checks of a pair of bounds.

    Args:
        params: a validated ``Params`` with attributes ``min_name`` and ``max_name`` (None = not given).

    Returns:
        ``[(path, message)]``: at least one bound must be given (at ``params``), and the minimum
        must not exceed the maximum (at ``params.<min_name>``; with exclusive bounds every value
        would fire).
    """
    low, high = getattr(params, min_name), getattr(params, max_name)
    if low is None and high is None:
        return [(("params",), f"expected at least one of {min_name}, {max_name}, found neither")]
    if low is not None and high is not None and low > high:
        return [(("params", min_name), f"expected {min_name} at most {max_name} ({high}), found {low} "
                                       f"(every value would fire)")]
    return []


def crossed(value: Any, minimum: Any, maximum: Any, min_name: str, max_name: str) -> dict | None:
    """Which bound ``value`` crosses, or None.

    Args:
        value: the number compared (None — e.g. the metric of an empty bucket — never crosses).
        minimum, maximum: the bounds (None = not given); exclusive.
        min_name, max_name: the params' names, reported back.

    Returns:
        ``{"crossed": max_name, "limit": maximum}`` when ``value > maximum``,
        ``{"crossed": min_name, "limit": minimum}`` when ``value < minimum``, else None.
    """
    if value is None:
        return None
    if maximum is not None and value > maximum:
        return {"crossed": max_name, "limit": maximum}
    if minimum is not None and value < minimum:
        return {"crossed": min_name, "limit": minimum}
    return None


def window_of_spec(spec: Any) -> dt.timedelta | None:
    """The rule's ``window`` as a timedelta, for checks run on the raw rule (``check(spec, …)`` gets
    the fields as written); None when it is missing or invalid (the rule's own validation says so)."""
    window = getattr(spec, "window", None)
    if isinstance(window, dt.timedelta):
        return window
    if window is None:
        return None
    try:
        return parse_rule_duration(window)
    except DurationError:
        return None
