"""The state of a watch record (Watcher's WatchRecord state, docs/semantics.md#record-state): which
outcome wins when actions differ. Pinned because a swap here changes what history and status say."""

from __future__ import annotations

import pytest

from watcher.engine.execute import record_state

MET = {"met": True}


@pytest.mark.parametrize("statuses, state", [
    (["acknowledged", "throttled"], "acknowledged"),      # an ack outranks a throttle…
    (["throttled", "acknowledged"], "acknowledged"),      # …whatever the order of the actions
    (["throttled", "success"], "throttled"),              # a throttle outranks an executed action
    (["success", "throttled", "failure"], "throttled"),
    (["success", "failure"], "executed"),                 # failures do not change the record state
    (["simulated"], "executed"),
    ([], "executed"),                                      # met, no actions
])
def test_a_met_condition_takes_the_strongest_action_outcome(statuses, state):
    assert record_state(MET, [{"status": s} for s in statuses]) == state


def test_a_condition_not_met_needs_no_execution_whatever_the_actions_say():
    assert record_state({"met": False}, [{"status": "acknowledged"}]) == "execution_not_needed"


def test_no_condition_result_is_a_failed_run():
    assert record_state(None, [{"status": "acknowledged"}]) == "failed"
