"""The ``chain`` input: run named inputs in order; the payload is ``{name: payload, …}``.

``{"chain": {"inputs": [{"first": {"simple": {...}}}, {"second": {"search": {...}}}]}}`` — an ordered
list of single-key objects. Each link sees the payloads gathered so far as ``ctx.payload``
(``{{ctx.payload.first.x}}``). A link may also be ``{"name": {"transform": {<transform>}}}``
(Watcher's ``transform`` input), which reshapes the payload gathered so far.

As in Watcher's ``ExecutableChainInput`` (where every input catches its own failure), a failing
link does not fail the chain: its result is recorded with ``status: failure``, a ``reason`` and,
as Watcher's input results carry, an ``error`` (``{type, reason, caused_by?}``: the cluster's own
error when it refused), its entry in the chain's payload is ``{}``, and the following links still
run. ``watcher dry-run`` shows each link and the reason of a failed one.

Sources: docs/semantics.md#chain-input;
x-pack/plugin/watcher/.../input/chain/{ChainInput,ExecutableChainInput}.java,
.../input/transform/ExecutableTransformInput.java.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The packages, not their REGISTRY: this module is one of the types their registries list, so it is
# imported while they are still being set up; the registries are read at call time.
from watcher.engine import inputs as input_kinds
from watcher.engine import transforms
from watcher.engine.perform import error_json
from watcher.model.problems import Reader
from watcher.model.watch import Component

TYPE = "chain"
TRANSFORM_LINK = "transform"


@dataclasses.dataclass(frozen=True)
class Link:
    """One named input of the chain; ``transform`` is True for a ``transform`` link."""

    name: str
    component: Component
    transform: bool = False


def parse(reader: Reader, body: Any, path) -> tuple[Link, ...]:
    """``{"inputs": [{name: {type: body}}, …]}`` → the links in order (names must be unique)."""
    holder = reader.mapping(path, body, "a chain object such as {inputs: [{first: {simple: {...}}}]}")
    if holder is None:
        return ()
    for key in holder:
        if key != "inputs":
            reader.unknown_key(path, str(key), ["inputs"])
    inputs = holder.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        reader.expected((*path, "inputs"), "a non-empty list of {name: {input type: {...}}}", inputs)
        return ()
    links: list[Link] = []
    for index, item in enumerate(inputs):
        at = (*path, "inputs", index)
        if not isinstance(item, dict) or len(item) != 1:
            reader.expected(at, "an object with exactly one key, the input's name, such as {first: {simple: {}}}", item)
            continue
        name, value = next(iter(item.items()))
        if any(link.name == str(name) for link in links):
            reader.problem((*at, name), f"duplicate chain input name {name!r}")
            continue
        link = _parse_link(reader, str(name), value, (*at, name))
        if link is not None:
            links.append(link)
    return tuple(links)


def _parse_link(reader: Reader, name: str, value: Any, path) -> Link | None:
    if isinstance(value, dict) and list(value) == [TRANSFORM_LINK]:
        component = transforms.REGISTRY.parse(reader, value[TRANSFORM_LINK], (*path, TRANSFORM_LINK))
        return Link(name, component, transform=True) if component is not None else None
    component = input_kinds.REGISTRY.parse(reader, value, path)
    return Link(name, component) if component is not None else None


def execute(config: tuple[Link, ...], run: Any) -> dict:
    """Run the links in order.

    ``run.payload`` is set to the gathered payloads while each link runs (that is what the link's
    ``ctx.payload`` shows) and restored afterwards; the pipeline stores the chain's payload.

    Returns:
        ``{"type": "chain", "status": "success", "payload": {name: payload},
        "chain": {name: <link result>}}``; a failed link's result is ``{"type", "status": "failure",
        "reason": "<ExceptionClass>: <message>", "error": {"type", "reason", "caused_by"?}}``.
    """

    gathered: dict[str, Any] = {}
    results: dict[str, dict] = {}
    saved = run.payload
    try:
        for link in config:
            run.payload = dict(gathered)
            try:
                if link.transform:
                    outcome = transforms.REGISTRY.get(link.component.type).execute(link.component.config, run, run.model())
                    result = {"type": TRANSFORM_LINK, "status": "success", "payload": outcome["payload"]}
                else:
                    result = input_kinds.REGISTRY.get(link.component.type).execute(link.component.config, run)
            except Exception as error:  # Watcher: a failing link is recorded, the chain goes on
                result = {"type": TRANSFORM_LINK if link.transform else link.component.type,
                          "status": "failure", "reason": f"{type(error).__name__}: {error}",
                          "error": error_json(error)}
            results[link.name] = result
            gathered[link.name] = result.get("payload", {})
    finally:
        run.payload = saved
    return {"type": TYPE, "status": "success", "payload": gathered, "chain": results}
