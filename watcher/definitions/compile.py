"""Compile a rule (:class:`~watcher.definitions.rule.RuleSpec`) into the one model, a :class:`Watch`.

The watch is what Watcher would run for the rule (Kibana's ES-query rule,
docs/semantics.md#kibana-es-query-rule, expressed with Watcher's parts, docs/semantics.md#inputs, #conditions
and #action-wrapper):

* input: a ``search`` on the rule's indices; body ``{"size": hits, "track_total_hits": true,
  "sort": [{time_field: {"order": "desc", "unmapped_type": "date"}}], "query": {"bool": {"filter":
  [<query>, <range>]}}}``. The range is ``[scheduled − window − delay, scheduled − delay)`` written
  as date math on ``{{ctx.trigger.scheduled_time}}``, so consecutive runs leave no gap and no overlap.
  ``unmapped_type`` keeps the search working on indices without the time field.
* with ``group_by``: a terms aggregation ``groups`` (size ``max_groups``; ``min_doc_count`` from a
  ``gt``/``gte`` count threshold, so the cluster drops small groups without pipeline aggregations),
  with a ``sample`` top_hits (the group's hits for templates) and the ``metric`` aggregation.
* condition: count → ``compare`` on ``ctx.payload.hits.total``; grouped count → ``array_compare`` on
  ``ctx.payload.aggregations.groups.buckets`` (path ``doc_count``, quantifier ``some``); metric →
  ``compare`` on ``ctx.payload.aggregations.metric.value`` / grouped ``array_compare`` (path
  ``metric.value``); Watcher ``compare``/``array_compare`` as given.
* actions: one per rule action, id ``<connector>`` (``-2``, ``-3``… for repeats), type = the
  connector's type, body ``{"connector": NAME, …overrides}`` with each Jinja2 template string (see
  :func:`jinja_template`) as a Watcher template object ``{"source": …, "lang": "jinja"}``; ``throttle`` → ``throttle_period``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from watcher.definitions.watch import parse_actions, registries
from watcher.destinations import CONNECTORS
from watcher.engine.windows import uses_calendar_window
from watcher.errors import DefinitionProblem
from watcher.model.problems import DefinitionError, Problem, Reader
from watcher.model.rule import RuleSpec, query_clause, rule_action_ids
from watcher.model.source import Document
from watcher.model.watch import Component, Trigger, Watch
from watcher.schedule import parse_rule_schedule
from watcher.support.durations import format_duration, parse_interval, parse_time_value, to_millis

__all__ = ["GROUPS_AGG", "METRIC_AGG", "NotConvertible", "SAMPLE_AGG", "compile_rule", "jinja_template",
           "rule_action_ids", "rule_trigger",
           "watch_body", "watch_to_rule"]

GROUPS_AGG = "groups"
METRIC_AGG = "metric"
SAMPLE_AGG = "sample"
SCHEDULED = "{{ctx.trigger.scheduled_time}}"
WINDOW_START = "{{ctx.trigger.window_start}}"  # set by the engine for calendar windows (engine/windows.py)
MAX_SAMPLE = 100  # index.max_inner_result_window default: the most hits a top_hits may return
_JINJA_MARKS = ("{{", "{%", "{#")


def compile_rule(spec: RuleSpec, file: str, connectors: Mapping[str, Any]) -> Watch:
    """The watch for ``spec``; ``Watch.rule`` is ``spec`` and ``Watch.body`` the Watcher JSON.

    Args:
        spec: a validated rule (from :func:`watcher.definitions.rule.parse_rule`, or built in code).
        file: the rule's file (``Watch.file``).
        connectors: ``{name: Connector}``; each action's connector must be there (its ``type`` is
            the action type).

    Raises:
        DefinitionError: a connector is missing, or a compiled part is refused by its type module
            (the problems point at the rule file).
    """

    body = watch_body(spec, connectors, file)
    reader = Reader(Document(file=file, data=body, text=""))
    kinds = registries()
    trigger = rule_trigger(spec, file)
    if spec.is_threshold:
        input_ = kinds["input"].parse(reader, body["input"], ("input",))
    else:  # the rule input is ours (no Watcher equivalent), so no watch file may use it
        input_ = Component(type="rule", config=None, body=body["input"]["rule"])
    condition = kinds["condition"].parse(reader, body["condition"], ("condition",))

    actions = parse_actions(reader, body["actions"], ("actions",), kinds)
    reader.raise_if_problems()
    return Watch(id=spec.name, file=file, trigger=trigger, input=input_, condition=condition, transform=None,
                 actions=tuple(actions), throttle_period=None, metadata=spec.metadata, active=spec.enabled,
                 rule=spec, body=body)


def rule_trigger(spec: RuleSpec, file: str = "<rule>") -> Trigger:
    """The parsed schedule of ``spec`` (parsed again when the spec was built in code)."""
    if spec.trigger is not None:
        return spec.trigger

    reader = Reader(Document(file=file, data={"schedule": spec.schedule}, text=""))
    trigger = parse_rule_schedule(reader, spec.schedule, ("schedule",), None)
    reader.raise_if_problems()
    return trigger


def watch_body(spec: RuleSpec, connectors: Mapping[str, Any], file: str | None = None, *,
               portable: bool = False) -> dict:
    """The Watcher JSON of the compiled rule (``trigger``, ``input``, ``condition``, ``actions``, ``metadata``).

    Args:
        portable: for Elastic Watcher (``watcher convert --to watch``): a calendar window is written
            as the fixed ``window`` (Watcher's ctx has no previous fire time).

    Raises:
        DefinitionError: an action names a connector that is not in ``connectors``.
    """
    if spec.is_threshold:
        input_json = {"search": {"request": {"indices": list(spec.index), "body": search_body(spec, portable=portable)}}}
    else:
        input_json = {"rule": {"type": spec.type, "indices": list(spec.index), "params": spec.params or {}}}
    body: dict[str, Any] = {
        "trigger": _trigger_json(spec, file),
        "input": input_json,
        "condition": condition_json(spec),
        "actions": actions_json(spec, connectors, file),
    }
    if spec.metadata is not None:
        body["metadata"] = spec.metadata
    return body


def _trigger_json(spec: RuleSpec, file: str | None) -> dict:
    """Watcher's ``trigger`` object, as :func:`watcher.schedule.parse_rule_schedule` translated it."""
    return dict(rule_trigger(spec, file or spec.file or "<rule>").body)


def search_body(spec: RuleSpec, *, portable: bool = False) -> dict:
    """The search body of the rule's input (see the module docstring). A calendar window
    (:func:`watcher.engine.windows.uses_calendar_window`) starts where the engine says, as
    ``ctx.trigger.window_start`` (the previous fire time, delay applied); ``portable`` writes the
    fixed window instead."""
    if uses_calendar_window(spec) and not portable:
        window_start = WINDOW_START
    else:
        window_start = SCHEDULED + "||-" + format_duration(spec.window + spec.delay)
    window_end = SCHEDULED + ("||-" + format_duration(spec.delay) if spec.delay else "")
    clauses: list[dict] = []
    if spec.query is not None:
        clauses.append(query_clause(spec.query))
    clauses.append({"range": {spec.time_field: {"gte": window_start, "lt": window_end,
                                                "format": "strict_date_optional_time"}}})
    sort = [{spec.time_field: {"order": "desc", "unmapped_type": "date"}}]
    body: dict[str, Any] = {"size": spec.hits, "track_total_hits": True, "sort": sort,
                            "query": {"bool": {"filter": clauses}}}
    source = {"_source": {"includes": list(spec.include)}} if spec.include else {}
    body.update(source)
    metric = spec.condition.metric
    metric_agg = {METRIC_AGG: {metric.agg: {"field": metric.field}}} if metric is not None else {}
    if spec.group_by:
        terms: dict[str, Any] = {"field": spec.group_by, "size": spec.max_groups}
        min_doc_count = _min_doc_count(spec)
        if min_doc_count is not None:
            terms["min_doc_count"] = min_doc_count
        order = group_order(spec)
        if order is not None:
            terms["order"] = order
        sub: dict[str, Any] = dict(metric_agg)
        if spec.hits:
            sub[SAMPLE_AGG] = {"top_hits": {"size": min(spec.hits, MAX_SAMPLE), "sort": sort, **source}}
        body["aggs"] = {GROUPS_AGG: {"terms": terms, **({"aggs": sub} if sub else {})}}
    elif metric_agg:
        body["aggs"] = metric_agg
    return body


def group_order(spec: RuleSpec) -> dict | None:
    """How a threshold rule ranks its groups when there are more than ``max_groups``: by the value
    its condition tests, the likeliest to fire first — a metric highest first for ``gt``/``gte`` and
    lowest first for ``lt``/``lte``, a count lowest first for ``lt``/``lte`` (the terms
    aggregation's default, most documents first, serves count ``gt``/``gte``). None keeps that
    default (also for ``eq``/``not_eq``, which no order serves). The ranking is made by the
    cluster per shard, as exact as the terms aggregation's (docs/rule-types.md#windows-groups-time-zones).
    """
    condition = spec.condition
    threshold = condition.metric if condition.metric is not None else condition.count
    if threshold is None:
        return None
    op = threshold.operator()[0]
    key = METRIC_AGG if condition.metric is not None else "_count"
    if op in ("gt", "gte"):
        return {key: "desc"} if key == METRIC_AGG else None
    if op in ("lt", "lte"):
        return {key: "asc"}
    return None


def _min_doc_count(spec: RuleSpec) -> int | None:
    """``min_doc_count`` implied by a ``gt``/``gte`` count threshold (None when there is none)."""
    count = spec.condition.count
    if count is None:
        return None
    op, value = count.operator()
    if op == "gte":
        least = math.ceil(value)
    elif op == "gt":
        least = math.floor(value) + 1
    else:
        return None
    return least if least > 1 else None


def condition_json(spec: RuleSpec) -> dict:
    """The Watcher condition of the rule (see the module docstring); typed rules fire when their
    type found matches."""
    if not spec.is_threshold:
        return {"compare": {"ctx.payload.total_matches": {"gt": 0}}}
    condition = spec.condition
    if condition.compare is not None:
        return {"compare": condition.compare}
    if condition.array_compare is not None:
        return {"array_compare": condition.array_compare}
    threshold = condition.count if condition.count is not None else condition.metric
    op, value = threshold.operator()
    if spec.group_by:
        path = "doc_count" if condition.count is not None else f"{METRIC_AGG}.value"
        return {"array_compare": {f"ctx.payload.aggregations.{GROUPS_AGG}.buckets": {
            "path": path, op: {"value": value, "quantifier": "some"}}}}
    left = "ctx.payload.hits.total" if condition.count is not None else f"ctx.payload.aggregations.{METRIC_AGG}.value"
    return {"compare": {left: {op: value}}}


def actions_json(spec: RuleSpec, connectors: Mapping[str, Any], file: str | None = None) -> dict:
    """``{action_id: {<connector type>: {"connector": name, …}, "throttle_period"?: …}}``."""
    out: dict[str, Any] = {}
    ids = rule_action_ids(spec)
    problems = []
    for index, action in enumerate(spec.actions):
        name = action.connector
        connector = connectors.get(name)
        if connector is None:
            problems.append(Problem(file or spec.file or "<rule>", 1, 1, f"actions[{index}].connector",
                                    f"unknown connector {name!r}"))
            continue
        action_id = ids[index]
        overrides = with_rule_defaults(connector, action.overrides)
        body = {"connector": name, **{k: jinja_template(v) for k, v in overrides.items()}}
        wrapper: dict[str, Any] = {connector.type: body}
        if spec.throttle is not None:
            wrapper["throttle_period"] = format_duration(spec.throttle)
        out[action_id] = wrapper
    if problems:
        raise DefinitionError(problems)
    return out


def with_rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """The action's overrides over the rule defaults. A default that is a mapping while the override
    of that key is a mapping too was built by ``rule_defaults`` from the override and kept: a Slack
    ``message`` given without ``text`` keeps the default text (a message with neither text nor
    attachments is refused by Slack), a PagerDuty ``custom_details`` keeps the message, Jira
    ``fields`` keep the summary."""
    module = CONNECTORS.get(connector.type) if connector.type in CONNECTORS else None
    rule_defaults = getattr(module, "rule_defaults", None)
    defaults = rule_defaults(connector, overrides) if rule_defaults else {}
    merged = {**defaults, **overrides}
    for key, value in defaults.items():
        if isinstance(value, Mapping) and isinstance(overrides.get(key), Mapping):
            merged[key] = value  # already the override's mapping with the defaults filled in
    return merged


def _without_defaults(kind: str, action: dict) -> dict:
    """The inverse of the destination's ``rule_defaults``, for converting a compiled watch back to a rule."""
    module = CONNECTORS.get(kind) if kind in CONNECTORS else None
    without = getattr(module, "without_rule_defaults", None)
    return without(action) if without else action


def jinja_template(value: Any) -> Any:
    """An override with Jinja2 markup → ``{"source": s, "lang": "jinja"}``.

    Applies to a string override, to the string values of a mapping override (``headers``,
    ``params``: name → template) and to the strings of a list override (an email's ``to``); other
    values are kept as they are.
    """
    if isinstance(value, str):
        return {"source": value, "lang": "jinja"} if any(mark in value for mark in _JINJA_MARKS) else value
    if isinstance(value, Mapping) and not ("source" in value and "lang" in value):
        return {k: (jinja_template(v) if isinstance(v, str) else v) for k, v in value.items()}
    if isinstance(value, list):
        return [jinja_template(v) if isinstance(v, str) else v for v in value]
    return value


# ---- the way back: a watch that has the rule's shape → a rule ------------------------------------

class NotConvertible(DefinitionProblem, ValueError):
    """A watch does not fit the rule form; the message names the part (``input.search…: why``)."""


_METRIC_TYPES = ("avg", "min", "max", "sum", "cardinality")
_BODY_KEYS = ("query", "size", "sort", "track_total_hits", "aggs", "aggregations", "_source")
_BOOL_KEYS = ("filter", "must", "must_not", "should", "minimum_should_match", "boost")
_MUSTACHE_SECTIONS = ("{{#", "{{^", "{{/")


def watch_to_rule(watch: Watch) -> dict:
    """The rule (plain mapping, file form) equivalent to ``watch``, when the watch fits the rule form.

    Fits: an interval or cron schedule; one ``search`` input whose body filters on a time range
    ``[now|{{ctx.trigger.scheduled_time}} − window − delay, … − delay)`` plus at most one query,
    with at most one terms aggregation (→ ``group_by``) and one metric aggregation; an ``always``,
    hit-count or metric ``compare``/``array_compare`` condition (other compare conditions are kept
    as is when the watch has no aggregations); actions that use connectors; one throttle period.

    Raises:
        NotConvertible: the message says which part of the watch does not fit and why.
    """
    body = watch.body or {}
    if body.get("transform"):
        raise NotConvertible("transform: the rule form has no watch-level transform")
    rule: dict[str, Any] = {"name": watch.id}
    if not watch.active:
        rule["enabled"] = False
    rule["schedule"] = _schedule_to_rule(body["trigger"]["schedule"])
    search = (body.get("input") or {}).get("search")
    if not isinstance(search, Mapping):
        kind = next(iter(body.get("input") or {"none": {}}))
        raise NotConvertible(f"input.{kind}: the rule form has one search input")
    if "extract" in search:
        raise NotConvertible("input.search.extract: the rule form keeps the whole search response")
    request = search.get("request") or {}
    if "template" in request or not isinstance(request.get("body"), Mapping):
        raise NotConvertible("input.search.request: the rule form needs a request body (not a search template)")
    indices = request.get("indices")
    if not indices:
        raise NotConvertible("input.search.request.indices: the rule form needs the indices to search")
    rule["index"] = indices if isinstance(indices, str) else list(indices)
    search_body_ = request["body"]
    base = "input.search.request.body"
    for key in search_body_:
        if key not in _BODY_KEYS:
            raise NotConvertible(f"{base}.{key}: the rule form has no such search option "
                                 f"(it uses {', '.join(_BODY_KEYS)})")
    time_field, window, delay, query = _split_query(search_body_.get("query"), f"{base}.query")
    rule["time_field"] = time_field
    rule["window"] = window
    if delay != "0s":
        rule["delay"] = delay
    if query is not None:
        rule["query"] = query
    rule["hits"] = search_body_.get("size", 10)
    if "_source" in search_body_:
        rule["include"] = _source_includes(search_body_["_source"], f"{base}._source")
    aggs = search_body_.get("aggs", search_body_.get("aggregations")) or {}
    grouping = _aggs_to_rule(aggs, f"{base}.aggs")
    if grouping.get("group_by"):
        rule["group_by"] = grouping["group_by"]
        rule["max_groups"] = grouping["max_groups"]
    rule["condition"] = _condition_to_rule(body.get("condition") or {"always": {}}, grouping)
    actions, throttle = _actions_to_rule(body)
    if throttle is not None:
        rule["throttle"] = throttle
    rule["actions"] = actions
    if body.get("metadata") is not None:
        rule["metadata"] = body["metadata"]
    try:
        spec = RuleSpec.model_validate(rule)
    except Exception as error:  # a value the rule form cannot hold (e.g. hits above 10000)
        raise NotConvertible(f"the converted rule is not valid: {error}") from None
    return spec.to_document()


def _source_includes(value: Any, where: str) -> list[str]:
    """``_source`` filtering → the rule's ``include`` (field names or patterns)."""
    includes = value.get("includes") if isinstance(value, Mapping) else value
    if isinstance(value, Mapping) and set(value) - {"includes"}:
        raise NotConvertible(f"{where}: the rule form keeps only _source.includes (as include)")
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise NotConvertible(f"{where}: the rule form needs a list of field names to include")
    return includes


def _schedule_to_rule(schedule: Mapping) -> Any:
    if "interval" in schedule:
        return format_duration(parse_interval(schedule["interval"]))
    if "cron" in schedule:
        crons = schedule["cron"]
        crons = [crons] if isinstance(crons, str) else list(crons)
        if len(crons) != 1:
            raise NotConvertible("trigger.schedule.cron: the rule form has one cron expression")
        out = {"cron": crons[0]}
        if schedule.get("timezone"):
            out["timezone"] = schedule["timezone"]
        return out
    kind = next((k for k in schedule if k != "timezone"), "?")
    raise NotConvertible(f"trigger.schedule.{kind}: the rule form has interval and cron schedules "
                         "(write this one as a cron expression)")


def _split_query(query: Any, where: str) -> tuple[str, str, str, Any]:
    """``(time_field, window, delay, rest of the query)`` from a query holding the time range."""
    if not isinstance(query, Mapping):
        raise NotConvertible(f"{where}: the rule form needs a range on a time field (found no query)")
    if "range" in query:
        return (*_window(query["range"], where), None)
    if "bool" not in query or not isinstance(query["bool"], Mapping):
        raise NotConvertible(f"{where}: the rule form needs a range on a time field in the query or in bool.filter")
    clauses = {k: v for k, v in query["bool"].items()}
    for key in clauses:
        if key not in _BOOL_KEYS:
            raise NotConvertible(f"{where}.bool.{key}: unknown bool query option")
    for occur in ("filter", "must"):
        items = clauses.get(occur)
        items = [items] if isinstance(items, Mapping) else list(items or [])
        for index, item in enumerate(items):
            if isinstance(item, Mapping) and "range" in item:
                try:
                    found = _window(item["range"], f"{where}.bool.{occur}[{index}].range")
                except NotConvertible:
                    continue
                rest = items[:index] + items[index + 1:]
                clauses[occur] = rest
                if not rest:
                    del clauses[occur]
                return (*found, _remaining_query(clauses))
    raise NotConvertible(f"{where}: the rule form needs a time range such as "
                         "{range: {'@timestamp': {gte: 'now-5m'}}} in bool.filter or bool.must")


def _remaining_query(clauses: dict) -> Any:
    """The rest of a bool query once the time range is taken out (one clause → that clause)."""
    lists = {k: ([v] if isinstance(v, Mapping) else list(v)) for k, v in clauses.items() if k in _BOOL_KEYS[:4]}
    others = {k: v for k, v in clauses.items() if k not in _BOOL_KEYS[:4]}
    total = sum(len(v) for v in lists.values())
    if total == 0:
        return None
    if total == 1 and not others and set(lists) & {"filter", "must"}:
        clause = next(v[0] for v in lists.values() if v)
        string = clause.get("query_string") if isinstance(clause, Mapping) else None
        if isinstance(string, Mapping) and set(string) == {"query"}:
            return string["query"]
        return clause
    return {"bool": {**{k: v for k, v in lists.items() if v}, **others}}


def _window(range_: Any, where: str) -> tuple[str, str, str]:
    """``(field, window, delay)`` from ``{field: {gte: <anchor>-X, lt|lte: <anchor>[-Y]}}``."""
    if not isinstance(range_, Mapping) or len(range_) != 1:
        raise NotConvertible(f"{where}: expected a range on one time field")
    field, spec = next(iter(range_.items()))
    start = spec.get("gte", spec.get("gt")) if isinstance(spec, Mapping) else None
    end = spec.get("lt", spec.get("lte")) if isinstance(spec, Mapping) else None
    start_anchor, start_offset = _anchored(start, f"{where}.{field}.gte")
    if start_offset is None:
        raise NotConvertible(f"{where}.{field}.gte: expected a look-back such as now-5m, found {start!r}")
    delay = 0
    if end is not None:
        end_anchor, end_offset = _anchored(end, f"{where}.{field}.lt")
        if end_anchor != start_anchor:
            raise NotConvertible(f"{where}.{field}: both ends of the range must use the same anchor "
                                 f"(now or {{{{ctx.trigger.scheduled_time}}}})")
        delay = end_offset or 0
    if start_offset <= delay:
        raise NotConvertible(f"{where}.{field}: the range is empty")

    return (str(field), format_duration(dt.timedelta(seconds=start_offset - delay)),
            format_duration(dt.timedelta(seconds=delay)))


_UNITS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "w": 604800}


