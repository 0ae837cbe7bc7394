"""Operator verbs (status, history, ack, activate, deactivate, outbox) on the real Elasticsearch.

State, history and outbox documents are written through the real StateStore, history.write_record
and Outbox/OutboxStore APIs, then the commands are run with click's CliRunner against the cluster.
Each test has its own index prefix and runs in a temporary directory (so rules/ of the repository
is not picked up unless a test passes --rules).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import uuid

import pytest
from click.testing import CliRunner

from watcher.cli.ops import ack, activate, deactivate, history, outbox_command, silence, status
from watcher.delivery.outbox import Outbox
from watcher.model.requests import HttpRequest
from watcher.model.status import ACKABLE, ACKED, AWAITS, WatchStatus
from watcher.es import history as history_index
from watcher.es.outbox_store import DEAD, PENDING
from watcher.es.state import StateStore, WatchState
from watcher.support.datemath import format_iso_millis, parse_instant

pytestmark = pytest.mark.es

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone.utc)
SECRET = "s3cret-token-0123456789"

WATCH_JSON = {
    "trigger": {"schedule": {"interval": "5m"}},
    "input": {"simple": {"value": 1}},
    "condition": {"always": {}},
    "actions": {"notify": {"logging": {"text": "notify"}}, "page": {"logging": {"text": "page"}}},
}


@pytest.fixture
def prefix(es, tmp_path, monkeypatch):
    """A fresh index prefix; the test runs in tmp_path; every index of the prefix is deleted afterwards."""
    monkeypatch.chdir(tmp_path)
    prefix = f"test-ops-{uuid.uuid4().hex[:10]}"
    yield prefix
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-history")


@pytest.fixture
def store(es, prefix):
    store = StateStore(es, prefix=prefix)
    store.ensure()
    return store


@pytest.fixture
def run(es_cluster, prefix):
    """``run(command, *args)`` → (exit code, output) with the cluster's env and the test's prefix."""

    def invoke(command, *args, env: dict | None = None):
        result = CliRunner().invoke(command, [*map(str, args), "--index-prefix", prefix],
                                    env=env if env is not None else es_cluster.env(), catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


def cpu_status() -> WatchStatus:
    """``notify`` ran successfully (ackable); ``page`` only failed (awaits a successful execution)."""
    status = WatchStatus(last_checked=T0, last_met_condition=T0, execution_state="executed", version=3,
                         state_timestamp=T0 - dt.timedelta(days=1))
    status.action("notify").record_result("success", T0)
    status.action("page").record_result("failure", T0, reason="received [500] status code")
    return status


def save_cpu(store) -> WatchState:
    return store.save(WatchState("cpu-high", status=cpu_status()))


def rules_dir(tmp_path):
    directory = tmp_path / "myrules"
    directory.mkdir()
    (directory / "cpu-high.json").write_text(json.dumps(WATCH_JSON))
    (directory / "fresh.json").write_text(json.dumps(WATCH_JSON))
    (directory / "broken.json").write_text('{"trigger": {"schedule": {"interval": "5 lightyears"}}, "input": {}}')
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- ack --------------------------------------------------------------------------------------------------

def test_ack_of_an_ackable_action_acks_it_and_saves(run, store):
    save_cpu(store)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    code, output = run(ack, "cpu-high", "notify")

    assert code == 0, output
    assert "action notify: acked" in output
    saved = store.load("cpu-high")
    notify = saved.status.actions["notify"]
    assert notify.ack_state == ACKED
    assert before <= notify.ack_timestamp <= dt.datetime.now(dt.timezone.utc)
    assert saved.status.actions["page"].ack_state == AWAITS
    assert saved.status.version == 4
    assert saved.status.last_checked == T0  # the rest of the status is kept


def test_ack_of_a_non_ackable_action_leaves_it_and_says_so(run, store):
    saved = save_cpu(store)

    code, output = run(ack, "cpu-high", "page")

    assert code == 0, output
    assert ("action page: not ackable (awaits_successful_execution: no successful execution since its "
            "condition was last not met), unchanged") in output
    after = store.load("cpu-high")
    assert after.status.actions["page"].ack_state == AWAITS
    assert after.status.actions["notify"].ack_state == ACKABLE
    assert (after.seq_no, after.status.version) == (saved.seq_no, 3)  # nothing written


def test_ack_without_action_acks_every_ackable_one_and_reports_each(run, store):
    save_cpu(store)

    code, output = run(ack, "cpu-high", "--json")

    assert code == 0, output
    data = json.loads(output)
    assert data["actions"] == {"notify": {"result": "acked", "ack_state": "acked"},
                               "page": {"result": "not_ackable", "ack_state": AWAITS}}
    assert data["status"]["actions"]["notify"]["ack"]["state"] == ACKED
    assert data["status"]["actions"]["page"]["ack"]["state"] == AWAITS
    assert data["status"]["state"]["active"] is True
    # a second ack: already acked, nothing changes
    code, output = run(ack, "cpu-high", "_all")
    assert code == 0
    assert "action notify: already acked (since " in output
    assert store.load("cpu-high").status.version == 4


def test_ack_of_an_unknown_action_fails_with_did_you_mean_and_changes_nothing(run, store):
    saved = save_cpu(store)

    code, output = run(ack, "cpu-high", "notfy")

    assert code == 1
    assert "watch [cpu-high] has no action [notfy] (actions: notify, page); did you mean 'notify'?" in output
    assert store.load("cpu-high").seq_no == saved.seq_no


def test_ack_reloads_and_applies_again_when_the_daemon_saved_meanwhile(run, store, monkeypatch):
    save_cpu(store)
    original_save = StateStore.save
    daemon_tick = T0 + dt.timedelta(minutes=5)
    calls = []

    def save_after_a_daemon_write(self, state):
        if not calls:  # the daemon saves between the CLI's load and save
            calls.append(1)
            current = self.load(state.watch_id)
            current.status.last_checked = daemon_tick
            original_save(self, current)
        return original_save(self, state)

    monkeypatch.setattr(StateStore, "save", save_after_a_daemon_write)

    code, output = run(ack, "cpu-high", "notify")

    assert code == 0, output
    saved = store.load("cpu-high")
    assert saved.status.actions["notify"].ack_state == ACKED
    assert saved.status.last_checked == daemon_tick  # the daemon's write is kept


# -- activate / deactivate --------------------------------------------------------------------------------

def test_deactivate_then_activate_round_trip_with_timestamps(run, store):
    save_cpu(store)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    code, output = run(deactivate, "cpu-high")
    assert code == 0, output
    assert "watch [cpu-high] is now inactive" in output
    off = store.load("cpu-high")
    assert off.active is False and off.status.active is False
    assert before <= off.status.state_timestamp <= dt.datetime.now(dt.timezone.utc)
    assert off.status.version == 4

    # deactivating again changes nothing, not even the timestamp
    code, output = run(deactivate, "cpu-high")
    assert code == 0
    assert f"watch [cpu-high] is already inactive (since {off.status.state_timestamp:%Y-%m-%dT%H:%M:%SZ}), unchanged" in output
    again = store.load("cpu-high")
    assert (again.seq_no, again.status.state_timestamp) == (off.seq_no, off.status.state_timestamp)

    code, output = run(activate, "cpu-high", "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["changed"] is True
    assert data["status"]["state"]["active"] is True
    on = store.load("cpu-high")
    assert on.active is True
    assert on.status.state_timestamp >= off.status.state_timestamp
    assert data["status"]["state"]["timestamp"] == format_iso_millis(on.status.state_timestamp)
    assert on.status.actions["notify"].ack_state == ACKABLE  # the actions' state is untouched


def test_deactivate_a_defined_watch_without_state_creates_its_state(run, store, tmp_path):
    directory = rules_dir(tmp_path)

    code, output = run(deactivate, "fresh", "--rules", directory)

    assert code == 0, output
    state = store.load("fresh")
    assert state is not None and state.active is False
    assert state.status.state_timestamp is not None


# -- status -----------------------------------------------------------------------------------------------

def test_status_table_lists_states_and_definitions_with_markers(run, store, tmp_path):
    save_cpu(store)
    store.save(WatchState("ghost", active=False))
    store.save(WatchState("broken"))
    directory = rules_dir(tmp_path)

    code, output = run(status, "--rules", directory)

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["WATCH", "ACTIVE", "LAST", "CHECKED", "LAST", "MET", "EXECUTION", "STATE", "DEFINITION"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith(" ")}
    assert rows["cpu-high"] == ["cpu-high", "yes", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", "executed", "ok"]
    assert rows["ghost"] == ["ghost", "no", "-", "-", "-", "missing"]
    assert rows["broken"] == ["broken", "yes", "-", "-", "-", "invalid"]
    assert rows["fresh"] == ["fresh", "yes", "-", "-", "never", "run", "ok"]
    assert list(rows) == ["broken", "cpu-high", "fresh", "ghost"]
    cpu_at = lines.index(next(line for line in lines if line.startswith("cpu-high")))
    assert lines[cpu_at + 1].split() == ["action", "notify", "ackable;", "last", "2024-05-01T10:00:00Z", "ok"]
    assert lines[cpu_at + 2].split(None, 2)[:2] == ["action", "page"]
    assert lines[cpu_at + 2].endswith("awaits_successful_execution; last 2024-05-01T10:00:00Z failed; "
                                      "received [500] status code")
    fresh_at = lines.index(next(line for line in lines if line.startswith("fresh")))
    assert lines[fresh_at + 1].split() == ["action", "notify", "awaits_successful_execution;", "never", "executed"]


def test_status_table_json(run, store, tmp_path):
    save_cpu(store)
    store.save(WatchState("ghost", active=False))

    code, output = run(status, "--json", "--rules", rules_dir(tmp_path))

    assert code == 0, output
    watches = {w["id"]: w for w in json.loads(output)["watches"]}
    assert set(watches) == {"cpu-high", "ghost", "fresh", "broken"}
    assert watches["ghost"]["definition"] == "missing"
    assert watches["ghost"]["active"] is False and watches["ghost"]["status"]["state"]["active"] is False
    assert watches["fresh"]["saved"] is False and watches["fresh"]["definition"] == "ok"
    assert watches["broken"]["definition"] == "invalid" and watches["broken"]["file"].endswith("broken.json")
    assert watches["cpu-high"]["status"]["actions"]["notify"]["ack"]["state"] == ACKABLE


def test_status_without_rules_has_no_definition_column(run, store):
    save_cpu(store)

    code, output = run(status)

    assert code == 0, output
    assert "DEFINITION" not in output.splitlines()[0]
    assert output.splitlines()[1].split() == ["cpu-high", "yes", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", "executed"]


def test_status_of_one_watch_is_watchers_status_json(run, store):
    save_cpu(store)

    code, output = run(status, "cpu-high")

    assert code == 0, output
    data = json.loads(output)
    assert data == {
        "state": {"active": True, "timestamp": "2024-04-30T10:00:00.000Z"},
        "last_checked": "2024-05-01T10:00:00.000Z",
        "last_met_condition": "2024-05-01T10:00:00.000Z",
        "actions": {
            "notify": {"ack": {"timestamp": "2024-05-01T10:00:00.000Z", "state": "ackable"},
                       "last_execution": {"timestamp": "2024-05-01T10:00:00.000Z", "successful": True},
                       "last_successful_execution": {"timestamp": "2024-05-01T10:00:00.000Z", "successful": True}},
            "page": {"ack": {"timestamp": None, "state": "awaits_successful_execution"},
                     "last_execution": {"timestamp": "2024-05-01T10:00:00.000Z", "successful": False,
                                        "reason": "received [500] status code"}},
        },
        "execution_state": "executed",
        "version": 3,
    }


def test_unknown_name_fails_with_did_you_mean_from_state_and_definitions(run, store, tmp_path):
    save_cpu(store)

    code, output = run(status, "cpu-hihg")
    assert code == 1
    assert f"unknown watch [cpu-hihg]: no state in {store.index}; did you mean 'cpu-high'?" in output

    code, output = run(ack, "fresk", "--rules", rules_dir(tmp_path))
    assert code == 1
    assert "and no definition in" in output and "did you mean 'fresh'?" in output

    code, output = run(activate, "nothing-like-it")
    assert code == 1
    assert output.strip().endswith(f"unknown watch [nothing-like-it]: no state in {store.index}")
    assert store.load("nothing-like-it") is None

    code, output = run(history, "cpu-hihg")
    assert code == 1
    assert "did you mean 'cpu-high'?" in output


def test_unreachable_cluster_gives_one_clear_line(run):
    url = f"http://127.0.0.1:{free_port()}"
    for command, args in ((status, ()), (ack, ("cpu-high",)), (history, ("cpu-high",)), (outbox_command, ())):
        code, output = run(command, *args, env={"ES_URL": url})
        assert code == 1, (command.name, output)
        assert f"Error: cannot reach the cluster (ES_URL) at {url}: " in output
        assert "Traceback" not in output


def test_missing_es_url_is_explained(run):
    code, output = run(status, env={"ES_URL": ""})
    assert code == 1
    assert "ES_URL is not set" in output


# -- history ----------------------------------------------------------------------------------------------

def record(n: int, state: str, met: bool, actions: list[dict]) -> dict:
    when = format_iso_millis(T0 + dt.timedelta(minutes=5 * n))
    return {"_id": f"cpu-high_{n}", "watch_id": "cpu-high", "state": state, "@timestamp": when,
            "trigger_event": {"type": "schedule", "triggered_time": when, "schedule": {"scheduled_time": when}},
            "result": {"execution_time": when, "execution_duration": 3,
                       "condition": {"type": "compare", "status": "success", "met": met},
                       "actions": actions}}


@pytest.fixture
def records(es, prefix):
    history_index.ensure_template(es, prefix)
    written = [
        record(0, "executed", True, [{"id": "notify", "type": "logging", "status": "success"},
                                     {"id": "page", "type": "webhook", "status": "failure",
                                      "reason": "received [500] status code"}]),
        record(1, "execution_not_needed", False, []),
        record(2, "throttled", True, [{"id": "notify", "type": "logging", "status": "throttled",
                                       "reason": "throttling interval is set to [5m]"}]),
        record(3, "execution_not_needed", False, []),
    ]
    # written out of order, and one record of another watch: order and filter come from the query
    for item in (written[2], written[0], written[3], written[1]):
        history_index.write_record(es, prefix, item)
    other = {**record(4, "executed", True, []), "_id": "other_4", "watch_id": "other"}
    history_index.write_record(es, prefix, other, refresh="wait_for")
    es.indices.refresh(index=history_index.index_pattern(prefix))
    return written


def test_history_lists_newest_first(run, records):
    code, output = run(history, "cpu-high")

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["TIME", "STATE", "MET", "ACTIONS"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["2024-05-01T10:15:00.000Z", "execution_not_needed", "no"],
        ["2024-05-01T10:10:00.000Z", "throttled", "yes"],
        ["2024-05-01T10:05:00.000Z", "execution_not_needed", "no"],
        ["2024-05-01T10:00:00.000Z", "executed", "yes"],
    ]
    assert lines[2].endswith("notify:throttled(throttling interval is set to [5m])")
    assert lines[4].endswith("notify:success, page:failure(received [500] status code)")
    assert lines[1].endswith("-")


def test_history_marks_a_catch_up_run(run, records, es, prefix):
    caught_up = record(5, "executed", True, [{"id": "notify", "type": "logging", "status": "success"}])
    caught_up["trigger_event"]["schedule"]["catch_up"] = True
    history_index.write_record(es, prefix, caught_up, refresh="wait_for")

    code, output = run(history, "cpu-high", "--size", "2")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[1].split()[:4] == ["2024-05-01T10:25:00.000Z", "executed", "(catch-up)", "yes"]
    assert lines[2].split()[:2] == ["2024-05-01T10:15:00.000Z", "execution_not_needed"]


def test_history_state_filter_and_size(run, records):
    code, output = run(history, "cpu-high", "--state", "execution_not_needed", "--size", "1", "--json")

    assert code == 0, output
    data = json.loads(output)
    assert [r["_id"] for r in data["records"]] == ["cpu-high_3"]

    code, output = run(history, "cpu-high", "--state", "executed")
    assert [line.split()[:2] for line in output.splitlines()[1:]] == [["2024-05-01T10:00:00.000Z", "executed"]]

    code, output = run(history, "cpu-high", "--state", "failed")
    assert code == 0
    assert output.strip() == "no records of watch [cpu-high] in state failed"


def test_history_of_a_watch_known_only_from_history_is_not_unknown(run, records):
    code, output = run(history, "other")
    assert code == 0, output
    assert len(output.splitlines()) == 2


# -- outbox -----------------------------------------------------------------------------------------------

@pytest.fixture
def deliveries(es, prefix):
    """Three deliveries: one pending, one dead (4xx), one delivered; the dead one's URL has a secret."""
    box = Outbox(es, prefix)
    ids = {}
    for name, url in (("pending", "http://127.0.0.1:9/hook"), ("dead", f"http://127.0.0.1:9/hook?token={SECRET}"),
                      ("delivered", "http://127.0.0.1:9/ok")):
        request = HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json"}, body="{}",
                              secrets=(SECRET,) if SECRET in url else ())
        outcome = box.enqueue(request, record_id=f"rec-{name}", action_id="notify", watch_id="cpu-high",
                              connector="ops-hook")
        ids[name] = outcome.response["outbox"]["id"]
    dead = box.store.get(ids["dead"])
    box.store.update(dead, {"state": DEAD, "attempts": 1, "last_error": "received [400] status code (not retried)",
                            "updated_at": format_iso_millis(dt.datetime.now(dt.timezone.utc))})
    delivered = box.store.get(ids["delivered"])
    box.store.update(delivered, {"state": "delivered", "attempts": 1})
    return ids


