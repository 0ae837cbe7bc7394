"""``any``: every document in the window is a match (ElastAlert2 rule type ``any``).

One match per group key (or one for the rule without ``group_by``) holding how many documents
matched and a sample of them; ``realert`` then decides how often the key alerts, as in ElastAlert2,
whose realert key is the rule (plus the query_key value).
"""

from __future__ import annotations

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import Evaluation, Match, group_buckets, sample_of

TYPE = "any"
DEFAULT_TITLE = "rule '{{ rule.name }}' matched {{ count }} document{{ 's' if count != 1 }}"
DEFAULT_MESSAGE = ("{{ count }} document{{ 's' if count != 1 }} matched in {{ rule.index | join(', ') }} "
                   "between {{ window.start }} and {{ window.end }}"
                   "{% if group is not none %} for {{ group }}{% endif %}.")


class Params(base.Params):
    """``any`` takes no parameters."""


def check(spec, params) -> list[tuple[tuple, str]]:
    """Nothing to cross-check."""
    return []


def evaluate(ev: Evaluation) -> list[Match]:
    """One search with a grouped count and sample; groups with at least one document match."""
    response = ev.search(ev.filters(), aggs=ev.grouped_aggs({}))
    return [Match(group=key, count=bucket["doc_count"], value=bucket["doc_count"], hits=sample_of(bucket))
            for key, bucket in group_buckets(response) if bucket["doc_count"] > 0]
