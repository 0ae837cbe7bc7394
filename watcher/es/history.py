"""The history index: one watch record per execution (Watcher's ``.watcher-history-*``,
docs/semantics.md#watch-history).

Records go to daily indices ``<prefix>-history-YYYY.MM.DD`` created from an index template with an
explicit mapping (:data:`watcher.es.indices.HISTORY`): ids, states and action statuses are keywords
(term queries work), times are dates, and payloads, request bodies and status objects are stored but
not indexed (``enabled: false``), as Watcher's own history mapping does. Records contain no secret:
action results carry masked requests.
"""

from __future__ import annotations

import datetime as dt

from watcher.es.groupcommit import index_document
from watcher.es.indices import HISTORY, ensure_index
from watcher.support.datemath import parse_instant


def index_pattern(prefix: str) -> str:
    """The pattern matching every daily history index of ``prefix`` (``<prefix>-history-*``)."""
    return HISTORY.pattern(prefix)


def index_for(prefix: str, when: dt.datetime) -> str:
    """The daily history index for a record triggered at ``when`` (UTC)."""
    return HISTORY.daily_name(prefix, when)


def ensure_template(es, prefix: str) -> None:
    """Create or update the index template of the history indices (idempotent;
    :func:`watcher.es.indices.ensure_index`)."""
    ensure_index(es, HISTORY, prefix)


def write_record(es, prefix: str, record: dict, refresh: bool | str = False) -> str:
    """Index one watch record (its ``_id`` is the record id). Returns the index written to.

    Alone it is one index request; records written by other threads on the same client at the same
    moment share one ``_bulk`` (group commit, :func:`watcher.es.groupcommit.index_document`):
    same index, id and document, and each caller gets its own error.

    Args:
        refresh: the index request's ``refresh`` (False, True or ``"wait_for"``); only writes with
            the same refresh share a ``_bulk``.

    Raises:
        elasticsearch.ApiError / TransportError on cluster errors (the class a lone index request
        raises, also when the record went in a ``_bulk``).
    """
    document = {k: v for k, v in record.items() if k != "_id"}
    index = index_for(prefix, parse_instant(record["@timestamp"]))
    index_document(es, index, record["_id"], document, refresh=refresh)
    return index


def recent_records(es, prefix: str, watch_id: str, size: int = 20, state: str | None = None) -> list[dict]:
    """The latest records of ``watch_id`` (optionally only in ``state``), newest first.

    Records are ``{"_id", **source}``. An absent history index gives an empty list.
    """
    filters: list[dict] = [{"term": {"watch_id": watch_id}}]
    if state:
        filters.append({"term": {"state": state}})
    response = es.options(ignore_status=404).search(
        index=index_pattern(prefix), size=size, query={"bool": {"filter": filters}},
        sort=[{"result.execution_time": {"order": "desc", "unmapped_type": "date"}}],
        ignore_unavailable=True, allow_no_indices=True)
    return [{"_id": hit["_id"], **hit["_source"]} for hit in response.get("hits", {}).get("hits", [])]
