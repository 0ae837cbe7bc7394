"""Our API under ``/api/v1`` (docs/api.md): the loaded rules and watches with their status, one
watch's history, a dry-run execution, ack / activate / deactivate / silence, and the outbox.

GET routes need a ``read`` or ``admin`` token, changes an ``admin`` token (:mod:`watcher.http.deps`).
Changes go through :mod:`watcher.operations` (the same code as the CLI verbs), with the actor
``api:<token name>`` in their events. Every body is JSON; errors have the shape of
:mod:`watcher.http.errors`. Nothing returned holds a secret: definitions and records are masked
with the connectors' secrets (``***``), outbox requests hold placeholders instead of secrets, and values
of keys that name a credential (``password``, ``token``…) are shown as ``::es_redacted::``, as Watcher
shows a watch's passwords (docs/api.md#secrets).

The routes are plain functions (FastAPI runs them on its thread pool), since the Elasticsearch client
they use is synchronous.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from watcher import api, operations
from watcher.delivery.outbox import Outbox
from watcher.es.outbox_store import DEAD, DELIVERING, PENDING, STATES
from watcher.http.access import Principal
from watcher.http.deps import admin, daemon_of, reader
from watcher.http.errors import RequestProblem
from watcher.model.status import RECORD_STATES
from watcher.model.watch import Watch
from watcher.support.datemath import format_iso_millis, parse_instant

__all__ = ["CREDENTIAL_KEYS", "REDACTED", "hide_credentials", "router"]

# Keys whose values are credentials wherever they appear in a definition (docs/api.md#secrets).
CREDENTIAL_KEYS = frozenset({"password", "passwd", "token", "api_key", "apikey", "secret", "authorization",
                             "client_secret", "private_key"})
REDACTED = "::es_redacted::"  # Watcher's marker of a hidden password
WatchFilter = Literal["active", "inactive", "acked", "silenced", "warnings"]
ID_PATH = Path(min_length=1, max_length=512, description="The watch id (a rule's name).")


class ErrorDetail(BaseModel):
    type: str
    reason: str


class ErrorBody(BaseModel):
    """Every error (docs/api.md#errors)."""

    error: ErrorDetail
    status: int


def _responses(*statuses: int) -> dict:
    described = {400: "bad request (a parameter or the body)", 401: "no valid token", 403: "the token lacks the role",
                 404: "unknown watch or delivery", 409: "conflict"}
    return {status: {"model": ErrorBody, "description": described[status]} for status in (400, 401, *statuses)}


router = APIRouter(prefix="/api/v1", tags=["api"])


# -- models -----------------------------------------------------------------------------------------------

class ActionOut(BaseModel):
    """One action: its type as defined and its status (Watcher's action status)."""

    id: str
    type: str | None = Field(None, description="The action type (webhook, slack…); null when not defined any more.")
    ack_state: str = Field(description="awaits_successful_execution, ackable or acked.")
    ack_timestamp: str | None = None
    last_execution: str | None = None
    last_execution_successful: bool | None = None
    last_successful_execution: str | None = None


class ProblemOut(BaseModel):
    file: str
    line: int
    column: int
    path: str
    message: str


class InvalidFile(BaseModel):
    """A definition file that did not load, with its problems (file:line:column)."""

    file: str
    problems: list[ProblemOut]


class WatchSummary(BaseModel):
    """A loaded rule or watch and its status; times are ISO-8601 UTC."""

    id: str
    kind: str = Field(description="'watch' for a Watcher watch, else the rule type (threshold, frequency…).")
    file: str
    line: int = Field(description="Line of the definition in its file (one definition per file: 1).")
    schedule: dict = Field(description="The trigger as written ({'schedule': {...}}).")
    active: bool
    saved: bool = Field(description="Whether the daemon saved a state for it yet.")
    last_checked: str | None = None
    last_met_condition: str | None = None
    last_fired: str | None = Field(None, description="The latest successful action execution.")
    next_run: str | None = Field(None, description="The next scheduled time, when scheduled.")
    actions: list[ActionOut]
    silences: dict[str, str] = Field(description="{group key or '*' (whole rule): ISO until}, ended ones left out.")
    warnings: list[dict] = Field(description="The warnings of the last run.")


class WatchList(BaseModel):
    total: int = Field(description="How many watches match the filters (before paging).")
    offset: int
    size: int
    watches: list[WatchSummary]
    invalid: list[InvalidFile]
    connectors: dict[str, str] = Field(description="{connector name: type}.")


class WatchDetail(WatchSummary):
    status: dict = Field(description="Watcher's status object.")
    definition: dict = Field(description="The watch as loaded (a rule compiled to a watch), secrets masked.")
    rule: dict | None = Field(None, description="The rule as written, secrets masked; null for a watch.")


class History(BaseModel):
    watch_id: str
    records: list[dict] = Field(description="Watch records, newest first.")


class ExecuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(None, description="Scheduled time of the run (ISO-8601 with offset); default now.")
    action_mode: Literal["simulate", "skip"] = Field(
        "simulate", description="simulate: render every action, send nothing; skip: run no action.")


class Executed(BaseModel):
    watch_id: str
    record: dict = Field(description="The watch record (not written to the history).")


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[str] = Field(default_factory=list, description="Action ids; none or '_all' means every action.")


class AckedAction(BaseModel):
    result: Literal["acked", "already_acked", "not_ackable"]
    ack_state: str


class Acked(BaseModel):
    watch_id: str
    actions: dict[str, AckedAction]
    status: dict = Field(description="Watcher's status object afterwards.")


class Activation(BaseModel):
    watch_id: str
    active: bool
    changed: bool = Field(description="False when it already was in that state.")
    status: dict


class SilenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    for_: str | None = Field(None, alias="for", description="How long: a rule duration such as 30m, 2h, 1d.")
    until: str | None = Field(None, description="Until an ISO-8601 time with offset.")
    group: str | None = Field(None, min_length=1, description="One group key (a group_by value); default the whole rule.")


class Silences(BaseModel):
    watch_id: str
    group: str = Field(description="The key changed: a group key, or '*' for the whole rule.")
    changed: bool
    was_silenced: bool = Field(description="It had a silence that had not ended.")
    silences: dict[str, str]


class OutboxList(BaseModel):
    depth: dict[str, int] = Field(description="{state: deliveries}.")
    deliveries: list[dict] = Field(description="Most recently updated first; requests hold placeholders, not secrets.")


class Retried(BaseModel):
    id: str
    state: str


# -- helpers ----------------------------------------------------------------------------------------------

def _iso(value: dt.datetime | None) -> str | None:
    return format_iso_millis(value) if value is not None else None


def hide_credentials(value: Any) -> Any:
    """``value`` (JSON-like) with the non-empty value of every key in :data:`CREDENTIAL_KEYS` (any case,
    any depth) replaced by :data:`REDACTED`."""
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in CREDENTIAL_KEYS and v not in (None, "") else hide_credentials(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [hide_credentials(item) for item in value]
    return value


def _shown(daemon, value: Any) -> Any:
    """``value`` safe to answer: connector secrets and credential-named keys hidden."""
    return hide_credentials(daemon.masked(value))


def _defined(daemon) -> dict[str, operations.Defined]:
    return {watch_id: operations.Defined(tuple(action.id for action in watch.actions), watch.active,
                                         watch.rule is not None)
            for watch_id, watch in daemon.watches().items()}


def _prefix(daemon) -> str:
    return daemon.settings.index_prefix


def _es(daemon):
    if daemon.es is None:
        raise RequestProblem(503, "cluster_unavailable", "the daemon is not connected to the cluster yet",
                             {"Retry-After": "5"})
    return daemon.es


def _saved_state(daemon, watch_id: str):
    """The watch's saved state (None when never saved); a cluster error is raised, so the caller gets
    502/503 rather than a blank status standing for the one it could not read."""
    _es(daemon)
    return daemon.state.load(watch_id)


def _unknown_watch(watch_id: str, known) -> RequestProblem:
    return RequestProblem(404, "resource_not_found_exception",
                          f"no watch [{watch_id}]{operations.did_you_mean(watch_id, known)}")


def _loaded(daemon, watch_id: str) -> Watch:
    watch = daemon.watches().get(watch_id)
    if watch is None:
        raise _unknown_watch(watch_id, daemon.watches())
    return watch


def _actor(principal: Principal) -> str:
    return f"api:{principal.name}"


def _summary(daemon, watch: Watch, state, now: dt.datetime) -> dict:
    status = state.status if state is not None else None
    active = state.active if state is not None else watch.active
    ids = list(dict.fromkeys([*(a.id for a in watch.actions), *(status.actions if status else {})]))
    actions = []
    for action_id in ids:
        action = status.actions.get(action_id) if status is not None else None
        shown = action.to_json() if action is not None else {}
        defined = watch.action(action_id)
        actions.append(ActionOut(
            id=action_id, type=defined.type if defined is not None else None,
            ack_state=(shown.get("ack") or {}).get("state", "awaits_successful_execution"),
            ack_timestamp=(shown.get("ack") or {}).get("timestamp"),
            last_execution=_iso(action.last_execution) if action else None,
            last_execution_successful=action.last_execution_successful if action and action.last_execution else None,
            last_successful_execution=_iso(action.last_successful_execution) if action else None))
    fired = [a.last_successful_execution for a in (status.actions.values() if status else ())
             if a.last_successful_execution is not None]
    silences = {key: until for key, until in (state.silences if state is not None else {}).items()
                if parse_instant(until) > now}
    return {
        "id": watch.id, "kind": watch.rule.type if watch.rule is not None else "watch", "file": watch.file, "line": 1,
        "schedule": _shown(daemon, watch.trigger.body or {}), "active": active,
        "saved": state is not None and state.seq_no is not None,
        "last_checked": _iso(status.last_checked) if status else None,
        "last_met_condition": _iso(status.last_met_condition) if status else None,
        "last_fired": _iso(max(fired)) if fired else None, "next_run": _iso(daemon.next_run(watch.id)),
        "actions": actions, "silences": silences, "warnings": list(state.warnings) if state is not None else [],
    }


def _matches(summary: dict, q: str | None, wanted: str | None) -> bool:
    if q and q.lower() not in summary["id"].lower():
        return False
    if wanted == "active":
        return summary["active"]
    if wanted == "inactive":
        return not summary["active"]
    if wanted == "acked":
        return any(a.ack_state == "acked" for a in summary["actions"])
    if wanted == "silenced":
        return bool(summary["silences"])
    if wanted == "warnings":
        return bool(summary["warnings"])
    return True


def _status_json(state) -> dict:
    status = state.status.to_json()
    status["state"]["active"] = state.active
    return status


def _operation_problem(error: operations.OperationError) -> RequestProblem:
    if isinstance(error, operations.UnknownWatch):
        return _unknown_watch(error.watch_id, error.known)
    if isinstance(error, (operations.UnknownAction, operations.BadValue)):
        return RequestProblem(400, "illegal_argument_exception", str(error))
    if isinstance(error, operations.UnknownDelivery):
        return RequestProblem(404, "resource_not_found_exception", str(error))
    return RequestProblem(409, "version_conflict_engine_exception", str(error))


def _outbox(daemon) -> Outbox:
    return daemon.outbox or Outbox(_es(daemon), _prefix(daemon))  # admin use only: no worker is started


# -- routes -----------------------------------------------------------------------------------------------

@router.get("/watches", response_model=WatchList, summary="The loaded rules and watches with their status",
            responses=_responses())
def list_watches(request: Request, _caller: Principal = Depends(reader),
                 offset: int = Query(0, ge=0, le=100_000, description="Watches to skip (sorted by id)."),
                 size: int = Query(100, ge=1, le=1000, description="Watches to return."),
                 q: str | None = Query(None, max_length=512, description="Keep ids containing this (any case)."),
                 state: WatchFilter | None = Query(None, description="Keep only active, inactive, acked (an action "
                                                                     "acked), silenced, or with warnings.")) -> dict:
    """Every rule and watch the daemon loaded, sorted by id, with status; the files that did not load."""
    daemon = daemon_of(request)
    watches = daemon.watches()
    states = api.status(_es(daemon), index_prefix=_prefix(daemon)) if watches else {}
    now = dt.datetime.now(dt.timezone.utc)
    found = [s for s in (_summary(daemon, watches[i], states.get(i), now) for i in sorted(watches))
             if _matches(s, q, state)]
    problems: dict[str, list] = {}
    for problem in daemon.definition_problems():
        problems.setdefault(problem.file, []).append(ProblemOut(file=problem.file, line=problem.line,
                                                                column=problem.column, path=problem.path,
                                                                message=problem.message))
    invalid = [InvalidFile(file=file, problems=problems.get(file, [])) for file in daemon.invalid_files()]
    return {"total": len(found), "offset": offset, "size": size, "watches": found[offset:offset + size],
            "invalid": invalid, "connectors": daemon.connector_types()}


@router.get("/watches/{watch_id}", response_model=WatchDetail, summary="One rule or watch, with its definition",
            responses=_responses(404))
def get_watch(request: Request, watch_id: str = ID_PATH, _caller: Principal = Depends(reader)) -> dict:
    daemon = daemon_of(request)
    watch = _loaded(daemon, watch_id)
    state = _saved_state(daemon, watch_id)
    summary = _summary(daemon, watch, state, dt.datetime.now(dt.timezone.utc))
    status = _status_json(state) if state is not None else _status_json(operations.new_state(
        watch_id, operations.Defined(active=watch.active)))
    return {**summary, "status": status, "definition": _shown(daemon, watch.body or {}),
            "rule": _shown(daemon, watch.rule.source) if watch.rule is not None else None}


@router.get("/watches/{watch_id}/history", response_model=History, summary="A watch's records, newest first",
            responses=_responses(404))
def get_history(request: Request, watch_id: str = ID_PATH, _caller: Principal = Depends(reader),
                size: int = Query(20, ge=1, le=1000), state: Literal[RECORD_STATES] | None = Query(None)) -> dict:
    """Records of the watch from ``<prefix>-history-*`` (also of a watch no longer loaded)."""
    daemon = daemon_of(request)
    records = api.history(_es(daemon), watch_id, index_prefix=_prefix(daemon), size=size, state=state)
    if not records and watch_id not in daemon.watches() and not api.history(_es(daemon), watch_id,
                                                                            index_prefix=_prefix(daemon), size=1):
        raise _unknown_watch(watch_id, daemon.watches())
    return {"watch_id": watch_id, "records": _shown(daemon, records)}


@router.post("/watches/{watch_id}/_execute", response_model=Executed, summary="Dry-run a watch now (nothing sent)",
             responses=_responses(403, 404))
def execute_watch(request: Request, watch_id: str = ID_PATH, body: ExecuteBody | None = Body(None),
                  _caller: Principal = Depends(admin)) -> dict:
    """Run the watch once from its saved state (rule state, silences), as scheduled at ``at``; every
    action is simulated (rendered, not sent) or skipped. Nothing is saved or written to the history."""
    daemon = daemon_of(request)
    watch = _loaded(daemon, watch_id)
    body = body or ExecuteBody()
    es = _es(daemon)
    record = api.execute(watch, es, at=body.at.astimezone(dt.timezone.utc) if body.at else None,
                         action_mode=body.action_mode, connectors=daemon.connectors,
                         state=_saved_state(daemon, watch_id))
    return {"watch_id": watch_id, "record": _shown(daemon, record)}


@router.post("/watches/{watch_id}/_ack", response_model=Acked, summary="Acknowledge actions (Watcher's ack)",
             responses=_responses(403, 404, 409))
def ack_watch(request: Request, watch_id: str = ID_PATH, body: AckBody | None = Body(None),
              caller: Principal = Depends(admin)) -> dict:
    daemon = daemon_of(request)
    try:
        result = operations.ack(_es(daemon), _prefix(daemon), watch_id, (body or AckBody()).actions,
                                actor=_actor(caller), defined=_defined(daemon))
    except operations.OperationError as error:
        raise _operation_problem(error) from None
    return {"watch_id": watch_id, "status": _status_json(result.state),
            "actions": {a: {"result": done.result, "ack_state": done.ack_state} for a, done in result.actions.items()}}


def _set_active(request: Request, watch_id: str, active: bool, caller: Principal) -> dict:
    daemon = daemon_of(request)
    try:
        result = operations.set_active(_es(daemon), _prefix(daemon), watch_id, active, actor=_actor(caller),
                                       defined=_defined(daemon))
    except operations.OperationError as error:
        raise _operation_problem(error) from None
    return {"watch_id": watch_id, "active": result.state.active, "changed": result.changed,
            "status": _status_json(result.state)}


@router.post("/watches/{watch_id}/_activate", response_model=Activation, summary="Activate a watch",
             responses=_responses(403, 404, 409))
def activate_watch(request: Request, watch_id: str = ID_PATH, caller: Principal = Depends(admin)) -> dict:
    """The daemon runs it on its schedule again, from its next tick."""
    return _set_active(request, watch_id, True, caller)


@router.post("/watches/{watch_id}/_deactivate", response_model=Activation, summary="Deactivate a watch",
             responses=_responses(403, 404, 409))
def deactivate_watch(request: Request, watch_id: str = ID_PATH, caller: Principal = Depends(admin)) -> dict:
    """The daemon stops running it (from its next tick) until it is activated."""
    return _set_active(request, watch_id, False, caller)


def _silences(result: operations.SilenceResult) -> dict:
    return {"watch_id": result.watch_id, "group": result.group, "changed": result.changed,
            "was_silenced": result.was_silenced, "silences": result.silences}


@router.post("/watches/{watch_id}/_silence", response_model=Silences, summary="Silence a rule or one group key",
             responses=_responses(403, 404, 409))
def silence_watch(request: Request, body: SilenceBody, watch_id: str = ID_PATH,
                  caller: Principal = Depends(admin)) -> dict:
    """Its matches send no alerts and no recoveries until the silence ends (``for`` or ``until``)."""
    daemon = daemon_of(request)
    try:
        until = operations.silence_end(duration=body.for_, until=body.until, now=dt.datetime.now(dt.timezone.utc))
        result = operations.silence(_es(daemon), _prefix(daemon), watch_id, until, group=body.group,
                                    actor=_actor(caller), defined=_defined(daemon))
    except operations.OperationError as error:
        raise _operation_problem(error) from None
    return _silences(result)


@router.delete("/watches/{watch_id}/_silence", response_model=Silences, summary="Lift a silence",
               responses=_responses(403, 404, 409))
def unsilence_watch(request: Request, watch_id: str = ID_PATH,
                    group: str | None = Query(None, min_length=1, max_length=512,
                                              description="The group key; default the whole rule."),
                    caller: Principal = Depends(admin)) -> dict:
    daemon = daemon_of(request)
    try:
        result = operations.unsilence(_es(daemon), _prefix(daemon), watch_id, group=group, actor=_actor(caller),
                                      defined=_defined(daemon))
    except operations.OperationError as error:
        raise _operation_problem(error) from None
    return _silences(result)


@router.get("/outbox", response_model=OutboxList, summary="Deliveries in the outbox", responses=_responses())
def list_outbox(request: Request, _caller: Principal = Depends(reader),
                state: Literal[(*STATES, "all")] | None = Query(
                    None, description="Only this state; default pending, delivering and dead."),
                size: int = Query(50, ge=1, le=1000)) -> dict:
    daemon = daemon_of(request)
    box = _outbox(daemon)
    if state == "all":
        deliveries = box.list_deliveries(None, size)
    elif state is not None:
        deliveries = box.list_deliveries(state, size)
    else:
        deliveries = [d for s in (PENDING, DELIVERING, DEAD) for d in box.list_deliveries(s, size)]
        deliveries.sort(key=lambda d: d.get("updated_at") or "", reverse=True)
        deliveries = deliveries[:size]
    return {"depth": box.depth(), "deliveries": _shown(daemon, deliveries)}


@router.post("/outbox/{delivery_id}/_retry", response_model=Retried, summary="Send a dead delivery again",
             responses=_responses(403, 404, 409))
def retry_delivery(request: Request, delivery_id: str = Path(min_length=1, max_length=512),
                   _caller: Principal = Depends(admin)) -> dict:
    """dead → pending with its attempts reset; the daemon sends it at once (or at its next poll)."""
    daemon = daemon_of(request)
    try:
        result = operations.retry_dead_delivery(_outbox(daemon), delivery_id)
    except operations.OperationError as error:
        raise _operation_problem(error) from None
    return {"id": result.delivery_id, "state": result.state}

