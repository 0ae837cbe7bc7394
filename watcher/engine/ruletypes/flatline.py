"""``flatline``: fewer than ``threshold`` documents in the window, for a stream (or a group key)
known to exist (ElastAlert2 docs, Rule Types: flatline — ``threshold``, ``forget_keys``; "with
query_key only alerts for keys seen before").

The cluster holds the window, so there is no warm-up: ElastAlert2 needs a full timeframe of
observation after every start (docs/semantics.md#warm-up-after-restart); here the first run already evaluates.

Without ``group_by`` the rule is one key, evaluated from the first run. To stay quiet about a
stream that never existed (a rule pointing at an empty or misspelt index), the stream must have
been seen: a document in the window, or — asked of the cluster on runs with an empty window, until
one is found — any document before it (newest first, one hit). Once seen, the stream stays known (``{"*": last seen}``
in the state) and is never forgotten: it is one key, and a heartbeat that died long ago is exactly
what the rule is for. ElastAlert2 alerts on an empty index once its timeframe has passed.

With ``group_by`` only known keys fire. Known keys live in the type state, ``{key: last seen}``
(ISO-8601 UTC of the key's newest document). On the first run they are seeded from the window
before, ``[start − window, start)`` (no warm-up, no flood of long-gone keys); each run refreshes
them from the current window's groups. A key first seen in the current window is learnt, not
judged (it was not "seen before"). Counts of the known keys come from a ``terms`` aggregation
restricted to them (``include``), so a quiet key is not lost behind ``max_groups`` busier ones; a
known key absent from the window is reported with count 0. Matches name the group by its state
key (a string: a numeric key reads ``"404"`` whether or not it has documents this run).
``forget_keys`` forgets a key once it has alerted (it is learnt again when seen). Keys not seen
for ``max(7 days, 10 × window)`` are forgotten so the state does not grow forever (ElastAlert2
keeps them in memory until restart), and at most :data:`MAX_KNOWN_KEYS` are kept (the most
recently seen).
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from watcher.engine.ruletypes import base
from watcher.engine.ruletypes.base import MISSING_KEY, Evaluation, Match, group_buckets, iso, sample_of
from watcher.engine.ruletypes.spike import DAWN

TYPE = "flatline"
DEFAULT_TITLE = ("rule '{{ rule.name }}': {{ 'no' if count == 0 else 'only ' ~ count }} event{{ 's' if count != 1 }} "
                 "in {{ rule.window }}"
                 "{% if group is not none %} for {{ group }}{% endif %}")
DEFAULT_MESSAGE = ("{{ count }} event{{ 's' if count != 1 }} (fewer than {{ details.threshold }}) in {{ rule.index | join(', ') }} "
                   "between {{ window.start }} and {{ window.end }}{% if group is not none %} for {{ group }}{% endif %}"
                   "; last seen {{ details.last_seen }}.")

WHOLE = "*"
KNOWN = "known"
LAST_SEEN = "last_seen"
FORGET_AFTER_AT_LEAST = dt.timedelta(days=7)
FORGET_AFTER_WINDOWS = 10
MAX_KNOWN_KEYS = 10000  # terms include list and size stay within search.max_buckets


class Params(base.Params):
    """``flatline`` parameters (ElastAlert2's names)."""

    threshold: int = Field(ge=1, description="Fire when fewer than this many documents are in the window.")
    forget_keys: bool = Field(False, description="With group_by: forget a key once it has alerted, until it is "
                                                 "seen again.")


def check(spec, params) -> list[tuple[tuple, str]]:
    """``forget_keys`` needs ``group_by`` (it forgets group keys)."""
    if params.forget_keys and not spec.group_by:
        return [(("params", "forget_keys"), "forget_keys needs group_by (it forgets group keys after they alert); "
                                            "remove it or set group_by")]
    return []


def forget_after(window: dt.timedelta) -> dt.timedelta:
    """How long a group key may go unseen before it is forgotten: ``max(7 days, 10 × window)``."""
    return max(FORGET_AFTER_AT_LEAST, FORGET_AFTER_WINDOWS * window)


def _millis_iso(millis: float | None) -> str | None:
    if millis is None:
        return None
    return iso(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=millis))


def _last_seen_agg(ev: Evaluation) -> dict:
    return {LAST_SEEN: {"max": {"field": ev.spec.time_field}}}


