"""Transform types: ``TYPE``, ``parse(reader, body, path)`` and ``execute(config, run, model)``.

``execute`` returns ``{"type", "status": "success", "payload": {...}, <type>?: {...}}`` and raises on
failure (the pipeline builds Watcher's failure result). ``model`` is ``run.model(payload)``: the
payload the transform works on is ``model["ctx"]["payload"]``. Source: docs/semantics.md#transforms.
"""

from watcher.engine.transforms import chain, script, search
from watcher.model.registry import Registry

REGISTRY = Registry("transform", [search, script, chain])
