"""Logging connector: a named logger and level for log lines (no network).

Configuration (connectors.yaml)::

    log:
      type: logging
      level: info                 # error|warn|info|debug|trace
      category: watcher.alerts    # the Python logger name

Watcher's logging action (docs/semantics.md#logging-action): the default level is ``info``; ``category``
is the logger name. A logging action with ``connector: log`` takes these as its defaults.

The action (a watch's ``logging`` action, or a rule action naming a logging connector):

The ``logging`` action: render ``text`` and log it.

Body ``{"text": <template>, "level"?: error|warn|info|debug|trace (default info), "category"?: <logger>,
"connector"?: <logging connector>}``. Result ``{"logging": {"logged_text": "<rendered>"}}``, the same
when simulated. Source: docs/semantics.md#logging-action (LoggingAction, ExecutableLoggingAction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from watcher.destinations.common import check_keys, connector_for, parse_connector_name, parse_text
from watcher.destinations.common import render as render_text
from watcher.destinations.webhook import StrictModel
from watcher.model.problems import Reader
from watcher.model.requests import LogMessage, Outcome
from watcher.model.schema_parts import CONNECTOR_REF, TEMPLATE
from watcher.model.source import plain

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "logging"
DELIVERS = False
"""A log line stays with the process that runs the watch: it alerts nobody (``delivers``)."""
ACTION_SCHEMA = {"type": "object", "properties": {
    "text": TEMPLATE, "level": {"enum": ["error", "warn", "info", "debug", "trace"], "default": "info"},
    "category": {"type": "string"}, **CONNECTOR_REF}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""
LEVELS = ("error", "warn", "info", "debug", "trace")
DEFAULT_CATEGORY = "watcher.actions.logging"


class Config(StrictModel):
    """A logging destination."""

    type: Literal["logging"]
    level: Literal["error", "warn", "info", "debug", "trace"] = "info"
    category: str = DEFAULT_CATEGORY


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: logging`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config | None, fields: Mapping[str, Any]) -> LogMessage:
    """A :class:`LogMessage` of ``fields["text"]``; ``level``/``category`` in ``fields`` override the
    connector's (``config`` None = Watcher's defaults: info, :data:`DEFAULT_CATEGORY`)."""
    level = fields.get("level") or (config.level if config else "info")
    category = fields.get("category") or (config.category if config else DEFAULT_CATEGORY)
    return LogMessage(level=level, category=category, text=str(fields.get("text", "")), connector_type=TYPE)


def interpret(response: Any = None) -> Outcome:
    """Logging cannot fail once the line is handed to the logger: always ``success``."""
    return Outcome("success")


# ---- the action --------------------------------------------------------------------------------

KEYS = ("text", "level", "category", "connector")


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """``level``/``category`` None = the connector's, else Watcher's defaults (info)."""

    text: Any
    level: str | None = None
    category: str | None = None
    connector: str | None = None


def parse(reader: Reader, body: Any, path) -> LoggingConfig | None:
    """Validate a Watcher ``logging`` action body (``text`` required, ``level``, ``category``); problems go to ``reader``."""
    holder = check_keys(reader, body, path, KEYS, "a logging action such as {text: 'found {{ctx.payload.hits.total}} hits'}")
    if holder is None:
        return None
    before = len(reader.problems)
    if "text" not in holder:
        reader.problem(path, "missing required field 'text'")
    text = parse_text(reader, holder["text"], (*path, "text")) if "text" in holder else None
    level = plain(holder.get("level"))
    if level is not None:
        if isinstance(level, str) and level.lower() in LEVELS:
            level = level.lower()
        else:
            reader.expected((*path, "level"), f"one of {', '.join(LEVELS)}", level)
    category = plain(holder.get("category"))
    if category is not None and (not isinstance(category, str) or not category):
        reader.expected((*path, "category"), "a logger name", category)
    connector = parse_connector_name(reader, holder, path)
    if len(reader.problems) > before:
        return None
    return LoggingConfig(text=text, level=level, category=category, connector=connector)


def render(config: LoggingConfig, run: Any, model: dict) -> LogMessage:
    """The rendered line. Raises LookupError for an unknown connector, template errors as they come."""
    connector = connector_for(run, config.connector, TYPE)
    return build_request(connector.config if connector else None,
                         {"text": render_text(config.text, model), "level": config.level, "category": config.category})


def result(config: LoggingConfig, rendered: LogMessage, outcome: Outcome) -> dict:
    """``{"logging": {"logged_text": text}}`` — Watcher's result shape, the same when simulated."""
    return {"logging": {"logged_text": rendered.text}}


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_TEXT = "{{ title }}: {{ message }}"
"""What a rule's logging action logs when the rule gives no ``text`` (Jinja2)."""


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's body when the rule overrides nothing: the rendered title and message."""
    return {"text": DEFAULT_RULE_TEXT}


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    return {k: v for k, v in action.items() if not (k == "text" and v == DEFAULT_RULE_TEXT)}
