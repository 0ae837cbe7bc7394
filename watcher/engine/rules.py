"""The steps that rules (YAML, compiled to watches) add to Watcher's pipeline.

* **Alerts**: one alert per rule, or with ``group_by`` one per group key whose count (or metric)
  meets the rule's condition (ElastAlert ``query_key`` / Kibana ``groupBy``).
* **Filter step**: when the rule has a ``filter``, the same search runs again with the filter added,
  so Elasticsearch decides which documents are kept; counts and sample hits given to templates come
  from the filtered search, and the record says how many documents were dropped.
* **Typed rules** (``type: spike`` …, :mod:`watcher.engine.ruletypes`): the alerts are the matches the
  type's input found (``ctx.payload.matches``).
* **Alert features** (:mod:`watcher.engine.alerting`): recovery, silence, realert, top counts and
  aggregation, for every rule type; actions are called per their ``on`` (firing, recovered).
* **Per-group throttle**: each group key is throttled on its own, per action (``throttle``).
* **Jinja2 variables** for rule templates: ``rule``, ``group``, ``count``, ``value``, ``hits``,
  ``dropped``, ``window`` (``start``/``end``, ISO-8601 UTC), ``details``, ``status`` (firing |
  recovered), ``fired_for``, ``top_counts``, ``matches`` and ``summary_table`` (aggregation
  summaries), ``ctx``, and the rendered ``title`` and ``message``; ``alert`` gathers them, and actions also see it as ``ctx.vars.alert`` (so a Mustache
  ``{{#toJson}}ctx{{/toJson}}`` body, such as OpsGenie's Watcher integration, carries the message).
  Without ``title``/``message`` the rule uses Kibana's ES-query wording
  (docs/semantics.md#kibana-es-query-rule).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from typing import Any

from watcher.engine import alerting
from watcher.engine.alert import Alert
from watcher.engine.context import Run
from watcher.engine.perform import perform
from watcher.engine.ruletypes import REGISTRY
from watcher.engine.run_warnings import ABSENCE_HELD, check_groups, check_search
from watcher.es.fields import refused_text_field
from watcher.es.search_batch import batcher_for
from watcher.model.rule import RuleSpec, filter_clauses, rule_action_ids
from watcher.model.watch import Action, Watch
from watcher.support.compare import compare_op
from watcher.support.datemath import format_iso_millis
from watcher.support.durations import format_duration
from watcher.support.paths import field_value, resolve_path
from watcher.templates.jinja import render_jinja

GROUPS_AGG = "groups"
METRIC_AGG = "metric"
ABSENCE_OPS = ("lt", "lte", "eq", "not_eq")
"""Operators that documents missing from a partial answer can make true: a count (or metric) read
low satisfies ``lt``/``lte``, and can land on, or move off, an ``eq`` value. ``gt``/``gte`` on a
count only become true with documents that were found."""
DEFAULT_TITLE = "rule '{{ rule.name }}' matched query{% if group is not none %} for group {{ group }}{% endif %}"
DEFAULT_MESSAGE = ("Document count is {{ count }} in the last {{ rule.window }}"
                   "{% if group is not none %} for {{ group }}{% endif %} in {{ rule.index | join(', ') }}.")


RECOVERED_TITLE = "rule '{{ rule.name }}' recovered{% if group is not none %} for {{ group }}{% endif %}"
RECOVERED_MESSAGE = ("Rule {{ rule.name }}{% if group is not none %} for {{ group }}{% endif %} no longer matches "
                     "(fired for {{ fired_for }}, since {{ details.firing_since }}).")
AGGREGATE_TITLE = ("rule '{{ rule.name }}': {{ matches | length }} alert{{ 's' if matches | length != 1 }}"
                   "{% if group is not none %} for {{ group }}{% endif %} since {{ details.aggregation_start }}")
AGGREGATE_MESSAGE = ("{{ matches | length }} alert{{ 's' if matches | length != 1 }} ({{ count }} documents) "
                     "collected since {{ details.aggregation_start }}."
                     "{% if summary_table %}\n\n{{ summary_table }}{% endif %}")


@dataclasses.dataclass
class RuleAlerts:
    """The alerts of one rule execution and what the filter step and the alert features did.

    Attributes:
        alerts: firing alerts to deliver (after silence, realert and aggregation).
        recovered: recovered alerts to deliver to actions with ``on: [recovered]``.
        matched: how many groups matched before silence/realert/aggregation.
        silenced, suppressed: group keys dropped by a silence / by realert.
        pending: alerts waiting in an aggregation that is not due yet.
    """

    watch: Watch
    run: Run
    grouped: bool
    alerts: list[Alert]
    dropped: int
    kept: int
    recovered: list[Alert] = dataclasses.field(default_factory=list)
    matched: int = 0
    silenced: list = dataclasses.field(default_factory=list)
    suppressed: list = dataclasses.field(default_factory=list)
    pending: int = 0
    notes: list = dataclasses.field(default_factory=list)

    @property
    def fan_out(self) -> bool:
        """Deliver per alert (group keys, recoveries, summaries), each throttled on its own."""
        return self.grouped or bool(self.recovered) or any(a.matches is not None for a in self.alerts)

    def events_for(self, action_id: str) -> list[Alert]:
        """The alerts ``action_id`` is called for, by its ``on`` (firing by default)."""
        wanted = action_events(self.watch.rule).get(action_id, ("firing",))
        return [*(self.alerts if "firing" in wanted else []), *(self.recovered if "recovered" in wanted else [])]

    def no_event_reason(self, action_id: str) -> str:
        """Why ``action_id`` has nothing to send this run (for the action result)."""
        if self.matched and self.silenced and len(self.silenced) == self.matched:
            return "the rule is silenced for every matching group (watcher silence)"
        if self.matched and self.suppressed:
            return f"realert: {len(self.suppressed)} group(s) alerted recently and wait for the realert period"
        if self.pending:
            return f"{self.pending} alert(s) collected in a pending aggregation (sent when its period ends)"
        if self.recovered or (self.matched and not self.alerts):
            wanted = action_events(self.watch.rule).get(action_id, ("firing",))
            return f"no {' or '.join(wanted)} alert for this action this run"
        return "the rule's filter step dropped every matching document"

    def summary(self) -> dict:
        """The ``result.rule`` part of the record."""
        out = {"alerts": len(self.alerts),
               "groups": [a.group for a in self.alerts] if self.grouped else None,
               "filter": {"dropped": self.dropped, "kept": self.kept}}
        if self.recovered:
            out["recovered"] = [a.group for a in self.recovered]
        if self.silenced:
            out["silenced"] = self.silenced
        if self.suppressed:
            out["realert_suppressed"] = self.suppressed
        if self.pending:
            out["aggregation_pending"] = self.pending
        if self.notes:
            out["notes"] = list(dict.fromkeys(self.notes))
        return out

    def variables(self, alert: Alert) -> dict:
        """Jinja2 variables for ``alert`` (see module docstring).

        Raises:
            watcher.templates.jinja.TemplateRenderError: the title or message template failed
                (e.g. an undefined variable without a default); the action reports it as a failure.
        """

        spec = self.watch.rule
        window_start, window_end = self.run.rule_window
        variables = {
            "rule": {"name": spec.name, "description": spec.description,
                     "tags": list(spec.tags), "index": spec.index,
                     "window": _text(spec.window), "group_by": spec.group_by,
                     "type": spec.type},
            "group": alert.group,
            "count": alert.count,
            "value": alert.value,
            "hits": alert.hits,
            "dropped": self.dropped,
            "window": {"start": format_iso_millis(window_start), "end": format_iso_millis(window_end)},
            "details": alert.details,
            "status": alert.status,
            "fired_for": _seconds_text(alert.fired_for),
            "top_counts": alert.top_counts,
            "matches": alert.matches,
            "summary_table": alert.summary_table,
        }
        scope = {**variables, "ctx": self.run.ctx(alert.payload)}
        title, message = _templates(spec, alert)
        variables["title"] = render_jinja(title, scope).strip()
        variables["message"] = render_jinja(message, scope).rstrip()
        variables["alert"] = {key: variables[key] for key in
                              ("title", "message", "group", "count", "value", "dropped", "window", "status",
                               "details", "top_counts")}
        variables["alert"]["rule"] = spec.name
        if alert.fired_for is not None:
            variables["alert"]["fired_for_seconds"] = alert.fired_for
        if alert.matches is not None:
            variables["alert"]["matches"] = alert.matches
            variables["alert"]["summary_table"] = alert.summary_table
        return variables

    def run_action(self, action: Action, run: Run, action_status, period, forced: bool, payload,
                   delivery, out: dict) -> dict:
        """Deliver ``action`` once per alert it is called for, each group key throttled on its own
        (recoveries and summaries are never throttled: they are already once per episode)."""
        now = run.execution_time
        results = []
        for alert in self.events_for(action.id):
            key = str(alert.group)
            if not forced and alert.status == "firing" and alert.matches is None:
                reason = action_status.throttled_reason(period, run.throttle_time, group=key)
                if reason:
                    action_status.record_throttle(now, reason)
                    results.append({"group": alert.group, "status": "throttled", "reason": reason})
                    continue
            single = perform(action, run, alert.payload, delivery, extra_vars=lambda alert=alert: self.variables(alert),
                             sequence=alert.delivery_sequence())
            if alert.status == "firing":
                action_status.record_result(single["status"], now, single.get("reason"), group=key,
                                            on_time=run.on_time)
            results.append({"group": alert.group, "event": alert.status, **single})
        statuses = {r["status"] for r in results}
        combined = statuses.pop() if len(statuses) == 1 else ("partial_failure" if "failure" in statuses else "success")
        if not results:
            combined = "success"
        elif combined in ("success", "simulated"):
            action_status.record_result(combined, now, on_time=run.on_time)
        return {**out, "status": combined, "number_of_actions_executed": len(results), "foreach": results}


def action_events(spec: RuleSpec) -> dict[str, tuple]:
    """``{action_id: on}`` of a rule's actions (ids as :func:`watcher.definitions.compile.rule_action_ids`)."""

    return {action_id: tuple(action.on)
            for action_id, action in zip(rule_action_ids(spec), spec.actions)}


