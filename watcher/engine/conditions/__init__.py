"""Condition types (docs/semantics.md#conditions): ``always``, ``never``, ``compare``, ``array_compare``,
``script``. Each module has ``TYPE``, ``parse(reader, body, path) -> config`` and
``execute(config, run, model) -> dict`` returning Watcher's condition result
``{"type", "status": "success", "met": bool, <type>: {...}?}``; exceptions propagate (the pipeline
turns them into a failed record, as Watcher does for a condition that throws).
"""

from __future__ import annotations

from typing import Any

from watcher.engine.conditions import always, array_compare, compare, never, script
from watcher.model.registry import Registry
from watcher.model.watch import Component

REGISTRY = Registry("condition", [always, never, compare, array_compare, script])


def evaluate(component: Component, run: Any, model: dict) -> dict:
    """Execute a parsed condition: ``REGISTRY.get(component.type).execute(component.config, run, model)``.

    Args:
        component: the watch's (or an action's) condition.
        run: the :class:`watcher.engine.context.Run`.
        model: ``run.model()`` = ``{"ctx": {...}}``.

    Returns:
        The condition result JSON (``met`` says whether the condition holds).

    Raises:
        KeyError: unknown condition type (cannot happen for parsed watches); whatever the type raises.
    """
    return REGISTRY.get(component.type).execute(component.config, run, model)
