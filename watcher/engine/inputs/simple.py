"""The ``simple`` input: ``{"simple": {<object>}}``; the object *is* the payload
(docs/semantics.md#simple-and-none-inputs)."""

from __future__ import annotations

import copy
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain

TYPE = "simple"


def parse(reader: Reader, body: Any, path) -> dict:
    """Returns the object as plain JSON; anything but a mapping is a problem."""
    if reader.mapping(path, body, "an object whose keys become the payload, such as {name: value}") is None:
        return {}
    return plain(body)


def execute(config: dict, run: Any) -> dict:
    """``{"type": "simple", "status": "success", "payload": <a copy of the object>}``."""
    # a copy: later steps (scripts, foreach) must not change the watch definition
    return {"type": TYPE, "status": "success", "payload": copy.deepcopy(config)}