def _templates(spec: RuleSpec, alert: Alert) -> tuple[str, str]:
    """The title and message templates for ``alert``: recoveries use ``recovered_title`` /
    ``recovered_message`` (else a default wording), aggregation summaries the rule's templates (else
    their own wording); otherwise the rule's, else its type's default, else Kibana's ES-query wording."""
    if alert.status == "recovered":
        return (spec.recovered_title or RECOVERED_TITLE,
                spec.recovered_message or RECOVERED_MESSAGE)
    if alert.matches is not None:
        return spec.title or AGGREGATE_TITLE, spec.message or AGGREGATE_MESSAGE
    title, message = DEFAULT_TITLE, DEFAULT_MESSAGE
    if not spec.is_threshold:
        module = REGISTRY.get(spec.type)
        title, message = module.DEFAULT_TITLE, module.DEFAULT_MESSAGE
    return spec.title or title, spec.message or message


def _seconds_text(seconds: float | None) -> str | None:
    """``3h 5m 10s`` for templates (None stays None)."""
    if seconds is None:
        return None
    whole = int(round(seconds))
    parts = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    text = " ".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


def _text(value) -> Any:
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    return value


def prepare(watch: Watch, run: Run, input_result: dict) -> RuleAlerts:
    """Build the alerts of a rule whose condition was met (the payload is the input's result),
    then apply recovery, silence, realert, top counts and aggregation (:mod:`watcher.engine.alerting`).

    Args:
        watch: a compiled rule (``watch.rule`` set).
        run: the run; ``run.payload`` is replaced by the filtered response when the rule filters.
        input_result: the input's result (a threshold rule's ``search.request`` is re-run with the filter).

    Raises:
        elasticsearch errors from the filter step or top counts (the run is recorded as failed);
        watcher.es.shards.PartialResultsError when one of them answered from only some shards and
        the rule does not allow partial results (the daemon runs the window again).
    """
    spec = watch.rule
    if not spec.is_threshold:
        matches = run.payload.get("matches") or []
        alerts = [Alert(group=m["group"], count=m["count"], value=m["value"], hits=m.get("hits") or [],
                        payload=m, details=m.get("details") or {}) for m in matches]
        grouped = bool(spec.group_by) or any(m["group"] is not None for m in matches)  # new_term: one per term
        return _with_features(RuleAlerts(watch, run, grouped, alerts, dropped=0, kept=len(alerts)))
    return _with_features(_threshold_alerts(watch, run, input_result))


