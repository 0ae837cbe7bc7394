"""watcher.operations: inputs refused before the cluster is asked anything (shared by the CLI and the API)."""

from __future__ import annotations

import datetime as dt

import pytest

from watcher import operations

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("until", ["2030-01-01T08:00:00", "2030-01-01 08:00"])
def test_a_silence_end_without_offset_is_refused(until):
    with pytest.raises(operations.BadValue) as caught:
        operations.silence_end(until=until, now=NOW)
    assert str(caught.value) == (f"expected an ISO-8601 time with its offset (Z, +01:00), such as "
                                 f"2026-12-01T08:00:00+01:00, found {until!r}")


def test_a_silence_end_with_offset_is_its_utc_instant():
    assert operations.silence_end(until="2030-01-01T08:00:00+01:00", now=NOW) == dt.datetime(
        2030, 1, 1, 7, 0, tzinfo=dt.timezone.utc)
    assert operations.silence_end(until="2030-01-01T08:00:00Z", now=NOW).hour == 8


def test_a_group_key_longer_than_the_limit_is_refused_before_the_cluster_is_asked():
    with pytest.raises(operations.BadValue) as caught:
        operations.silence(None, "p", "w", NOW + dt.timedelta(hours=1), group="g" * 513, actor="cli:me",
                           clock=lambda: NOW)
    assert str(caught.value) == "expected a group key of at most 512 characters, found 513"


def test_silencing_a_watcher_watch_is_refused_because_its_runs_ignore_silences():
    defined = {"w": operations.Defined(("log",), True, rule=False), "r": operations.Defined(("hook",))}
    with pytest.raises(operations.BadValue) as caught:
        operations.silence(None, "p", "w", NOW + dt.timedelta(hours=1), actor="cli:me", defined=defined,
                           clock=lambda: NOW)
    assert str(caught.value) == ("[w] is an Elastic Watcher watch, and silences apply to rules only: "
                                 "ack its actions or deactivate it instead")
