"""What happens to a rule's alerts between "the rule matched" and "the actions run".

In order (all keyed by the group key, ``*`` for a rule without ``group_by``; "now" is the run's
scheduled time, so backtests behave as the daemon would have):

1. **Recovery** (Kibana's "Recovered" action group; ElastAlert2 has none): keys that alerted on an
   earlier run and match no more produce a ``recovered`` event with how long they fired.
2. **Silence** (``watcher silence``; ElastAlert2 ``--silence``): keys silenced until a time are
   dropped; ``*`` silences the whole rule.
3. **Realert** (ElastAlert2 ``realert`` / ``exponential_realert``, docs "Rule Types and
   Configuration Options"): after an alert the key is quiet for ``realert``; with
   ``exponential_realert`` the wait doubles while the key fires again within twice the current wait,
   up to the cap, and starts over after a quiet spell longer than that.
4. **Top counts** (ElastAlert2 ``top_count_keys``): the most frequent values of chosen fields in the
   window, per alert, counted by the cluster.
5. **Aggregation** (ElastAlert2 ``aggregation``, ``aggregation_key``, ``summary_table_fields``):
   alerts are collected, per aggregation key, from the first one for ``period``; the first run at or
   after the end sends one summary (with a table) instead of the single alerts.

State lives in ``run.rule_state`` (saved with the watch state by the daemon, so a restart keeps it):
``firing`` ``{key: {"since", "group"}}``, ``realert`` ``{key: {"until", "exponent"}}``,
``aggregation`` ``{agg_key: {"start", "alerts": [...]}}``. Silences are in ``run.silences``
``{key: until}``, written by the CLI and only read here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watcher.engine.alert import Alert
from watcher.engine.ruletypes.base import MISSING_KEY, Evaluation, field_value
from watcher.engine.run_warnings import RECOVERIES_HELD
from watcher.support.datemath import format_iso_millis, parse_instant
from watcher.support.durations import DurationError, parse_rule_duration

WHOLE_RULE = "*"


def key_of(group: Any) -> str:
    """The state key of a group (``*`` for an ungrouped rule)."""
    return WHOLE_RULE if group is None else str(group)


def recoveries(spec, run, alerts: list) -> list:
    """Recovered events for keys that fired before and are not among ``alerts``; updates ``firing``.

    On a partial answer (``run.warnings.partial``) a key that is not matched may only be hidden on
    the failed shards: it is not declared recovered, it stays firing, and a ``recoveries_held``
    warning names it.

    Returns:
        new ``Alert`` objects with ``status="recovered"``, ``count`` 0 and ``fired_for`` (seconds).
    """

    now = run.scheduled_time
    before = run.rule_state.get("firing") or {}
    current = {key_of(a.group): a for a in alerts}
    firing = {}
    for key, alert in current.items():
        since = (before.get(key) or {}).get("since") or format_iso_millis(now)
        firing[key] = {"since": since, "group": alert.group}
    if run.warnings.partial:
        held = {key: entry for key, entry in before.items() if key not in current}
        firing.update(held)
        run.warnings.held(RECOVERIES_HELD, [entry.get("group") for entry in held.values()],
                          "groups that fired before and were not matched now are not declared recovered")
    run.rule_state["firing"] = firing
    out = []
    for key, entry in before.items():
        if key in firing:
            continue
        since = parse_instant(entry["since"])
        out.append(Alert(group=entry.get("group"), count=0, value=None, hits=[], payload={}, status="recovered",
                         fired_for=(now - since).total_seconds(), details={"firing_since": entry["since"]}))
    return out


def silenced(run, alerts: list) -> tuple[list, list]:
    """``(kept, silenced keys)``: alerts whose key (or the whole rule) is silenced now are dropped."""
    now = run.scheduled_time
    active = {key: parse_instant(until) for key, until in (run.silences or {}).items()
              if parse_instant(until) > now}
    if not active:
        return alerts, []
    kept, dropped = [], []
    for alert in alerts:
        if WHOLE_RULE in active or key_of(alert.group) in active:
            dropped.append(alert.group)
        else:
            kept.append(alert)
    return kept, dropped


def realert(spec, run, alerts: list) -> tuple[list, list]:
    """``(kept, suppressed keys)`` under ``realert``/``exponential_realert``; updates ``realert`` state."""
    period = spec.realert
    if not period:
        return alerts, []
    now = run.scheduled_time
    state = run.rule_state.setdefault("realert", {})
    kept, suppressed = [], []
    for alert in alerts:
        key = key_of(alert.group)
        entry = state.get(key)
        if entry and parse_instant(entry["until"]) > now:
            suppressed.append(alert.group)
            continue
        exponent = 0
        if entry and spec.exponential_realert:
            exponent = int(entry.get("exponent", 0))
            quiet = now - parse_instant(entry["until"])
            if quiet > period * (2 ** exponent):
                exponent = 0  # quiet for longer than twice the wait since the last alert: start over
            elif period * (2 ** (exponent + 1)) <= spec.exponential_realert:
                exponent += 1
        state[key] = {"until": format_iso_millis(now + period * (2 ** exponent)), "exponent": exponent}
        kept.append(alert)
    # Forget keys whose quiet time is long past, so the state does not grow without bound.
    horizon = max(spec.exponential_realert or period, period) * 2
    for key in [k for k, e in state.items() if now - parse_instant(e["until"]) > horizon]:
        del state[key]
    return kept, suppressed


def _window_search(spec, run, purpose: str):
    """An :class:`~watcher.engine.ruletypes.base.Evaluation` over the rule's window, for extra counts
    (``purpose`` names the search in warnings and errors; partial answers follow the rule's
    ``allow_partial_results``)."""

    start, end = run.rule_window
    return Evaluation(spec=spec, params=None, es=run.services.es, start=start, end=end, state={}, first_run=False,
                      warnings=run.warnings, purpose=purpose)


def _group_clauses(spec, alert) -> list[dict]:
    """The clauses that keep the documents of ``alert``'s group (none for an ungrouped rule)."""

    if not spec.group_by or alert.group is None:
        return []
    if alert.group == MISSING_KEY:
        return [{"bool": {"must_not": {"exists": {"field": spec.group_by}}}}]
    return [{"term": {spec.group_by: alert.group}}]


