"""JSON Schemas (draft 2020-12) for rule files, watch files and connectors.yaml.

Editors use them through the YAML language server (``# yaml-language-server: $schema=…``) for
completion and inline validation. The rule schema comes from the pydantic models
(:class:`~watcher.definitions.rule.RuleSpec`), the connectors schema from the connector types'
``Config`` models, and the watch schema is written here from Watcher's documented shapes
(docs/semantics.md#watch-definition), since Watcher's component
bodies are keyed by type name. The schemas help editing; ``watcher validate`` stays the authority.
"""

from __future__ import annotations

import copy
from typing import Any

from watcher.destinations import ACTIONS
from watcher.destinations import CONNECTORS as DESTINATIONS_REGISTRY
from watcher.engine.ruletypes import REGISTRY, TYPES
from watcher.model.rule import RuleSpec
from watcher.model.schema_parts import SCRIPT, TIME_VALUE, http_request_schema

__all__ = ["KINDS", "FILE_NAMES", "connectors_schema", "rule_schema", "schema", "watch_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
KINDS = ("rule", "watch", "connectors")
FILE_NAMES = {kind: f"{kind}.schema.json" for kind in KINDS}


def schema(kind: str) -> dict:
    """The schema of ``kind`` (``rule``, ``watch`` or ``connectors``). Raises KeyError otherwise."""
    return {"rule": rule_schema, "watch": watch_schema, "connectors": connectors_schema}[kind]()


def _header(kind: str, title: str, description: str) -> dict:
    return {"$schema": DIALECT, "title": title, "description": description}


def rule_schema() -> dict:
    """Schema of a rule file, from :class:`~watcher.definitions.rule.RuleSpec`."""

    body = RuleSpec.model_json_schema(ref_template="#/$defs/{model}")
    body["properties"]["type"]["enum"] = list(TYPES)  # the engine's rule types (the model cannot know them)
    body.pop("title", None)
    compare = _compare_condition_schema()
    props = body["$defs"]["RuleCondition"]["properties"]
    props["compare"] = {**compare["compare"], "description": props["compare"].get("description", "")}
    props["array_compare"] = {**compare["array_compare"],
                              "description": props["array_compare"].get("description", "")}
    body["$defs"]["RuleCondition"].update(minProperties=1, maxProperties=1)
    body["allOf"] = _params_by_type(body["$defs"])
    return {**_header("rule", "watcher rule",
                      "An alert rule in watcher's YAML format: one rule per file (docs: README, rules/)."), **body}


def _params_by_type(defs: dict) -> list[dict]:
    """``if type is X then params is X's Params`` for every rule type (docs/rule-types.md)."""

    rules = []
    for name in REGISTRY.names():
        params = REGISTRY.get(name).Params.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(params.pop("$defs", {}))
        params["title"] = f"params of type {name}"
        rules.append({"if": {"required": ["type"], "properties": {"type": {"const": name}}},
                      "then": {"properties": {"params": params}}})
    return rules


def connectors_schema() -> dict:
    """Schema of connectors.yaml: ``{connectors: {name: {type: …, …}}}``, one branch per connector type."""

    defs: dict[str, Any] = {}
    branches = []
    for name in DESTINATIONS_REGISTRY.names():
        model = DESTINATIONS_REGISTRY.get(name).Config
        sub = _timeouts_as_time_values(model.model_json_schema(ref_template="#/$defs/{model}", mode="validation"))
        defs.update(sub.pop("$defs", {}))
        key = f"{name}_connector"
        defs[key] = sub
        branches.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                         "then": {"$ref": f"#/$defs/{key}"}})
    connector = {
        "type": "object",
        "description": "One connector. Strings may use ${ENV_VAR} or ${file:/path} for secrets.",
        "required": ["type"],
        "properties": {"type": {"enum": DESTINATIONS_REGISTRY.names(), "description": "The connector type."}},
        "allOf": branches,
    }
    defs["connector"] = connector
    return {
        **_header("connectors", "watcher connectors",
                  "Named connectors (destinations with their secrets) that rule actions refer to."),
        "type": "object",
        "additionalProperties": False,
        "properties": {"connectors": {
            "type": ["object", "null"],
            "description": "Connectors by name (the name rule actions give as connector:).",
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"},
            "additionalProperties": {"$ref": "#/$defs/connector"}}},
        "$defs": defs,
    }


