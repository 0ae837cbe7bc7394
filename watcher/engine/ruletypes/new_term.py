"""``new_term``: a value of a field (or a combination of fields) not seen during the look-back
(ElastAlert2 docs, Rule Types: New Term).

Baseline: the first run (or the first run after a ``fields`` entry is added) reads the terms of
``[end − terms_window_size, end)`` with composite aggregations, paged with ``after_key`` so any
number of terms is learned, and alerts nothing — ElastAlert2 rebuilds its baseline in memory at
each start and floods after restarts (docs/semantics.md#new-term-baseline); ours is kept in the rule state, so
a restart does not flood. ``ev.info["new_term"]["learned"]`` says how many terms were learned.

Later runs read the terms of the window ``[start, end)`` (same composite aggregation, with each
term's first and last time); each term missing from the baseline is a match and joins it. Terms
not seen for more than ``terms_window_size`` are dropped from the baseline.

State (``ev.state``): ``{field key: {term key: last seen ISO}}``. The field key is the field name,
or the names of a composite term joined with ``,``; the term key is the term as JSON (``"root"``,
``0``, ``["web-1","root"]``), so ``0`` and ``"0"`` stay apart. Falsy values (0, "", false) are
terms like any other (ElastAlert2 drops them, docs/semantics.md#falsy-new-terms).

Match group: the term — the value itself for a string of one field, its JSON text otherwise
(``0``, ``false``, ``["web-1", "root"]`` for a composite term); ``_missing`` for documents lacking
the field(s) with ``alert_on_missing_field``. When ``fields`` has several entries, the group is
prefixed with the entry's field key (``port=0``, ``host.name,user.name=_missing``) so that equal
terms of two entries stay two group keys. ``group_by`` is not supported: list the group field
in a composite term instead (``fields: [[host.name, user.name]]``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import MISSING_KEY, Evaluation, Match, iso, sample_of
from watcher.model.fields import Duration
from watcher.model.problems import describe

TYPE = "new_term"
PAGE_SIZE = 1000  # composite buckets per request
MAX_SAMPLED = 100  # new terms that get sample hits (one filters aggregation)
TERMS_AGG = "terms"
FIRST, LAST = "first_seen", "last_seen"
UTC = dt.timezone.utc
FIELD_NAME = {"type": "string", "minLength": 1}
FIELDS_SCHEMA = {"type": "array", "minItems": 1,
                 "items": {"anyOf": [FIELD_NAME, {"type": "array", "minItems": 1, "items": FIELD_NAME}]}}

# A term match has no details.missing_field (templates use StrictUndefined): test with "is defined".
DEFAULT_TITLE = ("rule '{{ rule.name }}': {% if details.missing_field is defined %}"
                 "{{ 'a document' if count == 1 else 'documents' }} without "
                 "{{ details.missing_field }}{% else %}new {{ details.field }} {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{% if details.missing_field is defined %}{{ count }} document{{ 's' if count != 1 }} without "
                   "{{ details.missing_field }}{% else %}New {{ details.field }} {{ group }} ({{ count }} "
                   "document{{ 's' if count != 1 }}){% endif %} in {{ rule.index | join(', ') }} between {{ window.start }} and "
                   "{{ window.end }}, first at {{ details.first_seen }}.")


class Params(base.Params):
    """``fields``: what is watched (each item a field, or a list of fields = one composite term);
    ``terms_window_size``: the look-back; ``alert_on_missing_field``: documents lacking a field match."""

    fields: Annotated[Any, WithJsonSchema(FIELDS_SCHEMA)] = Field(
        description="Fields whose new values fire; a list inside the list is a composite term.")
    terms_window_size: Duration = Field(dt.timedelta(days=30), description="Look-back of the baseline (default 30d).")
    alert_on_missing_field: bool = Field(False, description="Documents without the field(s) fire (group _missing).")

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        expected = "a non-empty list of field names (a list of field names inside it is a composite term)"
        if not isinstance(value, list) or not value:
            raise ValueError(f"expected {expected}, found {describe(value)}")
        for index, item in enumerate(value):
            names = item if isinstance(item, list) else [item]
            if not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise ValueError(f"expected a field name or a non-empty list of field names at item {index}, "
                                 f"found {describe(item)}")
        return value

    def entries(self) -> list[list[str]]:
        """Each ``fields`` item as a list of field names (one name for a plain field)."""
        return [item if isinstance(item, list) else [item] for item in self.fields]


def check(spec, params: Params) -> list[tuple[tuple, str]]:
    """``group_by`` is not supported (the term is the group key)."""
    if spec.group_by:
        return [(("group_by",), "expected no group_by with type new_term (the term is the group key), found "
                                f"{describe(spec.group_by)}; to learn terms per group, list a composite term such "
                                f"as fields: [[{spec.group_by}, FIELD]]")]
    return []


def field_key(names: list[str]) -> str:
    """The state key of a ``fields`` entry: the field, or the composite's fields joined with ``,``."""
    return ",".join(names)


