"""Stored watches in the daemon: the watches put through ``PUT _watcher/watch/<id>``
(:mod:`watcher.es.watch_store`) join the definitions read from files (docs/watcher-api.md#stored-watches).

* :meth:`StoredWatches.merge` adds them to a :class:`~watcher.definitions.load.LoadResult`, so the
  daemon's reload schedules, swaps and removes them exactly as it does file definitions;
* an id both stored and defined by a file is a conflict: the stored watch keeps running and the
  file is reported as a problem (``/healthz`` ``definitions.problems`` and the log), never a
  silent winner; ``PUT`` of an id a file defines is refused (:class:`WatchIdTaken`);
* :meth:`StoredWatches.poll` tells whether the stored watches changed since the last look (another
  daemon on the same prefix wrote them), by comparing their versions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping

from watcher.definitions.load import LoadResult, load_watch_text
from watcher.errors import DefinitionProblem
from watcher.es.watch_store import StoredWatch, WatchStore
from watcher.model.problems import Problem
from watcher.model.watch import Watch

__all__ = ["StoredWatches", "WatchIdTaken"]

LOG = logging.getLogger("watcher.daemon")


class WatchIdTaken(DefinitionProblem):
    """A watch id is defined by a file: it cannot also be stored. ``file`` names that file."""

    def __init__(self, watch_id: str, file: str):
        super().__init__(f"watch [{watch_id}] is defined by the file {file}; a stored watch cannot have the same id "
                         "(rename one of them)")
        self.watch_id = watch_id
        self.file = file


class StoredWatches:
    """The stored watches as the daemon last read them.

    Args:
        store: the index of stored watches.
    """

    def __init__(self, store: WatchStore):
        self.store = store
        self._known: dict[str, StoredWatch] = {}
        self._lock = threading.Lock()

    def source(self, watch_id: str) -> str:
        """What a stored watch's :attr:`Watch.file` and problems name: ``<prefix>-watches/<id>``."""
        return f"{self.store.index}/{watch_id}"

    def is_stored(self, watch: Watch) -> bool:
        """True when ``watch`` came from the store (not from a file)."""
        return watch.file == self.source(watch.id)

    def poll(self) -> bool:
        """Read every stored watch; True when any was added, changed or deleted since the last read.

        Raises:
            elasticsearch.ApiError / TransportError: the cluster could not answer (nothing changes).
        """
        current = self.store.load_all()
        with self._lock:
            changed = _versions(current) != _versions(self._known)
            self._known = current
        return changed

    def parse(self, watch_id: str, text: str, connectors: Mapping, connectors_file: str | None):
        """:func:`~watcher.definitions.load.load_watch_text` with this store's source name."""
        return load_watch_text(text, watch_id, self.source(watch_id), connectors, connectors_file)

    def merge(self, result: LoadResult) -> None:
        """Add the stored watches last read (:meth:`poll`) to ``result``, in place.

        A stored watch that no longer loads (e.g. its connector was removed from the connectors
        file) is a problem of its source and does not run. A file defining the id of a stored watch
        loses: its watch is dropped and the file reported, naming the stored watch.
        """
        with self._lock:
            stored = dict(self._known)
        for watch_id, item in stored.items():
            source = self.source(watch_id)
            watch, problems = self.parse(watch_id, json.dumps(item.body, indent=2), result.connectors,
                                         result.connectors_file)
            if watch is None:
                result.problems.extend(problems)
                result.files_bad.append(source)
                continue
            file_watch = result.watches.get(watch_id)
            if file_watch is not None:
                result.problems.append(Problem(
                    file_watch.file, 1, 1, "",
                    f"watch id {watch_id!r} is also a stored watch ({source}, PUT _watcher/watch/{watch_id}): the "
                    f"stored watch runs and this file's definition does not; rename it, or DELETE "
                    f"_watcher/watch/{watch_id} to run the file's"))
                if file_watch.file in result.files_ok:
                    result.files_ok.remove(file_watch.file)
                result.files_bad.append(file_watch.file)
            result.watches[watch_id] = watch
            result.files_ok.append(source)

    def remember(self, item: StoredWatch | None, watch_id: str) -> None:
        """Take a write of this daemon into account at once (``item`` None: deleted), so that the
        next :meth:`poll` does not report it as a change."""
        with self._lock:
            if item is None:
                self._known.pop(watch_id, None)
            else:
                self._known[watch_id] = item


def _versions(watches: Mapping[str, StoredWatch]) -> dict[str, tuple[int, int]]:
    return {watch_id: (item.seq_no, item.primary_term) for watch_id, item in watches.items()}
