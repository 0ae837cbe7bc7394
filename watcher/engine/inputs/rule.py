"""The ``rule`` input: what a typed rule file (``type`` + ``params``) compiles to.

It evaluates the rule type (:mod:`watcher.engine.ruletypes`) of ``run.watch.rule`` for the run's
window. Internal: a watch file cannot name it (the registry does not list or parse it), since only a
rule file carries the spec it needs.
"""

from __future__ import annotations

import copy
from typing import Any

from watcher.engine.ruletypes import REGISTRY
from watcher.engine.ruletypes.base import Evaluation, hold_absences, iso
from watcher.model.problems import Reader

TYPE = "rule"
INTERNAL = True
"""Not listed in, nor parsed from, watch files."""


def parse(reader: Reader, body: Any, path) -> None:
    """Never called for files (the type is internal); present for the registry contract."""
    reader.problem(path, "the rule input is compiled from rule files, it cannot be written in a watch")
    return None


def execute(config: Any, run: Any) -> dict:
    """Evaluate the typed rule of ``run.watch`` for its window; the input result of the record.

    The type's state comes from ``run.rule_state["type_state"]`` (kept only while the rule keeps its
    type, so two types never read each other's state) and is written back there only when the
    evaluation succeeds, so a failed run leaves the state as it was.

    Searches report to ``run.warnings``: a partial answer fails the evaluation unless the rule
    allows partial results; when it does, matches that missing documents could have caused
    (``Match.absence``: flatline, down-spikes, minimums) are held back with a warning.

    Returns:
        ``{"type": "rule", "status": "success", "payload": {"rule_type", "window": {"start", "end"},
        "total_matches", "matches": [Match JSON], "info"}, "rule": {"type"}}``.

    Raises:
        watcher.es.shards.PartialResultsError: a search answered from only some shards and the
            rule does not allow partial results (a transient cluster error).
        whatever else the type's queries raise (the pipeline records a failed input).
    """
    spec = run.watch.rule
    module = REGISTRY.get(spec.type)
    start, end = run.rule_window
    stored = run.rule_state.get("type_state") or {}
    same_type = stored.get("type") == spec.type
    evaluation = Evaluation(spec=spec, params=spec.type_params, es=run.services.es, start=start, end=end,
                            state=copy.deepcopy(stored.get("data") or {}) if same_type else {},
                            first_run=not same_type, warnings=run.warnings)
    matches = hold_absences(evaluation, module.evaluate(evaluation))
    run.rule_state["type_state"] = {"type": spec.type, "data": evaluation.state}
    payload = {"rule_type": spec.type, "window": {"start": iso(start), "end": iso(end)},
               "total_matches": len(matches), "matches": [m.to_json() for m in matches], "info": evaluation.info}
    return {"type": TYPE, "status": "success", "payload": payload, TYPE: {"type": spec.type}}
