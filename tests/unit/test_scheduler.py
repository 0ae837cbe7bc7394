"""watcher.daemon.scheduler: a real APScheduler BackgroundScheduler with sub-second intervals.

No test depends on how fast threads run: they wait on events and conditions (timeouts only matter
on failure), hold runs on events the test releases, and assert on nominal times, order and state,
never on elapsed time; how late ticks start is measured by bench/, not here.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import threading
import time
from zoneinfo import ZoneInfo

import pytest

from watcher.daemon.scheduler import Scheduler, WatchTrigger, missed_ticks, schedule_period, start_offset
from watcher.model.watch import Trigger
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.definitions.watch import parse_trigger
from watcher.schedule import REGISTRY
from watcher.schedule.interval import Interval

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
SECOND = dt.timedelta(seconds=1)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def every(seconds: float, text: str | None = None) -> Trigger:
    """An interval trigger; sub-second periods (below Watcher's 1 s minimum) keep the tests short."""
    text = text or f"{seconds}s"
    return Trigger(kind="interval", config=Interval(every=dt.timedelta(seconds=seconds), text=text),
                   timezone=None, body={"schedule": {"interval": text}})


def watch_trigger(yaml_text: str) -> Trigger:
    """A watch's ``trigger`` written in YAML, parsed as watch files are."""
    document = load_text(yaml_text, "watch.yaml")
    reader = Reader(document)
    trigger = parse_trigger(reader, document.data["trigger"], ("trigger",), REGISTRY)
    assert reader.problems == []
    return trigger


# Waits are for conditions; this bound only matters when a test fails.
TIMEOUT_S = 30.0


def wait_until(predicate, timeout: float = TIMEOUT_S) -> bool:
    """Poll ``predicate`` until true; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def sleep_until(when: dt.datetime) -> None:
    """Return once the wall clock reached ``when`` (aware)."""
    while (left := (when - dt.datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(left)


def start_paused(scheduler: Scheduler) -> None:
    """``scheduler.start()`` with APScheduler paused from the first instant (what SIGSTOP amounts to):
    no tick can run before the test resumes it."""
    scheduler._aps.start(paused=True)


class Recorder:
    """Collects on_tick calls; ``wait(n)`` blocks until n calls arrived (bounded)."""

    def __init__(self, work=None):
        self.calls: list[tuple[str, dt.datetime, dt.datetime, dt.datetime]] = []
        self.condition = threading.Condition()
        self.work = work

    def __call__(self, watch_id, scheduled_time, triggered_time):
        if self.work:
            self.work(watch_id, scheduled_time)
        with self.condition:
            self.calls.append((watch_id, scheduled_time, triggered_time, dt.datetime.now(UTC)))
            self.condition.notify_all()

    def wait(self, count: int, timeout: float = TIMEOUT_S, watch_id: str | None = None) -> list:
        def matching():
            return [c for c in self.calls if watch_id is None or c[0] == watch_id]
        with self.condition:
            assert self.condition.wait_for(lambda: len(matching()) >= count, timeout), self.calls
            return matching()


@pytest.fixture
def schedulers():
    made = []
    yield made.append
    for scheduler in made:
        scheduler.shutdown(wait=False)


# --- real scheduling ----------------------------------------------------------------------------------

def test_cron_ticks_carry_nominal_scheduled_times_and_start_after_the_offset(schedulers):
    recorder = Recorder()
    scheduler = Scheduler(recorder)
    schedulers(scheduler)
    scheduler.add("w1", watch_trigger("trigger: {schedule: {cron: '* * * * * ?'}}"))  # every second
    offset = scheduler.offset("w1")
    assert offset == start_offset("w1", SECOND, 30.0)
    assert dt.timedelta(0) <= offset < dt.timedelta(milliseconds=100)  # 10 % of 1 s
    scheduler.start()
    calls = recorder.wait(2)
    scheduler.shutdown(wait=True)  # no further tick: the lag samples below are final
    first, second = (c[1] for c in calls[:2])
    assert second - first == SECOND and first.microsecond == 0             # on the second, nominal
    lags = scheduler.lag_samples()
    assert len(lags) >= 2
    for (_, scheduled, triggered, _), lag in zip(calls[:2], lags):
        assert scheduled.tzinfo is not None and scheduled.utcoffset() == dt.timedelta(0)
        assert scheduled + offset <= triggered  # started after the offset, never before
        # the lag metric is the delay past the planned start (scheduled + offset): the offset is not lag
        assert lag == (triggered - (scheduled + offset)).total_seconds()
    assert scheduler.lag_samples() == []  # drained


def test_interval_ticks_start_on_their_scheduled_time_without_an_offset(schedulers):
    recorder = Recorder()
    scheduler = Scheduler(recorder)
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("w1", every(1), anchor)
    assert scheduler.offset("w1") == dt.timedelta(0)   # intervals are phased by their anchor instead
    scheduler.start()
    calls = recorder.wait(2)
    scheduler.shutdown(wait=True)
    first, second = (c[1] for c in calls[:2])
    # phased by the anchor (whole periods after it), consecutive
    assert first > anchor and (first - anchor) % SECOND == dt.timedelta(0) and second == first + SECOND
    for (_, scheduled, triggered, _), lag in zip(calls[:2], scheduler.lag_samples()):
        assert scheduled <= triggered
        assert lag == (triggered - scheduled).total_seconds()  # planned start = the scheduled time itself


def test_a_tick_due_during_a_run_of_the_same_watch_runs_right_after_it(schedulers):
    spans: list[tuple[dt.datetime, float, float]] = []
    waiting_behind_first: list[bool] = []

    def backlog() -> int:
        with scheduler._executor._guard:
            return len(scheduler._executor._backlog.get("slow", ()))

    def slow_first_run(_watch_id, scheduled):
        started = time.monotonic()
        if not spans:
            # the first run lasts until the next two ticks (every 0.3 s) came due and wait behind it
            waiting_behind_first.append(wait_until(lambda: backlog() >= 2))
        spans.append((scheduled, started, time.monotonic()))

    recorder = Recorder(slow_first_run)
    scheduler = Scheduler(recorder, workers=4, jitter_s=0)
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("slow", every(0.3), anchor)
    scheduler.start()
    recorder.wait(4)
    step = dt.timedelta(seconds=0.3)
    # queued behind the running one (4 workers were free: not run in parallel, not skipped)…
    assert waiting_behind_first == [True]
    # …and run next, in order: none dropped, none moved to a later slot
    first = spans[0][0]
    assert first > anchor and (first - anchor) % step == dt.timedelta(0)
    assert [s[0] for s in spans[:4]] == [first + k * step for k in range(4)]
    for (_, _, ended), (_, started, _) in zip(spans, spans[1:]):
        assert started >= ended  # never two runs of one watch at once


def test_different_watches_run_concurrently(schedulers):
    both_inside = threading.Barrier(2, timeout=TIMEOUT_S)

    def meet(_watch_id, _scheduled):
        both_inside.wait()  # raises BrokenBarrierError unless the other watch runs at the same time

    recorder = Recorder(meet)
    scheduler = Scheduler(recorder, workers=2, jitter_s=0)
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("a", every(0.4), anchor)
    scheduler.add("b", every(0.4), anchor)
    scheduler.start()
    calls = recorder.wait(2)
    assert sorted(c[0] for c in calls[:2]) == ["a", "b"]
    assert not both_inside.broken
    both_inside.abort()  # lets later runs waiting for a partner end now


def test_ticks_missed_while_paused_are_all_run_in_order(schedulers):
    recorder = Recorder()
    scheduler = Scheduler(recorder, jitter_s=0)
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("w", every(0.25), anchor)
    step = dt.timedelta(seconds=0.25)
    # A stopped process is simulated by APScheduler paused from the start (what SIGSTOP amounts to).
    start_paused(scheduler)
    first = scheduler.next_scheduled("w")
    sleep_until(first + 3 * step)  # four ticks are due now
    assert recorder.calls == []
    scheduler._aps.resume()
    calls = recorder.wait(4)
    assert (first - anchor) % step == dt.timedelta(0)
    assert [c[1] for c in calls[:4]] == [first + k * step for k in range(4)]


def test_catch_up_is_capped_to_the_most_recent_ticks(schedulers):
    recorder = Recorder()
    scheduler = Scheduler(recorder, jitter_s=0, max_catch_up=2)
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("w", every(0.2), anchor)
    step = dt.timedelta(seconds=0.2)
    start_paused(scheduler)
    due = scheduler.next_scheduled("w")
    sleep_until(due + 4 * step)  # 5 or more ticks due (more if the machine is slow)
    scheduler._aps.resume()
    calls = recorder.wait(2)
    first, second = (c[1] for c in calls[:2])
    # Only the two most recent due ticks run, in order; the older ones were dropped by the cap.
    assert second - first == step and second >= due + 4 * step and first >= due + 3 * step


def test_a_failing_on_tick_is_logged_and_the_watch_stays_scheduled(schedulers, caplog):
    failed: list[dt.datetime] = []

    def explode(_watch_id, scheduled):
        failed.append(scheduled)
        raise RuntimeError("boom")

    recorder = Recorder()
    failing = Recorder(explode)
    scheduler = Scheduler(lambda w, s, t: (failing if w == "bad" else recorder)(w, s, t), jitter_s=0)
    schedulers(scheduler)
    scheduler.add("bad", every(0.2))
    scheduler.add("good", every(0.2))
    scheduler.start()
    recorder.wait(2)  # the other watch is not disturbed
    assert wait_until(lambda: len(failed) >= 2)  # the failing watch ran again after failing…
    assert "bad" in scheduler                    # …and is still scheduled
    assert wait_until(lambda: any(r.getMessage().startswith("run of watch bad scheduled at") and r.watch_id == "bad"
                                  for r in caplog.records))


def test_shutdown_waits_for_a_running_tick_within_the_grace_period(schedulers):
    started, release = threading.Event(), threading.Event()
    entered: list[dt.datetime] = []

    def work(_watch_id, scheduled):
        entered.append(scheduled)
        started.set()
        release.wait(TIMEOUT_S)  # runs until the test releases it (ticks every 0.2 s pile up meanwhile)

    recorder = Recorder(work)
    scheduler = Scheduler(recorder, jitter_s=0)
    scheduler.add("w", every(0.2))
    scheduler.start()
    assert started.wait(TIMEOUT_S)
    outcome: dict = {}

    def stop():
        outcome["idle"] = scheduler.shutdown(wait=True, grace_s=300)
        outcome["runs finished when it returned"] = len(recorder.calls)

    stopping = threading.Thread(target=stop)
    stopping.start()
    try:
        # the shutdown has begun and is waiting for the running tick (parked on the executor's
        # condition: CPython's Condition keeps its waiters in _waiters)…
        assert wait_until(lambda: scheduler._executor._stopping and scheduler._executor._guard._waiters)
        assert stopping.is_alive() and recorder.calls == []  # …which still runs
    finally:
        release.set()
    # shutdown returns once the tick ended, not at the end of its 300 s grace (join's bound only
    # matters on failure: the tick ends as soon as it is released)
    stopping.join(TIMEOUT_S)
    assert not stopping.is_alive()
    assert outcome == {"idle": True, "runs finished when it returned": 1}
    # nothing starts after shutdown: the workers are gone and only the first tick ever started
    for thread in scheduler._executor._threads:
        thread.join(TIMEOUT_S)
        assert not thread.is_alive()
    assert len(entered) == 1


def test_shutdown_gives_up_after_the_grace_period(schedulers):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def stuck(_watch_id, _scheduled):
        started.set()
        release.wait(TIMEOUT_S)  # stuck until the test releases it
        finished.set()

    scheduler = Scheduler(Recorder(stuck), jitter_s=0)
    scheduler.add("w", every(0.2))
    scheduler.start()
    assert started.wait(TIMEOUT_S)
    try:
        before = time.monotonic()
        assert scheduler.shutdown(wait=True, grace_s=0.3) is False
        took = time.monotonic() - before
        assert not finished.is_set()  # it gave up while the run was still stuck…
        assert took >= 0.25           # …after waiting out the grace period (a lower bound: load only adds)
    finally:
        release.set()


def test_shutdown_without_start_is_harmless():
    assert Scheduler(Recorder()).shutdown(wait=True, grace_s=1) is True


# --- add / replace / remove ---------------------------------------------------------------------------

def test_replace_keeps_the_anchor_of_an_unchanged_interval_and_resets_a_changed_one(schedulers):
    now = [utc(2024, 5, 1, 12, 0, 0)]
    scheduler = Scheduler(Recorder(), clock=lambda: now[0])
    schedulers(scheduler)
    scheduler.add("w", every(300, "5m"), utc(2024, 5, 1, 11, 58, 30))
    now[0] = utc(2024, 5, 1, 12, 1, 0)
    assert scheduler.replace("w", every(300, "5m")) is False
    assert scheduler.anchor("w") == utc(2024, 5, 1, 11, 58, 30)
    assert scheduler.replace("w", every(600, "10m")) is True
    assert scheduler.anchor("w") == utc(2024, 5, 1, 12, 1, 0)
    now[0] = utc(2024, 5, 1, 12, 2, 0)
    assert scheduler.replace("w", every(300, "300s")) is True  # same length, other unit: Watcher resets too
    assert scheduler.anchor("w") == utc(2024, 5, 1, 12, 2, 0)


def test_replace_of_an_unchanged_cron_keeps_its_next_fire(schedulers):
    scheduler = Scheduler(Recorder())
    schedulers(scheduler)
    daily = "trigger: {schedule: {daily: {at: '17:00'}, timezone: Europe/Paris}}"
    scheduler.add("w", watch_trigger(daily))
    scheduler.start()
    before = scheduler.next_scheduled("w")
    assert before.astimezone(PARIS).time() == dt.time(17, 0)
    assert scheduler.replace("w", watch_trigger(daily)) is False
    assert scheduler.next_scheduled("w") == before
    assert scheduler.replace("w", watch_trigger("trigger: {schedule: {daily: {at: '18:00'}, timezone: Europe/Paris}}"))
    assert scheduler.next_scheduled("w").astimezone(PARIS).time() == dt.time(18, 0)


def test_add_remove_and_errors(schedulers):
    scheduler = Scheduler(Recorder())
    schedulers(scheduler)
    scheduler.add("w", every(60))
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add("w", every(60))
    with pytest.raises(ValueError, match="aware"):
        scheduler.add("naive", every(60), dt.datetime(2024, 1, 1))
    assert scheduler.watch_ids() == ["w"] and "w" in scheduler
    scheduler.remove("w")
    assert "w" not in scheduler
    with pytest.raises(KeyError):
        scheduler.remove("w")
    with pytest.raises(KeyError):
        scheduler.replace("w", every(60))


def test_next_scheduled_is_the_nominal_time(schedulers):
    scheduler = Scheduler(Recorder())
    schedulers(scheduler)
    anchor = dt.datetime.now(UTC)
    scheduler.add("w", every(100))
    scheduler.add("x", every(100), anchor)
    scheduler.add("c", watch_trigger("trigger: {schedule: {cron: '0 0 * * * ?'}}"))
    scheduler.start()
    assert scheduler.next_scheduled("x") == anchor + 100 * SECOND
    assert scheduler.next_scheduled("c").minute == 0 and scheduler.next_scheduled("c").second == 0
    assert scheduler.offset("c") > dt.timedelta(0)


# --- jitter -------------------------------------------------------------------------------------------

def test_start_offsets_are_deterministic_spread_and_bounded():
    hour = dt.timedelta(hours=1)
    assert start_offset("disk-full", hour) == start_offset("disk-full", hour)
    fraction = int.from_bytes(hashlib.sha256(b"disk-full").digest()[:8], "big") / 2**64
    assert start_offset("disk-full", hour) == dt.timedelta(microseconds=int(fraction * 30_000_000))
    offsets = [start_offset(f"watch-{n}", hour).total_seconds() for n in range(1000)]
    assert all(0 <= o < 30 for o in offsets)  # min(10 % of 1 h, 30 s) = 30 s
    assert len(set(offsets)) > 990
    assert sum(o < 15 for o in offsets) in range(430, 570)  # evenly spread
    minute_offsets = [start_offset(f"watch-{n}", dt.timedelta(minutes=1)).total_seconds() for n in range(200)]
    assert all(0 <= o < 6 for o in minute_offsets) and max(minute_offsets) > 5  # 10 % of 60 s
    assert start_offset("w", hour, jitter_s=0) == dt.timedelta(0)
    assert start_offset("w", None) == dt.timedelta(0)
    assert start_offset("w", hour, jitter_s=2) < 2 * SECOND


def test_schedule_period():
    assert schedule_period(every(300, "5m"), utc(2024, 1, 1), utc(2024, 1, 1)) == dt.timedelta(minutes=5)
    hourly = watch_trigger("trigger: {schedule: {hourly: {minute: [0, 15]}}}")
    assert schedule_period(hourly, None, utc(2024, 1, 1, 10, 5)) == dt.timedelta(minutes=45)
    never = watch_trigger("trigger: {schedule: {cron: '0 0 0 1 1 ? 1999'}}")
    assert schedule_period(never, None, utc(2024, 1, 1)) is None


def test_watch_trigger_shifts_fire_times_and_maps_them_back():
    trigger = WatchTrigger(every(60, "1m"), utc(2024, 1, 1, 0, 0, 0), dt.timedelta(seconds=4))
    first = trigger.get_next_fire_time(None, utc(2024, 1, 1, 0, 1, 2))
    assert first == utc(2024, 1, 1, 0, 2, 4)
    assert trigger.scheduled_time(first) == utc(2024, 1, 1, 0, 2, 0)
    assert trigger.get_next_fire_time(first, utc(2024, 1, 1, 0, 9, 0)) == utc(2024, 1, 1, 0, 3, 4)
    # A nominal time before registration is never run, even while its shifted start is ahead.
    assert trigger.get_next_fire_time(None, utc(2024, 1, 1, 0, 2, 1)) == utc(2024, 1, 1, 0, 3, 4)


# --- missed_ticks -------------------------------------------------------------------------------------

def test_missed_ticks_interval():
    five = every(300, "5m")
    anchor = utc(2024, 1, 1, 10, 0, 0)
    assert missed_ticks(five, utc(2024, 1, 1, 10, 7), utc(2024, 1, 1, 10, 31), anchor, limit=100) == [
        utc(2024, 1, 1, 10, 10), utc(2024, 1, 1, 10, 15), utc(2024, 1, 1, 10, 20),
        utc(2024, 1, 1, 10, 25), utc(2024, 1, 1, 10, 30)]
    # last_scheduled excluded, now included.
    assert missed_ticks(five, utc(2024, 1, 1, 10, 10), utc(2024, 1, 1, 10, 20), anchor) == [
        utc(2024, 1, 1, 10, 15), utc(2024, 1, 1, 10, 20)]
    # Capped: the most recent ones, computed without walking a month of ticks.
    assert missed_ticks(five, utc(2024, 1, 1, 10, 7), utc(2024, 2, 1, 10, 31), anchor, limit=3) == [
        utc(2024, 2, 1, 10, 20), utc(2024, 2, 1, 10, 25), utc(2024, 2, 1, 10, 30)]
    assert missed_ticks(five, utc(2024, 1, 1, 10, 7), utc(2024, 1, 1, 10, 9), anchor) == []
    assert missed_ticks(five, utc(2024, 1, 1, 10, 7), utc(2024, 1, 1, 10, 31), anchor, limit=0) == []
    # Before the anchor: the first fire is anchor + interval.
    assert missed_ticks(five, utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 5), anchor) == [utc(2024, 1, 1, 10, 5)]
    with pytest.raises(ValueError, match="anchor"):
        missed_ticks(five, utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 5), None)


def test_missed_ticks_cron_with_time_zone():
    # 09:00 Paris on weekdays; 2024-03-29 is a Friday, DST starts on Sunday 2024-03-31.
    weekdays = watch_trigger("trigger: {schedule: {cron: '0 0 9 ? * MON-FRI', timezone: Europe/Paris}}")
    assert missed_ticks(weekdays, utc(2024, 3, 27, 12), utc(2024, 4, 2, 7, 0), limit=10) == [
        utc(2024, 3, 28, 8), utc(2024, 3, 29, 8), utc(2024, 4, 1, 7), utc(2024, 4, 2, 7)]
    assert missed_ticks(weekdays, utc(2024, 3, 27, 12), utc(2024, 4, 2, 7, 0), limit=2) == [
        utc(2024, 4, 1, 7), utc(2024, 4, 2, 7)]


def test_missed_ticks_cron_capped_after_a_long_outage():
    every_minute = watch_trigger("trigger: {schedule: {cron: '0 * * * * ?'}}")
    assert missed_ticks(every_minute, utc(2023, 1, 1), utc(2024, 1, 1, 12, 0, 30), limit=3) == [
        utc(2024, 1, 1, 11, 58), utc(2024, 1, 1, 11, 59), utc(2024, 1, 1, 12, 0)]
    daily = watch_trigger("trigger: {schedule: {daily: {at: [noon, '23:30']}}}")
    assert missed_ticks(daily, utc(2024, 1, 1, 12), utc(2024, 1, 3, 12), limit=10) == [
        utc(2024, 1, 1, 23, 30), utc(2024, 1, 2, 12), utc(2024, 1, 2, 23, 30), utc(2024, 1, 3, 12)]
    never = watch_trigger("trigger: {schedule: {cron: '0 0 0 1 1 ? 1999'}}")
    assert missed_ticks(never, utc(2023, 1, 1), utc(2024, 1, 1)) == []


def test_registration_phase_is_deterministic_within_the_period_and_spreads_watches():
    from watcher.daemon.scheduler import registration_phase

    minute = dt.timedelta(minutes=1)
    phases = [registration_phase(f"rule-{i:05d}", minute) for i in range(10_000)]
    assert phases[7] == registration_phase("rule-00007", minute)              # the same in every process
    assert all(dt.timedelta(0) <= p < minute for p in phases)
    per_second = collections.Counter(int(p.total_seconds()) for p in phases)
    assert len(per_second) == 60 and max(per_second.values()) < 2 * 10_000 / 60   # spread evenly, no pile-up