def _anchored(value: Any, where: str) -> tuple[str, int | None]:
    """``now-5m`` → ``("now", 300)``; ``{{ctx.trigger.scheduled_time}}||-5m`` → ``("scheduled", 300)``."""

    if not isinstance(value, str):
        raise NotConvertible(f"{where}: expected date math such as now-5m, found {value!r}")
    text = value.replace(" ", "")
    for anchor, prefix in (("now", "now"), ("scheduled", SCHEDULED.replace(" ", "") + "||")):
        if text == prefix.rstrip("|"):
            return anchor, None
        if text.startswith(prefix):
            match = re.fullmatch(r"-(\d+)([smhHdw])", text[len(prefix):])
            if not match:
                raise NotConvertible(f"{where}: the rule form needs a plain offset such as -5m "
                                     f"(no rounding, months or years), found {value!r}")
            return anchor, int(match[1]) * _UNITS[match[2]]
    raise NotConvertible(f"{where}: expected now-<duration> or {{{{ctx.trigger.scheduled_time}}}}||-<duration>, "
                         f"found {value!r}")


def _aggs_to_rule(aggs: Mapping, where: str) -> dict:
    """``{group_by, max_groups, terms_name, metric: {agg, field}, metric_name}`` from the aggregations."""
    if not aggs:
        return {}
    if len(aggs) != 1:
        raise NotConvertible(f"{where}: the rule form has one aggregation (a terms for group_by, or a metric)")
    name, agg = next(iter(aggs.items()))
    kinds = [k for k in agg if k not in ("aggs", "aggregations", "meta")]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind in _METRIC_TYPES and set(agg[kind]) == {"field"}:
        return {"metric": {"agg": kind, "field": agg[kind]["field"]}, "metric_name": name}
    if kind != "terms" or not isinstance(agg["terms"].get("field"), str):
        raise NotConvertible(f"{where}.{name}: the rule form supports a terms aggregation on a field "
                             f"(group_by) or one of {', '.join(_METRIC_TYPES)}")
    terms = agg["terms"]
    extra = [k for k in terms if k not in ("field", "size", "min_doc_count", "order")]
    if extra:
        raise NotConvertible(f"{where}.{name}.terms.{extra[0]}: the rule form has no such terms option")
    out = {"group_by": terms["field"], "max_groups": terms.get("size", 10), "terms_name": name}
    sub = agg.get("aggs", agg.get("aggregations")) or {}
    for sub_name, sub_agg in sub.items():
        sub_kind = next(iter(sub_agg), None)
        if sub_kind == "top_hits":
            continue  # the rule's per-group sample hits
        if sub_kind in _METRIC_TYPES and set(sub_agg[sub_kind]) == {"field"} and "metric" not in out:
            out["metric"] = {"agg": sub_kind, "field": sub_agg[sub_kind]["field"]}
            out["metric_name"] = sub_name
            continue
        raise NotConvertible(f"{where}.{name}.aggs.{sub_name}: the rule form has one metric sub-aggregation "
                             f"({', '.join(_METRIC_TYPES)})")
    return out


