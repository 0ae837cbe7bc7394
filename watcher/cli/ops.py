"""Operator verbs: ``watcher status``, ``history``, ``ack``, ``activate``, ``deactivate``, ``outbox``.

They act on the state the daemon keeps in Elasticsearch (``<prefix>-state``, ``<prefix>-history-*``,
``<prefix>-outbox``), so they work whether or not the daemon runs: the daemon re-reads a watch's
state at every tick, so an ack or a deactivate takes effect at the watch's next execution.

Registered on the main group in :mod:`watcher.cli` (``main.add_command(status)`` …); the commands are
``status``, ``history``, ``ack``, ``activate``, ``deactivate`` and ``outbox_command`` (named
``outbox``).

The changes (ack, activate, deactivate, silence, outbox --retry) are :mod:`watcher.operations`,
shared with the HTTP API: Watcher's semantics, optimistic concurrency, and an operator event
(actor ``cli:<login name>``) appended to the event log for each change; this module parses the
options and prints.

Every command reads the cluster from ``ES_URL`` (and ``ES_API_KEY``… see
:meth:`watcher.es.client.ConnectionSettings.from_env`), exits 1 with a clear message when the
cluster cannot be reached or a watch name is unknown (with "did you mean" suggestions taken from the
saved states and, with ``--rules``, from the definition files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from elasticsearch import ApiError, TransportError

from watcher import api, operations
from watcher.definitions.load import load_paths
from watcher.delivery.outbox import Outbox
from watcher.engine.alerting import WHOLE_RULE
from watcher.es.client import ConnectionSettings, check_index_prefix, make_client, redact_url
from watcher.es.history import index_pattern
from watcher.es.outbox_store import DEAD, DELIVERING, PENDING
from watcher.es.state import StateStore
from watcher.model.source import SourceError, load_file
from watcher.model.status import RECORD_STATES
from watcher.support.datemath import format_iso_millis

DEFAULT_RULES_DIR = "rules/"


# ----------------------------------------------------------------------------------------------
# shared plumbing

def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _common_options(with_rules: bool = True) -> Callable:
    """The options every verb shares: ``--index-prefix``, ``--json`` and (most verbs) ``--rules``."""

    def decorate(function: Callable) -> Callable:
        function = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(function)
        function = click.option(
            "--index-prefix", default="watcher", show_default=True, envvar="WATCHER_INDEX_PREFIX",
            callback=_check_index_prefix,
            help="Prefix of the daemon's indices (<prefix>-state, <prefix>-history-*, <prefix>-outbox).")(function)
        if with_rules:
            function = click.option(
                "--rules", "rules_dir", type=click.Path(exists=True, file_okay=False),
                help=f"Rules directory, to know the defined watches and their actions "
                     f"(default: {DEFAULT_RULES_DIR} if it exists).")(function)
        return function

    return decorate


def _check_index_prefix(ctx, param, value: str) -> str:
    """click callback: ``--index-prefix`` must be able to start an index name (else a usage error)."""

    try:
        return check_index_prefix(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _client():
    """``(es client, settings)`` from the environment; ClickException when ES_URL is missing."""

    try:
        settings = ConnectionSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    return make_client(settings), settings


@contextlib.contextmanager
def _cluster_errors(settings) -> Iterator[None]:
    """Turn the client's errors into one clear line (exit 1): unreachable cluster, or its answer."""

    where = ", ".join(map(redact_url, settings.urls))  # from_env strips credentials; never print them anyway
    try:
        yield
    except TransportError as error:  # connection refused, timeout, TLS: the cluster was not reached
        raise click.ClickException(f"cannot reach the cluster (ES_URL) at {where}: {error.message}") from None
    except ApiError as error:  # reached, but it refused (auth, privileges, cluster errors)
        raise click.ClickException(f"the cluster (ES_URL) at {where} answered {error.status_code}: {error.message}") from None


def _short(value: dt.datetime | None) -> str:
    """A time for tables: ``2024-05-01T10:00:00Z`` (UTC, seconds), ``-`` for never."""
    if value is None:
        return "-"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return lines


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# ----------------------------------------------------------------------------------------------
# definitions (what --rules says exists)

