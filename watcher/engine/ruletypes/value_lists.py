"""What ``blacklist`` and ``whitelist`` share: the value list (with ``!file PATH`` items), its
resolution at load time, and the evaluation (ElastAlert2 docs, Rule Types: Blacklist, Whitelist).

The cluster does the filtering: a ``terms`` query on ``compare_key`` (blacklist), or, for a
whitelist, a ``terms`` aggregation that ``exclude``s the list (the window's unlisted values) and a
``terms`` query on those, so thousands of values work (``terms`` is bounded by
``index.max_terms_count``, 65,536, not by the 1,024 boolean clauses that ElastAlert2's
``query_string`` OR-list hits — ElastAlert2 issue YelpArchive/elastalert#1867). An array fires a
blacklist when any of its values is listed, and a whitelist when any of its values is not
(docs/correctness.md#whitelists-and-blacklists-with-arrays); an array is never hashed in Python
(ElastAlert2 crashes with ``unhashable type: 'list'``, docs/semantics.md#array-valued-compare-keys).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import Evaluation, Match, group_buckets, sample_of
from watcher.model.problems import describe

FILE_PREFIX = "!file"
MAX_VALUES = 65_536  # index.max_terms_count default: the largest terms query the cluster accepts
VALUES_AGG = "values"
OFFENDING = "offending_values"  # not "values": details.values would be dict.values in a template
NO_VALUE_AGG = "no_value"
UNLISTED_AGG = "unlisted"
MAX_OFFENDING = 10_000  # distinct unlisted values a whitelist looks for in one window (then: lower bounds)
SHOWN_VALUES = 20  # offending values listed in details, most frequent first
EXPECTED_ITEM = "a value (string, number, true/false) or '!file PATH' (one value per line)"

Scalar = str | int | float | bool
log = logging.getLogger("watcher.rules")
LIST_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": ["string", "number", "boolean"]},
               "description": "Values; an item '!file PATH' loads one value per line."}


def _file_item(item: Any) -> str | None:
    """The PATH of a ``!file PATH`` item, written quoted (``"!file lists/bad.txt"``, ElastAlert2's
    form) or as a YAML tag (``!file lists/bad.txt``); None for a plain value."""
    tag = getattr(getattr(item, "tag", None), "value", None) or getattr(item, "tag", None)
    if isinstance(tag, str) and tag == FILE_PREFIX and isinstance(getattr(item, "value", None), str):
        return item.value.strip()
    if isinstance(item, str) and (item == FILE_PREFIX or item.startswith(FILE_PREFIX + " ")):
        return item[len(FILE_PREFIX):].strip()
    return None


def validate_items(value: Any) -> tuple:
    """The list as written: a non-empty list of scalars and ``!file PATH`` items (kept as
    ``"!file PATH"`` strings). Raises ValueError (``expected …, found …``)."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of values or '!file PATH' items, found {describe(value)}")
    items = []
    for index, item in enumerate(value):
        path = _file_item(item)
        if path is not None:
            if not path:
                raise ValueError(f"expected '!file PATH' with a path at item {index}, found {describe(str(item))}")
            items.append(f"{FILE_PREFIX} {path}")
        elif isinstance(item, (str, int, float, bool)) and not (isinstance(item, str) and not item.strip()):
            items.append(item)
        else:
            raise ValueError(f"expected {EXPECTED_ITEM} at item {index}, found {describe(item)}")
    return tuple(items)


def read_value_file(path: Path) -> list[str]:
    """One value per line of ``path`` (UTF-8), stripped; blank lines and ``#`` comments skipped.

    Raises:
        OSError, UnicodeDecodeError: the file cannot be read.
    """
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def resolve(items: tuple, folder: Path) -> tuple[list[Scalar], list[tuple[int, str]]]:
    """``(values, problems)``: the items with each ``!file PATH`` replaced by its lines (PATH
    relative to ``folder``, the rule file's folder), duplicates dropped in first-seen order;
    ``problems`` are ``(item index, message)`` for files that cannot be read."""
    values: dict[Any, None] = {}
    problems: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        path = _file_item(item)
        if path is None:
            values[(type(item), item)] = None
            continue
        full = Path(path) if Path(path).is_absolute() else folder / path
        try:
            for line in read_value_file(full):
                values[(str, line)] = None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            problems.append((index, f"expected a readable file of values (one per line), found {path!r} "
                                    f"({reason}: {full})"))
    return [value for _, value in values], problems


