"""The public Python API (watcher.api, re-exported by watcher): what needs no cluster."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import watcher
from watcher import api

RULES = Path(__file__).resolve().parents[2] / "rules"
UTC = dt.timezone.utc


def test_the_package_re_exports_exactly_the_api():
    assert sorted(watcher.__all__) == sorted(["__version__", *api.__all__])
    assert all(getattr(watcher, name) is getattr(api, name) for name in api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        watcher.nothing  # noqa: B018


def test_importing_a_module_of_the_package_does_not_load_the_engine():
    code = "import sys, watcher.support.durations; print('watcher.engine.execute' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_load_reads_the_shipped_rules_and_connectors():
    loaded = watcher.load([RULES])
    assert loaded.problems == []
    assert {"ssh-bruteforce", "ssh-user-enumeration", "ssh-bruteforce-watch"} <= set(loaded.watches)
    assert loaded.watches["ssh-bruteforce"].rule.group_by == "source.ip"
    assert "opsgenie" in loaded.connectors


def test_load_reports_a_bad_file_and_keeps_the_good_ones(tmp_path):
    (tmp_path / "good.yaml").write_text("name: good\nindex: logs\nwindow: 5m\n")
    (tmp_path / "bad.yaml").write_text("name: bad\nindex: logs\n")
    loaded = watcher.load([tmp_path])
    assert list(loaded.watches) == ["good"]
    assert [str(p) for p in loaded.problems] == [f"{tmp_path / 'bad.yaml'}:1:1: missing required field 'window'"]


def test_schedule_times_of_an_interval_rule_start_at_first():
    watch = watcher.load([RULES]).watches["ssh-bruteforce"]  # schedule: 1m
    first = dt.datetime(2024, 12, 10, 3, 0, tzinfo=UTC)
    times = watcher.schedule_times(watch, first, first + dt.timedelta(minutes=3))
    assert times == [first + dt.timedelta(minutes=m) for m in range(4)]


def test_schedule_times_of_a_cron_rule_follow_its_time_zone(tmp_path):
    (tmp_path / "r.yaml").write_text("name: r\nindex: logs\nwindow: 1d\n"
                                     "schedule: {cron: '0 8 * * *', timezone: Europe/Paris}\n")
    watch = watcher.load([tmp_path]).watches["r"]
    times = watcher.schedule_times(watch, dt.datetime(2026, 3, 28, tzinfo=UTC), dt.datetime(2026, 3, 30, tzinfo=UTC))
    assert times == [dt.datetime(2026, 3, 28, 7, tzinfo=UTC), dt.datetime(2026, 3, 29, 6, tzinfo=UTC)]  # DST on the 29th


def test_naive_times_are_refused():
    watch = watcher.load([RULES]).watches["ssh-bruteforce"]
    with pytest.raises(ValueError, match="expected an aware datetime"):
        watcher.backtest(watch, None, [dt.datetime(2026, 1, 1)])
