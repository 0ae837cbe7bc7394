"""The ``chain`` transform: a list of transforms, each working on the previous one's payload.

``{"chain": [{"search": {...}}, {"script": "..."}]}``. The first step sees the payload given to the
chain; step *n* sees step *n-1*'s output as ``ctx.payload``; the last output is the payload. A
failing step fails the chain (Watcher: "failed to execute sub-transform").

Sources: docs/semantics.md#chain-transform;
x-pack/plugin/watcher/.../transform/chain/ExecutableChainTransform.java.
"""

from __future__ import annotations

from typing import Any

# The package, not its REGISTRY: this module is one of the types the registry lists, so it is
# imported while the package is still being set up; the registry is read at call time.
from watcher.engine import transforms
from watcher.errors import WatcherError
from watcher.model.problems import Reader
from watcher.model.watch import Component

TYPE = "chain"


class ChainTransformError(WatcherError, RuntimeError):
    """A step of a chain transform failed; ``results`` holds the results of the steps that ran
    before it, ``__cause__`` the step's own exception."""

    def __init__(self, message: str, results: list[dict]):
        super().__init__(message)
        self.results = results


def parse(reader: Reader, body: Any, path) -> tuple[Component, ...]:
    """A non-empty list of transform objects (``[{search: {...}}, {script: ...}]``)."""

    if not isinstance(body, list) or not body:
        reader.expected(path, "a non-empty list of transforms such as [{search: {...}}, {script: '...'}]", body)
        return ()
    steps = []
    for index, item in enumerate(body):
        component = transforms.REGISTRY.parse(reader, item, (*path, index))
        if component is not None:
            steps.append(component)
    return tuple(steps)


def execute(config: tuple[Component, ...], run: Any, model: dict) -> dict:
    """Run the steps in order.

    Returns:
        ``{"type": "chain", "status": "success", "payload": <last payload>, "chain": [<step results>]}``.

    Raises:
        ChainTransformError: a step raised (message names the step's type and position).
    """

    results: list[dict] = []
    payload = model["ctx"]["payload"]
    for index, step in enumerate(config):
        try:
            result = transforms.REGISTRY.get(step.type).execute(step.config, run, run.model(payload))
        except Exception as error:
            raise ChainTransformError(f"failed to execute sub-transform [{step.type}] (step {index} of the chain): "
                                      f"{error}", results) from error
        results.append(result)
        payload = result["payload"]
    return {"type": TYPE, "status": "success", "payload": payload, "chain": results}
