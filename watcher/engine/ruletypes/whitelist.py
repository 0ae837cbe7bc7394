"""``whitelist``: documents whose ``compare_key`` is not one of the listed values (ElastAlert2
docs, Rule Types: Whitelist).

The list may name files (``!file PATH``, one value per line, PATH relative to the rule file's
folder), read once when the rule is loaded. The cluster finds the window's values outside the list
(a ``terms`` aggregation with ``exclude``), then counts the documents holding one of them (and, with
``ignore_null: false``, those without the field) per group key (``group_by`` is supported; documents
without it form ``_missing``). An array-valued field fires when any of its values is not listed
(docs/correctness.md#whitelists-and-blacklists-with-arrays). Shared logic:
:mod:`watcher.engine.ruletypes.value_lists`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from watcher.engine.ruletypes import value_lists
from watcher.engine.ruletypes.base import Evaluation, Match

TYPE = "whitelist"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ count }} document{{ 's' if count != 1 }} with a "
                 "{{ details.compare_key }} not in the whitelist{% if group is not none %} for {{ group }}{% endif %}")
# details.missing_field exists only with ignore_null: false (templates use StrictUndefined).
DEFAULT_MESSAGE = ("{{ count }} document{{ 's' if count != 1 }} in {{ rule.index | join(', ') }} between {{ window.start }} and "
                   "{{ window.end }} "
                   "{% if details.offending_values %}{{ 'has' if count == 1 else 'have' }} a {{ details.compare_key }} "
                   "not in the whitelist: {{ details.offending_values | map(attribute='value') | join(', ') }}"
                   "{% if details.missing_field is defined and details.missing_field %} "
                   "({{ details.missing_field }} without the field){% endif %}"
                   "{% else %}{{ 'lacks' if count == 1 else 'lack' }} {{ details.compare_key }}{% endif %}"
                   "{% if group is not none %} (group {{ group }}){% endif %}.")


class Params(value_lists.ListParams):
    """``compare_key``: the field checked; ``whitelist``: the allowed values (``!file PATH`` items
    load one value per line); ``ignore_null``: documents without the field are not matches."""

    whitelist: Annotated[Any, BeforeValidator(value_lists.validate_items),
                             WithJsonSchema(value_lists.LIST_SCHEMA)] = Field(
        description="Allowed values; an item '!file PATH' loads one value per line (PATH relative to the "
                    "rule file; blank lines and # comments skipped).")
    ignore_null: bool = Field(True, description="Documents without compare_key are not matches (default true).")


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """Read the list files (problems at the item's position)."""
    return value_lists.check_list(spec, params)


def evaluate(ev: Evaluation) -> list[Match]:
    """Documents whose ``compare_key`` is not listed (nor missing, with ``ignore_null``), per group
    key (see :func:`watcher.engine.ruletypes.value_lists.evaluate_list`)."""
    return value_lists.evaluate_list(ev, listed=False, ignore_null=ev.params.ignore_null)
