"""The outbox's store: the index ``<prefix>-outbox``, one document per delivery (``_id`` = delivery id).

What is written and how (the worker that claims, sends and retries the deliveries is
:class:`watcher.delivery.outbox.Outbox`). A document (:func:`new_delivery`)::

    delivery_id, watch_id, action_id, record_id, connector (the lane), state, attempts,
    created_at, next_attempt_at, updated_at, lease_until, delivered_at, last_error, last_status,
    request (stored, not indexed: the sealed request, placeholders instead of secrets),
    result (stored, once delivered, when the destination says what it made: a Jira issue's key)

mapped by :data:`watcher.es.indices.OUTBOX`. States: :data:`PENDING` → :data:`DELIVERING` (claimed,
with ``lease_until``) → :data:`DELIVERED` or :data:`DEAD`, or back to ``pending`` to retry.

* **Creates** use ``op_type=create``: an existing id is not written again (:meth:`OutboxStore.create`).
* **Updates** (claims, results, retries) are conditional on the version read (``if_seq_no`` /
  ``if_primary_term``, optimistic concurrency): two processes never both win the same version
  (:meth:`OutboxStore.update`, :meth:`OutboxStore.update_async`).
* **Searches** (:meth:`OutboxStore.due`, :meth:`OutboxStore.list`, :meth:`OutboxStore.depth`) see
  writes after the next refresh (≤ 1 s); the admin views refresh first. Gets by ``_id`` are real-time.

Writes use the default ``refresh=false`` and are durable once acknowledged (the translog is fsynced
before the answer). They are group-committed (:mod:`watcher.es.groupcommit`): the creates of
concurrent threads share a ``_bulk``, and so do the updates of one event loop's coroutines; each item
keeps its own answer (a version conflict is its caller's alone).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable

from elasticsearch import ConflictError, NotFoundError

from watcher.es.groupcommit import AsyncGroupCommit, document_write, index_document, write_documents
from watcher.es.indices import OUTBOX, ensure_index
from watcher.support.datemath import format_iso_millis

PENDING, DELIVERING, DELIVERED, DEAD = "pending", "delivering", "delivered", "dead"
STATES = (PENDING, DELIVERING, DELIVERED, DEAD)


def _iso(value: dt.datetime) -> str:
    return format_iso_millis(value)


def new_delivery(delivery_id_: str, *, watch_id: str | None, action_id: str, record_id: str, connector: str,
                 request: dict, now: dt.datetime) -> dict:
    """The document of a new delivery: ``pending``, due ``now``, no attempt yet.

    Args:
        request: the request as stored (sealed: placeholders instead of secrets), a plain dict.
    """
    return {
        "delivery_id": delivery_id_, "watch_id": watch_id, "action_id": action_id, "record_id": record_id,
        "connector": connector, "state": PENDING, "attempts": 0,
        "created_at": _iso(now), "next_attempt_at": _iso(now), "updated_at": _iso(now),
        "lease_until": None, "last_error": None, "last_status": None,
        "request": request,
    }


@dataclasses.dataclass(frozen=True)
class StoredDelivery:
    """One outbox document at one version (``seq_no``/``primary_term`` for optimistic concurrency)."""

    id: str
    source: dict
    seq_no: int
    primary_term: int

    @property
    def state(self) -> str:
        return self.source.get("state", PENDING)

    @property
    def connector(self) -> str:
        return self.source.get("connector") or "default"

    @property
    def attempts(self) -> int:
        return int(self.source.get("attempts") or 0)

    def as_dict(self) -> dict:
        """``{"id", **source}``: safe to print (the request holds placeholders, no secret)."""
        return {"id": self.id, **self.source}


class OutboxStore:
    """The outbox index ``<prefix>-outbox`` (synchronous Elasticsearch client).

    Args:
        es: ``elasticsearch.Elasticsearch``.
        prefix: index prefix (``watcher`` → ``watcher-outbox``).

    Every method raises the client's errors (``ApiError``, ``TransportError``) except the documented
    "not found" / "conflict" results.
    """

    def __init__(self, es, prefix: str = "watcher"):
        self.es = es
        self.prefix = prefix
        self.index = OUTBOX.name(prefix)

    def ensure(self) -> None:
        """Create the index with its explicit mapping if missing (idempotent; mapping updated if it
        exists: :func:`watcher.es.indices.ensure_index`)."""
        ensure_index(self.es, OUTBOX, self.prefix)

    def create(self, delivery_id_: str, document: dict) -> tuple[StoredDelivery, bool]:
        """Write a new delivery. Returns ``(stored, True)``, or ``(existing, False)`` if the id exists.

        Concurrent creates of several threads share one ``_bulk`` (group commit,
        :func:`watcher.es.groupcommit.index_document`); each still gets its own answer."""
        try:
            response = index_document(self.es, self.index, delivery_id_, document, op_type="create")
        except ConflictError:
            existing = self.get(delivery_id_)
            if existing is None:  # deleted in between: try once more
                return self.create(delivery_id_, document)
            return existing, False
        return StoredDelivery(delivery_id_, document, response["_seq_no"], response["_primary_term"]), True

    def get(self, delivery_id_: str) -> StoredDelivery | None:
        """The delivery (real-time get), or None."""
        try:
            response = self.es.get(index=self.index, id=delivery_id_)
        except NotFoundError:
            return None
        return StoredDelivery(response["_id"], response["_source"], response["_seq_no"], response["_primary_term"])

    def update(self, item: StoredDelivery, changes: dict) -> StoredDelivery | None:
        """Apply ``changes`` if the stored version is still ``item``'s; None on conflict or if gone.

        Written as the whole document (``item.source`` + ``changes``) with ``if_seq_no`` /
        ``if_primary_term``: when the condition holds the stored document *is* ``item.source``, so
        this equals a partial update, costs the cluster no read, and can share a ``_bulk`` with
        concurrent writes (group commit)."""
        pending, source = self.update_write(item, changes)
        try:
            response = index_document(self.es, self.index, item.id, source, **pending.payload.options)
        except (ConflictError, NotFoundError):
            return None
        return StoredDelivery(item.id, source, response["_seq_no"], response["_primary_term"])

    def update_write(self, item: StoredDelivery, changes: dict):
        """``(pending, source)``: the conditional write :meth:`update` sends, as a group-commit item
        (:func:`watcher.es.groupcommit.document_write`), and the document it writes."""
        source = {**item.source, **changes}
        return document_write(self.index, item.id, source, if_seq_no=item.seq_no,
                              if_primary_term=item.primary_term), source

    def async_writes(self) -> AsyncGroupCommit:
        """A group commit for :meth:`update_async` in one event loop (its coroutines share ``_bulk``
        requests: at most 2 out at once, up to 200 writes each)."""
        return AsyncGroupCommit(functools.partial(write_documents, self.es), max_batch=200, counts_as="writes")

    async def update_async(self, item: StoredDelivery, changes: dict,
                           writes: AsyncGroupCommit) -> StoredDelivery | None:
        """:meth:`update` from a coroutine, through ``writes`` (:meth:`async_writes`): concurrent
        updates share one ``_bulk``; a version conflict is this item's alone (None), any other
        failure of the item or of the whole request is raised."""
        pending, source = self.update_write(item, changes)
        try:
            response = await writes.submit(pending)
        except (ConflictError, NotFoundError):
            return None
        return StoredDelivery(item.id, source, response["_seq_no"], response["_primary_term"])

    def due(self, now: dt.datetime, size: int = 100, *, exclude_connectors: Iterable[str] = (),
            exclude_ids: Iterable[str] = ()) -> list[StoredDelivery]:
        """Deliveries to claim now: ``pending`` with ``next_attempt_at`` ≤ now, and ``delivering``
        with ``lease_until`` ≤ now (their process died). Oldest due first. Sees writes after refresh."""
        stamp = _iso(now)
        must_not: list[dict] = []
        if exclude_connectors:
            must_not.append({"terms": {"connector": list(exclude_connectors)}})
        if exclude_ids:
            must_not.append({"ids": {"values": list(exclude_ids)}})
        query = {"bool": {
            "should": [
                {"bool": {"filter": [{"term": {"state": PENDING}}, {"range": {"next_attempt_at": {"lte": stamp}}}]}},
                {"bool": {"filter": [{"term": {"state": DELIVERING}}, {"range": {"lease_until": {"lte": stamp}}}]}},
            ],
            "minimum_should_match": 1,
            "must_not": must_not,
        }}
        response = self.es.options(ignore_status=404).search(
            index=self.index, size=size, query=query, sort=[{"next_attempt_at": "asc"}], seq_no_primary_term=True)
        return [StoredDelivery(hit["_id"], hit["_source"], hit["_seq_no"], hit["_primary_term"])
                for hit in response.get("hits", {}).get("hits", [])]

    def list(self, state: str | None = None, size: int = 50, refresh: bool = True) -> list[StoredDelivery]:
        """Deliveries, most recently updated first, optionally only in ``state``."""
        if refresh:
            self.refresh()
        query = {"term": {"state": state}} if state else {"match_all": {}}
        response = self.es.options(ignore_status=404).search(
            index=self.index, size=size, query=query, sort=[{"updated_at": "desc"}], seq_no_primary_term=True)
        return [StoredDelivery(hit["_id"], hit["_source"], hit["_seq_no"], hit["_primary_term"])
                for hit in response.get("hits", {}).get("hits", [])]

    def depth(self, refresh: bool = True) -> dict[str, int]:
        """``{state: count}`` for every state (0 when none)."""
        if refresh:
            self.refresh()
        response = self.es.options(ignore_status=404).search(
            index=self.index, size=0, aggs={"states": {"terms": {"field": "state", "size": 10}}})
        counts = {state: 0 for state in STATES}
        for bucket in response.get("aggregations", {}).get("states", {}).get("buckets", []):
            counts[bucket["key"]] = bucket["doc_count"]
        return counts

    def refresh(self) -> None:
        self.es.options(ignore_status=404).indices.refresh(index=self.index)
