"""The event log in ``<prefix>-events`` (:data:`watcher.es.indices.EVENTS`; docs/api.md#events).

Writing: :meth:`EventLog.append` stores events with ``op_type=create`` under their deterministic
ids, so a fact emitted twice is stored once.

Reading by cursor is the subject of docs/api.md#cursors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from watcher.es.indices import EVENTS, ensure_index
from watcher.model.events import Event
from watcher.support.datemath import format_iso_millis, utc_now_millis

__all__ = ["EventLog", "event_document"]

LOG = logging.getLogger(__name__)


def event_document(event: Event, written_at) -> dict:
    """The stored document of ``event`` (without its id), ``written_at`` aware UTC."""
    document = {
        "@timestamp": format_iso_millis(written_at), "time": format_iso_millis(event.time), "kind": event.kind,
        "watch_id": event.watch_id, "message": event.message, "details": event.details,
    }
    for name in ("group", "record_id", "action_id", "delivery_id", "connector", "actor"):
        value = getattr(event, name)
        if value is not None:
            document[name] = value
    if event.scheduled_time is not None:
        document["scheduled_time"] = format_iso_millis(event.scheduled_time)
    return document


class EventLog:
    """The event log of one index prefix.

    Args:
        es: a synchronous Elasticsearch client (:func:`watcher.es.client.make_client`).
        prefix: the index prefix.
        clock: now, aware UTC (``@timestamp`` of written events).
    """

    def __init__(self, es, prefix: str, *, clock=utc_now_millis):
        self.es = es
        self.prefix = prefix
        self.index = EVENTS.name(prefix)
        self._clock = clock

    def ensure(self) -> None:
        """Create the index, or bring its mapping up to date (idempotent).

        Raises:
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        ensure_index(self.es, EVENTS, self.prefix)

    def append(self, events: Iterable[Event]) -> int:
        """Store ``events`` in order (one bulk request); an id already stored is skipped.

        Returns:
            How many were new.

        Raises:
            elasticsearch.ApiError / TransportError: the request failed (nothing or part stored:
                append the same events again — ids make it safe).
            RuntimeError: an item was refused for another reason than an existing id.
        """
        events = list(events)
        if not events:
            return 0
        now = self._clock()
        operations: list[dict] = []
        for event in events:
            operations.append({"create": {"_index": self.index, "_id": event.id}})
            operations.append(event_document(event, now))
        answer = self.es.bulk(operations=operations)
        created = 0
        for item in answer.get("items", []):
            result = item.get("create", {})
            status = result.get("status", 500)
            if status in (200, 201):
                created += 1
            elif status != 409:  # 409: stored before (the same fact emitted again)
                raise RuntimeError(f"event {result.get('_id')} not stored: {result.get('error')}")
        return created
