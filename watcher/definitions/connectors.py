"""connectors.yaml: named, reusable destinations with their secrets (Kibana's "connectors").

File shape::

    connectors:
      ops:                       # the name actions refer to (connector: ops)
        type: opsgenie           # webhook | opsgenie | slack | email | logging | index
        api_key: ${OPSGENIE_API_KEY}
      team-hook:
        type: webhook
        url: http://127.0.0.1:8000/alerts

Each type's schema lives in :mod:`watcher.destinations` (``<type>.Config``). Strings may reference
``${ENV_VAR}`` or ``${file:/path}`` (see :mod:`watcher.model.secrets`); problems, including
an undefined variable, are reported at ``file:line:column`` with the field path, and never show a
secret value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.destinations import CONNECTORS as REGISTRY
from watcher.model.connector import Connector, find_connector
from watcher.model.problems import DefinitionError, Reader, did_you_mean
from watcher.model.secrets import mask, resolve_secrets, secret_values
from watcher.model.source import Document, load_file, plain

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class _InvalidConnector:
    """Stands for a connector written in the connectors file that failed validation."""

    def __repr__(self) -> str:
        return "<invalid connector>"


INVALID_CONNECTOR = _InvalidConnector()


def load_connectors(document: Document, reader: Reader | None = None, *,
                    environ: Mapping[str, str] | None = None) -> dict[str, Connector]:
    """Load every connector of a connectors file.

    Args:
        document: the positioned file (``{connectors: {name: {type: …, …}}}``; an empty file or
            ``connectors: {}`` gives no connectors).
        reader: collects problems (a new one if None; check ``reader.problems``).
        environ: environment for ``${ENV}`` references (default ``os.environ``).

    Returns:
        ``{name: Connector}`` for the connectors without problems (a bad connector never hides the
        others).
    """

    reader = reader or Reader(document)
    data = document.data
    if data is None:
        return {}
    if reader.mapping((), data, "a mapping with the key 'connectors'") is None:
        return {}
    for key in data:
        if key != "connectors":
            reader.unknown_key((), str(key), ["connectors"])
    entries = data.get("connectors")
    if entries is None:
        return {}
    if reader.mapping(("connectors",), entries, "a mapping of connector name to connector") is None:
        return {}
    base_dir = Path(document.file).resolve().parent if document.file else None
    loaded: dict[str, Connector] = {}
    for name, body in entries.items():
        path = ("connectors", name)
        if not isinstance(name, str) or not NAME.fullmatch(name):
            reader.problem(path, f"expected a connector name of letters, digits, '_', '-', '.', found {name!r}")
            continue
        connector = _load_one(reader, name, body, path, REGISTRY, environ, base_dir, document.file)
        if connector is not None:
            loaded[name] = connector
    return loaded


def _load_one(reader: Reader, name: str, body: Any, path: tuple, registry, environ, base_dir, file) -> Connector | None:
    if reader.mapping(path, body, "a connector such as {type: webhook, url: …}") is None:
        return None
    kind = plain(body.get("type"))
    if kind is None:
        reader.problem(path, f"missing required field 'type' (one of: {', '.join(registry.names())})")
        return None
    if kind not in registry:
        reader.problem((*path, "type"), f"unknown connector type {kind!r}{did_you_mean(str(kind), registry.names())}; "
                                        f"expected one of: {', '.join(registry.names())}", at_value=True)
        return None
    before = len(reader.problems)
    resolved, substituted = resolve_secrets(plain(body), reader, path, environ=environ, base_dir=base_dir)
    if len(reader.problems) > before:
        return None
    module = registry.get(kind)
    config = module.parse_connector(reader, resolved, path)
    if len(reader.problems) > before:
        # a validation message may quote a substituted value: never show it
        reader.problems[before:] = [dataclasses.replace(p, message=mask(p.message, substituted))
                                    for p in reader.problems[before:]]
        return None
    own = module.secrets(config) if hasattr(module, "secrets") else secret_values(config)
    secrets = tuple(dict.fromkeys(s for s in (*own, *substituted) if s))
    return Connector(name=name, type=kind, config=config, secrets=secrets, file=file)


def load_connectors_file(path: str | Path, *, environ: Mapping[str, str] | None = None) -> dict[str, Connector]:
    """Read and load one connectors file.

    Raises:
        SourceError: the file is not valid YAML/JSON or cannot be read.
        DefinitionError: any problem in it (all problems listed).
    """
    document = load_file(path)
    reader = Reader(document)
    connectors = load_connectors(document, reader, environ=environ)
    reader.raise_if_problems()
    return connectors


def check_references(actions: Any, connectors: Mapping[str, Connector]) -> list[str]:
    """Messages for actions whose ``connector`` is unknown or of the wrong type (for ``validate``).

    Args:
        actions: ``watch.actions`` (model ``Action`` objects whose ``config`` may have a
            ``connector`` attribute).
    """
    messages = []
    for action in actions:
        name = getattr(action.config, "connector", None)
        if name is None:
            continue
        try:
            find_connector(connectors, name, action.type)
        except LookupError as error:
            messages.append(f"actions.{action.id}.{action.type}.connector: {error}")
    return messages


__all__ = ["Connector", "DefinitionError", "check_references", "find_connector", "load_connectors",
           "load_connectors_file"]
