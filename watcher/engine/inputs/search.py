"""The ``search`` input: run one search on the cluster; the response becomes the payload.

Body shape, defaults (timeout 1m, ``rest_total_hits_as_int`` true, lenient indices options) and the
result shape are Watcher's (docs/semantics.md#search-input and #hit-totals); the shared request
logic lives in :mod:`watcher.engine.searching`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watcher.engine.searching import SearchSpec, execute_search, parse_search
from watcher.model.problems import Reader

TYPE = "search"
DEFAULT_TIMEOUT = dt.timedelta(minutes=1)


def parse(reader: Reader, body: Any, path) -> SearchSpec | None:
    """``{"request": {...}, "extract"?: [...], "timeout"?: "1m" | "timeout_in_millis"?: 60000}``."""
    return parse_search(reader, body, path, default_timeout=DEFAULT_TIMEOUT, allow_extract=True)


def execute(config: SearchSpec, run: Any) -> dict:
    """Render the body with ``run.model()`` (JSON-escaping Mustache) and search.

    Returns:
        ``{"type": "search", "status": "success", "payload": <response or extract>,
        "search": {"request": {"search_type", "indices", "rest_total_hits_as_int", "body"}}}``.

    A partial answer (some shards failed) is kept for a Watcher watch, as Watcher keeps it (the
    payload's ``_shards`` says so and the condition decides), with a ``partial_results`` warning in
    the record; a rule's input fails on it unless the rule has ``allow_partial_results: true``.

    Raises:
        elasticsearch exceptions (bad query, timeout…), ValueError (rendered body not JSON),
        LookupError (stored template missing), RuntimeError (no Elasticsearch client),
        watcher.es.shards.PartialResultsError (a rule's partial answer).
    """
    payload, search = execute_search(config, run, run.model())
    return {"type": TYPE, "status": "success", "payload": payload, "search": search}
