"""``frequency``: at least ``num_events`` documents in the window, per group key (ElastAlert2
rule type ``frequency`` with ``use_count_query``/``use_terms_query``; the rule's ``window`` is
ElastAlert2's ``timeframe``).

Counted by the cluster (a terms aggregation with ``min_doc_count``), not by fetching documents.
ElastAlert2 keeps a sliding window in memory and evicts the oldest event when the span reaches the
timeframe; here each run counts the fixed window ``[end − window, end)``, so what ElastAlert2
would see in between two runs is seen only if the schedule interval is shorter than the window.

After a match ElastAlert2 forgets the events it counted, so the same events never fire twice; a
native rule counts every document of each window, so it fires on every run while the window still
holds ``num_events`` (``realert`` spaces those alerts). ``reset_after_match: true`` (which
``watcher convert --from elastalert`` sets) does as ElastAlert2: for each group key, documents up to
the newest one a match counted are not counted again (docs/rule-types.md#frequency).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import (GROUPS, MISSING_KEY, Evaluation, Match, group_buckets, iso, sample_of,
                                           state_key)
from watcher.support.datemath import parse_instant

TYPE = "frequency"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ count }} event{{ 's' if count != 1 }} in {{ rule.window }}"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ count }} event{{ 's' if count != 1 }} (at least {{ details.num_events }}) in {{ rule.index | join(', ') }} between "
                   "{{ window.start }} and {{ window.end }}{% if group is not none %} for {{ group }}{% endif %}.")


class Params(base.Params):
    """``num_events``: the least number of documents in the window that fires."""

    num_events: int = Field(ge=1, description="Fire when at least this many documents are in the window.")
    reset_after_match: bool = Field(False, description="Count afresh after a match, as ElastAlert2 does: the "
                                                       "documents a match counted are not counted again for "
                                                       "its group key.")


def check(spec, params) -> list[tuple[tuple, str]]:
    return []


COUNTED = "counted_until"
"""Type state: ``{group state key: ISO time of the newest document the last match counted}``."""
NEWEST = "newest"
RECOUNT = "recount"


def evaluate(ev: Evaluation) -> list[Match]:
    """Grouped counts; the cluster drops groups under ``num_events`` (``min_doc_count``). With
    ``reset_after_match``, groups that matched within the window are counted again from after the
    newest document their match counted (one more search, only when there are such groups)."""
    least = ev.params.num_events
    reset = ev.params.reset_after_match
    aggs = ev.grouped_aggs({NEWEST: {"max": {"field": ev.spec.time_field}}} if reset else {})
    if GROUPS in aggs:
        aggs[GROUPS]["terms"]["min_doc_count"] = least
    response = ev.search(ev.filters(), aggs=aggs)
    buckets = [(key, bucket) for key, bucket in group_buckets(response) if bucket["doc_count"] >= least]
    if reset:
        buckets = _after_last_match(ev, buckets)
    matches = [Match(group=key, count=bucket["doc_count"], value=bucket["doc_count"], hits=sample_of(bucket),
                     details={"num_events": least})
               for key, bucket in buckets if bucket["doc_count"] >= least]
    if reset:
        counted = ev.state.setdefault(COUNTED, {})
        for key, bucket in buckets:
            if bucket["doc_count"] >= least and (bucket.get(NEWEST) or {}).get("value") is not None:
                counted[state_key(key)] = iso(dt.datetime.fromtimestamp(bucket[NEWEST]["value"] / 1000, dt.timezone.utc))
    return matches


def _after_last_match(ev: Evaluation, buckets: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
    """``buckets`` with each group that a match already counted in this window recounted from after
    the newest document that match counted. Groups whose last match fell before the window are
    forgotten (their documents are out of the window anyway)."""
    counted = {key: until for key, until in (ev.state.get(COUNTED) or {}).items() if parse_instant(until) >= ev.start}
    ev.state[COUNTED] = counted
    again = {state_key(key): key for key, _ in buckets if state_key(key) in counted}
    if not again:
        return buckets
    sub = {NEWEST: {"max": {"field": ev.spec.time_field}}, **(ev.sample() if ev.spec.hits else {})}
    filters = {name: {"bool": {"filter": [*_group_clauses(ev, key),
                                          {"range": {ev.spec.time_field: {"gt": counted[name],
                                                                          "format": "strict_date_optional_time"}}}]}}
               for name, key in again.items()}
    response = ev.search(ev.filters(), aggs={RECOUNT: {"filters": {"filters": filters}, "aggs": sub}})
    recounted = (response.get("aggregations") or {}).get(RECOUNT, {}).get("buckets") or {}
    return [(key, recounted.get(state_key(key), bucket) if state_key(key) in again else bucket)
            for key, bucket in buckets]


def _group_clauses(ev: Evaluation, key: Any) -> list[dict]:
    if not ev.spec.group_by or key is None:
        return []
    if key == MISSING_KEY:
        return [{"bool": {"must_not": {"exists": {"field": ev.spec.group_by}}}}]
    return [{"term": {ev.spec.group_by: key}}]
