"""Hot reload (issue 5, item 3): watch the rules directories and the connectors file, and work out
what a new load changes.

Two parts:

* :func:`plan_reload` (pure): given the watches running now and a fresh
  :class:`~watcher.definitions.load.LoadResult`, which watches are added, changed and removed. A
  file that turned bad keeps the last good version of its watches (issue 5: "a file that turns bad
  keeps the last good version of its rule running and is reported").
* :class:`FileWatcher`: a thread running :func:`watchfiles.watch` on the folders holding the
  definitions, calling back once per debounced batch of changes. Folders are watched rather than
  files because editors save by writing a new file and renaming it over the old one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import watchfiles

from watcher.definitions.load import EXTENSIONS, LoadResult
from watcher.model.watch import Watch

__all__ = ["FileWatcher", "ReloadPlan", "plan_reload", "watched_folders"]

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class ReloadPlan:
    """What a reload changes.

    Attributes:
        watches: the definitions to run from now on, by watch id (kept last-good versions included).
        added: ids new in this load.
        changed: ids whose definition differs from the running one.
        removed: ids no longer defined (their file was deleted, or the watch left a good file).
        kept: ids whose file is now bad and which keep running their last good version.
    """

    watches: dict[str, Watch]
    added: list[str]
    changed: list[str]
    removed: list[str]
    kept: list[str]


def plan_reload(current: Mapping[str, Watch], result: LoadResult) -> ReloadPlan:
    """Compare the running watches with a new load.

    Args:
        current: the watches running now, by id.
        result: a fresh :func:`~watcher.definitions.load.load_paths` result.

    Returns:
        A :class:`ReloadPlan`. A running watch missing from ``result`` is kept when its file is in
        ``result.files_bad`` (it turned bad: last good version keeps running) and removed otherwise
        (the file was deleted, renamed or no longer defines that id).
    """
    bad_files = {_key(path) for path in result.files_bad}
    watches = dict(result.watches)
    kept = []
    for watch_id, watch in current.items():
        if watch_id not in watches and _key(watch.file) in bad_files:
            watches[watch_id] = watch
            kept.append(watch_id)
    added = sorted(set(watches) - set(current))
    removed = sorted(set(current) - set(watches))
    changed = sorted(watch_id for watch_id in set(watches) & set(current) if watches[watch_id] != current[watch_id])
    return ReloadPlan(watches=watches, added=added, changed=changed, removed=removed, kept=sorted(kept))


def watched_folders(rule_paths: Iterable[str | Path], connectors_path: str | Path | None) -> list[Path]:
    """The folders to watch: each rules directory, the folder of each rule file given directly,
    and the folder of the connectors file. Missing folders are left out."""
    folders: list[Path] = []
    for path in [*map(Path, rule_paths), *([Path(connectors_path)] if connectors_path else [])]:
        folder = path if path.is_dir() else path.parent
        folder = folder.resolve()
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


def _key(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)


class FileWatcher:
    """Calls ``on_change(paths)`` after each debounced batch of file changes in ``folders``.

    Args:
        folders: folders to watch (not recursively interesting: definitions are not searched in
            sub-folders, so only changes to ``*.yaml|*.yml|*.json`` directly in them count).
        on_change: called on the watcher's thread with the set of changed paths (strings);
            exceptions are logged and watching continues.
        debounce_ms: changes within this many milliseconds are reported as one batch
            (:func:`watchfiles.watch` ``debounce``).
    """

    def __init__(self, folders: Iterable[Path], on_change: Callable[[set[str]], None], debounce_ms: int = 500):
        self.folders = list(folders)
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching on a daemon thread (nothing happens when there is no folder)."""
        if not self.folders:
            return
        self._thread = threading.Thread(target=self._loop, name="watcher-reload", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop watching and wait up to ``timeout_s`` seconds for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _loop(self) -> None:
        folders = {str(folder) for folder in self.folders}

        def relevant(_change, path: str) -> bool:
            candidate = Path(path)
            return str(candidate.parent) in folders and candidate.suffix.lower() in EXTENSIONS

        try:
            for changes in watchfiles.watch(*self.folders, watch_filter=relevant, debounce=self._debounce_ms,
                                            stop_event=self._stop, recursive=False, rust_timeout=500,
                                            yield_on_timeout=False, raise_interrupt=False):
                try:
                    self._on_change({path for _change, path in changes})
                except Exception:  # a failing reload must not stop hot reload
                    LOG.exception("reloading definitions failed")
        except Exception:
            LOG.exception("watching %s for changes failed; hot reload is off", ", ".join(sorted(folders)))
