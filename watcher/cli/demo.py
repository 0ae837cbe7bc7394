"""``watcher demo``: the SSH brute-force demo's verbs (load, replay, generate, run).

The cluster comes from the environment (``ES_URL`` and its auth variables), as for ``watcher run``.
The modules doing the work are in :mod:`watcher.demo`.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from watcher.demo import generate
from watcher.demo import load as loader
from watcher.demo import sshd
from watcher.demo.load import DEFAULT_INDEX
from watcher.demo.run import run_demo
from watcher.es.client import ConnectionSettings, make_client

_PARSE = click.Choice(["auto", "cluster", "python"])
_PARSE_HELP = "Who parses: the cluster's ingest pipeline when it has ingest-common (auto), only it, or Python."


def _client():
    try:
        return make_client(ConnectionSettings.from_env())
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _lines(log: str | None, seed: int, hours: float) -> list[str]:
    if log:
        return list(sshd.iter_lines(Path(log).read_text(encoding="utf-8", errors="replace")))

    return generate.history(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0), hours=hours, seed=seed)


@click.group("demo")
def demo() -> None:
    """The SSH brute-force demo: load sshd logs, replay them live, generate them, run it all."""


@demo.command("load")
@click.option("--log", type=click.Path(exists=True, dir_okay=False), help="sshd log file (default: generated lines).")
@click.option("--index", default=DEFAULT_INDEX, show_default=True, help="Target index (rules search logs-ssh-*).")
@click.option("--year", type=int, help="Year of the first line; without it the lines are shifted so the last lands at now.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of the log's local times (with --year).")
@click.option("--parse", type=_PARSE, default="auto", show_default=True, help=_PARSE_HELP)
@click.option("--replace", is_flag=True, help="Delete the index first.")
@click.option("--seed", default=7, show_default=True, help="Generator seed (without --log).")
@click.option("--hours", default=2.0, show_default=True, help="Generated hours (without --log).")
def load_command(log, index, year, timezone, parse, replace, seed, hours) -> None:
    """Bulk-load sshd lines as ECS documents (index template + ingest pipeline when the cluster can parse).

    Time rule: syslog lines have no year or zone. With --year/--timezone each time is local time in
    that zone and year (Dec → Jan moves to the next year); without --year all lines are shifted by
    one offset so the last lands at now, keeping the gaps.
    """

    try:
        ZoneInfo(timezone)
    except Exception as error:
        raise click.BadParameter(f"expected an IANA time zone such as Asia/Shanghai, found {timezone!r} ({error})",
                                 param_hint="--timezone") from None
    es = _client()
    try:
        result = loader.load(es, _lines(log, seed, hours), index=index,
                             time_rule=loader.TimeRule(year=year, timezone=timezone), parse=parse, replace=replace,
                             echo=click.echo)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    finally:
        es.close()
    span = f" from {result.first.isoformat()} to {result.last.isoformat()}" if result.first else ""
    click.echo(f"indexed {result.indexed} events into {index}{span} ({result.failed} failed, "
               f"{result.skipped_lines} lines without a syslog header)")
    if result.failed:
        sys.exit(1)


@demo.command("replay")
@click.option("--log", type=click.Path(exists=True, dir_okay=False), help="sshd log file (default: generated lines).")
@click.option("--index", default=DEFAULT_INDEX, show_default=True)
@click.option("--factor", default=60.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Speed-up: 60 plays an hour of log in a minute.")
@click.option("--parse", type=_PARSE, default="auto", show_default=True, help=_PARSE_HELP)
@click.option("--seed", default=7, show_default=True)
@click.option("--hours", default=2.0, show_default=True)
def replay_command(log, index, factor, parse, seed, hours) -> None:
    """Send the lines at their original pace ÷ FACTOR, each stamped with the time it is sent."""

    es = _client()
    try:
        sent = loader.replay(es, _lines(log, seed, hours), index=index, factor=factor, parse=parse, echo=click.echo)
    except KeyboardInterrupt:
        sent = None
    finally:
        es.close()
    click.echo(f"replayed {sent} events into {index}" if sent is not None else "replay interrupted")


@demo.command("generate")
@click.option("--seed", default=7, show_default=True, help="Same seed, same lines.")
@click.option("--hours", default=2.0, show_default=True, help="Hours of log, ending now.")
@click.option("--out", type=click.File("w", encoding="utf-8"), default="-", help="Output file (default stdout).")
def generate_command(seed, hours, out) -> None:
    """Write realistic sshd syslog lines (normal logins, scanners, brute force, spraying)."""
    for line in _lines(None, seed, hours):
        out.write(line + "\n")


@demo.command("run")
@click.option("--log", type=click.Path(exists=True, dir_okay=False), help="A real sshd log (default: generated lines).")
@click.option("--seconds", type=float, envvar="DEMO_SECONDS",
              help="How long the daemon runs after loading (env DEMO_SECONDS; default 90, 45 with --log).")
@click.option("--seed", default=7, show_default=True)
@click.option("--rules", default="rules", show_default=True, type=click.Path(exists=True))
@click.option("--parse", type=_PARSE, default="auto", show_default=True, help=_PARSE_HELP)
def run_command(log, seconds, seed, rules, parse) -> None:
    """Load sshd data, run the daemon over it (backfill then live) with a local receiver, summarize."""

    if seconds is None:
        seconds = 45.0 if log else 90.0
    sys.exit(run_demo(log=log, seconds=seconds, seed=seed, rules=rules, parse=parse))
