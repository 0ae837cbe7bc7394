"""Schedule lag: N rules on a 1-minute schedule run by our daemon for a few minutes.

``python -m bench.lag --rules N --seconds S --receiver URL [--workdir DIR]`` (run in its own process
by :func:`measure`) writes the benchmark rules (:mod:`bench.rules`, ``schedule: 1m``) as files and a
connectors file whose webhook points at the benchmark receiver, then runs the real
:class:`watcher.daemon.service.Daemon` on them (index prefix ``bench-lag``; HTTP port: any free one)
for ``S`` seconds after it is up: its scheduler (:mod:`watcher.daemon.scheduler`: APScheduler, the
worker pool, start offsets spread over ``min(10 % of 1 min, 30 s)`` = 6 s), its tick handler (state
load, execute with the search batcher, history record, state save) and its outbox, against the
cluster. The daemon logs at INFO as in production, to ``<workdir>/daemon.log``.

Measured per tick: **lag** = actual start − planned start (scheduled time + the watch's offset; the
scheduler's own ``lag_samples``, what ``/metrics`` exports), and **completion** = end of the tick −
planned start (how long after its slot a tick's record was written; growing values mean the daemon
does not keep up). Prints one JSON object: ``ticks``, ``lag_p50_s``, ``lag_p99_s``, ``lag_max_s``,
``completion_p50_s``, ``completion_p99_s``, ``completion_max_s``, ``failed`` (ticks whose
execution failed), ``rules_loaded_seconds``, ``rss_loaded_mb`` (resident set with all rules loaded
and scheduled), ``peak_rss_mb``, ``cpu_seconds`` (the daemon process during the measured span),
``tick_ms`` (wall milliseconds per tick: the whole tick, and in it the state load, the state save
and the history write; the rest is the execution) and ``batching`` (requests, items and mean items
per request of the daemon client's group commits during the measured span: ``searches``
(``_msearch``), ``state_loads`` (``_mget``), ``writes`` (``_bulk``: state saves and history records)).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "bench-lag"


def write_rules(folder: Path, count: int, receiver_url: str) -> Path:
    """``count`` rule files and ``connectors.yaml`` (webhook → ``receiver_url``) in ``folder``;
    returns the connectors file. JSON is YAML: no YAML writer needed."""
    from bench.rules import CONNECTORS_DOCUMENT, rule_document

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "rules").mkdir(parents=True)
    for i in range(count):
        (folder / "rules" / f"rule-{i:05d}.yaml").write_text(json.dumps(rule_document(i), indent=1))
    connectors = json.loads(json.dumps(CONNECTORS_DOCUMENT))
    for connector in connectors["connectors"].values():
        connector["url"] = receiver_url
    path = folder / "connectors.yaml"
    path.write_text(json.dumps(connectors, indent=1))
    return path


def _delete_indices(es) -> None:
    es.options(ignore_status=404).indices.delete(index=f"{PREFIX}-*", expand_wildcards="all")


def run(count: int, seconds: float, receiver_url: str, workdir: Path, workers: int | None = None) -> dict:
    """Run the daemon over ``count`` rules for ``seconds``; see the module docstring."""
    import logging

    from bench.delivery import percentile
    from bench.evaluate import _peak_rss_mb, _rss_mb
    from watcher.daemon import logs
    from watcher.daemon.scheduler import DEFAULT_WORKERS
    from watcher.daemon.service import Daemon, DaemonSettings
    from watcher.es.client import ConnectionSettings, make_client

    workdir.mkdir(parents=True, exist_ok=True)
    connectors = write_rules(workdir / "definitions", count, receiver_url)
    log_file = open(workdir / "daemon.log", "w")
    logs.configure("human", "INFO", stream=log_file)  # as `watcher run` logs, to a file
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # "pool is full" with many workers
    settings = ConnectionSettings.from_env()
    _delete_indices(make_client(settings))

    completions: list[float] = []
    phases = {"tick": 0.0, "state_load": 0.0, "state_save": 0.0, "history_write": 0.0}  # summed seconds
    lags: list[float] = []
    failures = {"n": 0}
    lock = threading.Lock()

    def _add(phase: str, seconds: float) -> None:
        with lock:
            phases[phase] += seconds

    def _timed(phase: str, function):
        def timed(*args, **kwargs):
            began_call = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                _add(phase, time.perf_counter() - began_call)
        return timed

    class MeasuredDaemon(Daemon):
        """The daemon, keeping every lag sample and each tick's completion time."""

        def _maintain(self) -> None:
            self._probe()
            if self.scheduler is not None:
                samples = self.scheduler.lag_samples()
                lags.extend(samples)
                for sample in samples:
                    self.metrics.observe_lag(sample)

        def on_tick(self, watch_id, scheduled_time, triggered_time) -> None:
            began_tick = time.perf_counter()
            super().on_tick(watch_id, scheduled_time, triggered_time)
            _add("tick", time.perf_counter() - began_tick)
            planned = scheduled_time + self.scheduler.offset(watch_id)
            finished = self._clock()
            with lock:
                completions.append((finished - planned).total_seconds())

        def _write_record(self, record, best_effort, quick=False) -> None:
            began_write = time.perf_counter()
            try:
                super()._write_record(record, best_effort, quick)
            finally:
                _add("history_write", time.perf_counter() - began_write)

        def _mark_transient(self, record: dict, reason: str) -> None:
            with lock:
                failures["n"] += 1
            super()._mark_transient(record, reason)

    daemon_settings = DaemonSettings(connection=settings, rules=(str(workdir / "definitions" / "rules"),),
                                     connectors=str(connectors), index_prefix=PREFIX, http_port=0,
                                     workers=workers or DEFAULT_WORKERS)
    daemon = MeasuredDaemon(daemon_settings)
    began = time.perf_counter()
    try:
        if not daemon.start():
            raise RuntimeError("the daemon did not start")
        loaded = time.perf_counter() - began
        daemon.state.load = _timed("state_load", daemon.state.load)
        daemon.state.save = _timed("state_save", daemon.state.save)
        rss_loaded = _rss_mb()
        groups = _group_commits(daemon.es)
        stats0 = {name: dict(group.stats) for name, group in groups.items()}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall0 < seconds:
            time.sleep(min(2.0, max(0.0, seconds - (time.perf_counter() - wall0))))
            daemon._maintain()
        cpu = time.process_time() - cpu0
        batching = {name: _batching(stats0[name], group.stats) for name, group in groups.items()}
        failed_records = int(sum(sample.value for metric in daemon.metrics.executions.collect()
                                 for sample in metric.samples
                                 if sample.name.endswith("_total") and sample.labels.get("state") == "failed"))
    finally:
        daemon.shutdown()
        _delete_indices(make_client(settings))
        log_file.close()
    return {"rules": count, "seconds": seconds, "workers": daemon_settings.workers, "ticks": len(lags),
            "lag_p50_s": percentile(lags, 0.50), "lag_p99_s": percentile(lags, 0.99),
            "lag_max_s": max(lags, default=0.0), "completion_p50_s": percentile(completions, 0.50),
            "completion_p99_s": percentile(completions, 0.99), "completion_max_s": max(completions, default=0.0),
            "completed": len(completions), "failed": failed_records, "transient_failures": failures["n"],
            "rules_loaded_seconds": loaded, "rss_loaded_mb": rss_loaded, "peak_rss_mb": _peak_rss_mb(),
            "cpu_seconds": cpu,
            # where a tick's time goes, milliseconds per tick (wall, summed over worker threads)
            "tick_ms": {phase: round(total * 1000 / max(len(completions), 1), 2) for phase, total in phases.items()},
            "batching": batching}