def prepare_idle(watch: Watch, run: Run) -> RuleAlerts | None:
    """A run whose condition was not met: recoveries and due aggregation summaries, if any.

    Returns None when there is nothing to deliver (the record stays ``execution_not_needed``).
    """
    spec = watch.rule
    alerts = _with_features(RuleAlerts(watch, run, bool(spec.group_by), [], dropped=0, kept=0))
    return alerts if (alerts.alerts or alerts.recovered) else None


def _with_features(result: RuleAlerts) -> RuleAlerts:
    spec, run = result.watch.rule, result.run
    matched = result.alerts
    result.matched = len(matched)
    recovered = alerting.recoveries(spec, run, matched)
    result.recovered, _ = alerting.silenced(run, recovered)
    firing, result.silenced = alerting.silenced(run, matched)
    firing, result.suppressed = alerting.realert(spec, run, firing)
    if spec.top_count_keys:
        for alert in firing:
            alert.top_counts, errors = alerting.top_counts(spec, run, alert)
            for field, reason in errors.items():
                result.notes.append(f"top_count_keys: {field} could not be counted: {reason}"
                                    + (" (a text field: count its keyword sub-field, e.g. "
                                       f"{field}.keyword)" if refused_text_field(reason) == field else ""))
    if spec.aggregation is not None:
        firing = alerting.aggregate(spec, run, firing)
        result.pending = sum(len(e["alerts"]) for e in run.rule_state.get("aggregation", {}).values())
    result.alerts = firing
    return result


