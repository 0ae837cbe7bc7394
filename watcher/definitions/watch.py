"""Parse Elastic Watcher watch definitions (JSON or YAML) into the model.

Accepted forms: the request body of ``PUT _watcher/watch/<id>`` as-is (the id is the file name
without extension), or the response of ``GET _watcher/watch/<id>`` (``{"_id", "watch", …}``; the id
is ``_id``). Top-level keys are Watcher's and only those (docs/semantics.md#top-level-keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from watcher.destinations import ACTIONS as actions
from watcher.engine.conditions import REGISTRY as conditions
from watcher.engine.inputs import REGISTRY as inputs
from watcher.engine.transforms import REGISTRY as transforms
from watcher.model.problems import Reader
from watcher.model.source import Document, plain
from watcher.model.watch import Action, Trigger, Watch
from watcher.schedule import REGISTRY as schedules
from watcher.schedule import resolve_timezone
from watcher.support.durations import DurationError, parse_time_value

TOP_LEVEL_KEYS = ("trigger", "input", "condition", "transform", "actions", "metadata",
                  "throttle_period", "throttle_period_in_millis", "status")
ACTION_WRAPPER_KEYS = ("throttle_period", "throttle_period_in_millis", "condition", "transform",
                       "foreach", "max_iterations")


def registries():
    """The component registries, imported late (type modules import this package's helpers)."""

    return {"input": inputs, "condition": conditions, "transform": transforms, "action": actions,
            "schedule": schedules}


def looks_like_watch(data: Any) -> bool:
    """True for a document that is a watch (has ``trigger``, or is a GET-watch response)."""
    return isinstance(data, Mapping) and ("trigger" in data or ("watch" in data and "_id" in data))


def parse_watch(document: Document, reader: Reader | None = None, watch_id: str | None = None) -> Watch | None:
    """Parse one watch document.

    Args:
        document: the positioned file.
        reader: collects problems (a new one if None).
        watch_id: overrides the id derived from the file.

    Returns:
        The watch, or None when problems were recorded on ``reader``.
    """
    reader = reader or Reader(document)
    data, base = document.data, ()
    if reader.mapping((), data, "a watch object (with trigger, input, condition, actions)") is None:
        return None
    if "watch" in data and "_id" in data:  # GET _watcher/watch/<id> response
        watch_id = watch_id or str(data["_id"])
        data, base = data["watch"], ("watch",)
        if reader.mapping(base, data, "a watch object") is None:
            return None
    watch_id = watch_id or Path(document.file).stem
    before = len(reader.problems)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            reader.unknown_key(base, str(key), TOP_LEVEL_KEYS)
    kinds = registries()
    trigger = parse_trigger(reader, data.get("trigger"), (*base, "trigger"), kinds["schedule"])
    input_ = kinds["input"].parse(reader, data.get("input", {"none": {}}), (*base, "input"))
    condition = kinds["condition"].parse(reader, data.get("condition", {"always": {}}), (*base, "condition"))
    transform = None
    if "transform" in data:
        transform = kinds["transform"].parse(reader, data["transform"], (*base, "transform"))
    throttle = parse_throttle(reader, data, base)
    actions = parse_actions(reader, data.get("actions", {}), (*base, "actions"), kinds)
    metadata = data.get("metadata")
    if metadata is not None and reader.mapping((*base, "metadata"), metadata) is None:
        metadata = None
    if len(reader.problems) > before:
        return None
    return Watch(id=watch_id, file=document.file, trigger=trigger, input=input_, condition=condition,
                 transform=transform, actions=tuple(actions), throttle_period=throttle,
                 metadata=plain(metadata) if metadata is not None else None, body=plain(data))


def parse_trigger(reader: Reader, value: Any, path: Sequence, schedules) -> Trigger | None:
    """``{"schedule": {<kind>: spec, "timezone"?: zone}}`` → :class:`Trigger`."""
    if value is None:
        reader.problem(path[:-1], "missing required field 'trigger'")
        return None
    trigger = reader.mapping(path, value, "a trigger object such as {schedule: {interval: 5m}}")
    if trigger is None:
        return None
    for key in trigger:
        if key != "schedule":
            reader.unknown_key(path, str(key), ["schedule"], what="trigger type")
    if "schedule" not in trigger:
        reader.problem(path, "missing required field 'schedule'")
        return None
    schedule = reader.mapping((*path, "schedule"), trigger["schedule"])
    if schedule is None:
        return None
    timezone = schedule.get("timezone")
    if timezone is not None and not valid_timezone(timezone):
        reader.expected((*path, "schedule", "timezone"), "an IANA time zone such as Europe/Paris or UTC", timezone)
    component = schedules.parse(reader, schedule, (*path, "schedule"), ignore=("timezone",))
    if component is None:
        return None
    return Trigger(kind=component.type, config=component.config, timezone=timezone, body=plain(value))


def valid_timezone(name: Any) -> bool:
    """True for an IANA zone name (case-insensitive, as Watcher looks zones up) or a UTC offset."""

    if not isinstance(name, str) or not name:
        return False
    try:
        resolve_timezone(name)
        return True
    except ValueError:
        return False


def parse_throttle(reader: Reader, holder: Mapping, path: Sequence) -> dt.timedelta | None:
    """``throttle_period`` (time value) or ``throttle_period_in_millis`` (integer ms) of ``holder``."""

    if "throttle_period" in holder and "throttle_period_in_millis" in holder:
        reader.problem((*path, "throttle_period_in_millis"),
                       "give throttle_period or throttle_period_in_millis, not both")
        return None
    for key in ("throttle_period", "throttle_period_in_millis"):
        if key not in holder:
            continue
        value = plain(holder[key])
        if key.endswith("_in_millis") and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            reader.expected((*path, key), "a whole number of milliseconds (0 or more)", value)
            return None
        try:
            return parse_time_value(value, field=key)
        except DurationError as error:
            reader.problem((*path, key), str(error), at_value=True)
    return None


def parse_actions(reader: Reader, value: Any, path: Sequence, kinds) -> list[Action]:
    """``{action_id: wrapper}`` → actions in definition order."""
    actions = reader.mapping(path, value, "a mapping of action id to action")
    if actions is None:
        return []
    parsed = []
    for action_id, body in actions.items():
        action = parse_action(reader, str(action_id), body, (*path, action_id), kinds)
        if action is not None:
            parsed.append(action)
    return parsed


def parse_action(reader: Reader, action_id: str, value: Any, path: Sequence, kinds) -> Action | None:
    """One action wrapper (docs/semantics.md#action-wrapper) → :class:`Action`, or None when problems were
    recorded."""
    wrapper = reader.mapping(path, value, "an action object such as {webhook: {…}}")
    if wrapper is None:
        return None
    before = len(reader.problems)
    component = kinds["action"].parse(reader, wrapper, path, ignore=ACTION_WRAPPER_KEYS)
    condition = kinds["condition"].parse(reader, wrapper["condition"], (*path, "condition")) if "condition" in wrapper else None
    transform = kinds["transform"].parse(reader, wrapper["transform"], (*path, "transform")) if "transform" in wrapper else None
    throttle = parse_throttle(reader, wrapper, path)
    foreach = plain(wrapper.get("foreach"))
    if foreach is not None and (not isinstance(foreach, str) or not foreach.startswith("ctx.")):
        reader.expected((*path, "foreach"), "a path starting with 'ctx.' such as ctx.payload.hits.hits", foreach)
    max_iterations = plain(wrapper.get("max_iterations", 100))
    if not isinstance(max_iterations, int) or isinstance(max_iterations, bool) or max_iterations < 1:
        reader.expected((*path, "max_iterations"), "a whole number of at least 1", max_iterations)
    if len(reader.problems) > before or component is None:
        return None
    return Action(id=action_id, type=component.type, config=component.config, body=component.body,
                  condition=condition, transform=transform, throttle_period=throttle,
                  foreach=foreach, max_iterations=max_iterations)
