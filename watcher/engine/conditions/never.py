"""``never``: the condition that is never met (the watch runs its input, then stops).

Definition ``{"never": {}}``; result ``{"type": "never", "status": "success", "met": false}``.
Source: docs/semantics.md#always-and-never-conditions.
"""

from __future__ import annotations

from typing import Any

from watcher.engine.conditions.always import expect_empty
from watcher.model.problems import Reader

TYPE = "never"


def parse(reader: Reader, body: Any, path) -> None:
    """Accept only an empty mapping ``{}`` (as Watcher does)."""
    expect_empty(reader, body, path)


def execute(config: Any, run: Any, model: dict) -> dict:
    """Not met, ever."""
    return {"type": TYPE, "status": "success", "met": False}