def evaluate(ev: Evaluation) -> list[Match]:
    """One match per known key (or the known stream) with fewer than ``threshold`` documents.

    Match: ``count`` = ``value`` = documents in the window (0 for a known key absent from it),
    ``details`` = ``threshold``, ``last_seen`` (ISO-8601 UTC of the newest document seen, None
    if unknown). ``info``: ``known_keys``, ``seeded`` (+ ``seeded_keys``), ``learnt``, ``forgotten``.

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    if ev.spec.group_by:
        return _evaluate_groups(ev)
    return _evaluate_whole(ev)


def _evaluate_whole(ev: Evaluation) -> list[Match]:
    threshold = ev.params.threshold
    response = ev.search(ev.filters(), aggs=ev.grouped_aggs(_last_seen_agg(ev)))
    buckets = group_buckets(response)  # empty when no index matched: an empty window
    bucket = buckets[0][1] if buckets else {"doc_count": 0}
    count = bucket["doc_count"]
    if count:
        ev.state[WHOLE] = _millis_iso(bucket[LAST_SEEN]["value"])
    elif WHOLE not in ev.state:
        # Never seen yet: has the stream ever existed? (newest document before the window)
        newest_first = [{ev.spec.time_field: {"order": "desc", "unmapped_type": "date", "numeric_type": "date"}}]
        older = ev.search(ev.filters(DAWN, ev.start), size=1, track_total_hits=False, _source=False,
                          sort=newest_first)
        hits = older["hits"]["hits"]
        ev.info["history_checked"] = True
        if hits:
            ev.state[WHOLE] = _millis_iso(hits[0]["sort"][0])
    ev.info["known_keys"] = len(ev.state)
    if count >= threshold or WHOLE not in ev.state:
        return []
    return [Match(group=None, count=count, value=count, hits=sample_of(bucket),
                  details={"threshold": threshold, LAST_SEEN: ev.state[WHOLE]}, absence=True)]


def _seed(ev: Evaluation) -> dict[str, str]:
    """Keys with documents in the window before (first run): ``{key: last seen}``."""
    ref_start = ev.start - (ev.end - ev.start)
    response = ev.search(ev.filters(ref_start, ev.start), aggs=ev.grouped_aggs(_last_seen_agg(ev), with_sample=False))
    return {base.state_key(key): _millis_iso(bucket[LAST_SEEN]["value"]) for key, bucket in group_buckets(response)}


def _evaluate_groups(ev: Evaluation) -> list[Match]:
    threshold = ev.params.threshold
    if ev.first_run:
        seeded = _seed(ev)
        ev.state.update(seeded)
        ev.info.update(seeded=True, seeded_keys=len(seeded))
    forgotten = _forget_stale(ev)

    known = dict(ev.state)
    aggs = ev.grouped_aggs(_last_seen_agg(ev))
    named = [key for key in known if key != MISSING_KEY]
    if named:
        aggs[KNOWN] = {"terms": {"field": ev.spec.group_by, "include": named, "size": len(named)},
                       "aggs": {**_last_seen_agg(ev), **(ev.sample() if ev.spec.hits else {})}}
    response = ev.search(ev.filters(), aggs=aggs)

    # Every group with documents in the window: the busiest (terms), the known ones, _missing.
    seen: dict[str, dict] = {base.state_key(key): bucket for key, bucket in group_buckets(response)}
    for bucket in (response.get("aggregations") or {}).get(KNOWN, {}).get("buckets", []):
        seen.setdefault(base.state_key(bucket.get("key_as_string", bucket["key"])), bucket)

    matches = []
    for name, last_seen in known.items():
        bucket = seen.get(name)
        count = bucket["doc_count"] if bucket else 0
        if count < threshold:
            # The group is the state key (a string), whether or not the key has documents now, so
            # a numeric key reads the same on every run.
            newest = _millis_iso(bucket[LAST_SEEN]["value"]) if bucket else last_seen
            matches.append(Match(group=name, count=count, value=count, hits=sample_of(bucket) if bucket else [],
                                 details={"threshold": threshold, LAST_SEEN: newest}, absence=True))

    learnt = [name for name in seen if name not in known]
    for name, bucket in seen.items():
        ev.state[name] = _millis_iso(bucket[LAST_SEEN]["value"])
    if ev.params.forget_keys and not ev.partial:  # on a partial answer the matches are held, not alerted
        for match in matches:
            ev.state.pop(match.group, None)
            forgotten.append(match.group)
    forgotten += _cap(ev)
    ev.info.update(known_keys=len(ev.state), learnt=learnt, forgotten=forgotten)
    return matches


def _forget_stale(ev: Evaluation) -> list[str]:
    """Drop keys whose last document is older than :func:`forget_after` before the window end."""
    oldest = iso(ev.end - forget_after(ev.end - ev.start))
    stale = [name for name, last_seen in ev.state.items() if last_seen is None or last_seen < oldest]
    for name in stale:
        del ev.state[name]
    return stale


def _cap(ev: Evaluation) -> list[str]:
    """Keep the :data:`MAX_KNOWN_KEYS` most recently seen keys."""
    if len(ev.state) <= MAX_KNOWN_KEYS:
        return []
    by_age = sorted(ev.state, key=lambda name: ev.state[name] or "")
    dropped = by_age[:len(ev.state) - MAX_KNOWN_KEYS]
    for name in dropped:
        del ev.state[name]
    return dropped
