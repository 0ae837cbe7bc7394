"""``always``: the condition that is always met (Watcher's default when a watch has no condition).

Definition ``{"always": {}}``; result ``{"type": "always", "status": "success", "met": true}``.
Source: docs/semantics.md#always-and-never-conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.model.problems import Reader

TYPE = "always"


def parse(reader: Reader, body: Any, path) -> None:
    """Accept only an empty mapping ``{}`` (as Watcher does)."""
    expect_empty(reader, body, path)


def execute(config: Any, run: Any, model: dict) -> dict:
    """Met, always."""
    return {"type": TYPE, "status": "success", "met": True}


def expect_empty(reader: Reader, body: Any, path) -> None:
    """Record a problem unless ``body`` is an empty mapping (shared by ``always`` and ``never``)."""
    if not isinstance(body, Mapping) or body:
        reader.expected(path, "an empty mapping {}", body)