class ListParams(base.Params):
    """Shared fields: ``compare_key`` (one field). The list field itself is declared by each type;
    its resolved values (files read) are kept in ``_values`` by :func:`check_list`."""

    compare_key: str = Field(description="The field whose value is checked against the list.")

    _values: list | None = PrivateAttr(default=None)

    @field_validator("compare_key", mode="before")
    @classmethod
    def _one_field(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected a field name, found {describe(value)}")
        return value


def list_field(params: ListParams) -> str:
    """The name of the type's list parameter (``blacklist`` or ``whitelist``)."""
    return "blacklist" if "blacklist" in type(params).model_fields else "whitelist"


def check_list(spec, params: ListParams) -> list[tuple[tuple, str]]:
    """Read the ``!file`` items (relative to the folder of ``spec.file``) and keep the resolved
    values on ``params``; problems at the item's position, and when the list is too long."""
    name = list_field(params)
    folder = Path(spec.file).parent if getattr(spec, "file", None) else Path.cwd()
    values, problems = resolve(getattr(params, name), folder)
    out = [(("params", name, index), message) for index, message in problems]
    if len(values) > MAX_VALUES:
        out.append((("params", name), f"expected at most {MAX_VALUES:,} values (index.max_terms_count), "
                                      f"found {len(values):,}"))
    if not out:
        params._values = values
    return out


def values_of(ev: Evaluation) -> list[Scalar]:
    """The resolved list. Loaded rules had it resolved by :func:`check_list`; a spec built in code
    resolves here, relative to the rule file.

    Raises:
        ValueError: a list file cannot be read.
    """
    params = ev.params
    if params._values is None:
        problems = check_list(ev.spec, params)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
    return params._values


def evaluate_list(ev: Evaluation, listed: bool, ignore_null: bool) -> list[Match]:
    """Documents whose ``compare_key`` holds a listed value (``listed``: blacklist) or a value that is
    not listed (whitelist), counted per group key, with the offending values and a sample.

    Arrays (docs/correctness.md#whitelists-and-blacklists-with-arrays): a blacklist fires for a
    document when *any* of its values is listed; a whitelist when *any* of its values is not listed
    (``[info, error]`` against ``[info]`` fires, offending value ``error``). A blacklist is one
    search (``terms``). A whitelist takes two: the window's values outside the list (a ``terms``
    aggregation with ``exclude``, at most :data:`MAX_OFFENDING` of them), then the documents holding
    one of those values (or, with ``ignore_null: false``, no value). When the window holds more than
    :data:`MAX_OFFENDING` distinct unlisted values, the documents of the others are not counted: the
    counts are lower bounds, ``details.offending_values_incomplete`` is true, ``info["note"]`` says
    so and a WARNING is logged on ``watcher.rules``.

    Returns one :class:`Match` per group key with at least one offending document; ``details``:
    ``compare_key``, ``offending_values`` (``[{value, count}]``: only listed values for a blacklist,
    only unlisted ones for a whitelist; most frequent first, at most 20; named so because
    ``details.values`` is ``dict.values`` in a Jinja template), ``list_size`` and, for a whitelist
    that keeps documents without the field, ``missing_field`` (how many offending documents lack it).
    """
    key = ev.params.compare_key
    values = values_of(ev)
    value_agg: dict[str, Any] = {"field": key, "size": SHOWN_VALUES}
    incomplete = False
    if listed:
        query = ev.filters(extra=[{"terms": {key: values}}])
        value_agg["include"] = values  # of an array, show only the listed values
    else:
        offending, incomplete = _unlisted_values(ev, key, values)
        holds = [{"terms": {key: offending}}] if offending else []
        if not ignore_null:
            holds.append({"bool": {"must_not": [{"exists": {"field": key}}]}})
        if not holds:
            return []
        query = ev.filters(extra=[{"bool": {"should": holds, "minimum_should_match": 1}}])
        value_agg["exclude"] = values  # of an array, show only the values outside the list
    sub: dict[str, Any] = {VALUES_AGG: {"terms": value_agg}}
    if not listed and not ignore_null:
        sub[NO_VALUE_AGG] = {"missing": {"field": key}}
    response = ev.search(query, aggs=ev.grouped_aggs(sub))
    matches = []
    for group, bucket in group_buckets(response):
        if not bucket["doc_count"]:
            continue
        details: dict[str, Any] = {
            "compare_key": key, "list_size": len(values),
            OFFENDING: [{"value": b.get("key_as_string", b["key"]), "count": b["doc_count"]}
                       for b in bucket[VALUES_AGG]["buckets"]]}
        if NO_VALUE_AGG in bucket:
            details["missing_field"] = bucket[NO_VALUE_AGG]["doc_count"]
        if incomplete:
            details["offending_values_incomplete"] = True
        matches.append(Match(group=group, count=bucket["doc_count"], value=bucket["doc_count"],
                             hits=sample_of(bucket), details=details))
    return matches


def _unlisted_values(ev: Evaluation, key: str, values: list[Scalar]) -> tuple[list, bool]:
    """``(values, incomplete)``: the values of ``key`` in the window's documents that are not in
    ``values`` (as the cluster writes them: ``key_as_string`` for dates, IPs and booleans), at most
    :data:`MAX_OFFENDING`; ``incomplete`` when the window holds more."""
    aggs = {UNLISTED_AGG: {"terms": {"field": key, "exclude": values, "size": MAX_OFFENDING}}}
    response = ev.search(ev.filters(extra=[{"exists": {"field": key}}]), aggs=aggs)
    found = (response.get("aggregations") or {}).get(UNLISTED_AGG) or {}
    buckets = found.get("buckets") or []
    incomplete = bool(found.get("sum_other_doc_count"))
    if incomplete:
        note = (f"more than {MAX_OFFENDING:,} distinct values of {key} outside the whitelist in the window: the "
                f"documents of the others are not counted (counts are lower bounds)")
        ev.info.setdefault("note", note)
        log.warning("rule %r: %s", ev.spec.name, note)
    return [bucket.get("key_as_string", bucket["key"]) for bucket in buckets], incomplete
