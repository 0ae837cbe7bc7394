"""One measurement, run in its own process so CPU time and peak RSS belong to it alone.

``python -m bench.evaluate ours|floor --rules N --scheduled ISO [--batch B] [--profile PATH]``
prints one JSON object on stdout:

* ``ours``: the rules are compiled (timed apart: ``compile_seconds``), then every rule is executed
  once with :func:`watcher.engine.execute.execute_watch` at ``scheduled`` (actions simulated), one
  after the other, as the daemon's tick handler does.
* ``floor``: the same rendered search bodies sent as ``_msearch`` batches of ``B`` by the plain
  synchronous elasticsearch-py client; the condition is ``hits.total >= threshold`` read directly.
  No engine that sends these queries can beat it.

Fields: ``evaluations``, ``met`` (rules whose condition held: both sides must agree),
``seconds`` (wall, perf_counter), ``cpu_seconds`` (this process, ``time.process_time``),
``rss_loaded_mb`` (resident set after loading, before evaluating), ``peak_rss_mb``
(``VmHWM``), ``failed`` (records whose state is ``failed``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``), MiB.

    The peak is read from /proc, not ``getrusage().ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``fork``+``exec``, so a child would report its parent's peak when that is higher.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _peak_rss_mb() -> float:
    return _rss_mb("VmHWM")


def _client():
    from watcher.es.client import ConnectionSettings, make_client

    return make_client(ConnectionSettings.from_env())


def run_ours(count: int, scheduled: dt.datetime, profile: str | None = None, workers: int | None = None) -> dict:
    """Execute ``count`` compiled rules once each at ``scheduled`` the way the daemon runs them.

    Every rule is scheduled on :class:`watcher.daemon.scheduler.Scheduler` (the daemon's
    APScheduler + worker pool, ``workers`` threads, the daemon's default unless given) and one tick
    per rule is queued for ``scheduled`` with ``Scheduler.submit`` (the daemon's catch-up path),
    so all are due at once, as rules sharing a schedule are. Each tick runs
    :func:`watcher.engine.execute.execute_watch` (actions simulated; no state/history writes: the
    tick handler's bookkeeping is measured by the schedule-lag benchmark), and the search input
    goes through the client's :class:`watcher.es.search_batch.SearchBatcher`, as in the daemon.
    """
    import threading

    from bench.rules import compile_rules
    from watcher.daemon.scheduler import DEFAULT_WORKERS, Scheduler
    from watcher.engine.context import Run, Services
    from watcher.delivery.direct import Simulate
    from watcher.engine.execute import ExecuteOptions, execute_watch
    from watcher.es.search_batch import batcher_for
    from watcher.model.status import WatchStatus

    workers = workers or DEFAULT_WORKERS
    began = time.perf_counter()
    watches = compile_rules(count)
    compile_seconds = time.perf_counter() - began
    by_id = {watch.id: watch for watch in watches}
    es = _client()
    es.cluster.health()  # open the connection before timing
    services = Services(es=es, clock=lambda: scheduled)
    deliveries = {"simulate": Simulate(), "execute": Simulate()}
    options = ExecuteOptions(default_mode="simulate")
    statuses = {watch.id: WatchStatus() for watch in watches}
    counts = {"met": 0, "failed": 0, "done": 0}
    finished = threading.Event()
    lock = threading.Lock()

    profilers: list = []  # one cProfile per worker thread (a profiler sees only its own thread)
    local = threading.local()

    def on_tick(watch_id: str, scheduled_time: dt.datetime, triggered_time: dt.datetime) -> None:
        if scheduled_time != scheduled:  # a regular tick of the 1-minute schedule: not this pass
            return
        if profile and not hasattr(local, "profiler"):
            import cProfile

            local.profiler = cProfile.Profile()
            with lock:
                profilers.append(local.profiler)
            local.profiler.enable()
        watch = by_id[watch_id]
        run = Run(watch=watch, execution_time=scheduled, triggered_time=scheduled, scheduled_time=scheduled,
                  services=services)
        record = execute_watch(watch, run, statuses[watch_id], deliveries, options)
        with lock:
            counts["met"] += bool(record["result"].get("condition", {}).get("met"))
            counts["failed"] += record.get("state") == "failed"
            counts["done"] += 1
            if counts["done"] == count:
                finished.set()

    scheduler = Scheduler(on_tick, workers=workers, jitter_s=0)
    for watch in watches:
        scheduler.add(watch.id, watch.trigger)
    scheduler.start()
    rss_loaded = _rss_mb()
    batcher = batcher_for(es)
    before = dict(batcher.stats)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for watch in watches:
        scheduler.submit(watch.id, scheduled)
    finished.wait()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    scheduler.shutdown(wait=True, grace_s=30)
    if profile:
        import pstats

        pstats.Stats(*profilers).dump_stats(profile)  # merged over the worker threads
    requests = batcher.stats["requests"] - before["requests"]
    return {"engine": "ours", "evaluations": count, "met": counts["met"], "failed": counts["failed"],
            "seconds": wall, "cpu_seconds": cpu, "compile_seconds": compile_seconds, "rss_loaded_mb": rss_loaded,
            "peak_rss_mb": _peak_rss_mb(), "workers": workers, "search_requests": requests,
            "mean_batch": round((batcher.stats["searches"] - before["searches"]) / max(requests, 1), 1),
            "largest_batch": batcher.stats["largest_batch"]}


def run_floor(count: int, scheduled: dt.datetime, batch: int = 100) -> dict:
    """Send the rules' rendered searches as ``_msearch`` batches of ``batch``; see the module docstring."""
    from bench.rules import THRESHOLD, compile_rules, rendered_search

    searches = []
    for watch in compile_rules(count):  # preparation, not timed: the floor has no engine
        indices, body = rendered_search(watch, scheduled)
        searches.append(({"index": ",".join(indices)}, body))
    es = _client()
    es.cluster.health()
    rss_loaded = _rss_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    met = failed = 0
    for start in range(0, count, batch):
        lines = []
        for header, body in searches[start:start + batch]:
            lines += [header, body]
        response = es.msearch(searches=lines, rest_total_hits_as_int=True)
        for item in response["responses"]:
            if "error" in item:
                failed += 1
            else:
                met += item["hits"]["total"] >= THRESHOLD
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"engine": "floor", "evaluations": count, "met": met, "failed": failed, "seconds": wall,
            "cpu_seconds": cpu, "batch": batch, "rss_loaded_mb": rss_loaded, "peak_rss_mb": _peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=["ours", "floor"])
    parser.add_argument("--rules", type=int, required=True)
    parser.add_argument("--scheduled", required=True, help="ISO-8601 UTC time the rules run at")
    parser.add_argument("--batch", type=int, default=100, help="floor: searches per _msearch")
    parser.add_argument("--profile", help="ours: write cProfile stats here")
    parser.add_argument("--workers", type=int, help="ours: the scheduler's worker threads (default: the daemon's)")
    args = parser.parse_args(argv)
    scheduled = dt.datetime.fromisoformat(args.scheduled).astimezone(dt.timezone.utc)
    if args.engine == "ours":
        result = run_ours(args.rules, scheduled, args.profile, args.workers)
    else:
        result = run_floor(args.rules, scheduled, args.batch)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