@dataclasses.dataclass
class Definitions:
    """The watches the rules directory defines.

    Attributes:
        directory: the directory read, or None when no directory was given and rules/ is absent.
        watches: ``{watch id: Watch}`` of the files that load without problems.
        invalid: ``{watch id: file}`` of files with problems (id from the file's ``name``/``_id``,
            else the file name without extension).
    """

    directory: str | None = None
    watches: dict[str, Any] = dataclasses.field(default_factory=dict)
    invalid: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return self.directory is not None

    def ids(self) -> set[str]:
        return set(self.watches) | set(self.invalid)

    def marker(self, watch_id: str) -> str | None:
        """``ok``, ``invalid`` (its file has problems) or ``missing`` (no file); None without --rules."""
        if not self.loaded:
            return None
        if watch_id in self.watches:
            return "ok"
        return "invalid" if watch_id in self.invalid else "missing"

    def defined(self) -> dict[str, operations.Defined]:
        """``{watch id: Defined}`` for :mod:`watcher.operations` (a file with problems: no action, active)."""
        known = {watch_id: operations.Defined() for watch_id in self.invalid}
        known.update({watch_id: operations.Defined(tuple(action.id for action in watch.actions), watch.active,
                                                    watch.rule is not None)
                      for watch_id, watch in self.watches.items()})
        return known

    def action_ids(self, watch_id: str) -> list[str]:
        watch = self.watches.get(watch_id)
        return [action.id for action in watch.actions] if watch is not None else []


def load_definitions(rules_dir: str | None) -> Definitions:
    """Load the rules directory (``rules_dir``, else ``rules/`` when it exists); never raises for bad files.

    Returns:
        :class:`Definitions` (empty, ``directory`` None, when there is no directory to read).
    """

    directory = rules_dir or (DEFAULT_RULES_DIR if Path(DEFAULT_RULES_DIR).is_dir() else None)
    if directory is None:
        return Definitions()
    result = load_paths([directory])
    definitions = Definitions(directory=directory, watches=dict(result.watches))
    for file in result.files_bad:
        if result.connectors_file is not None and Path(file) == Path(result.connectors_file):
            continue
        watch_id = _declared_id(file)
        if watch_id not in definitions.watches:
            definitions.invalid[watch_id] = file
    return definitions


def _declared_id(file: str) -> str:
    """The id a definition file declares (rule ``name``, watch ``_id``), else its stem."""

    try:
        data = load_file(file).data
    except (SourceError, OSError):
        data = None
    if isinstance(data, dict):
        for key in ("name", "_id"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key]
    return Path(file).stem


# ----------------------------------------------------------------------------------------------
# watch state helpers

def _state_store(es, prefix: str):
    return StateStore(es, prefix=prefix)


def _unknown_watch(name: str, store, definitions: Definitions, extra_known: Iterable[str] = ()) -> click.ClickException:
    known = set(store.load_all()) | definitions.ids() | set(extra_known)
    where = f"no state in {store.index}"
    if definitions.loaded:
        where += f" and no definition in {definitions.directory}"
    return click.ClickException(f"unknown watch [{name}]: {where}{operations.did_you_mean(name, known)}")


def _load_or_new(store, name: str, definitions: Definitions):
    """The saved state of ``name``, or a new one for a defined watch never saved (active as defined).

    Returns None when the watch has neither state nor definition.
    """
    state = store.load(name)
    if state is not None:
        return state
    if name not in definitions.ids():
        return None
    return _new_state(name, definitions.watches.get(name))


def _new_state(watch_id: str, watch):
    """A never-saved state for ``watch_id``: active as its definition says (``watch`` may be None)."""
    return operations.new_state(watch_id, operations.Defined(active=watch.active if watch is not None else True))


@contextlib.contextmanager
def _operation_errors(name: str, store, definitions: Definitions) -> Iterator[None]:
    """:mod:`watcher.operations` errors as one clear line (exit 1); an unknown watch also names the
    rules directory searched."""
    try:
        yield
    except operations.UnknownWatch as error:
        raise _unknown_watch(name, store, definitions, error.known) from None
    except operations.OperationError as error:
        raise click.ClickException(str(error)) from None


def _actor() -> str:
    """``cli:<login name>`` (``cli:unknown`` when the system cannot tell)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"


def _status_json(state) -> dict:
    """Watcher's status object of ``state`` (``status.state.active`` is the authoritative flag)."""
    status = state.status.to_json()
    status["state"]["active"] = state.active
    return status