def top_counts(spec, run, alert) -> tuple[dict, dict]:
    """``({field: [{"key", "count"}]}, {field: reason})``: the ``top_count_number`` most frequent
    values of each ``top_count_keys`` field in the rule's window, within the alert's group, and the
    fields the cluster could not count (a ``text`` field without fielddata, a mapping conflict):
    those get ``[]`` rather than losing the alert. Fields are counted one search each only after
    the combined search failed.

    Raises:
        elasticsearch.TransportError: the cluster is away (the run fails and is retried).
        watcher.es.shards.PartialResultsError: a partial answer the rule does not accept (likewise).
    """
    from elasticsearch import ApiError  # deferred: start-up (the ES client costs ~0.25 s to import)
    ev = _window_search(spec, run, "top counts")
    query = ev.filters(extra=_group_clauses(spec, alert))

    def count(fields: list[str]) -> dict:
        aggs = {f"top_{i}": {"terms": {"field": field, "size": spec.top_count_number}} for i, field in enumerate(fields)}
        response = ev.search(query, aggs=aggs)
        out = {}
        for i, field in enumerate(fields):
            buckets = ((response.get("aggregations") or {}).get(f"top_{i}") or {}).get("buckets") or []
            out[field] = [{"key": b.get("key_as_string", b["key"]), "count": b["doc_count"]} for b in buckets]
        return out

    try:
        return count(list(spec.top_count_keys)), {}
    except ApiError:
        pass
    out, errors = {}, {}
    for field in spec.top_count_keys:
        try:
            out.update(count([field]))
        except ApiError as error:
            out[field] = []
            errors[field] = _reason(error)
    return out, errors


