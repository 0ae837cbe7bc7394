"""``make demo``: sshd logs → Elasticsearch → the daemon with ``rules/`` → a local OpsGenie stand-in.

Steps (:func:`run_demo`; the cluster comes from ``ES_URL``, which ``make demo`` provides):

1. Load sshd lines into ``logs-ssh-demo`` (replaced), shifted so the last line lands at now: the
   file given (``DEMO_LOG``) or :func:`watcher.demo.generate.history` (2 h, seed 7).
2. Start ``watcher receiver --port 8000 --save <tmp>/alerts.jsonl`` (``rules/connectors.yaml`` and
   the watch send there) and stream its lines prefixed ``[receiver]``.
3. Start ``watcher run --rules rules --backfill-from <first minute> --max-catch-up <enough>`` with
   its own indices (prefix ``watcher-demo``, cleared first): every rule first catches up every
   minute of the loaded range, then runs live.
4. Generated data only: replay a brute-force burst (:func:`watcher.demo.generate.live_attack`) at
   real pace, timed so its alert comes at the next-but-one minute.
5. After ``seconds`` (``DEMO_SECONDS``) or Ctrl-C/SIGTERM: stop the replay, the daemon and the
   receiver, and print the addresses each rule alerted (read back from the receiver's file).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import math
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Callable

from watcher.definitions.load import load_paths
from watcher.demo import generate
from watcher.demo import load as loader
from watcher.demo import sshd
from watcher.es.client import ConnectionSettings, make_client

__all__ = ["RECEIVER_PORT", "STATE_PREFIX", "run_demo", "summarize_alerts"]

RECEIVER_PORT = 8000  # where rules/connectors.yaml and rules/ssh-bruteforce-watch.json send
STATE_PREFIX = "watcher-demo"
UTC = dt.timezone.utc


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the receiver (HTTPServer) does
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pump(stream: IO[str], prefix: str, keep: Callable[[str], bool] = lambda _: True) -> threading.Thread:
    def copy() -> None:
        for line in stream:
            if keep(line):
                print(f"{prefix} {line.rstrip()}", flush=True)
    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _clear_demo_indices(es) -> None:
    """Delete the demo daemon's own indices (history, state, outbox) left by an earlier run, by name
    (wildcard deletes are refused by default)."""
    names = list(es.options(ignore_status=404).indices.get(index=f"{STATE_PREFIX}-*", expand_wildcards="all"))
    if names:
        es.indices.delete(index=",".join(names))


def _address(body: dict) -> str | None:
    """The address an alert is about: a rule's group (``ctx.vars.alert.group`` / ``payload.group``)
    or a watch's foreach bucket key (``payload.key``)."""
    if not isinstance(body, dict):
        return None
    alert = ((body.get("vars") or {}).get("alert") or {})
    payload = body.get("payload") or {}
    for value in (alert.get("group"), payload.get("group"), payload.get("key")):
        if value is not None:
            return str(value)
    return None


def summarize_alerts(saved: Path) -> dict[str, collections.Counter]:
    """``{watch_id: Counter({address: requests})}`` from the receiver's JSON-lines file."""
    out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    if not saved.exists():
        return out
    for line in saved.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            body = json.loads(line).get("body")
            if isinstance(body, dict):
                out[str(body.get("watch_id") or body.get("rule") or "?")][_address(body) or "-"] += 1
    return out


def _print_summary(summary: dict[str, collections.Counter], watch_ids: list[str], began: float) -> None:
    _say(f"summary after {time.monotonic() - began:.0f}s — addresses alerted per rule:")
    for watch_id in sorted(set(watch_ids) | set(summary)):
        counts = summary.get(watch_id, collections.Counter())
        listed = ", ".join(f"{ip} ({n})" if n > 1 else ip for ip, n in sorted(counts.items())) or "none"
        print(f"  {watch_id:<24} {len(counts)} address(es): {listed}", flush=True)
    print("  (n) = requests received for that address; the watch form re-alerts each minute (no per-address "
          "throttle in Watcher)", flush=True)


