"""Watches stored through Watcher's REST API (``PUT _watcher/watch/<id>``) in ``<prefix>-watches``.

One document per watch id (mapping :data:`watcher.es.indices.WATCHES`): ``watch_id``,
``updated_at`` and ``watch``, the definition as it was put (Watcher's JSON, stored, not indexed).
Versions are Elasticsearch's own (``_version``, ``_seq_no``, ``_primary_term``); a write that names
the version it read (``if_seq_no`` and ``if_primary_term``) fails with :class:`StoredWatchConflict`
when the document changed since (Elasticsearch "Optimistic concurrency control"). Writes refresh
the index, so a daemon polling it (:meth:`WatchStore.load_all`) sees them at its next poll.

What a stored watch means for the daemon (scheduling, conflicts with files) is in
docs/watcher-api.md#stored-watches.
"""

from __future__ import annotations

import dataclasses

from elasticsearch import ConflictError, NotFoundError

from watcher.errors import ClusterError
from watcher.es.indices import WATCHES, ensure_index
from watcher.support.datemath import format_iso_millis, utc_now_millis

__all__ = ["StoredWatch", "StoredWatchConflict", "WatchStore"]

PAGE = 1000


class StoredWatchConflict(ClusterError):
    """The stored watch is not at the version the write named (``if_seq_no``/``if_primary_term``):
    someone changed or deleted it since it was read. Read it again and decide."""


@dataclasses.dataclass(frozen=True)
class StoredWatch:
    """One stored watch.

    Attributes:
        id: the watch id (the document ``_id``).
        body: the definition as put (Watcher's JSON object).
        version, seq_no, primary_term: the document's version, as Elasticsearch reports it.
        created: True when the write that returned this created the document (``PUT`` answers).
    """

    id: str
    body: dict
    version: int
    seq_no: int
    primary_term: int
    created: bool = False


class WatchStore:
    """Stored watches of one index prefix.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.
        prefix: index prefix (``watcher`` → ``watcher-watches``).
        clock: returns now (aware UTC) for ``updated_at``.
    """

    def __init__(self, es, prefix: str = "watcher", clock=utc_now_millis):
        self.es = es
        self.prefix = prefix
        self.index = WATCHES.name(prefix)
        self._clock = clock

    def ensure(self) -> None:
        """Create the index with its mapping if missing (idempotent; :func:`~watcher.es.indices.ensure_index`)."""
        ensure_index(self.es, WATCHES, self.prefix)

    def put(self, watch_id: str, body: dict, *, if_seq_no: int | None = None,
            if_primary_term: int | None = None) -> StoredWatch:
        """Store ``body`` as watch ``watch_id`` (created or replaced), refreshed when this returns.

        Args:
            if_seq_no, if_primary_term: both or neither; with them the write succeeds only when the
                stored document is at that version.

        Raises:
            StoredWatchConflict: the stored version differs (or the watch does not exist).
            elasticsearch.ApiError / TransportError on other cluster errors.
        """
        document = {"watch_id": watch_id, "updated_at": format_iso_millis(self._clock()), "watch": body}
        versioned = {"if_seq_no": if_seq_no, "if_primary_term": if_primary_term} if if_seq_no is not None else {}
        try:
            response = self.es.index(index=self.index, id=watch_id, document=document, refresh=True, **versioned)
        except ConflictError as error:
            raise StoredWatchConflict(
                f"[{watch_id}]: version conflict, required seqNo [{if_seq_no}], primary term "
                f"[{if_primary_term}]; the stored watch changed since it was read") from error
        return StoredWatch(watch_id, body, response["_version"], response["_seq_no"], response["_primary_term"],
                           created=response.get("result") == "created")

    def get(self, watch_id: str) -> StoredWatch | None:
        """The stored watch ``watch_id`` (real-time get), or None when there is none (or no index).

        Raises:
            elasticsearch.ApiError / TransportError on other cluster errors.
        """
        try:
            response = self.es.get(index=self.index, id=watch_id)
        except NotFoundError:
            return None
        return _from_hit(response)

    def delete(self, watch_id: str) -> StoredWatch | None:
        """Delete the stored watch; returns it as it was (with the delete's version), or None when
        there was none.

        Raises:
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        stored = self.get(watch_id)
        if stored is None:
            return None
        try:
            response = self.es.delete(index=self.index, id=watch_id, refresh=True)
        except NotFoundError:
            return None
        return dataclasses.replace(stored, version=response["_version"], seq_no=response["_seq_no"],
                                   primary_term=response["_primary_term"])

    def load_all(self) -> dict[str, StoredWatch]:
        """Every stored watch by id, in id order (pages of 1,000); empty when the index does not exist.

        Raises:
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        if not self.es.indices.exists(index=self.index):
            return {}
        out: dict[str, StoredWatch] = {}
        after = None
        while True:
            kwargs = {"search_after": after} if after is not None else {}
            response = self.es.search(index=self.index, size=PAGE, sort=[{"watch_id": "asc"}], version=True,
                                      seq_no_primary_term=True, query={"match_all": {}}, **kwargs)
            hits = response["hits"]["hits"]
            for hit in hits:
                out[hit["_id"]] = _from_hit(hit)
            if len(hits) < PAGE:
                return out
            after = hits[-1]["sort"]


def _from_hit(hit: dict) -> StoredWatch:
    source = hit.get("_source") or {}
    return StoredWatch(hit["_id"], source.get("watch") or {}, hit.get("_version", 1), hit["_seq_no"],
                       hit["_primary_term"])
