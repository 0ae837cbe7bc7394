"""``metric_aggregation``: a metric of ``metric_agg_key`` over the window (or over each
``bucket_interval`` slice of it), per group key, is above ``max_threshold`` or below
``min_threshold`` (ElastAlert2 docs, Rule Types: metric_aggregation; bounds exclusive as there).

One search per run: per group, the metric (or a ``date_histogram`` of ``bucket_interval`` slices
each carrying the metric). The histogram is aligned on the window start (``offset``), so slices are
``[start, start + interval)``, ``[start + interval, …)`` … whatever the start's minute; the interval
must divide the window. No state is kept between runs.

``min_doc_count`` (default 1): a group or slice with fewer documents is not evaluated. So an empty
window (or slice) never fires, whatever the metric — Elasticsearch reports ``sum``,
``value_count`` and ``cardinality`` of nothing as 0 and the others as null; for "too few events"
use ``flatline``.

Differences from ElastAlert2: ``min_doc_count`` also applies to the whole window of an ungrouped
rule (ElastAlert2 evaluates it, so a ``sum`` with ``min_threshold`` fires on an empty window);
slices follow the window start instead of epoch multiples (ElastAlert2's ``sync_bucket_interval``
goes the other way, moving the window); with ``bucket_interval`` one match per group lists every
slice that crossed (ElastAlert2 sends one match per slice); ``metric_agg_script`` is not supported
(the test cluster has no scripting).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import GROUPS, Evaluation, Match, group_buckets, iso, sample_of
from watcher.engine.ruletypes.bounds import check_bounds, crossed, window_of_spec
from watcher.model.fields import Duration, FieldName, Number
from watcher.support.durations import format_duration

TYPE = "metric_aggregation"
AGG_TYPES = ("min", "max", "avg", "sum", "cardinality", "value_count", "percentiles")
CARDINALITY_PRECISION = 3000
"""As in the cardinality type: distinct counts are exact up to this many values."""
METRIC = "metric"
SLICES = "slices"
MS = dt.timedelta(milliseconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ details.metric_agg_type }}({{ details.metric_agg_key }}) = {{ value }}"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ details.metric_agg_type }} of {{ details.metric_agg_key }}"
                   "{% if details.percentile_range is defined %} (percentile {{ details.percentile_range }}){% endif %}"
                   " is {{ value }} ({{ 'above' if details.crossed == 'max_threshold' else 'below' }} "
                   "{{ details.limit }}) in {{ rule.index | join(', ') }} between {{ window.start }} and {{ window.end }}"
                   "{% if group is not none %} for {{ group }}{% endif %}."
                   "{% if details.buckets is defined %} Slices of {{ details.bucket_interval }} that crossed: "
                   "{% for b in details.buckets %}{{ b.start }} ({{ b.value }}){{ ', ' if not loop.last }}{% endfor %}."
                   "{% endif %}")


def _percentile(value: int | float) -> int | float:
    if not 0 <= value <= 100:
        raise ValueError(f"expected a percentile between 0 and 100, found {value}")
    return value


Percentile = Annotated[Number, AfterValidator(_percentile), WithJsonSchema({"type": "number", "minimum": 0,
                                                                          "maximum": 100})]
"""A number from 0 to 100."""


class Params(base.Params):
    """The metric (``metric_agg_key``, ``metric_agg_type``, ``percentile_range``), its bounds,
    and the optional slicing (``bucket_interval``) and evaluation floor (``min_doc_count``)."""

    metric_agg_key: FieldName = Field(description="The field the metric is computed on.")
    metric_agg_type: Literal["min", "max", "avg", "sum", "cardinality", "value_count", "percentiles"] = Field(
        description="The metric aggregation.")
    percentile_range: Percentile | None = Field(None, description="With percentiles: which percentile (0–100).")
    max_threshold: Number | None = Field(None, description="Fire when the metric is above this.")
    min_threshold: Number | None = Field(None, description="Fire when the metric is below this.")
    bucket_interval: Duration | None = Field(None, description="Evaluate each slice of this size of the window "
                                                               "(must divide the window).")
    min_doc_count: int = Field(1, ge=1, description="Groups and slices with fewer documents are not evaluated.")


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """Bounds given and ordered; ``percentile_range`` exactly with ``percentiles``; a
    ``bucket_interval`` that divides the window."""
    problems = check_bounds(params, "min_threshold", "max_threshold")
    if params.metric_agg_type == "percentiles" and params.percentile_range is None:
        problems.append((("params", "metric_agg_type"),
                         "expected percentile_range (0–100) with metric_agg_type percentiles, found none"))
    if params.metric_agg_type != "percentiles" and params.percentile_range is not None:
        problems.append((("params", "percentile_range"),
                         f"expected percentile_range only with metric_agg_type percentiles, "
                         f"found metric_agg_type {params.metric_agg_type}"))
    window = window_of_spec(spec)
    interval = params.bucket_interval
    if interval is not None and window is not None:
        if interval % MS:
            problems.append((("params", "bucket_interval"),
                             f"expected whole milliseconds, found {format_duration(interval)}"))
        elif window % interval:
            problems.append((("params", "bucket_interval"),
                             f"expected a duration that divides the window ({format_duration(window)}) evenly, "
                             f"found {format_duration(interval)}"))
    return problems


def metric_agg(params: Params) -> dict:
    """The Elasticsearch metric aggregation of the params (``{agg type: {...}}``)."""
    body: dict[str, Any] = {"field": params.metric_agg_key}
    if params.metric_agg_type == "percentiles":
        body.update(percents=[float(params.percentile_range)], keyed=False)
    elif params.metric_agg_type == "cardinality":
        body["precision_threshold"] = CARDINALITY_PRECISION
    return {params.metric_agg_type: body}


def metric_value(params: Params, result: dict) -> int | float | None:
    """The number of a metric aggregation result (for percentiles, the value at
    ``percentile_range``); None when Elasticsearch has none (no values)."""
    if params.metric_agg_type == "percentiles":
        values = result.get("values") or []
        return values[0].get("value") if values else None
    return result.get("value")


def slices_agg(ev: Evaluation, interval: dt.timedelta) -> dict:
    """A ``date_histogram`` of ``interval`` slices starting exactly at ``ev.start`` (``offset`` =
    the start modulo the interval), limited to the window (``hard_bounds``); slices with fewer than
    ``min_doc_count`` documents are left out by the cluster."""
    step = interval // MS
    start_ms, end_ms = (ev.start - EPOCH) // MS, (ev.end - EPOCH) // MS
    return {"date_histogram": {"field": ev.spec.time_field, "fixed_interval": f"{step}ms",
                               "offset": f"+{start_ms % step}ms", "min_doc_count": ev.params.min_doc_count,
                               "hard_bounds": {"min": start_ms, "max": end_ms - 1}},
            "aggs": {METRIC: metric_agg(ev.params)}}


def evaluate(ev: Evaluation) -> list[Match]:
    """One search; a match per group key whose metric (or some slice's metric) crosses a bound.

    Match: ``value`` = the metric (with ``bucket_interval``: the latest crossing slice's);
    ``count`` = the group's documents in the window; ``details``: ``metric_agg_type``,
    ``metric_agg_key``, ``percentile_range`` (percentiles only), ``crossed`` (the param name),
    ``limit``, and with ``bucket_interval`` also ``bucket_interval`` and ``buckets``
    (``[{"start", "value", "count", "crossed", "limit"}]``, oldest first).
    """
    p = ev.params
    sub = {SLICES: slices_agg(ev, p.bucket_interval)} if p.bucket_interval else {METRIC: metric_agg(p)}
    aggs = ev.grouped_aggs(sub)
    if GROUPS in aggs:
        aggs[GROUPS]["terms"]["min_doc_count"] = p.min_doc_count
        order = group_order(p)
        if order is not None:
            aggs[GROUPS]["terms"]["order"] = order
    response = ev.search(ev.filters(), aggs=aggs)
    common: dict[str, Any] = {"metric_agg_type": p.metric_agg_type, "metric_agg_key": p.metric_agg_key}
    if p.metric_agg_type == "percentiles":
        common["percentile_range"] = p.percentile_range
    out = []
    evaluated = 0
    for key, bucket in group_buckets(response):
        if bucket["doc_count"] < p.min_doc_count:
            continue
        evaluated += 1
        match = (_sliced_match if p.bucket_interval else _window_match)(p, key, bucket, common)
        if match:
            match.hits = sample_of(bucket)
            out.append(match)
    ev.info["groups_evaluated"] = evaluated
    return out


def group_order(p: Params) -> dict | None:
    """With more group keys than ``max_groups``, keep those likeliest to cross: the highest metric
    first when only ``max_threshold`` is set, the lowest first when only ``min_threshold`` is. None
    (most documents first) with both bounds, with ``bucket_interval`` (each slice is judged) and for
    percentiles; then groups may be left out (the record says how many documents were not grouped)."""
    if p.bucket_interval or p.metric_agg_type == "percentiles":
        return None
    if p.max_threshold is not None and p.min_threshold is None:
        return {METRIC: "desc"}
    if p.min_threshold is not None and p.max_threshold is None:
        return {METRIC: "asc"}
    return None


def _window_match(p: Params, key: Any, bucket: dict, common: dict) -> Match | None:
    """The match of one group from its metric over the whole window (None when it does not cross)."""
    value = metric_value(p, bucket[METRIC])
    bound = crossed(value, p.min_threshold, p.max_threshold, "min_threshold", "max_threshold")
    if bound is None:
        return None
    return Match(group=key, count=bucket["doc_count"], value=value, details={**common, **bound},
                 absence=bound["crossed"] == "min_threshold")


def _sliced_match(p: Params, key: Any, bucket: dict, common: dict) -> Match | None:
    """The match of one group from its slices (None when no slice crosses)."""
    crossing = []
    for piece in bucket[SLICES]["buckets"]:
        if piece["doc_count"] < p.min_doc_count:
            continue
        value = metric_value(p, piece[METRIC])
        bound = crossed(value, p.min_threshold, p.max_threshold, "min_threshold", "max_threshold")
        if bound:
            start = dt.datetime.fromtimestamp(piece["key"] / 1000, dt.timezone.utc)
            crossing.append({"start": iso(start), "value": value, "count": piece["doc_count"], **bound})
    if not crossing:
        return None
    latest = crossing[-1]
    return Match(group=key, count=bucket["doc_count"], value=latest["value"],
                 details={**common, "crossed": latest["crossed"], "limit": latest["limit"],
                          "bucket_interval": format_duration(p.bucket_interval), "buckets": crossing},
                 absence=all(piece["crossed"] == "min_threshold" for piece in crossing))
