"""``watcher events``: the daemon's events in the terminal (docs/events.md#cli).

Without ``--follow`` it prints the events after ``--after`` (default: the oldest kept) that exist
now, by long-poll pages, and exits. With ``--follow`` it follows the Server-Sent Events stream
(httpx-sse) from ``--after`` (default: new events only) and, when the connection drops or the
server cuts it off, reconnects from the last cursor it printed, with backoff — no event is lost
or printed twice.

The token comes from ``--token-file`` or the environment variable ``WATCHER_TOKEN``; it is never
printed.

Exit codes: 0 done (or interrupted with Ctrl-C); 1 the server cannot be reached or failed (without
``--follow``); 2 bad usage; 3 the token was refused (401/403); 4 the cursor belongs to an event
log that was created again (410) or is malformed (400).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import httpx
from httpx_sse import connect_sse

from watcher.errors import WatcherError
from watcher.model.events import KINDS

__all__ = ["events"]

EXIT_UNREACHABLE, EXIT_AUTH, EXIT_CURSOR = 1, 3, 4
MAX_BACKOFF_S = 30.0


class _Stop(WatcherError):
    """End the command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _token(token_file: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise click.BadParameter(f"cannot read the token file: {error.strerror}", param_hint="--token-file")
    else:
        token = os.environ.get("WATCHER_TOKEN", "").strip()
    if not token:
        raise click.UsageError("expected an API token: --token-file FILE or the environment variable WATCHER_TOKEN")
    return token


def _refused(response: httpx.Response) -> _Stop | None:
    """The exit for an answer that retrying cannot fix, else None."""
    if response.status_code < 400 or response.status_code in (429, 503) or response.status_code >= 500:
        return None
    try:
        reason = response.json()["error"]["reason"]
    except (ValueError, KeyError, TypeError):
        reason = response.reason_phrase
    code = EXIT_AUTH if response.status_code in (401, 403) else EXIT_CURSOR
    return _Stop(code, f"the server answered {response.status_code}: {reason}")


def _line(event: dict) -> str:
    group = f" [{event['group']}]" if event.get("group") else ""
    return f"{event['time']}  {event['kind']:<16} {event['watch_id']}{group}  {event.get('message', '')}"


def _show(event: dict, as_json: bool) -> None:
    click.echo(json.dumps(event, separators=(",", ":")) if as_json else _line(event))


@click.command("events")
@click.option("--url", default="http://127.0.0.1:9095", show_default=True, envvar="WATCHER_URL",
              help="The daemon's HTTP server (watcher run --http-port).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the API token (else WATCHER_TOKEN).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they happen (Server-Sent Events).")
@click.option("--after", help="Start after this cursor ('beginning': the oldest kept event). Default: the oldest "
                              "kept event, or with --follow only new events.")
@click.option("--watch", "watches", multiple=True, help="Only this watch/rule (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only this kind (repeatable).")
@click.option("--group", "groups", multiple=True, help="Only this group key (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One event JSON per line (with its cursor).")
def events(url, token_file, follow, after, watches, kinds, groups, as_json) -> None:
    """Print the daemon's events: fired, recovered, deliveries, acks, silences… (docs/events.md)."""
    headers = {"Authorization": f"Bearer {_token(token_file)}"}
    params = {"watch": list(watches), "kind": list(kinds), "group": list(groups)}
    base = url.rstrip("/")
    try:
        if follow:
            _follow(base, headers, params, after, as_json)
        else:
            _print_now(base, headers, params, after or "beginning", as_json)
    except _Stop as stop:
        click.echo(f"watcher events: {stop}", err=True)
        sys.exit(stop.code)
    except KeyboardInterrupt:
        sys.exit(0)


def _print_now(base: str, headers: dict, params: dict, after: str, as_json: bool) -> None:
    with httpx.Client(headers=headers, timeout=30) as client:
        while True:
            try:
                response = client.get(f"{base}/api/v1/events", params={**params, "after": after, "limit": 1000})
            except httpx.HTTPError as error:
                raise _Stop(EXIT_UNREACHABLE, f"cannot reach {base}: {_why(error)}") from None
            if response.status_code != 200:
                raise _refused(response) or _Stop(EXIT_UNREACHABLE, f"the server answered {response.status_code}")
            page = response.json()
            if page.get("gap"):
                click.echo("watcher events: events after the cursor were deleted by retention", err=True)
            for event in page["events"]:
                _show(event, as_json)
            if not page["events"]:
                return
            after = page["cursor"]


def _follow(base: str, headers: dict, params: dict, after: str | None, as_json: bool) -> None:
    delay = 0.5
    position = {"after": after}  # the last cursor printed, kept when a connection breaks mid-stream
    with httpx.Client(headers=headers, timeout=httpx.Timeout(30, read=None)) as client:
        while True:
            try:
                if position["after"] is None:  # pin "the end of the log now": a reconnect misses nothing after it
                    position["after"] = _end_cursor(client, base)
                if position["after"] is not None:
                    _stream(client, base, params, position, as_json)
                    delay = 0.5
            except httpx.HTTPError as error:
                click.echo(f"watcher events: connection to {base} lost ({_why(error)}); retrying in "
                           f"{delay:.1f}s", err=True)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


def _stream(client: httpx.Client, base: str, params: dict, position: dict, as_json: bool) -> None:
    """Print the stream from ``position["after"]`` until it ends, moving ``position`` on."""
    with connect_sse(client, "GET", f"{base}/api/v1/events/stream",
                     params={**params, "after": position["after"]}) as source:
        refused = _refused(source.response)
        if refused is not None:
            raise refused
        if source.response.status_code != 200:
            return
        for sse in source.iter_sse():
            if sse.event == "cutoff":
                click.echo("watcher events: the server cut the stream off (this terminal was slow); resuming",
                           err=True)
                position["after"] = json.loads(sse.data)["cursor"]
            elif sse.event == "gap":
                click.echo("watcher events: events after the cursor were deleted by retention", err=True)
            elif sse.data:
                event = json.loads(sse.data)
                _show(event, as_json)
                position["after"] = event["cursor"]


def _why(error: httpx.HTTPError) -> str:
    """The error's class and text (a refused connection, a certificate not trusted…): the text of an
    httpx transport error names the socket or TLS failure, never a request header."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _end_cursor(client: httpx.Client, base: str) -> str | None:
    """The cursor of the end of the log (a long-poll without a cursor and without waiting)."""
    response = client.get(f"{base}/api/v1/events", params={"limit": 1})
    refused = _refused(response)
    if refused is not None:
        raise refused
    return response.json()["cursor"] if response.status_code == 200 else None
