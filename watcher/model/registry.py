"""A registry per component kind: type name (as written in files) → the module implementing it.

Every type module has ``TYPE`` (its name) and ``parse(reader, body, path)`` returning its parsed
configuration (any value); problems go to the reader, and a parse that recorded problems yields no
component. Execution functions differ per kind and are
documented in each kind's package (``watcher.engine.conditions`` etc.). Adding a type = one module
plus one line in its kind's registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.model.watch import Component


class Registry:
    """Type modules of one kind (``input``, ``condition``, ``transform``, ``action``, ``schedule``)."""

    def __init__(self, kind: str, modules: Iterable[ModuleType]):
        self.kind = kind
        self._types: dict[str, ModuleType] = {}
        self._internal: dict[str, ModuleType] = {}  # INTERNAL = True: run, but never read from files
        for module in modules:
            if module.TYPE in self._types or module.TYPE in self._internal:
                raise ValueError(f"two {kind} types named {module.TYPE!r}")
            (self._internal if getattr(module, "INTERNAL", False) else self._types)[module.TYPE] = module

    def names(self) -> list[str]:
        """The type names files may use, in registry order (internal types are left out)."""
        return list(self._types)

    def get(self, name: str) -> ModuleType:
        """The module for ``name`` (internal types included). Raises KeyError for unknown types."""
        return self._types[name] if name in self._types else self._internal[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def parse(self, reader: Reader, value: Any, path: Sequence[str | int], *,
              ignore: Sequence[str] = ()) -> Component | None:
        """Parse ``{type: body}`` into a :class:`Component`; record problems on ``reader``.

        Args:
            reader: where problems go.
            value: the object holding exactly one type key (plus keys listed in ``ignore``).
            path: where ``value`` sits in the document.
            ignore: sibling keys that belong to the caller (e.g. an action's ``throttle_period``).

        Returns:
            The component, or None when there were problems.
        """

        mapping = reader.mapping(path, value, f"a {self.kind} object such as {{{self.names()[0]}: {{…}}}}")
        if mapping is None:
            return None
        keys = [k for k in mapping if k not in ignore]
        if len(keys) != 1:
            found = ", ".join(map(str, keys)) if keys else "none"
            reader.problem(path, f"expected exactly one {self.kind} type (one of: {', '.join(self.names())}), "
                                 f"found {len(keys)}: {found}")
            return None
        name = keys[0]
        if name not in self._types:
            reader.unknown_key(path, name, self.names(), what=f"{self.kind} type")
            return None
        before = len(reader.problems)
        config = self._types[name].parse(reader, mapping[name], (*path, name))
        if len(reader.problems) > before:
            return None
        return Component(type=name, config=config, body=plain(mapping[name]))
