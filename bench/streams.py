"""Event streams under load (issue 13; not in CI): ``python -m bench.streams [--subscribers 1000]
[--stalled 10] [--rules 20] [--groups 5] [--seconds 60] [--warmup 15] [--out PATH]`` (needs ``ES_URL``;
``make bench-streams`` provides a node).

Two runs of a real ``watcher run`` subprocess on the same rules — ``--rules`` rules on a 2-second
schedule, each grouped over ``--groups`` hosts that all match, so the daemon fires rules × groups / 2
alerts per second, each delivered to a local receiver (:mod:`bench.receiver`):

1. **without subscribers**;
2. **with** ``--subscribers`` healthy SSE subscribers (raw asyncio sockets reading every byte, on
   one event loop in a separate process) plus ``--stalled`` subscribers that send their request
   and never read (a 4 KiB receive buffer): they are cut off once their buffers fill.

Measured during ``--seconds`` after ``--warmup``: evaluation throughput (executions per second from
``watcher_executions_total``), alerts fired per second (``watcher_conditions_met_total``), deliveries
per second, the daemon's CPU (``/proc/<pid>/stat``) and its RSS (before the subscribers connect,
peak during the run); in run 2 the event latency from write (the event's stored ``@timestamp``)
to receipt at a sample of the healthy subscribers (every 10th), p50/p99/max, whether every healthy
subscriber received every event, and the cut-offs. Prints a table and writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "bench-streams-reader-token-000001"
ID = re.compile(rb'"id":"([^"]+)"')
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _setup(es, folder: Path, rules: int, groups: int, receiver_url: str) -> str:
    index = "bench-streams-data"
    es.options(ignore_status=404).indices.delete(index=index)
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    es.bulk(operations=[x for g in range(groups) for x in ({"index": {"_index": index}}, {"@timestamp": now,
                                                                                      "host": f"h{g}"})],
            refresh=True)
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    for r in range(rules):
        (folder / "rules" / f"r{r:03d}.yaml").write_text(
            f"name: r{r:03d}\nschedule: 2s\nindex: {index}\nwindow: 1d\nthrottle: 1s\ngroup_by: host\n"
            "condition:\n  count: {gte: 1}\nactions:\n  - connector: hook\n")
    (folder / "rules" / "connectors.yaml").write_text(
        f"connectors:\n  hook:\n    type: webhook\n    url: {receiver_url}\n    method: post\n")
    (folder / "http.yaml").write_text(f"tokens:\n  bench: {{role: read, token: {TOKEN}}}\nstreams:\n"
                                      "  max_subscribers: 5000\n  max_subscribers_per_token: 5000\n"
                                      "  buffer_events: 1000\n")
    return index


def _metrics(port: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("#") or not line:
                continue
            name = line.split("{")[0].split(" ")[0]
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start_daemon(folder: Path, prefix: str, port: int, log) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.cli.run", "--rules", str(folder / "rules"), "--index-prefix", prefix,
         "--jitter", "0", "--http-port", str(port), "--http-config", str(folder / "http.yaml"),
         "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "WATCHER_STATE_DIR": str(folder / "state")})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if json.loads(answer.read()).get("status") == "ok":
                    return process
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the daemon exited ({process.returncode}); see {log.name}")
        time.sleep(0.5)
    raise RuntimeError("the daemon did not become healthy within 120 s")


def _window(pid: int, port: int, seconds: float) -> dict:
    """Sample the daemon for ``seconds``: rates from /metrics, CPU and peak RSS."""
    before, cpu0, t0 = _metrics(port), _cpu_seconds(pid), time.monotonic()
    peak = _rss_mb(pid)
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        peak = max(peak, _rss_mb(pid))
    after, cpu1, elapsed = _metrics(port), _cpu_seconds(pid), time.monotonic() - t0

    def rate(name: str) -> float:
        return (after.get(name, 0.0) - before.get(name, 0.0)) / elapsed

    return {"executions_per_s": rate("watcher_executions_total"), "alerts_per_s": rate("watcher_conditions_met_total"),
            "deliveries_per_s": rate("watcher_deliveries_total"), "events_per_s": rate("watcher_events_written_total"),
            "cpu_percent": 100 * (cpu1 - cpu0) / elapsed, "peak_rss_mb": peak,
            "cutoffs": after.get("watcher_stream_cutoffs_total", 0.0),
            "subscribers_open": after.get("watcher_stream_subscribers", 0.0),
            "buffered_events": after.get("watcher_stream_buffered_events", 0.0),
            "dropped_events": after.get("watcher_events_dropped_total", 0.0)}


# --- the subscribers (their own process) -------------------------------------------------------------------

async def _subscriber(port: int, after: str, sampled: bool, out: dict, n: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET /api/v1/events/stream?after={after} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}"
                 f"\r\n\r\n".encode())
    await writer.drain()
    out["connected"] += 1
    ids, times, count, tail = out["ids"], out["times"], 0, b""
    while True:
        chunk = await reader.read(1 << 16)
        if not chunk:
            break
        now = time.time()
        data = tail + chunk
        cut = data.rfind(b"\n\n") + 2
        complete, tail = data[:cut], data[cut:]
        count += complete.count(b"\nevent: ")
        out["counts"][n] = count
        if sampled:
            for match in ID.finditer(complete):
                ids.append(match.group(1).decode())
                times.append(now)
    writer.close()


async def _stalled(port: int, after: str, sockets: list) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/v1/events/stream?after={after} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}"
                 f"\r\n\r\n".encode())
    sockets.append(sock)


async def _clients(port: int, after: str, healthy: int, stalled: int) -> None:
    out = {"connected": 0, "ids": [], "times": [], "counts": [0] * healthy}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stuck: list = []
    for _ in range(stalled):
        await _stalled(port, after, stuck)
    tasks = []
    for n in range(healthy):
        tasks.append(asyncio.create_task(_subscriber(port, after, n % 10 == 0, out, n)))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the listen backlog
    while out["connected"] < healthy:
        await asyncio.sleep(0.1)
    print(json.dumps({"connected": healthy}), flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    json.dump({"ids": out["ids"], "times": out["times"], "counts": out["counts"]}, sys.stdout)
    sys.stdout.flush()


def _latencies(es, prefix: str, ids: list[str], times: list[float]) -> dict:
    written: dict[str, float] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), 5000):
        hits = es.search(index=f"{prefix}-events", size=5000, query={"ids": {"values": unique[start:start + 5000]}},
                         source=["@timestamp"])["hits"]["hits"]
        for hit in hits:
            stamp = dt.datetime.fromisoformat(hit["_source"]["@timestamp"].replace("Z", "+00:00"))
            written[hit["_id"]] = stamp.timestamp()
    values = sorted(t - written[i] for i, t in zip(ids, times) if i in written)
    if not values:
        return {"samples": 0}
    return {"samples": len(values), "p50_s": statistics.median(values),
            "p99_s": values[min(len(values) - 1, int(len(values) * 0.99))], "max_s": values[-1]}


def run(args) -> dict:
    from bench.receiver import Running
    from watcher.es.client import ConnectionSettings, make_client

    es = make_client(ConnectionSettings.from_env())
    folder = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    results: dict = {"rules": args.rules, "groups": args.groups, "subscribers": args.subscribers,
                     "stalled": args.stalled, "seconds": args.seconds}
    with Running() as receiver, open(folder / "daemon.log", "ab") as log:
        _setup(es, folder, args.rules, args.groups, receiver.url)
        for phase in ("without", "with"):
            prefix, port = f"bench-streams-{phase}", _free_port()
            es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
            daemon = _start_daemon(folder, prefix, port, log)
            clients = None
            try:
                time.sleep(args.warmup)
                rss_before = _rss_mb(daemon.pid)
                if phase == "with":
                    with urllib.request.urlopen(urllib.request.Request(
                            f"http://127.0.0.1:{port}/api/v1/events", headers={"Authorization": f"Bearer {TOKEN}"}),
                            timeout=30) as answer:
                        after = json.loads(answer.read())["cursor"]
                    clients = subprocess.Popen([sys.executable, "-m", "bench.streams", "--clients", str(port), after,
                                                str(args.subscribers), str(args.stalled)], stdout=subprocess.PIPE)
                    json.loads(clients.stdout.readline())  # every subscriber connected
                measured = _window(daemon.pid, port, args.seconds)
                measured["rss_before_mb"] = rss_before
                measured["rss_growth_mb"] = measured["peak_rss_mb"] - rss_before
                if clients is not None:
                    clients.send_signal(signal.SIGTERM)
                    received = json.loads(clients.stdout.read())
                    clients.wait(60)
                    written = _metrics(port).get("watcher_events_written_total", 0.0)
                    measured["latency"] = _latencies(es, prefix, received["ids"], received["times"])
                    measured["healthy_min_events"] = min(received["counts"])
                    measured["healthy_max_events"] = max(received["counts"])
                    measured["events_written_total"] = written
                results[phase] = measured
            finally:
                if clients is not None and clients.poll() is None:
                    clients.kill()
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(60)
                es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    results["throughput_ratio"] = results["with"]["executions_per_s"] / max(results["without"]["executions_per_s"], 1e-9)
    return results


def _table(results: dict) -> str:
    a, b = results["without"], results["with"]
    lat = b.get("latency", {})
    rows = [
        ("evaluations/s", f"{a['executions_per_s']:.1f}", f"{b['executions_per_s']:.1f}"),
        ("runs with condition met/s", f"{a['alerts_per_s']:.1f}", f"{b['alerts_per_s']:.1f}"),
        ("deliveries/s", f"{a['deliveries_per_s']:.1f}", f"{b['deliveries_per_s']:.1f}"),
        ("events written/s", f"{a['events_per_s']:.1f}", f"{b['events_per_s']:.1f}"),
        ("daemon CPU %", f"{a['cpu_percent']:.0f}", f"{b['cpu_percent']:.0f}"),
        ("daemon RSS before / peak MB", f"{a['rss_before_mb']:.0f} / {a['peak_rss_mb']:.0f}",
         f"{b['rss_before_mb']:.0f} / {b['peak_rss_mb']:.0f}"),
        ("latency p50 / p99 / max s", "-", f"{lat.get('p50_s', 0):.3f} / {lat.get('p99_s', 0):.3f} / "
                                           f"{lat.get('max_s', 0):.3f} ({lat.get('samples', 0)} samples)"),
        ("cut-offs (stalled)", "-", f"{b['cutoffs']:.0f} ({results['stalled']})"),
        ("open streams / buffered events at end", "-", f"{b['subscribers_open']:.0f} / {b['buffered_events']:.0f}"),
        ("healthy subscribers: fewest / most events", "-",
         f"{b.get('healthy_min_events', 0)} / {b.get('healthy_max_events', 0)}"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':<{width}}  {'no subscribers':>16}  with {results['subscribers']} SSE + {results['stalled']} stalled"]
    lines += [f"{r[0]:<{width}}  {r[1]:>16}  {r[2]}" for r in rows]
    lines.append(f"evaluation throughput with/without: {results['throughput_ratio']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--clients"]:
        port, after, healthy, stalled = argv[1:5]
        asyncio.run(_clients(int(port), after, int(healthy), int(stalled)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--stalled", type=int, default=10)
    parser.add_argument("--rules", type=int, default=40)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--out", default="/tmp/watcher-bench-streams.json")
    args = parser.parse_args(argv)
    results = run(args)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
