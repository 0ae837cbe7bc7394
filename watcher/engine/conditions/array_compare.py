"""``array_compare``: compare every element of an array in the execution context with a value.

Definition (docs/semantics.md#array-compare-condition)::

    {"array_compare": {"ctx.payload.aggregations.top.buckets": {
        "path": "doc_count",
        "gte": {"value": 25, "quantifier": "some"}}}}

Exactly one array path (``ctx.…``); ``path`` (default ``""``, the element itself) is a dot path
inside each element; exactly one operator (as in ``compare``) whose object holds ``value``
(required; date math ``"<{now-5m}>"`` and ``"{{ctx.path}}"`` work as in ``compare``) and
``quantifier``: ``some`` (default) or ``all`` — there is no ``any``. An empty or missing array is
met for ``all`` and not met for ``some``; an incomparable pair is false for every operator,
``not_eq`` included; a value at the array path that is not an array is an error
(docs/semantics.md#array-compare-condition and #array-compare-quantifiers).

Result (``resolved_values`` holds the whole array, ``[]`` when missing, as Watcher records it)::

    {"type": "array_compare", "status": "success", "met": true,
     "array_compare": {"resolved_values": {"ctx.payload.aggregations.top.buckets": [...]}}}

Ours adds ``total_hits`` and ``unsure`` as ``compare`` does, for elements whose value is a
total-hits object (docs/correctness.md#hit-totals-as-objects).

Source: ArrayCompareCondition.java (x-pack watcher).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from watcher.engine.conditions.compare import (check_value, json_text, note_totals, parse_operator, parse_path_and_body,
                                               result_value, unsure_reason, warn_unsure)
from watcher.model.problems import Reader, describe
from watcher.model.source import plain
from watcher.support.compare import OPERATORS, QUANTIFIERS, decide, quantified_decision, resolve_compare_value
from watcher.support.paths import resolve_path

TYPE = "array_compare"

_OPERATOR_KEYS = ("value", "quantifier")


@dataclasses.dataclass(frozen=True)
class ArrayCompareConfig:
    """``array_path`` (``ctx.…``), ``element_path`` (``""`` = the element), ``op`` (lower case),
    ``value`` (as configured), ``quantifier`` (``some`` or ``all``)."""

    array_path: str
    element_path: str
    op: str
    value: Any
    quantifier: str = "some"


def parse(reader: Reader, body: Any, path) -> ArrayCompareConfig | None:
    """Validate ``{"<ctx path>": {"path": "…", "<op>": {"value": v, "quantifier": "some"|"all"}}}``."""
    found = parse_path_and_body(reader, body, path,
                                example="{ctx.payload.aggregations.top.buckets: {path: doc_count, gte: {value: 25}}}")
    if found is None:
        return None
    array_path, spec = found
    spec_path = (*path, array_path)
    if reader.mapping(spec_path, spec, "a mapping such as {path: doc_count, gte: {value: 25, quantifier: some}}") is None:
        return None
    before = len(reader.problems)
    element_path = plain(spec.get("path", ""))
    if not isinstance(element_path, str):
        reader.expected((*spec_path, "path"), "a dot path inside each element such as doc_count", element_path)
    op_keys = [key for key in spec if key != "path"]
    ops = [(key, parse_operator(reader, spec_path, key, also=("path",))) for key in op_keys]
    if len(reader.problems) > before:  # an unknown key already explains what is wrong
        return None
    if len(op_keys) != 1:
        reader.problem(spec_path, f"expected exactly one comparison operator (one of: {', '.join(OPERATORS)}) "
                                  f"besides 'path', found {len(op_keys)}" +
                                  (f": {', '.join(map(str, op_keys))}" if op_keys else ""))
    if len(reader.problems) > before:
        return None
    op_key, op = ops[0]
    op_path = (*spec_path, op_key)
    op_body = reader.mapping(op_path, spec[op_key], "a mapping such as {value: 25, quantifier: some}")
    if op_body is None:
        return None
    for key in op_body:
        if key not in _OPERATOR_KEYS:
            reader.unknown_key(op_path, str(key), _OPERATOR_KEYS)
    if "value" not in op_body:
        reader.problem(op_path, "missing required field 'value'")
    quantifier = plain(op_body.get("quantifier", "some"))
    if not isinstance(quantifier, str) or quantifier.lower() not in QUANTIFIERS:
        hint = " (Watcher has no 'any': use 'some')" if isinstance(quantifier, str) and quantifier.lower() == "any" else ""
        reader.expected((*op_path, "quantifier"), f"'some' or 'all'{hint}", quantifier)
    if len(reader.problems) > before:
        return None
    value = plain(op_body["value"])
    if not check_value(reader, (*op_path, "value"), op, value):
        return None
    return ArrayCompareConfig(array_path=array_path, element_path=element_path, op=op, value=value,
                              quantifier=quantifier.lower())


def execute(config: ArrayCompareConfig, run: Any, model: dict) -> dict:
    """Compare ``config.element_path`` of every element of the array at ``config.array_path``.

    Date math ``now`` is ``run.services.clock()``. Elements whose value is a total-hits object are
    compared by their count (listed under ``total_hits`` by path, ``<array path>.<index>.<path>``);
    when lower-bound counts leave the quantifier undecided, ``met`` is false, ``unsure`` gives the
    reason and a WARNING is logged (docs/correctness.md#hit-totals-as-objects).

    Raises:
        ValueError: the value at the array path is neither an array nor missing/null.
    """
    expected, resolved_key = resolve_compare_value(config.value, model, run.services.clock())
    array = resolve_path(model, config.array_path)
    if array is not None and not isinstance(array, (list, tuple)):
        raise ValueError(f"array_compare: the array path [{config.array_path}] did not evaluate to an array, "
                         f"found {describe(array)}")
    elements = list(array or [])
    right_name = resolved_key if resolved_key is not None else json_text(expected)
    decisions = []
    for index, element in enumerate(elements):
        left_name = ".".join(part for part in (config.array_path, str(index), config.element_path) if part)
        decision = decide(config.op, resolve_path(element, config.element_path), expected, array=True,
                          count_right=resolved_key is not None)
        decisions.append((decision, {"left": left_name, "right": right_name}))
    met = quantified_decision(config.quantifier, (decision.met for decision, _ in decisions))
    resolved = {}
    if resolved_key is not None:
        resolved[resolved_key] = result_value(expected)
    resolved[config.array_path] = result_value(elements)
    body: dict[str, Any] = {"resolved_values": resolved}
    note_totals(body, decisions)
    if met is None:
        decision, names = next((d, n) for d, n in decisions if d.met is None)
        body["unsure"] = unsure_reason(config.op, decision, names,
                                       f" and no other element decides the quantifier '{config.quantifier}'")
        warn_unsure(run, TYPE, body["unsure"])
    return {"type": TYPE, "status": "success", "met": met is True, TYPE: body}

