"""``python -m bench [--parts eval,delivery,lag] [--docs N] [--rules 100,1000] [--alerts M]
[--lag-rules N] [--lag-seconds S] [--repeat K] [--out PATH] [--profile] [--no-elastalert]``.

Needs ``ES_URL`` (``make bench`` provides a node).

Loads the benchmark index (:mod:`bench.data`), then runs the selected parts and prints their tables
and writes one JSON result to ``--out`` (default ``/tmp/watcher-bench.json``):

* ``eval``: for each rule count the floor, our engine (each in its own process,
  :mod:`bench.evaluate`) and ElastAlert2 (:mod:`bench.elastalert`).
* ``delivery``: ``--alerts`` alerts to a local receiver (:mod:`bench.receiver`), our outbox vs
  ElastAlert2's HTTP POST alerter (:mod:`bench.delivery`).
* ``lag``: ``--lag-rules`` rules on a 1-minute schedule run by our daemon for ``--lag-seconds``
  (:mod:`bench.lag`).

With ``--repeat K`` each engine runs K passes per count (interleaved) and the table shows the
median pass by wall time; every pass is kept in the JSON (``all_passes``). With ``--profile``
the engine is run once more under cProfile (``--profile-rules``, default 1,000); the top
functions are written beside the JSON (``<out>.profile.txt``). ``elasticsearch_cpu_seconds`` is the node's process CPU
(``_nodes/stats``) spent during each measurement. Traffic goes only to ``ES_URL``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pstats
import subprocess
import sys
import time

from bench import data


def machine() -> dict:
    """``{"nproc", "memory_gb", "cpu_model", "python"}`` of this machine (from /proc)."""
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        total_kb = int(info.readline().split()[1])
    return {"nproc": os.cpu_count(), "memory_gb": round(total_kb / 1024 / 1024, 1), "cpu_model": cpu,
            "python": platform.python_version()}


ES_STATS_REFRESH_S = 1.1  # _nodes/stats refreshes process CPU once a second


def _es_cpu_seconds(es, settle: bool = False) -> float:
    """The node's process CPU seconds; ``settle`` waits for the once-a-second refresh first, so a
    reading right after a measurement includes all of it."""
    if settle:
        time.sleep(ES_STATS_REFRESH_S)
    stats = es.nodes.stats(metric="process")["nodes"]
    return sum(node["process"]["cpu"]["total_in_millis"] for node in stats.values()) / 1000


def _derived(result: dict) -> dict:
    result["evaluations_per_second"] = result["evaluations"] / result["seconds"]
    result["cpu_seconds_per_1000"] = result["cpu_seconds"] * 1000 / result["evaluations"]
    return result


def measure_elastalert(es, rules: int, scheduled: dt.datetime, es_url: str, workdir: str) -> dict:
    """ElastAlert2 on the same rules (:mod:`bench.elastalert`), plus the node's CPU.

    Raises:
        RuntimeError: ElastAlert2 could not be installed or run.
    """
    from pathlib import Path

    from bench import elastalert
    from watcher.es.client import server_version

    es_cpu = _es_cpu_seconds(es, settle=True)
    result = elastalert.measure(rules, scheduled, es_url, Path(workdir), server_version(es))
    result["elasticsearch_cpu_seconds"] = round(_es_cpu_seconds(es, settle=True) - es_cpu, 2)
    return _derived(result)


def measure(es, engine: str, rules: int, scheduled: dt.datetime, batch: int, profile: str | None = None) -> dict:
    """Run one :mod:`bench.evaluate` measurement in a child process; its JSON plus the node's CPU.

    Raises:
        RuntimeError: the child failed.
    """
    command = [sys.executable, "-m", "bench.evaluate", engine, "--rules", str(rules),
               "--scheduled", scheduled.isoformat(), "--batch", str(batch)]
    if profile:
        command += ["--profile", profile]
    es_cpu = _es_cpu_seconds(es, settle=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["elasticsearch_cpu_seconds"] = round(_es_cpu_seconds(es, settle=True) - es_cpu, 2)
    return _derived(result)


def table(rows: list[dict]) -> str:
    """The printed table: one line per measurement, plus ours/floor ratios per rule count."""
    head = (f"{'engine':<7}{'rules':>7}{'evals/s':>10}{'wall s':>9}{'CPU s/1k':>10}{'ES CPU s':>10}"
            f"{'RSS MB':>8}{'peak MB':>9}{'met':>6}{'failed':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['engine']:<7}{r['evaluations']:>7}{r['evaluations_per_second']:>10.1f}{r['seconds']:>9.2f}"
                     f"{r['cpu_seconds_per_1000']:>10.2f}{r['elasticsearch_cpu_seconds']:>10.2f}"
                     f"{r['rss_loaded_mb']:>8.1f}{r['peak_rss_mb']:>9.1f}{r['met']:>6}{r['failed']:>7}")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> list[dict]:
    """Per rule count: our wall time / the floor's (target ≤ 1.5 at 1,000 rules) and our
    throughput / ElastAlert2's (target ≥ 10 at 1,000 rules), with whether the met counts agree."""
    out = []
    for n in sorted({r["evaluations"] for r in rows}):
        found = {r["engine"]: r for r in rows if r["evaluations"] == n}
        ours, floor, ea2 = found.get("ours"), found.get("floor"), found.get("ea2")
        if not ours:
            continue
        entry: dict = {"rules": n}
        if floor:
            entry.update(time_ratio_ours_over_floor=ours["seconds"] / floor["seconds"],
                         same_met_as_floor=ours["met"] == floor["met"])
        if ea2:
            entry.update(throughput_ratio_ours_over_ea2=ours["evaluations_per_second"] / ea2["evaluations_per_second"],
                         same_met_as_ea2=ours["met"] == ea2["met"])
        out.append(entry)
    return out


