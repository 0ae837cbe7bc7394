"""The three ways to wait for events (docs/events.md#waiting), all for the ``read`` role, all with
the same filters (``watch``, ``kind``, ``group``, each repeatable) and the same event JSON
(:func:`watcher.http.hub.event_json`):

* ``GET /api/v1/events/stream`` — Server-Sent Events: ``id:`` the cursor, ``event:`` the kind,
  ``data:`` the JSON; ``Last-Event-ID`` or ``?after=`` resumes; heartbeat comments; a ``retry:``
  hint; when cut off, a ``cutoff`` event with the resume cursor, then the connection closes.
* ``GET /api/v1/events/ws`` — WebSocket: ``{"type": "event", "event": {…}}`` messages, ``ping``
  messages, a ``cutoff`` message then close code :data:`CUTOFF_CLOSE_CODE`; the client resumes
  with ``?after=`` or by sending ``{"after": CURSOR}`` at any time.
* ``GET /api/v1/events`` — long-poll: ``{"events": […], "cursor": …, "gap": …}``.

Without a cursor a stream starts at the end of the log; ``after=beginning`` (or ``0``) starts at
the oldest kept event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect

from watcher.es.events import Cursor, CursorError, EventFilter
from watcher.http.access import Principal
from watcher.http.api_v1 import ErrorBody
from watcher.http.deps import authenticate, daemon_of, reader
from watcher.http.errors import RequestProblem
from watcher.http.hub import GAP, HEARTBEAT, Hub, Subscriber
from watcher.model.events import KINDS

__all__ = ["CUTOFF_CLOSE_CODE", "SHUTDOWN_CLOSE_CODE", "EventOut", "EventsPage", "RETRY_MS", "hub_of", "router"]

router = APIRouter(prefix="/api/v1", tags=["events"])
RETRY_MS = 3000
SSE_BATCH = 256  # most queued events written to a client in one send
MAX_WAIT_S = 60.0
CUTOFF_CLOSE_CODE = 4000  # WebSocket close code after the cut-off message (docs/events.md#backpressure)
SHUTDOWN_CLOSE_CODE = 1012  # "service restart" (RFC 6455 registry): the daemon is stopping (docs/events.md#shutdown)
ERRORS = {status: {"model": ErrorBody, "description": description} for status, description in (
    (400, "a bad filter, cursor, wait or limit"), (401, "no valid token"),
    (410, "the cursor belongs to an event log that was created again"),
    (429, "this token holds its maximum of streams"),
    (503, "the server holds its maximum of streams, or the event log cannot be read yet"))}


class EventOut(pydantic.BaseModel):
    """One event (docs/events.md#fields); times ISO-8601 UTC with milliseconds."""

    cursor: str
    id: str
    kind: str
    watch_id: str
    group: str | None = None
    time: str
    record_id: str | None = None
    action_id: str | None = None
    delivery_id: str | None = None
    connector: str | None = None
    scheduled_time: str | None = None
    actor: str | None = None
    message: str = ""
    details: dict[str, Any] = {}


class EventsPage(pydantic.BaseModel):
    """A long-poll answer: ``events`` after the cursor asked for (oldest first), ``cursor`` to ask
    with next (the same one when there were none), ``gap`` True when retention deleted events
    after the cursor asked for."""

    events: list[EventOut]
    cursor: str
    gap: bool = False


def hub_of(connection) -> Hub:
    """The app's :class:`Hub`, made on first use (on the server's loop)."""
    state = connection.app.state
    hub = getattr(state, "events_hub", None)
    if hub is None:
        daemon = daemon_of(connection)
        hub = state.events_hub = Hub(lambda: daemon.events.log, state.config.streams, daemon.metrics)
        daemon.events.add_listener(hub.notify_threadsafe)
    return hub


def _filter(watch: list[str] | None, kind: list[str] | None, group: list[str] | None) -> EventFilter:
    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        raise RequestProblem(400, "illegal_argument_exception", f"kind: expected some of {', '.join(KINDS)}, "
                             f"found {', '.join(unknown)}")
    return EventFilter(tuple(watch or ()), tuple(kind or ()), tuple(group or ()))


def _cursor(text: str | None) -> Cursor | None:
    if text is None or not text.strip():
        return None
    try:
        return Cursor.parse(text)
    except CursorError as error:
        raise RequestProblem(400, "illegal_argument_exception", f"after: {error}") from None


Watches = Annotated[list[str] | None, Query(description="Only these watches/rules (repeatable).")]
Kinds = Annotated[list[str] | None, Query(description=f"Only these kinds (repeatable): {', '.join(KINDS)}.")]
Groups = Annotated[list[str] | None, Query(description="Only these group keys (repeatable).")]
After = Annotated[str | None, Query(description="Resume after this cursor; 'beginning' for the oldest kept event; "
                                                "absent: the end of the log.")]


@router.get("/events", response_model=EventsPage, summary="Events after a cursor, waiting for them (long-poll)",
            responses=ERRORS)
async def events(request: Request, principal: Annotated[Principal, Depends(reader)], watch: Watches = None,
                 kind: Kinds = None, group: Groups = None, after: After = None,
                 wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to hold the request "
                                              "when no event is there yet.")] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000, description="Most events answered.")] = 100) -> EventsPage:
    """Answers at once when events exist after ``after``, else holds the request up to ``wait``
    seconds and answers with what arrived, or none and the same cursor."""
    where, start = _filter(watch, kind, group), _cursor(after)
    hub = hub_of(request)
    hub.admit(principal.name)
    items, cursor, gap = await hub.page(where, start, limit, wait, principal.name)
    return EventsPage(events=[EventOut.model_validate_json(item.text) for item in items], cursor=str(cursor), gap=gap)


