"""State loads (``_mget``), state saves and history writes (``_bulk``) of concurrent threads share
requests on the real node, and each caller still gets what a lone request gives it: its own state
(or None), its own new version or its own :class:`StateConflict`, its own error; and a cluster that
cannot be reached fails every caller in the batch with the lone request's error class.

Batches are made deterministic by holding every request slot of the group commit while the threads
queue (as slow requests in flight would), then releasing them: the next caller sends everything
queued as one request (``stats`` counts the requests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import uuid

import elastic_transport
import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch

from watcher.es import history
from watcher.es.state import StateConflict, StateStore, WatchState
from watcher.es.groupcommit import GroupCommit, document_requests
from tests.groupcommit_helpers import held

pytestmark = pytest.mark.es

T0 = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(es):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    store = StateStore(es, prefix=prefix, clock=lambda: T0)
    store.ensure()
    yield store
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=store.index)


@pytest.fixture
def history_prefix(es):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    history.ensure_template(es, prefix)
    yield prefix
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=history.index_pattern(prefix), expand_wildcards="all")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-history")


def together(group: GroupCommit, jobs: dict) -> tuple[dict, int]:
    """Run ``{name: callable}`` on one thread each while ``group`` is held; returns ``({name:
    result or the exception raised}, requests sent)``."""
    results: dict = {}

    def call(name, job):
        try:
            results[name] = job()
        except Exception as error:  # the test compares what each caller got
            results[name] = error

    before = group.stats["requests"]
    threads = [threading.Thread(target=call, args=item) for item in jobs.items()]
    with held(group, len(threads)):
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results, group.stats["requests"] - before


def shard_bulks(es, index: str) -> int | None:
    """Shard-level bulk operations the node ran on ``index`` (one-shard indices: a lone index
    request counts 1, and so does a ``_bulk`` of many items) — shows the writes really shared one.
    None on OpenSearch, which keeps no such statistic (our own request count still shows it)."""
    if es.product == "opensearch":
        return None
    return es.indices.stats(index=index, metric="bulk")["_all"]["primaries"]["bulk"]["total_operations"]


def state(watch_id: str, minutes: int, **fields) -> WatchState:
    return WatchState(watch_id, last_window_end=T0 + dt.timedelta(minutes=minutes), **fields)


# ------------------------------------------------------------------------------------------- loads

def test_concurrent_loads_share_one_mget_and_each_gets_its_own_state(es, store):
    saved = {f"w{i}": store.save(state(f"w{i}", i, rule_state={"n": i})) for i in range(5)}
    reads = document_requests(es).reads
    jobs = {name: (lambda name=name: store.load(name)) for name in [*saved, "never-saved"]}
    loaded, requests = together(reads, jobs)
    assert requests == 1  # six loads, one _mget
    assert loaded["never-saved"] is None  # not found: None, as a lone GET
    for i in range(5):
        got = loaded[f"w{i}"]
        assert got.watch_id == f"w{i}" and got.rule_state == {"n": i}
        assert got.last_window_end == T0 + dt.timedelta(minutes=i)
        assert (got.seq_no, got.primary_term) == (saved[f"w{i}"].seq_no, saved[f"w{i}"].primary_term)
        assert got == store.load(f"w{i}")  # alone: the plain GET gives the same state


def test_loads_from_a_missing_state_index_are_none_batched_or_alone(es):
    absent = StateStore(es, prefix=f"test-absent-{uuid.uuid4().hex[:8]}")
    assert absent.load("w1") is None  # lone GET: index_not_found → None
    loaded, requests = together(document_requests(es).reads, {n: (lambda n=n: absent.load(n)) for n in ("a", "b", "c")})
    assert requests == 1 and loaded == {"a": None, "b": None, "c": None}
    assert not es.indices.exists(index=absent.index)  # loading creates nothing


# ------------------------------------------------------------------------------------------- saves

def test_two_saves_of_the_same_stale_version_in_one_bulk_give_exactly_one_conflict(es, store):
    base = store.save(state("shared", 0))
    other = store.save(state("other", 0))
    writes = document_requests(es).writes
    jobs = {
        "first": lambda: store.save(state("shared", 1, seq_no=base.seq_no, primary_term=base.primary_term)),
        "second": lambda: store.save(state("shared", 2, seq_no=base.seq_no, primary_term=base.primary_term)),
        "other": lambda: store.save(state("other", 7, seq_no=other.seq_no, primary_term=other.primary_term)),
        "new": lambda: store.save(state("new", 3)),  # never saved: op_type create
    }
    bulks = shard_bulks(es, store.index)
    results, requests = together(writes, jobs)
    assert requests == 1  # four saves, one _bulk
    assert bulks is None or shard_bulks(es, store.index) - bulks == 1
    outcomes = {name: type(value).__name__ for name, value in results.items()}
    assert sorted([outcomes["first"], outcomes["second"]]) == ["StateConflict", "WatchState"]
    assert outcomes["other"] == outcomes["new"] == "WatchState"
    conflict = results["first"] if outcomes["first"] == "StateConflict" else results["second"]
    winner = results["second"] if conflict is results["first"] else results["first"]
    assert isinstance(conflict.__cause__, ConflictError) and conflict.__cause__.status_code == 409
    assert conflict.__cause__.message == "version_conflict_engine_exception"
    # each winner gets the version now stored, and the stored document is the winner's
    for name, watch_id in (("other", "other"), ("new", "new")):
        stored = store.load(watch_id)
        assert (results[name].seq_no, results[name].primary_term) == (stored.seq_no, stored.primary_term)
    stored = store.load("shared")
    assert (stored.seq_no, stored.primary_term) == (winner.seq_no, winner.primary_term)
    assert stored.last_window_end == winner.last_window_end
    assert store.load("other").last_window_end == T0 + dt.timedelta(minutes=7)
    assert store.load("new").last_window_end == T0 + dt.timedelta(minutes=3)


def test_two_creates_of_the_same_new_state_give_exactly_one_conflict(es, store):
    results, requests = together(document_requests(es).writes,
                                 {n: (lambda n=n: store.save(state("fresh", n))) for n in (1, 2)})
    assert requests == 1
    kinds = sorted(type(value).__name__ for value in results.values())
    assert kinds == ["StateConflict", "WatchState"]
    created = next(value for value in results.values() if isinstance(value, WatchState))
    assert store.load("fresh").last_window_end == created.last_window_end


def test_a_batched_conflict_is_the_lone_conflict(es, store):
    base = store.save(state("w", 0))
    store.save(state("w", 1, seq_no=base.seq_no, primary_term=base.primary_term))
    stale = state("w", 2, seq_no=base.seq_no, primary_term=base.primary_term)
    with pytest.raises(StateConflict) as lone:
        store.save(stale)
    results, requests = together(document_requests(es).writes,
                                 {"stale": lambda: store.save(stale), "ok": lambda: store.save(state("x", 0))})
    assert requests == 1 and isinstance(results["ok"], WatchState)
    batched = results["stale"]
    assert type(batched) is StateConflict and str(batched) == str(lone.value)
    alone, inbulk = lone.value.__cause__, batched.__cause__
    assert type(alone) is type(inbulk) is ConflictError and alone.message == inbulk.message
    assert alone.body["error"]["type"] == inbulk.body["error"]["type"] == "version_conflict_engine_exception"
    assert alone.body["error"]["reason"] == inbulk.body["error"]["reason"]  # same seqNo wording
    assert alone.body["status"] == inbulk.body["status"] == 409
    assert str(alone) == str(inbulk)


def test_many_threads_saving_and_loading_without_help(es, store):
    # 40 threads each save their state twice and load it back, no holding: every thread sees its own
    # versions and no call is lost or doubled, however the threads interleave. How many requests
    # they shared depends on that interleaving, so it is not asserted here: sharing is proven by
    # the held tests above (test_concurrent_loads_share_one_mget..., test_two_saves_..._in_one_bulk...).
    for i in range(40):
        store.save(state(f"t{i}", 0))
    group = document_requests(es)
    before = {"reads": dict(group.reads.stats), "writes": dict(group.writes.stats)}
    start = threading.Barrier(40)
    seen: dict = {}

    def work(i):
        start.wait()
        current = store.load(f"t{i}")
        for step in (1, 2):
            current = store.save(dataclasses.replace(current, rule_state={"step": step, "i": i}))
        again = store.load(f"t{i}")
        seen[i] = (again.rule_state, (again.seq_no, again.primary_term) == (current.seq_no, current.primary_term))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == {i: ({"step": 2, "i": i}, True) for i in range(40)}
    reads = group.reads.stats["items"] - before["reads"]["items"]
    writes = group.writes.stats["items"] - before["writes"]["items"]
    assert (reads, writes) == (80, 80)
    assert not any(thread.is_alive() for thread in threads)


# ----------------------------------------------------------------------------------------- history

def record(watch_id: str, minute: int, **extra) -> dict:
    at = (T0 + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"_id": f"{watch_id}_{minute}", "watch_id": watch_id, "node": "watcher", "state": "executed",
            "@timestamp": at, "trigger_event": {"type": "schedule", "triggered_time": at,
                                                "schedule": {"scheduled_time": at}},
            "result": {"execution_time": at, "execution_duration": 3, "condition": {"met": minute % 2 == 0}},
            "messages": [], **extra}


def test_concurrent_history_writes_share_one_bulk_with_the_same_documents(es, history_prefix):
    writes = document_requests(es).writes
    records = {f"r{i}": record(f"watch-{i}", i) for i in range(5)}
    index = f"{history_prefix}-history-2026.11.29"
    es.indices.create(index=index)  # from the template; so that its bulk statistics start at 0
    results, requests = together(writes, {name: (lambda r=r: history.write_record(es, history_prefix, r, refresh="wait_for"))
                                          for name, r in records.items()})
    assert requests == 1
    assert shard_bulks(es, index) in (1, None)  # five records, one shard-level bulk
    assert results == {name: index for name in records}
    # refresh=wait_for travelled with the _bulk: all five are searchable on return
    assert es.count(index=index)["count"] == 5
    for r in records.values():
        stored = es.get(index=index, id=r["_id"])
        assert stored["_source"] == {k: v for k, v in r.items() if k != "_id"}
    lone = record("watch-lone", 9)
    assert history.write_record(es, history_prefix, lone) == index
    assert es.get(index=index, id=lone["_id"])["_source"] == {k: v for k, v in lone.items() if k != "_id"}


def test_a_bad_record_fails_only_its_writer_with_the_lone_error(es, history_prefix):
    bad = record("watch-bad", 1, result={"execution_time": "not a date"})  # mapped as a date
    with pytest.raises(BadRequestError) as lone:
        history.write_record(es, history_prefix, bad)
    good = record("watch-good", 2)
    results, requests = together(document_requests(es).writes,
                                 {"bad": lambda: history.write_record(es, history_prefix, bad),
                                  "good": lambda: history.write_record(es, history_prefix, good)})
    assert requests == 1
    assert results["good"] == f"{history_prefix}-history-2026.11.29"
    batched = results["bad"]
    assert type(batched) is type(lone.value) is BadRequestError and batched.status_code == 400
    # document_parsing_exception since Elasticsearch 8.8; mapper_parsing_exception before and on OpenSearch
    assert batched.message == lone.value.message in ("document_parsing_exception", "mapper_parsing_exception")
    assert str(batched) == str(lone.value)


# ------------------------------------------------------------------------------ unreachable cluster

def test_an_unreachable_cluster_fails_every_caller_with_the_lone_error():
    down = Elasticsearch("http://127.0.0.1:1", max_retries=0, request_timeout=5)
    store = StateStore(down, prefix="unreachable")
    with pytest.raises(elastic_transport.ConnectionError):
        store.load("w")
    with pytest.raises(elastic_transport.ConnectionError):
        store.save(state("w", 0))
    with pytest.raises(elastic_transport.ConnectionError):
        history.write_record(down, "unreachable", record("w", 0))
    group = document_requests(down)
    loads, load_requests = together(group.reads, {n: (lambda n=n: store.load(n)) for n in ("a", "b", "c")})
    writes, write_requests = together(group.writes, {
        "save": lambda: store.save(state("a", 1)),
        "update": lambda: store.save(state("b", 1, seq_no=4, primary_term=1)),
        "record": lambda: history.write_record(down, "unreachable", record("a", 1)),
    })
    assert (load_requests, write_requests) == (1, 1)
    for outcome in [*loads.values(), *writes.values()]:
        assert type(outcome) is elastic_transport.ConnectionError
    assert group.reads.stats["largest_batch"] == 3 and group.writes.stats["largest_batch"] == 3
