"""The public Python API against the real cluster: execute, backtest, record, history, status."""

from __future__ import annotations

import datetime as dt

import pytest

import watcher

pytestmark = pytest.mark.es
UTC = dt.timezone.utc
AT = dt.datetime(2026, 11, 29, 10, 5, tzinfo=UTC)


@pytest.fixture
def rule(es, index_name, tmp_path):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "source.ip": {"type": "ip"}}})
    for i, minute in enumerate([1, 2, 3, 3, 4]):
        es.index(index=index_name, id=str(i), document={"@timestamp": f"2026-11-29T10:0{minute}:00Z",
                                                         "source": {"ip": "10.0.0.1" if i < 4 else "10.0.0.2"}})
    es.indices.refresh(index=index_name)
    (tmp_path / "connectors.yaml").write_text("connectors:\n  log: {type: logging}\n")
    (tmp_path / "many.yaml").write_text(f"name: many\nindex: {index_name}\nwindow: 5m\ngroup_by: source.ip\n"
                                        f"condition: {{count: {{gte: 3}}}}\nactions: [{{connector: log}}]\n")
    return watcher.load([tmp_path])


def test_execute_simulates_the_actions_of_a_rule(es, rule):
    record = watcher.execute(rule.watches["many"], es, at=AT, connectors=rule.connectors)
    assert record["state"] == "executed"
    assert record["result"]["condition"]["met"] is True
    [action] = record["result"]["actions"]
    assert action["status"] == "simulated"
    assert [item["group"] for item in action["foreach"]] == ["10.0.0.1"]


def test_backtest_carries_state_between_times_and_records_go_to_history(es, rule):
    prefix = f"api-{dt.datetime.now().microsecond}"
    times = watcher.schedule_times(rule.watches["many"], AT - dt.timedelta(minutes=2), AT)
    records = watcher.backtest(rule.watches["many"], es, times, connectors=rule.connectors)
    assert [r["result"]["condition"]["met"] for r in records] == [False, True, True]  # 10:03, 10:04, 10:05
    indices = watcher.record(es, records, index_prefix=prefix)
    assert indices == [f"{prefix}-history-2026.11.29"] * 3
    newest = watcher.history(es, "many", index_prefix=prefix, size=2)
    assert [r["trigger_event"]["triggered_time"] for r in newest] == ["2026-11-29T10:05:00.000Z",
                                                                      "2026-11-29T10:04:00.000Z"]
    assert watcher.status(es, index_prefix=prefix) == {}  # a dry-run keeps no state
    es.indices.delete(index=f"{prefix}-history-*")
