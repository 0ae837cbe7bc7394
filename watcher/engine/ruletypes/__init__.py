"""Rule types (ElastAlert2's, evaluated by the cluster): a registry of type modules.

``type: threshold`` (the default) is the rule that compiles to a plain Watcher watch (search input +
compare/array_compare condition, :mod:`watcher.definitions.compile`). Every other type compiles to a
watch whose input is ``rule`` (:mod:`watcher.engine.inputs.rule`): it runs the type module's queries
for the window and returns the matches as the payload; the condition is ``ctx.payload.total_matches > 0``. The type
module contract is in :mod:`watcher.engine.ruletypes.base`.
"""

from __future__ import annotations

from typing import Any

from watcher.engine.ruletypes import any as any_type
from watcher.engine.ruletypes import (blacklist, cardinality, change, flatline, frequency, metric_aggregation, new_term,
                                      percentage_match, spike, spike_aggregation, whitelist)
from watcher.model.registry import Registry
from watcher.model.rule import THRESHOLD, register_rule_types

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
TYPES = (THRESHOLD, *sorted(REGISTRY.names()))


def parse_params(rule_type: str, params: Any):
    """The type's validated ``Params`` for a ``params`` mapping (None → no parameters given).

    Raises:
        pydantic.ValidationError: the params do not fit the type.
        KeyError: ``rule_type`` is not a registered type.
    """
    return REGISTRY.get(rule_type).Params.model_validate(params or {})


# The rule model (below the engine) validates ``type`` and ``params`` with these.
register_rule_types({THRESHOLD: lambda params: None,
                     **{name: (lambda params, name=name: parse_params(name, params)) for name in TYPES[1:]}})
