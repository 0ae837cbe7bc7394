"""Input types: each module has ``TYPE``, ``parse(reader, body, path)`` and ``execute(config, run)``.

``execute`` returns ``{"type", "status": "success", "payload": {...}, <type>?: {...}}`` and raises on
failure (the pipeline turns the exception into Watcher's failed input result). Source:
docs/semantics.md#inputs.
"""

from watcher.engine.inputs import chain, http, none, rule, search, simple
from watcher.model.registry import Registry

REGISTRY = Registry("input", [none, simple, search, http, chain, rule])
