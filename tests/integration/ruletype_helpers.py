"""Helpers for rule-type tests: write a rule file, run it at chosen scheduled times against the real
cluster (state carried from run to run, as the daemon does), and read what fired."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from watcher.definitions.load import load_paths
from watcher.engine.context import Run, Services
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.status import WatchStatus

UTC = dt.timezone.utc

CONNECTORS = """\
connectors:
  log:
    type: logging
"""


def iso(instant: dt.datetime) -> str:
    """ISO-8601 with the instant's own offset (documents may carry any zone)."""
    return instant.isoformat()


def create_index(es, name: str, properties: dict) -> None:
    """An index with ``@timestamp`` (date) and the given extra field mappings."""
    es.indices.create(index=name, mappings={"properties": {"@timestamp": {"type": "date"}, **properties}})


def add_docs(es, index: str, docs: list[dict]) -> None:
    """Index ``docs`` in one bulk request and refresh."""
    if docs:
        operations = []
        for doc in docs:
            operations += [{"index": {"_index": index}}, doc]
        response = es.bulk(operations=operations, refresh=True)
        assert not response["errors"], response
    else:
        es.indices.refresh(index=index)


class RuleRunner:
    """Runs one rule (YAML text) at scheduled times, keeping status and rule state between runs.

    ``records`` holds every watch record; ``state`` is the rule state after the last run.
    """

    def __init__(self, es, tmp_path: Path, rule_yaml: str, connectors_yaml: str = CONNECTORS):
        (tmp_path / "connectors.yaml").write_text(connectors_yaml)
        (tmp_path / "rule.yaml").write_text(textwrap.dedent(rule_yaml))
        result = load_paths([tmp_path])
        assert not result.problems, [str(p) for p in result.problems]
        (self.watch,) = result.watches.values()
        self.connectors = result.connectors
        self.es = es
        self.status = WatchStatus()
        self.state: dict = {}
        self.silences: dict = {}
        self.records: list[dict] = []

    def run(self, scheduled: dt.datetime, mode: str = "simulate", delivery=None) -> dict:
        """Execute at ``scheduled`` (aware); returns the watch record. ``mode`` execute sends through
        ``delivery`` (default: SendNow; the daemon's is the outbox)."""
        run = Run(watch=self.watch, execution_time=scheduled, triggered_time=scheduled, scheduled_time=scheduled,
                  services=Services(es=self.es, connectors=self.connectors), rule_state=self.state,
                  silences=self.silences)
        record = execute_watch(self.watch, run, self.status, {"simulate": Simulate(), "execute": delivery or SendNow()},
                               ExecuteOptions(action_modes={"_all": mode}))
        self.state = run.rule_state
        self.records.append(record)
        return record


def matches(record: dict) -> dict:
    """``{group: count}`` of the matches the rule type found (input payload)."""
    payload = record["result"]["input"].get("payload") or {}
    assert record["result"]["input"]["status"] == "success", record["result"]["input"]
    return {m["group"]: m["count"] for m in payload.get("matches") or []}


def match_details(record: dict) -> dict:
    """``{group: match JSON}`` (count, value, hits, details)."""
    payload = record["result"]["input"].get("payload") or {}
    return {m["group"]: m for m in payload.get("matches") or []}


def delivered(record: dict) -> list[tuple]:
    """``(action id, event, group, title)`` of every alert sent (or simulated) in the record."""
    out = []
    for action in record["result"].get("actions") or []:
        items = action.get("foreach") if "foreach" in action else [action]
        for item in items or []:
            if item.get("status") in ("success", "simulated"):
                text = (item.get("logging") or {}).get("logged_text", "")
                out.append((action["id"], item.get("event", "firing"), item.get("group"), text))
    return out


def ecs_doc(when: str, host: str | None = None, user=None, **extra) -> dict:
    """A document with ``@timestamp`` ``when`` and, when given, ``host.name`` and ``user.name``."""
    out: dict = {"@timestamp": when, **extra}
    if host is not None:
        out["host"] = {"name": host}
    if user is not None:
        out["user"] = {"name": user}
    return out
