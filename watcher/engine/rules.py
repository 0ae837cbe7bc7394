"""The steps that rules (YAML, compiled to watches) add to Watcher's pipeline.

* **Alerts**: one alert per rule, or with ``group_by`` one per group key whose count (or metric)
  meets the rule's condition (ElastAlert ``query_key`` / Kibana ``groupBy``).
* **Filter step**: when the rule has a ``filter``, the same search runs again with the filter added,
  so Elasticsearch decides which documents are kept; counts and sample hits given to templates come
  from the filtered search, and the record says how many documents were dropped.
* **Per-group throttle**: each group key is throttled on its own (ElastAlert's ``realert`` per key).
* **Jinja2 variables** for rule templates: ``rule``, ``group``, ``count``, ``value``, ``hits``,
  ``dropped``, ``window`` (``start``/``end``, ISO-8601 UTC), ``ctx``, and the rendered ``title`` and
  ``message``; ``alert`` gathers them, and actions also see it as ``ctx.vars.alert`` (so a Mustache
  ``{{#toJson}}ctx{{/toJson}}`` body, such as OpsGenie's Watcher integration, carries the message).
  Without ``title``/``message`` the rule uses Kibana's ES-query wording (watcher-semantics §6.1).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from typing import Any

from watcher.definitions.model import Action, Watch
from watcher.engine.context import Run
from watcher.support.compare import compare_op
from watcher.support.datemath import format_iso_millis
from watcher.support.paths import resolve_path

GROUPS_AGG = "groups"
METRIC_AGG = "metric"
DEFAULT_TITLE = "rule '{{ rule.name }}' matched query{% if group is not none %} for group {{ group }}{% endif %}"
DEFAULT_MESSAGE = ("Document count is {{ count }} in the last {{ rule.window }}"
                   "{% if group is not none %} for {{ group }}{% endif %} in {{ rule.index }}.")


@dataclasses.dataclass
class Alert:
    """One alert of a rule: ``group`` is the group key (None for ungrouped rules)."""

    group: Any
    count: int
    value: Any
    hits: list[dict]
    payload: dict


@dataclasses.dataclass
class RuleAlerts:
    """The alerts of one rule execution and what the filter step dropped."""

    watch: Watch
    run: Run
    grouped: bool
    alerts: list[Alert]
    dropped: int
    kept: int

    def summary(self) -> dict:
        """The ``result.rule`` part of the record."""
        return {"alerts": len(self.alerts),
                "groups": [a.group for a in self.alerts] if self.grouped else None,
                "filter": {"dropped": self.dropped, "kept": self.kept}}

    def variables(self, alert: Alert) -> dict:
        """Jinja2 variables for ``alert`` (see module docstring).

        Raises:
            watcher.templates.jinja.TemplateRenderError: the title or message template failed
                (e.g. an undefined variable without a default); the action reports it as a failure.
        """
        from watcher.templates.jinja import render_jinja

        spec = self.watch.rule
        window_end = self.run.scheduled_time - _delay(spec)
        variables = {
            "rule": {"name": spec.name, "description": getattr(spec, "description", None),
                     "tags": list(getattr(spec, "tags", None) or []), "index": getattr(spec, "index", None),
                     "window": _text(getattr(spec, "window", None)), "group_by": getattr(spec, "group_by", None)},
            "group": alert.group,
            "count": alert.count,
            "value": alert.value,
            "hits": alert.hits,
            "dropped": self.dropped,
            "window": {"start": format_iso_millis(window_end - _window(spec)), "end": format_iso_millis(window_end)},
        }
        scope = {**variables, "ctx": self.run.ctx(alert.payload)}
        variables["title"] = render_jinja(getattr(spec, "title", None) or DEFAULT_TITLE, scope).strip()
        variables["message"] = render_jinja(getattr(spec, "message", None) or DEFAULT_MESSAGE, scope).rstrip()
        variables["alert"] = {key: variables[key] for key in
                              ("title", "message", "group", "count", "value", "dropped", "window")}
        variables["alert"]["rule"] = spec.name
        return variables

    def run_action(self, action: Action, run: Run, action_status, period, forced: bool, payload,
                   delivery, out: dict) -> dict:
        """Deliver ``action`` once per alert (group), each group key throttled on its own."""
        from watcher.engine.execute import perform

        now = run.execution_time
        results = []
        for alert in self.alerts:
            key = str(alert.group)
            if not forced:
                reason = action_status.throttled_reason(period, now, group=key)
                if reason:
                    action_status.record_throttle(now, reason)
                    results.append({"group": alert.group, "status": "throttled", "reason": reason})
                    continue
            single = perform(action, run, alert.payload, delivery, extra_vars=lambda alert=alert: self.variables(alert),
                             sequence=f"group:{key}")
            action_status.record_result(single["status"], now, single.get("reason"), group=key)
            results.append({"group": alert.group, **single})
        statuses = {r["status"] for r in results}
        combined = statuses.pop() if len(statuses) == 1 else ("partial_failure" if "failure" in statuses else "success")
        if not results:
            combined = "success"
        elif combined in ("success", "simulated"):
            action_status.record_result(combined, now)
        return {**out, "status": combined, "number_of_actions_executed": len(results), "foreach": results}


def _delay(spec) -> dt.timedelta:
    return getattr(spec, "delay", None) or dt.timedelta(0)


def _window(spec) -> dt.timedelta:
    return getattr(spec, "window", None) or dt.timedelta(0)


def _text(value) -> Any:
    if isinstance(value, dt.timedelta):
        from watcher.support.durations import format_duration

        return format_duration(value)
    return value


def prepare(watch: Watch, run: Run, input_result: dict) -> RuleAlerts:
    """Build the alerts of a rule whose condition was met (the payload is the input's search response).

    Args:
        watch: a compiled rule (``watch.rule`` set).
        run: the run; ``run.payload`` is replaced by the filtered response when the rule filters.
        input_result: the search input's result (its ``search.request`` is re-run with the filter).
    """
    spec = watch.rule
    original = run.payload
    filtered = original
    if getattr(spec, "filter", None):
        filtered = _filtered_search(run, input_result, spec)
        run.payload = filtered
    total = _total(original)
    kept = _total(filtered)
    group_by = getattr(spec, "group_by", None)
    if not group_by:
        hits = [h.get("_source", {}) for h in resolve_path(filtered, "hits.hits") or []]
        value = resolve_path(filtered, f"aggregations.{METRIC_AGG}.value")
        alerts = [Alert(group=None, count=kept, value=kept if value is None else value, hits=hits, payload=filtered)]
        if kept == 0 and getattr(spec, "filter", None):
            alerts = []
        return RuleAlerts(watch, run, False, alerts, dropped=total - kept, kept=kept)

    kept_buckets = {b["key"]: b for b in resolve_path(filtered, f"aggregations.{GROUPS_AGG}.buckets") or []}
    alerts = []
    for bucket in resolve_path(original, f"aggregations.{GROUPS_AGG}.buckets") or []:
        if not group_meets(spec, bucket):
            continue
        kept_bucket = kept_buckets.get(bucket["key"])
        if kept_bucket is None:
            continue  # the filter dropped every document of this group
        key = bucket.get("key_as_string", bucket["key"])
        sample = resolve_path(kept_bucket, "sample.hits.hits")
        if sample is None:
            sample = [h for h in resolve_path(filtered, "hits.hits") or []
                      if _field(h.get("_source", {}), group_by) == bucket["key"]]
        hits = [h.get("_source", {}) for h in sample]
        value = resolve_path(kept_bucket, f"{METRIC_AGG}.value")
        count = kept_bucket.get("doc_count", 0)
        bucket_fields = {k: v for k, v in kept_bucket.items() if k != "sample"}  # the sample is in "hits"
        payload = {"group": key, "count": count, "value": count if value is None else value,
                   "hits": {"total": count, "hits": sample}, "bucket": bucket_fields}
        alerts.append(Alert(group=key, count=count, value=count if value is None else value, hits=hits, payload=payload))
    return RuleAlerts(watch, run, True, alerts, dropped=total - kept, kept=kept)


def group_meets(spec, bucket: dict) -> bool:
    """Whether one terms bucket meets the rule's per-group count or metric condition."""
    condition = getattr(spec, "condition", None)
    count = getattr(condition, "count", None)
    metric = getattr(condition, "metric", None)
    if count is not None:
        return all(compare_op(op, bucket.get("doc_count", 0), value) for op, value in _ops(count))
    if metric is not None:
        value = resolve_path(bucket, f"{METRIC_AGG}.value")
        return all(compare_op(op, value, bound) for op, bound in _ops(metric))
    return True  # compare / array_compare rules: the watch condition already decided


def _ops(threshold) -> list[tuple[str, Any]]:
    data = threshold.model_dump() if hasattr(threshold, "model_dump") else dict(threshold)
    return [(op, data[op]) for op in ("eq", "not_eq", "gt", "gte", "lt", "lte") if data.get(op) is not None]


def _field(source: dict, name: str) -> Any:
    if name in source:
        return source[name]
    return resolve_path(source, name)


def _total(payload: dict) -> int:
    total = resolve_path(payload, "hits.total")
    if isinstance(total, dict):
        return int(total.get("value", 0))
    return int(total or 0)


def filter_clauses(spec) -> tuple[list, list]:
    """The rule's filter as Elasticsearch clauses: (filter clauses, must_not clauses)."""
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


def _filtered_search(run: Run, input_result: dict, spec) -> dict:
    request = input_result.get("search", {}).get("request", {})
    body = copy.deepcopy(request.get("body") or {})
    keep, drop = filter_clauses(spec)
    body["query"] = {"bool": {"filter": [body.get("query", {"match_all": {}}), *keep], "must_not": drop}}
    response = run.services.es.search(
        index=request.get("indices") or "_all", body=body, rest_total_hits_as_int=True,
        ignore_unavailable=True, allow_no_indices=True)
    return response.body if hasattr(response, "body") else dict(response)