def term_key(term: list) -> str:
    """The state key of a term (JSON: ``"root"``, ``0``, ``["web-1","root"]``)."""
    return json.dumps(term[0] if len(term) == 1 else term, ensure_ascii=False, separators=(",", ":"))


def term_group(term: list) -> str:
    """The match group of a term: a one-field string as is, anything else as JSON text."""
    if len(term) == 1 and isinstance(term[0], str):
        return term[0]
    return json.dumps(term[0] if len(term) == 1 else term, ensure_ascii=False)


def evaluate(ev: Evaluation) -> list[Match]:
    """Learn the baseline of new ``fields`` entries (no alerts), then match the window's terms not
    in the baseline. See the module doc for the state and the match groups.

    Match: ``count`` = documents with the term in the window, ``value`` = the group, ``hits`` =
    a sample (for the first :data:`MAX_SAMPLED` matches), ``details`` = ``field`` (the field key),
    ``fields``, ``term`` (the value, or list of values), ``first_seen`` (ISO UTC); a
    missing-field match has ``missing_field`` (the field key) instead of ``term``.
    """
    params: Params = ev.params
    entries = {field_key(names): names for names in params.entries()}
    for stale in [key for key in ev.state if key not in entries]:
        del ev.state[stale]  # a fields entry removed from the rule
    learned, matches = {}, []
    for key, names in entries.items():
        if key not in ev.state:
            baseline_start = ev.end - params.terms_window_size
            # The baseline is kept for the life of the rule: never learnt from a partial answer, even
            # with allow_partial_results (the failed shards' terms would alert as new for weeks).
            found = _scan(ev, names, baseline_start, ev.end, with_missing=False, complete=True)
            ev.state[key] = {term_key(term): iso(last) for term, _, last, _ in found}
            learned[key] = len(ev.state[key])
            continue
        prefix = f"{key}=" if len(entries) > 1 else ""
        matches.extend(_new_terms(ev, key, names, prefix))
    _forget_old(ev)
    _add_samples(ev, matches)
    ev.info["new_term"] = {"learned": learned, "known_terms": {k: len(v) for k, v in ev.state.items()},
                           "new_terms": len([m for m in matches if "term" in m.details])}
    return matches


def _new_terms(ev: Evaluation, key: str, names: list[str], prefix: str) -> list[Match]:
    """Matches of the window's terms of one entry not in its baseline (groups start with
    ``prefix``); the baseline is updated."""
    known: dict[str, str] = ev.state[key]
    missing_docs, missing_first = 0, None
    out = []
    for term, first, last, count in _scan(ev, names, ev.start, ev.end, with_missing=ev.params.alert_on_missing_field):
        if any(value is None for value in term):
            missing_docs += count
            missing_first = first if missing_first is None else min(missing_first, first)
            continue
        tk = term_key(term)
        if tk not in known:
            out.append(Match(group=prefix + term_group(term), count=count, value=term_group(term),
                             details={"field": key, "fields": names, "term": term[0] if len(term) == 1 else term,
                                      "first_seen": iso(first)}))
        if tk not in known or _parse(known[tk]) < last:
            known[tk] = iso(last)
    if missing_docs:
        out.append(Match(group=prefix + MISSING_KEY, count=missing_docs, value=missing_docs,
                         details={"field": key, "fields": names, "missing_field": key,
                                  "first_seen": iso(missing_first)}))
    return out


