"""YAML rules executed against the real cluster: windows, groups, the filter step, Jinja2 messages,
per-group throttle — the alerts worked out by hand from this test's own documents."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from watcher.definitions.load import load_paths
from watcher.engine.context import Run, Services
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.status import WatchStatus

T = dt.datetime(2026, 11, 29, 10, 0, 0, tzinfo=dt.timezone.utc)  # first scheduled time
UTC = dt.timezone.utc


def at(minutes: float, seconds: float = 0) -> str:
    return (T + dt.timedelta(minutes=minutes, seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def sshd(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "source.ip": {"type": "ip"}, "user.name": {"type": "keyword"},
        "event.action": {"type": "keyword"}, "event.outcome": {"type": "keyword"}}})

    def add(when: str, ip: str, user: str, outcome: str = "failure"):
        es.index(index=index_name, document={"@timestamp": when, "source": {"ip": ip}, "user": {"name": user},
                                             "event": {"action": "ssh_login", "outcome": outcome}})
    # Window of the run at T: [T-5m30s, T-30s).
    add(at(-5, -30), "1.1.1.1", "root")          # exactly on the lower bound: in
    add(at(-3), "1.1.1.1", "admin")
    add(at(-2), "1.1.1.1", "root")
    add(at(-1), "1.1.1.1", "oracle")
    add(at(0, -30), "1.1.1.1", "late")           # exactly on the upper bound: out (next window)
    add(at(-6), "1.1.1.1", "early")              # before the window
    add(at(-2), "2.2.2.2", "root")               # 2 failures: below the threshold
    add(at(-1), "2.2.2.2", "root")
    for minute in range(5):
        add(at(-5 + minute), "10.0.0.5", "healthcheck")  # 5 failures, excluded by the filter
    add(at(-2), "1.1.1.1", "fztu", outcome="success")    # not a failure
    es.indices.refresh(index=index_name)
    return add


@pytest.fixture
def rule_dir(tmp_path, index_name, httpserver):
    (tmp_path / "connectors.yaml").write_text(textwrap.dedent(f"""\
        connectors:
          hook:
            type: webhook
            url: http://127.0.0.1:{httpserver.port}/alerts
            headers: {{Content-Type: application/json}}
        """))
    (tmp_path / "ssh.yaml").write_text(textwrap.dedent(f"""\
        name: ssh-bruteforce
        schedule: 1m
        index: {index_name}
        window: 5m
        delay: 30s
        query: 'event.action:ssh_login AND event.outcome:failure'
        group_by: source.ip
        condition:
          count: {{gte: 3}}
        filter:
          exclude: {{source.ip: [10.0.0.5]}}
        throttle: 10m
        title: "SSH brute force from {{{{ group }}}}"
        message: "{{{{ count }}}} failures from {{{{ group }}}}: {{{{ hits | map(attribute='user.name') | sort | join(',') }}}}"
        actions:
          - connector: hook
        """))
    return tmp_path


def load(rule_dir):
    result = load_paths([rule_dir])
    assert not result.problems, [str(p) for p in result.problems]
    return result.watches["ssh-bruteforce"], result.connectors


def run_at(watch, connectors, es, when: dt.datetime, status: WatchStatus, mode="execute"):
    run = Run(watch=watch, execution_time=when, triggered_time=when, scheduled_time=when,
              services=Services(es=es, connectors=connectors))
    return execute_watch(watch, run, status, {"simulate": Simulate(), "execute": SendNow()},
                         ExecuteOptions(default_mode=mode))


def test_one_alert_per_group_with_the_filter_step_and_jinja_message(es, sshd, rule_dir, httpserver):
    httpserver.expect_request("/alerts", method="POST").respond_with_json({"ok": True})
    watch, connectors = load(rule_dir)
    status = WatchStatus()
    record = run_at(watch, connectors, es, T, status)

    assert record["state"] == "executed"
    assert record["result"]["input"]["payload"]["hits"]["total"] == 11  # 4 + 2 + 5 failures in the window
    buckets = {b["key"]: b["doc_count"] for b in record["result"]["input"]["payload"]["aggregations"]["groups"]["buckets"]}
    assert buckets == {"10.0.0.5": 5, "1.1.1.1": 4}  # min_doc_count 3 left 2.2.2.2 out on the cluster
    assert record["result"]["rule"] == {"alerts": 1, "groups": ["1.1.1.1"], "filter": {"dropped": 5, "kept": 6}}
    action = record["result"]["actions"][0]
    assert action["status"] == "success" and action["foreach"][0]["group"] == "1.1.1.1"

    assert len(httpserver.log) == 1
    body = json.loads(httpserver.log[0][0].get_data(as_text=True))
    assert body["title"] == "SSH brute force from 1.1.1.1"
    assert body["message"] == "4 failures from 1.1.1.1: admin,oracle,root,root"
    assert body["group"] == "1.1.1.1" and body["count"] == 4 and body["rule"] == "ssh-bruteforce"
    assert body["window"] == {"start": "2026-11-29T09:54:30.000Z", "end": "2026-11-29T09:59:30.000Z"}


def test_consecutive_windows_leave_no_gap_and_no_overlap(es, sshd, rule_dir, httpserver):
    httpserver.expect_request("/alerts").respond_with_json({})
    watch, connectors = load(rule_dir)
    status = WatchStatus()
    totals = []
    for minute in range(-1, 2):  # scheduled at 09:59, 10:00, 10:01
        record = run_at(watch, connectors, es, T + dt.timedelta(minutes=minute), status, mode="simulate")
        totals.append(record["result"]["input"]["payload"]["hits"]["total"])
    # 09:59 → [09:53:30, 09:58:30): early(09:54) + 09:54:30 + 3 of 1.1.1.1 before 09:58:30 … counted by hand:
    # 1.1.1.1 at 09:54:00, 09:54:30, 09:57, 09:58; 2.2.2.2 at 09:58; 10.0.0.5 at 09:55..09:58 (4) = 9
    # 10:00 → [09:54:30, 09:59:30): 11 ; 10:01 → [09:55:30, 10:00:30): 1.1.1.1 at 09:57, 09:58, 09:59, 09:59:30
    #        + 2.2.2.2 ×2 + 10.0.0.5 at 09:56..09:59 (4) = 10
    assert totals == [9, 11, 10]


def test_each_group_key_is_throttled_on_its_own(es, sshd, rule_dir, httpserver):
    httpserver.expect_request("/alerts").respond_with_json({})
    watch, connectors = load(rule_dir)
    status = WatchStatus()
    run_at(watch, connectors, es, T, status)
    for second in (1, 2, 3):  # a new attacker inside the next window
        sshd(at(0, second), "3.3.3.3", "guest")
    es.indices.refresh(index=watch.rule.index if isinstance(watch.rule.index, str) else watch.rule.index[0])
    record = run_at(watch, connectors, es, T + dt.timedelta(minutes=1), status)
    results = {r["group"]: r["status"] for r in record["result"]["actions"][0]["foreach"]}
    assert results == {"1.1.1.1": "throttled", "3.3.3.3": "success"}
    assert len(httpserver.log) == 2
    assert json.loads(httpserver.log[1][0].get_data(as_text=True))["group"] == "3.3.3.3"


def test_a_missing_value_is_sent_as_a_visible_placeholder_recorded_and_logged(es, sshd, rule_dir, httpserver, caplog):
    # `watcher validate` rejects unknown top-level names ({{ cuont }}); a missing attribute is only
    # known when the template renders. Losing the alert for it would be worse than a gap: the alert
    # goes out with <MISSING VALUE> where the value would be, and the record and log say which.
    httpserver.expect_request("/alerts", method="POST").respond_with_json({"ok": True})
    rule = (rule_dir / "ssh.yaml").read_text().replace(
        "{{ count }} failures", "{{ rule.windw }} / {{ hits[0].source.port }} / {{ count }} failures")
    (rule_dir / "ssh.yaml").write_text(rule)
    watch, connectors = load(rule_dir)
    with caplog.at_level("WARNING", logger="watcher.engine"):
        record = run_at(watch, connectors, es, T, WatchStatus())
    item = record["result"]["actions"][0]["foreach"][0]
    assert item["status"] == "success"
    assert item["warnings"] == [{"type": "template_missing_value", "names": ["port", "windw"],
                                 "placeholder": "<MISSING VALUE>"}]
    [request] = [entry[0] for entry in httpserver.log]
    message = json.loads(request.get_data(as_text=True))["message"]
    assert message.startswith("<MISSING VALUE> / <MISSING VALUE> / 4 failures from 1.1.1.1")
    assert any("port, windw" in r.getMessage() and "<MISSING VALUE>" in r.getMessage() for r in caplog.records)


def test_unknown_template_variable_is_refused_at_load(rule_dir):
    rule = (rule_dir / "ssh.yaml").read_text().replace("{{ count }} failures", "{{ cuont }} failures")
    (rule_dir / "ssh.yaml").write_text(rule)
    problems = [str(p) for p in load_paths([rule_dir]).problems]
    assert problems == [f"{rule_dir / 'ssh.yaml'}:14:10: message: undefined variable 'cuont' (did you mean 'count'?); "
                        "templates here know: count, ctx, details, dropped, fired_for, group, hits, matches, rule, status, "
                        "summary_table, top_counts, value, window"]
