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
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--save", type=click.File("a", encoding="utf-8"), help="Append each request as a JSON line to this file.")
@click.option("--status", default=200, show_default=True, type=click.IntRange(100, 599),
              help="HTTP status to answer with.")
def receiver(host: str, port: int, save, status: int) -> None:
    """Receive webhooks and print one line per request (a local stand-in for OpsGenie or Slack).

    Masked as *** in the printed lines and in --save: the values of query parameters and headers
    whose name contains token, key, secret, password, auth or signature (case-insensitive), and the
    Cookie header. A secret written in the URL path (such as a Slack webhook's path) cannot be told
    apart from the rest of the path and is shown as received.
    """
    from watcher.receiver import Receiver

    try:
        server = Receiver((host, port), out=sys.stdout, save=save, status=status)
    except OSError as error:
        raise _listen_error(host, port, error) from None
    click.echo(f"receiving webhooks on http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _listen_error(host: str, port: int, error: OSError) -> click.ClickException:
    """One clear line for a socket that cannot listen: port taken, address not local, unknown host."""
    import errno
    import socket

    if error.errno == errno.EADDRINUSE:
        return click.ClickException(f"port {port} on {host} is already in use; stop what uses it or give --port")
    if error.errno == errno.EACCES:
        return click.ClickException(f"not allowed to listen on port {port} on {host} (ports below 1024 need "
                                    f"privileges); give --port 1024 or above")
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return click.BadParameter(f"cannot listen on {host!r}: {error.strerror or error} (expected an address of "
                                  f"this machine, such as 127.0.0.1 or 0.0.0.0)", param_hint="--host")
    return click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}")


def _register_commands() -> None:
    # Each verb group lives in its own module; the group stays a table of contents.
    from watcher.cli.definitions import convert, schema_command, validate
    from watcher.cli.dryrun import dry_run
    from watcher.cli.ops import ack, activate, deactivate, history, outbox_command, silence, status
    from watcher.cli.demo import demo
    from watcher.cli.run import run

    for command in (validate, schema_command, convert, dry_run, run, status, history, ack, silence, activate, deactivate,
                    outbox_command, demo):
        main.add_command(command)


_register_commands()
