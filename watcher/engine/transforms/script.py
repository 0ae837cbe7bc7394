"""The ``script`` transform: run a Painless script; a map result becomes the payload.

``{"script": "return [...]"}`` or ``{"script": {"source"|"id": ..., "lang"?: "painless", "params"?: {...}}}``.
A returned map becomes the payload; any other value becomes ``{"_value": value}``. Scripts run on
the connected cluster through :func:`watcher.es.painless.execute_script` (there is no Python
Painless), so the cluster needs lang-painless.

Sources: docs/semantics.md#script-transform;
x-pack/plugin/watcher/.../transform/script/ExecutableScriptTransform.java.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.es.painless import execute_script, parse_script
from watcher.model.problems import Reader

TYPE = "script"


def parse(reader: Reader, body: Any, path) -> dict | None:
    """A script string or ``{source|id, lang?, params?}``; see :func:`watcher.es.painless.parse_script`.

    Returns ``{"source"|"id": str, "params": {...}}``, or None when problems were recorded.
    """

    return parse_script(reader, body, path)


def execute(config: dict, run: Any, model: dict) -> dict:
    """Run the script with ``model`` (``ctx``) and wrap its result.

    Returns:
        ``{"type": "script", "status": "success", "payload": <map result, or {"_value": result}>}``.

    Raises:
        watcher.es.painless.PainlessError (script error), ScriptUnavailable (the cluster cannot run
        Painless, or no Elasticsearch client is configured).
    """

    value = execute_script(run.services.es, config, model)
    payload = dict(value) if isinstance(value, Mapping) else {"_value": value}
    return {"type": TYPE, "status": "success", "payload": payload}