# -- Server-Sent Events ----------------------------------------------------------------------------------

def sse_frame(item) -> bytes:
    """One queue item as SSE text: an event, a heartbeat comment, or a ``gap`` notice."""
    if item is HEARTBEAT:
        return b": keep-alive\n\n"
    if item is GAP:
        return b"event: gap\ndata: {\"gap\":true}\n\n"
    return item.sse


class EventStream(Response):
    """The SSE response: sends the subscriber's queue until the client leaves or it is cut off
    (then the ``cutoff`` event and the end of the response; ``Connection: close``)."""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, subscriber: Subscriber):
        super().__init__(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", "Connection": "close"})
        self.raw_headers = [(name, value) for name, value in self.raw_headers if name != b"content-length"]
        self.hub = hub
        self.subscriber = subscriber

    async def __call__(self, scope, receive, send) -> None:
        subscriber = self.subscriber
        subscriber.task = asyncio.current_task()
        listener = asyncio.create_task(self._until_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True})
            while not subscriber.ending and not (subscriber.cut and subscriber.queue.empty()):
                frames = [sse_frame(await subscriber.queue.get())]
                while len(frames) < SSE_BATCH and not subscriber.queue.empty():  # one write for what is queued
                    frames.append(sse_frame(subscriber.queue.get_nowait()))
                await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
            if subscriber.ending:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                last = json.dumps({"cursor": str(subscriber.resume), "reason": "buffer_full"})
                await send({"type": "http.response.body", "body": f"event: cutoff\ndata: {last}\n\n".encode(),
                            "more_body": False})
        except asyncio.CancelledError:
            if subscriber.ending and not listener.done():  # the server is stopping: end the response cleanly
                asyncio.current_task().uncancel()
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif not (subscriber.hard_closed or listener.done()):
                raise
            else:
                asyncio.current_task().uncancel()  # the client left, or a cut-off client did not read: end here
        finally:
            listener.cancel()
            self.hub.unsubscribe(subscriber)

    async def _until_disconnect(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self.subscriber.task is not None:
            self.subscriber.task.cancel()


@router.get("/events/stream", summary="Live events as Server-Sent Events", response_class=Response,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "An event stream: id = cursor, event = kind, data = event JSON."},
                       **ERRORS})
