"""``spike_aggregation``: ``spike`` on a metric of the two windows instead of their counts
(ElastAlert2 docs, Rule Types: spike_aggregation — ``metric_agg_key``, ``metric_agg_type``,
``spike_height``, ``spike_type``, ``threshold_ref``/``threshold_cur`` as metric values,
``alert_on_new_data``).

Same windows, search and decision as :mod:`watcher.engine.ruletypes.spike` (:func:`spike.spike_direction`):
the metric aggregation sits inside each window's ``filter`` sub-aggregation. Differences from
ElastAlert2, which never fires when either value is 0 or missing:

* a metric that falls to 0 (``sum``, ``cardinality``, ``value_count`` of an empty current window)
  is a down-spike; ``min``/``max``/``avg`` of an empty window have no value and never fire;
* a missing or non-positive reference is new data (up only with ``alert_on_new_data``), and an
  up-spike of a group with no document before the reference window is held, as for ``spike``.

Ratios assume non-negative metrics (a negative reference is treated as no reference). No state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from watcher.engine.ruletypes import spike
from watcher.engine.ruletypes.base import Evaluation, Match, sample_of
from watcher.engine.ruletypes.spike import METRIC, NonNegativeNumber, spike_direction, spike_ratio

TYPE = "spike_aggregation"
METRIC_AGG_TYPES = ("min", "max", "avg", "sum", "cardinality", "value_count")
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ details.metric_agg_type }}({{ details.metric_agg_key }}) "
                 "{{ details.spike_direction }}-spike{% if group is not none %} for {{ group }}{% endif %}: "
                 "{{ details.spike_cur }} against {{ details.spike_ref }}")
DEFAULT_MESSAGE = ("{{ details.metric_agg_type }}({{ details.metric_agg_key }}) is {{ details.spike_cur }} in "
                   "{{ rule.index | join(', ') }} between {{ window.start }} and {{ window.end }}"
                   "{% if group is not none %} for {{ group }}{% endif %}, against {{ details.spike_ref }} in the "
                   "{{ rule.window }} before (spike_height {{ details.spike_height }}, spike_type "
                   "{{ details.spike_type }}).")


class Params(spike.Params):
    """``spike`` parameters on a metric; ``threshold_ref``/``threshold_cur`` are metric values."""

    metric_agg_key: str = Field(min_length=1, description="The field the metric is computed on.")
    metric_agg_type: Literal["min", "max", "avg", "sum", "cardinality", "value_count"] = Field(
        description="The metric aggregation: min, max, avg, sum, cardinality, value_count.")
    threshold_ref: NonNegativeNumber | None = Field(None, description="Fire only when the reference window's metric "
                                                                "is at least this.")
    threshold_cur: NonNegativeNumber | None = Field(None, description="Fire only when the current window's metric "
                                                                "is at least this.")


def check(spec, params) -> list[tuple[tuple, str]]:
    """Nothing to cross-check."""
    return []


def evaluate(ev: Evaluation) -> list[Match]:
    """The metric of the two windows per group; one match per group whose metric spikes.

    Match: ``count`` = documents in the current window, ``value`` = ``cur / ref`` (None without a
    positive reference), ``details`` = ``spike_ref``, ``spike_cur`` (metric values, None for an
    empty min/max/avg window), ``ref_count``, ``cur_count``, ``metric_agg_key``,
    ``metric_agg_type``, ``spike_height``, ``spike_type``, ``spike_direction``, ``reference_window``.
    """
    p = ev.params
    metric = {METRIC: {p.metric_agg_type: {"field": p.metric_agg_key}}}
    rows = spike.two_window_search(ev, metric)
    values = {key: (ref[METRIC]["value"], cur[METRIC]["value"]) for key, ref, cur in rows}
    directions = {key: spike_direction(ref, cur, p) for key, (ref, cur) in values.items()}
    spike.hold_new_groups(ev, directions, values)
    ev.info["groups"] = len(rows)
    matches = []
    for key, reference, current in rows:
        direction = directions[key]
        if direction is None:
            continue
        ref, cur = values[key]
        matches.append(Match(group=key, count=current["doc_count"], value=spike_ratio(ref, cur),
                             hits=sample_of(current),
                             details={"spike_ref": ref, "spike_cur": cur, "ref_count": reference["doc_count"],
                                      "cur_count": current["doc_count"], "metric_agg_key": p.metric_agg_key,
                                      "metric_agg_type": p.metric_agg_type, "spike_height": p.spike_height,
                                      "spike_type": p.spike_type, "spike_direction": direction,
                                      "reference_window": ev.info["reference_window"]},
                             absence=direction == "down"))
    return matches
