"""The ``none`` input: ``{"none": {}}`` → an empty payload (docs/semantics.md#simple-and-none-inputs)."""

from __future__ import annotations

from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain

TYPE = "none"


def parse(reader: Reader, body: Any, path) -> None:
    """Accept only an empty object (``{}``; ``null`` is tolerated)."""
    body = plain(body)
    if body not in (None, {}):
        reader.expected(path, "an empty object {}", body)
    return None


def execute(config: None, run: Any) -> dict:
    """``{"type": "none", "status": "success", "payload": {}}``."""
    return {"type": TYPE, "status": "success", "payload": {}}
