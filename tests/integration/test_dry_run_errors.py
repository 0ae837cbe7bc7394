"""``watcher dry-run`` when things go wrong, against the real cluster: failing actions make the exit
status 1 and show their reason, a failed transform shows its reason, a search that matched no index
says so, a text field used for grouping/sorting/aggregating gets a hint naming it, and backtests run
only scheduled times."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug import Response

from watcher.cli import main

AT = "2026-11-29T10:05:00Z"


def dry_run(es_cluster, *args):
    result = CliRunner().invoke(main, ["dry-run", *map(str, args)], env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.output


def write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content) if isinstance(content, dict) else textwrap.dedent(content))
    return path


def simple_watch(actions: dict, payload: dict | None = None, **extra) -> dict:
    return {"trigger": {"schedule": {"interval": "5m"}}, "input": {"simple": payload or {"n": 1}},
            "condition": {"always": {}}, "actions": actions, **extra}


@pytest.fixture
def users(es, index_name):
    """Documents whose ``user`` is dynamically mapped (text + user.keyword), like a first ingest."""
    for i, user in enumerate(["root", "admin", "root"]):
        es.index(index=index_name, id=str(i), document={"@timestamp": f"2026-11-29T10:0{i}:00Z", "user": user,
                                                        "bytes": 100 * (i + 1)})
    es.indices.refresh(index=index_name)
    return index_name


# ----------------------------------------------------------------------------------------------
# exit status and reasons

def test_an_action_that_cannot_connect_fails_the_dry_run_and_says_why(es_cluster, tmp_path):
    watch = write(tmp_path, "hook.json", simple_watch({"notify": {"webhook": {
        "method": "post", "url": "http://127.0.0.1:9/alerts", "body": "{{ctx.payload.n}}"}}}))
    code, out = dry_run(es_cluster, watch, "--at", AT, "--action-mode", "execute")
    assert code == 1, out
    line = next(line for line in out.splitlines() if line.startswith("action notify"))
    assert line.startswith("action notify [webhook]: failure — ")
    assert "refused" in line.lower() or "connect" in line.lower(), line
    assert out.splitlines()[-1] == "state: executed"  # the record itself is executed: only the action failed


def test_a_foreach_action_with_one_failing_item_fails_the_dry_run(es_cluster, tmp_path, httpserver):
    httpserver.expect_request("/items/ok").respond_with_data("{}", status=200)
    httpserver.expect_request("/items/broken").respond_with_response(Response("down", status=503))
    watch = write(tmp_path, "each.json", simple_watch(
        {"notify": {"foreach": "ctx.payload.items", "webhook": {
            "method": "post", "url": f"http://127.0.0.1:{httpserver.port}/items/{{{{ctx.payload.name}}}}",
            "body": "{{ctx.payload.name}}"}}},
        payload={"items": [{"name": "ok"}, {"name": "broken"}]}))
    code, out = dry_run(es_cluster, watch, "--at", AT, "--action-mode", "execute")
    assert code == 1, out
    assert "action notify [webhook]: partial_failure — 1 of 2 failed, first: received [503] status code" in out
    assert "  item 1: failure — received [503] status code" in out
    record_code, record_out = dry_run(es_cluster, watch, "--at", AT, "--action-mode", "execute", "--json")
    assert record_code == 1
    assert [item["status"] for item in json.loads(record_out)["result"]["actions"][0]["foreach"]] == [
        "success", "failure"]


def test_simulated_actions_keep_exit_status_0(es_cluster, tmp_path):
    watch = write(tmp_path, "hook.json", simple_watch({"notify": {"webhook": {
        "method": "post", "url": "http://127.0.0.1:9/alerts", "body": "{{ctx.payload.n}}"}}}))
    code, out = dry_run(es_cluster, watch, "--at", AT)
    assert code == 0, out
    assert "action notify [webhook]: simulated" in out


def test_a_failed_watch_transform_prints_its_reason(es_cluster, tmp_path):
    missing = f"no-such-index-{uuid.uuid4().hex[:8]}"
    watch = write(tmp_path, "transform.json", simple_watch(
        {"log": {"logging": {"text": "x"}}},
        transform={"search": {"request": {"indices": [missing], "indices_options": {"ignore_unavailable": False},
                                          "body": {"query": {"match_all": {}}}}}}))
    code, out = dry_run(es_cluster, watch, "--at", AT)
    assert code == 1, out
    assert "failed to execute watch transform" in out
    assert f"transform search failed: no such index [{missing}] (index_not_found_exception)" in out.splitlines()


def test_a_search_on_no_index_says_so(es_cluster, tmp_path):
    pattern = f"logz-typo-{uuid.uuid4().hex[:8]}-*"
    watch = write(tmp_path, "typo.json", {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"search": {"request": {"indices": [pattern], "body": {"query": {"match_all": {}}}}}},
        "condition": {"compare": {"ctx.payload.hits.total": {"gt": 0}}}, "actions": {}})
    code, out = dry_run(es_cluster, watch, "--at", AT)
    assert code == 0, out
    assert f"note: no index matched {pattern}" in out.splitlines()


def test_a_search_that_matched_an_index_has_no_note(es_cluster, tmp_path, users):
    watch = write(tmp_path, "ok.json", {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"search": {"request": {"indices": [users], "body": {"query": {"match_all": {}}}}}},
        "condition": {"never": {}}, "actions": {}})
    code, out = dry_run(es_cluster, watch, "--at", AT)
    assert code == 0, out
    assert "note: no index matched" not in out


# ----------------------------------------------------------------------------------------------
# "Fielddata is disabled" hints that fit the case

def rule(tmp_path: Path, index: str, **fields) -> Path:
    lines = [f"name: r\nschedule: 5m\nindex: {index}\nwindow: 1h"] + [f"{k}: {json.dumps(v)}" for k, v in fields.items()]
    return write(tmp_path, "r.yaml", "\n".join(lines) + "\n")


def test_group_by_a_text_field_groups_by_its_keyword_sub_field_and_says_so(es_cluster, tmp_path, users):
    # It used to fail with a hint to group by user.keyword; the engine now does it itself, with a note
    # (docs/correctness.md#group-keys-the-cluster-cannot-aggregate).
    code, out = dry_run(es_cluster, rule(tmp_path, users, group_by="user"), "--at", AT)
    assert code == 0, out
    assert "note: r: group_by user is a text field; grouping by its aggregatable sub-field user.keyword" in out


def test_time_field_that_is_text_hint(es_cluster, tmp_path, users):
    code, out = dry_run(es_cluster, rule(tmp_path, users, time_field="user"), "--at", AT)
    assert code == 1, out
    assert ("hint: time_field: user is a text field, which the search cannot sort on; give a date field, "
            "or map user as date in an index template") in out.splitlines()


def test_metric_on_a_text_field_hint(es_cluster, tmp_path, users):
    path = rule(tmp_path, users, condition={"metric": {"agg": "cardinality", "field": "user", "gt": 1}})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 1, out
    assert ("hint: condition.metric.field: user is a text field; aggregate a numeric field (or, for cardinality, "
            "a keyword field) instead (with dynamic mappings: user.keyword), or map user as keyword in an index "
            "template") in out.splitlines()
    assert "group_by" not in out


def test_a_watch_aggregating_a_text_field_gets_a_general_hint(es_cluster, tmp_path, users):
    watch = write(tmp_path, "terms.json", {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"search": {"request": {"indices": [users], "body": {
            "size": 0, "aggs": {"by_user": {"terms": {"field": "user"}}}}}}},
        "condition": {"always": {}}, "actions": {}})
    code, out = dry_run(es_cluster, watch, "--at", AT)
    assert code == 1, out
    assert ("hint: the search aggregates or sorts on [user], a text field; use a keyword field instead (with dynamic "
            "mappings: user.keyword), or map user as keyword in an index template") in out.splitlines()


# ----------------------------------------------------------------------------------------------
# backtests run scheduled times only

def test_backtest_of_a_cron_schedule_starts_at_its_first_fire_time(es_cluster, tmp_path):
    watch = write(tmp_path, "cron.json", {"trigger": {"schedule": {"cron": "0 0/10 * * * ?"}},
                                          "input": {"simple": {}}, "condition": {"always": {}}, "actions": {}})
    code, out = dry_run(es_cluster, watch, "--from", "2026-11-29T10:03:00Z", "--to", "2026-11-29T10:25:00Z")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "cron: 2 scheduled times, condition met at 2, alerts sent at 0, failed at 0"
    assert [line.split()[0] for line in lines[2:]] == ["2026-11-29T10:10:00.000Z", "2026-11-29T10:20:00.000Z"]


def test_backtest_with_no_scheduled_time_in_the_range_says_so(es_cluster, tmp_path):
    watch = write(tmp_path, "nightly.json", {"trigger": {"schedule": {"daily": {"at": "23:00"}}},
                                             "input": {"simple": {}}, "condition": {"always": {}}, "actions": {}})
    code, out = dry_run(es_cluster, watch, "--from", "2026-11-29T10:00:00Z", "--to", "2026-11-29T12:00:00Z")
    assert code == 0, out
    assert out.splitlines() == [
        'nightly: 0 scheduled times in the range 2026-11-29T10:00:00+00:00 to 2026-11-29T12:00:00+00:00 '
        '(schedule: {"schedule": {"daily": {"at": "23:00"}}})']
