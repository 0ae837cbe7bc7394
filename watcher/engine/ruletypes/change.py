"""``change``: a group key's ``compare_key`` value differs from the last value seen for that key
(ElastAlert2 docs, Rule Types: Change; ``group_by`` is ElastAlert2's ``query_key``).

The cluster returns, per group key, the window's documents in time order (terms on ``group_by`` →
``top_hits`` ascending by the time field, at most :data:`WALKED` documents, ``_source`` limited to
the compare keys), plus the key's newest document. Python walks that short sequence from the last
value kept in the rule's state. When a key has more than :data:`WALKED` documents in the window,
the changes among the first :data:`WALKED` are itemised and the newest document is compared with
the last walked one, so the state still ends on the key's true last value (changes in between are
not itemised).

State (``ev.state``): ``{group key: {"value": JSON value, "time": ISO}}``, per rule — ElastAlert2
keeps it in class-level dicts shared by every change rule (docs/semantics.md#shared-change-state). With
``timeframe``, a change counts only if the previous value was seen at most ``timeframe`` before (ElastAlert2's
``<=``), and entries older than ``timeframe`` are forgotten.

Overlapping windows (``window`` longer than the schedule interval): a document not newer than the
kept value's time, for its key, was already walked by an earlier run and is skipped, so a change is
reported once. Ties: documents in the same millisecond as the kept time are skipped too — a
window is ``[start, end)`` with millisecond times, so every document of that millisecond was in the
run that kept it (a document indexed later with an older timestamp is not seen; use ``delay`` for
late data). Within one run, documents of the same millisecond are walked in the cluster's order.

Values: one field compares its value as is (an array is compared as a list, never hashed); a
list of fields compares the list of their values. Values are compared in the form a ``keyword``
field indexes them, so JSON values of different types that Elasticsearch indexes as the same term
are equal: ``1`` and ``"1"``, ``true`` and ``"true"`` (``1.0`` is ``"1.0"``, not ``"1"``). Details
keep the documents' values as written (JSON). With ``ignore_null`` (default) documents lacking
any compare key are skipped (the cluster filters them with ``exists``); ElastAlert2 also skips
falsy values (0, "", false), we do not.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import (MAX_SAMPLE, Evaluation, Match, field_value, group_buckets, iso, sample_of,
                                           state_key)
from watcher.model.fields import Duration
from watcher.model.problems import describe

TYPE = "change"
WALKED = MAX_SAMPLE  # top_hits size bound (index.max_inner_result_window default)
SEQUENCE = "sequence"
NEWEST = "newest"
UTC = dt.timezone.utc
FIELD_NAME = {"type": "string", "minLength": 1}
FIELDS_SCHEMA = {"anyOf": [FIELD_NAME, {"type": "array", "minItems": 1, "items": FIELD_NAME}]}

# Values print as JSON text (true, null, ["a", "b"]), never Python's (True, None, ['a', 'b']);
# a string prints without quotes.
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ details.compare_key | join(', ') }} changed for {{ group }}")
DEFAULT_MESSAGE = ("{{ details.compare_key | join(', ') }} changed {{ count }} time{{ 's' if count != 1 }} for "
                   "{{ group }} in {{ rule.index | join(', ') }} between {{ window.start }} and {{ window.end }}: "
                   "{{ details.old_value if details.old_value is string else details.old_value | tojson }} → "
                   "{{ details.new_value if details.new_value is string else details.new_value | tojson }}.")


class Params(base.Params):
    """``compare_key``: a field, or a list of fields whose values are compared together;
    ``ignore_null``: skip documents without the field(s); ``timeframe``: a change counts only if
    the previous value was seen within it."""

    compare_key: Annotated[Any, WithJsonSchema(FIELDS_SCHEMA)] = Field(
        description="The field (or list of fields) whose value is tracked per group key.")
    ignore_null: bool = Field(True, description="Skip documents lacking a compare_key field (default true).")
    timeframe: Duration | None = Field(None, description="A change counts only if the previous value was seen "
                                                         "within this duration (ElastAlert2 timeframe).")

    @field_validator("compare_key", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        expected = "a field name or a non-empty list of field names"
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise ValueError(f"expected {expected}, found {describe(value)}")
        return value

    @property
    def fields(self) -> list[str]:
        """The compare key as a list of field names."""
        return [self.compare_key] if isinstance(self.compare_key, str) else list(self.compare_key)


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """``change`` tracks a value per group key, so it needs ``group_by``."""
    if not spec.group_by:
        return [(("type",), "expected group_by with type change (the field whose values are tracked "
                            "separately, ElastAlert2's query_key), found no group_by")]
    return []


def evaluate(ev: Evaluation) -> list[Match]:
    """One search (see the module doc); one match per group key that changed at least once.

    Match: ``count`` = changes in the window, ``value`` = the new value of the last change,
    ``details`` = ``compare_key`` (list of fields), ``old_value``/``new_value`` (last change),
    ``changes`` (``[{old_value, new_value, time}]``, oldest first) and ``truncated`` (the key had
    more than :data:`WALKED` documents).
    """
    params: Params = ev.params
    fields = params.fields
    extra = [{"exists": {"field": f}} for f in fields] if params.ignore_null else []
    time_sort = {ev.spec.time_field: {"order": "asc", "unmapped_type": "date"}}
    sources = {"includes": [*fields, ev.spec.time_field]}
    walk = {SEQUENCE: {"top_hits": {"size": WALKED, "sort": [time_sort], "_source": sources}},
            NEWEST: {"top_hits": {"size": 1, "sort": [{ev.spec.time_field: {"order": "desc", "unmapped_type": "date"}}],
                                  "_source": sources}}}
    aggs = ev.grouped_aggs(walk)
    response = ev.search(ev.filters(extra=extra), aggs=aggs)
    matches = []
    for group, bucket in group_buckets(response):
        sequence = _hits(bucket, SEQUENCE)
        truncated = bucket["doc_count"] > len(sequence)
        if truncated:
            sequence += _hits(bucket, NEWEST)
        changes = _walk(ev, state_key(group), [(_value(src, fields), when) for src, when in sequence])
        if changes:
            last = changes[-1]
            matches.append(Match(group=group, count=len(changes), value=last["new_value"], hits=sample_of(bucket),
                                 details={"compare_key": fields, "old_value": last["old_value"],
                                          "new_value": last["new_value"], "changes": changes,
                                          "truncated": truncated}))
    _forget_old(ev)
    return matches


def _hits(bucket: dict, name: str) -> list[tuple[dict, dt.datetime]]:
    """``(_source, time)`` of a top_hits sub-aggregation; the time comes from the sort value
    (epoch milliseconds), so any offset written in the document is read as the same instant."""
    hits = ((bucket.get(name) or {}).get("hits") or {}).get("hits") or []
    return [(hit.get("_source") or {}, dt.datetime.fromtimestamp(hit["sort"][0] / 1000, UTC)) for hit in hits]


def _value(source: dict, fields: list[str]) -> Any:
    """The compared value: the field's value (lists as lists) or the list of the fields' values."""
    values = [field_value(source, name) for name in fields]
    return values[0] if len(fields) == 1 else values


def keyword_form(value: Any) -> Any:
    """``value`` as a ``keyword`` field indexes it, for comparing: ``true`` → ``"true"``, ``1`` →
    ``"1"``, ``1.5`` → ``"1.5"`` (JSON text); strings and None as they are; arrays and objects
    item by item. So ``1`` and ``"1"`` compare equal, as they are one term in the index."""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return [keyword_form(item) for item in value]
    if isinstance(value, dict):
        return {name: keyword_form(item) for name, item in value.items()}
    return value


def _walk(ev: Evaluation, key: str, sequence: list[tuple[Any, dt.datetime]]) -> list[dict]:
    """Walk one key's values in time order from its kept state; update the state; the changes.

    Documents not newer than the kept time were walked by an earlier run (overlapping windows,
    ties in the kept millisecond included) and are skipped; values compare by :func:`keyword_form`.
    """
    timeframe = ev.params.timeframe
    changes = []
    kept = ev.state.get(key)
    previous = (kept["value"], _parse(kept["time"])) if kept else None
    seen_until = previous[1] if previous else None
    for value, when in sequence:
        if seen_until is not None and when <= seen_until:
            continue
        if previous is not None and keyword_form(value) != keyword_form(previous[0]):
            if timeframe is None or when - previous[1] <= timeframe:
                changes.append({"old_value": previous[0], "new_value": value, "time": iso(when)})
        previous = (value, when)
    if previous is not None:
        ev.state[key] = {"value": previous[0], "time": iso(previous[1])}
    return changes


def _forget_old(ev: Evaluation) -> None:
    """With ``timeframe``, values seen longer than ``timeframe`` before the window's end can never
    count as the previous value again: drop them so the state stays small."""
    timeframe = ev.params.timeframe
    if timeframe is None:
        return
    for key in [k for k, v in ev.state.items() if ev.end - _parse(v["time"]) > timeframe]:
        del ev.state[key]


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

