"""``cardinality``: the number of distinct value{{ 's' if details.cardinality != 1 }} of ``cardinality_field`` in the window, per group
key, is above ``max_cardinality`` or below ``min_cardinality`` (ElastAlert2 docs, Rule Types:
cardinality; bounds exclusive as there: ``> max``, ``< min``).

The cluster counts (a ``cardinality`` aggregation per group, one search per run). Below
:data:`PRECISION_THRESHOLD` distinct values the count is exact for practical purposes
(Elasticsearch keeps the hashes themselves up to that many); above it, HyperLogLog++ estimates
within a few percent. No state is kept between runs.

Differences from ElastAlert2, which keeps every value seen in memory over a sliding ``timeframe``:

* each run counts the fixed window ``[start, end)``, so ``min_cardinality`` needs no warm-up
  (ElastAlert2 waits one timeframe after the first event);
* without ``group_by`` an empty window has cardinality 0 and fires a ``min_cardinality``; with
  ``group_by`` a group is known only through its documents in the window, so a group with no
  documents at all is not evaluated (use ``flatline`` for "a key went quiet"). A group whose
  documents all lack ``cardinality_field`` has cardinality 0 and is evaluated.
"""

from __future__ import annotations

from pydantic import Field

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import Evaluation, Match, group_buckets, sample_of
from watcher.engine.ruletypes.bounds import check_bounds, crossed
from watcher.model.fields import FieldName

TYPE = "cardinality"
PRECISION_THRESHOLD = 3000
"""Distinct values up to which Elasticsearch's count is exact (per group; costs 8 bytes each)."""
METRIC = "cardinality"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ details.cardinality }} distinct {{ details.cardinality_field }}"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ details.cardinality }} distinct value{{ 's' if details.cardinality != 1 }} of {{ details.cardinality_field }} in {{ rule.index | join(', ') }} "
                   "between {{ window.start }} and {{ window.end }}"
                   "{% if group is not none %} for {{ group }}{% endif %}"
                   " ({{ 'more than' if details.crossed == 'max_cardinality' else 'fewer than' }} "
                   "{{ details.limit }}; {{ count }} document{{ 's' if count != 1 }}).")


class Params(base.Params):
    """``cardinality_field`` and at least one of ``max_cardinality`` / ``min_cardinality``."""

    cardinality_field: FieldName = Field(description="The field whose distinct values are counted.")
    max_cardinality: int | None = Field(None, ge=0, description="Fire when there are more distinct values than this.")
    min_cardinality: int | None = Field(None, ge=0, description="Fire when there are fewer distinct values than this.")


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """At least one bound; the minimum not above the maximum."""
    return check_bounds(params, "min_cardinality", "max_cardinality")


def evaluate(ev: Evaluation) -> list[Match]:
    """One search: per group key, the distinct count of ``cardinality_field``; a match per group
    whose count crosses a bound (``details``: ``cardinality``, ``cardinality_field``, ``crossed``
    — the param name — and ``limit``)."""
    p = ev.params
    aggs = ev.grouped_aggs({METRIC: {"cardinality": {"field": p.cardinality_field,
                                                     "precision_threshold": PRECISION_THRESHOLD}}})
    response = ev.search(ev.filters(), aggs=aggs)
    out = []
    buckets = group_buckets(response)
    for key, bucket in buckets:
        distinct = int(bucket[METRIC]["value"] or 0)
        bound = crossed(distinct, p.min_cardinality, p.max_cardinality, "min_cardinality", "max_cardinality")
        if bound:
            out.append(Match(group=key, count=bucket["doc_count"], value=distinct, hits=sample_of(bucket),
                             details={"cardinality": distinct, "cardinality_field": p.cardinality_field, **bound},
                             absence=bound["crossed"] == "min_cardinality"))
    ev.info["groups_evaluated"] = len(buckets)
    return out
