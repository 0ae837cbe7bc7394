"""``blacklist``: documents whose ``compare_key`` is one of the listed values (ElastAlert2 docs,
Rule Types: Blacklist).

The list may name files (``!file PATH``, one value per line, PATH relative to the rule file's
folder), read once when the rule is loaded. The cluster filters with a ``terms`` query and counts
per group key (``group_by`` is supported; documents without it form ``_missing``). Shared logic:
:mod:`watcher.engine.ruletypes.value_lists`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from watcher.engine.ruletypes import value_lists
from watcher.engine.ruletypes.base import Evaluation, Match

TYPE = "blacklist"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ count }} document{{ 's' if count != 1 }} with a blacklisted "
                 "{{ details.compare_key }}{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ count }} document{{ 's' if count != 1 }} in {{ rule.index | join(', ') }} between {{ window.start }} and "
                   "{{ window.end }} {{ 'has' if count == 1 else 'have' }} a blacklisted {{ details.compare_key }}: "
                   "{{ details.offending_values | map(attribute='value') | join(', ') }}"
                   "{% if group is not none %} (group {{ group }}){% endif %}.")


class Params(value_lists.ListParams):
    """``compare_key``: the field checked; ``blacklist``: the values that fire (``!file PATH`` items
    load one value per line)."""

    blacklist: Annotated[Any, BeforeValidator(value_lists.validate_items),
                             WithJsonSchema(value_lists.LIST_SCHEMA)] = Field(
        description="Values that fire; an item '!file PATH' loads one value per line (PATH relative to the "
                    "rule file; blank lines and # comments skipped).")


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """Read the list files (problems at the item's position)."""
    return value_lists.check_list(spec, params)


def evaluate(ev: Evaluation) -> list[Match]:
    """Documents whose ``compare_key`` is listed, per group key (see
    :func:`watcher.engine.ruletypes.value_lists.evaluate_list`)."""
    return value_lists.evaluate_list(ev, listed=True, ignore_null=True)
