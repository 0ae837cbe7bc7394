"""What every rule type shares: the evaluation context, matches, and the query helpers.

A rule type module (``watcher/ruletypes/<type>.py``) has:

* ``TYPE``: the name written in rules (``type: spike``);
* ``Params``: a pydantic model (subclass :class:`Params`) of the type's ``params`` block; the names
  are ElastAlert2's option names (``spike_height``, ``num_events``…) so rules read familiar and
  ``watcher convert --from elastalert`` maps them one to one;
* ``DEFAULT_TITLE`` / ``DEFAULT_MESSAGE``: Jinja2 templates used when the rule has no title/message;
* ``check(spec, params) -> list[(path, message)]``: cross-field checks (e.g. ``change`` needs
  ``group_by``), reported at ``file:line:column`` by the loader;
* ``evaluate(ev: Evaluation) -> list[Match]``: run the type's queries on the cluster for the window
  ``[ev.start, ev.end)`` and return one :class:`Match` per group key that fires, marking with
  ``absence=True`` a match that fires because something is too low or missing (flatline, a
  down-spike, a minimum crossed): such a match never fires on a partial answer.

Every search goes through :meth:`Evaluation.search`, which refuses a partial answer (some shards
failed) unless the rule has ``allow_partial_results: true``, and warns when the ``group_by`` terms
aggregation left groups out (:mod:`watcher.engine.run_warnings`).

Windows are half-open, ``[scheduled − window − delay, scheduled − delay)``: an event exactly on the
start counts, one exactly on the end belongs to the next run (ElastAlert2 uses ``(start, end]``).
All times are aware UTC datetimes; Elasticsearch receives them as ISO-8601 strings with ``Z``.

Groups (``group_by``, ElastAlert2's ``query_key``): documents that lack the field form the group
``_missing`` (what ElastAlert2's documentation promises; its code drops the key instead).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from watcher.engine.run_warnings import ABSENCE_HELD, Warnings, check_groups, check_search
from watcher.es.search_batch import batcher_for
from watcher.model.rule import filter_clauses, query_clause
from watcher.support import paths
from watcher.support.datemath import format_iso_millis

GROUPS = "groups"
MISSING = "missing_group"
ALL = "all"
SAMPLE = "sample"
MISSING_KEY = "_missing"
MAX_SAMPLE = 100  # index.max_inner_result_window default
SEARCH_TIMEOUT_S = 60.0  # client-side wait for one search, as the search input's default


class Params(BaseModel):
    """Base of every type's ``params`` model: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclasses.dataclass
class Match:
    """One group key that fires in this run.

    Attributes:
        group: the group key (None for a rule without ``group_by``; ``"_missing"`` for documents
            without the field).
        count: documents behind the match (in the current window unless the type says otherwise).
        value: the number the type compared (a count, ratio, metric value, percentage…).
        hits: up to ``hits`` sample documents (``_source``), newest first.
        details: type-specific facts for templates (``details.spike_ref``, ``details.old_value``…).
        absence: the match fires because something is too low or missing (flatline, a down-spike,
            a minimum crossed), which documents on failed shards could make false: on a partial
            answer it is held back (:func:`hold_absences`). Not part of the JSON.
    """

    group: Any
    count: int
    value: Any
    hits: list[dict] = dataclasses.field(default_factory=list)
    details: dict = dataclasses.field(default_factory=dict)
    absence: bool = False

    def to_json(self) -> dict:
        """The match as plain JSON (what ``ctx.payload.matches`` holds)."""
        return {"group": self.group, "count": self.count, "value": self.value, "hits": self.hits,
                "details": self.details}