async def stream(request: Request, principal: Annotated[Principal, Depends(reader)], watch: Watches = None,
                 kind: Kinds = None, group: Groups = None, after: After = None) -> Response:
    """Resumes from the ``Last-Event-ID`` header (what EventSource sends on reconnect) or ``after``."""
    where = _filter(watch, kind, group)
    start = _cursor(request.headers.get("last-event-id") or after)
    hub = hub_of(request)
    hub.admit(principal.name)
    subscriber = await hub.subscribe(where, start, "sse", principal.name)
    return EventStream(hub, subscriber)


# -- WebSocket ----------------------------------------------------------------------------------------------

@router.websocket("/events/ws")
async def websocket(socket: WebSocket, watch: Watches = None, kind: Kinds = None, group: Groups = None,
                    after: After = None) -> None:
    """Authenticated by the ``Authorization`` header of the upgrade request; an error before the
    upgrade is answered as an HTTP error (401, 429, 503…)."""
    try:
        principal = authenticate(socket)
        where, start = _filter(watch, kind, group), _cursor(after)
        hub = hub_of(socket)
        hub.admit(principal.name)
        subscriber = await hub.subscribe(where, start, "ws", principal.name)
    except RequestProblem as problem:
        body = json.dumps({"error": {"type": problem.type, "reason": problem.reason}, "status": problem.status})
        await socket.send_denial_response(Response(body, problem.status, problem.headers, "application/json"))
        return
    await socket.accept()
    sender = asyncio.create_task(_send_ws(socket, hub, subscriber))
    reader_task = asyncio.create_task(socket.receive_text())
    try:
        while True:
            done, _ = await asyncio.wait({sender, reader_task}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                return
            try:
                text = reader_task.result()
            except WebSocketDisconnect:
                return
            resume = _resume_message(text)
            if resume is not False:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                hub.unsubscribe(subscriber)
                subscriber = await hub.subscribe(where, resume, "ws", principal.name)
                sender = asyncio.create_task(_send_ws(socket, hub, subscriber, resumed=True))
            reader_task = asyncio.create_task(socket.receive_text())
    except RequestProblem as problem:  # a resume from a stale cursor
        with contextlib.suppress(Exception):
            await socket.send_json({"type": "error", "error": {"type": problem.type, "reason": problem.reason}})
            await socket.close(1008)
    finally:
        sender.cancel()
        reader_task.cancel()
        hub.unsubscribe(subscriber)


def _resume_message(text: str) -> Cursor | None | bool:
    """The cursor a client message ``{"after": CURSOR}`` asks for (None: the end), False to ignore it."""
    try:
        message = json.loads(text)
    except ValueError:
        return False
    if not isinstance(message, dict) or "after" not in message:
        return False
    after = message["after"]
    try:
        return _cursor(after if isinstance(after, str) else None)
    except RequestProblem:
        return False


async def _send_ws(socket: WebSocket, hub: Hub, subscriber: Subscriber, resumed: bool = False) -> None:
    subscriber.task = asyncio.current_task()
    try:
        await socket.send_text(json.dumps({"type": "subscribed", "after": str(subscriber.start),
                                           "resumed": resumed}))
        while not subscriber.ending and not (subscriber.cut and subscriber.queue.empty()):
            item = await subscriber.queue.get()
            if item is HEARTBEAT:
                await socket.send_text('{"type":"ping"}')
            elif item is GAP:
                await socket.send_text('{"type":"gap"}')
            else:
                await socket.send_text(f'{{"type":"event","event":{item.text}}}')
        if subscriber.ending:
            await socket.close(SHUTDOWN_CLOSE_CODE, "server stopping; resume from your last cursor")
            return
        await socket.send_text(json.dumps({"type": "cutoff", "cursor": str(subscriber.resume),
                                           "reason": "buffer_full"}))
        await socket.close(CUTOFF_CLOSE_CODE, "cut off: buffer full; resume from the cursor")
    except asyncio.CancelledError:
        if subscriber.ending:  # the server is stopping: close with "service restart"
            asyncio.current_task().uncancel()
            with contextlib.suppress(Exception):
                await socket.close(SHUTDOWN_CLOSE_CODE, "server stopping; resume from your last cursor")
        elif not subscriber.hard_closed:
            raise
        else:
            asyncio.current_task().uncancel()
    except (WebSocketDisconnect, RuntimeError):  # the client left mid-send
        return
