"""Run every active watch on its schedule: APScheduler 3.x driving :func:`watcher.schedule.next_fire`.

The daemon hands this module a callback and a list of triggers; nothing here knows about the engine.
:class:`Scheduler` calls ``on_tick(watch_id, scheduled_time, triggered_time)`` once per fire time.

Policies (issue 5, item 1):

* **Fire times** come from :func:`watcher.schedule.next_fire` through :class:`WatchTrigger`, an
  APScheduler ``BaseTrigger``. Intervals are anchored at registration (docs/semantics.md#interval-anchor);
  ``replace`` keeps the anchor of an unchanged schedule and resets it for a changed one
  (docs/semantics.md#re-saving-a-watch).
* **One run at a time per watch.** APScheduler's own ``max_instances=1`` *skips* a tick that comes
  due while the previous run is still going ("maximum number of running instances reached"), so
  ticks are handed to :class:`_SerialExecutor` instead: a tick that comes due during a run waits
  and runs right after it, never in parallel and never dropped. Ticks of different watches run
  concurrently on ``workers`` threads, taking turns (one tick per turn) so a watch catching up on
  many ticks does not starve the others.
* **Spread start times.** Interval watches are spread by their anchor: the daemon phases watches
  loaded together over their period (:func:`registration_phase`), so they start on their scheduled
  time. Calendar and cron watches, which share wall-clock fire times, start ``offset`` after the
  scheduled time, where ``offset`` is a deterministic fraction (SHA-256 of the watch id) of
  ``min(10 % of the period, jitter_s)`` — :func:`start_offset`. The offset moves the actual start
  only: ``scheduled_time`` is always the nominal fire time.
* **Missed ticks while running** (the process was stopped with SIGSTOP, the machine was slow or
  asleep): every fire time that came due is run, oldest first, as APScheduler with
  ``coalesce=False`` and ``misfire_grace_time=None`` would (those are the job settings used; the
  executor here does not skip late ticks at all). At most ``max_catch_up`` ticks per watch wait
  at once; beyond that the oldest are skipped with a warning (``watch_id``, count), so a watch
  that is always slower than its period runs late by a bounded amount instead of ever later.
* **Missed ticks while not running** (the daemon was down): :func:`missed_ticks` lists them; the
  daemon decides how many to replay from the state it keeps in Elasticsearch.
* **Shutdown**: no tick starts after :meth:`Scheduler.shutdown`; runs in progress get ``grace_s``
  seconds to finish. Ticks not started are not run (the daemon replays them from its state on the
  next start). Worker threads are daemon threads, so a run stuck past the grace period does not
  keep the process from exiting.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from watcher.model.watch import Trigger
from watcher.schedule import next_fire

__all__ = ["DEFAULT_WORKERS", "Scheduler", "WatchTrigger", "missed_ticks", "schedule_period", "start_offset"]

UTC = dt.timezone.utc
LOG = logging.getLogger(__name__)

OnTick = Callable[[str, dt.datetime, dt.datetime], None]

DEFAULT_JITTER_S = 30.0
JITTER_FRACTION_OF_PERIOD = 0.10
DEFAULT_MAX_CATCH_UP = 100
# Worker threads. Ticks mostly wait on the cluster, and the searches of ticks running at the same
# moment share one _msearch (watcher.es.search_batch.SearchBatcher): the more ticks run at once,
# the larger the batches (8 workers gave batches of 2.5 on average at 1,000 rules, 64 gave 15;
# docs/benchmarks.md). Idle threads cost little memory.
DEFAULT_WORKERS = 64
LAG_SAMPLES_KEPT = 10_000  # undrained samples beyond this are dropped, oldest first


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --- pure helpers -------------------------------------------------------------------------------------

def schedule_period(trigger: Trigger, anchor: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    """The period of ``trigger`` used to size its start-time spread.

    Args:
        trigger: a parsed trigger.
        anchor: aware registration time (intervals); ignored by calendar schedules.
        now: aware datetime from which calendar schedules are looked at.

    Returns:
        ``interval``: the interval itself. Calendar and cron schedules: the gap between their next
        two fire times after ``now`` (their spacing may vary; the first gap stands for all). None
        when the schedule fires fewer than two more times.
    """
    if trigger.kind == "interval":
        return trigger.config.every
    first = next_fire(trigger, now, anchor)
    second = next_fire(trigger, first, anchor) if first is not None else None
    return None if second is None else second - first


def start_offset(watch_id: str, period: dt.timedelta | None, jitter_s: float = DEFAULT_JITTER_S) -> dt.timedelta:
    """How long after each scheduled time the runs of ``watch_id`` start.

    A fixed fraction of ``min(10 % of period, jitter_s)`` taken from the SHA-256 of the id, so the
    same watch always gets the same offset (in every process, unlike ``hash()``) and many watches
    sharing a schedule spread evenly over the window instead of hitting the cluster in one second.

    Args:
        watch_id: the watch id.
        period: the schedule's period (:func:`schedule_period`); None gives no offset.
        jitter_s: the largest offset in seconds; 0 disables spreading.

    Returns:
        A timedelta in ``[0, min(0.1·period, jitter_s))``, microsecond precision.
    """
    if period is None or jitter_s <= 0:
        return dt.timedelta(0)
    window = min(period.total_seconds() * JITTER_FRACTION_OF_PERIOD, float(jitter_s))
    digest = hashlib.sha256(watch_id.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return dt.timedelta(microseconds=int(fraction * window * 1_000_000))


def registration_phase(watch_id: str, every: dt.timedelta) -> dt.timedelta:
    """How long before "now" an interval watch loaded without progress counts as registered.

    Watcher anchors an interval at the watch's registration (docs/semantics.md#interval-anchor), so watches
    put at different moments run at different phases of their period. A daemon that loads 10,000
    rules at once would register them all in the same second, and they would all fire in the same
    second of every period. Each is taken as registered a deterministic fraction (SHA-256 of the
    id, independent of :func:`start_offset`) of one period earlier: the first run comes within
    one period, and the watches' runs spread evenly over it. ``scheduled_time`` is then the
    watch's own phase, not a round clock time; after a restart the phase is kept (the daemon
    anchors on the last evaluated tick).

    Returns:
        A timedelta in ``[0, every)``, microsecond precision.
    """
    digest = hashlib.sha256(b"phase:" + watch_id.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return dt.timedelta(microseconds=int(fraction * every.total_seconds() * 1_000_000))


def missed_ticks(trigger: Trigger, last_scheduled: dt.datetime, now: dt.datetime,
                 anchor: dt.datetime | None = None, limit: int = DEFAULT_MAX_CATCH_UP) -> list[dt.datetime]:
    """The scheduled times of ``trigger`` in ``(last_scheduled, now]``, oldest first.

    When more than ``limit`` are due, the **most recent** ``limit`` are returned: after a long
    outage the freshest periods matter most, and catching up ends where normal scheduling resumes.
    The daemon uses this at start-up to replay what it missed while down, bounded by its maximum
    catch-up.

    Args:
        trigger: a parsed trigger.
        last_scheduled: aware; the last scheduled time that was run (excluded).
        now: aware; included when it is itself a fire time.
        anchor: aware registration time; required for ``interval``.
        limit: the most times to return (≤ 0 returns []).

    Returns:
        Aware UTC datetimes. Cost is bounded by ``limit``, not by the length of the outage
        (intervals are computed arithmetically; calendar schedules search back from ``now``).

    Raises:
        ValueError / KeyError: as :func:`watcher.schedule.next_fire`.
    """
    if limit <= 0 or now <= last_scheduled:
        return []
    if trigger.kind == "interval":
        return _missed_interval_ticks(trigger, last_scheduled, now, anchor, limit)
    first = next_fire(trigger, last_scheduled, anchor)
    if first is None or first > now:
        return []
    second = next_fire(trigger, first, anchor)
    gap = max(second - first, dt.timedelta(seconds=1)) if second is not None else now - last_scheduled
    span = gap * (limit + 1)
    while True:
        # Fires in (start, now]: enough of them, or start reached last_scheduled, settles the answer.
        start = max(now - span, last_scheduled)
        ticks: collections.deque[dt.datetime] = collections.deque(maxlen=limit)
        count = 0
        tick = next_fire(trigger, start, anchor)
        while tick is not None and tick <= now:
            ticks.append(tick)
            count += 1
            tick = next_fire(trigger, tick, anchor)
        if count >= limit or start == last_scheduled:
            return list(ticks)
        span *= 2


def _missed_interval_ticks(trigger: Trigger, last_scheduled: dt.datetime, now: dt.datetime,
                           anchor: dt.datetime | None, limit: int) -> list[dt.datetime]:
    first = next_fire(trigger, last_scheduled, anchor)  # validates anchor and awareness
    every = trigger.config.every
    first_k = (first - anchor) // every
    last_k = (now - anchor) // every
    if last_k < first_k:
        return []
    return [(anchor + k * every).astimezone(UTC) for k in range(max(first_k, last_k - limit + 1), last_k + 1)]


# --- APScheduler pieces -------------------------------------------------------------------------------

class WatchTrigger(BaseTrigger):
    """An APScheduler trigger firing at ``next_fire(trigger, …) + offset``.

    APScheduler only sees the shifted times; :meth:`scheduled_time` maps one back to the nominal
    scheduled time. Source of the ``get_next_fire_time(previous_fire_time, now)`` contract:
    apscheduler.triggers.base.BaseTrigger (APScheduler 3.x, "Extending APScheduler").

    Attributes:
        trigger: the watch's parsed trigger.
        anchor: aware UTC registration time.
        offset: the start offset (:func:`start_offset`).
    """

    def __init__(self, trigger: Trigger, anchor: dt.datetime, offset: dt.timedelta):
        self.trigger = trigger
        self.anchor = anchor
        self.offset = offset

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        # The first time (no previous fire) is the first nominal time after now: a tick scheduled
        # before the watch was registered is not run, even if its shifted start is still ahead.
        after = now if previous_fire_time is None else previous_fire_time - self.offset
        nominal = next_fire(self.trigger, after, self.anchor)
        return None if nominal is None else nominal + self.offset

    def scheduled_time(self, fire_time: dt.datetime) -> dt.datetime:
        """The nominal scheduled time (aware UTC) of a fire time this trigger returned."""
        return (fire_time - self.offset).astimezone(UTC)

    def __repr__(self) -> str:
        return f"WatchTrigger({self.trigger.kind}, anchor={self.anchor.isoformat()}, offset={self.offset})"


@dataclasses.dataclass(frozen=True)
class _Tick:
    scheduled_time: dt.datetime
    planned_start: dt.datetime


def _job_placeholder() -> None:  # pragma: no cover
    """The callable of every job: APScheduler requires one, but :class:`_SerialExecutor` calls its
    ``run`` with each tick's times instead (``Job.func`` gets no scheduled time)."""
    raise RuntimeError("watch jobs are run by _SerialExecutor")