def _reason(error: Exception) -> str:
    """The root cause an Elasticsearch error gives (e.g. "Fielddata is disabled on [message] …")."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        causes = (body.get("error") or {}).get("root_cause") or []
        if causes and isinstance(causes[0], dict) and causes[0].get("reason"):
            return str(causes[0]["reason"])
    return str(error)


def table_rows(spec, run, alert) -> list[dict]:
    """``[{"fields": {field: value}, "count": documents}]``: the alert's documents in the window,
    counted by the cluster per distinct combination of ``summary_table_fields`` (a composite
    aggregation; documents without a field count under an empty value), at most ``max_rows``."""
    settings = spec.aggregation
    ev = _window_search(spec, run, "aggregation summary table")
    sources = [{f"f{i}": {"terms": {"field": field, "missing_bucket": True}}}
               for i, field in enumerate(settings.summary_table_fields)]
    aggs = {"rows": {"composite": {"size": settings.max_rows, "sources": sources}}}
    response = ev.search(ev.filters(extra=_group_clauses(spec, alert)), aggs=aggs)
    rows = []
    for bucket in ((response.get("aggregations") or {}).get("rows") or {}).get("buckets") or []:
        fields = {field: bucket["key"].get(f"f{i}") for i, field in enumerate(settings.summary_table_fields)}
        rows.append({"fields": fields, "count": bucket["doc_count"]})
    return rows


def aggregate(spec, run, alerts: list) -> list:
    """Collect ``alerts`` into the pending aggregations and return the summaries now due.

    Each summary is an ``Alert`` whose ``matches`` are the collected alerts (JSON: ``group``,
    ``count``, ``value``, ``time``, ``fields``) and whose ``summary_table`` is a text table.
    """

    settings = spec.aggregation
    now = run.scheduled_time
    pending = run.rule_state.setdefault("aggregation", {})
    for alert in alerts:
        first = alert.hits[0] if alert.hits else {}
        agg_key = key_of(_agg_value(spec, alert, first) if settings.key else None)
        entry = pending.setdefault(agg_key, {"start": format_iso_millis(now), "alerts": []})
        fields = {name: (alert.group if name == spec.group_by else field_value(first, name))
                  for name in settings.summary_table_fields}
        if len(entry["alerts"]) < settings.max_rows:
            rows = table_rows(spec, run, alert) if settings.summary_table_fields else []
            entry["alerts"].append({"group": alert.group, "count": alert.count, "value": alert.value,
                                    "time": format_iso_millis(now), "fields": fields, "rows": rows,
                                    "details": alert.details})
        else:
            entry["dropped"] = entry.get("dropped", 0) + 1
    due = []
    for agg_key in sorted(pending):
        entry = pending[agg_key]
        if parse_instant(entry["start"]) + settings.period > now:
            continue
        del pending[agg_key]
        collected = entry["alerts"]
        group = None if agg_key == WHOLE_RULE else agg_key
        due.append(Alert(group=group, count=sum(int(a.get("count") or 0) for a in collected), value=len(collected),
                         hits=[], payload={"aggregation": entry}, matches=collected,
                         summary_table=summary_table(settings.summary_table_fields, collected),
                         details={"aggregation_start": entry["start"], "omitted": entry.get("dropped", 0)},
                         sequence=f"aggregate:{agg_key}:{entry['start']}"))
    return due


def _agg_value(spec, alert, first: dict) -> Any:
    if spec.aggregation.key == spec.group_by:
        return alert.group
    return field_value(first, spec.aggregation.key)


def summary_table(fields: list[str], collected: list[dict]) -> str:
    """A Markdown table: one row per distinct combination of ``fields`` with its number of
    documents, summed over the collected alerts (ElastAlert2's summary table counts matches per
    combination the same way); most documents first; empty without fields."""
    if not fields:
        return ""
    counts: dict[tuple, int] = {}
    for item in collected:
        for row in item.get("rows") or []:
            key = tuple("" if row["fields"].get(f) is None else str(row["fields"].get(f)) for f in fields)
            counts[key] = counts.get(key, 0) + int(row.get("count") or 0)
    header = [*fields, "count"]
    rows = [[*row, str(count)] for row, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def silence_until(duration: str, now: dt.datetime) -> dt.datetime:
    """``--for 2h`` → ``now`` + the rule duration, aware UTC.

    Raises:
        ValueError: not a rule duration (``30m``, ``2h``, ``1d``) greater than zero.
    """

    try:
        return (now + parse_rule_duration(duration)).astimezone(dt.timezone.utc)
    except DurationError as error:
        raise ValueError(str(error)) from None
    except OverflowError:  # past year 9999
        raise ValueError(f"expected a duration that ends before the year 10000, found {duration!r}") from None
