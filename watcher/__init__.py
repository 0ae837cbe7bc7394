"""watcher: an open-source alert rule engine for Elasticsearch.

Runs rules written in YAML and Elastic Watcher watch definitions unchanged: a schedule triggers an
input (a search of the cluster), a condition decides, transforms reshape the payload, and actions
deliver through connectors (webhook, OpsGenie, Slack, index, logging).

The public Python API is :mod:`watcher.api`, whose names are available here too
(``watcher.load``, ``watcher.execute``, ``watcher.backtest``, ``watcher.status``, ``watcher.history``…).
"""

from __future__ import annotations

from typing import Any

from watcher.version import __version__

_API = ("ActionMode", "FieldNote", "FieldWarning", "LoadResult", "Watch", "WatchState", "backtest", "check_fields",
        "connect", "execute", "history", "load", "record", "save_status", "saved_state", "schedule_times", "status",
        "template_warnings")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """``watcher.<name>`` for the names of :mod:`watcher.api`, loaded on first use."""
    if name in _API:
        from watcher import api  # deferred: start-up (importing any watcher module must not load the engine)

        return getattr(api, name)
    raise AttributeError(f"module 'watcher' has no attribute {name!r}")