def _action_cell(status) -> str:
    parts = [status.ack_state]
    if status.last_execution is not None:
        outcome = "ok" if status.last_execution_successful else "failed"
        parts.append(f"last {_short(status.last_execution)} {outcome}")
        if status.last_execution_reason and not status.last_execution_successful:
            parts.append(status.last_execution_reason)
    else:
        parts.append("never executed")
    return "; ".join(parts)


def _warning_line(warning: dict) -> str:
    """One saved warning for the status table: ``warning at <scheduled time> [type]: message``."""
    return f"    warning at {warning.get('scheduled_time', '-')} [{warning.get('type')}]: {warning.get('message')}"


def _watch_lines(rows: list[tuple[str, Any, str | None, list[str]]]) -> list[str]:
    """The status table: a line per watch, an indented line per action, then one per warning of
    the watch's last run (as the daemon saved them).

    Args:
        rows: ``(watch id, state or None, definition marker or None, defined action ids)``.
    """
    with_marker = any(marker is not None for _, _, marker, _ in rows)
    headers = ["WATCH", "ACTIVE", "LAST CHECKED", "LAST MET", "EXECUTION STATE"] + (["DEFINITION"] if with_marker else [])
    table_rows, actions_of, warnings_of = [], [], []
    for watch_id, state, marker, defined_actions in rows:
        warnings_of.append(list(state.warnings) if state is not None else [])
        status = state.status if state is not None else None
        active = state.active if state is not None else True
        cells = [watch_id, "yes" if active else "no",
                 _short(status.last_checked) if status else "-", _short(status.last_met_condition) if status else "-",
                 (status.execution_state or "-") if status and state.seq_no is not None else "never run"]
        if with_marker:
            cells.append(marker or "-")
        table_rows.append(cells)
        action_ids = list(dict.fromkeys([*defined_actions, *(status.actions if status else {})]))
        actions_of.append([(action_id, status.actions.get(action_id) if status else None) for action_id in action_ids])
    lines = _table(headers, table_rows)
    out = [lines[0]]
    for line, actions, warnings in zip(lines[1:], actions_of, warnings_of):
        out.append(line)
        width = max((len(action_id) for action_id, _ in actions), default=0)
        for action_id, action_status in actions:
            cell = _action_cell(action_status) if action_status else "awaits_successful_execution; never executed"
            out.append(f"    action {action_id.ljust(width)}  {cell}")
        out.extend(_warning_line(warning) for warning in warnings)
    return out


def _one_watch_lines(state, definitions: Definitions) -> list[str]:
    return _watch_lines([(state.watch_id, state, definitions.marker(state.watch_id),
                          definitions.action_ids(state.watch_id))])


# ----------------------------------------------------------------------------------------------
# status

