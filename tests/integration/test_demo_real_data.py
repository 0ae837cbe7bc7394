"""The demo's rules on real sshd data (issue 6, "Done when").

Loads Loghub's OpenSSH_2k.log (``WATCHER_SSH_LOG``, default ``<shared>/data/loghub/OpenSSH/
OpenSSH_2k.log``; read in place, never copied — Loghub's licence) into the real cluster with a fixed
year and zone, runs the shipped rules ``rules/ssh-bruteforce.yaml`` (a), ``ssh-user-enumeration.yaml``
(b) and ``ssh-bruteforce-watch.json`` (c) at every scheduled tick over the loaded range with the
engine, and compares with what the raw lines imply, computed here independently: own regex, own
time parsing, the same window arithmetic (a tick every minute, window ``[t − window − delay,
t − delay)``).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import SCRIPTING_MODULES, SHARED
from watcher.definitions.load import load_paths
from watcher.demo import load as demo_load
from watcher.demo import sshd
from watcher.engine.context import Run, Services
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.status import WatchStatus

REPO = Path(__file__).resolve().parents[2]
LOG = Path(os.environ.get("WATCHER_SSH_LOG", SHARED / "data" / "loghub" / "OpenSSH" / "OpenSSH_2k.log"))
YEAR, ZONE = 2024, "Asia/Shanghai"
TICK = dt.timedelta(minutes=1)
DELAY = dt.timedelta(seconds=30)

pytestmark = pytest.mark.skipif(not LOG.is_file(), reason=f"real sshd log not found at {LOG} (set WATCHER_SSH_LOG)")

# --- the independent reading of the raw lines ---------------------------------------------------------

FAILED = re.compile(r"^(?P<time>[A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d) \S+ sshd\[\d+\]: "
                    r"(?:message repeated (?P<times>\d+) times: \[ ?)?"
                    r"Failed (?P<method>\S+) for (?:invalid user )?(?P<user>.*?) from (?P<ip>[\d.]+) port \d+")


def raw_failures() -> list[tuple[dt.datetime, str, str, str]]:
    """``(instant, ip, user, method)`` per failed login, ``message repeated N times`` as N."""
    out = []
    zone = ZoneInfo(ZONE)
    for line in LOG.read_text(encoding="utf-8").splitlines():
        match = FAILED.match(line.strip("\r\n"))
        if match:
            local = dt.datetime.strptime(f"{YEAR} {match['time']}", "%Y %b %d %H:%M:%S")
            instant = local.replace(tzinfo=zone).astimezone(dt.timezone.utc)
            out += [(instant, match["ip"], match["user"], match["method"])] * int(match["times"] or 1)
    return out


def ticks(first: dt.datetime, last: dt.datetime, window: dt.timedelta) -> list[dt.datetime]:
    """Every minute from the minute after ``first`` until the window has passed ``last``."""
    tick = first.replace(second=0, microsecond=0) + TICK
    out = []
    while tick - window - DELAY <= last:
        out.append(tick)
        tick += TICK
    return out


def in_window(events, tick: dt.datetime, window: dt.timedelta):
    return [e for e in events if tick - window - DELAY <= e[0] < tick - DELAY]


# --- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(es):
    """The real file loaded into a fresh ``logs-ssh-test-…`` index (Python parsing when the
    cluster lacks ingest-common); yields ``(index, LoadResult, notices)``."""
    index = f"logs-ssh-test-{uuid.uuid4().hex[:8]}"
    notices: list[str] = []
    lines = list(sshd.iter_lines(LOG.read_text(encoding="utf-8")))
    result = demo_load.load(es, lines, index=index, time_rule=demo_load.TimeRule(year=YEAR, timezone=ZONE),
                            progress=False, echo=notices.append)
    yield index, result, notices
    es.options(ignore_status=404).indices.delete(index=index)
    es.options(ignore_status=404).indices.delete_index_template(name=demo_load.TEMPLATE_NAME)


@pytest.fixture
def rules(tmp_path, loaded, httpserver):
    """The shipped rule files pointed at the test index, with connectors and the watch's webhook
    pointed at the real HTTP server on 127.0.0.1."""
    index = loaded[0]
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in ("ssh-bruteforce.yaml", "ssh-user-enumeration.yaml", "ssh-bruteforce-watch.json"):
        text = (REPO / "rules" / name).read_text(encoding="utf-8").replace("logs-ssh-*", index)
        if name.endswith(".json"):
            text = text.replace('"port": 8000', f'"port": {httpserver.port}')
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "connectors.yaml").write_text(
        f"connectors:\n  opsgenie:\n    type: opsgenie\n    api_url: {httpserver.url_for('')[:-1]}\n"
        f"    api_key: test-key\n    mode: eswatcher\n", encoding="utf-8")
    httpserver.expect_request("/v1/json/eswatcher", method="POST").respond_with_json(
        {"result": "Request will be processed", "took": 0.0, "requestId": "r"})
    result = load_paths([folder])
    assert not result.problems, [str(p) for p in result.problems]
    return result


def run_ticks(es, result, watch_id: str, tick_times, mode: str = "simulate") -> list[dict]:
    """Execute ``watch_id`` at every tick (execution time = the tick, so throttles count data time)."""
    watch = result.watches[watch_id]
    status = WatchStatus()
    services = Services(es=es, connectors=result.connectors)
    records = []
    for tick in tick_times:
        run = Run(watch=watch, execution_time=tick, triggered_time=tick, scheduled_time=tick, services=services)
        records.append(execute_watch(watch, run, status, {"simulate": Simulate(), "execute": SendNow()},
                                     ExecuteOptions(default_mode=mode)))
    return records


def alerted(records) -> set[str]:
    return {group for record in records for group in ((record.get("result") or {}).get("rule") or {}).get("groups") or []}


# --- tests ----------------------------------------------------------------------------------------------

def test_the_real_file_loads_every_event(loaded, es_modules):
    index, result, notices = loaded
    # A cluster with ingest-common parses the lines itself (the grok pipeline); the rule tests below
    # then alert on what the cluster parsed.
    assert result.by_cluster == set(SCRIPTING_MODULES).issubset(es_modules), notices
    lines = list(sshd.iter_lines(LOG.read_text(encoding="utf-8")))
    repeats = sum(len(sshd.expand_repeats(line)) - 1 for line in lines)
    assert result.failed == 0 and result.skipped_lines == 0
    assert result.indexed == len(lines) + repeats
    if not result.by_cluster:
        assert any(n.startswith("cluster has no ingest processors (ingest-common); parsed here") or
                   "parsed here" in n for n in notices), notices
    failures = raw_failures()
    assert result.first <= failures[0][0] and result.last >= failures[-1][0]


def test_pipeline_parses_like_python(es, requires_scripting, loaded, index_name):
    """With ingest-common, the cluster's pipeline gives the same fields as the Python parser."""
    can, reason = demo_load.cluster_can_parse(es)
    assert can, reason
    lines = list(sshd.iter_lines(LOG.read_text(encoding="utf-8")))
    result = demo_load.load(es, lines, index=index_name, time_rule=demo_load.TimeRule(year=YEAR, timezone=ZONE),
                            parse="cluster", progress=False, echo=lambda _: None)
    assert result.by_cluster and result.failed == 0
    events, _ = demo_load.events_from_lines(lines, demo_load.TimeRule(year=YEAR, timezone=ZONE))
    expected = collections.Counter(json.dumps(e.parsed_document(), sort_keys=True) for e in events)
    hits = es.search(index=index_name, size=5000, query={"match_all": {}})["hits"]["hits"]
    got = collections.Counter(json.dumps(h["_source"], sort_keys=True) for h in hits)
    assert got == expected


