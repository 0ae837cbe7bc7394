"""The one model every definition becomes: a :class:`Watch` (rules compile to it, see compile.py).

Shapes mirror Elastic Watcher's watch definition (trigger, input, condition, transform, actions,
throttle_period, metadata); each component keeps its type name, the parsed configuration produced by
its type module, and the original JSON body (echoed into watch records as Watcher does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from watcher.model.rule import RuleSpec


@dataclasses.dataclass(frozen=True)
class Component:
    """One input, condition or transform.

    Attributes:
        type: the type name used in files (``search``, ``compare``…), a key of the kind's registry.
        config: what that type's ``parse`` returned.
        body: the original body as plain JSON values (``{"search": body}`` is the definition).
    """

    type: str
    config: Any
    body: Any

    def definition(self) -> dict:
        """``{type: body}``, the form Watcher echoes in records (``record.input``, ``record.condition``)."""
        return {self.type: self.body}


@dataclasses.dataclass(frozen=True)
class Trigger:
    """``trigger.schedule``: ``kind`` is interval|hourly|daily|weekly|monthly|yearly|cron.

    Attributes:
        config: the schedule type's parsed form (see :mod:`watcher.schedule`).
        timezone: IANA zone name for calendar schedules, None = UTC.
        body: the original ``trigger`` object.
    """

    kind: str
    config: Any
    timezone: str | None
    body: Any


@dataclasses.dataclass(frozen=True)
class Action:
    """One action of a watch (Watcher's action wrapper around one action type).

    Attributes:
        id: the action id (key in ``actions``).
        type: action type (``webhook``, ``logging``, ``index``, ``slack``, ``opsgenie``…).
        config: what the action type's ``parse`` returned.
        body: the original body of the action type.
        condition, transform: optional per-action condition and transform.
        throttle_period: per-action throttle, None = the watch's (then the 5 s default).
        foreach: optional ``ctx.…`` path to fan out over; ``max_iterations`` caps it (default 100).
    """

    id: str
    type: str
    config: Any
    body: Any
    condition: Component | None = None
    transform: Component | None = None
    throttle_period: dt.timedelta | None = None
    foreach: str | None = None
    max_iterations: int = 100


@dataclasses.dataclass(frozen=True)
class Watch:
    """A loaded watch. ``file`` and ``id`` say where it came from; ``rule`` is set for compiled rules.

    Attributes:
        id: watch id (file name without extension, unless the file gives one; a rule's ``name``).
        file: source path.
        trigger, input, condition, transform, actions: see Watcher's watch definition.
        throttle_period: default throttle of the actions; None = Watcher's default (5 s).
        metadata: exposed as ``ctx.metadata`` (None if unset).
        active: inactive watches are not scheduled but can be executed by hand.
        rule: the rule this watch was compiled from (:class:`~watcher.model.rule.RuleSpec`), or None for a
            Watcher watch.
        body: the watch JSON as given (or as compiled from the rule).
    """

    id: str
    file: str
    trigger: Trigger
    input: Component
    condition: Component
    transform: Component | None
    actions: tuple[Action, ...]
    throttle_period: dt.timedelta | None
    metadata: dict | None
    active: bool = True
    rule: RuleSpec | None = None
    body: Any = None

    def action(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.id == action_id), None)