@dataclasses.dataclass
class Evaluation:
    """Everything one evaluation of a typed rule may use.

    Attributes:
        spec: the rule (:class:`watcher.definitions.rule.RuleSpec`).
        params: the type's validated ``Params``.
        es: a synchronous Elasticsearch client.
        start, end: the window ``[start, end)``, aware UTC.
        state: this rule's type state from the previous run (a JSON-able dict, empty on the first
            run); the type mutates it and the caller persists it with the watch state.
        first_run: no state was saved before for this rule and type.
        info: facts for the watch record (``result.input.payload.info``), e.g. the baseline size.
        warnings: the run's warnings (:class:`~watcher.engine.run_warnings.Warnings`); partial
            answers and truncated groups are reported there. A fresh list when not given.
        purpose: which search of the run this evaluation makes (``rule input``, ``top counts``…),
            named in warnings and errors.
    """

    spec: Any
    params: Any
    es: Any
    start: dt.datetime
    end: dt.datetime
    state: dict
    first_run: bool
    info: dict = dataclasses.field(default_factory=dict)
    warnings: Warnings | None = None
    purpose: str = "rule input"

    def __post_init__(self) -> None:
        if self.warnings is None:
            self.warnings = Warnings(getattr(self.spec, "name", "rule"))

    @property
    def partial(self) -> bool:
        """True when a partial answer was evaluated in this run (``allow_partial_results``)."""
        return self.warnings.partial

    # ---- query building ---------------------------------------------------------------------

    def range_clause(self, start: dt.datetime, end: dt.datetime) -> dict:
        """``[start, end)`` on the rule's time field."""
        return {"range": {self.spec.time_field: {"gte": iso(start), "lt": iso(end),
                                                 "format": "strict_date_optional_time"}}}

    def filters(self, start: dt.datetime | None = None, end: dt.datetime | None = None,
                extra: list | None = None) -> dict:
        """A bool query: the rule's query and filter step, ``extra`` clauses, and the range
        ``[start, end)`` (default: the rule's window)."""

        clauses: list[dict] = []
        if self.spec.query is not None:
            clauses.append(query_clause(self.spec.query))
        must_not: list[dict] = []
        if self.spec.filter is not None:
            keep, drop = filter_clauses(self.spec)
            clauses.extend(keep)
            must_not.extend(drop)
        clauses.extend(extra or [])
        clauses.append(self.range_clause(start or self.start, end or self.end))
        query: dict[str, Any] = {"filter": clauses}
        if must_not:
            query["must_not"] = must_not
        return {"bool": query}

    def sample(self) -> dict:
        """A ``top_hits`` sub-aggregation: the newest ``hits`` documents of a bucket (with ``include``)."""
        body: dict[str, Any] = {"size": min(self.spec.hits, MAX_SAMPLE),
                                "sort": [{self.spec.time_field: {"order": "desc", "unmapped_type": "date"}}]}
        if self.spec.include:
            body["_source"] = {"includes": list(self.spec.include)}
        return {SAMPLE: {"top_hits": body}}

    def grouped_aggs(self, sub: dict, with_sample: bool = True) -> dict:
        """Aggregations that split by group key (or one ``all`` bucket without ``group_by``), each
        bucket carrying ``sub`` (plus the sample top_hits when ``hits`` > 0)."""
        sub = {**sub, **(self.sample() if with_sample and self.spec.hits else {})}
        inner = {"aggs": sub} if sub else {}
        if not self.spec.group_by:
            return {ALL: {"filter": {"match_all": {}}, **inner}}
        return {GROUPS: {"terms": {"field": self.spec.group_by, "size": self.spec.max_groups}, **inner},
                MISSING: {"missing": {"field": self.spec.group_by}, **inner}}

    def search(self, query: dict, aggs: dict | None = None, size: int = 0, *, complete: bool = False,
               **extra: Any) -> dict:
        """Search the rule's indices; returns the response body (``hits.total`` as an int).

        A partial answer (``_shards.failed > 0``, e.g. one index maps the field as ``long`` and
        another as ``keyword``) is refused unless the rule has ``allow_partial_results: true``;
        either way a ``partial_results`` warning is recorded. When ``aggs`` has the
        :meth:`grouped_aggs` terms aggregation and it left groups out, a ``groups_truncated``
        warning is recorded (:mod:`watcher.engine.run_warnings`). A search that hit no shard at all
        (no index matches the pattern) sets ``info["note"]``. ``complete=True`` refuses a partial
        answer even under ``allow_partial_results`` (for what is kept across runs, e.g. a baseline).

        Raises:
            watcher.es.shards.PartialResultsError: some shards failed and partial results are not
                allowed (a transient cluster error: the daemon re-runs the window).
            elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away
                (the engine records the run as failed; the daemon re-runs the window).
        """
        body: dict[str, Any] = {"size": size, "track_total_hits": True, "query": query, **extra}
        if aggs:
            body["aggs"] = aggs
        if size:
            body.setdefault("sort", [{self.spec.time_field: {"order": "desc", "unmapped_type": "date"}}])
            if self.spec.include:
                body.setdefault("_source", {"includes": list(self.spec.include)})

        # Through the client's batcher: rules due at the same tick share one _msearch.
        pattern = ",".join(self.spec.index)
        response = batcher_for(self.es).search(pattern, body,
                                               {"ignore_unavailable": True, "allow_no_indices": True},
                                               rest_total_hits_as_int=True, timeout_s=SEARCH_TIMEOUT_S)
        check_search(response, self.warnings, search=self.purpose, index=pattern,
                     allow_partial=not complete and bool(getattr(self.spec, "allow_partial_results", False)))
        if aggs and GROUPS in aggs and self.spec.group_by:
            check_groups((response.get("aggregations") or {}).get(GROUPS), self.spec.max_groups, self.warnings,
                         search=self.purpose, group_by=self.spec.group_by)
        self.note_shards(response)
        return response

    def note_shards(self, response: dict) -> None:
        """``info["note"] = "no index matched <pattern>"`` when the search ran on zero shards."""
        shards = response.get("_shards") or {}
        if shards.get("total") == 0 and "note" not in self.info:
            self.info["note"] = f"no index matched {','.join(self.spec.index)}"


