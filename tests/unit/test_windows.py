"""Calendar windows: a cron rule whose window equals its period searches from the previous fire time
(docs/rule-types.md#windows-groups-time-zones). Schedules are computed, no cluster needed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import watcher
from watcher.cli import main
from watcher.engine.windows import uses_calendar_window, window_of
from watcher.schedule import nominal_period, previous_fire

UTC = dt.timezone.utc
DAILY_PARIS = "schedule: {cron: '0 8 * * *', timezone: Europe/Paris}\n"


def rule(tmp_path: Path, extra: str, window: str = "24h"):
    (tmp_path / "r.yaml").write_text(f"name: r\nindex: logs\nwindow: {window}\n{extra}")
    loaded = watcher.load([tmp_path])
    assert not loaded.problems, [str(p) for p in loaded.problems]
    return loaded.watches["r"]


@pytest.mark.parametrize("schedule, period", [
    ("{cron: '0 8 * * *', timezone: Europe/Paris}", dt.timedelta(days=1)),
    ("{cron: '0 * * * *'}", dt.timedelta(hours=1)),
    ("{cron: '30 6 * * 1', timezone: America/New_York}", dt.timedelta(days=7)),
])
def test_the_usual_period_of_a_cron_schedule_ignores_daylight_saving(tmp_path, schedule, period):
    assert nominal_period(rule(tmp_path, f"schedule: {schedule}\n").trigger) == period


def test_the_previous_fire_time_of_a_daily_local_cron_on_daylight_saving_days(tmp_path):
    trigger = rule(tmp_path, DAILY_PARIS).trigger
    assert previous_fire(trigger, dt.datetime(2026, 3, 29, 6, tzinfo=UTC)) == dt.datetime(2026, 3, 28, 7, tzinfo=UTC)
    assert previous_fire(trigger, dt.datetime(2026, 10, 25, 7, tzinfo=UTC)) == dt.datetime(2026, 10, 24, 6, tzinfo=UTC)


def test_a_daily_cron_with_a_24h_window_gets_a_calendar_window_by_default(tmp_path):
    watch = rule(tmp_path, DAILY_PARIS)
    assert uses_calendar_window(watch.rule)
    # 23 hours on the day clocks go forward, 25 on the day they go back.
    assert window_of(watch.rule, dt.datetime(2026, 3, 29, 6, tzinfo=UTC)) == (
        dt.datetime(2026, 3, 28, 7, tzinfo=UTC), dt.datetime(2026, 3, 29, 6, tzinfo=UTC))
    assert window_of(watch.rule, dt.datetime(2026, 10, 25, 7, tzinfo=UTC)) == (
        dt.datetime(2026, 10, 24, 6, tzinfo=UTC), dt.datetime(2026, 10, 25, 7, tzinfo=UTC))


def test_a_delay_shifts_both_ends_of_a_calendar_window(tmp_path):
    watch = rule(tmp_path, DAILY_PARIS + "delay: 5m\n")
    assert window_of(watch.rule, dt.datetime(2026, 3, 29, 6, tzinfo=UTC)) == (
        dt.datetime(2026, 3, 28, 6, 55, tzinfo=UTC), dt.datetime(2026, 3, 29, 5, 55, tzinfo=UTC))


def test_a_default_calendar_window_does_not_span_a_weekend_but_an_explicit_one_does(tmp_path):
    weekdays = "schedule: {cron: '0 8 * * 1-5', timezone: Europe/Paris}\n"
    monday = dt.datetime(2026, 3, 30, 6, tzinfo=UTC)
    assert window_of(rule(tmp_path, weekdays).rule, monday)[0] == dt.datetime(2026, 3, 29, 6, tzinfo=UTC)
    assert window_of(rule(tmp_path, weekdays + "calendar_window: true\n").rule, monday)[0] == \
        dt.datetime(2026, 3, 27, 7, tzinfo=UTC)  # Friday 08:00 Paris (CET)


@pytest.mark.parametrize("extra, window, calendar", [
    (DAILY_PARIS, "12h", False),                          # not the period: the fixed window
    (DAILY_PARIS + "calendar_window: false\n", "24h", False),
    (DAILY_PARIS + "calendar_window: true\n", "12h", True),
    ("schedule: 1d\n", "24h", False),                      # an interval has no calendar
])
def test_when_a_rule_gets_a_calendar_window(tmp_path, extra, window, calendar):
    assert uses_calendar_window(rule(tmp_path, extra, window).rule) is calendar


def test_a_calendar_window_on_an_interval_schedule_is_refused_where_it_is_written(tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\nindex: logs\nwindow: 24h\nschedule: 1d\ncalendar_window: true\n")
    problems = watcher.load([tmp_path]).problems
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'r.yaml'}:5:18: calendar_window: a calendar window needs a cron schedule (it runs from the "
        "previous fire time); an interval schedule searches its fixed window"]


def test_the_compiled_search_starts_at_the_previous_fire_time_and_the_watcher_export_at_the_fixed_window(tmp_path):
    watch = rule(tmp_path, DAILY_PARIS)
    search_range = watch.body["input"]["search"]["request"]["body"]["query"]["bool"]["filter"][0]["range"]["@timestamp"]
    assert search_range["gte"] == "{{ctx.trigger.window_start}}"
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "r.yaml"), "--to", "watch"])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)["input"]["search"]["request"]["body"]["query"]["bool"]["filter"][0]
    assert exported["range"]["@timestamp"]["gte"] == "{{ctx.trigger.scheduled_time}}||-1d"
    assert "calendar window" in result.stderr
