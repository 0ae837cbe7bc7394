"""Load rule and watch files (and connectors.yaml) into watches; a bad file never stops the others.

Directories are scanned (not recursively, in name order) for ``*.yaml``, ``*.yml`` and ``*.json``.
The connectors file (default ``connectors.yaml`` in the first directory given, or in the directory of
the first file given) is loaded first and is not a rule. Each other file is parsed on its own: a
watch when :func:`watcher.definitions.watch.looks_like_watch` says so, else a rule, which is
compiled to a watch. Rule names and watch ids share one namespace (the watch id); a second use is a
problem at the second file naming the first. A rule or watch that loads but has no action that
takes its alert anywhere (none, or only ``logging``) gets a warning (:func:`delivery_warnings`),
which does not make its file bad.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from watcher.definitions.compile import compile_rule
from watcher.definitions.connectors import INVALID_CONNECTOR, load_connectors
from watcher.definitions.rule import parse_rule
from watcher.definitions.watch import looks_like_watch, parse_watch
from watcher.destinations import ACTIONS, delivers
from watcher.model.connector import find_connector
from watcher.model.problems import DefinitionError, Problem, Reader
from watcher.model.source import Document, SourceError, load_file, load_text
from watcher.model.watch import Watch

__all__ = ["CONNECTORS_FILE", "EXTENSIONS", "LoadResult", "delivery_warnings", "discover", "load_connectors_file",
           "load_definition", "load_paths", "load_watch_text"]

CONNECTORS_FILE = "connectors.yaml"
EXTENSIONS = (".yaml", ".yml", ".json")


@dataclasses.dataclass
class LoadResult:
    """What :func:`load_paths` found.

    Attributes:
        watches: ``{watch id: Watch}`` of every file that loaded without problems (rules compiled).
        connectors: ``{name: Connector}`` from the connectors file (empty when there is none).
        problems: every problem, in file order.
        warnings: what loads but deserves a look (a rule or watch that alerts nobody), in file
            order, positioned like problems; they do not make a file bad.
        files_ok: paths of files without problems (the connectors file included).
        files_bad: paths of files with at least one problem.
        connectors_file: the connectors file used, or None.
    """

    watches: dict[str, Watch] = dataclasses.field(default_factory=dict)
    connectors: dict[str, Any] = dataclasses.field(default_factory=dict)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    files_ok: list[str] = dataclasses.field(default_factory=list)
    files_bad: list[str] = dataclasses.field(default_factory=list)
    connectors_file: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


CONNECTORS_FILE_NAMES = ("connectors.yaml", "connectors.yml")


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Definition files under ``paths``: directories are listed (``*.yaml|*.yml|*.json``, sorted),
    leaving out connectors files (``connectors.yaml``/``connectors.yml``: never a rule, even when
    another connectors file is configured); files are taken as given (even with another extension;
    a missing path is kept so that loading reports it)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
                                and p.name.lower() not in CONNECTORS_FILE_NAMES))
        else:
            found.append(path)
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def default_connectors_path(paths: Iterable[str | Path]) -> Path | None:
    """``connectors.yaml`` in the first directory given (or the first file's directory), if it exists."""
    for path in map(Path, paths):
        directory = path if path.is_dir() else path.parent
        candidate = directory / CONNECTORS_FILE
        return candidate if candidate.is_file() else None
    return None


def load_connectors_file(path: str | Path) -> tuple[dict[str, Any], list[Problem]]:
    """Load a connectors file: ``({name: Connector}, problems)``; a connector that has problems maps to
    :data:`INVALID_CONNECTOR` (the valid ones load whatever the others hold)."""

    try:
        document = load_file(path)
    except SourceError as error:
        return {}, [Problem(error.file, error.line, error.column, "", error.message)]
    reader = Reader(document)
    connectors = dict(load_connectors(document, reader) or {})
    # Connectors that are written but invalid: rules that use them get "has problems", not "unknown".
    written = document.data.get("connectors") if isinstance(document.data, dict) else None
    if isinstance(written, dict):
        for name in written:
            connectors.setdefault(str(name), INVALID_CONNECTOR)
    return connectors, list(reader.problems)


def load_paths(paths: Iterable[str | Path], connectors_path: str | Path | None = None) -> LoadResult:
    """Load every definition under ``paths``.

    Args:
        paths: files and directories.
        connectors_path: the connectors file; default ``connectors.yaml`` beside the first path.

    Returns:
        A :class:`LoadResult`; never raises for problems in the files.
    """
    paths = [Path(p) for p in paths]
    result = LoadResult()
    connectors_file = Path(connectors_path) if connectors_path is not None else default_connectors_path(paths)
    if connectors_file is not None:
        result.connectors_file = str(connectors_file)
        connectors, problems = load_connectors_file(connectors_file)
        result.connectors = {name: c for name, c in connectors.items() if c is not INVALID_CONNECTOR}
        _account(result, str(connectors_file), problems)
    origins: dict[str, str] = {}
    for path in discover(paths):
        if connectors_file is not None and same_file(path, connectors_file):
            continue
        if connectors_file is None and path.name == CONNECTORS_FILE:
            continue  # a connectors file given among the paths is not a rule
        watch, problems, document = _load(path, connectors if connectors_file is not None else result.connectors,
                                          result.connectors_file)
        if watch is not None and watch.id in origins:
            problems.append(_duplicate(watch, origins[watch.id]))
            watch = None
        if watch is not None:
            origins[watch.id] = str(path)
            result.watches[watch.id] = watch
            result.warnings.extend(delivery_warnings(watch, document))
        _account(result, str(path), problems)
    return result


def delivery_warnings(watch: Watch, document: Document | None = None) -> list[Problem]:
    """A warning when ``watch`` (a watch, or a compiled rule) has no action that takes its alert
    anywhere: no action at all, or only actions whose destination does not deliver (``logging``,
    :func:`watcher.destinations.delivers`). Positioned at ``actions`` (1:1 when there is none) in
    ``document``, the watch's file as parsed (read again when not given).

    Returns:
        ``[]`` or one :class:`Problem` at ``actions``: ``none, so nobody is alerted when the rule fires``
        or ``only logging, which writes to watcher's own log, so nobody is alerted when the watch fires``.
    """
    if any(delivers(action.type) for action in watch.actions):
        return []
    what = "rule" if watch.rule is not None else "watch"
    if watch.actions:
        kinds = " and ".join(dict.fromkeys(action.type for action in watch.actions))
        message = f"only {kinds}, which writes to watcher's own log, so nobody is alerted when the {what} fires"
    else:
        message = f"none, so nobody is alerted when the {what} fires"
    document = document if document is not None else _reload(watch.file)
    if document is None:
        return [Problem(watch.file, 1, 1, "actions", message)]
    base = ("watch",) if watch.rule is None and isinstance(document.data, Mapping) and "_id" in document.data \
        and "watch" in document.data else ()
    reader = Reader(document)
    reader.problem((*base, "actions"), message)
    return reader.problems


def _check_watch_connectors(reader: Reader, watch: Watch, connectors: Mapping[str, Any],
                            connectors_file: str | None) -> None:
    """A watch action naming a connector (our extension) must name a valid one of its type, as rules must;
    and an action whose destination can tell (``missing_for``) must not lack, with its connector, a field
    it can never be sent without (an email's ``to``, a PagerDuty ``description``, a Jira ``project``)."""

    base = ("watch",) if "watch" in reader.document.data and "_id" in reader.document.data else ()
    valid = {key: value for key, value in connectors.items() if value is not INVALID_CONNECTOR}
    for action in watch.actions:
        name = getattr(action.config, "connector", None)
        missing_for = getattr(ACTIONS.get(action.type), "missing_for", None)
        path = (*base, "actions", action.id, action.type, _account_key(reader.document.data, base, action))
        if name is None:
            # Watcher's default account: the only connector of the type (else the run says how to fix it).
            candidates = [c for c in valid.values() if getattr(c, "type", None) == action.type]
            connector = candidates[0] if len(candidates) == 1 else None
        elif connectors.get(name) is INVALID_CONNECTOR:
            reader.problem(path, f"connector {name!r} has problems in {connectors_file or 'the connectors file'} "
                                 "(reported there)", at_value=True)
            continue
        else:
            try:
                connector = find_connector(valid, name, action.type)
            except LookupError as error:
                reader.problem(path, str(error), at_value=True)
                continue
        message = missing_for(action.config, connector) if missing_for and connector is not None else None
        if message:
            reader.problem((*base, "actions", action.id, action.type), message)


def _account_key(data: Any, base: tuple, action) -> str:
    """The key the file names the action's connector with: Watcher's ``account``, or our ``connector``."""
    node = data
    for key in (*base, "actions", action.id, action.type):
        node = node.get(key) if isinstance(node, Mapping) else None
    return "account" if isinstance(node, Mapping) and "account" in node else "connector"


def load_definition(path: str | Path, connectors: Mapping[str, Any] | None,
                    connectors_file: str | None = None) -> tuple[Watch | None, list[Problem]]:
    """Load one rule or watch file: ``(watch, [])`` or ``(None, problems)``."""

    watch, problems, _ = _load(path, connectors, connectors_file)
    return watch, problems


def load_watch_text(text: str, watch_id: str, source: str, connectors: Mapping[str, Any] | None,
                    connectors_file: str | None = None) -> tuple[Watch | None, list[Problem]]:
    """Load one Watcher watch sent as JSON text (the body of ``PUT _watcher/watch/<id>``), checked
    as a watch file is (its connectors included).

    Args:
        text: the JSON body (Elasticsearch's comments allowed).
        watch_id: the id the watch gets (the request path's).
        source: what problems and :attr:`Watch.file` name as the file (``watcher-watches/<id>``).
        connectors: the loaded connectors (None: not checked).

    Returns:
        ``(watch, [])`` or ``(None, problems)``; a body that is not JSON gives one problem at the
        syntax error's position.
    """
    try:
        document = load_text(text, source, as_json=True)
    except SourceError as error:
        return None, [Problem(error.file, error.line, error.column, "", error.message)]
    reader = Reader(document)
    watch = parse_watch(document, reader, watch_id)
    if watch is not None and connectors is not None:
        _check_watch_connectors(reader, watch, connectors, connectors_file)
    return (watch, []) if watch is not None and not reader.problems else (None, reader.problems)


def _load(path: str | Path, connectors: Mapping[str, Any] | None,
          connectors_file: str | None) -> tuple[Watch | None, list[Problem], Document | None]:
    """:func:`load_definition`, plus the parsed document (None when the file could not be read)."""

    try:
        document = load_file(path)
    except SourceError as error:
        return None, [Problem(error.file, error.line, error.column, "", error.message)], None
    reader = Reader(document)
    if looks_like_watch(document.data):
        watch = parse_watch(document, reader)
        if watch is not None and connectors is not None:
            _check_watch_connectors(reader, watch, connectors, connectors_file)
        return (watch, [], document) if watch is not None and not reader.problems else (None, reader.problems, document)
    spec = parse_rule(document, reader, connectors, connectors_file=connectors_file)
    if spec is None or reader.problems:
        return None, reader.problems, document
    try:
        return compile_rule(spec, document.file, connectors or {}), [], document
    except DefinitionError as error:
        return None, error.problems, document


def _duplicate(watch: Watch, first_file: str) -> Problem:
    """The problem for a second definition of ``watch.id``, at its name (rules) or ``_id`` (watches)."""
    document = _reload(watch.file)
    if watch.rule is not None:
        path, what = ("name",), "rule name"
    else:
        path, what = (("_id",) if document is not None and isinstance(document.data, Mapping)
                      and "_id" in document.data else ()), "watch id"
    line, column = document.value_position(path) if document is not None and path else (1, 1)
    return Problem(watch.file, line, column, ".".join(map(str, path)),
                   f"duplicate {what} {watch.id!r}: already defined in {first_file}")


def _reload(file: str) -> Document | None:
    try:
        return load_file(file)
    except SourceError:
        return None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (resolved; compared as given when resolving fails)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _account(result: LoadResult, file: str, problems: list[Problem]) -> None:
    result.problems.extend(problems)
    (result.files_bad if problems else result.files_ok).append(file)
