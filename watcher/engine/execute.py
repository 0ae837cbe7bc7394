"""Execute one watch once → a watch record (Watcher's ExecutionService, in our words).

Order (docs/semantics.md#execution-pipeline, docs/semantics.md#action-wrapper): input → condition (updates
``last_checked`` / ``last_met_condition``; not met resets acks and ends with ``execution_not_needed``) →
watch-level transform (only when met and the watch has actions) → each action independently: mode ``skip`` →
throttle (period, then ack; not in ``force_*`` modes) → action condition → action transform → foreach fan-out
→ render → deliver. Record ``state``: no condition result ⇒ ``failed``; not met ⇒ ``execution_not_needed``;
else ``acknowledged`` if any action was, else ``throttled`` if any was, else ``executed`` — even when every
action failed (docs/semantics.md#all-actions-failed).

Rules compiled from YAML (``watch.rule`` set) add the rule steps of :mod:`watcher.engine.rules`:
one alert per group key, the filter step, per-group throttle and Jinja2 variables.

What the run could not be sure of (a partial search answer, groups left out by ``max_groups``,
an absence condition held on a partial answer) is collected in ``run.warnings`` and written to
the record as ``result.warnings`` (:mod:`watcher.engine.run_warnings`, docs/correctness.md). A rule's
condition that missing documents can make true is not met on a partial answer
(``held_on_partial_results``): nothing is sent and acknowledgements are left as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from watcher.engine import rules
from watcher.engine.conditions import REGISTRY as CONDITIONS
from watcher.engine.conditions import REGISTRY as CONDITIONS_REGISTRY
from watcher.engine.context import Run
from watcher.engine.inputs import REGISTRY
from watcher.engine.perform import error_json, perform
from watcher.engine.transforms import REGISTRY as TRANSFORMS_REGISTRY
from watcher.model.status import DEFAULT_THROTTLE, WatchStatus
from watcher.model.watch import Action, Watch
from watcher.support.datemath import format_iso_millis
from watcher.support.paths import resolve_path

ACTION_MODES = ("simulate", "force_simulate", "execute", "force_execute", "skip")


@dataclasses.dataclass
class ExecuteOptions:
    """Options of one execution (Watcher's execute API body, docs/semantics.md#execute-api).

    Attributes:
        action_modes: ``{action_id or "_all": mode}``; modes simulate, force_simulate, execute,
            force_execute, skip. Unlisted actions run in ``default_mode``.
        default_mode: ``execute`` (Watcher's default) or ``simulate`` (dry-run).
        ignore_condition: use an ``always`` condition result.
        alternative_input: a payload used instead of running the input.
        trigger_type: ``schedule`` (daemon) or ``manual`` (dry-run, execute by hand).
    """

    action_modes: dict[str, str] = dataclasses.field(default_factory=dict)
    default_mode: str = "execute"
    ignore_condition: bool = False
    alternative_input: dict | None = None
    trigger_type: str = "schedule"

    def mode_for(self, action_id: str) -> str:
        if "_all" in self.action_modes:
            return self.action_modes["_all"]
        return self.action_modes.get(action_id, self.default_mode)


def execute_watch(watch: Watch, run: Run, status: WatchStatus, deliveries: dict, options: ExecuteOptions | None = None) -> dict:
    """Run ``watch`` once and return its watch record; ``status`` is updated in place.

    Args:
        watch: the loaded watch (or compiled rule).
        run: the execution context (times, services, payload).
        status: the watch's status before the run (throttle/ack state); mutated.
        deliveries: ``{"simulate": Delivery, "execute": Delivery}`` — the seam that sends (or not).
        options: action modes and other execute-API options.

    Returns:
        The watch record as plain JSON values (Watcher's ``watch_record`` shape,
        docs/semantics.md#execute-api).
    """
    options = options or ExecuteOptions()
    started = time.monotonic()
    now = run.execution_time
    result: dict[str, Any] = {"execution_time": format_iso_millis(now)}
    record: dict[str, Any] = {"messages": []}

    input_result = _run_input(watch, run, options)
    result["input"] = input_result
    if input_result["status"] != "success":
        record["messages"].append("failed to execute watch input")
        return _finish(watch, run, status, record, result, None, started, options)
    if watch.rule is not None and options.alternative_input is None:
        rules.check_input(watch, run, input_result)

    try:
        condition = _run_condition(watch, run, options)
    except Exception as error:  # a throwing condition fails the run (Watcher: "exception" field)
        record["exception"] = error_json(error)
        return _finish(watch, run, status, record, result, None, started, options)
    if (condition["met"] and not options.ignore_condition and run.warnings.partial
            and rules.fires_on_absence(watch.rule)):
        condition = rules.hold_condition(run, condition)
    result["condition"] = condition
    status.last_checked = now
    if not condition["met"]:
        if not condition.get("held_on_partial_results"):  # not known: acknowledgements stay
            status.reset_acks(now)
        result["actions"] = []
        if watch.rule is not None:  # a rule that stopped matching may owe recoveries or a summary
            try:
                idle = rules.prepare_idle(watch, run)
            except Exception as error:
                record["exception"] = error_json(error)
                return _finish(watch, run, status, record, result, None, started, options)
            if idle is not None:
                result["rule"] = idle.summary()
                result["actions"] = [_run_action(watch, action, run, status, deliveries, options, idle)
                                     for action in watch.actions]
        return _finish(watch, run, status, record, result, condition, started, options)
    status.last_met_condition = now

    alerts = None
    if watch.rule is not None:
        try:
            alerts = rules.prepare(watch, run, input_result)
        except Exception as error:
            record["exception"] = error_json(error)
            return _finish(watch, run, status, record, result, None, started, options)

    if watch.transform is not None and watch.actions:
        transform = _run_transform(watch.transform, run, run.model())
        result["transform"] = transform
        if transform["status"] != "success":
            record["messages"].append("failed to execute watch transform")
            result["actions"] = []
            return _finish(watch, run, status, record, result, condition, started, options)
        run.payload = transform["payload"]

    if alerts is not None:
        result["rule"] = alerts.summary()
    result["actions"] = [
        _run_action(watch, action, run, status, deliveries, options, alerts) for action in watch.actions
    ]
    return _finish(watch, run, status, record, result, condition, started, options)


def _run_input(watch: Watch, run: Run, options: ExecuteOptions) -> dict:
    if options.alternative_input is not None:
        run.payload = dict(options.alternative_input)
        return {"type": "simple", "status": "success", "payload": run.payload}

    try:
        output = REGISTRY.get(watch.input.type).execute(watch.input.config, run)
    except Exception as error:
        return {"type": watch.input.type, "status": "failure", "error": error_json(error)}
    run.payload = output.get("payload", {})
    return output


def _run_condition(watch: Watch, run: Run, options: ExecuteOptions) -> dict:
    if options.ignore_condition:
        return {"type": "always", "status": "success", "met": True}

    return CONDITIONS_REGISTRY.get(watch.condition.type).execute(watch.condition.config, run, run.model())


def _run_transform(component, run: Run, model: dict) -> dict:
    try:
        return TRANSFORMS_REGISTRY.get(component.type).execute(component.config, run, model)
    except Exception as error:
        return {"type": component.type, "status": "failure", "reason": str(error), "error": error_json(error)}


def _run_action(watch: Watch, action: Action, run: Run, status: WatchStatus, deliveries: dict,
                options: ExecuteOptions, alerts) -> dict:
    now = run.execution_time
    base = {"id": action.id, "type": action.type}
    mode = options.mode_for(action.id)
    if mode == "skip":
        return {**base, "status": "throttled", "reason": "manually skipped"}
    action_status = status.action(action.id)
    forced = mode.startswith("force_")
    # "0s" is a real setting (no throttle), so only None falls through to the next level.
    period = next((p for p in (action.throttle_period, watch.throttle_period) if p is not None), DEFAULT_THROTTLE)
    if alerts is not None and not alerts.events_for(action.id):
        return {**base, "status": "condition_failed", "reason": alerts.no_event_reason(action.id)}
    grouped = alerts is not None and alerts.fan_out

    if not forced:
        if not grouped:  # rules with group_by throttle each group key inside the fan-out
            reason = action_status.throttled_reason(period, run.throttle_time)
            if reason:
                action_status.record_throttle(now, reason)
                return {**base, "status": "throttled", "reason": reason}
        if action_status.ack_state == "acked":
            stamp = format_iso_millis(action_status.ack_timestamp) if action_status.ack_timestamp else ""
            return {**base, "status": "acknowledged", "reason": f"action [{action.id}] was acked at [{stamp}]"}

    model = run.model()
    out = dict(base)
    if action.condition is not None:
        try:
            condition = CONDITIONS.get(action.condition.type).execute(action.condition.config, run, model)
        except Exception as error:
            action_status.reset_ack(now)
            return {**base, "status": "condition_failed", "reason": f"condition failed. skipping: {error}"}
        out["condition"] = condition
        if not condition["met"]:
            action_status.reset_ack(now)
            return {**out, "status": "condition_failed", "reason": "condition not met. skipping"}

    payload = run.payload
    if action.transform is not None:
        transform = _run_transform(action.transform, run, model)
        out["transform"] = transform
        if transform["status"] != "success":
            return {**out, "status": "failure", "reason": "Failed to transform payload"}
        payload = transform["payload"]

    delivery = deliveries["simulate" if mode.endswith("simulate") else "execute"]
    if grouped:
        return alerts.run_action(action, run, action_status, period, forced, payload, delivery, out)
    if action.foreach:
        return _run_foreach(action, run, action_status, payload, delivery, out)
    extra = (lambda: alerts.variables(alerts.events_for(action.id)[0])) if alerts is not None else None
    single = perform(action, run, payload, delivery, extra_vars=extra)
    action_status.record_result(single["status"], now, single.get("reason"), on_time=run.on_time)
    return {**out, **single}


def _run_foreach(action: Action, run: Run, action_status, payload, delivery, out: dict) -> dict:
    items = resolve_path(run.model(payload), action.foreach)
    if not isinstance(items, list) or not items:
        found = "an empty list" if isinstance(items, list) else ("nothing" if items is None else type(items).__name__)
        return {**out, "status": "failure",
                "reason": f"foreach object [{action.foreach}] was {found}; expected a non-empty list"}
    results = []
    for index, item in enumerate(items[: action.max_iterations]):
        item_payload = item if isinstance(item, dict) else {"_value": item}
        results.append(perform(action, run, item_payload, delivery, sequence=f"foreach:{index}"))
    statuses = {r["status"] for r in results}
    combined = statuses.pop() if len(statuses) == 1 else "partial_failure"
    action_status.record_result(combined, run.execution_time,
                                next((r.get("reason") for r in results if r.get("reason")), None), on_time=run.on_time)
    return {**out, "status": combined, "number_of_actions_executed": len(results),
            "foreach": [{k: v for k, v in r.items()} for r in results], "max_iterations": action.max_iterations}


def record_state(condition: dict | None, actions: list[dict]) -> str:
    """Watcher's WatchRecord.getState (docs/semantics.md#record-state)."""
    if condition is None:
        return "failed"
    if not condition.get("met"):
        return "execution_not_needed"
    statuses = {a.get("status") for a in actions}
    if "acknowledged" in statuses:
        return "acknowledged"
    if "throttled" in statuses:
        return "throttled"
    return "executed"


def catch_up_message(run: Run) -> str:
    """The record message of a catch-up run: when its tick was due, when it ran, and that throttle
    periods were measured as if it had started on time (``run.on_time``)."""
    late = run.execution_time - run.on_time
    return (f"catch-up run of the tick due at {format_iso_millis(run.scheduled_time)}, started "
            f"{format_iso_millis(run.execution_time)} ({max(late, dt.timedelta(0)).total_seconds():.3f}s late); "
            f"throttle periods measured as if it had started at {format_iso_millis(run.on_time)}")


def _finish(watch: Watch, run: Run, status: WatchStatus, record: dict, result: dict, condition,
            started: float, options: ExecuteOptions) -> dict:
    result["execution_duration"] = int((time.monotonic() - started) * 1000)
    if run.warnings:
        result["warnings"] = run.warnings.to_json()
    state = record_state(condition, result.get("actions", []))
    status.execution_state = state
    status.version += 1
    triggered = format_iso_millis(run.triggered_time)
    scheduled = {"scheduled_time": format_iso_millis(run.scheduled_time)}
    if run.catch_up:  # ours: the run caught up a missed tick (docs/correctness.md#catch-up-runs)
        scheduled["catch_up"] = True
        record["messages"].append(catch_up_message(run))
    trigger_event = ({"type": "schedule", "triggered_time": triggered, "schedule": scheduled}
                     if options.trigger_type == "schedule" else
                     {"type": "manual", "triggered_time": triggered, "manual": {"schedule": scheduled}})
    out = {
        "_id": run.record_id,
        "watch_id": watch.id,
        "node": "watcher",
        "state": state,
        "@timestamp": triggered,
        "status": status.to_json(),
        "trigger_event": trigger_event,
        "input": watch.input.definition(),
        "condition": watch.condition.definition(),
        "metadata": watch.metadata,
        "result": result,
    }
    if "exception" in record:
        out["exception"] = record["exception"]
    else:
        out["messages"] = record["messages"]
    return out
