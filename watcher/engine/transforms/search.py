"""The ``search`` transform: run a search; its response replaces the payload.

Same ``request``/``timeout`` shape as the search input, without ``extract``; default timeout 30 s
(docs/semantics.md#search-transform). The body is rendered with the model given (``ctx.payload`` = the payload
being transformed). Sources: docs/semantics.md#search-transform;
x-pack/plugin/watcher/.../transform/search/ExecutableSearchTransform.java.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watcher.engine.searching import SearchSpec, execute_search, parse_search
from watcher.model.problems import Reader

TYPE = "search"
DEFAULT_TIMEOUT = dt.timedelta(seconds=30)


def parse(reader: Reader, body: Any, path) -> SearchSpec | None:
    """``{"request": {...}, "timeout"?: "30s" | "timeout_in_millis"?: 30000}``."""
    return parse_search(reader, body, path, default_timeout=DEFAULT_TIMEOUT, allow_extract=False)


def execute(config: SearchSpec, run: Any, model: dict) -> dict:
    """Render the body with ``model`` and search.

    Returns:
        ``{"type": "search", "status": "success", "payload": <response>, "search": {"request": {...}}}``.

    Raises:
        as :func:`watcher.engine.inputs.search.execute`; a partial answer is kept for a watch (with a
        warning in the record), as for the input.
    """
    payload, search = execute_search(config, run, model, search="transform")
    return {"type": TYPE, "status": "success", "payload": payload, "search": search}
