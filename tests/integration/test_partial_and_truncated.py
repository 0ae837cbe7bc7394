"""Partial search answers and truncated groups, against the real cluster: the engine says what it
cannot be sure of (``result.warnings``, a WARNING log line, the dry-run) instead of reading a partial
answer as the truth or dropping groups without a word.

Partial answers are produced by the cluster itself: two indices under one pattern map ``user.id``
differently (``keyword`` in ``-a``, ``long`` in ``-b``), and a ``terms`` query for ``["7", "root"]``
fails on the ``long`` shard ("For input string: root") while the ``keyword`` shard answers — HTTP
200 with ``_shards.failed: 1``. The documents that would have matched live on the failed shard."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from click.testing import CliRunner

from tests.integration.ruletype_helpers import RuleRunner, add_docs, create_index, delivered, iso, matches
from watcher.cli import main
from watcher.daemon.service import transient_reason
from watcher.definitions.load import load_paths
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.status import WatchStatus

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
QUERY = "query: {terms: {user.id: ['7', root]}}\n"


def minutes(n: float) -> dt.datetime:
    return T + dt.timedelta(minutes=n)


def doc(when: dt.datetime, user_id) -> dict:
    return {"@timestamp": iso(when), "user": {"id": user_id}}


@pytest.fixture
def conflict(es, index_name):
    """``<name>-a`` (user.id keyword) and ``<name>-b`` (user.id long, created by ``make_b``) under
    the pattern ``<name>-*``."""
    made = []

    def make(suffix: str, kind: str, docs: list[dict]) -> str:
        name = f"{index_name}-{suffix}"
        create_index(es, name, {"user": {"properties": {"id": {"type": kind}}}})
        add_docs(es, name, docs)
        made.append(name)
        return name

    yield make
    es.options(ignore_status=404).indices.delete(index=",".join(made) or f"{index_name}-none")


def rule(index: str, body: str, **top) -> str:
    head = "\n".join(f"{key}: {value}" for key, value in
                     {"name": "r", "index": index, "window": "10m", "schedule": "10m", **top}.items())
    return head + "\n" + body


def warnings_of(record: dict, kind: str | None = None) -> list[dict]:
    found = record["result"].get("warnings") or []
    return [w for w in found if kind is None or w["type"] == kind]


def watch_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "watcher.warnings" and r.levelno == logging.WARNING]


# ---- partial answers: rules fail by default -------------------------------------------------------------

def test_a_count_lt_rule_fails_on_a_partial_answer_instead_of_firing(es, conflict, index_name, tmp_path, caplog):
    conflict("a", "keyword", [doc(minutes(-5), "someone")])
    number = conflict("b", "long", [doc(minutes(-4), 7)])       # the one matching document: on the failed shard
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "condition: {count: {lt: 1}}\n"
                                           "actions: [{connector: log}]\n"))
    with caplog.at_level(logging.WARNING, logger="watcher.warnings"):
        record = runner.run(T)

    assert record["state"] == "failed"
    assert record["result"]["input"]["status"] == "failure"
    assert record["result"]["input"]["error"]["type"] == "partial_results_error"
    assert "actions" not in record["result"] and delivered(record) == []
    (warning,) = warnings_of(record)
    assert warning["type"] == "partial_results" and warning["accepted"] is False
    assert (warning["failed_shards"], warning["total_shards"], warning["search"]) == (1, 2, "input")
    assert warning["index"] == f"{index_name}-*"
    assert warning["reason"].startswith(f"index [{number}]: ") and "root" in warning["reason"]
    # the daemon reads it as a cluster error to retry, like a timeout
    assert transient_reason(record).startswith("partial_results_error: 1 of 2 shards failed in the input search")
    (line,) = watch_warnings(caplog)
    assert line.startswith("r: 1 of 2 shards failed in the input search") and "the run failed (the daemon runs the window again)" in line


def test_a_flatline_rule_fails_on_a_partial_answer_instead_of_firing(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-30), "root")])       # the stream existed before the window
    conflict("b", "long", [doc(minutes(-4), 7)])                # and is alive, on the failed shard
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "type: flatline\nparams: {threshold: 1}\n"
                                           "actions: [{connector: log}]\n"))
    record = runner.run(T)

    assert record["state"] == "failed"
    assert record["result"]["input"]["error"]["type"] == "partial_results_error"
    assert [w["type"] for w in warnings_of(record)] == ["partial_results"]
    assert runner.state.get("type_state") is None                # nothing learnt from the failed run


# ---- partial answers: allow_partial_results --------------------------------------------------------------

def test_allow_partial_results_evaluates_but_absence_conditions_never_fire(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "someone")])
    conflict("b", "long", [doc(minutes(-4), 7)])
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "condition: {count: {lt: 1}}\n"
                                           "allow_partial_results: true\nactions: [{connector: log}]\n"))
    record = runner.run(T)

    assert record["result"]["input"]["status"] == "success"
    assert record["result"]["input"]["payload"]["hits"]["total"] == 0       # what the answering shard found
    condition = record["result"]["condition"]
    assert condition["met"] is False and condition["held_on_partial_results"] is True
    assert record["state"] == "execution_not_needed" and record["result"]["actions"] == []
    partial, held = warnings_of(record)
    assert (partial["type"], partial["accepted"], partial["failed_shards"]) == ("partial_results", True, 1)
    assert (held["type"], held["held"], held["groups"]) == ("absence_held", 1, None)


def test_allow_partial_results_fires_a_presence_condition_with_the_warning(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "root")])
    conflict("b", "long", [doc(minutes(-4), 7)])
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "condition: {count: {gte: 1}}\n"
                                           "allow_partial_results: true\nactions: [{connector: log}]\n"))
    record = runner.run(T)

    assert record["state"] == "executed"
    assert [text.split(" in ")[0] for _, _, _, text in delivered(record)] == ["rule 'r' matched query: Document count is 1"]
    assert [w["type"] for w in warnings_of(record)] == ["partial_results"]


def test_allow_partial_results_flatline_is_held_and_its_recovery_too(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-30), "root")])
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "type: flatline\nparams: {threshold: 1}\n"
                                           "allow_partial_results: true\n"
                                           "actions: [{connector: log, on: [firing, recovered]}]\n"))
    first = runner.run(T)                                        # complete answer, empty window: fires
    assert matches(first) == {None: 0} and warnings_of(first) == []
    assert [event for _, event, _, _ in delivered(first)] == ["firing"]

    conflict("b", "long", [doc(minutes(5), 7)])                  # the stream is back, on a shard that fails
    second = runner.run(minutes(10))
    assert matches(second) == {}                                 # the flatline match is held, not sent
    assert delivered(second) == []                               # and no recovery either: it is not known
    assert [w["type"] for w in warnings_of(second)] == ["partial_results", "absence_held", "recoveries_held"]
    assert warnings_of(second, "absence_held")[0]["held"] == 1
    assert warnings_of(second, "recoveries_held")[0]["held"] == 1
    assert set(runner.state["firing"]) == {"*"}                  # still firing


def test_a_grouped_recovery_on_a_partial_answer_is_held(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "root")])
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "type: any\ngroup_by: user.id\n"
                                           "allow_partial_results: true\n"
                                           "actions: [{connector: log, on: [firing, recovered]}]\n"))
    assert matches(runner.run(T)) == {"root": 1}
    conflict("b", "long", [doc(minutes(5), 7)])
    record = runner.run(minutes(10))
    assert matches(record) == {} and delivered(record) == []
    (held,) = warnings_of(record, "recoveries_held")
    assert (held["groups"], held["held"]) == (["root"], 1)
    assert set(runner.state["firing"]) == {"root"}


def test_new_term_never_learns_its_baseline_from_a_partial_answer(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-30), "root")])
    conflict("b", "long", [doc(minutes(-20), 7)])
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", QUERY + "type: new_term\nparams: {fields: [user.id]}\n"
                                           "allow_partial_results: true\nactions: [{connector: log}]\n"))
    record = runner.run(T)
    assert record["result"]["input"]["error"]["type"] == "partial_results_error"
    assert warnings_of(record)[0]["accepted"] is False
    assert runner.state.get("type_state") is None


def test_a_partial_answer_of_the_rule_filter_search_fails_the_run(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "root")])
    conflict("b", "long", [doc(minutes(-4), 7)])
    # The rule's own query is fine on every shard...
    runner = RuleRunner(es, tmp_path, rule(f"{index_name}-*", "query: {exists: {field: user.id}}\n"
                                           "filter: {include: {user.id: [root, '7']}}\n"
                                           "actions: [{connector: log}]\n"))
    record = runner.run(T)
    # ...the rule filter search fails there (terms "root" on a long field): not a silent drop
    assert record["state"] == "failed"
    assert record["exception"]["type"] == "partial_results_error"
    assert [(w["type"], w["search"]) for w in warnings_of(record)] == [("partial_results", "rule filter")]
    assert transient_reason(record) is not None


# ---- Watcher watches keep Watcher's behaviour, with the warning ------------------------------------------

def test_a_watch_keeps_the_partial_answer_as_watcher_does_and_the_record_warns(es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "someone")])
    conflict("b", "long", [doc(minutes(-4), 7)])
    (tmp_path / "w.json").write_text(json.dumps({
        "trigger": {"schedule": {"interval": "10m"}},
        "input": {"search": {"request": {"indices": [f"{index_name}-*"], "body": {
            "query": {"terms": {"user.id": ["7", "root"]}}}}}},
        "condition": {"compare": {"ctx.payload._shards.failed": {"eq": 0}}},
        "actions": {"log": {"logging": {"text": "{{ctx.payload.hits.total}}"}}}}))
    loaded = load_paths([tmp_path / "w.json"])
    assert not loaded.problems
    (watch,) = loaded.watches.values()
    run = Run(watch=watch, execution_time=T, triggered_time=T, scheduled_time=T, services=Services(es=es))
    record = execute_watch(watch, run, WatchStatus(), {"simulate": Simulate(), "execute": SendNow()},
                           ExecuteOptions(action_modes={"_all": "simulate"}))

    payload = record["result"]["input"]["payload"]
    assert payload["_shards"]["failed"] == 1 and payload["hits"]["total"] == 0
    assert record["result"]["condition"]["met"] is False           # the watch's own condition decided
    (warning,) = warnings_of(record)
    assert (warning["type"], warning["accepted"], warning["search"]) == ("partial_results", True, "input")


# ---- truncated groups ------------------------------------------------------------------------------------

@pytest.fixture
def hosts(es, index_name):
    create_index(es, index_name, {"host": {"properties": {"name": {"type": "keyword"}}}})
    # 120 hosts: host-000 … host-119, host-i with 2 documents for i < 100, one for the other 20
    docs = [{"@timestamp": iso(minutes(-5)), "host": {"name": f"host-{i:03d}"}} for i in range(120)]
    docs += [{"@timestamp": iso(minutes(-4)), "host": {"name": f"host-{i:03d}"}} for i in range(100)]
    add_docs(es, index_name, docs)
    return index_name


def test_a_threshold_rule_over_120_groups_says_it_evaluated_100(es, hosts, tmp_path, caplog):
    runner = RuleRunner(es, tmp_path, rule(hosts, "group_by: host.name\nhits: 0\nactions: [{connector: log}]\n"))
    with caplog.at_level(logging.WARNING, logger="watcher.warnings"):
        record = runner.run(T)

    assert record["result"]["rule"]["alerts"] == 100
    (warning,) = warnings_of(record)
    assert {k: warning[k] for k in ("type", "groups_evaluated", "other_documents", "max_groups", "group_by")} == {
        "type": "groups_truncated", "groups_evaluated": 100, "other_documents": 20, "max_groups": 100,
        "group_by": "host.name"}
    (line,) = watch_warnings(caplog)
    assert line == ("r: only the 100 largest groups of host.name were evaluated (max_groups: 100) in the input "
                    "search; 20 more documents are in groups that were not evaluated")


def test_groups_under_max_groups_raise_no_warning(es, hosts, tmp_path):
    runner = RuleRunner(es, tmp_path, rule(hosts, "group_by: host.name\nmax_groups: 120\nhits: 0\n"
                                           "actions: [{connector: log}]\n"))
    record = runner.run(T)
    assert record["result"]["rule"]["alerts"] == 120 and warnings_of(record) == []


def test_min_doc_count_groups_left_out_are_not_truncation(es, hosts, tmp_path):
    # count gte 2: the cluster drops the 20 one-document hosts itself (min_doc_count); 100 remain, all shown
    runner = RuleRunner(es, tmp_path, rule(hosts, "group_by: host.name\ncondition: {count: {gte: 2}}\nhits: 0\n"
                                           "actions: [{connector: log}]\n"))
    record = runner.run(T)
    assert record["result"]["rule"]["alerts"] == 100 and warnings_of(record) == []


def test_a_typed_rule_over_too_many_groups_says_so(es, hosts, tmp_path):
    runner = RuleRunner(es, tmp_path, rule(hosts, "type: frequency\nparams: {num_events: 1}\ngroup_by: host.name\n"
                                           "max_groups: 30\nhits: 0\nactions: [{connector: log}]\n"))
    record = runner.run(T)
    assert len(matches(record)) == 30
    (warning,) = warnings_of(record)
    assert (warning["type"], warning["groups_evaluated"], warning["other_documents"], warning["search"]) == (
        "groups_truncated", 30, 220 - 60, "rule input")


# ---- the dry-run says it ---------------------------------------------------------------------------------

def dry_run(es_cluster, *args):
    result = CliRunner().invoke(main, ["dry-run", *map(str, args)], env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.output


def test_dry_run_and_backtest_show_truncated_groups(es_cluster, hosts, tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(rule(hosts, "group_by: host.name\nhits: 0\nactions: [{connector: log}]\n", name="many"))
    (tmp_path / "connectors.yaml").write_text("connectors:\n  log:\n    type: logging\n")

    code, out = dry_run(es_cluster, path, "--at", iso(T), "--action-mode", "skip")
    assert code == 0, out
    assert ("warning [groups_truncated]: only the 100 largest groups of host.name were evaluated (max_groups: 100) "
            "in the input search; 20 more documents are in groups that were not evaluated") in out

    code, out = dry_run(es_cluster, path, "--from", iso(minutes(-10)), "--to", iso(T), "--action-mode", "skip")
    assert code == 0, out
    rows = [line for line in out.splitlines() if line.startswith("2026-11-29T")]
    assert [row.split()[:2] for row in rows] == [["2026-11-29T10:00:00.000Z", "throttled"]]  # skip mode
    assert rows[0].endswith("; warnings: groups_truncated")
    assert "warnings at 1 scheduled time(s) (groups_truncated at 1); --json shows them" in out


def test_dry_run_of_a_partial_answer_fails_and_says_why(es_cluster, es, conflict, index_name, tmp_path):
    conflict("a", "keyword", [doc(minutes(-5), "someone")])
    conflict("b", "long", [doc(minutes(-4), 7)])
    path = tmp_path / "absent.yaml"
    path.write_text(rule(f"{index_name}-*", QUERY + "condition: {count: {lt: 1}}\nactions: [{connector: log}]\n",
                         name="absent"))
    (tmp_path / "connectors.yaml").write_text("connectors:\n  log:\n    type: logging\n")

    code, out = dry_run(es_cluster, path, "--at", iso(T))
    assert code == 1, out
    assert "warning [partial_results]: 1 of 2 shards failed in the input search" in out
    assert "state: failed" in out

    path.write_text(path.read_text().replace("actions:", "allow_partial_results: true\nactions:"))
    code, out = dry_run(es_cluster, path, "--at", iso(T))
    assert code == 0, out
    assert "condition compare: not met (held: met on a partial answer, which cannot prove it)" in out
    assert "warning [absence_held]: the answer was partial, so a condition that missing documents can make " \
           "true did not fire for the rule" in out
    assert "state: execution_not_needed" in out
