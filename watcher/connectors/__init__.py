"""Connector types: one module per type, each with a config schema, a request builder and a
response interpreter (DESIGN.md "Where things live").

Every module has ``TYPE``, ``Config`` (a pydantic model, ``extra="forbid"``, with a ``type``
literal), ``parse(reader, body, path) -> Config | None``, ``build_request(config, fields)`` returning
a rendered request of :mod:`watcher.engine.delivery`, and ``interpret(response) -> Outcome``.
Optional: ``secrets(config) -> list[str]`` (what to mask; default: every ``Secret`` field's value).
Adding a connector type = one module + one line here (and an action type of the same name, see
:mod:`watcher.engine.actions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.connectors import index, logging, opsgenie, slack, webhook
from watcher.model.registry import Registry

REGISTRY = Registry("connector", [webhook, opsgenie, slack, logging, index])


def interpreter(connector_type: str) -> Callable[[Any], Any]:
    """``interpret`` of the connector type ``connector_type`` (KeyError if unknown)."""
    return REGISTRY.get(connector_type).interpret