def test_bruteforce_rule_alerts_the_addresses_the_raw_lines_imply(es, loaded, rules):
    failures = [f for f in raw_failures() if f[3] == "password"]
    window = dt.timedelta(minutes=5)
    tick_times = ticks(failures[0][0], failures[-1][0], window)
    expected = set()
    for tick in tick_times:
        counts = collections.Counter(ip for _, ip, _, _ in in_window(failures, tick, window))
        expected |= {ip for ip, n in counts.items() if n >= 10}

    records = run_ticks(es, rules, "ssh-bruteforce", tick_times)

    assert all(r["state"] in ("executed", "execution_not_needed", "throttled") for r in records), \
        {r["state"] for r in records}
    assert alerted(records) == expected
    assert expected == {"103.99.0.122", "112.95.230.3", "183.62.140.253", "185.190.58.151", "187.141.143.180",
                        "5.188.10.180"}
    assert len(records) == len(tick_times)  # one record per tick (how long they take: bench/, not a timed assert)


def test_user_enumeration_rule_names_the_spraying_addresses(es, loaded, rules):
    failures = raw_failures()  # every failed login method, as the rule's query
    window = dt.timedelta(minutes=15)
    tick_times = ticks(failures[0][0], failures[-1][0], window)
    expected = set()
    for tick in tick_times:
        users = collections.defaultdict(set)
        for _, ip, user, _ in in_window(failures, tick, window):
            users[ip].add(user)
        expected |= {ip for ip, names in users.items() if len(names) >= 15}

    records = run_ticks(es, rules, "ssh-user-enumeration", tick_times)

    assert alerted(records) == expected == {"187.141.143.180", "103.99.0.122"}


def test_watch_form_alerts_the_same_addresses_with_opsgenie_shaped_bodies(es, loaded, rules, httpserver):
    failures = [f for f in raw_failures() if f[3] == "password"]
    window = dt.timedelta(minutes=5)
    tick_times = ticks(failures[0][0], failures[-1][0], window)
    expected_pairs = set()
    for tick in tick_times:
        counts = collections.Counter(ip for _, ip, _, _ in in_window(failures, tick, window))
        expected_pairs |= {(tick, ip, n) for ip, n in counts.items() if n >= 10}

    records = run_ticks(es, rules, "ssh-bruteforce-watch", tick_times, mode="execute")

    assert {r["state"] for r in records} <= {"executed", "execution_not_needed"}
    bodies = []
    for request, _response in httpserver.log:
        assert request.path == "/v1/json/eswatcher" and request.args.get("apiKey") == "local-demo-key"
        assert request.headers["Content-Type"] == "application/json"
        bodies.append(json.loads(request.get_data(as_text=True)))  # valid JSON, or this raises
    assert all({"watch_id", "trigger", "payload"} <= body.keys() for body in bodies)
    assert {b["watch_id"] for b in bodies} == {"ssh-bruteforce-watch"}
    got_pairs = {(dt.datetime.fromisoformat(b["trigger"]["scheduled_time"].replace("Z", "+00:00")),
                  b["payload"]["key"], b["payload"]["doc_count"]) for b in bodies}
    assert len(bodies) == len(got_pairs) == len(expected_pairs)  # one request per (tick, address)
    assert got_pairs == expected_pairs
    assert {ip for _, ip, _ in got_pairs} == {"103.99.0.122", "112.95.230.3", "183.62.140.253", "185.190.58.151",
                                              "187.141.143.180", "5.188.10.180"}  # = rule (a)
