"""Watcher's per-action throttle and ack state machine (watcher-semantics §1.6, §1.8)."""

from __future__ import annotations

import datetime as dt

from watcher.model.status import ACKABLE, ACKED, AWAITS, ActionStatus, WatchStatus

T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
MIN = dt.timedelta(minutes=1)


def test_never_run_is_not_throttled():
    assert ActionStatus().throttled_reason(dt.timedelta(minutes=15), T0) is None


def test_throttle_is_inclusive_and_keyed_on_last_success():
    status = ActionStatus()
    status.record_result("success", T0)
    period = dt.timedelta(minutes=15)
    assert status.throttled_reason(period, T0 + 15 * MIN) == (
        "throttling interval is set to [15m] but time elapsed since last execution is [15m]")
    assert status.throttled_reason(period, T0 + 15 * MIN + dt.timedelta(milliseconds=1)) is None


def test_failures_do_not_start_a_throttle_window():
    status = ActionStatus()
    status.record_result("failure", T0, reason="received [500] status code")
    assert status.throttled_reason(dt.timedelta(minutes=15), T0 + MIN) is None
    assert status.to_json()["last_execution"] == {
        "timestamp": "2024-05-01T10:00:00.000Z", "successful": False, "reason": "received [500] status code"}


def test_ack_state_machine():
    status = ActionStatus()
    assert status.ack(T0) is False and status.ack_state == AWAITS  # ack is a no-op before a success
    status.record_result("simulated", T0)  # simulated successes make it ackable too
    assert status.ack_state == ACKABLE and status.ack_timestamp == T0
    assert status.ack(T0 + MIN) is True and status.ack_state == ACKED
    status.record_result("success", T0 + 2 * MIN)  # stays acked while the condition holds
    assert status.ack_state == ACKED and status.ack_timestamp == T0 + MIN
    status.reset_ack(T0 + 3 * MIN)
    assert status.ack_state == AWAITS and status.ack_timestamp == T0 + 3 * MIN
    status.reset_ack(T0 + 4 * MIN)  # timestamp changes only when the state changes
    assert status.ack_timestamp == T0 + 3 * MIN


def test_group_keys_throttle_independently():
    status = ActionStatus()
    status.record_result("success", T0, group="10.0.0.1")
    period = dt.timedelta(minutes=10)
    assert status.throttled_reason(period, T0 + MIN, group="10.0.0.1") is not None
    assert status.throttled_reason(period, T0 + MIN, group="10.0.0.2") is None


def test_watch_status_round_trips_through_json():
    status = WatchStatus(last_checked=T0, last_met_condition=T0, execution_state="executed", version=3)
    status.action("og").record_result("success", T0)
    status.action("og").record_throttle(T0 + MIN, "throttled")
    status.action("log").record_result("success", T0, group="h1")
    again = WatchStatus.from_json(status.to_json())
    assert again.to_json() == status.to_json()
    assert status.to_json()["actions"]["og"]["ack"] == {"timestamp": "2024-05-01T10:00:00.000Z", "state": "ackable"}
    assert again.ack(["og"], T0 + MIN) == ["og"]
    assert again.ack(None, T0 + MIN) == ["log"]


def test_zero_throttle_period_means_no_throttle():
    status = ActionStatus()
    status.record_result("success", T0)
    assert status.throttled_reason(dt.timedelta(0), T0) is None


def test_a_catch_up_success_starts_its_throttle_period_at_its_on_time_start():
    status = ActionStatus()
    late = T0 + 9 * MIN                                     # ran nine minutes late, as a catch-up
    status.record_result("success", late, on_time=T0)
    period = dt.timedelta(seconds=5)
    assert status.throttled_reason(period, T0 + MIN) is None                # the next tick's on-time start
    assert status.throttled_reason(period, T0 + dt.timedelta(seconds=5)) is not None
    assert status.last_successful_execution == late                          # Watcher's timestamps stay real
    again = ActionStatus.from_json(status.to_json())
    assert status.to_json()["last_successful_execution"] == {
        "timestamp": "2024-05-01T10:09:00.000Z", "successful": True, "on_time": "2024-05-01T10:00:00.000Z"}
    assert again.throttled_since == T0


def test_a_catch_up_success_keys_its_group_on_its_on_time_start():
    status = ActionStatus()
    status.record_result("success", T0 + 9 * MIN, group="10.0.0.1", on_time=T0)
    assert status.groups == {"10.0.0.1": T0}
    assert status.throttled_reason(dt.timedelta(seconds=5), T0 + MIN, group="10.0.0.1") is None


def test_a_state_saved_before_catch_ups_were_known_throttles_from_the_execution_time():
    saved = {"ack": {"state": "ackable", "timestamp": "2024-05-01T10:00:00.000Z"},
             "last_successful_execution": {"timestamp": "2024-05-01T10:00:00.000Z", "successful": True}}
    status = ActionStatus.from_json(saved)
    assert status.throttled_since == T0 and status.to_json()["last_successful_execution"] == saved[
        "last_successful_execution"]