def _condition_to_rule(condition: Mapping, grouping: dict) -> dict:
    kind = next(iter(condition), "always")
    body = condition[kind] if condition else {}
    grouped = bool(grouping.get("group_by"))
    if kind == "always":
        if grouped:
            raise NotConvertible("condition.always: a grouped rule needs a count or metric threshold")
        return {"count": {"gte": 0}}
    if kind == "compare" and len(body) == 1:
        path, ops = next(iter(body.items()))
        op, value = _single_op(ops, f"condition.compare.{path}")
        metric_name = grouping.get("metric_name")
        if path in ("ctx.payload.hits.total", "ctx.payload.hits.total.value") and not grouped and _is_number(value):
            return {"count": {op: value}}
        if metric_name and not grouped and path == f"ctx.payload.aggregations.{metric_name}.value" and _is_number(value):
            return {"metric": {**grouping["metric"], op: value}}
    if kind == "array_compare" and len(body) == 1 and grouped:
        path, spec = next(iter(body.items()))
        if path == f"ctx.payload.aggregations.{grouping['terms_name']}.buckets":
            element = spec.get("path", "")
            ops = {k: v for k, v in spec.items() if k != "path"}
            op, value = _single_op(ops, f"condition.array_compare.{path}")
            quantifier = "some"
            if isinstance(value, Mapping):
                quantifier = value.get("quantifier", "some")
                value = value.get("value")
            if quantifier == "some" and _is_number(value):
                if element == "doc_count":
                    return {"count": {op: value}}
                if grouping.get("metric_name") and element == f"{grouping['metric_name']}.value":
                    return {"metric": {**grouping["metric"], op: value}}
    if kind in ("compare", "array_compare"):
        if grouping:
            raise NotConvertible(f"condition.{kind}: with aggregations, the rule form's condition is a "
                                 "threshold on the hit count or the metric")
        return {kind: body}
    raise NotConvertible(f"condition.{kind}: the rule form has count, metric, compare and array_compare conditions")