def _timeouts_as_time_values(node: Any) -> Any:
    """Timeouts are validated by a before-validator that takes "5s" as well as seconds, but pydantic
    describes them as plain numbers; describe both forms."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                value = {name: ({**{k: v for k, v in prop.items() if k != "type"},
                                 "anyOf": [{"type": "number", "description": "Seconds."}, TIME_VALUE]}
                                if name.endswith("timeout") and isinstance(prop, dict) and prop.get("type") == "number"
                                else prop)
                         for name, prop in value.items()}
            out[key] = _timeouts_as_time_values(value)
        return out
    if isinstance(node, list):
        return [_timeouts_as_time_values(item) for item in node]
    return node


# ---- watch schema (hand-written from Watcher's documentation) -------------------------------------

_OPS = ("eq", "not_eq", "gt", "gte", "lt", "lte")


def _compare_condition_schema() -> dict:
    compare_value = {"description": "A literal, <{date math}> or {{ctx.path}}."}
    compare = {"type": "object", "description": "{<ctx path>: {<op>: value}} (see Watcher's compare condition).",
               "propertyNames": {"pattern": "^ctx\\."},
               "additionalProperties": {"type": "object", "minProperties": 1, "maxProperties": 1,
                                        "properties": {op: compare_value for op in _OPS},
                                        "additionalProperties": False}}
    quantified = {"anyOf": [{}, {"type": "object", "properties": {
        "value": {}, "quantifier": {"enum": ["some", "all"], "default": "some"}}, "additionalProperties": False}]}
    array_compare = {"type": "object",
                     "description": "{<ctx path to an array>: {path: <field>, <op>: {value, quantifier}}} "
                                    "(see Watcher's array_compare condition).",
                     "propertyNames": {"pattern": "^ctx\\."},
                     "additionalProperties": {"type": "object", "properties": {
                         "path": {"type": "string", "default": ""}, **{op: quantified for op in _OPS}},
                         "additionalProperties": False}}
    return {"compare": compare, "array_compare": array_compare}


def _one_of_types(types: dict[str, Any], description: str, extra: dict | None = None) -> dict:
    """An object holding exactly one of ``types`` (plus ``extra`` sibling keys)."""
    extra = extra or {}
    return {"type": "object", "description": description,
            "properties": {**types, **extra},
            "additionalProperties": False,
            "oneOf": [{"required": [name]} for name in types]}


def _search_request() -> dict:
    return {"type": "object", "description": "A Watcher search request (the search input's request).", "properties": {
        "indices": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "search_type": {"enum": ["query_then_fetch", "dfs_query_then_fetch"]},
        "body": {"type": "object", "description": "Query DSL; string values are Mustache templates."},
        "template": {"type": "object", "properties": {
            "source": {}, "id": {"type": "string"}, "params": {"type": "object"}, "lang": {"const": "mustache"},
            "options": {"type": "object"}}, "additionalProperties": False},
        "indices_options": {"type": "object"},
        "rest_total_hits_as_int": {"type": "boolean", "default": True}}, "additionalProperties": False}


def _search(with_extract: bool) -> dict:
    props = {"request": _search_request(), "timeout": TIME_VALUE, "timeout_in_millis": {"type": "integer"},
             "dynamic_name_timezone": {"type": "string"}}
    if with_extract:
        props["extract"] = {"type": "array", "items": {"type": "string"}}
    return {"type": "object", "required": ["request"], "properties": props, "additionalProperties": False}


def watch_schema() -> dict:
    """Schema of a watch file: the body of ``PUT _watcher/watch/<id>``
    (docs/semantics.md#watch-definition)."""
    schedule_types = {
        "interval": {"anyOf": [{"type": "string", "pattern": "^[0-9]+[smhdw]$"}, {"type": "integer", "minimum": 1}],
                     "description": "Every n units: 30s, 5m, 1h, 1d, 1w (a number means seconds)."},
        "hourly": {"type": "object", "properties": {"minute": {}}},
        "daily": {"type": "object", "properties": {"at": {}}},
        "weekly": {"anyOf": [{"type": "object"}, {"type": "array"}]},
        "monthly": {"anyOf": [{"type": "object"}, {"type": "array"}]},
        "yearly": {"anyOf": [{"type": "object"}, {"type": "array"}]},
        "cron": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                 "description": "Quartz cron: second minute hour day-of-month month day-of-week [year]."},
    }
    schedule = _one_of_types(schedule_types, "Exactly one schedule type, plus an optional timezone.",
                             {"timezone": {"type": "string", "description": "IANA zone for calendar schedules."}})
    inputs = {
        "none": {"type": "object"}, "simple": {"type": "object", "description": "The payload itself."},
        "search": _search(True),
        "http": {"type": "object", "properties": {
            "request": http_request_schema(), "extract": {"type": "array", "items": {"type": "string"}},
            "response_content_type": {"enum": ["json", "yaml", "text"]}}, "required": ["request"],
            "additionalProperties": False},
        "chain": {"type": "object", "properties": {"inputs": {"type": "array", "items": {
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/input"}}}}, "required": ["inputs"],
            "additionalProperties": False},
    }
    conditions = {"always": {"type": "object"}, "never": {"type": "object"}, **_compare_condition_schema(),
                  "script": SCRIPT}
    transforms = {"search": _search(False), "script": SCRIPT,
                  "chain": {"type": "array", "items": {"$ref": "#/$defs/transform"}}}
    # Each destination gives the schema of its action body; Watcher's other action types are known
    # names (a watch using one is reported by validate) without a schema of their own.
    action_types = {name: ACTIONS.get(name).ACTION_SCHEMA for name in ACTIONS.names()}
    action_types.update({"email": {"type": "object"}, "pagerduty": {"type": "object"}, "jira": {"type": "object"}})
    wrapper = {"throttle_period": TIME_VALUE,
               "throttle_period_in_millis": {"type": "integer", "minimum": 0},
               "condition": {"$ref": "#/$defs/condition"}, "transform": {"$ref": "#/$defs/transform"},
               "foreach": {"type": "string", "pattern": "^ctx\\."},
               "max_iterations": {"type": "integer", "minimum": 1, "default": 100}}
    defs = {
        "input": _one_of_types(inputs, "Exactly one input type (default none)."),
        "condition": _one_of_types(conditions, "Exactly one condition type (default always)."),
        "transform": _one_of_types(transforms, "Exactly one transform type."),
        "action": _one_of_types(action_types, "Exactly one action type, plus the action wrapper settings.", wrapper),
    }
    return {
        **_header("watch", "Elastic Watcher watch",
                  "A watch as PUT _watcher/watch/<id> accepts it (the file name is the watch id)."),
        "type": "object",
        "required": ["trigger"],
        "additionalProperties": False,
        "properties": {
            "trigger": {"type": "object", "required": ["schedule"], "additionalProperties": False,
                        "properties": {"schedule": schedule}, "description": "When the watch runs."},
            "input": {"$ref": "#/$defs/input"},
            "condition": {"$ref": "#/$defs/condition"},
            "transform": {"$ref": "#/$defs/transform"},
            "actions": {"type": "object", "description": "Actions by id, run in order.",
                        "additionalProperties": {"$ref": "#/$defs/action"}},
            "metadata": {"type": "object", "description": "Exposed as ctx.metadata."},
            "throttle_period": TIME_VALUE,
            "throttle_period_in_millis": {"type": "integer", "minimum": 0},
            "status": {"type": "object", "description": "Ignored on load (Watcher ignores it on PUT)."},
        },
        "$defs": copy.deepcopy(defs),
    }
