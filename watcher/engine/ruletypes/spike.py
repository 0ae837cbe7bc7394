"""``spike``: the current window's document count against the window before it, per group key
(ElastAlert2 docs, Rule Types: spike — ``spike_height``, ``spike_type``, ``threshold_ref``,
``threshold_cur``, ``alert_on_new_data``).

Windows: current ``[start, end)`` is the rule's window; reference ``[start − window, start)`` is the
one before it. One search over ``[start − window, end)`` splits by group key (terms + missing) and,
inside each bucket, counts the two windows with two ``filter`` sub-aggregations; the sample hits
come from the current window.

Decision (:func:`spike_direction`, shared with ``spike_aggregation``): ``up`` fires when
``cur ≥ ref × spike_height``, ``down`` when ``cur ≤ ref ÷ spike_height``, ``both`` either;
``threshold_ref``/``threshold_cur`` are floors on the two values. A group present only in the
reference window has ``cur = 0`` (a down-spike candidate).

New data. A ratio from a zero reference is undefined, so ``ref = 0`` is *new data*: it fires (as
an up-spike) only with ``alert_on_new_data: true`` (ElastAlert2 applies that option only with
``query_key``; here it works with and without ``group_by``). A reference window that only partly
covers a stream's life (the stream began inside it, e.g. the second run on a fresh index) would
make any steady stream look like an up-spike; ElastAlert2 avoids that by staying inactive until
2 × timeframe after the first event it saw, in memory, so every restart re-arms the warm-up
(docs/semantics.md#warm-up-after-restart). Here, before an up-spike fires without ``alert_on_new_data``, the
cluster is asked whether the group has a document *before* the reference window (one ``filters`` aggregation,
only for the candidate groups); without one the group is still new and is held (``info.new_groups_held``).
Both windows and this look-back come from the cluster, so a restart changes nothing and the type keeps no
state.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import MISSING_KEY, Evaluation, Match, group_buckets, iso, sample_of
from watcher.model.problems import describe

TYPE = "spike"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ details.spike_direction }}-spike"
                 "{% if group is not none %} for {{ group }}{% endif %}: {{ details.spike_cur }} event{{ 's' if details.spike_cur != 1 }} "
                 "against {{ details.spike_ref }}")
DEFAULT_MESSAGE = ("{{ details.spike_cur }} event{{ 's' if details.spike_cur != 1 }} in {{ rule.index | join(', ') }} between {{ window.start }} and {{ window.end }}"
                   "{% if group is not none %} for {{ group }}{% endif %}, against {{ details.spike_ref }} in the "
                   "{{ rule.window }} before (spike_height {{ details.spike_height }}, spike_type "
                   "{{ details.spike_type }}).")

REFERENCE = "reference"
CURRENT = "current"
METRIC = "metric"
# Lower bound of the "is there older data" look-back; date_nanos fields cannot go before 1970.
DAWN = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _number_above(low: float, inclusive: bool):
    wording = f"a number of at least {low}" if inclusive else f"a number greater than {low}"

    def check(value: Any) -> int | float:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < low or (value == low and not inclusive)):
            raise ValueError(f"expected {wording}, found {describe(value)}")
        return value
    return check


PositiveNumber = Annotated[Any, BeforeValidator(_number_above(0, inclusive=False)),
                           WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
"""A finite number > 0 (int or float, kept as written)."""
NonNegativeNumber = Annotated[Any, BeforeValidator(_number_above(0, inclusive=True)),
                              WithJsonSchema({"type": "number", "minimum": 0})]
"""A finite number ≥ 0 (int or float, kept as written)."""


class Params(base.Params):
    """``spike`` parameters (ElastAlert2's names)."""

    spike_height: PositiveNumber = Field(description="The ratio between the current and the reference window "
                                                  "that fires (cur ≥ ref × height up, cur ≤ ref ÷ height down).")
    spike_type: Literal["up", "down", "both"] = Field(description="Which direction fires: up, down or both.")
    threshold_ref: int | None = Field(None, ge=0, description="Fire only when the reference window has at least "
                                                              "this many documents.")
    threshold_cur: int | None = Field(None, ge=0, description="Fire only when the current window has at least "
                                                              "this many documents.")
    alert_on_new_data: bool = Field(False, description="When the reference window is empty (or the group has no "
                                                       "document before it), an up-spike fires only if true.")


def check(spec, params) -> list[tuple[tuple, str]]:
    """Nothing to cross-check."""
    return []


def _exact(value: int | float) -> Fraction:
    # Exact comparison: 30 × 0.1 must equal 3, not 3.0000000000000004.
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def spike_direction(ref: int | float | None, cur: int | float | None, params) -> str | None:
    """The spike the two values make: ``"up"``, ``"down"`` or None (ElastAlert2 docs, Rule Types:
    spike; ``SpikeRule.find_matches``).

    Args:
        ref: the reference window's value (a count, or a metric; None = no value, as for an
            ``avg`` over no documents).
        cur: the current window's value (same units).
        params: ``spike_height``, ``spike_type``, ``threshold_ref``, ``threshold_cur``,
            ``alert_on_new_data``.

    Returns:
        ``"up"`` when ``spike_type`` allows it and ``cur ≥ ref × spike_height``; ``"down"`` when it
        allows it and ``cur ≤ ref ÷ spike_height``; None otherwise. ``threshold_ref`` and
        ``threshold_cur`` are floors (a missing value counts as 0). A reference that is missing or
        not positive is new data: ``"up"`` only with ``alert_on_new_data`` and ``cur > 0``, never
        ``"down"``. A missing ``cur`` never fires. ElastAlert2 never fires a metric spike when
        either value is 0; here a metric falling to 0 is a down-spike.
    """
    if cur is None:
        return None
    if params.threshold_cur is not None and cur < params.threshold_cur:
        return None
    if params.threshold_ref is not None and (ref or 0) < params.threshold_ref:
        return None
    up_wanted = params.spike_type in ("up", "both")
    down_wanted = params.spike_type in ("down", "both")
    if ref is None or ref <= 0:
        return "up" if up_wanted and params.alert_on_new_data and cur > 0 else None
    height, ref_x, cur_x = _exact(params.spike_height), _exact(ref), _exact(cur)
    if up_wanted and cur_x >= ref_x * height:
        return "up"
    if down_wanted and cur_x <= ref_x / height:
        return "down"
    return None


def spike_ratio(ref: int | float | None, cur: int | float | None) -> float | None:
    """``cur / ref``, or None when there is no positive reference or no current value."""
    if ref is None or cur is None or ref <= 0:
        return None
    return float(_exact(cur) / _exact(ref))


def reference_start(ev: Evaluation) -> dt.datetime:
    """Start of the reference window ``[start − window, start)`` (aware UTC)."""
    return ev.start - (ev.end - ev.start)


def two_window_search(ev: Evaluation, metric: dict | None = None) -> list[tuple[Any, dict, dict]]:
    """One search over ``[start − window, end)``: per group key, the reference and current
    windows (``filter`` sub-aggregations, each with ``metric`` when given; the sample hits in the
    current one).

    Returns:
        ``[(group key, reference bucket, current bucket)]``; an ungrouped rule has one row (key None)
        even when both windows are empty.

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    ref_start = reference_start(ev)
    inner = {"aggs": metric} if metric else {}
    current_aggs = {**(metric or {}), **(ev.sample() if ev.spec.hits else {})}
    sub = {REFERENCE: {"filter": ev.range_clause(ref_start, ev.start), **inner},
           CURRENT: {"filter": ev.range_clause(ev.start, ev.end), **({"aggs": current_aggs} if current_aggs else {})}}
    response = ev.search(ev.filters(ref_start, ev.end), aggs=ev.grouped_aggs(sub, with_sample=False))
    ev.info["reference_window"] = {"start": iso(ref_start), "end": iso(ev.start)}
    return [(key, bucket[REFERENCE], bucket[CURRENT]) for key, bucket in group_buckets(response)]


def group_clause(ev: Evaluation, group: Any) -> dict:
    """The query clause selecting one group key (``_missing``: documents without the field)."""
    if group is None:
        return {"match_all": {}}
    if group == MISSING_KEY:
        return {"bool": {"must_not": {"exists": {"field": ev.spec.group_by}}}}
    return {"term": {ev.spec.group_by: group}}


def groups_with_older_data(ev: Evaluation, groups: list, before: dt.datetime) -> set:
    """The groups among ``groups`` that have a document (matching the rule) before ``before``.

    One search with a ``filters`` aggregation (one filter per group) over ``[1970, before)``.

    Returns:
        A set of group keys (None for the ungrouped rule).

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    if not groups:
        return set()
    named = {str(i): group_clause(ev, group) for i, group in enumerate(groups)}
    response = ev.search(ev.filters(DAWN, before), aggs={"older": {"filters": {"filters": named}}},
                         track_total_hits=False)
    buckets = response["aggregations"]["older"]["buckets"]
    return {groups[int(name)] for name, bucket in buckets.items() if bucket["doc_count"] > 0}


def hold_new_groups(ev: Evaluation, directions: dict, values: dict) -> None:
    """Without ``alert_on_new_data``, turn off up-spikes of groups that have no document before
    the reference window (their reference window does not cover a whole window of their life).
    Mutates ``directions`` (``{group: "up" | "down" | None}``); records ``info.new_groups_held``.

    Args:
        values: ``{group: (ref, cur)}``; only groups with a positive reference are checked (a zero
            reference is already decided by :func:`spike_direction`).
    """
    if ev.params.alert_on_new_data:
        return
    candidates = [g for g, d in directions.items() if d == "up" and (values[g][0] or 0) > 0]
    older = groups_with_older_data(ev, candidates, reference_start(ev))
    held = [g for g in candidates if g not in older]
    for group in held:
        directions[group] = None
    if held:
        ev.info["new_groups_held"] = held


def evaluate(ev: Evaluation) -> list[Match]:
    """Counts of the two windows per group; one match per group that spikes.

    Match: ``count`` = documents in the current window, ``value`` = ``cur / ref`` (None when
    ``ref`` is 0), ``details`` = ``spike_ref``, ``spike_cur``, ``spike_height``, ``spike_type``,
    ``spike_direction`` (up | down), ``reference_window`` (``start``, ``end``).
    """
    rows = two_window_search(ev)
    values = {key: (ref["doc_count"], cur["doc_count"]) for key, ref, cur in rows}
    directions = {key: spike_direction(ref, cur, ev.params) for key, (ref, cur) in values.items()}
    hold_new_groups(ev, directions, values)
    ev.info["groups"] = len(rows)
    matches = []
    for key, _, current in rows:
        direction = directions[key]
        if direction is None:
            continue
        ref, cur = values[key]
        matches.append(Match(group=key, count=cur, value=spike_ratio(ref, cur), hits=sample_of(current),
                             details={"spike_ref": ref, "spike_cur": cur, "spike_height": ev.params.spike_height,
                                      "spike_type": ev.params.spike_type, "spike_direction": direction,
                                      "reference_window": ev.info["reference_window"]},
                             absence=direction == "down"))
    return matches
