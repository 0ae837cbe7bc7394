"""Elastic Watcher's REST API under ``/_watcher``, for the tools and scripts that speak it
(elasticsearch-py's ``watcher`` namespace, curl scripts): put, get, delete, execute, ack, activate,
deactivate, stats and query watches, with Watcher's paths, parameters, response shapes and error
bodies (docs/watcher-api.md says what is supported and where we differ).

Every response under ``/_watcher`` carries ``X-Elastic-Product: Elasticsearch`` (:class:`ProductHeader`),
which Elasticsearch's official clients require before they read an answer. Reads need a token
(``read`` or ``admin``); changes and executions need ``admin``.

Semantics: Elastic's "Put watch", "Get watch", "Delete watch", "Execute watch", "Ack watch",
"Activate watch", "Deactivate watch", "Get Watcher stats" and "Query watches" API pages, in our
words in docs/semantics.md#execute-api, docs/semantics.md#status-and-ack and docs/watcher-api.md.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import unicodedata
from typing import Any, Literal

import pydantic
from elasticsearch import ApiError, TransportError
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from watcher import operations
from watcher.daemon.stored import WatchIdTaken
from watcher.engine.execute import ACTION_MODES, ExecuteOptions
from watcher.es.watch_store import StoredWatchConflict
from watcher.http.access import Principal
from watcher.http.deps import admin, daemon_of, reader
from watcher.http.errors import RequestProblem
from watcher.model.problems import DefinitionError
from watcher.model.requests import REDACTED
from watcher.model.source import MAX_DEPTH, SourceError, check_size
from watcher.model.status import WatchStatus
from watcher.support.datemath import DateMathError, parse_instant, resolve, utc_now_millis

__all__ = ["ProductHeader", "redact", "router"]

router = APIRouter(prefix="/_watcher", tags=["Elastic Watcher API"])
PRODUCT_HEADER = (b"x-elastic-product", b"Elasticsearch")
INLINE_ID = "_inlined_"
MAX_ID_BYTES = 512  # Elasticsearch's limit of a document id
STATS_METRICS = {"_all", "queued_watches", "current_watches", "pending_watches"}
SECRET_KEYS = {"password"}
SECRET_HEADERS = {"authorization"}
WATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "Watcher's watch definition: trigger, input, condition, transform, actions, "
                                     "metadata, throttle_period"}}}}}
EXECUTE_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "trigger_data": {"type": "object", "properties": {"triggered_time": {"type": "string"},
                                                      "scheduled_time": {"type": "string"}}},
    "ignore_condition": {"type": "boolean"}, "alternative_input": {"type": "object"},
    "action_modes": {"type": "object", "additionalProperties": {"type": "string", "enum": list(ACTION_MODES)}},
    "record_execution": {"type": "boolean"}, "watch": {"type": "object"}}}}}}}
QUERY_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "from": {"type": "integer", "minimum": 0}, "size": {"type": "integer", "minimum": 0},
    "query": {"type": "object"}}}}}}}


def _put_and_post(path: str, **options):
    """Register a route for PUT and POST, as Watcher accepts both (one OpenAPI operation each)."""
    def register(function):
        return router.put(path, **options)(router.post(path, **options)(function))
    return register


class ProductHeader:
    """ASGI middleware: ``X-Elastic-Product: Elasticsearch`` on every response under ``/_watcher``
    (errors included), which elasticsearch-py checks on each answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith("/_watcher"):
            return await self.app(scope, receive, send)

        async def with_header(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), PRODUCT_HEADER]}
            await send(message)

        return await self.app(scope, receive, with_header)