def test_outbox_lists_pending_and_dead_with_depth_and_no_secret(run, deliveries):
    code, output = run(outbox_command)

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["ID", "WATCH", "ACTION", "CONNECTOR", "STATE", "ATTEMPTS", "NEXT", "ATTEMPT",
                                "LAST", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == {deliveries["pending"], deliveries["dead"]}
    assert rows[deliveries["dead"]].split()[1:6] == ["cpu-high", "notify", "ops-hook", "dead", "1"]
    assert rows[deliveries["dead"]].endswith("received [400] status code (not retried)")
    assert rows[deliveries["pending"]].split()[4:6] == ["pending", "0"]
    assert lines[-1] == "depth: pending 1, delivering 0, delivered 1, dead 1"
    assert SECRET not in output

    code, output = run(outbox_command, "--json", "--state", "dead")
    assert code == 0
    data = json.loads(output)
    assert [d["id"] for d in data["deliveries"]] == [deliveries["dead"]]
    assert "${secret:" in data["deliveries"][0]["request"]["url"]
    assert SECRET not in output
    assert data["depth"] == {"pending": 1, "delivering": 0, "delivered": 1, "dead": 1}


def test_outbox_retry_moves_a_dead_delivery_back_to_pending(run, deliveries, es, prefix):
    code, output = run(outbox_command, "--retry", deliveries["dead"])

    assert code == 0, output
    assert f"delivery [{deliveries['dead']}] is pending again" in output
    item = Outbox(es, prefix).store.get(deliveries["dead"])
    assert item.state == PENDING
    assert item.attempts == 0 and item.source["last_error"] is None
    assert parse_instant(item.source["next_attempt_at"]) <= dt.datetime.now(dt.timezone.utc)

    code, output = run(outbox_command, "--retry", deliveries["dead"])  # no longer dead
    assert code == 1
    assert f"delivery [{deliveries['dead']}] is pending, not dead: nothing to retry" in output

    code, output = run(outbox_command, "--retry", "no-such-id")
    assert code == 1
    assert f"no delivery [no-such-id] in {prefix}-outbox" in output


def test_outbox_without_index_is_empty(run):
    code, output = run(outbox_command)
    assert code == 0, output
    assert output.splitlines() == ["no deliveries pending or dead",
                                   "depth: pending 0, delivering 0, delivered 0, dead 0"]


def test_silence_sets_lists_and_clears_and_keeps_the_rule_state(run, store):
    store.save(WatchState("ssh", rule_state={"firing": {"1.2.3.4": {"since": "2024-05-01T10:00:00.000Z",
                                                                      "group": "1.2.3.4"}}}))
    code, out = run(silence, "ssh", "--key", "1.2.3.4", "--until", "2099-01-01T01:00:00+01:00")
    assert code == 0, out
    assert out.splitlines()[0] == "ssh: group [1.2.3.4] silenced until 2099-01-01T00:00:00.000Z"
    code, out = run(silence, "ssh", "--for", "2h")
    assert code == 0, out
    state = store.load("ssh")
    assert set(state.silences) == {"1.2.3.4", "*"}
    until = parse_instant(state.silences["*"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=119) < until <= dt.timedelta(hours=2)
    assert state.rule_state["firing"]["1.2.3.4"]["since"] == "2024-05-01T10:00:00.000Z"  # untouched
    code, out = run(silence, "ssh", "--list", "--json")
    assert code == 0 and json.loads(out)["silences"]["1.2.3.4"] == "2099-01-01T00:00:00.000Z"
    code, out = run(silence, "ssh", "--clear")
    assert code == 0 and out.splitlines()[0] == "ssh: the whole rule no longer silenced"
    assert store.load("ssh").silences == {"1.2.3.4": "2099-01-01T00:00:00.000Z"}


def test_silence_refuses_bad_input_with_the_option_named(run, store):
    store.save(WatchState("ssh"))
    code, out = run(silence, "ssh", "--for", "soon")
    assert code == 2 and "Invalid value for --for: expected a duration such as 30s" in out
    code, out = run(silence, "ssh", "--until", "2001-01-01T00:00:00Z")
    assert code == 2 and "Invalid value for --until: expected a time in the future, found '2001-01-01T00:00:00Z'" in out
    code, out = run(silence, "ssh", "--for", "1h", "--clear")
    assert code == 2 and "give exactly one of --for, --until, --clear, --list (found --for, --clear)" in out
    code, out = run(silence, "nope", "--for", "1h")
    assert code == 1 and "unknown watch [nope]" in out
    code, out = run(silence, "ssh", "--for", "99999999d")
    assert code == 2 and "Invalid value for --for: expected a duration that ends before the year 10000" in out
    code, out = run(silence, "ssh", "--clear", "--key", "never")
    assert code == 0 and out.splitlines()[0] == "ssh: group [never] was not silenced"


def test_status_shows_the_last_runs_warnings_and_a_cli_save_keeps_them(run, store):
    truncated = {"type": "groups_truncated", "scheduled_time": "2024-05-01T10:00:00.000Z", "search": "input",
                 "message": "only the 100 largest groups of host.name were evaluated (max_groups: 100) in the input "
                            "search; 20 more documents are in groups that were not evaluated",
                 "group_by": "host.name", "max_groups": 100, "groups_evaluated": 100, "other_documents": 20}
    store.save(WatchState("cpu-high", status=cpu_status(), warnings=[truncated]))

    code, out = run(status)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1] == ("    warning at 2024-05-01T10:00:00.000Z [groups_truncated]: only the 100 largest groups of "
                         "host.name were evaluated (max_groups: 100) in the input search; 20 more documents are in "
                         "groups that were not evaluated")
    code, out = run(status, "--json")
    assert code == 0 and json.loads(out)["watches"][0]["warnings"] == [truncated]
    code, out = run(status, "cpu-high")
    assert code == 0 and json.loads(out)["warnings"] == [truncated]

    code, out = run(ack, "cpu-high", "notify")              # a CLI save of the state keeps the daemon's warnings
    assert code == 0, out
    assert store.load("cpu-high").warnings == [truncated]
