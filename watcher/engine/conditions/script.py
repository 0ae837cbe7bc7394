"""``script``: a Painless script decides, run on the connected cluster.

Definition (docs/semantics.md#script-condition)::

    {"script": "return ctx.payload.hits.total > 5"}
    {"script": {"source": "return ctx.payload.hits.total > params.threshold", "lang": "painless",
                "params": {"threshold": 5}}}
    {"script": {"id": "my_stored_condition", "params": {"threshold": 5}}}

The script sees ``ctx`` and ``params`` and must return a boolean. Result
``{"type": "script", "status": "success", "met": true}``. How the script reaches the cluster, and
what differs from Watcher (datetimes in ``ctx`` are ISO strings here), is in :mod:`watcher.es.painless`.
"""

from __future__ import annotations

from typing import Any

from watcher.es.painless import PainlessError, execute_script, parse_script
from watcher.model.problems import Reader

TYPE = "script"


def parse(reader: Reader, body: Any, path) -> dict | None:
    """Watcher's script object (a source string, or ``{source|id, lang, params}``): see
    :func:`watcher.es.painless.parse_script`."""
    return parse_script(reader, body, path)


def execute(config: dict, run: Any, model: dict) -> dict:
    """Run the script on ``run.services.es`` with ``model['ctx']``.

    Raises:
        watcher.es.painless.ScriptUnavailable: no cluster, or one without Painless.
        watcher.es.painless.PainlessError: the script failed, or returned something other than a
            boolean (Watcher: "condition [script] must return a boolean value").
    """
    text = execute_script(run.services.es, config, model, json_result=False)
    if text not in ("true", "false"):
        raise PainlessError(f"condition [script] must return a boolean value (true|false) but instead "
                            f"returned [{text}]")
    return {"type": TYPE, "status": "success", "met": text == "true"}