def write_profile(stats_path: str, text_path: str, top: int = 30) -> None:
    """Write the ``top`` functions by own time and by cumulative time from a cProfile dump."""
    with open(text_path, "w") as out:
        stats = pstats.Stats(stats_path, stream=out)
        stats.strip_dirs()
        out.write("=== by own time (tottime) ===\n")
        stats.sort_stats("tottime").print_stats(top)
        out.write("\n=== by cumulative time ===\n")
        stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="eval,delivery,lag",
                        help="comma-separated parts to run: eval, delivery, lag (default all)")
    parser.add_argument("--docs", type=int, default=200_000, help="documents in the index (default 200000)")
    parser.add_argument("--alerts", type=int, default=2000, help="delivery: alerts sent (default 2000)")
    parser.add_argument("--lag-rules", type=int, default=10_000, help="lag: rules on a 1-minute schedule (default 10000)")
    parser.add_argument("--lag-seconds", type=float, default=180.0,
                        help="lag: seconds the daemon runs after it is up (default 180)")
    parser.add_argument("--rules", default="100,1000", help="comma-separated rule counts (default 100,1000)")
    parser.add_argument("--batch", type=int, default=100, help="floor: searches per _msearch (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="passes per engine and count; the table shows the median")
    parser.add_argument("--out", default="/tmp/watcher-bench.json", help="JSON result path")
    parser.add_argument("--profile", action="store_true", help="profile the engine once more under cProfile")
    parser.add_argument("--profile-rules", type=int, default=1000, help="rule count of the profiled run (default 1000)")
    parser.add_argument("--no-elastalert", dest="elastalert", action="store_false",
                        help="skip ElastAlert2 (installed on first use into bench/.venv-ea2)")
    parser.add_argument("--ea2-dir", default="/tmp/watcher-bench-ea2", help="ElastAlert2 rules and config")
    parser.add_argument("--reuse", action="store_true", help="keep the index if it already holds --docs documents")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.rules.split(",") if n.strip()]
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    unknown = parts - {"eval", "delivery", "lag"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; expected eval, delivery, lag")

    from watcher.es.client import ConnectionSettings, make_client, redact_url, server_description, server_version

    settings = ConnectionSettings.from_env()
    es = make_client(settings)
    end = data.data_end()
    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB; "
          f"{server_description(es)} at {redact_url(settings.urls[0])}", flush=True)
    exists = es.indices.exists(index=data.INDEX)
    if args.reuse and exists and es.count(index=data.INDEX)["count"] == args.docs:
        newest = es.search(index=data.INDEX, size=0, aggs={"t": {"max": {"field": "@timestamp"}}})
        end = data.data_end(dt.datetime.fromtimestamp(newest["aggregations"]["t"]["value"] / 1000 + 3600,
                                                      dt.timezone.utc))
        loaded = {"documents": args.docs, "seconds": 0.0, "reused": True}
    else:
        print(f"loading {args.docs} documents into {data.INDEX} …", flush=True)
        loaded = data.load(es, args.docs, end)
    print(f"index: {loaded['documents']} documents over 24 h up to {end.isoformat()} "
          f"(loaded in {loaded['seconds']} s)", flush=True)

    result = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": info,
              "elasticsearch": server_version(es), "cluster": server_description(es), "index": {"name": data.INDEX, **loaded},
              "scheduled_time": end.isoformat(), "window": "1h", "repeat": args.repeat, "parts": sorted(parts)}
    rows: list[dict] = []
    if "eval" in parts:
        rows = evaluation(es, args, counts, end, settings.urls[0], result)
    deliveries: list[dict] = []
    lag: dict | None = None
    if parts & {"delivery", "lag"}:
        from bench.receiver import Running

        with Running() as receiver:
            if "delivery" in parts:
                deliveries = delivery(args, receiver)
                result["delivery"] = {"alerts": args.alerts, "measurements": deliveries,
                                      "ratios": delivery_ratios(deliveries)}
            if "lag" in parts:
                from bench import lag as lag_bench

                print(f"  lag: {args.lag_rules} rules on a 1-minute schedule for {args.lag_seconds:.0f} s …", flush=True)
                lag = lag_bench.measure(args.lag_rules, args.lag_seconds, receiver)
                result["lag"] = lag
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)

    print()
    if rows:
        print(table(rows))
        for r in result["ratios"]:
            line = f"rules={r['rules']}:"
            if "time_ratio_ours_over_floor" in r:
                line += (f" ours/floor wall time {r['time_ratio_ours_over_floor']:.2f}x (target <= 1.5x at 1000;"
                         f" same met: {r['same_met_as_floor']})")
            if "throughput_ratio_ours_over_ea2" in r:
                line += (f"; ours/ElastAlert2 throughput {r['throughput_ratio_ours_over_ea2']:.2f}x (target >= 10x at 1000;"
                         f" same met: {r['same_met_as_ea2']})")
            print(line)
        print()
    if deliveries:
        print(delivery_table(deliveries))
        for r in result["delivery"]["ratios"]:
            print(f"{r['engine']}/ElastAlert2 deliveries per second: {r['throughput_ratio_over_ea2']:.2f}x")
        print()
    if lag:
        print(lag_table(lag))
        print()
    print(f"JSON: {args.out}" + (f"; profile: {result['profile']}" if result.get("profile") else ""))
    ok = all(r["failed"] == 0 for r in rows) and all(d["complete"] for d in deliveries)
    return 0 if ok and (lag is None or lag["failed"] == 0) else 1