@click.command("status")
@click.argument("name", required=False)
@_common_options()
def status(name: str | None, index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    """Show the watches' status (active, last checked, last met, per-action ack state).

    Without NAME: a table of every watch that has a saved state or a definition; with --rules (default
    rules/ when it exists) a DEFINITION column says ok, invalid (the file has problems) or missing
    (the state remains but the file is gone); under each watch, the warnings of its last run (a
    partial search answer, groups left out by max_groups…). With NAME: that watch's status as
    Watcher's status JSON ({"state": {"active", "timestamp"}, "last_checked", "last_met_condition",
    "actions", "execution_state", "version"}), plus "warnings" when its last run had some.
    """
    es, settings = _client()
    definitions = load_definitions(rules_dir)
    store = _state_store(es, index_prefix)
    with _cluster_errors(settings):
        if name is not None:
            state = _load_or_new(store, name, definitions)
            if state is None:
                raise _unknown_watch(name, store, definitions)
            _print_json({**_status_json(state), **({"warnings": state.warnings} if state.warnings else {})})
            return
        states = api.status(es, index_prefix=index_prefix)
    ids = sorted(set(states) | definitions.ids())
    if as_json:
        _print_json({"watches": [_watch_json(watch_id, states.get(watch_id), definitions) for watch_id in ids]})
        return
    if not ids:
        click.echo(f"no watches: {store.index} holds no state" + (
            f" and {definitions.directory} no definition" if definitions.loaded else ""))
        return
    rows = [(watch_id, states.get(watch_id), definitions.marker(watch_id), definitions.action_ids(watch_id))
            for watch_id in ids]
    for line in _watch_lines(rows):
        click.echo(line)


def _watch_json(watch_id: str, state, definitions: Definitions) -> dict:
    watch = definitions.watches.get(watch_id)
    if state is None:
        state = _new_state(watch_id, watch)
    return {"id": watch_id, "active": state.active, "saved": state.seq_no is not None,
            "definition": definitions.marker(watch_id),
            "file": watch.file if watch is not None else definitions.invalid.get(watch_id),
            "last_window_end": _iso(state.last_window_end), "status": _status_json(state),
            "warnings": list(state.warnings)}


def _iso(value: dt.datetime | None) -> str | None:
    return format_iso_millis(value) if value is not None else None


# ----------------------------------------------------------------------------------------------
# history

@click.command("history")
@click.argument("name")
@click.option("--size", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many records.")
@click.option("--state", "record_state", type=click.Choice(RECORD_STATES), help="Only records in this state.")
@_common_options()
def history(name: str, size: int, record_state: str | None, index_prefix: str, as_json: bool,
            rules_dir: str | None) -> None:
    """Show the latest watch records of NAME, newest first: time, state, condition met, actions.

    Read from <prefix>-history-* (term query on watch_id, sorted by result.execution_time). A run that
    caught up a missed tick shows its state as e.g. "executed (catch-up)"; --json shows its scheduled
    time and the catch-up message.
    """

    es, settings = _client()
    definitions = load_definitions(rules_dir)
    with _cluster_errors(settings):
        records = api.history(es, name, index_prefix=index_prefix, size=size, state=record_state)
        if not records:
            store = _state_store(es, index_prefix)
            if store.load(name) is None and name not in definitions.ids() and not _has_history(es, index_prefix, name):
                raise _unknown_watch(name, store, definitions, _history_watch_ids(es, index_prefix))
    if as_json:
        _print_json({"watch_id": name, "records": records})
        return
    if not records:
        click.echo(f"no records of watch [{name}]" + (f" in state {record_state}" if record_state else ""))
        return
    rows = [[_record_time(r), _record_state(r), _record_met(r), _record_actions(r)] for r in records]
    for line in _table(["TIME", "STATE", "MET", "ACTIONS"], rows):
        click.echo(line)


def _has_history(es, prefix: str, watch_id: str) -> bool:
    return bool(api.history(es, watch_id, index_prefix=prefix, size=1))


def _history_watch_ids(es, prefix: str) -> list[str]:
    response = es.options(ignore_status=404).search(
        index=index_pattern(prefix), size=0, aggs={"ids": {"terms": {"field": "watch_id", "size": 1000}}},
        ignore_unavailable=True, allow_no_indices=True)
    return [b["key"] for b in response.get("aggregations", {}).get("ids", {}).get("buckets", [])]


def _record_time(record: dict) -> str:
    return ((record.get("result") or {}).get("execution_time") or record.get("@timestamp")
            or (record.get("trigger_event") or {}).get("triggered_time") or "-")


def _record_state(record: dict) -> str:
    state = record.get("state", "-")
    schedule = (record.get("trigger_event") or {}).get("schedule") or {}
    return f"{state} (catch-up)" if schedule.get("catch_up") else state


def _record_met(record: dict) -> str:
    condition = (record.get("result") or {}).get("condition") or {}
    if "met" not in condition:
        return "-"
    return "yes" if condition["met"] else "no"


def _record_actions(record: dict) -> str:
    parts = []
    for action in (record.get("result") or {}).get("actions") or []:
        text = f"{action.get('id')}:{action.get('status')}"
        if action.get("reason"):
            text += f"({action['reason']})"
        parts.append(text)
    return ", ".join(parts) or "-"


# ----------------------------------------------------------------------------------------------
# ack, activate, deactivate

@click.command("ack")
@click.argument("name")
@click.argument("actions", nargs=-1)
@_common_options()
def ack(name: str, actions: tuple[str, ...], index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    """Acknowledge actions of NAME (all of them when no ACTION or _all is given).

    Watcher's ack API: an action in state ackable becomes acked, and its notifications stop until the
    watch's condition is not met once; an action in any other state is left as it is. Prints, per
    action, what happened, then the resulting status. Takes effect at the watch's next execution.
    """

    es, settings = _client()
    definitions = load_definitions(rules_dir)
    store = _state_store(es, index_prefix)
    with _cluster_errors(settings), _operation_errors(name, store, definitions):
        result = operations.ack(es, index_prefix, name, actions, actor=_actor(), defined=definitions.defined())
    state, outcome = result.state, result.actions
    if as_json:
        _print_json({"watch_id": name, "status": _status_json(state),
                     "actions": {a: {"result": done.result, "ack_state": done.ack_state} for a, done in outcome.items()}})
        return
    if not outcome:
        click.echo(f"watch [{name}] has no action to acknowledge")
    for action_id, done in outcome.items():
        click.echo(f"action {action_id}: " + _ack_message(done.result, done.ack_state, state, action_id, done.never_run))
    for line in _one_watch_lines(state, definitions):
        click.echo(line)


def _ack_message(result: str, ack_state: str, state, action_id: str, never_run: bool) -> str:
    if result == "acked":
        return "acked"
    if result == "already_acked":
        since = state.status.actions[action_id].ack_timestamp
        return f"already acked (since {_short(since)}), unchanged"
    if never_run:
        return "not ackable (never executed), unchanged"
    return (f"not ackable ({ack_state}: no successful execution since its condition was last not met), "
            f"unchanged")


def _set_active(name: str, active: bool, index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    es, settings = _client()
    definitions = load_definitions(rules_dir)
    store = _state_store(es, index_prefix)

    with _cluster_errors(settings), _operation_errors(name, store, definitions):
        result = operations.set_active(es, index_prefix, name, active, actor=_actor(), defined=definitions.defined())
    state, changed = result.state, result.changed
    word = "active" if active else "inactive"
    if as_json:
        _print_json({"watch_id": name, "changed": changed, "status": _status_json(state)})
        return
    if changed:
        click.echo(f"watch [{name}] is now {word} (takes effect at its next scheduled execution)")
    else:
        since = state.status.state_timestamp
        click.echo(f"watch [{name}] is already {word}" + (f" (since {_short(since)})" if since else "") + ", unchanged")
    for line in _one_watch_lines(state, definitions):
        click.echo(line)


@click.command("activate")
@click.argument("name")
@_common_options()
def activate(name: str, index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    """Activate NAME: the daemon runs it on its schedule again (Watcher's activate API)."""
    _set_active(name, True, index_prefix, as_json, rules_dir)


@click.command("deactivate")
@click.argument("name")
@_common_options()
def deactivate(name: str, index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    """Deactivate NAME: the daemon stops running it until it is activated (Watcher's deactivate API)."""
    _set_active(name, False, index_prefix, as_json, rules_dir)


# ----------------------------------------------------------------------------------------------
# silence

@click.command("silence")
@click.argument("name")
@click.option("--for", "duration", metavar="DURATION", help="How long: 30m, 2h, 1d (rule duration).")
@click.option("--until", "until", metavar="TIME", help="Until an ISO-8601 time (with its offset, e.g. 2026-12-01T08:00:00+01:00).")
@click.option("--key", "group", metavar="GROUP", help="Silence one group key (a group_by value) instead of the whole rule.")
@click.option("--clear", is_flag=True, help="Lift the silence (of --key, or of the whole rule).")
@click.option("--list", "listing", is_flag=True, help="Show the silences of NAME.")
@_common_options()
def silence(name: str, duration: str | None, until: str | None, group: str | None, clear: bool, listing: bool,
            index_prefix: str, as_json: bool, rules_dir: str | None) -> None:
    """Silence rule NAME (or one of its group keys) until a time: its matches send no alerts and no
    recoveries until then (ElastAlert2's --silence). The daemon reads silences at each run.
    """

    chosen = [flag for flag, given in (("--for", duration), ("--until", until), ("--clear", clear), ("--list", listing))
              if given]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --for, --until, --clear, --list"
                               + (f" (found {', '.join(chosen)})" if chosen else ""))
    key = WHOLE_RULE if group is None else group
    new_until = None
    if duration or until:
        try:
            new_until = operations.silence_end(duration=duration, until=until, now=_utcnow())
        except operations.BadValue as error:
            raise click.BadParameter(str(error), param_hint="--for" if duration else "--until") from None
    es, settings = _client()
    definitions = load_definitions(rules_dir)
    store = _state_store(es, index_prefix)
    common = {"defined": definitions.defined()}
    with _cluster_errors(settings), _operation_errors(name, store, definitions):
        if listing:
            result = operations.list_silences(es, index_prefix, name, **common)
        elif clear:
            result = operations.unsilence(es, index_prefix, name, group=group, actor=_actor(), **common)
        else:
            result = operations.silence(es, index_prefix, name, new_until, group=group, actor=_actor(), **common)
    silences, was_silenced = result.silences, result.was_silenced
    if as_json:
        _print_json({"watch_id": name, "silences": silences})
        return
    if not listing:
        what = "the whole rule" if key == WHOLE_RULE else f"group [{key}]"
        if clear:
            click.echo(f"{name}: {what} " + ("no longer silenced" if was_silenced else "was not silenced"))
        else:
            click.echo(f"{name}: {what} silenced until {silences[key]}")
    if not silences:
        click.echo(f"{name}: no silences")
    for item, until_text in sorted(silences.items()):
        click.echo(f"  {'(whole rule)' if item == WHOLE_RULE else item}: until {until_text}")


# ----------------------------------------------------------------------------------------------
# outbox

@click.command("outbox")
@click.option("--state", "delivery_state", type=click.Choice(["pending", "delivering", "delivered", "dead", "all"]),
              help="Only deliveries in this state (default: pending, delivering and dead).")
@click.option("--size", default=50, show_default=True, type=click.IntRange(1, 10000), help="How many deliveries.")
@click.option("--retry", "retry_id", metavar="ID", help="Send the dead delivery ID again (dead → pending).")
@_common_options(with_rules=False)
def outbox_command(delivery_state: str | None, size: int, retry_id: str | None, index_prefix: str,
                   as_json: bool) -> None:
    """List the deliveries waiting in the outbox, and the outbox depth by state.

    Columns: id, watch, action, connector, state, attempts, next attempt, last error. Stored requests
    hold placeholders instead of secrets, so nothing secret is shown. --retry ID moves a dead delivery
    back to pending with its attempts reset; a running daemon sends it at its next poll.
    """

    es, settings = _client()
    box = Outbox(es, index_prefix)  # admin use only: no worker is started
    with _cluster_errors(settings):
        if retry_id is not None:
            _retry(box, retry_id, as_json)
            return
        if delivery_state == "all":
            deliveries = box.list_deliveries(None, size)
        elif delivery_state is not None:
            deliveries = box.list_deliveries(delivery_state, size)
        else:
            deliveries = [d for s in (PENDING, DELIVERING, DEAD) for d in box.list_deliveries(s, size)]
            deliveries.sort(key=lambda d: d.get("updated_at") or "", reverse=True)
            deliveries = deliveries[:size]
        depth = box.depth()
    if as_json:
        _print_json({"depth": depth, "deliveries": deliveries})
        return
    if deliveries:
        rows = [[d["id"], d.get("watch_id") or "-", d.get("action_id") or "-", d.get("connector") or "-",
                 d.get("state", "-"), str(d.get("attempts") or 0),
                 d.get("next_attempt_at") if d.get("state") == PENDING else "-",
                 d.get("last_error") or "-"] for d in deliveries]
        for line in _table(["ID", "WATCH", "ACTION", "CONNECTOR", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"],
                           rows):
            click.echo(line)
    else:
        click.echo("no deliveries" + (f" in state {delivery_state}" if delivery_state and delivery_state != "all" else
                                      " pending or dead" if delivery_state is None else ""))
    click.echo("depth: " + ", ".join(f"{s} {n}" for s, n in depth.items()))


def _retry(box, retry_id: str, as_json: bool) -> None:
    try:
        operations.retry_dead_delivery(box, retry_id)
    except operations.OperationError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _print_json({"id": retry_id, "state": "pending"})
        return
    click.echo(f"delivery [{retry_id}] is pending again (attempts reset); a running daemon sends it at its next poll")
