"""Rule types (ElastAlert2's, evaluated by the cluster): a registry of type modules.

``type: threshold`` (the default) is the rule that compiles to a plain Watcher watch (search input +
compare/array_compare condition, :mod:`watcher.definitions.compile`). Every other type compiles to a
watch whose input is ``rule``: :func:`execute_input` runs the type module's queries for the window
and returns the matches as the payload; the condition is ``ctx.payload.total_matches > 0``. The type
module contract is in :mod:`watcher.engine.ruletypes.base`.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from watcher.model.registry import Registry
from watcher.engine.ruletypes import any as any_type
from watcher.engine.ruletypes import frequency
from watcher.engine.ruletypes import flatline
from watcher.engine.ruletypes import spike
from watcher.engine.ruletypes import spike_aggregation
from watcher.engine.ruletypes import cardinality
from watcher.engine.ruletypes import metric_aggregation
from watcher.engine.ruletypes import percentage_match
from watcher.engine.ruletypes import change
from watcher.engine.ruletypes import blacklist
from watcher.engine.ruletypes import whitelist
from watcher.engine.ruletypes import new_term

# One line per type module (keep the import above in step).
REGISTRY = Registry("rule type", [
    flatline,
    spike,
    spike_aggregation,
    any_type,
    frequency,
    cardinality,
    metric_aggregation,
    percentage_match,
    change,
    blacklist,
    whitelist,
    new_term,
])
THRESHOLD = "threshold"
TYPES = (THRESHOLD, *sorted(REGISTRY.names()))
RULE_INPUT = "rule"
"""The input type of a compiled typed rule (not accepted in watch files)."""


def parse_params(rule_type: str, params: Any):
    """The type's validated ``Params`` for a ``params`` mapping (None → no parameters given).

    Raises:
        pydantic.ValidationError: the params do not fit the type.
        KeyError: ``rule_type`` is not a registered type.
    """
    return REGISTRY.get(rule_type).Params.model_validate(params or {})


def window_of(spec, scheduled_time: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[scheduled − window − delay, scheduled − delay)``, aware UTC."""
    end = scheduled_time - spec.delay
    return end - spec.window, end


def execute_input(run) -> dict:
    """Evaluate the typed rule of ``run.watch`` for its window; the input result of the record.

    The type's state comes from ``run.rule_state["type_state"]`` (kept only while the rule keeps its
    type, so two types never read each other's state) and is written back there only when the
    evaluation succeeds, so a failed run leaves the state as it was.

    Returns:
        ``{"type": "rule", "status": "success", "payload": {"rule_type", "window": {"start", "end"},
        "total_matches", "matches": [Match JSON], "info"}, "rule": {"type"}}``.

    Raises:
        whatever the type's queries raise (the pipeline records a failed input).
    """
    from watcher.engine.ruletypes.base import Evaluation, iso

    spec = run.watch.rule
    module = REGISTRY.get(spec.type)
    start, end = window_of(spec, run.scheduled_time)
    stored = run.rule_state.get("type_state") or {}
    same_type = stored.get("type") == spec.type
    evaluation = Evaluation(spec=spec, params=spec.type_params, es=run.services.es, start=start, end=end,
                            state=copy.deepcopy(stored.get("data") or {}) if same_type else {},
                            first_run=not same_type)
    matches = module.evaluate(evaluation)
    run.rule_state["type_state"] = {"type": spec.type, "data": evaluation.state}
    payload = {"rule_type": spec.type, "window": {"start": iso(start), "end": iso(end)},
               "total_matches": len(matches), "matches": [m.to_json() for m in matches], "info": evaluation.info}
    return {"type": RULE_INPUT, "status": "success", "payload": payload, RULE_INPUT: {"type": spec.type}}
