"""``frequency``: at least ``num_events`` documents in the window, per group key (ElastAlert2
rule type ``frequency`` with ``use_count_query``/``use_terms_query``; the rule's ``window`` is
ElastAlert2's ``timeframe``).

Counted by the cluster (a terms aggregation with ``min_doc_count``), not by fetching documents.
ElastAlert2 keeps a sliding window in memory and evicts the oldest event when the span reaches the
timeframe; here each run counts the fixed window ``[end − window, end)``, so what ElastAlert2
would see in between two runs is seen only if the schedule interval is shorter than the window.
"""

from __future__ import annotations

from pydantic import Field

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import GROUPS, Evaluation, Match, group_buckets, sample_of

TYPE = "frequency"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ count }} event{{ 's' if count != 1 }} in {{ rule.window }}"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ count }} event{{ 's' if count != 1 }} (at least {{ details.num_events }}) in {{ rule.index | join(', ') }} between "
                   "{{ window.start }} and {{ window.end }}{% if group is not none %} for {{ group }}{% endif %}.")


class Params(base.Params):
    """``num_events``: the least number of documents in the window that fires."""

    num_events: int = Field(ge=1, description="Fire when at least this many documents are in the window.")


def check(spec, params) -> list[tuple[tuple, str]]:
    return []


def evaluate(ev: Evaluation) -> list[Match]:
    """Grouped counts; the cluster drops groups under ``num_events`` (``min_doc_count``)."""
    least = ev.params.num_events
    aggs = ev.grouped_aggs({})
    if GROUPS in aggs:
        aggs[GROUPS]["terms"]["min_doc_count"] = least
    response = ev.search(ev.filters(), aggs=aggs)
    return [Match(group=key, count=bucket["doc_count"], value=bucket["doc_count"], hits=sample_of(bucket),
                  details={"num_events": least})
            for key, bucket in group_buckets(response) if bucket["doc_count"] >= least]