def redact(value: Any) -> Any:
    """A copy of a watch body with its secrets as ``::es_redacted::``, as Watcher's APIs show them:
    every ``password`` value (basic auth of http inputs, webhooks, email attachments) and every
    ``Authorization`` header value."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS and item is not None:
                out[key] = REDACTED
            elif key == "headers" and isinstance(item, dict):
                out[key] = {name: REDACTED if str(name).lower() in SECRET_HEADERS else redact(v)
                            for name, v in item.items()}
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


# --- request bodies ---------------------------------------------------------------------------------

class _TriggerData(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    triggered_time: str | int | None = None
    scheduled_time: str | int | None = None


class _ExecuteBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    trigger_data: _TriggerData = _TriggerData()
    ignore_condition: bool = False
    alternative_input: dict | None = None
    action_modes: dict[str, Literal[ACTION_MODES]] = {}
    record_execution: bool = False
    watch: dict | None = None


class _QueryBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)
    from_: int = pydantic.Field(0, alias="from", ge=0)
    size: int = pydantic.Field(10, ge=0, le=10_000)
    query: dict | None = None


def _bad_request(reason: str, type: str = "parse_exception") -> RequestProblem:
    return RequestProblem(400, type, reason)


async def _json_body(request: Request, required: bool) -> tuple[str, Any]:
    """The raw text and parsed JSON of the request body (None when empty and not required); a body
    nested more than :data:`~watcher.model.source.MAX_DEPTH` levels is refused, as a definition file is."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _bad_request("request body is required: a JSON object")
        return "", None
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except RecursionError:
        raise _bad_request(f"request body: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as error:
        raise _bad_request(f"request body is not JSON: {error}") from None
    try:
        check_size(data, "request body")
    except SourceError as error:
        raise _bad_request(f"request body: {error.message}") from None
    return text, data


def _check_id(watch_id: str) -> None:
    """Refuse an id Elasticsearch's put watch refuses (whitespace; more than 512 bytes, the limit of a
    document id) and control characters, which would garble log lines (docs/watcher-api.md#stored-watches)."""
    problem = None
    if len(watch_id.encode("utf-8")) > MAX_ID_BYTES:
        problem = f"watch id is too long: at most {MAX_ID_BYTES} bytes (UTF-8), found {len(watch_id.encode('utf-8'))}"
    elif any(char.isspace() for char in watch_id):
        problem = f"watch id [{_escaped(watch_id)}] contains whitespace"
    elif any(unicodedata.category(char) == "Cc" for char in watch_id):
        problem = f"watch id [{_escaped(watch_id)}] contains a control character"
    if problem:
        raise _bad_request(problem, "action_request_validation_exception")


def _escaped(text: str) -> str:
    """``text`` with control characters and whitespace other than a space as Python escapes."""
    return "".join(char if char == " " or char.isprintable() else repr(char)[1:-1] for char in text)


def _model(model: type[pydantic.BaseModel], data: Any):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad_request("expected a JSON object as the request body")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise _bad_request(f"[{field or 'body'}]: {first['msg']}") from None


def _definition_problem(watch_id: str, error: DefinitionError) -> RequestProblem:
    details = "; ".join(f"[{problem.path}] {problem.message}" if problem.path else problem.message
                        for problem in error.problems)
    return _bad_request(f"could not parse watch [{watch_id}]: {details}")


def _cluster_problem(error: Exception) -> RequestProblem:
    status = getattr(error, "status_code", None) or getattr(getattr(error, "meta", None), "status", None)
    if isinstance(status, int) and 400 <= status < 600 and status != 401 and status != 403:
        return RequestProblem(503 if status >= 500 or status == 429 else status, "cluster_error",
                              f"the cluster answered {status}: {type(error).__name__}")
    return RequestProblem(503, "cluster_unavailable", f"the cluster could not be reached: {type(error).__name__}")


async def _call(function, *args, **kwargs):
    """Run blocking cluster work on the thread pool; cluster errors answer 503 (or their 4xx)."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except (ApiError, TransportError) as error:
        raise _cluster_problem(error) from None


def _not_found(watch_id: str) -> RequestProblem:
    return RequestProblem(404, "resource_not_found_exception", f"Watch with id [{watch_id}] does not exist")


def _defined(daemon) -> dict[str, operations.Defined]:
    return {watch_id: operations.Defined(tuple(action.id for action in watch.actions), watch.active)
            for watch_id, watch in daemon.watches().items()}


def _status_json(state, watch=None) -> dict:
    """Watcher's status object of a watch's saved state (a fresh one when never saved); every
    action of ``watch`` is listed, ``awaits_successful_execution`` until it first ran, as Watcher
    shows it."""
    status = copy.deepcopy(state.status) if state is not None else WatchStatus()
    for action in getattr(watch, "actions", ()):
        status.action(action.id)
    document = status.to_json()
    if state is not None:
        document["state"]["active"] = state.active
    return document


def _actor(principal: Principal) -> str:
    return f"api:{principal.name}"


def _origin(daemon, watch) -> dict:
    if daemon.stored.is_stored(watch):
        return {"type": "stored", "index": daemon.stored.store.index}
    return {"type": "file", "file": watch.file}


# --- put, get, delete -----------------------------------------------------------------------------------

@_put_and_post("/watch/{watch_id}/_execute", summary="Execute a watch",
                  openapi_extra=EXECUTE_BODY)
async def execute_watch(watch_id: str, request: Request, debug: bool = False,
                        ignore_condition: bool | None = None, record_execution: bool | None = None,
                        principal: Principal = Depends(admin)) -> JSONResponse:
    """Run a watch now (docs/watcher-api.md#execute): ``{"_id": record id, "watch_record": {…}}``."""
    return await _execute(request, watch_id, debug, ignore_condition, record_execution)


@_put_and_post("/watch/_execute", summary="Execute an inline watch",
                  openapi_extra=EXECUTE_BODY)
async def execute_inline(request: Request, debug: bool = False, ignore_condition: bool | None = None,
                         record_execution: bool | None = None,
                         principal: Principal = Depends(admin)) -> JSONResponse:
    """Run the watch given in the body's ``watch`` (id ``_inlined_``; never recorded)."""
    return await _execute(request, None, debug, ignore_condition, record_execution)


@_put_and_post("/watch/{watch_id}", summary="Put a watch", openapi_extra=WATCH_BODY)
async def put_watch(watch_id: str, request: Request, active: bool = True,
                    if_seq_no: int | None = Query(None, ge=0), if_primary_term: int | None = Query(None, ge=1),
                    principal: Principal = Depends(admin)) -> JSONResponse:
    """Store a watch and schedule it (docs/watcher-api.md#stored-watches): ``{"_id", "_version",
    "_seq_no", "_primary_term", "created"}``, 201 when created. 409 when a file defines the id or
    the stored version is not ``if_seq_no``/``if_primary_term``; 400 naming the field of a bad body."""
    _check_id(watch_id)
    if (if_seq_no is None) != (if_primary_term is None):
        raise _bad_request("if_seq_no and if_primary_term go together: give both or neither",
                           "action_request_validation_exception")
    text, data = await _json_body(request, required=True)
    if not isinstance(data, dict):
        raise _bad_request(f"could not parse watch [{watch_id}]: expected a JSON object")
    daemon = daemon_of(request)
    try:
        watch = daemon.check_watch(watch_id, text)
    except WatchIdTaken as error:
        raise RequestProblem(409, "version_conflict_engine_exception", str(error)) from None
    except DefinitionError as error:
        raise _definition_problem(watch_id, error) from None
    try:
        item = await _call(daemon.store_watch, watch, if_seq_no=if_seq_no, if_primary_term=if_primary_term)
    except StoredWatchConflict as error:
        raise RequestProblem(409, "version_conflict_engine_exception", str(error)) from None
    await _call(operations.set_active, daemon.es, daemon.settings.index_prefix, watch_id, active,
                actor=_actor(principal), defined={**_defined(daemon), watch_id: operations.Defined()})
    await _call(daemon.reload, (daemon.stored.source(watch_id),))
    body = {"_id": watch_id, "_version": item.version, "_seq_no": item.seq_no, "_primary_term": item.primary_term,
            "created": item.created}
    return JSONResponse(body, status_code=201 if item.created else 200)


@router.get("/watch/{watch_id}", summary="Get a watch")
async def get_watch(watch_id: str, request: Request, principal: Principal = Depends(reader)) -> JSONResponse:
    """A stored or file watch with its status (secrets redacted); 404 ``{"found": false}`` when unknown.
    A file watch has no ``_seq_no``/``_primary_term`` and says its file under ``origin``."""
    daemon = daemon_of(request)
    item = await _call(daemon.stored.store.get, watch_id)
    watch = daemon.watches().get(watch_id)
    if item is None and (watch is None or daemon.stored.is_stored(watch)):
        return JSONResponse({"found": False, "_id": watch_id}, status_code=404)
    state = await _call(daemon.state.load, watch_id)
    if item is not None:
        return JSONResponse({"found": True, "_id": watch_id, "_version": item.version, "_seq_no": item.seq_no,
                             "_primary_term": item.primary_term, "status": _status_json(state, watch),
                             "watch": redact(item.body)})
    return JSONResponse({"found": True, "_id": watch_id, "status": _status_json(state, watch),
                         "watch": redact(watch.body), "origin": _origin(daemon, watch)})


@router.delete("/watch/{watch_id}", summary="Delete a watch")
async def delete_watch(watch_id: str, request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """Delete a stored watch and its schedule (state and history stay): ``{"_id", "_version",
    "found"}``; 404 with ``found: false`` when none is stored; 409 for a watch defined by a file."""
    daemon = daemon_of(request)
    item = await _call(daemon.delete_watch, watch_id)
    if item is None:
        watch = daemon.watches().get(watch_id)
        if watch is not None and not daemon.stored.is_stored(watch):
            raise RequestProblem(409, "illegal_argument_exception",
                                 f"watch [{watch_id}] is defined by the file {watch.file}: delete or rename the file")
        return JSONResponse({"_id": watch_id, "_version": 1, "found": False}, status_code=404)
    return JSONResponse({"_id": watch_id, "_version": item.version, "found": True})


# --- execute --------------------------------------------------------------------------------------------

def _instant(value: str | int | None, now: dt.datetime, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int):
            return parse_instant(value)
        return resolve(value, now)
    except (DateMathError, ValueError, OverflowError) as error:
        raise _bad_request(f"[trigger_data.{field}]: expected a date, date math such as now-5m, or epoch "
                           f"milliseconds, found {value!r} ({error})") from None


async def _execute(request: Request, watch_id: str | None, debug: bool, ignore_condition: bool | None,
                   record_execution: bool | None) -> JSONResponse:
    daemon = daemon_of(request)
    _, data = await _json_body(request, required=False)
    body = _model(_ExecuteBody, data)
    record = body.record_execution if record_execution is None else record_execution
    if watch_id is None:
        if body.watch is None:
            raise _bad_request("the request body must hold the watch to execute under [watch]",
                               "action_request_validation_exception")
        if record:
            raise _bad_request("the execution of an inline watch cannot be recorded",
                               "action_request_validation_exception")
        try:
            watch = daemon.check_watch(INLINE_ID, json.dumps(body.watch), stored=False)
        except DefinitionError as error:
            raise _definition_problem(INLINE_ID, error) from None
    else:
        if body.watch is not None:
            raise _bad_request("a watch id and an inline [watch] cannot both be given",
                               "action_request_validation_exception")
        watch = daemon.watches().get(watch_id)
        if watch is None:
            raise _not_found(watch_id)
    now = utc_now_millis()
    triggered = _instant(body.trigger_data.triggered_time, now, "triggered_time") or now
    scheduled = _instant(body.trigger_data.scheduled_time, now, "scheduled_time") or triggered
    options = ExecuteOptions(action_modes=dict(body.action_modes), default_mode="execute",
                             ignore_condition=body.ignore_condition if ignore_condition is None else ignore_condition,
                             alternative_input=body.alternative_input, trigger_type="manual")
    result = await _call(daemon.execute_manually, watch, options, triggered=triggered, scheduled=scheduled,
                         record_execution=record, inline=watch_id is None, debug=debug)
    record_id = result.pop("_id")
    return JSONResponse({"_id": record_id, "watch_record": result})


# --- ack, activate, deactivate --------------------------------------------------------------------------

async def _operate(request: Request, function, watch_id: str, *args, principal: Principal) -> JSONResponse:
    daemon = daemon_of(request)
    try:
        result = await _call(function, daemon.es, daemon.settings.index_prefix, watch_id, *args,
                             actor=_actor(principal), defined=_defined(daemon))
    except operations.UnknownWatch:
        raise _not_found(watch_id) from None
    except operations.UnknownAction as error:
        raise RequestProblem(404, "resource_not_found_exception", str(error)) from None
    except operations.StateKeptChanging as error:
        raise RequestProblem(409, "version_conflict_engine_exception", str(error)) from None
    return JSONResponse({"status": _status_json(result.state, daemon.watches().get(watch_id))})


@_put_and_post("/watch/{watch_id}/_ack", summary="Acknowledge every action of a watch")
async def ack_watch(watch_id: str, request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """Ack every ``ackable`` action: ``{"status": {…}}`` (Watcher's status shape)."""
    return await _operate(request, operations.ack, watch_id, (), principal=principal)


@_put_and_post("/watch/{watch_id}/_ack/{action_ids}", summary="Acknowledge actions of a watch")
async def ack_actions(watch_id: str, action_ids: str, request: Request,
                      principal: Principal = Depends(admin)) -> JSONResponse:
    """Ack the comma-separated ``action_ids`` (``_all``: every action)."""
    ids = [action_id.strip() for action_id in action_ids.split(",") if action_id.strip()]
    return await _operate(request, operations.ack, watch_id, ids, principal=principal)


@_put_and_post("/watch/{watch_id}/_activate", summary="Activate a watch")
async def activate_watch(watch_id: str, request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """``status.state.active`` becomes true (its timestamp changes only if it was false)."""
    return await _operate(request, operations.set_active, watch_id, True, principal=principal)


@_put_and_post("/watch/{watch_id}/_deactivate", summary="Deactivate a watch")
async def deactivate_watch(watch_id: str, request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    """``status.state.active`` becomes false: the daemon skips the watch's ticks until activated."""
    return await _operate(request, operations.set_active, watch_id, False, principal=principal)


# --- stats and query ------------------------------------------------------------------------------------

@router.get("/stats", summary="Watcher stats")
@router.get("/stats/{metric}", summary="Watcher stats", include_in_schema=False)
def stats(request: Request, metric: str | None = None, principal: Principal = Depends(reader)) -> JSONResponse:
    """Watcher's stats shape with what this daemon knows: its state, the watches it schedules and
    its worker pool (docs/watcher-api.md#stats)."""
    if metric is not None and not set(metric.split(",")) <= STATS_METRICS:
        raise _bad_request(f"expected a metric among {', '.join(sorted(STATS_METRICS))}, found [{metric}]",
                           "illegal_argument_exception")
    daemon = daemon_of(request)
    scheduler = daemon.scheduler
    state = "stopping" if daemon.stopping else ("started" if scheduler is not None else "starting")
    node = {"node_id": "watcher", "watcher_state": state,
            "watch_count": len(scheduler.watch_ids()) if scheduler is not None else 0,
            "execution_thread_pool": {"max_size": daemon.settings.workers}}
    return JSONResponse({"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": "watcher",
                         "manually_stopped": False, "stats": [node]})


@router.get("/_query/watches", summary="Query watches", openapi_extra=QUERY_BODY)
@router.post("/_query/watches", summary="Query watches", openapi_extra=QUERY_BODY)
async def query_watches(request: Request, principal: Principal = Depends(reader)) -> JSONResponse:
    """Stored and file watches matching ``query`` (``match_all``, ``ids``, ``term``/``terms`` on
    ``_id``, ``metadata.*`` or ``status.state.active``, ``bool`` of those), by id, ``from``/``size``:
    ``{"count", "watches": [{"_id", "watch", "status", "_seq_no", "_primary_term", "origin"}]}``."""
    daemon = daemon_of(request)
    _, data = await _json_body(request, required=False)
    body = _model(_QueryBody, data)
    stored = await _call(daemon.stored.store.load_all)
    states = await _call(daemon.state.load_all)
    entries = []
    for watch_id, watch in sorted(daemon.watches().items()):
        state = states.get(watch_id)
        entry = {"_id": watch_id, "watch": redact(watch.body), "status": _status_json(state, watch),
                 "origin": _origin(daemon, watch)}
        if watch_id in stored and daemon.stored.is_stored(watch):
            entry.update(_seq_no=stored[watch_id].seq_no, _primary_term=stored[watch_id].primary_term)
        if _matches(body.query or {"match_all": {}}, entry):
            entries.append(entry)
    return JSONResponse({"count": len(entries), "watches": entries[body.from_:body.from_ + body.size]})


def _field(entry: dict, path: str) -> Any:
    if path == "_id":
        return entry["_id"]
    node: Any = entry["status"] if path.startswith("status.") else entry["watch"]
    for part in path.removeprefix("status.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _matches(query: dict, entry: dict) -> bool:
    """Whether ``entry`` matches ``query`` (the subset of the query DSL documented on :func:`query_watches`).

    Raises:
        RequestProblem: 400 naming what is supported, for anything else.
    """
    if not isinstance(query, dict) or len(query) != 1:
        raise _bad_request("expected a query object with one clause such as {\"term\": {\"_id\": \"x\"}}",
                           "parsing_exception")
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "ids" and isinstance(spec, dict):
        return entry["_id"] in (spec.get("values") or [])
    if kind in ("term", "terms") and isinstance(spec, dict) and len(spec) == 1:
        (path, wanted), = spec.items()
        if path != "_id" and not path.startswith(("metadata.", "status.state.active")):
            raise _bad_request(f"[{kind}] on [{path}]: only _id, metadata.* and status.state.active can be "
                               "queried", "parsing_exception")
        if kind == "term":
            wanted = wanted.get("value") if isinstance(wanted, dict) else wanted
            return _field(entry, path) == wanted
        return _field(entry, path) in (wanted if isinstance(wanted, list) else [wanted])
    if kind == "bool" and isinstance(spec, dict):
        unknown = set(spec) - {"must", "filter", "should", "must_not"}
        if unknown:
            raise _bad_request(f"[bool] does not support [{sorted(unknown)[0]}]", "parsing_exception")

        def clauses(name):
            value = spec.get(name) or []
            return value if isinstance(value, list) else [value]
        should = clauses("should")
        return (all(_matches(q, entry) for q in [*clauses("must"), *clauses("filter")])
                and not any(_matches(q, entry) for q in clauses("must_not"))
                and (not should or any(_matches(q, entry) for q in should)))
    raise _bad_request(f"query [{kind}] is not supported here: use match_all, ids, term, terms or bool",
                       "parsing_exception")

