"""The rule model: what one rule file (the friendlier YAML form) holds, as a typed :class:`RuleSpec`.

The format mirrors Kibana's Elasticsearch-query rule (index, time field, window, query, group by,
threshold on the count or on a metric) plus the connector flow (actions name a connector and
override its parameters), with ElastAlert2's names where users know them (``filter``, ``realert``,
``type`` + ``params``); docs/semantics.md#kibana-es-query-rule, #kibana-rule-actions and
#elastalert2-rule-options say where each comes from. Reading a file into a spec (positions, cross-field
checks) is :mod:`watcher.definitions.rule`; a spec compiles to a watch (:mod:`watcher.definitions.compile`),
and the engine runs a rule from ``Watch.rule``.

The rule types (``type``, ``params``) are the engine's (:mod:`watcher.engine.ruletypes`), which
registers them here with :func:`register_rule_types` when it is imported: the model layer sits below
the engine and cannot import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, WithJsonSchema, field_validator,
                      model_validator)

from watcher.model.fields import Duration, DurationOrZero, Number, Text
from watcher.model.problems import describe, did_you_mean
from watcher.support.durations import format_duration

__all__ = ["COMPARISON_OPS", "METRIC_AGGS", "RuleAction", "RuleCondition", "RuleFilter", "RuleSpec",
           "Threshold", "MetricThreshold", "filter_clauses", "query_clause", "register_rule_types", "rule_action_ids"]

COMPARISON_OPS = ("gt", "gte", "lt", "lte", "eq", "not_eq")
"""Threshold operators, Watcher's compare names (docs/semantics.md#compare-condition)."""
METRIC_AGGS = ("avg", "min", "max", "sum", "cardinality")
CONDITION_KINDS = ("count", "metric", "compare", "array_compare")
DEFAULT_SCHEDULE = "1m"
THRESHOLD = "threshold"
"""The default rule type: a count or metric condition, compiled to a plain Watcher watch."""
DEFAULT_CONDITION = {"count": {"gt": 0}}

_QUERY_SCHEMA = {
    "description": "A Lucene query_string query (string) or an Elasticsearch query DSL object "
                   "such as {term: {event.outcome: failure}}.",
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "object", "minProperties": 1, "maxProperties": 1}],
}


def _index(value: Any) -> list[str]:
    """``logs-*``, ``a,b`` or ``[a, b]`` → a list of names (blanks around commas dropped)."""
    expected = "an index name, pattern or comma-separated list (logs-*, a,b) or a list of them"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected {expected}, found {describe(value)}")
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"expected {expected}, found {describe(value)}")
        names.append(item.strip())
    return names


Index = Annotated[Any, BeforeValidator(_index), WithJsonSchema({
    "description": "Index names, wildcard patterns or aliases: a string (comma-separated allowed) or a list.",
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]})]


def _query(value: Any) -> str | dict:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("expected a non-empty Lucene query string or a query DSL object, found an empty string")
        return value
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("expected a query DSL object with exactly one query type such as "
                             f"{{term: {{field: value}}}}, found {describe(value)}")
        return value
    raise ValueError(f"expected a Lucene query string or a query DSL object, found {describe(value)}")


Query = Annotated[Any, BeforeValidator(_query), WithJsonSchema(_QUERY_SCHEMA)]


def _field_values(value: Any) -> dict[str, list]:
    expected = "a mapping of field name to a value or a list of values, such as {user.name: [root, admin]}"
    if not isinstance(value, dict) or not value:
        raise ValueError(f"expected {expected}, found {describe(value)}")
    out = {}
    for field, values in value.items():
        values = values if isinstance(values, list) else [values]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise ValueError(f"expected {expected}, found {describe(value)} (field {field!r})")
        out[field] = values
    return out


FieldValues = Annotated[Any, BeforeValidator(_field_values), WithJsonSchema({
    "type": "object", "minProperties": 1,
    "additionalProperties": {"anyOf": [{"type": ["string", "number", "boolean"]},
                                       {"type": "array", "minItems": 1, "items": {"type": ["string", "number", "boolean"]}}]}})]


_RULE_TYPES: dict[str, Callable[[Any], Any]] = {}


def register_rule_types(parsers: Mapping[str, Callable[[Any], Any]]) -> None:
    """Make the rule types known: ``{type name: parse(params) -> Params}`` in listing order
    (``threshold`` first, parsing to None). Called by :mod:`watcher.engine.ruletypes` on import."""
    _RULE_TYPES.clear()
    _RULE_TYPES.update(parsers)