def evaluation(es, args, counts: list[int], end: dt.datetime, es_url: str, result: dict) -> list[dict]:
    """The evaluation-throughput part: rows (median pass per engine and count); fills ``result``."""
    # Warm the node (page cache, JIT) with one unrecorded floor pass at the largest count.
    measure(es, "floor", max(counts), end, args.batch)
    rows, passes = [], []
    for n in counts:
        found: dict[str, list[dict]] = {}
        for attempt in range(args.repeat):  # engines interleaved, so drift on the node hits all alike
            for engine in ("floor", "ours", "ea2"):
                if engine == "ea2":
                    if not args.elastalert:
                        continue
                    try:
                        row = measure_elastalert(es, n, end, es_url, args.ea2_dir)
                    except RuntimeError as error:
                        print(f"  ElastAlert2 not measured: {error}", file=sys.stderr, flush=True)
                        args.elastalert = False
                        continue
                else:
                    row = measure(es, engine, n, end, args.batch)
                row["pass"] = attempt + 1
                found.setdefault(engine, []).append(row)
                passes.append(row)
                print(f"  {engine:<5} {n:>6} rules, pass {attempt + 1}: {row['evaluations_per_second']:.1f} "
                      f"evaluations/s", flush=True)
        for engine_rows in found.values():  # the median pass by wall time
            rows.append(sorted(engine_rows, key=lambda r: r["seconds"])[(len(engine_rows) - 1) // 2])
    result.update(measurements=rows, all_passes=passes, ratios=ratios(rows))
    if args.profile:
        stats_path = args.out + ".prof"
        profiled = measure(es, "ours", args.profile_rules, end, args.batch, profile=stats_path)
        write_profile(stats_path, args.out + ".profile.txt")
        result["profiled_run"] = profiled
        result["profile"] = args.out + ".profile.txt"
    return rows


def delivery(args, receiver) -> list[dict]:
    """The delivery part: ours (limits lifted), ElastAlert2, ours with the daemon's default limits."""
    from bench import delivery as bench_delivery

    rows = []
    engines = ["ours"] + (["ea2"] if args.elastalert else []) + ["ours-default"]
    for engine in engines:
        alerts = min(args.alerts, bench_delivery.DEFAULT_LIMITS_ALERTS) if engine == "ours-default" else args.alerts
        try:
            row = bench_delivery.measure(engine, alerts, receiver)
        except RuntimeError as error:
            print(f"  delivery {engine} not measured: {error}", file=sys.stderr, flush=True)
            continue
        rows.append(row)
        print(f"  delivery {engine:<12} {alerts:>6} alerts: {row['deliveries_per_second']:.1f}/s, "
              f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms", flush=True)
    return rows


def delivery_ratios(rows: list[dict]) -> list[dict]:
    """Each of our rows' deliveries per second over ElastAlert2's."""
    ea2 = next((r for r in rows if r["engine"] == "ea2"), None)
    if ea2 is None:
        return []
    return [{"engine": r["engine"], "throughput_ratio_over_ea2": r["deliveries_per_second"] / ea2["deliveries_per_second"]}
            for r in rows if r["engine"] != "ea2"]


def delivery_table(rows: list[dict]) -> str:
    """Delivery throughput: one line per sender."""
    head = (f"{'delivery':<13}{'alerts':>7}{'deliv/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'wall s':>8}{'CPU s/1k':>10}"
            f"{'peak MB':>9}{'received':>9}{'dead':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['engine']:<13}{r['alerts']:>7}{r['deliveries_per_second']:>9.1f}{r['p50_ms']:>9.1f}"
                     f"{r['p99_ms']:>9.1f}{r['seconds']:>8.2f}{r['cpu_seconds_per_1000']:>10.2f}"
                     f"{r['peak_rss_mb']:>9.1f}{r['received']:>9}{r['dead']:>6}")
    return "\n".join(lines)


def lag_table(lag: dict) -> str:
    """Schedule lag: one line (target: p99 < 5 s with 10,000 rules; RSS < 300 MB)."""
    head = (f"{'schedule lag':<13}{'rules':>7}{'ticks':>7}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'done p99 s':>11}"
            f"{'failed':>7}{'RSS MB':>8}{'peak MB':>9}")
    line = (f"{'ours':<13}{lag['rules']:>7}{lag['ticks']:>7}{lag['lag_p50_s']:>8.3f}{lag['lag_p99_s']:>8.3f}"
            f"{lag['lag_max_s']:>8.3f}{lag['completion_p99_s']:>11.3f}{lag['failed']:>7}{lag['rss_loaded_mb']:>8.1f}"
            f"{lag['peak_rss_mb']:>9.1f}")
    return "\n".join([head, "-" * len(head), line,
                      f"(target: p99 lag < 5 s for 10,000 rules on 2 cores; RSS < 300 MB with 10,000 rules; "
                      f"{lag['seconds']:.0f} s measured, {lag['workers']} workers)"])



if __name__ == "__main__":
    sys.exit(main())