def hold_absences(ev: Evaluation, matches: list[Match]) -> list[Match]:
    """The matches that may fire: all of them, except on a partial answer, where the ``absence``
    matches are held back (documents on the failed shards could make them false) and an
    ``absence_held`` warning names their groups."""
    if not ev.partial:
        return matches
    held = [match.group for match in matches if match.absence]
    ev.warnings.held(ABSENCE_HELD, held, "conditions that missing documents can make true did not fire")
    return [match for match in matches if not match.absence]


def iso(instant: dt.datetime) -> str:
    """``2024-05-01T10:15:30.123Z`` (UTC, milliseconds)."""
    return format_iso_millis(instant)


def group_buckets(response: dict) -> list[tuple[Any, dict]]:
    """``(group key, bucket)`` for each bucket of :meth:`Evaluation.grouped_aggs`.

    The ``_missing`` group is listed only when some documents lack the field; the ``all`` bucket of
    an ungrouped rule is listed (key None) even when empty, so types that look for *too few*
    events (flatline, cardinality minimums) see the empty window — except when the search hit no
    shard (no index matched: the response has no ``aggregations``), where the list is empty.
    """
    aggs = response.get("aggregations") or {}
    if ALL in aggs:
        return [(None, aggs[ALL])]
    out = [(bucket.get("key_as_string", bucket["key"]), bucket) for bucket in aggs.get(GROUPS, {}).get("buckets", [])]
    missing = aggs.get(MISSING) or {}
    if missing.get("doc_count"):
        out.append((MISSING_KEY, missing))
    return out


def sample_of(bucket: dict) -> list[dict]:
    """The ``_source`` of the bucket's sample hits (newest first)."""
    hits = ((bucket.get(SAMPLE) or {}).get("hits") or {}).get("hits") or []
    return [hit.get("_source", {}) for hit in hits]


def state_key(group: Any) -> str:
    """The key under which per-group state is kept (JSON object keys are strings; None → ``*``)."""
    return "*" if group is None else str(group)


def field_value(source: dict, name: str) -> Any:
    """A field of a ``_source``, or None: the literal dotted key first, then the nested path, dotted
    keys and nesting mixed at any level (``output_fields.container.image.repository`` finds
    ``{"output_fields": {"container.image.repository": …}}``); ElastAlert2's lookup order, as
    :func:`watcher.support.paths.find_field` states it (docs/correctness.md#dotted-keys-inside-documents)."""
    return paths.field_value(source, name)
