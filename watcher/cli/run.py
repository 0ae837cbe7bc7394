"""``watcher run``: the daemon (:mod:`watcher.daemon.service`) as a command.

The cluster comes from the environment (``ES_URL`` — several URLs comma-separated — ``ES_API_KEY``
or ``ES_USERNAME``/``ES_PASSWORD``, ``ES_CA_CERTS``, ``ES_VERIFY_CERTS``). SIGTERM and SIGINT shut
down gracefully (exit 0). Also runnable as ``python -m watcher.cli.run``.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal

import click

from watcher.daemon import logs
from watcher.daemon.service import Daemon, DaemonSettings
from watcher.delivery.retry import RetryPolicy
from watcher.delivery.secretkey import SecretKeyError, load_secret_key
from watcher.errors import DefinitionProblem
from watcher.es.client import ConnectionSettings
from watcher.http.access import load_http_config
from watcher.http.app import create_app
from watcher.http.server import HttpServer, HttpServerError
from watcher.support.datemath import DateMathError, resolve
from watcher.support.durations import parse_time_value

DEFAULT_RULES = ("rules",)


@click.command("run")
@click.option("--rules", "rules", multiple=True, type=click.Path(), default=DEFAULT_RULES, show_default=True,
              help="Rules directory or file (repeat for several). Hot-reloaded.")
@click.option("--connectors", "connectors", type=click.Path(),
              help="connectors.yaml (default: connectors.yaml in the first rules directory). Hot-reloaded.")
@click.option("--index-prefix", default="watcher", show_default=True, envvar="WATCHER_INDEX_PREFIX",
              help="Prefix of the history, state and outbox indices.")
@click.option("--http-host", default="127.0.0.1", show_default=True,
              help="Address of the HTTP server (/healthz, /metrics, /api/v1, /_watcher).")
@click.option("--http-port", default=9095, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the HTTP server (0: any free port).")
@click.option("--http-config", "http_config", type=click.Path(dir_okay=False), envvar="WATCHER_HTTP_CONFIG",
              help="YAML file of API tokens (read/admin roles), TLS files and stream limits (docs/api.md). "
                   "Without it the API answers 401; /healthz and /metrics stay open.")
@click.option("--workers", default=64, show_default=True, type=click.IntRange(1),
              help="Threads running watches (their searches share _msearch requests).")
@click.option("--max-catch-up", default=100, show_default=True, type=click.IntRange(1),
              help="Most missed ticks of one watch caught up after a restart or a cluster outage.")
@click.option("--backfill-from", "backfill_from",
              help="ISO-8601 time or date math (now-4h): watches never run before (no saved progress) "
                   "first catch up every tick after it, at most --max-catch-up of them.")
@click.option("--grace", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Seconds in-flight executions and deliveries get at shutdown.")
@click.option("--jitter", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Largest start offset in seconds spreading cron/calendar watches (at most 10% of their "
                   "period); 0 also stops phasing new interval watches over their period.")
@click.option("--max-attempts", default=200, show_default=True, type=click.IntRange(1),
              help="Delivery attempts before a delivery is dead.")
@click.option("--max-retry-delay", default=300.0, show_default=True, type=click.FloatRange(0.01),
              help="Longest wait in seconds between two delivery attempts (a longer Retry-After wins).")
@click.option("--max-delivery-age", default=86400.0, show_default=True, type=click.FloatRange(1),
              help="Seconds after which a delivery still failing is dead.")
@click.option("--delivery-lease", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds a delivery being sent stays claimed (at least its timeouts + 5s); one left "
                   "claimed by a killed process is sent again after it.")
@click.option("--events-retention", default="7d", show_default=True,
              help="How long events stay in the event log (docs/events.md#retention): a duration such as 7d or 12h; "
                   "0 keeps them forever.")
@click.option("--secret-key-file", type=click.Path(dir_okay=False),
              help="File holding the deployment key that names secrets in the outbox (env WATCHER_SECRET_KEY_FILE; "
                   "or the key itself in WATCHER_SECRET_KEY). Default: <state dir>/secret-key, created once. "
                   "Every daemon on the same index prefix needs the same key.")
@click.option("--state-dir", type=click.Path(file_okay=False),
              help="Folder of the generated deployment key (env WATCHER_STATE_DIR; default "
                   "$XDG_STATE_HOME/watcher or ~/.local/state/watcher).")
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human", show_default=True)
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
def run(rules, connectors, index_prefix, http_host, http_port, http_config, workers, max_catch_up, backfill_from, grace, jitter,
        max_attempts, max_retry_delay, max_delivery_age, delivery_lease, events_retention, secret_key_file, state_dir, log_format,
        log_level) -> None:
    """Run the daemon: schedule every rule and watch, record executions, deliver alerts."""

    try:
        logs.configure(log_format, log_level)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--log-level") from None
    backfill = None
    if backfill_from:

        try:
            backfill = resolve(backfill_from, dt.datetime.now(dt.timezone.utc))
        except (DateMathError, ValueError) as error:
            raise click.BadParameter(f"expected an ISO-8601 time or date math such as now-4h, found "
                                     f"{backfill_from!r} ({error})", param_hint="--backfill-from") from None
    retention = _retention(events_retention)
    try:
        secret_key = load_secret_key(secret_key_file, state_dir)
    except SecretKeyError as error:
        raise click.ClickException(str(error)) from None
    try:
        connection = ConnectionSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    settings = DaemonSettings(
        connection=connection, rules=tuple(rules), connectors=connectors, index_prefix=index_prefix,
        http_host=http_host, http_port=http_port, workers=workers, max_catch_up=max_catch_up, grace_s=grace,
        jitter_s=jitter, outbox_lease_s=delivery_lease, backfill_from=backfill, events_retention=retention, secret_key=secret_key,
        retry=RetryPolicy(max_attempts=max_attempts, max_delay_s=max_retry_delay, max_age_s=max_delivery_age))
    try:
        http = load_http_config(http_config)
    except DefinitionProblem as error:
        raise click.ClickException(f"HTTP configuration:\n{error}") from None
    if not http.access.configured:
        logging.getLogger("watcher.http").warning(
            "no API token configured (--http-config): /api/v1 and /_watcher answer 401; /healthz and /metrics "
            "are open")
    daemon = Daemon(settings, server_factory=lambda served: HttpServer(create_app(served, http), http_host,
                                                                        http_port, http.tls))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.request_stop())
    try:
        code = daemon.run()
    except HttpServerError as error:
        raise click.ClickException(str(error)) from None
    raise SystemExit(code)


def _retention(text: str) -> dt.timedelta | None:
    """``--events-retention``: a positive duration, or None for 0 (keep forever)."""
    try:
        value = parse_time_value(text, field="--events-retention")
    except DefinitionProblem as error:
        raise click.BadParameter(f"expected a duration such as 7d or 12h, or 0; {error}",
                                 param_hint="--events-retention") from None
    return value if value else None


if __name__ == "__main__":  # python -m watcher.cli.run …
    run()
