"""The ``logging`` action: render ``text`` and log it.

Body ``{"text": <template>, "level"?: error|warn|info|debug|trace (default info), "category"?: <logger>,
"connector"?: <logging connector>}``. Result ``{"logging": {"logged_text": "<rendered>"}}``, the same
when simulated. Source: watcher-semantics §1.7 logging (explore-analyze/alerts-cases/watcher/
actions-logging.md; LoggingAction, ExecutableLoggingAction).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from watcher.connectors import logging as logging_connector
from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.engine.actions import check_keys, connector_for, parse_connector_name, parse_text, render as render_text
from watcher.engine.delivery import LogMessage, Outcome

TYPE = "logging"
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
        if isinstance(level, str) and level.lower() in logging_connector.LEVELS:
            level = level.lower()
        else:
            reader.expected((*path, "level"), f"one of {', '.join(logging_connector.LEVELS)}", level)
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
    return logging_connector.build_request(connector.config if connector else None,
                                           {"text": render_text(config.text, model), "level": config.level,
                                            "category": config.category})


def result(config: LoggingConfig, rendered: LogMessage, outcome: Outcome) -> dict:
    """``{"logging": {"logged_text": text}}`` — Watcher's result shape, the same when simulated."""
    return {"logging": {"logged_text": rendered.text}}