def _threshold_alerts(watch: Watch, run: Run, input_result: dict) -> RuleAlerts:
    spec = watch.rule
    original = run.payload
    filtered = original
    if spec.filter:
        filtered = _filtered_search(run, input_result, spec)
        run.payload = filtered
    total = _total(original)
    kept = _total(filtered)
    group_by = spec.group_by
    if not group_by:
        hits = [h.get("_source", {}) for h in resolve_path(filtered, "hits.hits") or []]
        value = resolve_path(filtered, f"aggregations.{METRIC_AGG}.value")
        alerts = [Alert(group=None, count=kept, value=kept if value is None else value, hits=hits, payload=filtered)]
        if kept == 0 and spec.filter:
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
                      if _has_group_key(h.get("_source", {}), group_by, bucket["key"])]
        hits = [h.get("_source", {}) for h in sample]
        value = resolve_path(kept_bucket, f"{METRIC_AGG}.value")
        count = kept_bucket.get("doc_count", 0)
        bucket_fields = {k: v for k, v in kept_bucket.items() if k != "sample"}  # the sample is in "hits"
        payload = {"group": key, "count": count, "value": count if value is None else value,
                   "hits": {"total": count, "hits": sample}, "bucket": bucket_fields}
        alerts.append(Alert(group=key, count=count, value=count if value is None else value, hits=hits, payload=payload))
    return RuleAlerts(watch, run, True, alerts, dropped=total - kept, kept=kept)


def check_input(watch: Watch, run: Run, input_result: dict) -> None:
    """After a rule's search input succeeded: warn (``groups_truncated``) when its ``group_by``
    terms aggregation left groups out (``sum_other_doc_count`` > 0 with ``max_groups`` buckets),
    whether or not the condition is met. Nothing for watches and typed rules (those check their
    own searches)."""
    spec = watch.rule
    if spec is None or not spec.is_threshold or not spec.group_by:
        return
    payload = input_result.get("payload") or {}
    check_groups(resolve_path(payload, f"aggregations.{GROUPS_AGG}"), spec.max_groups, run.warnings,
                 search="input", group_by=spec.group_by)


def fires_on_absence(spec: RuleSpec) -> bool:
    """Whether a threshold rule's condition can be made true by documents missing from the answer:
    its count or metric operator, or any operator of a Watcher ``compare``/``array_compare``
    condition, is one of :data:`ABSENCE_OPS`. Typed rules mark such matches themselves
    (``Match.absence``), so they answer False."""
    if spec is None or not spec.is_threshold:
        return False
    condition = spec.condition
    threshold = condition.count if condition.count is not None else condition.metric
    if threshold is not None:
        return threshold.operator()[0] in ABSENCE_OPS
    return _has_absence_op(condition.compare if condition.compare is not None else condition.array_compare)


def _has_absence_op(node: Any) -> bool:
    if isinstance(node, dict):
        return any(key in ABSENCE_OPS or _has_absence_op(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_has_absence_op(item) for item in node)
    return False


def hold_condition(run: Run, condition: dict) -> dict:
    """The condition result of a threshold rule whose condition was met on a partial answer and
    :func:`fires_on_absence`: not met, ``held_on_partial_results: true``, and an ``absence_held``
    warning. The caller treats it as "not known": no actions, acknowledgements left as they are."""
    run.warnings.held(ABSENCE_HELD, [None], "a condition that missing documents can make true did not fire")
    return {**condition, "met": False, "held_on_partial_results": True}


def group_meets(spec: RuleSpec, bucket: dict) -> bool:
    """Whether one terms bucket meets the rule's per-group count or metric condition."""
    condition = spec.condition
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


def _has_group_key(source: dict, name: str, key: Any) -> bool:
    """Whether a document belongs to the terms bucket ``key`` of field ``name``: its value (found
    in ElastAlert2's lookup order, docs/correctness.md#dotted-keys-inside-documents) is the key, or,
    for an array, holds it."""
    value = field_value(source, name)
    if isinstance(value, list):
        return key in value
    return value == key


def _total(payload: dict) -> int:
    total = resolve_path(payload, "hits.total")
    if isinstance(total, dict):
        return int(total.get("value", 0))
    return int(total or 0)


def _filtered_search(run: Run, input_result: dict, spec) -> dict:
    request = input_result.get("search", {}).get("request", {})
    body = copy.deepcopy(request.get("body") or {})
    keep, drop = filter_clauses(spec)
    body["query"] = {"bool": {"filter": [body.get("query", {"match_all": {}}), *keep], "must_not": drop}}

    indices = request.get("indices") or ["_all"]
    pattern = ",".join(indices) if isinstance(indices, list) else indices
    response = batcher_for(run.services.es).search(
        pattern, body, {"ignore_unavailable": True, "allow_no_indices": True}, rest_total_hits_as_int=True,
        timeout_s=60.0)
    check_search(response, run.warnings, search="rule filter", index=pattern,
                 allow_partial=spec.allow_partial_results)
    return response
