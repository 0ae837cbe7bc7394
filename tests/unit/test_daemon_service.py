"""The daemon's pure decisions: record ids, progress, transient failures, state merges, reload plans."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

from watcher.daemon.reload import plan_reload
from watcher.daemon.service import merge_state, progress_of, record_id_for, transient_reason, window_end_of
from watcher.definitions.load import LoadResult, load_paths
from watcher.model.status import WatchStatus
from watcher.es.state import WatchState

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone.utc)
WATCH = {"trigger": {"schedule": {"interval": "1m"}}, "actions": {"log": {"logging": {"text": "x"}}}}


def load(tmp_path, files: dict[str, str]) -> LoadResult:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return load_paths([tmp_path])


def test_record_id_is_deterministic_per_watch_and_tick():
    first = record_id_for("ssh", T)
    assert first == record_id_for("ssh", T)
    assert first.startswith("ssh_") and first.endswith("-2026-11-29T10:00:00.000Z")
    assert record_id_for("ssh", T + dt.timedelta(milliseconds=1)) != first
    assert record_id_for("ssh2", T) != first


def test_progress_is_the_inverse_of_window_end(tmp_path):
    result = load(tmp_path, {"connectors.yaml": "connectors: {}\n", "w.json": json.dumps(WATCH),
                             "r.yaml": "name: r\nindex: logs\nwindow: 5m\ndelay: 30s\n"})
    rule, watch = result.watches["r"], result.watches["w"]
    assert window_end_of(rule, T) == T - dt.timedelta(seconds=30)
    assert window_end_of(watch, T) == T
    for item in (rule, watch):
        assert progress_of(item, WatchState("x", last_window_end=window_end_of(item, T))) == T
    assert progress_of(rule, None) is None and progress_of(rule, WatchState("r")) is None


def test_transient_reason_finds_cluster_errors_in_nested_action_items():
    record = {"result": {"input": {"status": "success"}, "actions": [
        {"id": "a", "status": "partial_failure", "foreach": [
            {"status": "success"},
            {"status": "failure", "error": {"type": "connection_error", "reason": "refused"}}]}]}}
    assert transient_reason(record) == "connection_error: refused"
    assert transient_reason({"result": {"input": {"status": "failure",
                                                  "error": {"type": "parsing_exception", "reason": "bad"}}}}) is None


def test_merge_state_keeps_a_cli_ack_and_deactivate_made_during_the_run():
    before = WatchState("w", status=WatchStatus(), last_window_end=T)
    before.status.action("log").record_result("success", T)        # ackable when the run loaded it
    fresh = WatchState("w", status=WatchStatus.from_json(before.status.to_json()), last_window_end=T,
                       active=False, seq_no=7, primary_term=1)
    fresh.status.ack(["log"], T + dt.timedelta(seconds=1))          # the CLI acked meanwhile
    ours = WatchState("w", status=WatchStatus.from_json(before.status.to_json()),
                      last_window_end=T + dt.timedelta(minutes=1), seq_no=6, primary_term=1)
    ours.status.last_checked = T + dt.timedelta(minutes=1)

    merged = merge_state(before, ours, fresh)
    assert merged.status.actions["log"].ack_state == "acked"
    assert merged.active is False and merged.status.active is False
    assert merged.last_window_end == T + dt.timedelta(minutes=1)   # the run's progress is not lost
    assert merged.status.last_checked == T + dt.timedelta(minutes=1)
    assert (merged.seq_no, merged.primary_term) == (7, 1)           # saves against the fresh version


def test_merge_state_keeps_the_run_rule_state_and_the_cli_silences():
    before = WatchState("w", rule_state={"firing": {}}, silences={}, seq_no=6, primary_term=1)
    fresh = WatchState("w", rule_state={"firing": {}}, silences={"*": "2026-11-29T12:00:00.000Z"},
                       seq_no=7, primary_term=1)                         # `watcher silence` wrote meanwhile
    ours = WatchState("w", rule_state={"firing": {"a": {"since": "2026-11-29T10:00:00.000Z", "group": "a"}}},
                      silences={}, seq_no=6, primary_term=1)
    merged = merge_state(before, ours, fresh)
    assert merged.silences == {"*": "2026-11-29T12:00:00.000Z"}
    assert merged.rule_state == {"firing": {"a": {"since": "2026-11-29T10:00:00.000Z", "group": "a"}}}


def test_reload_plan_adds_changes_removes_and_keeps_the_last_good_version(tmp_path):
    base = {"connectors.yaml": "connectors: {}\n",
            "a.json": json.dumps(WATCH), "b.json": json.dumps(WATCH), "c.json": json.dumps(WATCH)}
    running = load(tmp_path, base).watches
    (tmp_path / "a.json").write_text(json.dumps({**WATCH, "throttle_period": "10m"}))   # changed
    (tmp_path / "b.json").write_text('{"trigger": {"schedule": {"interval": "1m"}}, "input": ')  # turned bad
    (tmp_path / "c.json").unlink()                                                      # removed
    (tmp_path / "d.yaml").write_text(textwrap.dedent("""\
        name: d
        index: logs
        window: 5m
        """))                                                                           # added
    plan = plan_reload(running, load_paths([tmp_path]))
    assert (plan.added, plan.changed, plan.removed, plan.kept) == (["d"], ["a"], ["c"], ["b"])
    assert plan.watches["b"] is running["b"]
    assert sorted(plan.watches) == ["a", "b", "d"]


def test_merge_state_keeps_the_later_progress_when_another_save_went_further():
    # Two saves of one watch race (a catch-up and a manual run, or two daemons): the progress stored
    # meanwhile is later than this run's, and going back would run those windows a second time.
    before = WatchState("w", status=WatchStatus(), last_window_end=T, seq_no=6, primary_term=1)
    fresh = WatchState("w", status=WatchStatus(), last_window_end=T + dt.timedelta(minutes=5), seq_no=7, primary_term=1)
    ours = WatchState("w", status=WatchStatus(), last_window_end=T + dt.timedelta(minutes=1), seq_no=6, primary_term=1)
    assert merge_state(before, ours, fresh).last_window_end == T + dt.timedelta(minutes=5)
    assert merge_state(before, fresh, ours).last_window_end == T + dt.timedelta(minutes=5)  # whichever side holds it


def test_merge_state_without_any_progress_keeps_none():
    before = WatchState("w", status=WatchStatus(), seq_no=6, primary_term=1)
    fresh = WatchState("w", status=WatchStatus(), seq_no=7, primary_term=1)
    ours = WatchState("w", status=WatchStatus(), seq_no=6, primary_term=1)
    assert merge_state(before, ours, fresh).last_window_end is None
