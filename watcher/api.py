"""The public Python API: load definitions, execute a watch or rule at given times, read status and
history. The command line uses it, and so will the HTTP API; everything else in the package is
internal and may move.

Times are aware datetimes in UTC (naive values are refused); durations are seconds. Nothing here
prints; warnings go to the ``watcher.*`` loggers. Errors: :class:`watcher.errors.DefinitionProblem` subclasses for bad files (as problems in
the result of :func:`load`, never raised for one bad file), the Elasticsearch client's exceptions
for cluster errors (:func:`watcher.es.client.cluster_error_class` says which are transient).

Example — dry-run one rule against the cluster named by ``ES_URL``::

    import datetime as dt
    import watcher

    loaded = watcher.load(["rules/"])
    es = watcher.connect()
    record = watcher.execute(loaded.watches["ssh-bruteforce"], es, connectors=loaded.connectors)
    print(record["state"], record["result"]["condition"]["met"])
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from elasticsearch import Elasticsearch

from watcher.definitions.cluster_checks import FieldNote, FieldWarning, resolve_group_fields, template_field_warnings
from watcher.definitions.load import LoadResult, load_paths
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.es import history as history_index
from watcher.es.client import ConnectionSettings, make_client
from watcher.es.state import StateStore, WatchState
from watcher.model.status import WatchStatus
from watcher.model.watch import Watch
from watcher.schedule import next_fire
from watcher.support.datemath import utc_now_millis

__all__ = ["ActionMode", "FieldNote", "FieldWarning", "LoadResult", "Watch", "WatchState", "backtest", "check_fields",
           "connect", "execute", "history", "load", "record", "save_status", "saved_state", "schedule_times", "status",
           "template_warnings"]

ActionMode = Literal["simulate", "execute", "skip"]
"""``simulate``: render every action, send nothing (dry-run); ``execute``: send now; ``skip``: do not
run actions (Watcher's execute API modes, ``_all`` form)."""

MAX_SCHEDULED_TIMES = 100_000


def load(paths: Iterable[str | Path], *, connectors: str | Path | None = None) -> LoadResult:
    """Load rule and watch files (directories are listed) and the connectors file.

    Args:
        paths: files or directories (``*.yaml``, ``*.yml``, ``*.json``).
        connectors: the connectors file; default ``connectors.yaml`` beside the first path.

    Returns:
        ``LoadResult``: ``watches`` (``{id: Watch}``, every good file), ``connectors``
        (``{name: Connector}``) and ``problems`` (each with file, line, column, field and message).
        A bad file never hides the others.
    """
    return load_paths(list(paths), connectors_path=connectors)


def check_fields(loaded: LoadResult, es: Elasticsearch) -> list[FieldNote]:
    """Check the loaded rules' ``group_by`` fields against the cluster's mappings: a ``text`` field
    is replaced by its aggregatable ``.keyword`` sub-field (one note each), a field the cluster
    cannot aggregate on makes its rule a problem of ``loaded`` (docs/correctness.md).

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    return resolve_group_fields(loaded, es)


def template_warnings(loaded: LoadResult, es: Elasticsearch) -> list[FieldWarning]:
    """The document fields the loaded rules' templates read (``hits[0].clientip``…) that no index
    they search maps: each would render as ``<MISSING VALUE>`` unless the documents carry it anyway.

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    return template_field_warnings(loaded, es)


def connect(settings: ConnectionSettings | None = None) -> Elasticsearch:
    """An Elasticsearch client; ``settings`` default to the environment (``ES_URL``, ``ES_API_KEY`` or
    ``ES_USERNAME``/``ES_PASSWORD``, ``ES_CA_CERTS``).

    Raises:
        ValueError: the environment holds an invalid setting (the message names it).
    """
    return make_client(settings or ConnectionSettings.from_env())


def saved_state(es: Elasticsearch, watch: Watch, *, index_prefix: str = "watcher") -> WatchState | None:
    """The daemon's saved state of ``watch`` (status, rule state, silences), or None when there is
    none or it cannot be read (no state index yet, no rights)."""
    try:
        return StateStore(es, index_prefix).load(watch.id)
    except Exception:  # read-only convenience: no state is an answer, not an error
        return None


def schedule_times(watch: Watch, first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """The scheduled times of ``watch`` in ``[first, last]`` (aware UTC).

    Calendar and cron schedules: their fire times at or after ``first`` (``first`` itself only when
    it is one). Interval schedules: ``first``, ``first + every``, … — Watcher anchors an interval at
    the watch's registration, which ``first`` stands for.

    Raises:
        ValueError: more than :data:`MAX_SCHEDULED_TIMES` times in the range.
    """
    _aware(first, "first")
    _aware(last, "last")
    if watch.trigger.kind == "interval":
        times, current = ([first] if first <= last else []), first
    else:  # next_fire is strictly after: one millisecond back lets a fire time at `first` count
        times, current = [], first - dt.timedelta(milliseconds=1)
    while True:
        current = next_fire(watch.trigger, current, anchor=first)
        if current is None or current > last:
            return times
        times.append(current)
        if len(times) > MAX_SCHEDULED_TIMES:
            raise ValueError(f"the range holds more than {MAX_SCHEDULED_TIMES} scheduled times")


def execute(watch: Watch, es: Elasticsearch | None, *, at: dt.datetime | None = None,
            action_mode: ActionMode = "simulate", connectors: Mapping[str, Any] | None = None,
            state: WatchState | None = None) -> dict:
    """Execute ``watch`` once, as scheduled at ``at`` (default now), and return its watch record.

    Args:
        es: the cluster the inputs query (None only for watches that need none).
        action_mode: see :data:`ActionMode`; ``simulate`` sends nothing.
        connectors: ``{name: Connector}`` the actions name (``load(...).connectors``).
        state: a saved state to start from (rule state and silences; see :func:`saved_state`).

    Returns:
        The watch record (Watcher's ``watch_record`` shape; ``state`` is ``failed`` when the input,
        condition or a cluster call failed — the reason is in the record).
    """
    if at is not None:
        _aware(at, "at")
    return backtest(watch, es, [at or utc_now_millis()], action_mode=action_mode,
                    connectors=connectors, state=state)[0]


def backtest(watch: Watch, es: Elasticsearch | None, times: Sequence[dt.datetime], *,
             action_mode: ActionMode = "simulate", connectors: Mapping[str, Any] | None = None,
             state: WatchState | None = None, status: WatchStatus | None = None,
             progress: Callable[[Sequence[dt.datetime]], Any] | None = None) -> list[dict]:
    """Execute ``watch`` at each of ``times`` in order, as a manual execution; one record per time.

    The throttle/ack status and the rule state (new_term baselines, firing keys, pending
    aggregations…) carry from one time to the next, so a backtest alerts as the daemon would have.

    Args:
        times: scheduled times, aware UTC (e.g. :func:`schedule_times`).
        status: the throttle/ack status to start from (a copy is used; e.g. ``saved_state(...).status``
            to throttle as the daemon would); default a fresh one.
        progress: wraps ``times`` for display (a context manager yielding an iterable, such as
            ``click.progressbar``); default none.
    """
    for time in times:
        _aware(time, "times")
    services = Services(es=es, connectors=dict(connectors or {}))
    status = copy.deepcopy(status) if status is not None else WatchStatus()
    rule_state = copy.deepcopy(state.rule_state) if state is not None else {}
    silences = dict(state.silences) if state is not None else {}
    deliveries = {"simulate": Simulate(), "execute": SendNow()}
    options = ExecuteOptions(action_modes={"_all": action_mode}, trigger_type="manual")
    records = []
    with (progress(times) if progress is not None else _Plain(times)) as ticks:
        for tick in ticks:
            run = Run(watch=watch, execution_time=tick, triggered_time=tick, scheduled_time=tick, services=services,
                      rule_state=rule_state, silences=silences)
            records.append(execute_watch(watch, run, status, deliveries, options))
            rule_state = run.rule_state
    return records


def status(es: Elasticsearch, *, index_prefix: str = "watcher") -> dict[str, WatchState]:
    """Every watch's saved state (``{watch id: WatchState}``: active, last checked/met, per-action
    throttle and ack state, rule state, silences), as the daemon keeps it in ``<prefix>-state``."""
    return StateStore(es, index_prefix).load_all()


def history(es: Elasticsearch, watch_id: str, *, index_prefix: str = "watcher", size: int = 20,
            state: str | None = None) -> list[dict]:
    """The newest watch records of ``watch_id`` first (``<prefix>-history-*``); ``state`` keeps only
    records in that state (``executed``, ``execution_not_needed``, ``throttled``, ``failed``…)."""
    return history_index.recent_records(es, index_prefix, watch_id, size, state)


def record(es: Elasticsearch, watch_records: Iterable[dict], *, index_prefix: str = "watcher") -> list[str]:
    """Write watch records to the history (``<prefix>-history-YYYY.MM.DD`` of each execution day),
    searchable when this returns; the index name of each, in order."""
    history_index.ensure_template(es, index_prefix)
    return [history_index.write_record(es, index_prefix, item, refresh="wait_for") for item in watch_records]


def save_status(es: Elasticsearch, watch_id: str, before: WatchState | None, records: Sequence[dict], *,
                index_prefix: str = "watcher") -> WatchState | None:
    """Save the status the last of ``records`` left (throttle, ack state, last checked/met) as the
    watch's status, as Watcher's ``record_execution`` does (docs/watcher-api.md#execute): with
    optimistic concurrency, keeping an ack or (de)activation saved meanwhile; progress, rule state
    and silences are not changed. None when there is no record.

    Args:
        before: the state the executions started from (:func:`saved_state`; None: never saved).

    Raises:
        watcher.es.state.StateConflict: the state kept changing.
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    if not records:
        return None
    store = StateStore(es, index_prefix)
    store.ensure()
    return store.save_status(watch_id, before, WatchStatus.from_json(records[-1].get("status")))


@dataclasses.dataclass
class _Plain:
    value: Sequence[dt.datetime]

    def __enter__(self) -> Sequence[dt.datetime]:
        return self.value

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


def _aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name}: expected an aware datetime (UTC), found a naive one: {value.isoformat()}")
