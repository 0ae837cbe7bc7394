"""``watcher dry-run`` on the kinds of watches Watcher users write, against the real cluster.

The watches are the shipped examples in examples/watches/, pointed at this test's indices (and, for
webhooks, at a real HTTP server on 127.0.0.1).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from watcher.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "watches"
AT = "2026-11-29T10:05:00Z"


def example(name: str, tmp_path: Path, **replace) -> Path:
    text = (EXAMPLES / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def dry_run(es_cluster, *args):
    result = CliRunner().invoke(main, ["dry-run", *map(str, args)], env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def logs(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "log.level": {"type": "keyword"},
        "service.name": {"type": "keyword"}, "message": {"type": "text"}}})
    docs = [
        ("2026-11-29T10:01:00Z", "error", "checkout", 'payment "declined"\nretrying'),
        ("2026-11-29T10:02:00Z", "error", "checkout", "timeout talking to db"),
        ("2026-11-29T10:03:00Z", "info", "checkout", "ok"),
        ("2026-11-29T10:03:30Z", "error", "checkout", "ünïcödé failure"),
        ("2026-11-29T10:04:00Z", "error", "search", "shard failure"),
        ("2026-11-29T09:59:59Z", "error", "checkout", "before the window"),
    ]
    for i, (ts, level, service, message) in enumerate(docs):
        es.index(index=index_name, id=f"e{i}", document={
            "@timestamp": ts, "log": {"level": level}, "service": {"name": service}, "message": message})
    es.indices.refresh(index=index_name)
    return index_name


@pytest.fixture
def metrics(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host.name": {"type": "keyword"}, "system.cpu.pct": {"type": "float"}}})
    samples = {"web-1": [0.95, 0.97], "web-2": [0.2, 0.4], "db-1": [0.5]}
    n = 0
    for host, values in samples.items():
        for value in values:
            n += 1
            es.index(index=index_name, id=str(n), document={
                "@timestamp": f"2026-11-29T10:0{n - 1}:00Z", "host": {"name": host}, "system": {"cpu": {"pct": value}}})
    es.indices.refresh(index=index_name)
    return index_name


def test_errors_in_logs_with_a_logging_action(es_cluster, logs, tmp_path):
    path = example("log-errors.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 0, out
    assert f"input search on {logs}" in out
    assert "hits: 4 total, 4 returned" in out
    assert "condition compare: met" in out
    assert "action log_errors [logging]: simulated" in out
    assert ('4 errors in the last 5 minutes: [search] shard failure; [checkout] ünïcödé failure; '
            '[checkout] timeout talking to db; [checkout] payment "declined"\n') in out.replace("\n    retrying", "\nretrying")
    assert "state: executed" in out


def test_per_host_aggregation_with_array_compare_and_foreach(es_cluster, metrics, tmp_path):
    path = example("per-host-threshold.json", tmp_path, **{'"metrics-*"': f'"{metrics}"'})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 0, out
    assert "aggregation hosts: 3 buckets (web-1: 2, web-2: 2, db-1: 1)" in out, out
    assert "condition array_compare: met" in out
    assert "host web-1 cpu 0.9600000083446503 over 2 samples" in out
    assert "host db-1 cpu 0.5 over 1 samples" in out


def test_per_host_aggregation_with_a_painless_script_condition(es_cluster, metrics, tmp_path, es_modules):
    path = example("per-host-script.json", tmp_path, **{'"metrics-*"': f'"{metrics}"'})
    code, out = dry_run(es_cluster, path, "--at", AT, "--json")
    record = json.loads(out)
    if "lang-painless" in es_modules:
        assert code == 0 and record["result"]["condition"]["met"] is True
    else:  # the local node cannot run Painless: the run fails and says why, and nothing fires
        assert code == 1 and record["state"] == "failed"
        assert "painless" in record["exception"]["reason"].lower()


def test_cluster_health_through_an_http_input(es_cluster, tmp_path):
    url = urlsplit(es_cluster.url)
    path = example("cluster-health.json", tmp_path, **{'"localhost"': f'"{url.hostname}"', "9200": str(url.port)})
    code, out = dry_run(es_cluster, path, "--at", AT, "--json")
    assert code == 0, out
    record = json.loads(out)
    payload = record["result"]["input"]["payload"]
    assert payload["_status_code"] == 200 and payload["status"] in ("green", "yellow")
    assert record["result"]["condition"]["met"] is False
    assert record["state"] == "execution_not_needed" and record["result"]["actions"] == []


def test_chained_input_uses_the_first_link_in_the_second(es_cluster, logs, tmp_path):
    path = example("chained-input.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    code, out = dry_run(es_cluster, path, "--at", "2026-11-29T10:10:00Z", "--json")
    assert code == 0, out
    record = json.loads(out)
    payload = record["result"]["input"]["payload"]
    assert payload["limits"] == {"max_errors": 3}
    assert payload["errors"]["hits"]["total"] == 3  # checkout errors in [10:00, 10:10)
    assert record["result"]["condition"]["met"] is False  # 3 is not > 3
    code, out = dry_run(es_cluster, path, "--at", "2026-11-29T10:10:00Z")
    assert "state: execution_not_needed" in out


def test_foreach_action_sends_one_request_per_hit(es_cluster, logs, tmp_path, httpserver):
    httpserver.expect_request("/errors/e0").respond_with_data("ok")
    httpserver.expect_request("/errors/e1").respond_with_data("ok")
    httpserver.expect_request("/errors/e3").respond_with_data("ok")
    path = example("foreach-hits.json", tmp_path, **{'"logs-*"': f'"{logs}"', "8000": str(httpserver.port)})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 0, out
    assert "POST http://127.0.0.1:" in out and len(httpserver.log) == 0  # simulate sends nothing
    code, out = dry_run(es_cluster, path, "--at", AT, "--action-mode", "execute", "--json")
    assert code == 0, out
    record = json.loads(out)
    action = record["result"]["actions"][0]
    assert action["status"] == "success" and action["number_of_actions_executed"] == 3
    assert [r.path for r, _ in httpserver.log] == ["/errors/e0", "/errors/e1", "/errors/e3"]
    first = json.loads(httpserver.log[0][0].get_data(as_text=True))
    assert first["message"] == 'payment "declined"\nretrying' and first["service"] == {"name": "checkout"}


def test_bucket_selector_script_transform_and_foreach_over_its_list(es_cluster, logs, tmp_path, httpserver,
                                                                     requires_scripting):
    """A watch in the style of Elastic's examples: a pipeline aggregation keeps the busy services, a
    Painless condition looks at the buckets, a script transform builds a list with ``toArray()`` and
    a foreach action sends one request per element."""
    httpserver.expect_request("/busy/checkout", method="POST").respond_with_data("ok")
    path = example("busy-hosts-bucket-selector.json", tmp_path, **{'"logs-*"': f'"{logs}"', "8000": str(httpserver.port)})
    code, out = dry_run(es_cluster, path, "--at", AT, "--action-mode", "execute", "--json")
    assert code == 0, out
    record = json.loads(out)
    buckets = record["result"]["input"]["payload"]["aggregations"]["services"]["buckets"]
    assert buckets == [{"key": "checkout", "doc_count": 4}]  # search (1 error) dropped by bucket_selector
    assert record["result"]["condition"] == {"type": "script", "status": "success", "met": True}
    assert record["result"]["transform"]["payload"] == {
        "services": [{"name": "checkout", "errors": 4}], "names": ["checkout"]}
    action = record["result"]["actions"][0]
    assert action["status"] == "success" and action["number_of_actions_executed"] == 1
    (request, _), = httpserver.log
    assert request.path == "/busy/checkout" and json.loads(request.get_data()) == {"service": "checkout", "errors": 4}


def test_backtest_prints_when_the_watch_would_have_fired(es_cluster, logs, tmp_path):
    path = example("log-errors.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    code, out = dry_run(es_cluster, path, "--from", "2026-11-29T09:55:00Z", "--to", "2026-11-29T10:15:00Z")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "log-errors: 5 scheduled times, condition met at 2, alerts sent at 1, failed at 0"  # 2nd throttled
    fired = [line.split()[0] for line in lines[2:]]
    assert fired == ["2026-11-29T10:00:00.000Z", "2026-11-29T10:05:00.000Z"]


def test_cluster_down_is_a_clear_error(tmp_path):
    path = example("log-errors.json", tmp_path)
    result = CliRunner().invoke(main, ["dry-run", str(path)], env={"ES_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert "cannot reach the cluster (ES_URL) at http://127.0.0.1:9" in result.output


def test_record_writes_watch_records_to_the_history_index(es_cluster, es, logs, tmp_path):
    path = example("log-errors.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    prefix = f"t{logs[-8:]}"
    code, out = dry_run(es_cluster, path, "--at", AT, "--record", "--index-prefix", prefix)
    assert code == 0, out
    hits = es.search(index=f"{prefix}-history-*", query={"bool": {"filter": [
        {"term": {"watch_id": "log-errors"}}, {"term": {"state": "executed"}},
        {"nested": {"path": "result.actions", "query": {"term": {"result.actions.status": "simulated"}}}},
        {"range": {"result.execution_time": {"gte": "2026-11-29T10:05:00Z"}}}]}})["hits"]["hits"]
    assert len(hits) == 1
    assert hits[0]["_index"] == f"{prefix}-history-2026.11.29"
    source = hits[0]["_source"]
    assert source["result"]["actions"][0]["logging"]["logged_text"].startswith("4 errors in the last 5 minutes")
    assert source["trigger_event"]["manual"]["schedule"]["scheduled_time"] == "2026-11-29T10:05:00.000Z"
    mapping = es.indices.get_mapping(index=f"{prefix}-history-*")[hits[0]["_index"]]["mappings"]
    assert mapping["properties"]["result"]["properties"]["input"]["properties"]["payload"]["enabled"] is False
    es.indices.delete(index=f"{prefix}-history-*")
    es.indices.delete_index_template(name=f"{prefix}-history")


def test_record_also_saves_the_status_and_starts_from_it(es_cluster, es, logs, tmp_path):
    path = example("log-errors.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    prefix = f"s{logs[-8:]}"
    try:
        code, out = dry_run(es_cluster, path, "--at", AT, "--record", "--index-prefix", prefix)
        assert code == 0, out
        saved = es.get(index=f"{prefix}-state", id="log-errors")["_source"]
        assert saved["status"]["last_checked"] == "2026-11-29T10:05:00.000Z"
        assert saved["status"]["last_met_condition"] == "2026-11-29T10:05:00.000Z"
        action = saved["status"]["actions"]["log_errors"]
        assert action["ack"]["state"] == "ackable"
        assert action["last_successful_execution"]["timestamp"] == "2026-11-29T10:05:00.000Z"
        assert saved["last_window_end"] is None        # a manual run moves no progress

        # three minutes later (errors still in its 5m window), within the 15m throttle period: throttled
        code, out = dry_run(es_cluster, path, "--at", "2026-11-29T10:08:00Z", "--record", "--json",
                            "--index-prefix", prefix)
        assert code == 0, out
        record = json.loads(out[out.index("{"):])
        assert record["state"] == "throttled"
        saved = es.get(index=f"{prefix}-state", id="log-errors")["_source"]
        assert saved["status"]["last_checked"] == "2026-11-29T10:08:00.000Z"
        assert saved["status"]["actions"]["log_errors"]["last_throttle"]["timestamp"] == "2026-11-29T10:08:00.000Z"
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-history-*,{prefix}-state")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-history")


def watch_file(tmp_path: Path, name: str, watch: dict) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(watch))
    return path


def test_keyed_buckets_are_shown_by_name(es_cluster, logs, tmp_path):
    path = watch_file(tmp_path, "keyed", {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"search": {"request": {"indices": [logs], "body": {"size": 0, "aggs": {"levels": {"filters": {
            "filters": {"errors": {"term": {"log.level": "error"}}, "infos": {"term": {"log.level": "info"}}}}}}}}}},
        "condition": {"always": {}}, "actions": {}})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 0, out
    assert "aggregation levels: 2 buckets (errors: 5, infos: 1)" in out


def test_a_failing_condition_script_says_why_and_where(es_cluster, tmp_path, requires_painless):
    path = watch_file(tmp_path, "npe", {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"simple": {"hits": {"total": 0}}},
        "condition": {"script": "return ctx.payload.aggregations.clusters.buckets.size() > 0;"},
        "actions": {}})
    code, out = dry_run(es_cluster, path, "--at", AT)
    assert code == 1
    assert "runtime error: null_pointer_exception" in out and "(script line 1, column" in out, out
    code, out = dry_run(es_cluster, path, "--at", AT, "--json")
    exception = json.loads(out)["exception"]
    assert exception["type"] == "painless_error"
    assert exception["reason"].startswith("runtime error: null_pointer_exception")
    assert exception["caused_by"]["type"] == "null_pointer_exception"
    assert exception["script_stack"] and exception["position"]["line"] == 1


def test_a_broken_connector_the_watch_does_not_use_is_a_warning(es_cluster, logs, tmp_path):
    path = example("log-errors.json", tmp_path, **{'"logs-*"': f'"{logs}"'})
    connectors = tmp_path / "connectors.yaml"
    connectors.write_text("connectors:\n  teams:\n    type: ms_teams\n")  # no url
    result = CliRunner().invoke(main, ["dry-run", str(path), "--connectors", str(connectors), "--at", AT],
                                env=es_cluster.env())
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: {connectors}:2:3: connectors.teams: missing required field 'url'\n"
    assert "condition compare: met" in result.stdout
