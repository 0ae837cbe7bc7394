"""``percentage_match``: the share of the window's documents that match ``match_bucket_filter``,
per group key, is below ``min_percentage`` or above ``max_percentage`` (ElastAlert2 docs, Rule
Types: percentage_match; bounds exclusive as there).

One search per run: per group, the group's document count and a ``filter`` sub-aggregation with
the matching count; percentage = matching × 100 / total. A group (or the ungrouped window) with no
documents, or fewer than ``min_denominator``, is not evaluated (as ElastAlert2), so an empty window
never fires. No state is kept between runs.

Differences from ElastAlert2: ``match_bucket_filter`` may also be a Lucene string or one query DSL
object besides ElastAlert2's list of clauses (ANDed); ``bucket_interval`` options are not offered
(each run evaluates its window); groups use ``group_by`` with the ``_missing`` group as every type.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import Evaluation, Match, group_buckets, sample_of
from watcher.engine.ruletypes.bounds import check_bounds, crossed
from watcher.model.fields import Number
from watcher.model.problems import describe
from watcher.model.rule import query_clause

TYPE = "percentage_match"
MATCHING = "matching"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ '%.1f' | format(value) }}% of documents match"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ details.match_count }} of {{ details.total_count }} document{{ 's' if details.total_count != 1 }} "
                   "({{ '%.2f' | format(details.percentage) }}%) match the bucket filter in {{ rule.index | join(', ') }} between "
                   "{{ window.start }} and {{ window.end }}{% if group is not none %} for {{ group }}{% endif %} "
                   "({{ 'above' if details.crossed == 'max_percentage' else 'below' }} {{ details.limit }}%).")

_EXPECTED_FILTER = ("a Lucene query string, a query DSL object with one query type such as {term: {field: value}}, "
                    "or a list of them (ANDed)")


def _one_filter(value: Any) -> str | dict:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, dict) and len(value) == 1:
        return value
    raise ValueError(f"expected {_EXPECTED_FILTER}, found {describe(value)}")


def _bucket_filter(value: Any) -> str | dict | list:
    if isinstance(value, list):
        if not value:
            raise ValueError(f"expected {_EXPECTED_FILTER}, found an empty list")
        return [_one_filter(item) for item in value]
    return _one_filter(value)


_ONE_FILTER_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                                {"type": "object", "minProperties": 1, "maxProperties": 1}]}
BucketFilter = Annotated[Any, BeforeValidator(_bucket_filter), WithJsonSchema({
    "description": "A Lucene query string, a query DSL object, or a list of them (ANDed).",
    "anyOf": [*_ONE_FILTER_SCHEMA["anyOf"], {"type": "array", "minItems": 1, "items": _ONE_FILTER_SCHEMA}]})]


class Params(base.Params):
    """``match_bucket_filter``, at least one of ``min_percentage`` / ``max_percentage``, and the
    least number of documents evaluated (``min_denominator``)."""

    match_bucket_filter: BucketFilter = Field(description="Which documents count as matching (the numerator).")
    min_percentage: Number | None = Field(None, description="Fire when the matching share (0–100) is below this.")
    max_percentage: Number | None = Field(None, description="Fire when the matching share (0–100) is above this.")
    min_denominator: int = Field(0, ge=0, description="Windows (or groups) with fewer documents are not evaluated.")


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """At least one bound; the minimum not above the maximum."""
    return check_bounds(params, "min_percentage", "max_percentage")


def bucket_query(value: str | dict | list) -> dict:
    """The query of ``match_bucket_filter``: a Lucene string → ``query_string``, a DSL object as
    is, a list → a ``bool`` filter of its items."""

    if isinstance(value, list):
        return {"bool": {"filter": [query_clause(item) for item in value]}}
    return query_clause(value)


def evaluate(ev: Evaluation) -> list[Match]:
    """One search; a match per group key whose matching share crosses a bound.

    Match: ``value`` = the percentage (float, 0–100), ``count`` = the group's documents in the
    window; ``details``: ``match_count``, ``total_count``, ``percentage``, ``crossed`` (the param
    name), ``limit``.
    """
    p = ev.params
    aggs = ev.grouped_aggs({MATCHING: {"filter": bucket_query(p.match_bucket_filter)}})
    response = ev.search(ev.filters(), aggs=aggs)
    out = []
    evaluated = 0
    for key, bucket in group_buckets(response):
        total = bucket["doc_count"]
        if total == 0 or total < p.min_denominator:
            continue
        evaluated += 1
        matching = bucket[MATCHING]["doc_count"]
        percentage = matching * 100 / total
        bound = crossed(percentage, p.min_percentage, p.max_percentage, "min_percentage", "max_percentage")
        if bound:
            out.append(Match(group=key, count=total, value=percentage, hits=sample_of(bucket),
                             details={"match_count": matching, "total_count": total, "percentage": percentage,
                                      **bound},
                             absence=bound["crossed"] == "min_percentage"))
    ev.info["groups_evaluated"] = evaluated
    return out