class _SerialExecutor(BaseExecutor):
    """An APScheduler executor running at most one tick per job at a time, the others queued.

    ``submit_job`` (called by the scheduler thread with every due fire time of a job) never raises
    ``MaxInstancesReachedError``: it appends the ticks to the job's backlog, and a job has at most
    one entry in the worker queue, so its ticks run one after another. After each tick the job
    goes to the back of the queue if more of its ticks wait.
    """

    def __init__(self, workers: int, max_backlog: int, run: Callable[[str, dt.datetime, dt.datetime], None]):
        super().__init__()
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._run = run
        self._workers = workers
        self._max_backlog = max_backlog
        self._ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._guard = threading.Condition()
        self._backlog: dict[str, collections.deque[_Tick]] = {}
        self._queued: set[str] = set()  # jobs with an entry in _ready or a tick running
        self._running = 0
        self._stopping = False

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"watcher-tick-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        ticks = [_Tick(job.trigger.scheduled_time(when), when.astimezone(UTC))
                 for when in run_times]
        with self._guard:
            if self._stopping:
                return
            backlog = self._backlog.setdefault(job.id, collections.deque())
            backlog.extend(ticks)
            skipped = len(backlog) - self._max_backlog
            if skipped > 0:
                for _ in range(skipped):
                    backlog.popleft()
                LOG.warning("watch %s is %d ticks behind; skipped the %d oldest", job.id,
                            self._max_backlog + skipped, skipped, extra={"watch_id": job.id, "skipped": skipped})
            if job.id not in self._queued:
                self._queued.add(job.id)
                self._ready.put(job.id)

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:  # pragma: no cover
        raise NotImplementedError("submit_job queues ticks itself")

    def forget(self, job_id: str) -> None:
        """Drop the ticks of ``job_id`` not started yet (the watch was removed)."""
        with self._guard:
            self._backlog.pop(job_id, None)

    def _work(self) -> None:
        while True:
            job_id = self._ready.get()
            if job_id is None:
                return
            with self._guard:
                backlog = self._backlog.get(job_id)
                if self._stopping or not backlog:  # stopping, or the watch was removed meanwhile
                    self._queued.discard(job_id)
                    if backlog is not None and not backlog:
                        del self._backlog[job_id]
                    continue
                tick = backlog.popleft()
                self._running += 1
            try:
                self._run(job_id, tick.scheduled_time, tick.planned_start)
            except BaseException:  # the runner logs; a worker thread must never die
                LOG.exception("tick of %s failed", job_id, extra={"watch_id": job_id})
            with self._guard:
                self._running -= 1
                if self._backlog.get(job_id) and not self._stopping:
                    self._ready.put(job_id)
                else:
                    self._queued.discard(job_id)
                    if job_id in self._backlog and not self._backlog[job_id]:
                        del self._backlog[job_id]
                self._guard.notify_all()

    def shutdown(self, wait: bool = True) -> None:
        """Start no further tick; ``wait`` blocks until running ticks end (see :meth:`drain`)."""
        with self._guard:
            self._stopping = True
            self._backlog.clear()
        if wait:
            self.drain(None)

    def drain(self, timeout_s: float | None) -> bool:
        """Wait up to ``timeout_s`` seconds (None = forever) for running ticks; stop the workers.

        Returns:
            True when no tick is running any more.
        """
        with self._guard:
            idle = self._guard.wait_for(lambda: self._running == 0, timeout=timeout_s)
        for _ in self._threads:
            self._ready.put(None)
        return idle


