"""The event log in ``<prefix>-events`` (:data:`watcher.es.indices.EVENTS`; docs/events.md).

Writing: :meth:`EventLog.append` stores events with ``op_type=create`` under their deterministic
ids, so a fact emitted twice is stored once.

Reading: :meth:`EventLog.read` returns the events after a :class:`Cursor`, in the order they were
written, and never skips one that a later read could still find — the reasoning (one shard, its
``_seq_no``, the global checkpoint, then a refresh) is in docs/events.md#ordering.

Retention: :meth:`EventLog.expire` deletes events written before a cut-off and remembers the last
deleted position in the index's ``_meta`` (``deleted_through``), so a read from an older cursor
says that events may be missing (:attr:`EventPage.gap`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence

from watcher.errors import PermanentClusterError, WatcherError
from watcher.es.indices import EVENTS, ensure_index
from watcher.model.events import Event
from watcher.support.datemath import (format_iso_millis, parse_instant,
                                      utc_now_millis)

__all__ = ["BEGINNING", "Cursor", "CursorError", "EventFilter", "EventLog", "EventNotStored", "EventPage",
           "StaleCursorError", "event_document", "event_from_hit"]

LOG = logging.getLogger(__name__)
_CURSOR = re.compile(r"^([A-Za-z0-9_-]{1,64})\.(-1|\d{1,19})$")


class CursorError(WatcherError, ValueError):
    """A cursor that is not one we gave out (malformed). The caller answers 400."""


class StaleCursorError(WatcherError):
    """A cursor of another event log: the index was deleted and created again since it was given
    out (its uuid differs). Nothing after it can be found; the reader starts again from
    ``beginning`` or from the end (docs/events.md#cursors). The caller answers 410."""


class EventNotStored(PermanentClusterError):
    """The cluster refused an event for another reason than an existing id (a mapping conflict, a
    closed or read-only index); sending the same events again gives the same answer."""


@dataclasses.dataclass(frozen=True, order=True)
class Cursor:
    """A position in one event log: the ``_seq_no`` of the last event read (-1: before the first)
    and the uuid of the index it belongs to (None: any log — the cursor ``beginning``).

    Its text form (:meth:`__str__`, :meth:`parse`) is ``<index uuid>.<seq_no>``; clients treat it as
    opaque.
    """

    seq_no: int
    index_uuid: str | None = None

    def __str__(self) -> str:
        if self.index_uuid is None:
            return "beginning" if self.seq_no < 0 else str(self.seq_no)
        return f"{self.index_uuid}.{self.seq_no}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """``beginning`` or ``0`` (before the oldest kept event) or a cursor we gave out.

        Raises:
            CursorError: anything else (the message says what is expected).
        """
        text = (text or "").strip()
        if text in ("beginning", "0"):
            return BEGINNING
        match = _CURSOR.match(text)
        if match is None:
            raise CursorError(f"expected a cursor given out by this server (e.g. the id of an event) or "
                              f"'beginning', found {text[:80]!r}")
        return cls(int(match.group(2)), match.group(1))


BEGINNING = Cursor(-1, None)


@dataclasses.dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants: each non-empty tuple must contain the event's value (an event
    without a group never matches a ``groups`` filter). Empty tuples match everything."""

    watch_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def matches(self, event: Event) -> bool:
        """True when ``event`` passes every non-empty part."""
        return ((not self.watch_ids or event.watch_id in self.watch_ids)
                and (not self.kinds or event.kind in self.kinds)
                and (not self.groups or event.group in self.groups))

    def query(self) -> list[dict]:
        """The same filter as Elasticsearch ``terms`` clauses."""
        clauses = []
        for field, values in (("watch_id", self.watch_ids), ("kind", self.kinds), ("group", self.groups)):
            if values:
                clauses.append({"terms": {field: list(values)}})
        return clauses


EVERYTHING = EventFilter()


@dataclasses.dataclass(frozen=True)
class EventPage:
    """One read: ``events`` in log order (each with its ``cursor``); ``cursor`` where the next read
    continues (past filtered-out events too); ``gap`` True when events after the requested cursor
    were deleted by retention before they could be read (the page starts at the oldest kept one)."""

    events: list[Event]
    cursor: Cursor
    gap: bool = False


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


def event_from_hit(hit: dict, index_uuid: str) -> tuple[Event, dt.datetime]:
    """The event of a search hit (with ``_seq_no``) and when it was written (``@timestamp``, aware UTC)."""
    source = hit["_source"]
    scheduled = source.get("scheduled_time")
    event = Event(id=hit["_id"], kind=source["kind"], watch_id=source["watch_id"], time=parse_instant(source["time"]),
                  group=source.get("group"), record_id=source.get("record_id"), action_id=source.get("action_id"),
                  delivery_id=source.get("delivery_id"), connector=source.get("connector"),
                  scheduled_time=parse_instant(scheduled) if scheduled else None, actor=source.get("actor"),
                  message=source.get("message") or "", details=source.get("details") or {},
                  cursor=str(Cursor(hit["_seq_no"], index_uuid)))
    return event, parse_instant(source["@timestamp"])


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
            EventNotStored: an item was refused for another reason than an existing id.
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
                error = result.get("error") or {}
                raise EventNotStored(f"event {result.get('_id')} not stored: {error.get('type')}: "
                                     f"{error.get('reason')}")
        return created

    # -- reading -------------------------------------------------------------------------------------

    def head(self) -> Cursor:
        """The cursor of the end of the log now: reading after it gives only events written later.

        Raises:
            elasticsearch.ApiError / TransportError (404 while the index does not exist).
        """
        index_uuid, checkpoint = self._checkpoint()
        return Cursor(checkpoint, index_uuid)

    def read(self, after: Cursor, where: EventFilter = EVERYTHING, *, limit: int = 100) -> EventPage:
        """The events written after ``after`` that pass ``where``, oldest first, at most ``limit``.

        Gap-free (docs/events.md#ordering): the shard's global checkpoint C is taken first, the
        index refreshed next, then ``_seq_no`` in ``(after, C]`` is searched — every write ≤ C is
        visible, so an event is never passed over because a later one was seen first.

        Args:
            after: a cursor of this log, or :data:`BEGINNING`.
            where: filters (the next cursor moves past what they leave out).
            limit: most events returned (≥ 1).

        Returns:
            :class:`EventPage`; its ``cursor`` is the last event's when ``limit`` was reached, else C.

        Raises:
            StaleCursorError: ``after`` belongs to a log deleted and created again.
            elasticsearch.ApiError / TransportError: cluster errors (404 while the index does not exist).
        """
        if limit < 1:
            raise ValueError(f"limit: expected at least 1, found {limit}")
        index_uuid, checkpoint = self._checkpoint()
        if after.index_uuid is not None and after.index_uuid != index_uuid:
            raise StaleCursorError(f"the cursor {after} belongs to an event log that no longer exists (the index "
                                   f"{self.index} was created again); read again from 'beginning' or from the end")
        start = max(after.seq_no, -1)
        if checkpoint <= start:
            return EventPage([], Cursor(start, index_uuid))
        self.es.indices.refresh(index=self.index)
        answer = self.es.search(index=self.index, size=limit, seq_no_primary_term=True,
                                sort=[{"_seq_no": "asc"}], track_total_hits=False,
                                query={"bool": {"filter": [{"range": {"_seq_no": {"gt": start, "lte": checkpoint}}},
                                                           *where.query()]}})
        hits = answer["hits"]["hits"]
        events = [event_from_hit(hit, index_uuid)[0] for hit in hits]
        end = hits[-1]["_seq_no"] if len(hits) >= limit else checkpoint
        # a deleted event leaves a hole in (start, end]: without a hole nothing can be missing
        hole = end - start > len(events)
        gap = after.index_uuid is not None and hole and start < self._deleted_through()
        return EventPage(events, Cursor(end, index_uuid), gap)

    def _checkpoint(self) -> tuple[str, int]:
        """The index uuid and the global checkpoint of its primary shard (-1 when empty)."""
        stats = self.es.indices.stats(index=self.index, level="shards", metric="docs")
        (name, index_stats), = stats["indices"].items()
        copies: Sequence[dict] = index_stats["shards"]["0"]
        primary = next(copy for copy in copies if copy["routing"]["primary"])
        return index_stats["uuid"], int(primary["seq_no"]["global_checkpoint"])

    def _deleted_through(self) -> int:
        """The ``_seq_no`` of the last event deleted by retention (``_meta.deleted_through``), -1 if none."""
        mapping = self.es.indices.get_mapping(index=self.index)
        meta = next(iter(mapping.values()))["mappings"].get("_meta") or {}
        return int(meta.get("deleted_through", -1))

    # -- retention -----------------------------------------------------------------------------------

    def expire(self, older_than: dt.timedelta, *, batch: int = 1000) -> int:
        """Delete the events written more than ``older_than`` ago (``@timestamp``), ``batch`` per
        bulk request (by id: ``_delete_by_query`` needs the reindex module, which not every
        distribution has).

        The position of the newest deleted event is saved first (``_meta.deleted_through``), so a
        reader whose cursor is before it learns that it may have missed some (:attr:`EventPage.gap`).

        Returns:
            How many events were deleted.

        Raises:
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        cutoff = {"range": {"@timestamp": {"lt": format_iso_millis(self._clock() - older_than)}}}
        self.es.indices.refresh(index=self.index)
        newest = self._search_seq_nos(cutoff, 1, "desc")
        if not newest:
            return 0
        through = max(newest[0]["_seq_no"], self._deleted_through())
        self.es.indices.put_mapping(index=self.index, meta={"deleted_through": through})
        old = {"bool": {"filter": [cutoff, {"range": {"_seq_no": {"lte": through}}}]}}
        deleted = 0
        while hits := self._search_seq_nos(old, batch, "asc"):
            self.es.bulk(operations=[{"delete": {"_index": self.index, "_id": hit["_id"]}} for hit in hits],
                         refresh=True)
            deleted += len(hits)
        LOG.info("event retention: deleted %d events written before %s", deleted, cutoff["range"]["@timestamp"]["lt"])
        return deleted

    def _search_seq_nos(self, query: dict, size: int, order: str) -> list[dict]:
        return self.es.search(index=self.index, size=size, seq_no_primary_term=True, sort=[{"_seq_no": order}],
                              track_total_hits=False, source=False, query=query)["hits"]["hits"]
