"""Dot paths into JSON-like data: Watcher's ``ObjectPath.eval`` and ElastAlert2's field lookup.

Two lookups share one rule for keys that themselves contain dots (``{"host.name": "a"}``, or
``{"output_fields": {"container.image.repository": "x"}}``), written down once in
docs/correctness.md#dotted-keys-inside-documents:

* :func:`find_field` / :func:`field_value` — a field of a document, as ElastAlert2's
  ``lookup_es_key`` finds it: the whole path as one literal key first, then the nested path, and
  keys of any number of dotted segments mixed with nesting at every level. Rule types, group keys,
  summary tables and rule templates use it.
* :func:`resolve_path` — Watcher's dot path (compare/array_compare ``ctx.payload.hits.total``,
  foreach, ``{{ctx.path}}`` values): the nested walk Watcher does, and only when that finds nothing,
  :func:`find_field`. A path Watcher resolves keeps Watcher's value.

A missing value is simply ``None`` for :func:`resolve_path` and :func:`field_value`; there is no
separate "missing" marker, as in Watcher, where a missing segment and an explicit JSON null both
evaluate to null. :func:`find_field` tells the two apart.

Source: docs/semantics.md#compare-condition and docs/semantics.md#array-compare-condition;
x-pack/plugin/core/.../watcher/support/xcontent/ObjectPath.java; ElastAlert2's
``elastalert/util.py`` (``lookup_es_key``, ``_find_es_dict_by_key``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dotted_child", "field_value", "find_field", "resolve_path", "split_path"]

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

    Never raises for a missing value. When this walk (Watcher's) gives ``None``, keys that
    themselves contain dots are tried with :func:`find_field` (``ctx.payload.host.name`` finds
    ``{"host.name": "a"}``); Watcher cannot address them (docs/semantics.md#array-compare-condition
    says where we differ). A document holding both spellings keeps Watcher's answer, the nested one.

    Compare paths are evaluated against ``{"ctx": {...}}``, so they start with ``ctx.``.
    Source: ObjectPath.eval (x-pack core).
    """
    value = _walk(root, path)
    if value is None and path:
        found, other = find_field(root, path)
        if found:
            return other
    return value


def _walk(root: Any, path: str) -> Any:
    """Watcher's ObjectPath walk: one key (or list index) per segment."""
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


def _index(node: list | tuple, part: str) -> tuple[bool, Any]:
    if not _INDEX_RE.fullmatch(part):
        return False, None
    index = int(part)
    if not 0 <= index < len(node):
        return False, None
    return True, node[index]


def find_field(document: Any, path: str) -> tuple[bool, Any]:
    """``(found, value)`` for the field ``path`` of ``document``, keys with dots included.

    The lookup order (docs/correctness.md#dotted-keys-inside-documents), at every level, with what
    is left of the path: the rest of the path as one literal key (``"a.b.c"``), then the longest
    leading part that is a key (``"a.b"``, then ``"a"``) with the remainder looked up the same way
    inside its value; when the remainder is not found there, the next shorter part is tried. On a
    list a segment is a decimal index (``"hits.0._id"``). So ``"output_fields.container.image.
    repository"`` finds ``{"output_fields": {"container.image.repository": "x"}}``, and
    ``"host.name"`` finds ``{"host.name": "a"}`` before ``{"host": {"name": "b"}}``.

    This is ElastAlert2's ``lookup_es_key`` (the whole path as a literal key, then the nested path,
    dotted keys and nesting mixed), except that ElastAlert2 tries the *shortest* key first below
    the top level and does not go back: the two differ only for a document that spells one field
    both ways below its top level, and where ElastAlert2 finds nothing, this may. ``path`` ``""``
    is the document itself. Never raises; an explicit ``null`` is ``(True, None)``.
    """
    parts = split_path(path)
    failed: set[tuple[int, int]] = set()  # (id(node), position) already known to lead nowhere

    def search(node: Any, start: int) -> tuple[bool, Any]:
        if start == len(parts):
            return True, node
        if (id(node), start) in failed:
            return False, None
        if isinstance(node, Mapping):
            for end in range(len(parts), start, -1):
                key = ".".join(parts[start:end])
                if key in node:
                    found, value = search(node[key], end)
                    if found:
                        return True, value
        elif isinstance(node, (list, tuple)):
            ok, item = _index(node, parts[start])
            if ok:
                found, value = search(item, start + 1)
                if found:
                    return True, value
        failed.add((id(node), start))
        return False, None

    return search(document, 0)


def field_value(document: Any, path: str, default: Any = None) -> Any:
    """The value of field ``path`` in ``document`` (:func:`find_field`'s order), else ``default``.

    ``field_value({"output_fields": {"container.image.repository": "x"}},
    "output_fields.container.image.repository")`` → ``"x"``. An explicit ``null`` gives ``None``.
    """
    found, value = find_field(document, path)
    return value if found else default


def dotted_child(node: Mapping, key: str) -> tuple[bool, Any]:
    """``(found, value)`` for one step ``node.key`` of a template, dotted keys seen as nested.

    For a template that walks a document one attribute at a time (``hit.output_fields.container
    .image.repository``), the same answers as :func:`find_field` on the whole path:

    * ``key`` is a key of ``node`` and no key of ``node`` starts with ``key + "."``: its value;
    * ``key`` holds a mapping and dotted keys extend it (``{"a": {"x": 1}, "a.b": 2}``): a new
      mapping of both, the dotted ones winning (``{"x": 1, "b": 2}``), merged the same way where
      both sides hold mappings;
    * only dotted keys extend it (``{"container.image.repository": "x"}`` and ``key`` ``container``):
      a new mapping of those keys with ``key + "."`` cut off (``{"image.repository": "x"}``);
    * ``key`` contains dots itself (``node["a.b"]`` written in a template): :func:`find_field`;
    * otherwise ``(False, None)``.
    """
    if key in node:
        value = node[key]
        if not isinstance(value, Mapping):
            return True, value
        extended = _extending(node, key)
        return True, (_overlay(value, extended) if extended else value)
    if "." in key:
        found, value = find_field(node, key)
        if found:
            return True, value
    extended = _extending(node, key)
    if extended:
        return True, extended
    return False, None


def _extending(node: Mapping, key: str) -> dict:
    """The keys of ``node`` that start with ``key + "."``, that prefix cut off."""
    prefix = key + "."
    return {name[len(prefix):]: value for name, value in node.items()
            if isinstance(name, str) and name.startswith(prefix)}


def _overlay(nested: Mapping, dotted: Mapping) -> dict:
    """``nested`` with ``dotted``'s entries on top; where both hold mappings, merged likewise."""
    out = dict(nested)
    for key, value in dotted.items():
        below = out.get(key)
        out[key] = _overlay(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
    return out