def _scan(ev: Evaluation, names: list[str], start: dt.datetime, end: dt.datetime,
          with_missing: bool, complete: bool = False) -> list[tuple[list, dt.datetime, dt.datetime, int]]:
    """Every term of ``names`` in ``[start, end)``: ``(values, first time, last time, documents)``,
    paging the composite aggregation with ``after_key``. ``with_missing`` keeps documents lacking
    a field (its value is None); otherwise the query requires every field (``exists``).
    ``complete``: refuse a partial answer even under ``allow_partial_results``
    (:class:`~watcher.es.shards.PartialResultsError`)."""
    time_field = ev.spec.time_field
    sources = [{f"f{i}": {"terms": {"field": name, **({"missing_bucket": True} if with_missing else {})}}}
               for i, name in enumerate(names)]
    extra = [] if with_missing else [{"exists": {"field": name}} for name in names]
    query = ev.filters(start, end, extra=extra)
    composite: dict[str, Any] = {"size": PAGE_SIZE, "sources": sources}
    aggs = {TERMS_AGG: {"composite": composite,
                        "aggs": {FIRST: {"min": {"field": time_field}}, LAST: {"max": {"field": time_field}}}}}
    out = []
    while True:
        # No aggregations when no index matched (zero shards): no terms.
        response = ev.search(query, aggs=aggs, complete=complete)
        result = (response.get("aggregations") or {}).get(TERMS_AGG) or {"buckets": []}
        for bucket in result["buckets"]:
            values = [bucket["key"][f"f{i}"] for i in range(len(names))]
            out.append((values, _millis(bucket[FIRST]["value"]), _millis(bucket[LAST]["value"]), bucket["doc_count"]))
        if not result["buckets"] or "after_key" not in result:
            return out
        composite["after"] = result["after_key"]


def _forget_old(ev: Evaluation) -> None:
    """Drop terms last seen more than ``terms_window_size`` before the window's end."""
    oldest = ev.end - ev.params.terms_window_size
    for terms in ev.state.values():
        for stale in [tk for tk, seen in terms.items() if _parse(seen) < oldest]:
            del terms[stale]


def _add_samples(ev: Evaluation, matches: list[Match]) -> None:
    """Sample hits for the first :data:`MAX_SAMPLED` matches: one search with a ``filters``
    aggregation (one filter per match) carrying the rule's sample ``top_hits``."""
    if not ev.spec.hits or not matches:
        return
    filters = {str(i): _match_filter(m) for i, m in enumerate(matches[:MAX_SAMPLED])}
    response = ev.search(ev.filters(), aggs={"new": {"filters": {"filters": filters}, "aggs": ev.sample()}})
    buckets = (response.get("aggregations") or {}).get("new", {}).get("buckets") or {}
    for i, match in enumerate(matches[:MAX_SAMPLED]):
        match.hits = sample_of(buckets.get(str(i)) or {})


def _match_filter(match: Match) -> dict:
    """The documents behind a match: every field equal to the term, or some field missing."""
    names = match.details["fields"]
    if "missing_field" in match.details:
        return {"bool": {"should": [{"bool": {"must_not": {"exists": {"field": n}}}} for n in names],
                         "minimum_should_match": 1}}
    term = match.details["term"] if len(names) > 1 else [match.details["term"]]
    return {"bool": {"filter": [{"term": {n: v}} for n, v in zip(names, term)]}}


def _millis(value: float | None) -> dt.datetime:
    return dt.datetime.fromtimestamp((value or 0) / 1000, UTC)


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
