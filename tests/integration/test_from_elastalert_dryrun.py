"""Each ElastAlert2 fixture (tests/fixtures/elastalert/) converts with `watcher convert --from elastalert`
and dry-runs against the real cluster without error; the rules the documents below are made for fire
for the expected group keys.

One index holds documents for every rule's fields; each converted rule is pointed at it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.integration.ruletype_helpers import add_docs, matches
from watcher.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "elastalert"
AT = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.timezone.utc)

# Group keys that fire at AT (None: a rule without group_by). Flatline, change and new_term fire
# only for keys seen on an earlier run, so a first run finds nothing for them.
EXPECTED = {
    "ssh-root-login": {None},
    "checkout-5xx-burst": {"checkout"},
    "login-failure-spike": {None},
    "heartbeat-missing": set(),
    "service-version-change": set(),
    "blocked-countries": {None},
    "unexpected-admin-users": {None},
    "new-process-on-db-hosts": set(),
    "password-spraying": {"203.0.113.9"},
    "checkout-latency-p95": {"checkout"},
    "cpu-spike": {"web-1"},
    "error-ratio": {"api"},
}

MAPPING = {name: {"type": "keyword"} for name in (
    "event.action", "event.outcome", "event.category", "event.dataset", "user.name", "source.ip", "host.name",
    "host.role", "source.geo.country_iso_code", "service.name", "service.version", "url.path", "process.name",
    "transaction.type", "log.level")}
MAPPING.update({"@timestamp": {"type": "date"}, "http.response.status_code": {"type": "integer"},
                "transaction.duration.us": {"type": "long"}, "system.cpu.pct": {"type": "float"}})


def at(minutes_before: float) -> str:
    return (AT - dt.timedelta(minutes=minutes_before)).isoformat()


def documents() -> list[dict]:
    docs = [  # a root login (any), a login from a blocked country (blacklist), an IAM change by mallory (whitelist)
        {"@timestamp": at(3), "event.action": "ssh_login", "event.outcome": "success", "user.name": "root",
         "host.name": "db-1", "source.ip": "10.0.0.7"},
        {"@timestamp": at(2), "event.action": "login", "source.geo.country_iso_code": "RU", "user.name": "ivan",
         "source.ip": "198.51.100.4"},
        {"@timestamp": at(4), "event.category": "iam", "user.name": "mallory", "event.action": "create_user"},
        {"@timestamp": at(3), "event.dataset": "heartbeat", "host.name": "web-1"},
        {"@timestamp": at(3), "service.name": "billing", "service.version": "1.4.2"},
        {"@timestamp": at(1), "host.role": "database", "host.name": "db-1", "process.name": "nc"},
    ]
    # 20 server errors of checkout (frequency, num_events 20)
    docs += [{"@timestamp": at(8 - i * 0.3), "service.name": "checkout", "http.response.status_code": 503,
              "url.path": "/pay" if i % 4 else "/cart"} for i in range(20)]
    # 12 failed logins with 12 user names from one address now (cardinality > 10; spike current 12),
    # 2 in the quarter hour before (spike reference: 12 / 2 = 6 >= 3)
    docs += [{"@timestamp": at(9 - i * 0.5), "event.outcome": "failure", "user.name": f"user{i}",
              "source.ip": "203.0.113.9"} for i in range(12)]
    # (and one before the reference window: the stream is not new, so an up-spike may fire)
    docs += [{"@timestamp": at(minutes), "event.outcome": "failure", "user.name": "alice", "source.ip": "10.0.0.9"}
             for minutes in (25, 25, 40)]
    # checkout requests at 900 ms (p95 above 800 ms)
    docs += [{"@timestamp": at(6), "service.name": "checkout", "transaction.type": "request",
              "transaction.duration.us": 900_000} for _ in range(3)]
    # CPU of web-1: 0.3 before and in the half hour before, 0.9 now (avg spike 3 >= 2)
    docs += [{"@timestamp": at(70), "host.name": "web-1", "system.cpu.pct": 0.3},
             {"@timestamp": at(45), "host.name": "web-1", "system.cpu.pct": 0.3},
             {"@timestamp": at(10), "host.name": "web-1", "system.cpu.pct": 0.9}]
    # api: 60 lines, 10 errors (16.7% > 5%, at least 50 lines)
    docs += [{"@timestamp": at(5 - i * 0.05), "service.name": "api", "log.level": "error" if i < 10 else "info"}
             for i in range(60)]
    return docs


@pytest.fixture(scope="module")
def shared_index(es):
    name = "test-from-elastalert"
    es.options(ignore_status=404).indices.delete(index=name)
    es.indices.create(index=name, mappings={"properties": MAPPING})
    add_docs(es, name, documents())
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_fixture_converts_and_dry_runs(stem, shared_index, es_cluster, tmp_path):
    runner = CliRunner()
    connectors = tmp_path / "connectors.yaml"
    converted = runner.invoke(main, ["convert", str(FIXTURES / f"{stem}.yaml"), "--from", "elastalert",
                                     "--connectors-out", str(connectors)])
    assert converted.exit_code == 0, converted.stderr
    rule_text = re.sub(r"(?m)^index: .*$", f"index: {shared_index}", converted.stdout)
    (tmp_path / "rule.yaml").write_text(rule_text)
    # the connectors' secrets are ${ENV} references: point them at a closed local port (simulate sends nothing)
    env = {**es_cluster.env(), **{name: "http://127.0.0.1:9/hook"
                                  for name in re.findall(r"\$\{([A-Z0-9_]+)\}", connectors.read_text())}}
    result = runner.invoke(main, ["dry-run", str(tmp_path / "rule.yaml"), "--at", AT.isoformat(), "--json"],
                           env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["result"]["input"]["status"] == "success"
    assert set(matches(record)) == EXPECTED[stem]
