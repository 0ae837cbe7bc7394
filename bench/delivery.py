"""Delivery throughput: M alerts to a local receiver (:mod:`bench.receiver`, 127.0.0.1), ours vs
ElastAlert2's HTTP POST alerter.

``python -m bench.delivery ours --alerts M --url URL`` (run in its own process by :func:`measure`):
M webhook requests handed to the daemon's :class:`watcher.delivery.outbox.Outbox` — write
``pending`` to Elasticsearch, queue, claim, send over pooled httpx connections with
``Idempotency-Key``, record ``delivered``; concurrent writes share ``_bulk`` requests (group
commit; the JSON's ``es_writes`` gives requests and items) — from the daemon's worker-pool size of threads
(:data:`watcher.daemon.scheduler.DEFAULT_WORKERS`), as ticks running at once would; default
per-connector limits (the daemon's). Done when the outbox reported M ``delivered`` events.

ElastAlert2 (:func:`bench.ea2_driver.run_post`, in its own venv): ``HTTPPostAlerter.alert([match])``
per alert from ElastAlert2's default 10 rule threads (``max_threads``); each call is one blocking
``requests.post`` (no connection reuse, no retry, nothing stored). Done when every call returned.

Each alert's body carries ``alert`` (id) and ``sent_at`` (``time.time()`` when handed over); the
receiver records ``arrival − sent_at`` as its latency. ``deliveries_per_second`` = M / wall seconds
from the first hand-over to the last completion.

The daemon builds its outbox with the default per-connector limits (4 requests in flight, 10 per
second, burst 10: :mod:`watcher.delivery.ratelimit`), which cap one receiver at 10 deliveries/s by
design. ``ours`` lifts them to ElastAlert2's concurrency (10 in flight, no rate limit) to measure what
the delivery path itself can do; ``ours-default`` keeps the daemon's limits (run with few alerts:
it takes M/10 seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

OUTBOX_PREFIX = "bench-delivery"
EA2_THREADS = 10  # ElastAlert2's default max_threads
DEFAULT_LIMITS_ALERTS = 100  # ours-default sends at most this many (10/s by design)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


def run_ours(alerts: int, url: str, workers: int | None = None, open_limits: bool = True) -> dict:
    """Deliver ``alerts`` alerts through the outbox; see the module docstring.

    ``open_limits``: 10 in flight and no rate limit for the receiver's connector (else the daemon's
    defaults)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from bench.evaluate import _client, _peak_rss_mb, _rss_mb
    from watcher.delivery.outbox import Outbox
    from watcher.delivery.ratelimit import ConnectorLimits
    from watcher.daemon.scheduler import DEFAULT_WORKERS
    from watcher.model.requests import HttpRequest

    workers = workers or DEFAULT_WORKERS
    es = _client()
    es.options(ignore_status=404).indices.delete(index=f"{OUTBOX_PREFIX}-outbox")
    done = threading.Event()
    counts = {"delivered": 0, "retried": 0, "dead": 0}
    lock = threading.Lock()

    def on_event(kind: str, **fields) -> None:
        if kind in counts:
            with lock:
                counts[kind] += 1
                if counts["delivered"] + counts["dead"] >= alerts:
                    done.set()

    limits = ConnectorLimits(concurrency=EA2_THREADS, rate_per_s=1e9, burst=10**9) if open_limits else None
    outbox = Outbox(es, OUTBOX_PREFIX, on_event=on_event, poll_interval_s=1.0, limits=limits)
    outbox.store.ensure()
    outbox.start()
    rss_loaded = _rss_mb()

    def hand_over(i: int) -> str:
        body = json.dumps({"alert": i, "sent_at": time.time(), "rule": f"bench-rule-{i % 1000:05d}", "count": 12})
        request = HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json"}, body=body)
        return outbox.deliver(request).status

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        accepted = sum(status == "success" for status in pool.map(hand_over, range(alerts)))
    handed = time.perf_counter() - wall0
    finished = done.wait(max(60.0, alerts / 10))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    # Elasticsearch write requests: creates from the hand-over threads (shared group commit of the
    # client) and the worker's claims and results (its own group commit): items per _bulk
    from watcher.es.groupcommit import document_requests

    es_writes = {"creates": dict(document_requests(es).writes.stats),
                 "claims_and_results": dict(writes.stats) if (writes := getattr(outbox, "_writes", None)) else None}
    outbox.stop(grace_s=5)
    es.options(ignore_status=404).indices.delete(index=f"{OUTBOX_PREFIX}-outbox")
    return {"engine": "ours" if open_limits else "ours-default", "alerts": alerts, "accepted": accepted, "delivered": counts["delivered"],
            "retried": counts["retried"], "dead": counts["dead"], "complete": finished, "seconds": wall,
            "handover_seconds": handed, "cpu_seconds": cpu, "threads": workers, "rss_loaded_mb": rss_loaded,
            "peak_rss_mb": _peak_rss_mb(), "es_writes": es_writes}


def measure(engine: str, alerts: int, receiver) -> dict:
    """One delivery measurement in a child process against the running ``receiver``
    (:class:`bench.receiver.Running`); the child's JSON plus the receiver's view.

    Raises:
        RuntimeError: the child failed (for ElastAlert2: its venv could not be made or run).
    """
    receiver.clear()
    if engine.startswith("ours"):
        command = [sys.executable, "-m", "bench.delivery", engine, "--alerts", str(alerts), "--url", receiver.url]
        env = None
    else:
        import os

        from bench.elastalert import HERE, ensure_venv

        command = [str(ensure_venv()), "-m", "bench.ea2_driver", "--post", receiver.url, "--alerts", str(alerts),
                   "--threads", str(EA2_THREADS)]
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    stats = receiver.stats()
    latencies = stats["latencies_s"]
    result.update(received=stats["received"], distinct=stats["distinct"],
                  deliveries_per_second=alerts / result["seconds"],
                  p50_ms=percentile(latencies, 0.50) * 1000, p99_ms=percentile(latencies, 0.99) * 1000,
                  mean_ms=(statistics.fmean(latencies) * 1000) if latencies else 0.0,
                  cpu_seconds_per_1000=result["cpu_seconds"] * 1000 / alerts)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("engine", choices=["ours", "ours-default"])
    parser.add_argument("--alerts", type=int, required=True)
    parser.add_argument("--url", required=True, help="the receiver's URL")
    parser.add_argument("--workers", type=int, help="threads handing alerts over (default: the daemon's workers)")
    args = parser.parse_args(argv)
    json.dump(run_ours(args.alerts, args.url, args.workers, args.engine == "ours"), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
