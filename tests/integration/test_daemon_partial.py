"""``watcher run`` on a partial search answer, end to end: the real daemon process, the session's real
Elasticsearch, a real HTTP receiver. A rule's search that some shards fail (two indices under one
pattern map ``user.id`` as ``keyword`` and as ``long``; a ``terms`` query for ``"root"`` fails on the
``long`` one) fails the tick like any transient cluster error: the record says ``failed`` with the
warning, progress stays, ``watcher status`` shows why, and once the shards answer again the same
window — and every one after it — is evaluated, none skipped."""

from __future__ import annotations

import datetime as dt
import signal
import uuid

import pytest
from click.testing import CliRunner

from daemon_helpers import start_daemon  # noqa: F401  (the fixture)
from daemon_helpers import SwitchableReceiver, delete_indices, records, scheduled, state, wait_for, write_connectors
from watcher.cli import main
from watcher.support.datemath import format_iso_millis, parse_instant

UTC = dt.timezone.utc


@pytest.fixture
def prefix(es):
    name = f"wp-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


@pytest.fixture
def indices(es, index_name):
    names = [f"{index_name}-a", f"{index_name}-b"]
    yield names
    es.options(ignore_status=404).indices.delete(index=",".join(names))


def _create(es, name: str, kind: str, user_id) -> None:
    es.indices.create(index=name, mappings={"properties": {"@timestamp": {"type": "date"},
                                                           "user": {"properties": {"id": {"type": kind}}}}})
    es.index(index=name, document={"@timestamp": dt.datetime.now(UTC).isoformat(), "user": {"id": user_id}},
             refresh=True)


def test_a_partial_answer_fails_the_tick_keeps_progress_and_the_window_is_run_again(
        es, es_cluster, prefix, index_name, indices, rules_dir, start_daemon):
    keyword, number = indices
    _create(es, keyword, "keyword", "root")
    with SwitchableReceiver() as receiver:
        write_connectors(rules_dir, receiver.url)
        (rules_dir / "partial.yaml").write_text(
            f"name: partial\nschedule: 2s\nindex: {index_name}-*\nwindow: 1h\nthrottle: 1s\n"
            "query: {terms: {user.id: ['7', root]}}\ncondition: {count: {gte: 1}}\nactions:\n  - connector: hook\n")
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: len([r for r in records(es, prefix, "partial") if r["state"] == "executed"]) >= 2, 30,
                 what="runs on complete answers")

        _create(es, number, "long", 7)              # from now on the long shard fails the query
        failed = wait_for(lambda: [r for r in records(es, prefix, "partial") if r["state"] == "failed"], 30,
                          what="a failed run")
        stuck = scheduled(failed[0])
        retried = f"watch partial at {stuck} failed on a cluster error; the window will be retried: partial_results_error"
        wait_for(lambda: daemon.log_path.read_text(errors="replace").count(retried) >= 3, 30,
                 what="the same window failing three times")

        record = next(r for r in records(es, prefix, "partial") if scheduled(r) == stuck)
        assert record["state"] == "failed"
        assert record["result"]["input"]["error"]["type"] == "partial_results_error"
        (warning,) = record["result"]["warnings"]
        assert (warning["type"], warning["failed_shards"], warning["total_shards"], warning["accepted"]) == (
            "partial_results", 1, 2, False)
        saved = state(es, prefix, "partial")
        assert saved["last_window_end"] == format_iso_millis(parse_instant(stuck) - dt.timedelta(seconds=2))
        assert [(w["type"], w["scheduled_time"]) for w in saved["warnings"]] == [("partial_results", stuck)]
        log = daemon.log_path.read_text(errors="replace")
        assert "partial: 1 of 2 shards failed in the input search" in log          # the WARNING line

        shown = CliRunner().invoke(main, ["status", "--index-prefix", prefix, "--rules", str(rules_dir)],
                                   env=es_cluster.env(), catch_exceptions=False)
        assert shown.exit_code == 0, shown.output
        assert (f"    warning at {stuck} [partial_results]: 1 of 2 shards failed in the input search on "
                f"{index_name}-*; the run failed (the daemon runs the window again)") in shown.output

        es.indices.delete(index=number)             # the shards answer again
        wait_for(lambda: (s := state(es, prefix, "partial")) and s["last_window_end"] > stuck and not s["warnings"],
                 30, what="progress past the stuck window")
        assert daemon.stop(signal.SIGTERM) == 0

    runs = records(es, prefix, "partial")
    times = [parse_instant(scheduled(r)) for r in runs]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert all(abs(gap - 2.0) < 0.002 for gap in gaps), gaps   # every window once, the stuck one included
    # the failed record was replaced by its successful re-run (catch-up runs close together are throttled)
    assert {r["state"] for r in runs} <= {"executed", "throttled"}
    assert stuck in {scheduled(r) for r in runs}
