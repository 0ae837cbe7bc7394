"""The state index: one document per watch, so a restart continues where the last process stopped.

Index ``<prefix>-state`` (explicit mapping, ``dynamic: false``: :data:`watcher.es.indices.STATE`); the
document ``_id`` is the watch id:

* ``watch_id`` (keyword), ``updated_at`` (date);
* ``active`` (boolean): the watch is active (``watcher activate|deactivate``); authoritative over
  ``status.state.active``, which is written equal to it;
* ``last_window_end`` (date): for rules, the end of the last time window fully evaluated — the next
  run starts there, so no range is left unchecked and none is checked twice (issue 5, item 2);
* ``status``: Watcher's status object (:class:`~watcher.model.status.WatchStatus` JSON), stored
  but not indexed;
* ``rule_state`` (stored, not indexed): what a rule keeps across runs — its type's state (new_term
  baselines, flatline's known keys, change's last values), firing keys for recovery, realert
  waits and pending aggregations (:mod:`watcher.engine.alerting`, :mod:`watcher.engine.ruletypes`);
* ``silences`` (stored, not indexed): ``{group key or "*": ISO until}``, written by
  ``watcher silence`` and only read by the daemon;
* ``warnings`` (stored, not indexed): the warnings of the watch's last run (its record's
  ``result.warnings``, each with the run's ``scheduled_time``), written by the daemon after every
  run — also a failed one, which does not advance progress — and shown by ``watcher status``.

Writes use optimistic concurrency (``if_seq_no``/``if_primary_term``, Elasticsearch
"Optimistic concurrency control"): two processes that loaded the same version cannot both save it;
the second gets :class:`StateConflict`. Reads by id are real-time; :meth:`StateStore.load_all`
refreshes first so it sees every acknowledged write.

Loads and saves of concurrent threads sharing a client share requests (group commit,
:mod:`watcher.es.groupcommit`): a lone load is one ``GET`` and a lone save one index request,
exactly as without batching; loads waiting at the same moment go as one ``_mget`` and saves as one
``_bulk`` (each item keeping its ``op_type: create`` or ``if_seq_no``/``if_primary_term``), and
each caller gets its own state, its own :class:`StateConflict` or its own error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from elasticsearch import ConflictError, NotFoundError

from watcher.errors import ClusterError
from watcher.es.groupcommit import get_document, index_document
from watcher.es.indices import STATE, ensure_index
from watcher.model.status import WatchStatus, merge_status
from watcher.support.datemath import format_iso_millis, parse_instant


class StateConflict(ClusterError):
    """The state document changed since it was loaded (another process saved it); reload and retry."""


@dataclasses.dataclass
class WatchState:
    """One watch's persisted state.

    Attributes:
        watch_id: the watch id (the document ``_id``).
        status: Watcher's status (throttle/ack per action, last checked/met).
        last_window_end: end of the last fully evaluated rule window (aware UTC), or None.
        active: the watch runs on its schedule.
        rule_state: a rule's state across runs (JSON; empty for watches and new rules).
        silences: ``{group key or "*": ISO-8601 until}`` from ``watcher silence``.
        warnings: the last run's warnings (``[{"type", "message", "scheduled_time", …numbers}]``,
            :mod:`watcher.engine.run_warnings`); empty when it had none.
        seq_no, primary_term: the version loaded or saved (None = never saved).
    """

    watch_id: str
    status: WatchStatus = dataclasses.field(default_factory=WatchStatus)
    last_window_end: dt.datetime | None = None
    active: bool = True
    rule_state: dict = dataclasses.field(default_factory=dict)
    silences: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    seq_no: int | None = None
    primary_term: int | None = None


class StateStore:
    """Watch state in ``<prefix>-state``.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.
        prefix: index prefix (``watcher`` → ``watcher-state``).
        clock: returns now (aware UTC) for ``updated_at``.
    """

    def __init__(self, es, prefix: str = "watcher", clock=None):
        self.es = es
        self.prefix = prefix
        self.index = STATE.name(prefix)
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def ensure(self) -> None:
        """Create the index with its mapping if it does not exist (idempotent; mapping updated if it does).

        See :func:`watcher.es.indices.ensure_index` (mapping: :data:`watcher.es.indices.STATE_MAPPINGS`)."""
        ensure_index(self.es, STATE, self.prefix)

    def load(self, watch_id: str) -> WatchState | None:
        """The state of ``watch_id`` (real-time get), or None if never saved (or no state index).

        Concurrent loads share one ``_mget`` (module docstring).

        Raises:
            elasticsearch.ApiError / TransportError on other cluster errors.
        """
        try:
            response = get_document(self.es, self.index, watch_id)
        except NotFoundError:
            return None
        return _from_doc(response["_id"], response["_source"], response["_seq_no"], response["_primary_term"])

    def load_all(self) -> dict[str, WatchState]:
        """Every saved state by watch id (refreshes the index first; pages through all documents).

        Returns an empty dict when the index does not exist.
        """
        if not self.es.indices.exists(index=self.index):
            return {}
        self.es.indices.refresh(index=self.index)
        out: dict[str, WatchState] = {}
        after = None
        while True:
            kwargs = {"search_after": after} if after is not None else {}
            response = self.es.search(index=self.index, size=1000, sort=[{"watch_id": "asc"}],
                                      seq_no_primary_term=True, query={"match_all": {}}, **kwargs)
            hits = response["hits"]["hits"]
            for hit in hits:
                out[hit["_id"]] = _from_doc(hit["_id"], hit["_source"], hit["_seq_no"], hit["_primary_term"])
            if len(hits) < 1000:
                return out
            after = hits[-1]["sort"]

    def save(self, state: WatchState) -> WatchState:
        """Write ``state``; returns a copy carrying the new ``seq_no``/``primary_term``.

        A state never saved (``seq_no`` None) is created; it conflicts if another process created it
        meanwhile. Otherwise the write succeeds only if the stored version is still the loaded one.
        Concurrent saves share one ``_bulk`` (module docstring); no refresh, as a lone save.

        Raises:
            StateConflict: the document was created or changed by someone else (this save only,
                also when it went in a ``_bulk`` with others).
            elasticsearch.ApiError / TransportError on other cluster errors.
        """
        document = _to_doc(state, self._clock())
        try:
            if state.seq_no is None or state.primary_term is None:
                response = index_document(self.es, self.index, state.watch_id, document, op_type="create")
            else:
                response = index_document(self.es, self.index, state.watch_id, document,
                                          if_seq_no=state.seq_no, if_primary_term=state.primary_term)
        except ConflictError as error:
            raise StateConflict(f"state of watch [{state.watch_id}] was changed by another process; "
                                f"reload it and try again") from error
        return dataclasses.replace(state, seq_no=response["_seq_no"], primary_term=response["_primary_term"])

    def save_status(self, watch_id: str, before: WatchState | None, status: WatchStatus,
                    attempts: int = 5) -> WatchState:
        """Save the status a manual execution left (throttle, ack state, last checked/met) and
        nothing else: progress, rule state and silences stay as stored (Watcher's
        ``record_execution``; docs/watcher-api.md#execute).

        Args:
            before: the state the execution started from (None: never saved).
            status: the status after the execution.
            attempts: reload-and-merge rounds on :class:`StateConflict`; a change saved meanwhile
                by someone else keeps its ``active`` flag and its acks
                (:func:`~watcher.model.status.merge_status`).

        Returns:
            The state as saved.

        Raises:
            StateConflict: still conflicting after ``attempts`` rounds.
            elasticsearch.ApiError / TransportError on other cluster errors.
        """
        current = before or WatchState(watch_id, active=status.active)
        merged = dataclasses.replace(status, active=current.active)
        for _ in range(attempts):
            try:
                return self.save(dataclasses.replace(current, status=merged, active=merged.active))
            except StateConflict:
                fresh = self.load(watch_id)
                current = fresh or WatchState(watch_id, active=status.active)
                merged = merge_status(before.status if before else WatchStatus(), status, current.status)
                merged.active = current.active
        raise StateConflict(f"state of watch [{watch_id}] kept changing; gave up after {attempts} tries")

    def delete(self, watch_id: str) -> bool:
        """Delete the state of ``watch_id``; returns False if there was none."""
        try:
            self.es.delete(index=self.index, id=watch_id)
        except NotFoundError:
            return False
        return True


def _to_doc(state: WatchState, now: dt.datetime) -> dict:
    status = state.status.to_json()
    status.setdefault("state", {})["active"] = state.active
    return {
        "watch_id": state.watch_id,
        "updated_at": format_iso_millis(now),
        "active": state.active,
        "last_window_end": format_iso_millis(state.last_window_end) if state.last_window_end else None,
        "status": status,
        "rule_state": state.rule_state,
        "silences": state.silences,
        "warnings": state.warnings,
    }


def _from_doc(watch_id: str, source: dict, seq_no: int, primary_term: int) -> WatchState:
    status = WatchStatus.from_json(source.get("status"))
    active = bool(source.get("active", status.active))
    status.active = active
    window = source.get("last_window_end")
    return WatchState(watch_id=source.get("watch_id", watch_id), status=status,
                      last_window_end=parse_instant(window) if window else None, active=active,
                      rule_state=source.get("rule_state") or {}, silences=source.get("silences") or {},
                      warnings=list(source.get("warnings") or []), seq_no=seq_no, primary_term=primary_term)
