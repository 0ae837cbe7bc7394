"""The ``watcher`` command line: one group, one small function per verb."""

from __future__ import annotations

import errno
import importlib
import socket
import sys

import click

from watcher.receiver import Receiver
from watcher.version import __version__

# Each verb group lives in its own module, imported when one of its verbs runs (``watcher validate``
# never loads the daemon or the Elasticsearch client); the group stays a table of contents.
COMMANDS = {
    "validate": "watcher.cli.definitions:validate",
    "schema": "watcher.cli.definitions:schema_command",
    "convert": "watcher.cli.definitions:convert",
    "dry-run": "watcher.cli.dryrun:dry_run",
    "run": "watcher.cli.run:run",
    "status": "watcher.cli.ops:status",
    "history": "watcher.cli.ops:history",
    "ack": "watcher.cli.ops:ack",
    "silence": "watcher.cli.ops:silence",
    "activate": "watcher.cli.ops:activate",
    "deactivate": "watcher.cli.ops:deactivate",
    "outbox": "watcher.cli.ops:outbox_command",
    "events": "watcher.cli.events:events",
    "demo": "watcher.cli.demo:demo",
}


class _VerbGroup(click.Group):
    """A click group whose verbs in :data:`COMMANDS` are loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attribute = COMMANDS[name].split(":")
            command = getattr(importlib.import_module(module), attribute)  # deferred: start-up (see COMMANDS)
            if command.name != name:
                raise RuntimeError(f"COMMANDS[{name!r}] names the command {command.name!r}")
            self.add_command(command)
        return super().get_command(ctx, name)


@click.group(cls=_VerbGroup, context_settings={"help_option_names": ["-h", "--help"]})
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

    if error.errno == errno.EADDRINUSE:
        return click.ClickException(f"port {port} on {host} is already in use; stop what uses it or give --port")
    if error.errno == errno.EACCES:
        return click.ClickException(f"not allowed to listen on port {port} on {host} (ports below 1024 need "
                                    f"privileges); give --port 1024 or above")
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return click.BadParameter(f"cannot listen on {host!r}: {error.strerror or error} (expected an address of "
                                  f"this machine, such as 127.0.0.1 or 0.0.0.0)", param_hint="--host")
    return click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}")
