"""Catch-up runs are judged as if they had run on time (issue 17, item 1; docs/correctness.md#catch-up-runs).

After a restart, an outage or ``--backfill-from`` the daemon runs the missed ticks milliseconds apart.
Measured in execution time, Watcher's default 5 s throttle marked every tick after the first
``throttled``; these tests pin the throttle of catch-up runs to their on-time starts, and the record
saying the run was a catch-up."""

from __future__ import annotations

import datetime as dt
import json

from watcher.daemon.service import catch_up_on_time
from watcher.definitions.watch import parse_watch
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.status import WatchStatus

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)        # the first missed tick
MIN = dt.timedelta(minutes=1)
MS = dt.timedelta(milliseconds=1)
RESTART = T0 + 10 * MIN + 250 * MS                        # when the daemon came back


def _watch(throttle: str | None = None):
    body = {"trigger": {"schedule": {"interval": "1m"}}, "input": {"simple": {"n": 1}},
            "condition": {"always": {}}, "actions": {"log": {"logging": {"text": "tick {{ctx.trigger.scheduled_time}}"}}}}
    if throttle is not None:
        body["throttle_period"] = throttle
    document = load_text(json.dumps(body), "catch-up.json")
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert reader.problems == []
    return watch


def _run(watch, status, scheduled, started, on_time):
    run = Run(watch=watch, execution_time=started, triggered_time=started, scheduled_time=scheduled,
              services=Services(), on_time=on_time)
    return execute_watch(watch, run, status, {"simulate": Simulate(), "execute": SendNow()},
                         ExecuteOptions(default_mode="simulate"))


def _catch_ups(watch, status, ticks: int):
    """The first ``ticks`` ticks run right after the restart, 41 ms apart, as catch-ups."""
    return [_run(watch, status, T0 + k * MIN, RESTART + k * 41 * MS, on_time=T0 + k * MIN) for k in range(ticks)]


def _action(record) -> dict:
    (action,) = record["result"]["actions"]
    return action


def test_catch_up_runs_milliseconds_apart_are_not_throttled_by_the_default_period():
    watch, status = _watch(), WatchStatus()
    records = _catch_ups(watch, status, 3)
    assert [_action(r)["status"] for r in records] == ["simulated"] * 3
    assert [r["state"] for r in records] == ["executed"] * 3


def test_a_real_throttle_still_holds_between_catch_ups_measured_in_scheduled_time():
    watch, status = _watch(throttle="90s"), WatchStatus()
    records = _catch_ups(watch, status, 3)
    assert [_action(r)["status"] for r in records] == ["simulated", "throttled", "simulated"]
    assert _action(records[1])["reason"] == (
        "throttling interval is set to [90s] but time elapsed since last execution is [1m]")


def test_the_on_time_tick_after_the_catch_ups_is_measured_from_the_last_on_time_start():
    watch, status = _watch(throttle="30s"), WatchStatus()
    _catch_ups(watch, status, 10)                         # T0 … T0+9m, run right after the restart
    current = T0 + 10 * MIN                               # the current tick, run on time (no on_time)
    record = _run(watch, status, current, RESTART + 500 * MS, on_time=None)
    assert _action(record)["status"] == "simulated"       # 1m after T0+9m, not 90 ms after its run
    assert "catch_up" not in record["trigger_event"]["schedule"]
    # the next on-time tick is back to Watcher's rule: measured between execution times
    following = _run(watch, status, current + MIN, current + MIN + 20 * MS, on_time=None)
    assert _action(following)["status"] == "simulated"
    early = _run(watch, status, current + MIN, current + MIN + 25 * dt.timedelta(seconds=1), on_time=None)
    assert _action(early)["reason"] == (
        "throttling interval is set to [30s] but time elapsed since last execution is [24980ms]")


def test_the_record_says_it_was_a_catch_up_and_the_status_keeps_real_execution_times():
    watch, status = _watch(), WatchStatus()
    first, second = _catch_ups(watch, status, 2)
    assert second["trigger_event"] == {"type": "schedule", "triggered_time": "2026-12-03T10:10:00.291Z",
                                       "schedule": {"scheduled_time": "2026-12-03T10:01:00.000Z", "catch_up": True}}
    assert second["messages"] == [
        "catch-up run of the tick due at 2026-12-03T10:01:00.000Z, started 2026-12-03T10:10:00.291Z (540.291s late); "
        "throttle periods measured as if it had started at 2026-12-03T10:01:00.000Z"]
    assert second["result"]["execution_time"] == "2026-12-03T10:10:00.291Z"
    log = second["status"]["actions"]["log"]
    assert log["last_successful_execution"] == {"timestamp": "2026-12-03T10:10:00.291Z", "successful": True,
                                                "on_time": "2026-12-03T10:01:00.000Z"}
    assert WatchStatus.from_json(second["status"]).to_json() == second["status"]   # survives the state index


def test_an_on_time_run_keeps_watchers_record_and_status_shapes():
    watch, status = _watch(), WatchStatus()
    record = _run(watch, status, T0, T0 + 3 * MS, on_time=None)
    assert record["trigger_event"]["schedule"] == {"scheduled_time": "2026-12-03T10:00:00.000Z"}
    assert record["messages"] == []
    assert record["status"]["actions"]["log"]["last_successful_execution"] == {
        "timestamp": "2026-12-03T10:00:00.003Z", "successful": True}


# --- which runs are catch-ups (the daemon's decision) ----------------------------------------------------

def _trigger(schedule: dict):
    return _watch_with_trigger(schedule).trigger


def _watch_with_trigger(schedule: dict):
    document = load_text(json.dumps({"trigger": {"schedule": schedule}, "input": {"none": {}},
                                     "actions": {"log": {"logging": {"text": "x"}}}}), "t.json")
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert reader.problems == []
    return watch


def test_a_missed_tick_is_a_catch_up_whose_on_time_start_includes_the_start_offset():
    trigger = _trigger({"cron": "0 * * * * ?"})
    offset = dt.timedelta(seconds=4, milliseconds=500)
    assert catch_up_on_time(trigger, T0, RESTART, anchor=None, offset=offset, missed=True) == T0 + offset


def test_the_current_tick_is_on_time_until_the_next_one_is_due():
    interval = _trigger({"interval": "1m"})
    # run late, but before the next tick (T0+1m) was due: on time
    assert catch_up_on_time(interval, T0, T0 + 59 * dt.timedelta(seconds=1), anchor=T0 - 5 * MIN) is None
    # started when the next tick was already due: a catch-up
    assert catch_up_on_time(interval, T0, T0 + MIN, anchor=T0 - 5 * MIN) == T0
    cron = _trigger({"cron": "0 */5 * * * ?"})
    assert catch_up_on_time(cron, T0, T0 + 4 * MIN, anchor=None, offset=10 * MS) is None
    assert catch_up_on_time(cron, T0, T0 + 5 * MIN + MS, anchor=None, offset=10 * MS) == T0 + 10 * MS
