"""The state index on the real Elasticsearch: mapping, round trip, optimistic concurrency."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest

from watcher.model.status import ACKED, WatchStatus
from watcher.es.state import StateConflict, StateStore, WatchState

pytestmark = pytest.mark.es

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(es):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    store = StateStore(es, prefix=prefix, clock=lambda: T0)
    store.ensure()
    yield store
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=store.index)


def status_with_acked_action() -> WatchStatus:
    status = WatchStatus(last_checked=T0, last_met_condition=T0)
    action = status.action("notify")
    action.record_result("success", T0)
    action.ack(T0 + dt.timedelta(seconds=5))
    action.groups["notify/host-1"] = T0
    return status


def test_ensure_creates_the_explicit_mapping_and_is_idempotent(es, store):
    store.ensure()  # second call: no error
    mapping = es.indices.get_mapping(index=store.index)[store.index]["mappings"]
    assert mapping["dynamic"] == "false"
    props = mapping["properties"]
    assert props["watch_id"] == {"type": "keyword"}
    assert props["updated_at"] == {"type": "date"}
    assert props["last_window_end"] == {"type": "date"}
    assert props["active"] == {"type": "boolean"}
    assert props["status"] == {"type": "object", "enabled": False}


def test_save_then_load_round_trips_status_and_rule_state(store):
    saved = store.save(WatchState("cpu-high", status=status_with_acked_action(),
                                  last_window_end=dt.datetime(2024, 5, 1, 9, 55, tzinfo=dt.timezone.utc)))
    assert saved.seq_no is not None and saved.primary_term is not None

    loaded = store.load("cpu-high")
    assert loaded.watch_id == "cpu-high"
    assert loaded.active is True
    assert loaded.last_window_end == dt.datetime(2024, 5, 1, 9, 55, tzinfo=dt.timezone.utc)
    assert loaded.last_window_end.tzinfo is not None and loaded.last_window_end.utcoffset() == dt.timedelta(0)
    assert (loaded.seq_no, loaded.primary_term) == (saved.seq_no, saved.primary_term)
    action = loaded.status.actions["notify"]
    assert action.ack_state == ACKED
    assert action.ack_timestamp == T0 + dt.timedelta(seconds=5)
    assert action.last_successful_execution == T0
    assert action.groups == {"notify/host-1": T0}
    assert loaded.status.last_checked == T0


def test_load_of_an_unknown_watch_is_none(store):
    assert store.load("never-saved") is None


def test_active_flag_is_stored_and_searchable(es, store):
    store.save(WatchState("a", active=False))
    store.save(WatchState("b", active=True))
    es.indices.refresh(index=store.index)
    hits = es.search(index=store.index, query={"term": {"active": False}})["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == ["a"]
    assert hits[0]["_source"]["status"]["state"]["active"] is False
    assert store.load("a").status.active is False


def test_updated_at_and_window_end_are_dates(es, store):
    store.save(WatchState("w", last_window_end=dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.timezone.utc)))
    es.indices.refresh(index=store.index)
    hits = es.search(index=store.index, query={"range": {"last_window_end": {"gte": "2024-05-01T08:30:00Z"}}})
    assert [hit["_id"] for hit in hits["hits"]["hits"]] == ["w"]
    assert es.get(index=store.index, id="w")["_source"]["updated_at"] == "2024-05-01T10:00:00.123Z"


def test_save_of_a_stale_version_raises_state_conflict(store):
    first = store.save(WatchState("w"))
    mine = store.load("w")
    theirs = store.load("w")
    theirs.last_window_end = T0
    store.save(theirs)
    mine.active = False
    with pytest.raises(StateConflict, match=r"state of watch \[w\] was changed by another process"):
        store.save(mine)
    assert store.load("w").active is True  # the losing write changed nothing
    assert store.load("w").seq_no > first.seq_no


def test_creating_a_state_someone_else_created_conflicts(store):
    store.save(WatchState("w"))
    with pytest.raises(StateConflict):
        store.save(WatchState("w"))  # never loaded: seq_no None → create


def test_successive_saves_with_the_returned_version_succeed(store):
    state = store.save(WatchState("w"))
    for minute in range(3):
        state.last_window_end = T0 + dt.timedelta(minutes=minute)
        state = store.save(state)
    assert store.load("w").last_window_end == T0 + dt.timedelta(minutes=2)


def test_load_all_sees_every_acknowledged_write_without_waiting_for_refresh(store):
    for n in range(5):
        store.save(WatchState(f"watch-{n}", active=n % 2 == 0))
    everything = store.load_all()  # no explicit refresh by the test
    assert sorted(everything) == [f"watch-{n}" for n in range(5)]
    assert [everything[f"watch-{n}"].active for n in range(5)] == [True, False, True, False, True]
    assert all(state.seq_no is not None for state in everything.values())
    # a state loaded through load_all can be saved (it carries its version)
    store.save(everything["watch-0"])


def test_load_all_without_index_is_empty(es):
    assert StateStore(es, prefix=f"test-{uuid.uuid4().hex[:10]}").load_all() == {}


def test_delete(store):
    store.save(WatchState("w"))
    assert store.delete("w") is True
    assert store.load("w") is None
    assert store.delete("w") is False


def test_rule_state_and_silences_round_trip_and_are_not_indexed(es, store):
    rule_state = {"type_state": {"type": "new_term", "data": {"user": {"root": "2026-11-29T10:00:00.000Z",
                                                                       "0": "2026-11-29T10:01:00.000Z"}}},
                  "firing": {"*": {"since": "2026-11-29T10:00:00.000Z", "group": None}},
                  "realert": {"a": {"until": "2026-11-29T10:05:00.000Z", "exponent": 2}}}
    saved = store.save(WatchState("rule-a", rule_state=rule_state, silences={"b": "2026-11-30T00:00:00.000Z"}))
    store.save(WatchState("rule-b", rule_state={"firing": {}}))
    loaded = store.load("rule-a")
    assert loaded.rule_state == rule_state and loaded.silences == {"b": "2026-11-30T00:00:00.000Z"}
    assert store.load("rule-b").rule_state == {"firing": {}}            # one document per rule
    assert (loaded.seq_no, loaded.primary_term) == (saved.seq_no, saved.primary_term)
    mapping = es.indices.get_mapping(index=store.index)[store.index]["mappings"]["properties"]
    assert mapping["rule_state"] == {"type": "object", "enabled": False}
    assert mapping["silences"] == {"type": "object", "enabled": False}