def _group_commits(es) -> dict:
    """The group commits of the daemon's client: searches, state loads, writes (saves + records)."""
    from watcher.es.search_batch import batcher_for
    from watcher.es.groupcommit import document_requests

    documents = document_requests(es)
    return {"searches": batcher_for(es), "state_loads": documents.reads, "writes": documents.writes}


def _batching(before: dict, after: dict) -> dict:
    """Requests and items sent between two ``stats`` snapshots of a group commit, and items per request."""
    counter = next(name for name in after if name not in ("requests", "largest_batch"))
    requests, items = after["requests"] - before["requests"], after[counter] - before[counter]
    return {"requests": requests, "items": items, "mean_batch": round(items / max(requests, 1), 2),
            "largest_batch": after["largest_batch"]}


def measure(count: int, seconds: float, receiver) -> dict:
    """One schedule-lag run in a child process against the running ``receiver``; its JSON plus the
    deliveries the receiver got.

    Raises:
        RuntimeError: the child failed.
    """
    import subprocess

    receiver.clear()
    workdir = Path(tempfile.mkdtemp(prefix="watcher-bench-lag-"))
    command = [sys.executable, "-m", "bench.lag", "--rules", str(count), "--seconds", str(seconds),
               "--receiver", receiver.url, "--workdir", str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (log: {workdir}/daemon.log):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["deliveries_received"] = receiver.stats()["received"]
    result["log"] = str(workdir / "daemon.log")
    shutil.rmtree(workdir / "definitions", ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--receiver", required=True, help="URL the rules' webhook posts to")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--workers", type=int, help="scheduler worker threads (default: the daemon's)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="watcher-bench-lag-"))
    json.dump(run(args.rules, args.seconds, args.receiver, workdir, args.workers), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
