"""Runs inside ``bench/.venv-ea2`` (Python 3.12, elastalert2 2.31): one pass of every rule.

``python -m bench.ea2_driver --config PATH --scheduled ISO`` loads the rules as ElastAlert2 does
(``ElastAlerter([--config, --debug, --pin_rules])``, timed as ``load_seconds``), then calls
``ElastAlerter.run_rule(rule, end, end − 1 h)`` for each rule, one after the other, which is what
its scheduler does on each ``run_every`` tick. ``--debug`` replaces the alerters with its
DebugAlerter and skips the writeback writes, as our side simulates actions and writes no history.
Prints one JSON object with the same fields as :mod:`bench.evaluate` (``met`` = rules with at least
one match). Imports nothing from ``watcher`` (a different interpreter).
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--scheduled", required=True)
    args = parser.parse_args()
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
