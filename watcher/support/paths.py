"""Dot paths into JSON-like data, as Watcher's ``ObjectPath.eval`` resolves them.

Used by compare/array_compare (``ctx.payload.hits.total``), foreach and ``{{ctx.path}}`` values.
A missing value is simply ``None``; there is no separate "missing" marker, as in Watcher, where a
missing segment and an explicit JSON null both evaluate to null.

Source: docs/semantics.md#compare-condition and docs/semantics.md#array-compare-condition;
x-pack/plugin/core/.../watcher/support/xcontent/ObjectPath.java.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["resolve_path", "split_path"]

_INDEX_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)


def split_path(path: str) -> list[str]:
    """Split a dot path into segments the way Java's ``String.split("\\\\.")`` does.

    ``"a.b.0"`` → ``["a", "b", "0"]``; ``""`` → ``[]``; trailing empty segments are dropped
    (``"a.b."`` → ``["a", "b"]``) but inner ones are kept (``"a..b"`` → ``["a", "", "b"]``).
    """
    if not path:
        return []
    parts = path.split(".")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def resolve_path(root: Any, path: str) -> Any:
    """Return the value at dot path ``path`` inside ``root``, or ``None`` if any segment is missing.

    * ``path`` ``""`` returns ``root`` itself.
    * On a mapping, a segment is a key (looked up as the string it is: ``"0"`` on a mapping is the
      key ``"0"``).
    * On a list or tuple, a segment must be a decimal index (``"0"``, ``"12"``); a non-numeric
      segment, a negative index or one past the end gives ``None`` (Python's ``[-1]`` is *not* the
      last element).
    * On anything else (a string, a number, ``None``…) any further segment gives ``None``.

    Never raises for a missing value. Keys that themselves contain dots (``{"host.name": ...}``)
    cannot be addressed: ``"host.name"`` always means key ``host`` then key ``name`` — Watcher's
    behaviour, documented in docs/semantics.md#array-compare-condition.

    Compare paths are evaluated against ``{"ctx": {...}}``, so they start with ``ctx.``.
    Source: ObjectPath.eval (x-pack core).
    """
    current = root
    for part in split_path(path):
        if current is None:
            return None
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, (list, tuple)):
            if not _INDEX_RE.fullmatch(part):
                return None
            index = int(part)
            if not 0 <= index < len(current):
                return None
            current = current[index]
        else:
            return None
    return current