def _single_op(ops: Any, where: str) -> tuple[str, Any]:
    if not isinstance(ops, Mapping) or len(ops) != 1:
        raise NotConvertible(f"{where}: expected one operator")
    return next(iter(ops.items()))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _actions_to_rule(body: Mapping) -> tuple[list[dict], str | None]:
    actions, periods = [], set()
    watch_period = body.get("throttle_period", body.get("throttle_period_in_millis"))
    for action_id, wrapper in (body.get("actions") or {}).items():
        where = f"actions.{action_id}"
        for key in ("condition", "transform", "foreach", "max_iterations"):
            if key in wrapper:
                raise NotConvertible(f"{where}.{key}: the rule form has no per-action {key}")
        period = wrapper.get("throttle_period", wrapper.get("throttle_period_in_millis", watch_period))
        periods.add(None if period is None else to_millis(parse_time_value(period)))
        kinds = [k for k in wrapper if k not in ("throttle_period", "throttle_period_in_millis")]
        kind = kinds[0]
        action_body = wrapper[kind]
        if not isinstance(action_body, Mapping) or "connector" not in action_body:
            raise NotConvertible(f"{where}.{kind}: a Watcher {kind} action without a connector; define the "
                                 f"destination in connectors.yaml and write {{{kind}: {{connector: NAME}}}}")
        converted = {"connector": action_body["connector"]}
        for key, value in action_body.items():
            if key != "connector":
                converted[key] = _template_to_rule(value, f"{where}.{kind}.{key}")
        actions.append(_without_defaults(kind, converted))
    if len(periods) > 1:
        raise NotConvertible("actions: the rule form has one throttle for all actions; these actions differ")
    millis = periods.pop() if periods else None

    return actions, (None if millis is None else format_duration(dt.timedelta(milliseconds=millis)))


def _template_to_rule(value: Any, where: str) -> Any:
    if isinstance(value, Mapping) and "source" in value and value.get("lang") == "jinja":
        return value["source"]
    if isinstance(value, str) and any(mark in value for mark in _MUSTACHE_SECTIONS):
        raise NotConvertible(f"{where}: Mustache sections ({{{{#…}}}}) do not carry over to the rule's Jinja2 "
                             "templates; rewrite it with {% for %} / {% if %}")
    if isinstance(value, Mapping):
        return {k: _template_to_rule(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_template_to_rule(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
