"""The ``watcher`` command line: one group, one small function per verb."""

from __future__ import annotations

import sys

import click

from watcher import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watcher")
def main() -> None:
    """Alert rules and Elastic Watcher watches for Elasticsearch.

    Define rules in YAML (or bring Watcher's JSON watches), dry-run them against your cluster,
    and run the daemon that schedules them and delivers alerts through connectors.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--save", type=click.File("a", encoding="utf-8"), help="Append each request as a JSON line to this file.")
@click.option("--status", default=200, show_default=True, type=int, help="HTTP status to answer with.")
def receiver(host: str, port: int, save, status: int) -> None:
    """Receive webhooks and print one line per request (a local stand-in for OpsGenie or Slack)."""
    from watcher.receiver import Receiver

    server = Receiver((host, port), out=sys.stdout, save=save, status=status)
    click.echo(f"receiving webhooks on http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _register_commands() -> None:
    # Each verb group lives in its own module; the group stays a table of contents.
    from watcher.cli_definitions import convert, schema_command, validate
    from watcher.cli_dryrun import dry_run
    from watcher.cli_ops import ack, activate, deactivate, history, outbox_command, status
    from watcher.cli_run import run

    for command in (validate, schema_command, convert, dry_run, run, status, history, ack, activate, deactivate,
                    outbox_command):
        main.add_command(command)


_register_commands()
