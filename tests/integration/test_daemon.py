"""``watcher run`` end to end (issue 5 "Done when"): the daemon runs as a real subprocess against
the session's real Elasticsearch, alerts go to a real HTTP receiver on 127.0.0.1, and everything is
checked in the daemon's own indices (history, state, outbox) and in what the receiver got.

Rules use ``schedule: 2s``, ``throttle: 1s`` and a one-hour window over a document indexed before
the start, so each tick is one alert with its own delivery.

No assertion depends on thread timing: waits are on conditions (their timeouts only matter on
failure), a send that must be in flight is held by the receiver until the test releases it, the
deliveries a SIGTERM leaves pending (a tick was running as it came: a matter of timing) are sent
before the end state is checked (:func:`deliver_left_pending`), and how fast the daemon recovers
is bench/'s business, not a timed assert. Sleeps left are the length of an outage or downtime
the scenario needs, never a guess of how long something takes."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import signal
import stat
import threading
import time
import uuid

import pytest
from elasticsearch import ApiError

from daemon_helpers import start_daemon  # noqa: F401  (the fixture)
from daemon_helpers import (SwitchableReceiver, delete_indices, deliver_left_pending, free_port,
                            outbox, records, scheduled, state, wait_for, write_connectors, write_rule)
from watcher.delivery.outbox import OTHER_KEY, Outbox
from watcher.es.client import server_description
from watcher.support.datemath import format_iso_millis, parse_instant

@pytest.fixture
def prefix(es):
    name = f"wd-{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es, name)


@pytest.fixture
def doc_index(es, index_name):
    """An index holding one document stamped now (so one-hour windows always match)."""
    es.index(index=index_name, document={"@timestamp": dt.datetime.now(dt.timezone.utc).isoformat(), "msg": "x"},
             refresh=True)
    return index_name


@pytest.fixture
def rules_dir(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


def _executed(es, prefix, watch_id):
    return [r for r in records(es, prefix, watch_id) if r["state"] == "executed"]


def _assert_consecutive(times: list[str], step_s: float) -> None:
    instants = [parse_instant(t) for t in times]
    gaps = [(b - a).total_seconds() for a, b in zip(instants, instants[1:])]
    assert all(abs(gap - step_s) < 0.002 for gap in gaps), gaps


# (1) alerts fire on schedule, records land in history ------------------------------------------------

def test_alerts_fire_on_schedule_and_records_land_in_history(es, prefix, doc_index, rules_dir, start_daemon):
    with SwitchableReceiver() as receiver:
        write_connectors(rules_dir, receiver.url)
        write_rule(rules_dir, "every-2s", doc_index)
        daemon = start_daemon()
        health = daemon.wait_healthy()
        assert health["scheduler"]["watches"] == 1 and health["cluster"]["reachable"] is True
        assert health["cluster"]["product"] == server_description(es)  # e.g. "OpenSearch 2.19.6"
        wait_for(lambda: len(_executed(es, prefix, "every-2s")) >= 4, 20, what="4 executed records")
        wait_for(lambda: len(set(receiver.keys(200))) >= 4, 10, what="4 alerts received")
        assert daemon.stop(signal.SIGTERM) == 0
        deliver_left_pending(es, prefix)

    runs = records(es, prefix, "every-2s")
    done = [r for r in runs if r["state"] == "executed"]
    # one record per tick, two seconds apart, no tick missing or doubled, none failed. A tick that
    # started over a second late followed by one on time is throttled (1 s): Watcher's rule, and a
    # matter of load, so allowed.
    _assert_consecutive([scheduled(r) for r in runs], 2.0)
    assert {r["state"] for r in runs} <= {"executed", "throttled"} and len(done) >= 4
    assert len({r["_id"] for r in runs}) == len(runs)
    for record in runs:
        assert record["result"]["condition"]["met"] is True
        expected = "success" if record["state"] == "executed" else "throttled"
        assert [a["status"] for a in record["result"]["actions"]] == [expected]
    # each record's alert was delivered, once
    deliveries = outbox(es, prefix)
    assert {d["record_id"] for d in deliveries} == {r["_id"] for r in done}
    assert {d["state"] for d in deliveries} == {"delivered"}
    assert sorted(receiver.keys(200)) == sorted(d["_id"] for d in deliveries)
    body = receiver.requests[0]["body"]
    assert body["count"] == 1
    saved = state(es, prefix, "every-2s")
    assert saved["last_window_end"] == max(scheduled(r) for r in runs)


# (2) SIGTERM exits 0 with nothing half-done --------------------------------------------------------------

def test_sigterm_exits_zero_leaving_pending_deliveries_pending(es, prefix, doc_index, rules_dir, start_daemon):
    with SwitchableReceiver(status=503) as receiver:
        write_connectors(rules_dir, receiver.url)
        write_rule(rules_dir, "down-receiver", doc_index)
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: len(receiver.keys()) >= 4, 20, what="some failed sends")
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        took = time.monotonic() - started
        # every request the daemon made was answered before it exited (none cut off half-way), and
        # an exited process sends nothing more
        assert receiver.started == len(receiver.requests)

    # The feature: SIGTERM exits within --grace (10 s), plus 5 s for the process to end. Kept as a
    # bound because it is the contract, with a wide margin: nothing here takes long (the receiver
    # answers at once), so the shutdown needs about a second.
    assert took < 10 + 5, f"shutdown took {took:.1f}s"
    done = _executed(es, prefix, "down-receiver")
    deliveries = outbox(es, prefix)
    assert done and {d["record_id"] for d in deliveries} == {r["_id"] for r in done}
    # nothing half-done: no delivery left claimed ("delivering"), none dead, none delivered
    assert collections.Counter(d["state"] for d in deliveries) == {"pending": len(done)}
    assert all(d["attempts"] >= 0 and d["lease_until"] is None for d in deliveries)
    # every record's progress is saved: the last executed tick is the state's progress
    assert state(es, prefix, "down-receiver")["last_window_end"] == scheduled(done[-1])


# (3) 500 then 200: each alert exactly once by Idempotency-Key ---------------------------------------------

def test_receiver_500_then_200_gets_each_alert_once_by_idempotency_key(es, prefix, doc_index, rules_dir, start_daemon):
    with SwitchableReceiver(status=500) as receiver:
        write_connectors(rules_dir, receiver.url)
        write_rule(rules_dir, "flaky", doc_index)
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: len(set(receiver.keys(500))) >= 3, 20, what="3 alerts refused with 500")
        receiver.status = 200
        refused = set(receiver.keys(500))
        wait_for(lambda: refused <= set(receiver.keys(200)), 30, what="the refused alerts retried and accepted")
        assert daemon.stop(signal.SIGTERM) == 0
        deliver_left_pending(es, prefix)  # what stayed pending, as a fresh daemon would
        done = _executed(es, prefix, "flaky")
        deliveries = outbox(es, prefix)

    ok_keys = receiver.keys(200)
    assert {d["state"] for d in deliveries} == {"delivered"}
    assert {d["record_id"] for d in deliveries} == {r["_id"] for r in done}
    # deduplicated by key, the receiver accepted exactly one request per alert, and every alert
    assert sorted(set(ok_keys)) == sorted(d["_id"] for d in deliveries)
    assert len(ok_keys) == len(set(ok_keys))  # and here not even a duplicate 200
    refused_then_ok = set(receiver.keys(500)) & set(ok_keys)
    assert len(refused_then_ok) >= 3  # the early alerts were retried with the same key


# (4) hot reload adds, changes and removes a rule; a bad file keeps the last good version --------------------

def test_hot_reload_adds_changes_and_removes_rules(es, prefix, doc_index, rules_dir, start_daemon):
    with SwitchableReceiver() as receiver:
        write_connectors(rules_dir, receiver.url)
        write_rule(rules_dir, "first", doc_index)
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: len(_executed(es, prefix, "first")) >= 2, 20, what="first runs")

        # add
        second = write_rule(rules_dir, "second", doc_index)
        wait_for(lambda: len(_executed(es, prefix, "second")) >= 2, 20, what="the added rule runs")
        assert daemon.health()["scheduler"]["watches"] == 2

        # change: the condition can no longer be met
        write_rule(rules_dir, "first", doc_index, gte=1000)
        wait_for(lambda: [r for r in records(es, prefix, "first") if r["state"] == "execution_not_needed"], 20,
                 what="the changed rule's new condition")
        last = records(es, prefix, "first")[-1]
        assert last["result"]["condition"]["met"] is False

        # a file turning bad keeps the last good version running, and is reported
        second.write_text("name: second\nschedule: 1s\nindex: [\n")
        health = wait_for(lambda: (h := daemon.health()) and h["definitions"]["invalid_files"] and h, 20,
                          what="the bad file reported")
        assert health["definitions"]["invalid_files"] == [str(second)]
        assert any(p.startswith(f"{second}:") for p in health["definitions"]["problems"])
        count = len(_executed(es, prefix, "second"))
        wait_for(lambda: len(_executed(es, prefix, "second")) >= count + 2, 20, what="the last good version running")

        # remove
        second.unlink()
        wait_for(lambda: daemon.health()["scheduler"]["watches"] == 1, 20, what="the removed rule unscheduled")
        removed_at = dt.datetime.now(dt.timezone.utc)
        # two ticks of "first" (same 2 s period) scheduled after the removal: "second" had its turns too
        wait_for(lambda: len([r for r in records(es, prefix, "first") if parse_instant(scheduled(r)) > removed_at]) >= 2,
                 20, what="two more ticks of the remaining rule")
        # no run after removal (a run in progress at that moment may finish: its tick is older)
        assert all(parse_instant(scheduled(r)) <= removed_at for r in records(es, prefix, "second"))
        assert state(es, prefix, "second") is not None  # its state is kept
        assert daemon.health()["definitions"]["invalid_files"] == []
        assert daemon.stop(signal.SIGTERM) == 0


def _assert_all_delivered_once(es, prefix, watch_id, ok_keys: list[str]) -> list[dict]:
    """Every executed record of ``watch_id`` has exactly one delivery, delivered, and the receiver
    accepted every delivery id (deduplicated by Idempotency-Key: exactly once)."""
    done = _executed(es, prefix, watch_id)
    deliveries = outbox(es, prefix)
    assert sorted(d["record_id"] for d in deliveries) == sorted(r["_id"] for r in done)
    assert collections.Counter(d["state"] for d in deliveries) == {"delivered": len(done)}
    assert set(ok_keys) == {d["_id"] for d in deliveries}
    return deliveries


# (5) a 30-second receiver outage delays alerts but loses none -----------------------------------------------

def test_receiver_outage_of_30s_delays_alerts_but_loses_none(es, prefix, doc_index, rules_dir, start_daemon):
    port = free_port()
    first = SwitchableReceiver(port).__enter__()
    write_connectors(rules_dir, first.url, extra="    timeout: 2s\n    read_timeout: 2s\n")
    write_rule(rules_dir, "outage", doc_index)
    daemon = start_daemon("--max-retry-delay", "2")
    second = None
    try:
        daemon.wait_healthy()
        wait_for(lambda: len(first.keys(200)) >= 2, 20, what="alerts before the outage")
        first.__exit__(None, None, None)  # the receiver is gone: connections are refused
        outage_started = time.monotonic()
        during = len(_executed(es, prefix, "outage"))

        def refused() -> set[str]:  # alerts sent and refused: tried at least once, not delivered
            return {d["_id"] for d in outbox(es, prefix) if d["state"] != "delivered" and d["attempts"] >= 1}

        # The outage lasts 30 s, and until the rules kept running and 14 of their alerts were refused.
        wait_for(lambda: time.monotonic() - outage_started >= 30 and len(refused()) >= 14
                 and len(_executed(es, prefix, "outage")) >= during + 13, 120, what="30 s of outage, 14 alerts refused")
        refused_during = refused()
        second = SwitchableReceiver(port).__enter__()
        wait_for(lambda: refused_during <= set(second.keys(200)), 60, what="the backlog delivered")
        assert daemon.stop(signal.SIGTERM) == 0
        deliver_left_pending(es, prefix)
        deliveries = _assert_all_delivered_once(es, prefix, "outage", first.keys(200) + second.keys(200))
        late = {d["_id"] for d in deliveries if d["attempts"] > 1}
        assert refused_during <= late and len(late) >= 14  # the alerts of the outage waited and were retried...
        assert all(d["state"] != "dead" for d in deliveries)  # ...and none was given up
    finally:
        if second is not None:
            second.__exit__(None, None, None)


# (6) SIGKILL during delivery, then a restart, loses nothing --------------------------------------------------

def test_sigkill_during_delivery_then_restart_loses_nothing(es, prefix, doc_index, rules_dir, start_daemon):
    held = threading.Event()
    with SwitchableReceiver(gate=held) as receiver:  # holds every request: sends are in flight when killed
        write_connectors(rules_dir, receiver.url, extra="    timeout: 2s\n    read_timeout: 5s\n")
        write_rule(rules_dir, "killed", doc_index)
        lease = ["--delivery-lease", "5"]  # effective lease: timeouts + 5 s = 12 s
        daemon = start_daemon(*lease)
        daemon.wait_healthy()
        try:
            # A request is held by the receiver: its send is in flight until the kill; and the run
            # that sent it saved its progress, so the restart has ticks to catch up from it. (The one
            # bound left: the daemon's 5 s read timeout, which the kill right below comes well before.)
            wait_for(lambda: receiver.started >= 1 and (state(es, prefix, "killed") or {}).get("last_window_end"),
                     30, what="a delivery in flight and the progress of its run saved")
            daemon.kill()  # SIGKILL
        finally:
            held.set()
        claimed = [d for d in outbox(es, prefix) if d["state"] == "delivering"]
        assert claimed, "expected a delivery caught mid-send"
        time.sleep(4)  # the daemon stays down over two ticks (the scenario, not a wait for something)
        daemon = start_daemon(*lease)
        daemon.wait_healthy()
        wait_for(lambda: (d := outbox(es, prefix)) and all(x["state"] == "delivered" for x in d)
                 and len(_executed(es, prefix, "killed")) >= len(d), 60, what="everything delivered after restart")
        assert daemon.stop(signal.SIGTERM) == 0
        deliver_left_pending(es, prefix)

    deliveries = _assert_all_delivered_once(es, prefix, "killed", receiver.keys(200))
    assert {d["_id"] for d in claimed} <= {d["_id"] for d in deliveries}
    # the ticks missed while the daemon was dead were caught up: no scheduled time is missing (caught-up
    # ticks run back to back, so the 1 s throttle may turn some into "throttled" records: Watcher's rule)
    runs = records(es, prefix, "killed")
    _assert_consecutive([scheduled(r) for r in runs], 2.0)
    assert {r["state"] for r in runs} <= {"executed", "throttled"}


# (7) stopping and restarting Elasticsearch leaves no window unchecked -----------------------------------------

@pytest.fixture
def own_node():
    """A JVM Elasticsearch node of this test alone, with a persistent folder (stopped and started again)."""
    import shutil
    import tempfile
    from pathlib import Path

    from watcher.localcluster.jvm import JvmNode, cache_dir

    root = cache_dir() / "instances"
    root.mkdir(parents=True, exist_ok=True)
    node = JvmNode(Path(tempfile.mkdtemp(prefix="restart-", dir=root)), http_port=free_port())
    yield node
    node.stop()
    shutil.rmtree(node.instance_dir, ignore_errors=True)


def test_elasticsearch_restart_leaves_no_window_unchecked(own_node, prefix, rules_dir, start_daemon):
    from watcher.es.client import ConnectionSettings, make_client

    cluster = own_node.start()
    es = make_client(ConnectionSettings(urls=[cluster.url]))
    try:
        es.index(index="events", document={"@timestamp": dt.datetime.now(dt.timezone.utc).isoformat()}, refresh=True)
        with SwitchableReceiver() as receiver:
            write_connectors(rules_dir, receiver.url)
            # the window equals the period: consecutive ticks check adjacent windows
            write_rule(rules_dir, "windows", "events", window="2s", gte=0)
            daemon = start_daemon(env={"ES_URL": cluster.url})
            daemon.wait_healthy()
            wait_for(lambda: len(records(es, prefix, "windows")) >= 3, 20, what="runs before the restart")
            before = records(es, prefix, "windows")[-1]
            own_node.stop()
            down_at = time.monotonic()
            # down for 3 s (over a tick: the scenario) and until the daemon has noticed
            wait_for(lambda: time.monotonic() - down_at >= 3 and (h := daemon.health()) is not None
                     and h["cluster"]["reachable"] is False, 30, what="the outage seen by the daemon")
            assert daemon.process.poll() is None  # still running
            own_node.start()
            outage_s = time.monotonic() - down_at
            wait_for(lambda: (r := records(es, prefix, "windows")) and parse_instant(scheduled(r[-1]))
                     > parse_instant(scheduled(before)) + dt.timedelta(seconds=outage_s + 4), 60,
                     what="runs after the restart")
            assert daemon.stop(signal.SIGTERM) == 0
            log = daemon.log()
        runs = records(es, prefix, "windows")
        times = [scheduled(r) for r in runs]
        # every 2-second window from the first run to the last was evaluated, once, and succeeded
        _assert_consecutive(times, 2.0)
        assert len(set(times)) == len(times)
        assert {r["state"] for r in runs} <= {"executed", "throttled", "execution_not_needed"}
        assert parse_instant(times[-1]) - parse_instant(times[0]) >= dt.timedelta(seconds=outage_s)
        # The outage was seen and survived: a tick either failed fast ("cluster error", "could not …") or
        # waited inside the client's retries until the node was back, then caught up ("catching up").
        assert any(words in log for words in ("cluster error", "could not", "catching up")), log
        saved = es.get(index=f"{prefix}-state", id="windows")["_source"]
        assert saved["last_window_end"] == times[-1]
    finally:
        es.close()


# (8) a rule's state survives a restart: no second firing (realert), one recovery -----------------------------

def test_rule_state_survives_a_restart_no_refiring_and_one_recovery(es, prefix, index_name, rules_dir, start_daemon):
    stamp = dt.datetime.now(dt.timezone.utc)
    doc = es.index(index=index_name, document={"@timestamp": stamp.isoformat(), "msg": "x"}, refresh=True)["_id"]

    def runs() -> int:
        return len(records(es, prefix, "typed"))

    with SwitchableReceiver() as receiver:
        write_connectors(rules_dir, receiver.url)
        # Firing while the document is there (the one-hour window keeps it in for the whole test),
        # recovered once the test deletes it; realert 1h: one firing.
        (rules_dir / "typed.yaml").write_text(
            f"name: typed\ntype: any\nschedule: 2s\nindex: {index_name}\nwindow: 1h\nrealert: 1h\n"
            "actions:\n  - connector: hook\n    on: [firing, recovered]\n")
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: len(receiver.keys(200)) >= 1, 20, what="the firing alert")
        assert daemon.stop(signal.SIGTERM) == 0
        saved = state(es, prefix, "typed")
        assert set(saved["rule_state"]["firing"]) == {"*"} and "*" in saved["rule_state"]["realert"]
        daemon = start_daemon()                 # a fresh process: only Elasticsearch remembers
        daemon.wait_healthy()
        # two runs of the new process with the document still there: no second firing (an alert's
        # delivery is written before its run's record, so the outbox is complete for those runs)
        count = runs()
        wait_for(lambda: runs() >= count + 2, 30, what="two runs after the restart")
        assert len(outbox(es, prefix)) == 1
        es.delete(index=index_name, id=doc, refresh=True)
        wait_for(lambda: len(receiver.keys(200)) >= 2, 30, what="the recovery")
        count = runs()
        wait_for(lambda: runs() >= count + 2, 30, what="a few more ticks")  # nothing else may come of them
        assert daemon.stop(signal.SIGTERM) == 0

    assert len(outbox(es, prefix)) == 2
    bodies = [r["body"] for r in receiver.requests if r["status"] == 200]
    assert [b["status"] for b in bodies] == ["firing", "recovered"]
    assert bodies[1]["title"] == "rule 'typed' recovered"
    # fired for the time from the first firing run (before the restart) to the recovery run: the
    # firing start survived the restart
    fired, recovered = (parse_instant(b["window"]["end"]) for b in bodies)
    assert bodies[1]["fired_for_seconds"] == (recovered - fired).total_seconds() > 0
    assert state(es, prefix, "typed")["rule_state"]["firing"] == {}


# (9) catch-up ticks are throttled as if they had run on time (issue 17, item 1) ----------------------------

def test_backfilled_ticks_are_throttled_in_scheduled_time_and_say_they_are_catch_ups(
        es, prefix, index_name, rules_dir, start_daemon):
    # Three documents one minute apart, ten minutes ago; the daemon starts with a backfill over them, so
    # the ticks T0+1m … T0+10m run one right after the other, milliseconds apart, at start-up.
    t0 = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    es.indices.create(index=index_name, mappings={"properties": {"host": {"type": "keyword"}}})
    for minute, host in enumerate(("a", "b", "a")):
        es.index(index=index_name, document={"@timestamp": (t0 + dt.timedelta(minutes=minute, seconds=10)).isoformat(),
                                             "host": host}, refresh=False)
    es.indices.refresh(index=index_name)
    common = f"schedule: 1m\nindex: {index_name}\nwindow: 1m\nrealert: 0s\ncondition:\n  count: {{gte: 1}}\n"
    rules = {
        "default-throttle": "",                  # Watcher's default 5 s action throttle
        "throttle-90s": "throttle: 90s\n",       # a real throttle still holds, measured in scheduled time
        "per-host": "group_by: host\n",          # the per-group-key throttle (5 s default)
    }
    with SwitchableReceiver() as receiver:
        write_connectors(rules_dir, receiver.url)
        for name, extra in rules.items():
            (rules_dir / f"{name}.yaml").write_text(f"name: {name}\n{common}{extra}actions:\n  - connector: hook\n")
        daemon = start_daemon("--backfill-from", format_iso_millis(t0))
        daemon.wait_healthy()
        first_three = {format_iso_millis(t0 + dt.timedelta(minutes=k)) for k in (1, 2, 3)}

        def settled():
            try:
                runs = {name: {scheduled(r): r for r in records(es, prefix, name)} for name in rules}
            except ApiError as error:  # the daily history index was just created: its shard is not ready yet
                if error.meta.status == 503:
                    return None
                raise
            if not all(first_three <= set(by_time) for by_time in runs.values()):
                return None
            deliveries = outbox(es, prefix)
            return runs if deliveries and {d["state"] for d in deliveries} == {"delivered"} else None

        runs = wait_for(settled, 60, what="the first three backfilled ticks of every rule, delivered")
        assert daemon.stop(signal.SIGTERM) == 0

    def tick(name, k):
        return runs[name][format_iso_millis(t0 + dt.timedelta(minutes=k))]

    def statuses(name):
        return [[a["status"] for a in tick(name, k)["result"]["actions"]] for k in (1, 2, 3)]

    # Each document is its own alert, as if the daemon had been running all along.
    assert statuses("default-throttle") == [["success"]] * 3
    assert statuses("throttle-90s") == [["success"], ["throttled"], ["success"]]
    assert tick("throttle-90s", 2)["result"]["actions"][0]["reason"] == (
        "throttling interval is set to [90s] but time elapsed since last execution is [1m]")
    per_host = [[(item["group"], item["status"]) for item in tick("per-host", k)["result"]["actions"][0]["foreach"]]
                for k in (1, 2, 3)]
    assert per_host == [[("a", "success")], [("b", "success")], [("a", "success")]]
    by_rule = collections.Counter(r["body"]["rule"] for r in receiver.requests if r["status"] == 200)
    assert by_rule == {"default-throttle": 3, "throttle-90s": 2, "per-host": 3}
    # The records say they were catch-ups: due a minute apart, run milliseconds apart.
    for name in rules:
        for k in (1, 2, 3):
            record = tick(name, k)
            assert record["trigger_event"]["schedule"]["catch_up"] is True
            assert any(m.startswith("catch-up run of the tick due at ") for m in record["messages"]), record["messages"]
    es.indices.refresh(index=f"{prefix}-history-*")
    found = es.count(index=f"{prefix}-history-*", query={"bool": {"filter": [
        {"term": {"watch_id": "default-throttle"}}, {"term": {"trigger_event.schedule.catch_up": True}}]}})
    assert found["count"] >= 3   # mapped: catch-up runs can be searched for


# (9) secrets in the outbox are keyed with the deployment key: the key file the first start created lets a
# restart send what an earlier process sealed; a daemon with another key makes them dead, with the reason

def test_the_state_dir_key_lets_a_restart_send_sealed_deliveries_and_another_key_kills_them_loudly(
        es, prefix, doc_index, rules_dir, start_daemon, tmp_path):
    token = "hunter2"  # short and guessable: the outbox must not let anyone test guesses against it
    env = {"HOOK_TOKEN": token}
    with SwitchableReceiver(status=503) as receiver:
        write_connectors(rules_dir, receiver.url, extra="    headers:\n      X-Api-Key: ${HOOK_TOKEN}\n")
        write_rule(rules_dir, "keyed", doc_index)
        daemon = start_daemon(env=env)
        daemon.wait_healthy()
        wait_for(lambda: len(set(receiver.keys())) >= 2, 20, what="two alerts refused")
        assert daemon.stop(signal.SIGTERM) == 0

        key_file = tmp_path / "state" / "secret-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        sealed = outbox(es, prefix)
        assert sealed and {d["state"] for d in sealed} == {"pending"}
        raw = json.dumps(sealed)
        assert token not in raw and hashlib.sha256(token.encode()).hexdigest()[:16] not in raw
        assert {d["request"]["headers"]["X-Api-Key"][:14] for d in sealed} == {"${secret:hmac:"}
        key_ids = {d["request"]["secret_key_id"] for d in sealed}
        assert len(key_ids) == 1
        log_text = (tmp_path / "daemon.log").read_text()
        assert f"keyed with the deployment key from file {key_file} (key id {key_ids.pop()})" in log_text

        # another key (a second daemon on the prefix without the same key, or the key file lost)
        receiver.status = 200
        other = start_daemon(env={**env, "WATCHER_SECRET_KEY": "c" * 64})
        other.wait_healthy()
        ids = {d["_id"] for d in sealed}
        wait_for(lambda: {d["state"] for d in outbox(es, prefix) if d["_id"] in ids} == {"dead"}, 20,
                 what="the deliveries sealed under the first key dead")
        assert other.stop(signal.SIGTERM) == 0
        assert not ids & set(receiver.keys(200))
        dead = {d["_id"]: d["last_error"] for d in outbox(es, prefix) if d["_id"] in ids}
        assert all(reason.startswith(OTHER_KEY) for reason in dead.values()), dead
        errors = [line for line in (tmp_path / "daemon.log").read_text().splitlines() if " ERROR " in line]
        assert all(any(f"delivery {i} " in line and OTHER_KEY in line for line in errors) for i in ids), errors

        # the state directory's key again: the operator retries them and they are sent, with the secret
        for identifier in ids:
            assert Outbox(es, prefix).retry(identifier) is True
        daemon = start_daemon(env=env)
        daemon.wait_healthy()
        wait_for(lambda: ids <= set(receiver.keys(200)), 20, what="the retried deliveries sent")
        assert daemon.stop(signal.SIGTERM) == 0

    sent = [r for r in receiver.requests if r["key"] in ids and r["status"] == 200]
    assert {r["key"] for r in sent} == ids
    assert {r["headers"]["X-Api-Key"] for r in sent} == {token}
    assert {d["state"] for d in outbox(es, prefix) if d["_id"] in ids} == {"delivered"}


# (13) a Watcher watch with a Painless condition and a script transform, run by the daemon ----------------

def test_daemon_runs_a_watch_with_a_painless_condition_and_transform(es, prefix, index_name, rules_dir, start_daemon,
                                                                    requires_painless):
    now = dt.datetime.now(dt.timezone.utc)
    for number, user in enumerate(["alice", "bob", "bob", "bob"]):
        es.index(index=index_name, id=str(number), document={"@timestamp": now.isoformat(), "user": user})
    es.indices.refresh(index=index_name)
    with SwitchableReceiver() as receiver:
        host, port = receiver.server_address
        watch = {
            "trigger": {"schedule": {"interval": "2s"}},
            "input": {"search": {"request": {"indices": [index_name], "body": {
                "size": 0, "query": {"range": {"@timestamp": {"gte": "now-1h"}}},
                "aggs": {"users": {"terms": {"field": "user.keyword"}}}}}}},
            "condition": {"script": {"source": "return ctx.payload.aggregations.users.buckets.stream()"
                                               ".anyMatch(b -> b.doc_count >= params.min)", "params": {"min": 3}}},
            "transform": {"script": "return ctx.payload.aggregations.users.buckets.stream()"
                                    ".filter(b -> b.doc_count >= 3).map(b -> b.key).toArray()"},
            "actions": {"notify": {"throttle_period": "1h", "webhook": {
                "method": "post", "host": host, "port": port, "path": "/hook",
                "body": "{{#toJson}}ctx.payload{{/toJson}}"}}},
        }
        (rules_dir / "busy-users.json").write_text(json.dumps(watch))
        daemon = start_daemon()
        daemon.wait_healthy()
        wait_for(lambda: receiver.requests, 30, what="the watch's webhook")
        assert daemon.stop(signal.SIGTERM) == 0
    assert receiver.requests[0]["body"] == {"_value": ["bob"]}
    executed = [r for r in records(es, prefix, "busy-users") if r["state"] == "executed"]
    assert executed and executed[0]["result"]["condition"] == {"type": "script", "status": "success", "met": True}
