"""watcher.operations on the real Elasticsearch: each change saves the state and appends its operator
event to ``<prefix>-events`` (deterministic id, actor); a request that changes nothing appends nothing;
errors are typed."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest

from watcher import operations
from watcher.delivery.outbox import Outbox
from watcher.es.state import StateStore, WatchState
from watcher.model.status import ACKED, WatchStatus

pytestmark = pytest.mark.es

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def clock() -> dt.datetime:
    return NOW


@pytest.fixture
def prefix(es):
    prefix = f"test-opsmod-{uuid.uuid4().hex[:10]}"
    yield prefix
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")


@pytest.fixture
def store(es, prefix):
    store = StateStore(es, prefix=prefix)
    store.ensure()
    status = WatchStatus(last_checked=T0, last_met_condition=T0, execution_state="executed")
    status.action("notify").record_result("success", T0)
    status.action("page").record_result("failure", T0, reason="received [500] status code")
    store.save(WatchState("cpu-high", status=status))
    return store


def events(es, prefix) -> list[dict]:
    es.indices.refresh(index=f"{prefix}-events")
    hits = es.search(index=f"{prefix}-events", size=100, sort=[{"_seq_no": "asc"}])["hits"]["hits"]
    return [{"id": hit["_id"], **hit["_source"]} for hit in hits]


def test_ack_saves_and_appends_one_acked_event_per_acked_action(es, prefix, store):
    result = operations.ack(es, prefix, "cpu-high", [], actor="api:ops", clock=clock)

    assert {a: (r.result, r.ack_state) for a, r in result.actions.items()} == {
        "notify": ("acked", ACKED), "page": ("not_ackable", "awaits_successful_execution")}
    assert store.load("cpu-high").status.actions["notify"].ack_state == ACKED
    logged = events(es, prefix)
    assert [(e["kind"], e["watch_id"], e["action_id"], e["actor"], e["time"]) for e in logged] == [
        ("acked", "cpu-high", "notify", "api:ops", "2026-01-01T12:00:00.000Z")]
    assert logged[0]["id"] == result.events[0].id

    again = operations.ack(es, prefix, "cpu-high", ["notify"], actor="api:ops", clock=clock)
    assert again.actions["notify"].result == "already_acked" and again.events == []
    assert len(events(es, prefix)) == 1


def test_deactivate_activate_append_their_events_and_no_change_appends_nothing(es, prefix, store):
    off = operations.set_active(es, prefix, "cpu-high", False, actor="cli:alice", clock=clock)
    same = operations.set_active(es, prefix, "cpu-high", False, actor="cli:alice", clock=clock)
    on = operations.set_active(es, prefix, "cpu-high", True, actor="cli:alice", clock=clock)

    assert (off.changed, same.changed, on.changed) == (True, False, True)
    assert store.load("cpu-high").active is True
    assert [(e["kind"], e["actor"]) for e in events(es, prefix)] == [("deactivated", "cli:alice"),
                                                                    ("activated", "cli:alice")]


def test_silence_and_unsilence_a_group_append_events_with_the_group(es, prefix, store):
    until = operations.silence_end(duration="2h", now=NOW)
    silenced = operations.silence(es, prefix, "cpu-high", until, group="10.0.0.1", actor="api:ops", clock=clock)
    lifted = operations.unsilence(es, prefix, "cpu-high", group="10.0.0.1", actor="api:ops", clock=clock)
    nothing = operations.unsilence(es, prefix, "cpu-high", group="10.0.0.1", actor="api:ops", clock=clock)

    assert silenced.silences == {"10.0.0.1": "2026-01-01T14:00:00.000Z"}
    assert (lifted.was_silenced, lifted.silences, nothing.was_silenced, nothing.events) == (True, {}, False, [])
    logged = events(es, prefix)
    assert [(e["kind"], e["group"]) for e in logged] == [("silenced", "10.0.0.1"), ("unsilenced", "10.0.0.1")]
    assert logged[0]["details"] == {"until": "2026-01-01T14:00:00.000Z"}


def test_a_defined_watch_never_saved_is_created_inactive_as_asked(es, prefix, store):
    defined = {"fresh": operations.Defined(("notify",), active=True)}
    result = operations.set_active(es, prefix, "fresh", False, actor="api:ops", defined=defined, clock=clock)
    assert result.changed and store.load("fresh").active is False


def test_errors_are_typed_and_change_nothing(es, prefix, store):
    with pytest.raises(operations.UnknownWatch) as unknown:
        operations.ack(es, prefix, "cpu-hihg", [], actor="api:ops")
    assert unknown.value.known == ["cpu-high"] and "did you mean 'cpu-high'?" in str(unknown.value)
    with pytest.raises(operations.UnknownAction) as action:
        operations.ack(es, prefix, "cpu-high", ["notfy"], actor="api:ops")
    assert action.value.known == ["notify", "page"]
    with pytest.raises(operations.BadValue):
        operations.silence_end(until="2001-01-01T00:00:00Z", now=NOW)
    with pytest.raises(operations.BadValue):
        operations.silence_end(duration="soon", now=NOW)
    with pytest.raises(operations.UnknownDelivery):
        operations.retry_dead_delivery(Outbox(es, prefix), "no-such-delivery")
    assert not es.indices.exists(index=f"{prefix}-events")