def _stop(process: subprocess.Popen | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_demo(*, log: str | None = None, seconds: float = 90.0, seed: int = 7, rules: str = "rules",
             index: str = loader.DEFAULT_INDEX, parse: str = "auto") -> int:
    """Run the demo (module docstring); returns the exit code (0, or 1 when something could not start).

    Args:
        log: a real sshd log (e.g. Loghub's OpenSSH_2k.log or ``/var/log/auth.log``); None = generated.
        seconds: how long the daemon runs (``DEMO_SECONDS``) before everything stops.
        seed: generator seed.
        rules: the rules directory handed to the daemon.
        index: the data index (must match the rules' ``logs-ssh-*``).
        parse: ``auto``/``cluster``/``python`` (see :func:`watcher.demo.load.load`).
    """

    began = time.monotonic()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    if not _port_free(RECEIVER_PORT):
        _say(f"port {RECEIVER_PORT} is in use: the demo's receiver (the OpsGenie stand-in that rules/connectors.yaml "
             f"and rules/ssh-bruteforce-watch.json point at) needs it; free it and run again")
        return 1
    try:
        es = make_client(ConnectionSettings.from_env())
    except ValueError as error:
        _say(f"{error} (make demo provides a cluster)")
        return 1

    now = dt.datetime.now(UTC).replace(microsecond=0)
    if log:
        source = f"{log}"
        lines = list(sshd.iter_lines(Path(log).read_text(encoding="utf-8", errors="replace")))
    else:
        source = "generated sshd lines (watcher.demo.generate, seed %d, 2 h)" % seed
        lines = generate.history(now.replace(tzinfo=None), hours=2.0, seed=seed)
    _say(f"loading {len(lines)} lines from {source} into {index}")
    result = loader.load(es, lines, index=index, time_rule=loader.TimeRule(now=now), parse=parse, replace=True,
                         echo=lambda text: _say(text))
    if result.first is None:
        _say("no sshd lines found; nothing to do")
        return 1
    _say(f"indexed {result.indexed} events from {result.first:%Y-%m-%d %H:%M:%S} to {result.last:%H:%M:%S} UTC "
         f"({result.failed} failed)")
    _clear_demo_indices(es)

    backfill_from = result.first.replace(second=0, microsecond=0)
    ticks = math.ceil((now - backfill_from) / dt.timedelta(minutes=1)) + 5
    work = Path(tempfile.mkdtemp(prefix="watcher-demo-"))
    saved = work / "alerts.jsonl"
    python = sys.executable
    receiver = daemon = None
    replayer: threading.Thread | None = None
    watch_ids: list[str] = []
    try:
        receiver = subprocess.Popen([python, "-c", "from watcher.cli import main; main()", "receiver", "--port",
                                     str(RECEIVER_PORT), "--save", str(saved)], stdout=subprocess.PIPE, text=True,
                                    bufsize=1)
        _pump(receiver.stdout, "[receiver]")
        watch_ids = sorted(load_paths([rules]).watches)
        _say(f"daemon: {len(watch_ids)} rules/watches from {rules}/ ({', '.join(watch_ids)}); backfill of "
             f"{ticks - 5} minutes from {backfill_from:%H:%M} UTC, then live for {seconds:.0f}s")
        daemon = subprocess.Popen([python, "-m", "watcher.cli.run", "--rules", rules, "--index-prefix", STATE_PREFIX,
                                   "--backfill-from", backfill_from.isoformat(), "--max-catch-up", str(max(ticks, 100)),
                                   "--jitter", "0", "--http-port", "0", "--grace", "5", "--log-level", "WARNING"],
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        _pump(daemon.stderr, "[daemon]")
        deadline = time.monotonic() + seconds  # the daemon's time starts now
        if not log:
            replayer, due = _start_live_attack(es, index, seed, parse, stopping)
            # Stay until the live alert has had its tick (+ delivery), even past DEMO_SECONDS.
            deadline = max(deadline, time.monotonic() + (due - dt.datetime.now(UTC)).total_seconds() + 8)
        while not stopping.is_set() and time.monotonic() < deadline:
            if daemon.poll() is not None:
                _say(f"the daemon exited with {daemon.returncode}")
                break
            stopping.wait(0.5)
    finally:
        stopping.set()
        _say("stopping the daemon and the receiver")
        if replayer is not None:
            replayer.join(5)
        _stop(daemon, signal.SIGTERM, 15)
        time.sleep(0.3)  # the last deliveries' lines
        _stop(receiver, signal.SIGINT, 5)
        es.close()
    _print_summary(summarize_alerts(saved), watch_ids, began)
    _say(f"alerts as received: {saved}")
    return 0


def _start_live_attack(es, index: str, seed: int, parse: str,
                       stopping: threading.Event) -> tuple[threading.Thread, dt.datetime]:
    """Replay :func:`generate.live_attack` so its 10th failure lands 35 s before a whole minute
    (the rules tick on whole minutes with a 30 s delay), starting at least 5 s from now.
    Returns the replay thread and the tick (aware UTC) due to alert on it."""
    now = dt.datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while minute - dt.timedelta(seconds=35 + 20) < now + dt.timedelta(seconds=5):
        minute += dt.timedelta(minutes=1)
    pace = 2.0
    tenth = minute - dt.timedelta(seconds=35)
    begin = tenth - dt.timedelta(seconds=9 * pace + 2)
    lines = generate.live_attack(dt.datetime(2000, 1, 1, 12), seed=seed, attempts=30, pace_s=pace)
    _say(f"live: a brute-force burst from {generate.LIVE_ATTACKER} starts at {begin:%H:%M:%S} UTC; its alert is "
         f"due at the {minute:%H:%M} tick")

    def feed() -> None:
        if stopping.wait(max(0.0, (begin - dt.datetime.now(UTC)).total_seconds())):
            return
        loader.replay(es, lines, index=index, factor=1.0, parse=parse, echo=lambda _: None, stop=stopping.is_set,
                      sleep=lambda s: stopping.wait(s))

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread, minute