# --- the scheduler ------------------------------------------------------------------------------------

class Scheduler:
    """Schedules watches and calls ``on_tick`` for each fire time (policies: module docstring).

    Args:
        on_tick: ``on_tick(watch_id, scheduled_time, triggered_time)``; both datetimes aware UTC:
            the nominal fire time and the moment the run actually started (≥ scheduled time plus
            the watch's start offset). Called on a worker thread; exceptions are logged and the
            watch stays scheduled.
        workers: threads running ticks (different watches run concurrently up to this number).
        jitter_s: the largest start offset in seconds (a watch's window is
            ``min(10 % of its period, jitter_s)``); 0 disables spreading.
        max_catch_up: the most ticks of one watch waiting to run (oldest skipped beyond it).
        clock: returns the aware UTC "now" used for ``triggered_time``, default anchors and lag.
            APScheduler itself always waits on the real clock.
    """

    def __init__(self, on_tick: OnTick, *, workers: int = DEFAULT_WORKERS, jitter_s: float = DEFAULT_JITTER_S,
                 max_catch_up: int = DEFAULT_MAX_CATCH_UP, clock: Callable[[], dt.datetime] = _utc_now):
        if max_catch_up < 1:
            raise ValueError("max_catch_up must be at least 1")
        self._on_tick = on_tick
        self._jitter_s = jitter_s
        self._clock = clock
        self._executor = _SerialExecutor(workers, max_catch_up, self._run)
        self._lags: collections.deque[float] = collections.deque(maxlen=LAG_SAMPLES_KEPT)
        self._lock = threading.Lock()
        self._aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": self._executor},
            job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 1},
        )

    # -- watches

    def add(self, watch_id: str, trigger: Trigger, anchor: dt.datetime | None = None) -> None:
        """Schedule ``watch_id``.

        Args:
            trigger: its parsed trigger.
            anchor: aware registration time for intervals (default: the clock's now).

        Raises:
            ValueError: the id is already scheduled, or ``anchor`` is naive.
        """
        anchor = self._clock() if anchor is None else anchor
        if anchor.utcoffset() is None:
            raise ValueError("anchor must be an aware datetime")
        with self._lock:  # APScheduler checks ids only once started; check before, too
            if watch_id in self:
                raise ValueError(f"watch {watch_id!r} is already scheduled")
            try:
                self._aps.add_job(_job_placeholder, trigger=self._watch_trigger(watch_id, trigger, anchor),
                                  id=watch_id, name=watch_id)
            except ConflictingIdError:
                raise ValueError(f"watch {watch_id!r} is already scheduled") from None

    def replace(self, watch_id: str, trigger: Trigger) -> bool:
        """Give ``watch_id`` a new trigger (the watch definition changed).

        An unchanged schedule (same kind, parsed config and time zone — so ``5m`` and ``300s``
        differ, as in Watcher) keeps its anchor and next fire time; a changed one is re-anchored at
        the clock's now (docs/semantics.md#re-saving-a-watch).

        Returns:
            True when the schedule changed (anchor reset), False when it was kept.

        Raises:
            KeyError: ``watch_id`` is not scheduled.
        """
        current = self._watch_trigger_of(watch_id)
        if _same_schedule(current.trigger, trigger):
            return False
        self._aps.reschedule_job(watch_id, trigger=self._watch_trigger(watch_id, trigger, self._clock()))
        return True

    def remove(self, watch_id: str) -> None:
        """Unschedule ``watch_id``; a run in progress finishes, its waiting ticks are dropped.

        Raises:
            KeyError: ``watch_id`` is not scheduled.
        """
        try:
            self._aps.remove_job(watch_id)
        except JobLookupError:
            raise KeyError(watch_id) from None
        self._executor.forget(watch_id)

    def submit(self, watch_id: str, scheduled_time: dt.datetime) -> None:
        """Queue one extra run of ``watch_id`` for ``scheduled_time`` (a catch-up tick, e.g. at
        start-up for a tick missed while the daemon was down) on the watch's serial executor, so it
        never runs in parallel with the watch's scheduled ticks. It starts as soon as a worker is
        free (its planned start is ``scheduled_time`` plus the watch's offset, for lag).

        Raises:
            KeyError: ``watch_id`` is not scheduled.
            ValueError: ``scheduled_time`` is naive.
        """
        if scheduled_time.utcoffset() is None:
            raise ValueError("scheduled_time must be an aware datetime")
        job = self._job(watch_id)
        self._executor.submit_job(job, [scheduled_time.astimezone(UTC) + job.trigger.offset])

    def __contains__(self, watch_id: object) -> bool:
        return isinstance(watch_id, str) and self._aps.get_job(watch_id) is not None

    def watch_ids(self) -> list[str]:
        """The scheduled watch ids, in no particular order."""
        return [job.id for job in self._aps.get_jobs()]

    def anchor(self, watch_id: str) -> dt.datetime:
        """The registration time of ``watch_id``'s schedule. Raises KeyError when not scheduled."""
        return self._watch_trigger_of(watch_id).anchor

    def offset(self, watch_id: str) -> dt.timedelta:
        """The start offset of ``watch_id``. Raises KeyError when not scheduled."""
        return self._watch_trigger_of(watch_id).offset

    def next_scheduled(self, watch_id: str) -> dt.datetime | None:
        """The next nominal scheduled time of ``watch_id`` (aware UTC); None before :meth:`start`
        or when the schedule never fires again. Raises KeyError when not scheduled."""
        job = self._job(watch_id)
        next_run = getattr(job, "next_run_time", None)
        return None if next_run is None else job.trigger.scheduled_time(next_run)

    # -- lifecycle

    def start(self) -> None:
        """Start scheduling on a background thread (watches added before are scheduled from now)."""
        self._aps.start()

    def shutdown(self, wait: bool = True, grace_s: float = 30.0) -> bool:
        """Stop: no tick starts after this call; ticks waiting to start are dropped.

        Args:
            wait: wait for running ticks, up to ``grace_s`` seconds.
            grace_s: the grace period in seconds.

        Returns:
            True when no tick is running any more; False when runs were still going at the end of
            the grace period (or at once, when ``wait`` is False). Those continue on daemon
            threads and do not keep the process from exiting.
        """
        if self._aps.running:
            self._aps.shutdown(wait=False)  # stops the scheduling thread and calls executor.shutdown(False)
        else:
            self._executor.shutdown(wait=False)
        return self._executor.drain(grace_s if wait else 0)

    # -- metrics

    def lag_samples(self) -> list[float]:
        """Seconds between each run's planned start (scheduled time + offset) and its actual start,
        since the last call (the list is drained). The deliberate offset is not lag; a growing lag
        means the workers or the cluster do not keep up."""
        with self._lock:
            samples = list(self._lags)
            self._lags.clear()
        return samples

    # -- internals

    def _run(self, watch_id: str, scheduled_time: dt.datetime, planned_start: dt.datetime) -> None:
        triggered_time = self._clock()
        with self._lock:
            self._lags.append(max(0.0, (triggered_time - planned_start).total_seconds()))
        try:
            self._on_tick(watch_id, scheduled_time, triggered_time)
        except Exception:
            LOG.exception("run of watch %s scheduled at %s failed", watch_id, scheduled_time.isoformat(),
                          extra={"watch_id": watch_id})

    def _watch_trigger(self, watch_id: str, trigger: Trigger, anchor: dt.datetime) -> WatchTrigger:
        anchor = anchor.astimezone(UTC)
        if trigger.kind == "interval":  # phased by its anchor (registration_phase): no start offset
            return WatchTrigger(trigger, anchor, dt.timedelta(0))
        period = schedule_period(trigger, anchor, max(anchor, self._clock()))
        return WatchTrigger(trigger, anchor, start_offset(watch_id, period, self._jitter_s))

    def _job(self, watch_id: str) -> Any:
        job = self._aps.get_job(watch_id)
        if job is None:
            raise KeyError(watch_id)
        return job

    def _watch_trigger_of(self, watch_id: str) -> WatchTrigger:
        return self._job(watch_id).trigger


def _same_schedule(old: Trigger, new: Trigger) -> bool:
    return (old.kind, old.config, old.timezone) == (new.kind, new.config, new.timezone)
