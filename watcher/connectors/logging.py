"""Logging connector: a named logger and level for log lines (no network).

Configuration (connectors.yaml)::

    log:
      type: logging
      level: info                 # error|warn|info|debug|trace
      category: watcher.alerts    # the Python logger name

Watcher's logging action (watcher-semantics §1.7 logging): the default level is ``info``; ``category``
is the logger name. A logging action with ``connector: log`` takes these as its defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from watcher.connectors.webhook import StrictModel
from watcher.model.problems import Reader
from watcher.engine.delivery import LogMessage, Outcome

TYPE = "logging"
LEVELS = ("error", "warn", "info", "debug", "trace")
DEFAULT_CATEGORY = "watcher.actions.logging"


class Config(StrictModel):
    """A logging destination."""

    type: Literal["logging"]
    level: Literal["error", "warn", "info", "debug", "trace"] = "info"
    category: str = DEFAULT_CATEGORY


def parse(reader: Reader, body: Any, path) -> Config | None:
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
