"""The daemon (``watcher run``): the finished pieces wired into one long-running service (issue 5).

Start-up: connect (waiting for the cluster with backoff, never crashing) → history template,
state index, outbox index → load the definitions (problems logged as ``file:line:column``; the good
ones run) → outbox worker, HTTP server (``/healthz``, ``/metrics``, the API; made by the caller's ``server_factory``), scheduler → hot reload.

Each tick (:meth:`Daemon.on_tick`):

1. Load the watch's state fresh from Elasticsearch, so ``watcher ack`` / ``deactivate`` done by the
   CLI take effect at the next tick. Inactive → no execution, no record (progress moves on, so a
   re-activated watch does not replay the time it was off).
2. Work out the ticks missed since the last fully evaluated scheduled time (**progress**, kept in
   the state's ``last_window_end``: ``scheduled − delay`` for rules, ``scheduled`` itself for
   watches, which have no delay), at most ``max_catch_up`` of them, and run them oldest first
   before the current one — so a restart or a cluster outage leaves no window unchecked and checks
   none twice.
   Each of those missed ticks is a **catch-up** run (and so is a tick that starts after the next one
   was already due, e.g. behind a slow run): it is throttled as if it had started on time (its
   scheduled time plus the watch's start offset, :func:`catch_up_on_time`) and its record says it
   was a catch-up (docs/correctness.md#catch-up-runs); realert, silences and aggregation already
   go by scheduled time.
3. Each execution gets a deterministic record id (:func:`record_id_for`: uuid5 of watch id and
   scheduled time), so re-running a tick (after a crash or a cluster error) produces the same
   outbox delivery ids, which the outbox writes only once.
4. Execute with the outbox as the ``execute`` delivery, write the record to history, save status
   and progress with optimistic concurrency (:func:`merge_state` on conflict: a CLI ack or
   (de)activation made meanwhile is never lost), feed the metrics.

A transient cluster error (connection refused, timeout, 429, 5xx, node restart — issue 5, item 6 —
and a search answered from only some shards, which a rule does not accept unless it has
``allow_partial_results``) never crashes the daemon, never disables a watch and never counts as a
condition met: the record says ``failed`` with the reason (written if the cluster takes it),
progress is **not** advanced, and the same window is run again at the next tick.

The warnings of each run (``result.warnings``: partial answers, truncated groups…) are saved in the
watch state (``warnings``, with the run's scheduled time) by every completed run (an empty list when
it had none) and by a failed run that has some (a partial answer; progress is not advanced), so
``watcher status`` shows why a watch is stuck or unsure.

Interval schedules are anchored on whole milliseconds (records and state keep milliseconds), and a
watch with saved progress is re-anchored on it at start-up, so its ticks keep their phase across
restarts and the catch-up windows join the previous ones exactly.

Shutdown (:meth:`Daemon.shutdown`, on SIGTERM/SIGINT): stop hot reload and the scheduler (no new
tick; running ones get the grace period), stop the outbox (sends in flight get the rest of the
grace period; everything else stays ``pending`` in the outbox for the next start), stop the HTTP
server.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from watcher.daemon import logs
from watcher.daemon.events import EventWriter, delivery_event, run_events
from watcher.daemon.metrics import Metrics
from watcher.daemon.reload import FileWatcher, plan_reload, watched_folders
from watcher.daemon.scheduler import Scheduler, missed_ticks, registration_phase
from watcher.daemon.stored import StoredWatches, WatchIdTaken
from watcher.definitions.cluster_checks import resolve_group_fields, template_field_warnings
from watcher.definitions.load import default_connectors_path, load_paths
from watcher.delivery.direct import SendNow, Simulate
from watcher.delivery.outbox import Outbox
from watcher.delivery.retry import RetryPolicy
from watcher.delivery.secretkey import SecretKey, load_secret_key
from watcher.destinations import action_secrets
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.engine.perform import error_type
from watcher.errors import TransientClusterError
from watcher.es import history
from watcher.es.client import (ConnectionSettings, client_error_classes, cluster_error_class, make_client,
                               server_description)
from watcher.es.events import EventLog
from watcher.es.outbox_store import OutboxStore
from watcher.es.shards import PartialResultsError
from watcher.es.state import StateConflict, StateStore, WatchState
from watcher.es.watch_store import StoredWatch, WatchStore
from watcher.model.problems import DefinitionError, Problem
from watcher.model.secrets import mask_data
from watcher.model.status import WatchStatus, merge_status
from watcher.model.watch import Trigger, Watch
from watcher.support.datemath import format_iso_millis, utc_now_millis

__all__ = ["Daemon", "DaemonSettings", "RECORD_NAMESPACE", "TRANSIENT_ERROR_TYPES", "catch_up_on_time",
           "merge_state", "progress_of", "record_id_for", "state_warnings", "transient_reason", "window_end_of"]

LOG = logging.getLogger("watcher.daemon")
UTC = dt.timezone.utc

# Fixed namespace of record ids (uuid5): the same watch and scheduled time give the same id.
RECORD_NAMESPACE = uuid.UUID("0c7f5d8a-3b1e-5f42-9d6a-7a2e4c1b9e03")

# The error type an action records when its request could not be written to the outbox (which lives
# in the cluster): whatever the cause, the alert is lost unless the window is run again.
OUTBOX_UNAVAILABLE = "outbox_unavailable"


def _subclasses(root: type) -> list[type]:
    """Every subclass of ``root`` (not ``root`` itself), breadth first."""
    found, queue = [], list(root.__subclasses__())
    while queue:
        cls = queue.pop(0)
        found.append(cls)
        queue.extend(cls.__subclasses__())
    return found


def _transient_error_types() -> frozenset[str]:
    """The error ``type`` that :func:`~watcher.engine.perform.error_json` writes for each exception
    class of the Elasticsearch client that :func:`~watcher.es.client.cluster_error_class` calls
    transient (``connection_error``, ``connection_timeout``, ``transport_error``, ``sniffing_error``,
    ``api_error`` — 429 and 5xx), for each of our own :class:`~watcher.errors.TransientClusterError`
    classes (``partial_results_error``: :class:`~watcher.es.shards.PartialResultsError`), and
    :data:`OUTBOX_UNAVAILABLE`. Records are data: this is how a recorded error is traced back to
    the classification of its class."""
    ours = {*_subclasses(TransientClusterError), PartialResultsError}
    return frozenset({error_type(cls) for cls in client_error_classes()
                      if cluster_error_class(cls) is TransientClusterError}
                     | {error_type(cls) for cls in ours} | {OUTBOX_UNAVAILABLE})


TRANSIENT_ERROR_TYPES = _transient_error_types()
STATE_SAVE_ATTEMPTS = 5
MILLISECOND = dt.timedelta(milliseconds=1)


# --- pure helpers -------------------------------------------------------------------------------------

def record_id_for(watch_id: str, scheduled_time: dt.datetime) -> str:
    """The record id of the run of ``watch_id`` for ``scheduled_time``, in Watcher's form
    ``<watch_id>_<uuid>-<ISO time>``; deterministic (uuid5 over watch id and the time with
    milliseconds), so re-running a tick gives the same record id and thus the same outbox delivery
    ids. Watcher puts the execution time last; we put the scheduled time, which is what identifies
    the tick."""
    stamp = format_iso_millis(scheduled_time)
    name = watch_id + "\x1f" + stamp
    return f"{watch_id}_{uuid.uuid5(RECORD_NAMESPACE, name)}-{stamp}"


def _delay(watch: Watch) -> dt.timedelta:
    if watch.rule is None:
        return dt.timedelta(0)
    return getattr(watch.rule, "delay", None) or dt.timedelta(0)


def window_end_of(watch: Watch, scheduled_time: dt.datetime) -> dt.datetime:
    """What ``last_window_end`` stores after the run for ``scheduled_time``: ``scheduled − delay``
    for rules (the end of the window searched, ``[scheduled − window − delay, scheduled − delay)``),
    ``scheduled`` for watches."""
    return scheduled_time - _delay(watch)


def progress_of(watch: Watch, state: WatchState | None) -> dt.datetime | None:
    """The last scheduled time fully evaluated for ``watch`` (aware UTC), or None when never run:
    ``last_window_end + delay`` (the inverse of :func:`window_end_of`)."""
    if state is None or state.last_window_end is None:
        return None
    return state.last_window_end + _delay(watch)


def catch_up_on_time(trigger: Trigger, scheduled: dt.datetime, started: dt.datetime, *,
                     anchor: dt.datetime | None, offset: dt.timedelta = dt.timedelta(0),
                     missed: bool = False) -> dt.datetime | None:
    """When the run of the tick due at ``scheduled`` would have started had it run on time, if the run
    is a catch-up; None when it runs on time.

    A run is a catch-up when it replays a tick missed while the daemon was down, the cluster failed
    or a run was slow (``missed``: an earlier tick run before the current one), or when the
    schedule's next tick was already due when it started — it runs for a tick that is no longer the
    current one. Such a run is judged as if it had started on time (throttle periods,
    docs/correctness.md#catch-up-runs); Watcher itself never back-fills (docs/semantics.md#missed-schedules).

    Args:
        trigger: the watch's parsed trigger.
        scheduled: aware UTC; the tick's scheduled time.
        started: aware UTC; when the run starts (its execution time).
        anchor: the schedule's registration time (required for interval schedules).
        offset: the watch's start offset (:func:`watcher.daemon.scheduler.start_offset`).
        missed: the tick is one of the missed ticks run before the current one.

    Returns:
        ``scheduled + offset`` (aware UTC) for a catch-up, else None.

    Raises:
        ValueError / KeyError: as :func:`watcher.schedule.next_fire` (a trigger it cannot compute).
    """
    if missed or missed_ticks(trigger, scheduled, started, anchor, limit=1):
        return (scheduled + offset).astimezone(UTC)
    return None


def transient_reason(record: dict) -> str | None:
    """Why ``record`` failed because of the cluster (and must be retried), or None.

    Looks at the input's error, the record's ``exception`` and every action result (foreach and
    group items included) for an error type in :data:`TRANSIENT_ERROR_TYPES` — an action whose
    request could not be written to the outbox (``outbox_unavailable``) would otherwise lose its
    alert.
    """
    result = record.get("result") or {}
    candidates = [(result.get("input") or {}).get("error"), record.get("exception")]
    stack = list(result.get("actions") or [])
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            candidates.append(item.get("error"))
            stack.extend(item.get("foreach") or [])  # foreach items and rule groups
    for error in candidates:
        if isinstance(error, dict) and error.get("type") in TRANSIENT_ERROR_TYPES:
            return f"{error.get('type')}: {error.get('reason')}"
    return None


def state_warnings(record: dict, scheduled_time: dt.datetime) -> list[dict]:
    """The warnings of ``record`` (``result.warnings``) as the watch state keeps them: each with
    the run's ``scheduled_time`` (ISO-8601 UTC). Empty when the run had none."""
    stamp = format_iso_millis(scheduled_time)
    return [{**warning, "scheduled_time": stamp} for warning in (record.get("result") or {}).get("warnings") or []
            if isinstance(warning, dict)]


def merge_state(before: WatchState, ours: WatchState, fresh: WatchState | None) -> WatchState:
    """The state to save after a :class:`~watcher.es.state.StateConflict`.

    Args:
        before: the state as loaded before the run.
        ours: the state the run wants to save (new status and progress).
        fresh: the state stored now (reloaded after the conflict), or None if it was deleted.

    Returns:
        ``ours`` with, from ``fresh``: ``active``, ``silences`` (only the CLI writes them), and the ack state of every action whose ack
        state changed between ``before`` and ``fresh`` (an ack or un-ack by the CLI is kept, even when
        this run reset it); progress is the later of both; the version is ``fresh``'s so the save
        can succeed.
    """
    if fresh is None:
        return dataclasses.replace(ours, seq_no=None, primary_term=None)
    status = merge_status(before.status, ours.status, fresh.status)
    status.active = fresh.active  # the state's flag is authoritative (watcher.es.state)
    ends = [end for end in (ours.last_window_end, fresh.last_window_end) if end is not None]
    return dataclasses.replace(ours, status=status, active=fresh.active, last_window_end=max(ends) if ends else None,
                               silences=fresh.silences, seq_no=fresh.seq_no, primary_term=fresh.primary_term)


# --- settings -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class DaemonSettings:
    """How the daemon runs (``watcher run`` options).

    Attributes:
        connection: the cluster (``ConnectionSettings.from_env()``).
        rules: rule/watch directories or files.
        connectors: the connectors file (default ``connectors.yaml`` beside the first rules path).
        index_prefix: prefix of the history, state and outbox indices.
        http_host, http_port: where ``/healthz`` and ``/metrics`` listen (port 0 = any free port).
        workers: threads running ticks.
        max_catch_up: the most missed ticks of one watch run before its current one.
        grace_s: seconds in-flight executions and deliveries get at shutdown.
        jitter_s: largest start offset of a watch (:func:`watcher.daemon.scheduler.start_offset`).
        reload_debounce_ms: file changes within this window reload once.
        retry: the outbox's retry policy.
        outbox_poll_s: seconds between outbox polls for due and recovered deliveries.
        outbox_lease_s: seconds a claimed delivery stays claimed (at least the request's timeouts
            + 5 s); a delivery claimed by a process that died is sent again after it.
        health_interval_s: seconds between cluster probes (``/healthz``) and metric refreshes.
        backfill_from: aware; the progress assumed for a watch that has none saved yet (never
            run), so its first run catches up every tick after this time (at most
            ``max_catch_up``, the latest ones) — ``watcher run --backfill-from``, used by the demo
            to evaluate a freshly loaded range. Intervals are anchored on it, so the ticks are
            ``backfill_from + k·interval``. None (default): a new watch starts from now.
        events_retention: events older than this are deleted from the event log (docs/events.md#retention);
            None keeps them.
        secret_key: the deployment key naming secrets in the outbox
            (:mod:`watcher.delivery.secretkey`); every daemon on the same index prefix needs the
            same one. None (default): :func:`~watcher.delivery.secretkey.load_secret_key` at start
            (``WATCHER_SECRET_KEY_FILE``, ``WATCHER_SECRET_KEY``, else the state directory's key file).
    """

    connection: ConnectionSettings
    rules: tuple[str, ...] = ("rules",)
    connectors: str | None = None
    index_prefix: str = "watcher"
    http_host: str = "127.0.0.1"
    http_port: int = 9095
    workers: int = 64  # concurrent ticks are what make the _msearch batches (es/search_batch.py)
    max_catch_up: int = 100
    grace_s: float = 30.0
    jitter_s: float = 30.0
    reload_debounce_ms: int = 500
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    outbox_poll_s: float = 1.0
    outbox_lease_s: float = 60.0
    health_interval_s: float = 2.0
    backfill_from: dt.datetime | None = None
    events_retention: dt.timedelta | None = dt.timedelta(days=7)
    secret_key: SecretKey | None = None


# --- the daemon ---------------------------------------------------------------------------------------

class Daemon:
    """The long-running service; see the module docstring for what it does.

    Use :meth:`run` (blocks until :meth:`request_stop`, returns the exit code 0), or :meth:`start`
    / :meth:`shutdown` around your own wait. Thread-safe: ticks run on the scheduler's workers,
    reloads on the file watcher's thread, deliveries on the outbox's loop.

    Args:
        settings: :class:`DaemonSettings`.
        clock: now, aware UTC (records, state); truncated to milliseconds by default.
        server_factory: builds the HTTP server from the daemon (``watcher run`` passes one serving
            :func:`watcher.http.app.create_app`); it is started first and stopped last. None: no
            HTTP server (benchmarks, embedding).
    """

    def __init__(self, settings: DaemonSettings, *, clock: Callable[[], dt.datetime] = utc_now_millis,
                 server_factory: Callable[[Daemon], Any] | None = None):
        self.settings = settings
        self._server_factory = server_factory
        self.metrics = Metrics()
        self._clock = clock
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()
        self._watches: dict[str, Watch] = {}
        self._connectors: dict[str, Any] = {}
        self._problems: list[str] = []
        self._load_problems: list[Problem] = []
        self._files_bad: list[str] = []
        self._cluster_ok = False
        self._cluster_product: str | None = None  # "OpenSearch 2.19.6", once the cluster has answered
        self._scheduler_running = False
        self._outbox_depth: dict[str, int] = {}
        self.es = None
        self.services = None
        self.state = None
        self.stored = None
        self.outbox = None
        self.scheduler = None
        self.server = None
        self.file_watcher = None
        self._deliveries: dict[str, Any] = {}
        self._secret_values: tuple[str, ...] = ()
        self.events = EventWriter(self.metrics, retention=settings.events_retention)

    # -- lifecycle ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (signal handlers call this; safe from any thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        """Start, serve until :meth:`request_stop`, shut down. Returns the exit code (0)."""
        try:
            if self.start():
                while not self._stop.wait(self.settings.health_interval_s):
                    self._maintain()
        finally:
            self.shutdown()
        return 0

    def start(self) -> bool:
        """Start every part (module docstring). Returns False when a stop was requested before
        the daemon was up (e.g. SIGTERM while waiting for the cluster)."""

        s = self.settings
        key = s.secret_key or load_secret_key()
        self.es = make_client(s.connection)
        self.services = Services(es=self.es, connectors={}, clock=self._clock, history_prefix=s.index_prefix)
        self.state = StateStore(self.es, s.index_prefix, clock=self._clock)
        self.stored = StoredWatches(WatchStore(self.es, s.index_prefix, clock=self._clock))
        if self._server_factory is not None:  # first, so that /healthz answers while the cluster is awaited
            self.server = self._server_factory(self)
            self.server.start()
        LOG.info("watcher daemon starting: cluster %s, index prefix %s, rules %s", ", ".join(s.connection.urls),
                 s.index_prefix, ", ".join(s.rules))
        if not self._with_cluster_retry("reach the cluster", self._probe_or_raise):
            return False
        if not self._with_cluster_retry("create the indices", self._ensure_indices):
            return False
        self._apply_load(self._load(), initial=True)
        self.events.start(EventLog(self.es, s.index_prefix))
        LOG.info("outbox secret placeholders are keyed with the deployment key from %s (key id %s)", key.origin,
                 key.key_id)
        self.outbox = Outbox(self.es, s.index_prefix, policy=s.retry, secrets_provider=self._secrets,
                             poll_interval_s=s.outbox_poll_s, lease_s=s.outbox_lease_s, on_event=self._on_outbox_event,
                             secret_key=key)
        self._deliveries = {"simulate": Simulate(), "execute": self.outbox}
        self.outbox.start()
        self.scheduler = Scheduler(self.on_tick, workers=s.workers, jitter_s=s.jitter_s,
                                   max_catch_up=s.max_catch_up, clock=self._clock)
        states = self._with_cluster_retry("load the watch states", self.state.load_all) or {}
        for watch in self._watches.values():
            if watch.active:
                self._schedule(watch, states.get(watch.id))
        self.scheduler.start()
        self._scheduler_running = True
        for watch_id in self.scheduler.watch_ids():
            self._catch_up_at_start(watch_id, states.get(watch_id))
        connectors_path = s.connectors or default_connectors_path(s.rules)
        self.file_watcher = FileWatcher(watched_folders(s.rules, connectors_path), self.reload,
                                        debounce_ms=s.reload_debounce_ms)
        self.file_watcher.start()
        self._maintain()
        LOG.info("watcher daemon running: %d watches scheduled, %d invalid files", len(self.scheduler.watch_ids()),
                 len(self._files_bad))
        return True

    def shutdown(self) -> None:
        """Stop taking ticks, let in-flight executions and deliveries finish within the grace
        period, leave pending deliveries in the outbox, stop the HTTP server. Idempotent."""
        deadline = time.monotonic() + self.settings.grace_s
        LOG.info("watcher daemon stopping (grace %.0fs)", self.settings.grace_s)
        if self.file_watcher is not None:
            self.file_watcher.stop()
            self.file_watcher = None
        if self.scheduler is not None:
            self._scheduler_running = False
            idle = self.scheduler.shutdown(wait=True, grace_s=max(0.0, deadline - time.monotonic()))
            if not idle:
                LOG.warning("executions still running at the end of the grace period; their ticks run "
                            "again at the next start")
            self.scheduler = None
        if self.outbox is not None:
            self.outbox.stop(grace_s=max(0.5, deadline - time.monotonic()))
            self.outbox = None
        self.events.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.es is not None:
            self.es.close()
            self.es = None
        LOG.info("watcher daemon stopped")

    # -- cluster -------------------------------------------------------------------------------------

    def _probe_or_raise(self) -> bool:
        self.es.options(request_timeout=5, max_retries=0).cluster.health()
        if self._cluster_product is None:
            self._cluster_product = server_description(self.es)
            LOG.info("cluster: %s", self._cluster_product)
        self._cluster_ok = True
        return True

    def _probe(self) -> bool:
        try:
            self._probe_or_raise()
        except Exception:
            self._cluster_ok = False
        return self._cluster_ok

    def _ensure_indices(self) -> bool:
        history.ensure_template(self.es, self.settings.index_prefix)
        self.state.ensure()
        OutboxStore(self.es, self.settings.index_prefix).ensure()
        self.stored.store.ensure()
        EventLog(self.es, self.settings.index_prefix).ensure()
        return True

    def _with_cluster_retry(self, what: str, step: Callable[[], Any]) -> Any:
        """Run ``step`` until it returns without raising (backoff 0.5 s doubling to 30 s) and return
        its result; None when a stop was requested first."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                return step()
            except Exception as error:
                self._cluster_ok = False
                LOG.warning("could not %s (%s: %s); retrying in %.1fs", what, type(error).__name__, error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
        return None

    # -- definitions ---------------------------------------------------------------------------------

    def _load(self):
        result = load_paths(self.settings.rules, connectors_path=self.settings.connectors)
        try:
            for note in resolve_group_fields(result, self.es):
                LOG.warning("%s", note)
            for warning in template_field_warnings(result, self.es):
                LOG.warning("%s", warning)
        except Exception as error:  # the cluster is away: the rules run as written, their searches will say
            LOG.warning("could not check the rules' group_by fields against the cluster: %s", error)
        self._poll_stored()
        self.stored.merge(result)
        return result

    def _apply_load(self, result, initial: bool = False):
        """Take a load result: log problems, update connectors and secrets; returns the reload plan."""

        connectors = dict(result.connectors)
        if result.connectors_file and result.connectors_file in result.files_bad:
            connectors = {**self._connectors, **connectors}  # keep the last good version of each connector
        for connector in connectors.values():
            logs.add_secrets(getattr(connector, "secrets", ()))
        for problem in result.problems:
            LOG.error("%s", problem)
        plan = plan_reload({} if initial else self._watches, result)
        self._secret_values = self._known_secrets(connectors, plan.watches)
        self._connectors = connectors
        self.services.connectors = connectors
        self._problems = [str(problem) for problem in result.problems]
        self._load_problems = list(result.problems)
        self._files_bad = list(result.files_bad)
        self._watches = plan.watches
        self._set_watch_counts()
        return plan

    def reload(self, changed: Iterable[str] = ()) -> None:
        """Reload every definition and apply the differences: added watches are scheduled, removed
        ones unscheduled (their state is kept), changed ones swapped (the trigger replaced; the
        anchor kept when the schedule is the same); a file that turned bad keeps the last good
        version of its watches. Called by the file watcher; safe to call by hand."""
        with self._reload_lock:
            if self.scheduler is None or self._stop.is_set():
                return
            old = self._watches
            plan = self._apply_load(self._load())
            for watch_id in plan.removed:
                self._unschedule(watch_id)
            for watch_id in plan.changed:
                watch = plan.watches[watch_id]
                if watch_id in self.scheduler:
                    if watch.active:
                        self.scheduler.replace(watch_id, watch.trigger)
                    else:
                        self._unschedule(watch_id)
                elif watch.active:
                    self._schedule(watch, self._state_or_none(watch_id))
            for watch_id in plan.added:
                watch = plan.watches[watch_id]
                if watch.active:
                    self._schedule(watch, self._state_or_none(watch_id))
            self._set_watch_counts()
            LOG.info("definitions reloaded: %d added, %d changed, %d removed, %d kept at their last good version"
                     " (files changed: %s)", len(plan.added), len(plan.changed), len(plan.removed), len(plan.kept),
                     ", ".join(sorted(changed)) or "-",
                     extra={"added": plan.added, "changed": plan.changed, "removed": plan.removed, "kept": plan.kept})
            del old

    def _state_or_none(self, watch_id: str) -> WatchState | None:
        try:
            return self.state.load(watch_id)
        except Exception as error:
            LOG.warning("could not load the state of %s (%s); scheduling it from now", watch_id, error)
            return None

    def _progress(self, watch: Watch, state: WatchState | None) -> dt.datetime | None:
        """:func:`progress_of`, or ``settings.backfill_from`` for a watch without saved progress."""
        progress = progress_of(watch, state)
        if progress is None and self.settings.backfill_from is not None:
            return self.settings.backfill_from.astimezone(UTC)
        return progress

    def _schedule(self, watch: Watch, state: WatchState | None) -> None:
        progress = self._progress(watch, state)
        anchor = None
        if watch.trigger.kind == "interval":
            if progress is not None:  # re-anchor on the last evaluated tick: the phase survives restarts
                anchor = progress
            elif self.settings.jitter_s > 0:  # watches loaded together are phased over their period
                anchor = self._clock() - registration_phase(watch.id, watch.trigger.config.every)
        self.scheduler.add(watch.id, watch.trigger, anchor)

    def _unschedule(self, watch_id: str) -> None:
        if self.scheduler is not None and watch_id in self.scheduler:
            self.scheduler.remove(watch_id)

    def _catch_up_at_start(self, watch_id: str, state: WatchState | None) -> None:
        """Queue the latest tick missed while the daemon was down; its run catches up the older ones."""

        watch = self._watches.get(watch_id)
        progress = self._progress(watch, state) if watch is not None else None
        if progress is None or (state is not None and not state.active):
            return
        try:
            missed = missed_ticks(watch.trigger, progress, self._clock(), self.scheduler.anchor(watch_id), limit=1)
        except Exception as error:
            LOG.warning("could not compute the missed ticks of %s: %s", watch_id, error)
            return
        if missed:
            self.scheduler.submit(watch_id, missed[-1])

    def _secrets(self) -> tuple[str, ...]:
        """The outbox's ``secrets_provider``: :meth:`_known_secrets` as of the last (re)load (the
        same tuple until the next one, so the outbox computes their digests once per load)."""
        return self._secret_values

    @staticmethod
    def _known_secrets(connectors: dict[str, Any], watches: dict[str, Watch]) -> tuple[str, ...]:
        """Every secret a delivery of these definitions can hold, known without running them: the
        connectors' and the ones written in the watches' own actions (an inline basic-auth password,
        :func:`watcher.destinations.action_secrets`), files and stored watches alike. The latter are
        also hidden from the log (docs/correctness.md#secret-placeholders)."""
        inline = [secret for watch in watches.values() for action in watch.actions
                  for secret in action_secrets(action.type, action.config)]
        logs.add_secrets(inline)
        return tuple(dict.fromkeys([*(secret for connector in connectors.values()
                                      for secret in getattr(connector, "secrets", ())), *inline]))

    # -- ticks ---------------------------------------------------------------------------------------

    def on_tick(self, watch_id: str, scheduled_time: dt.datetime, triggered_time: dt.datetime) -> None:
        """Run ``watch_id`` for ``scheduled_time``, after the ticks it missed (module docstring).

        Args:
            watch_id: the watch.
            scheduled_time, triggered_time: aware UTC (the nominal fire time; when the run started).
        """
        watch = self._watches.get(watch_id)
        if watch is None or self._stop.is_set():
            return
        try:
            state = self.state.load(watch_id) or WatchState(watch_id)
        except Exception as error:
            self._transient_failure(watch, scheduled_time, triggered_time, f"{type(error).__name__}: {error}")
            return
        if not state.active:
            self._skip_inactive(watch, state, scheduled_time)
            return
        progress = self._progress(watch, state)
        if progress is not None and scheduled_time - progress < MILLISECOND:
            return  # already evaluated (a catch-up run covered it)
        for tick in self._ticks_to_run(watch, progress, scheduled_time):
            if self._stop.is_set():
                return
            state = self._execute(watch, state, tick, triggered_time, missed=tick < scheduled_time)
            if state is None:
                return  # failed transiently: the rest waits for the next tick, in order

    def _ticks_to_run(self, watch: Watch, progress: dt.datetime | None, scheduled: dt.datetime) -> list[dt.datetime]:
        if progress is None:
            return [scheduled]
        limit = self.settings.max_catch_up
        try:
            anchor = self.scheduler.anchor(watch.id) if self.scheduler is not None else scheduled
            due = missed_ticks(watch.trigger, progress, scheduled, anchor, limit=limit + 1)
        except Exception as error:
            LOG.warning("could not compute the missed ticks of %s: %s", watch.id, error)
            return [scheduled]
        earlier = [tick for tick in due if tick < scheduled and tick - progress >= MILLISECOND][-limit:]
        if len(earlier) == limit:
            LOG.warning("watch %s missed %d or more ticks since %s; catching up on the latest %d", watch.id, limit,
                        format_iso_millis(progress), limit, extra={"watch_id": watch.id})
        elif earlier:
            LOG.info("watch %s catching up %d missed ticks since %s", watch.id, len(earlier),
                     format_iso_millis(progress), extra={"watch_id": watch.id})
        return [*earlier, scheduled]

    def _execute(self, watch: Watch, state: WatchState, scheduled: dt.datetime,
                 triggered: dt.datetime, missed: bool = False) -> WatchState | None:
        """One execution: run, record, save. Returns the saved state, or None when the cluster
        failed (nothing advanced; the tick runs again later). ``missed``: a missed tick run before
        the current one (a catch-up, :func:`catch_up_on_time`)."""

        status = copy.deepcopy(state.status)
        started = self._clock()
        run = Run(watch=watch, execution_time=started, triggered_time=triggered, scheduled_time=scheduled,
                  services=self.services, record_id=record_id_for(watch.id, scheduled),
                  rule_state=copy.deepcopy(state.rule_state), silences=dict(state.silences),
                  on_time=self._on_time(watch, scheduled, started, missed))
        try:
            record = execute_watch(watch, run, status, self._deliveries, ExecuteOptions())
        except Exception as error:  # the pipeline turns errors into results; this is a bug guard
            LOG.exception("execution of %s raised", watch.id, extra={"watch_id": watch.id})
            self._transient_failure(watch, scheduled, triggered, f"{type(error).__name__}: {error}")
            return None
        reason = transient_reason(record)
        if reason is None and record.get("state") == "failed" and not self._probe():
            reason = "the cluster is unreachable"
        warnings = state_warnings(record, scheduled)
        if reason is not None:
            self._mark_transient(record, reason)
            self._write_record(record, best_effort=True)
            self.metrics.executions.labels(watch=watch.id, state="failed").inc()
            self.events.emit(run_events(record))
            LOG.warning("watch %s at %s failed on a cluster error; the window will be retried: %s", watch.id,
                        format_iso_millis(scheduled), reason, extra={"watch_id": watch.id, "record_id": run.record_id})
            if warnings:  # the cluster answered (a partial answer): say why in the state, progress unchanged
                try:
                    self._save(watch, state, dataclasses.replace(state, warnings=warnings))
                except Exception as error:
                    LOG.debug("warnings of %s not saved: %s", watch.id, error)
            return None
        self._write_record(record, best_effort=True)
        try:
            saved = self._save(watch, state, dataclasses.replace(state, status=status, rule_state=run.rule_state,
                                                                 last_window_end=window_end_of(watch, scheduled),
                                                                 warnings=warnings))
        except Exception as error:
            LOG.warning("could not save the state of %s after %s (%s); the tick runs again", watch.id,
                        format_iso_millis(scheduled), error, extra={"watch_id": watch.id})
            return None
        self.metrics.observe_record(record)
        self.events.emit(run_events(record))
        LOG.info("watch %s at %s: %s%s", watch.id, format_iso_millis(scheduled), record.get("state"),
                 " (catch-up)" if run.catch_up else "",
                 extra={"watch_id": watch.id, "record_id": run.record_id, **({"catch_up": True} if run.catch_up else {})})
        return saved

    def _on_time(self, watch: Watch, scheduled: dt.datetime, started: dt.datetime, missed: bool) -> dt.datetime | None:
        """:func:`catch_up_on_time` with the watch's anchor and start offset from the scheduler; a
        schedule it cannot compute leaves the current tick on time, with a WARNING."""
        anchor, offset = scheduled, dt.timedelta(0)
        if self.scheduler is not None and watch.id in self.scheduler:
            with contextlib.suppress(KeyError):  # unscheduled meanwhile (a reload removed it)
                anchor, offset = self.scheduler.anchor(watch.id), self.scheduler.offset(watch.id)
        try:
            return catch_up_on_time(watch.trigger, scheduled, started, anchor=anchor, offset=offset, missed=missed)
        except Exception as error:  # a schedule next_fire cannot compute: say so, judge the run as on time
            LOG.warning("could not tell whether watch %s at %s is a catch-up (%s); its throttle is measured from "
                        "its execution time", watch.id, format_iso_millis(scheduled), error,
                        extra={"watch_id": watch.id})
            return None  # (a missed tick never gets here: it is a catch-up without computing anything)

    def _save(self, watch: Watch, before: WatchState, ours: WatchState) -> WatchState:
        for _ in range(STATE_SAVE_ATTEMPTS):
            try:
                return self.state.save(ours)
            except StateConflict:
                fresh = self.state.load(watch.id)
                ours = merge_state(before, ours, fresh)
                before = fresh or before
        raise StateConflict(f"state of {watch.id} kept changing; gave up after {STATE_SAVE_ATTEMPTS} tries")

    def _skip_inactive(self, watch: Watch, state: WatchState, scheduled: dt.datetime) -> None:
        end = window_end_of(watch, scheduled)
        if state.last_window_end is not None and state.last_window_end >= end:
            return
        try:  # a conflict means the CLI just changed it: that version wins, progress waits a tick
            self.state.save(dataclasses.replace(state, last_window_end=end))
        except Exception as error:
            LOG.debug("progress of inactive watch %s not saved: %s", watch.id, error)

    def _transient_failure(self, watch: Watch, scheduled: dt.datetime, triggered: dt.datetime, reason: str) -> None:
        now = self._clock()
        record = {
            "_id": record_id_for(watch.id, scheduled), "watch_id": watch.id, "node": "watcher", "state": "failed",
            "@timestamp": format_iso_millis(triggered),
            "trigger_event": {"type": "schedule", "triggered_time": format_iso_millis(triggered),
                              "schedule": {"scheduled_time": format_iso_millis(scheduled)}},
            "input": watch.input.definition(), "condition": watch.condition.definition(),
            "metadata": watch.metadata,
            "result": {"execution_time": format_iso_millis(now), "execution_duration": 0},
            "messages": [],
        }
        self._mark_transient(record, reason)
        self._write_record(record, best_effort=True, quick=True)
        self.metrics.executions.labels(watch=watch.id, state="failed").inc()
        self.events.emit(run_events(record))
        LOG.warning("watch %s at %s not run: cluster error (%s); the window will be retried", watch.id,
                    format_iso_millis(scheduled), reason, extra={"watch_id": watch.id})

    @staticmethod
    def _mark_transient(record: dict, reason: str) -> None:
        record["state"] = "failed"
        record["messages"] = [*record.get("messages", []),
                              f"cluster error, the window will be retried on the next tick: {reason}"]

    def _write_record(self, record: dict, best_effort: bool, quick: bool = False) -> None:
        client = self.es.options(request_timeout=5, max_retries=0) if quick else self.es
        try:
            history.write_record(client, self.settings.index_prefix, record)
        except Exception as error:
            if not best_effort:
                raise
            LOG.warning("could not write record %s to history: %s", record.get("_id"), error,
                        extra={"watch_id": record.get("watch_id")})

    # -- stored watches and manual executions (Watcher's REST API, docs/watcher-api.md) --------------

    def _poll_stored(self) -> bool:
        """:meth:`StoredWatches.poll`; False (nothing changes) when the cluster cannot answer."""
        try:
            return self.stored.poll()
        except Exception as error:
            LOG.warning("could not read the stored watches (%s: %s); keeping the last ones read",
                        type(error).__name__, error)
            return False

    def watches(self) -> dict[str, Watch]:
        """The watches the daemon runs now (files and stored ones), by id: a copy. Each carries its
        ``file``, ``trigger`` and, for a rule, ``rule`` (its ``type``)."""
        return dict(self._watches)

    def check_watch(self, watch_id: str, text: str, *, stored: bool = True) -> Watch:
        """Parse and check a watch sent as JSON text against the loaded connectors.

        Args:
            stored: the watch is to be stored under ``watch_id`` (a file must not define that id);
                False for an inline watch of the execute API.

        Raises:
            WatchIdTaken: ``stored`` and a definition file has this id.
            watcher.model.problems.DefinitionError: not a valid watch (every problem, with its field).
        """
        running = self._watches.get(watch_id)
        if stored and running is not None and not self.stored.is_stored(running):
            raise WatchIdTaken(watch_id, running.file)
        watch, problems = self.stored.parse(watch_id, text, self._connectors, self.settings.connectors)
        if watch is None:
            raise DefinitionError(problems)
        return watch

    def store_watch(self, watch: Watch, *, if_seq_no: int | None = None,
                    if_primary_term: int | None = None) -> StoredWatch:
        """Store ``watch`` (checked by :meth:`check_watch`) in ``<prefix>-watches``; :meth:`reload`
        then schedules it here, and the other daemons of the prefix at their next poll.

        Raises:
            watcher.es.watch_store.StoredWatchConflict: the stored version is not the one named.
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        return self.stored.store.put(watch.id, watch.body, if_seq_no=if_seq_no, if_primary_term=if_primary_term)

    def delete_watch(self, watch_id: str) -> StoredWatch | None:
        """Delete a stored watch and its schedule (its state and history stay, as in Watcher);
        None when no watch of that id is stored.

        Raises:
            elasticsearch.ApiError / TransportError on cluster errors.
        """
        item = self.stored.store.delete(watch_id)
        if item is not None:
            self.reload((self.stored.source(watch_id),))
        return item

    def execute_manually(self, watch: Watch, options: ExecuteOptions, *, triggered: dt.datetime,
                         scheduled: dt.datetime, record_execution: bool = False, inline: bool = False,
                         debug: bool = False) -> dict:
        """Run ``watch`` once by hand (Watcher's execute API; docs/watcher-api.md#execute) and return
        its watch record; actions that run in an ``execute`` mode go through the outbox, as scheduled
        runs do — those of an inline watch are sent at once (the outbox knows only the secrets of
        loaded watches).

        Args:
            options: action modes, ``ignore_condition``, ``alternative_input`` (trigger type manual).
            triggered, scheduled: aware UTC (the record's trigger event).
            record_execution: write the record to history and save the watch's new status
                (throttle, ack state, last checked/met) with optimistic concurrency.
            inline: the watch was sent in the request (no stored status; never recorded).
            debug: add the run's ``vars`` to the record.

        Raises:
            elasticsearch.ApiError / TransportError: the state could not be read or saved, or the
                record not written.
        """
        state = None if inline else self.state.load(watch.id)
        status = copy.deepcopy(state.status) if state is not None else WatchStatus()
        started = self._clock()
        record_id = f"{watch.id}_{uuid.uuid4()}-{format_iso_millis(started)}"
        run = Run(watch=watch, execution_time=started, triggered_time=triggered, scheduled_time=scheduled,
                  services=self.services, record_id=record_id,
                  rule_state=copy.deepcopy(state.rule_state) if state is not None else {},
                  silences=dict(state.silences) if state is not None else {})
        # An inline watch is not a loaded definition: the outbox could not resolve its inline secrets
        # later, so its actions are sent at once and the record holds their real outcome.
        deliveries = {**self._deliveries, "execute": SendNow()} if inline else self._deliveries
        record = execute_watch(watch, run, status, deliveries, options)
        if debug:
            record["vars"] = run.vars
        if record_execution and not inline:
            history.write_record(self.es, self.settings.index_prefix, record, refresh="wait_for")
            self.state.save_status(watch.id, state, status)
        return record

    # -- operations ----------------------------------------------------------------------------------

    def health(self) -> dict:
        """The ``/healthz`` document: ``status`` ``ok`` when the cluster answers and the scheduler
        runs (else ``unavailable``, HTTP 503), with ``cluster.reachable`` and ``cluster.product``
        (``"Elasticsearch 8.14.1"``, ``"OpenSearch 2.19.6"``; null until it first answered), ``scheduler.running`` and
        ``watches``, ``outbox.depth`` ({state: n}), ``definitions.invalid_files`` and ``problems``."""
        ok = self._cluster_ok and self._scheduler_running
        scheduled = len(self.scheduler.watch_ids()) if self.scheduler is not None else 0
        return {
            "status": "ok" if ok else "unavailable",
            "cluster": {"reachable": self._cluster_ok, "product": self._cluster_product},
            "scheduler": {"running": self._scheduler_running, "watches": scheduled},
            "outbox": {"depth": dict(self._outbox_depth)},
            "definitions": {"watches": len(self._watches), "invalid_files": list(self._files_bad),
                            "problems": list(self._problems)},
        }

    def definition_problems(self) -> list[Problem]:
        """The problems of the last (re)load, in file order (``file``, ``line``, ``column``, ``path``,
        ``message``); a file with one is not running (or runs its last good version)."""
        return list(self._load_problems)

    def invalid_files(self) -> list[str]:
        """Paths of the files with problems at the last (re)load."""
        return list(self._files_bad)

    @property
    def connectors(self) -> dict[str, Any]:
        """``{name: Connector}`` the actions use, for executing a watch by hand. They hold secrets:
        show :meth:`connector_types` instead."""
        return dict(self._connectors)

    def connector_types(self) -> dict[str, str]:
        """``{connector name: connector type}`` — what may be shown (no configuration, no secret)."""
        return {name: connector.type for name, connector in self._connectors.items()}

    def next_run(self, watch_id: str) -> dt.datetime | None:
        """The next scheduled time of ``watch_id`` (aware UTC), None when it is not scheduled
        (inactive, not loaded, the scheduler not running) or never fires again."""
        scheduler = self.scheduler
        if scheduler is None or watch_id not in scheduler:
            return None
        with contextlib.suppress(KeyError):  # unscheduled meanwhile
            return scheduler.next_scheduled(watch_id)
        return None

    def masked(self, value: Any) -> Any:
        """``value`` (JSON-like) with every connector secret replaced by ``***``."""
        return mask_data(value, self._secrets())

    def _maintain(self) -> None:
        """Periodic: probe the cluster, move schedule-lag samples into the histogram."""
        self._probe()
        if self.scheduler is not None:
            for sample in self.scheduler.lag_samples():
                self.metrics.observe_lag(sample)
            if self._poll_stored():  # another daemon on this prefix put or deleted a watch
                self.reload(("stored watches",))

    def _set_watch_counts(self) -> None:
        active = sum(1 for watch in self._watches.values() if watch.active)
        self.metrics.set_watch_counts(active, len(self._watches) - active, len(self._files_bad))

    def _on_outbox_event(self, kind: str, **fields: Any) -> None:
        connector = str(fields.get("connector", ""))
        event = delivery_event(kind, fields, self._clock())
        if event is not None:
            self.events.emit([event])
        if kind == "delivered":
            self.metrics.observe_delivery(connector, float(fields.get("send_s") or 0.0), "delivered")
        elif kind in ("retried", "dead"):
            self.metrics.deliveries.labels(connector=connector, outcome="retry" if kind == "retried" else "dead").inc()
            # An operator must see failed deliveries in the log, not only in `watcher outbox`.
            if kind == "retried":
                LOG.warning("delivery %s to connector %s failed (attempt %s): %s; retrying in %.1fs",
                            fields.get("id"), connector or "-", fields.get("attempts"), fields.get("reason"),
                            float(fields.get("delay_s") or 0.0), extra={"delivery_id": fields.get("id")})
            else:
                LOG.error("delivery %s to connector %s is dead after %s attempt(s): %s — "
                          "`watcher outbox --state dead` lists it, `watcher outbox --retry ID` sends it again",
                          fields.get("id"), connector or "-", fields.get("attempts"), fields.get("reason"),
                          extra={"delivery_id": fields.get("id")})
        elif kind == "depth":
            counts = dict(fields.get("counts") or {})
            self._outbox_depth = counts
            self.metrics.set_outbox_depth(counts)