def _rule_types() -> tuple[str, ...]:
    if not _RULE_TYPES:
        raise LookupError("no rule types are registered (import watcher.engine.ruletypes)")
    return tuple(_RULE_TYPES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _one_operator(model: BaseModel, what: str) -> BaseModel:
    given = [op for op in COMPARISON_OPS if getattr(model, op) is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        raise ValueError(f"expected exactly one {what} ({', '.join(COMPARISON_OPS)}), found {len(given)}: {found}")
    return model


class Threshold(_Strict):
    """A threshold on the hit count: exactly one operator (``{gte: 10}``)."""

    gt: Number | None = Field(None, description="Greater than.")
    gte: Number | None = Field(None, description="Greater than or equal to.")
    lt: Number | None = Field(None, description="Less than.")
    lte: Number | None = Field(None, description="Less than or equal to.")
    eq: Number | None = Field(None, description="Equal to.")
    not_eq: Number | None = Field(None, description="Not equal to.")

    @model_validator(mode="after")
    def _exactly_one(self):
        return _one_operator(self, "operator")

    def operator(self) -> tuple[str, int | float]:
        """``(op, value)`` of the one operator given."""
        return next((op, getattr(self, op)) for op in COMPARISON_OPS if getattr(self, op) is not None)


class MetricThreshold(Threshold):
    """A threshold on an aggregation metric: ``{agg: avg, field: bytes, gt: 1000}``."""

    agg: Literal["avg", "min", "max", "sum", "cardinality"] = Field(description="Metric aggregation.")
    field: Text = Field(description="Numeric (or, for cardinality, any) field to aggregate.")


class RuleCondition(_Strict):
    """Exactly one of ``count``, ``metric``, ``compare``, ``array_compare``."""

    count: Threshold | None = Field(None, description="Threshold on the hit count (per group with group_by).")
    metric: MetricThreshold | None = Field(None, description="Threshold on a metric (per group with group_by).")
    compare: dict | None = Field(None, description="A Watcher compare condition, as is.")
    array_compare: dict | None = Field(None, description="A Watcher array_compare condition, as is.")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict) and all(key in CONDITION_KINDS for key in data) and len(data) != 1:
            found = ", ".join(data) if data else "none"
            raise ValueError(f"expected exactly one of {', '.join(CONDITION_KINDS)}, found {len(data)}: {found}")
        return data

    @property
    def kind(self) -> str:
        """Which condition is given: count, metric, compare or array_compare."""
        return next(k for k in CONDITION_KINDS if getattr(self, k) is not None)


class RuleFilter(_Strict):
    """The filter step: keep/drop hits before templates see them (include, exclude, query)."""

    include: FieldValues | None = Field(None, description="Keep hits whose field has one of the values.")
    exclude: FieldValues | None = Field(None, description="Drop hits whose field has one of the values.")
    query: Query | None = Field(None, description="Keep hits matching this Lucene string or query DSL object.")

    @model_validator(mode="after")
    def _not_empty(self):
        if self.include is None and self.exclude is None and self.query is None:
            raise ValueError("expected at least one of include, exclude, query, found none")
        return self


ACTION_EVENTS = ("firing", "recovered")
"""When an action is called: ``firing`` (the rule or group alerts) and ``recovered`` (it alerted
on the previous run and does not any more; Kibana's "Recovered" action group)."""


def _events(value: Any) -> tuple[str, ...]:
    expected = f"a list of events among {', '.join(ACTION_EVENTS)}"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected {expected}, found {describe(value)}")
    for item in items:
        if item not in ACTION_EVENTS:
            hint = did_you_mean(item, ACTION_EVENTS) if isinstance(item, str) else ""
            found = describe(item) if isinstance(value, str) else f"an item {item!r}"
            raise ValueError(f"expected {expected}, found {found}{hint}")
    return tuple(dict.fromkeys(items))


Events = Annotated[Any, BeforeValidator(_events), WithJsonSchema({
    "description": "When the action runs: firing, recovered, or both.",
    "anyOf": [{"enum": list(ACTION_EVENTS)},
              {"type": "array", "minItems": 1, "items": {"enum": list(ACTION_EVENTS)}}]})]


class RuleAction(BaseModel):
    """One use of a connector: ``{connector: NAME, on?: [firing, recovered], …overrides}`` (overrides
    depend on the connector type)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True,
                              json_schema_extra={"additionalProperties": True})
    connector: Text = Field(description="The name of a connector defined in connectors.yaml.")
    on: Events = Field(("firing",), description="When the action runs: firing (default), recovered, or both.")

    @property
    def overrides(self) -> dict:
        """Everything but ``connector`` and ``on``: parameters passed to the connector type."""
        return dict(self.model_extra or {})


class RuleAggregation(_Strict):
    """Collect alerts over ``period`` and send one summary (ElastAlert2's ``aggregation``,
    ``aggregation_key``, ``summary_table_fields``)."""

    period: Duration = Field(description="How long alerts are collected, from the first one, before the summary is sent.")
    key: Text | None = Field(None, description="A field of the matched documents: one summary per value (aggregation_key).")
    summary_table_fields: list[str] = Field(default_factory=list,
                                            description="Fields shown as columns of the summary table (one row per alert).")
    max_rows: int = Field(100, ge=1, le=10000, description="Most alerts kept (and shown) in one summary.")


class RuleSpec(_Strict):
    """A validated rule. Durations are :class:`datetime.timedelta`; ``index`` is a list of names.

    ``trigger`` (the parsed schedule, :class:`watcher.model.watch.Trigger`), ``file`` and
    ``source`` (the rule as written, plain JSON values) are set by :func:`parse_rule`.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="Rule",
                              json_schema_extra={"description": "A watcher alert rule (one rule per file)."})

    name: Text = Field(description="Unique rule name; becomes the watch id.")
    type: Annotated[str, WithJsonSchema({"description": "The rule type."})] = Field(
        THRESHOLD, description="threshold (default: count/metric condition) or an ElastAlert2 type: "
                                 "any, frequency, spike, flatline, change, blacklist, whitelist, new_term, "
                                 "cardinality, metric_aggregation, spike_aggregation, percentage_match.")
    params: dict | None = Field(None, description="Parameters of the rule type (ElastAlert2's option names).")
    description: str | None = Field(None, description="Free text, shown in alerts as rule.description.")
    enabled: bool = Field(True, description="Disabled rules are loaded and validated but not scheduled.")
    tags: list[str] = Field(default_factory=list, description="Labels, shown as rule.tags.")
    schedule: Annotated[Any, WithJsonSchema({
        "description": "How often the rule runs: an interval (30s, 5m, 1h) or {cron: '*/5 * * * *', timezone: Europe/Paris}.",
        "anyOf": [{"type": "string", "pattern": r"^[0-9]+[smhdw]$"},
                  {"type": "object", "required": ["cron"], "additionalProperties": False,
                   "properties": {"cron": {"type": "string", "description": "Cron expression (minute hour day month weekday)."},
                                  "timezone": {"type": "string", "description": "IANA time zone, default UTC."}}}]})] = DEFAULT_SCHEDULE
    index: Index = Field(description="Indices to search.")
    time_field: Text = Field("@timestamp", description="Date field the window applies to.")
    window: Duration = Field(description="Look-back: each run searches [scheduled − window − delay, scheduled − delay).")
    delay: DurationOrZero = Field(dt.timedelta(0), description="Ingest lag allowance (default 0s).")
    calendar_window: bool | None = Field(None, description="Cron schedules: search from the previous fire time to "
                                                           "this one (a daily digest covers the whole local day, "
                                                           "23 or 25 hours on daylight-saving days). Default: on "
                                                           "when window equals the schedule's usual period.")
    query: Query | None = Field(None, description="What to count; default: every document.")
    group_by: Text | None = Field(None, description="One alert per distinct value of this field (terms aggregation).")
    max_groups: int = Field(100, ge=1, le=10000, description="Most groups considered per run (terms size); a run "
                                                               "that leaves groups out says so (groups_truncated).")
    allow_partial_results: bool = Field(False, description="Evaluate a search answer from only some shards "
                                                           "(_shards.failed > 0) instead of failing the run; the "
                                                           "record warns, and conditions that missing documents "
                                                           "can make true (flatline, lt, lte…) never fire on it.")
    condition: RuleCondition = Field(default_factory=lambda: RuleCondition(**DEFAULT_CONDITION),
                                     description="When to alert; default {count: {gt: 0}}.")
    filter: RuleFilter | None = Field(None, description="The filter step, applied to hits before templates see them.")
    throttle: DurationOrZero | None = Field(None, description="Minimum time between alerts, per rule and per group key.")
    realert: DurationOrZero | None = Field(None, description="After an alert, matches of the same group key are "
                                                             "not alerted again for this long (ElastAlert2 realert).")
    exponential_realert: Duration | None = Field(None, description="Cap of the doubling realert: while a key keeps "
                                                                   "firing, each realert wait doubles up to this.")
    aggregation: RuleAggregation | None = Field(None, description="Collect alerts over a period into one summary.")
    top_count_keys: list[str] = Field(default_factory=list, description="Fields whose most frequent values in the "
                                                                       "window are given to templates as top_counts.")
    top_count_number: int = Field(5, ge=1, le=1000, description="How many values per top_count_keys field.")
    include: list[str] | None = Field(None, description="Only these fields of matched documents are fetched "
                                                        "(_source includes); default all.")
    hits: int = Field(10, ge=0, le=10000, description="Sample hits fetched for templates (search size).")
    title: str | None = Field(None, description="Jinja2 template of the alert title.")
    message: str | None = Field(None, description="Jinja2 template of the alert message.")
    recovered_title: str | None = Field(None, description="Jinja2 template of the title of recovery alerts "
                                                           "(actions with on: [recovered]).")
    recovered_message: str | None = Field(None, description="Jinja2 template of the message of recovery alerts.")
    actions: list[RuleAction] = Field(default_factory=list, description="Where alerts go: connectors and their overrides.")
    metadata: dict | None = Field(None, description="Free data, exposed as ctx.metadata.")

    _trigger: Any = PrivateAttr(default=None)
    _params: Any = PrivateAttr(default=None)
    _file: str = PrivateAttr(default="")
    _source: Any = PrivateAttr(default=None)

    @property
    def trigger(self):
        """The parsed schedule (a :class:`~watcher.model.watch.Trigger`), or None if not parsed."""
        return self._trigger

    @property
    def file(self) -> str:
        return self._file

    @property
    def is_threshold(self) -> bool:
        """True for ``type: threshold`` (the default), False for an ElastAlert2 rule type."""
        return self.type == THRESHOLD

    @property
    def type_params(self):
        """The rule type's validated ``Params`` (:mod:`watcher.engine.ruletypes`); None for ``threshold``.

        Raises:
            pydantic.ValidationError: ``params`` do not fit the type (only for specs built in code;
                :func:`parse_rule` reports that as a problem).
        """
        if self.is_threshold:
            return None
        if self._params is None:
            _rule_types()  # raises when the engine's rule types were never registered
            self._params = _RULE_TYPES[self.type](self.params)
        return self._params

    @field_validator("exponential_realert")
    @classmethod
    def _realert_cap(cls, cap, info):
        realert = info.data.get("realert")
        if cap is not None and not realert:
            raise ValueError("expected realert too: exponential_realert caps the realert wait, which doubles "
                             "up to it, found no realert")
        if cap is not None and cap < realert:
            raise ValueError(f"expected a cap at least realert ({format_duration(realert)}), "
                             f"found {format_duration(cap)}")
        return cap

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _rule_types():
            raise ValueError(f"expected a rule type ({', '.join(_rule_types())}), found {value!r}"
                             f"{did_you_mean(value, _rule_types())}")
        return value

    @property
    def source(self) -> dict | None:
        """The rule as written (plain JSON values), or None when built in code."""
        return self._source

    def to_document(self) -> dict:
        """The rule as a plain mapping in file form (durations as ``5m``; defaults left out).

        Used by ``watcher convert --to rule``; :func:`parse_rule` on its YAML gives an equal spec.
        """
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            default = field.get_default(call_default_factory=True)
            if value == default and name not in ("name", "index", "window"):
                continue
            if isinstance(value, dt.timedelta):
                value = format_duration(value)
            elif isinstance(value, BaseModel):
                value = value.model_dump(exclude_none=True)
                value = {k: format_duration(v) if isinstance(v, dt.timedelta) else v for k, v in value.items()}
            elif name == "actions":
                value = [{k: (list(v) if k == "on" else v) for k, v in a.model_dump().items()
                          if not (k == "on" and tuple(v) == ("firing",))} for a in value]
            elif name == "index" and len(value) == 1:
                value = value[0]
            out[name] = value
        return out


