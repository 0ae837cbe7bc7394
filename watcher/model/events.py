"""Events: what happened to a watch, one durable fact each, read back by cursor (docs/events.md).

Kinds (:data:`KINDS`):

* ``fired`` — a run's condition was met for a watch (a rule: for one group key, ``group``);
* ``recovered`` — a rule's group that fired before is matched no more;
* ``execution_failed`` — a run failed (input, condition, transform, a cluster error);
* ``delivered`` / ``delivery_failed`` / ``dead`` — an outbox delivery was accepted by its receiver,
  failed one attempt (will be retried), or gave up;
* ``acked``, ``silenced``, ``unsilenced``, ``activated``, ``deactivated`` — an operator's change
  (CLI or API; ``actor`` says who).

Every event has a deterministic ``id`` chosen by whoever emits it (e.g. from the record id and the
group key), so emitting the same fact twice — a tick run again after a crash — stores it once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

__all__ = ["EVENT_NAMESPACE", "Event", "KINDS", "event_id"]

KINDS = ("fired", "recovered", "execution_failed", "delivered", "delivery_failed", "dead", "acked", "silenced",
         "unsilenced", "activated", "deactivated")

# Fixed namespace of event ids (uuid5): the same fact gives the same id.
EVENT_NAMESPACE = uuid.UUID("5a1f0e4c-8d2b-5c6e-9f70-1b3d5e7f9a2c")


def event_id(kind: str, *parts: Any) -> str:
    """A deterministic id for the event ``kind`` about ``parts`` (record id, group key, action id,
    delivery id and attempt…): ``<kind>-<uuid5>``."""
    name = "\x1f".join([kind, *(str(part) for part in parts)])
    return f"{kind}-{uuid.uuid5(EVENT_NAMESPACE, name)}"


@dataclasses.dataclass(frozen=True)
class Event:
    """One event.

    Attributes:
        id: deterministic (:func:`event_id`); the log stores an id once.
        kind: one of :data:`KINDS`.
        watch_id: the watch or rule it is about.
        time: aware UTC; when it happened (the run's execution time, the delivery's answer…).
        group: a rule's group key (``query_key``/``group_by`` value), else None.
        record_id: the watch record of the run, when there is one.
        action_id, delivery_id, connector: the action and outbox delivery, for delivery events.
        scheduled_time: aware UTC; the tick's scheduled time, for run events.
        actor: who made it happen: ``daemon:<host>``, ``cli:<user>``, ``api:<token name>``.
        message: one line for a person (no secret: built from ids and outcomes, never from payloads).
        details: small JSON object with the rest (condition value, hit count, attempts, reason…).
        cursor: where the event sits in the log; set when read back, None before it is written.
    """

    id: str
    kind: str
    watch_id: str
    time: dt.datetime
    group: str | None = None
    record_id: str | None = None
    action_id: str | None = None
    delivery_id: str | None = None
    connector: str | None = None
    scheduled_time: dt.datetime | None = None
    actor: str | None = None
    message: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        for name in ("time", "scheduled_time"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name}: expected an aware datetime (UTC), found a naive one")
