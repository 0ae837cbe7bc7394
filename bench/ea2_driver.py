"""Runs inside ``bench/.venv-ea2`` (Python 3.12, elastalert2 2.31): one pass of every rule.

``python -m bench.ea2_driver --config PATH --scheduled ISO`` loads the rules as ElastAlert2 does
(``ElastAlerter([--config, --debug, --pin_rules])``, timed as ``load_seconds``), then calls
``ElastAlerter.run_rule(rule, end, end − 1 h)`` for each rule, one after the other, which is what
its scheduler does on each ``run_every`` tick. ``--debug`` replaces the alerters with its
DebugAlerter and skips the writeback writes, as our side simulates actions and writes no history.
Prints one JSON object with the same fields as :mod:`bench.evaluate` (``met`` = rules with at least
one match). Imports nothing from ``watcher`` (a different interpreter).

``python -m bench.ea2_driver --post URL --alerts M [--threads T]`` is the delivery benchmark's side
(:func:`run_post`, see :mod:`bench.delivery`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
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


def run_post(url: str, alerts: int, threads: int) -> dict:
    """Send ``alerts`` alerts with ElastAlert2's ``HTTPPostAlerter`` (``alert: post``) from ``threads``
    threads (its rule threads: ``max_threads``, default 10); each match is ``{"alert": i,
    "sent_at": time.time(), "rule", "count"}`` and, with no ``http_post_payload``, is posted whole."""
    from concurrent.futures import ThreadPoolExecutor

    from elastalert.alerters.httppost import HTTPPostAlerter

    logging.getLogger("elastalert").setLevel(logging.WARNING)  # one INFO line per alert otherwise
    alerter = HTTPPostAlerter({"name": "bench-post", "type": "any", "alert": ["post"], "http_post_url": url})
    rss_loaded = _rss_mb()
    failed = 0

    def send(i: int) -> bool:
        match = {"alert": i, "sent_at": time.time(), "rule": f"bench-rule-{i % 1000:05d}", "count": 12}
        try:
            alerter.alert([match])
            return True
        except Exception:  # EAException: ElastAlert2 logs it and moves on (no retry)
            return False

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        delivered = sum(pool.map(send, range(alerts)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    failed = alerts - delivered
    return {"engine": "ea2", "alerts": alerts, "accepted": alerts, "delivered": delivered, "retried": 0,
            "dead": failed, "complete": True, "seconds": wall, "handover_seconds": wall, "cpu_seconds": cpu,
            "threads": threads, "rss_loaded_mb": rss_loaded, "peak_rss_mb": _rss_mb("VmHWM")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--scheduled")
    parser.add_argument("--post", help="delivery benchmark: the receiver URL")
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=10)
    args = parser.parse_args()
    if args.post:
        json.dump(run_post(args.post, args.alerts, args.threads), sys.stdout)
        print()
        return 0
    if not (args.config and args.scheduled):
        parser.error("--config and --scheduled are required (or --post URL)")
    end = dt.datetime.fromisoformat(args.scheduled).astimezone(dt.timezone.utc)
    start = end - dt.timedelta(hours=1)

    from elastalert.elastalert import ElastAlerter

    began = time.perf_counter()
    alerter = ElastAlerter(["--config", args.config, "--debug", "--pin_rules"])
    load_seconds = time.perf_counter() - began
    logging.getLogger("elastalert").setLevel(logging.WARNING)  # its per-query INFO lines go to stderr
    rules = list(alerter.rules)
    alerter.thread_data.current_es = None
    alerter.thread_data.alerts_sent = 0
    rss_loaded = _rss_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    met = 0
    for rule in rules:
        met += alerter.run_rule(rule, end, start) > 0
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    json.dump({"engine": "ea2", "evaluations": len(rules), "met": met, "failed": 0, "seconds": wall,
               "cpu_seconds": cpu, "compile_seconds": load_seconds, "rss_loaded_mb": rss_loaded,
               "peak_rss_mb": _rss_mb("VmHWM")}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