def query_clause(query: str | Mapping) -> dict:
    """A rule's ``query``: a Lucene string → ``query_string``; a query DSL object as is."""
    if isinstance(query, str):
        return {"query_string": {"query": query}}
    return dict(query)


def rule_action_ids(spec: RuleSpec) -> list[str]:
    """The action ids of a rule's actions, in order: the connector name, ``-2``, ``-3``… for repeats."""
    seen: dict[str, int] = {}
    ids = []
    for action in spec.actions:
        seen[action.connector] = seen.get(action.connector, 0) + 1
        count = seen[action.connector]
        ids.append(action.connector if count == 1 else f"{action.connector}-{count}")
    return ids


def filter_clauses(spec: RuleSpec) -> tuple[list, list]:
    """The rule's filter step as Elasticsearch clauses: ``(filter clauses, must_not clauses)``."""
    rule_filter = spec.filter
    get = (lambda k: getattr(rule_filter, k, None)) if not isinstance(rule_filter, dict) else rule_filter.get
    keep, drop = [], []
    for field, values in (get("include") or {}).items():
        keep.append({"terms": {field: list(values)}})
    for field, values in (get("exclude") or {}).items():
        drop.append({"terms": {field: list(values)}})
    query = get("query")
    if isinstance(query, str):
        keep.append({"query_string": {"query": query}})
    elif query:
        keep.append(query)
    return keep, drop
