"""What actions render and what delivering it gave: the values between the engine and delivery.

Actions only *render* a request value; a delivery (:mod:`watcher.delivery`) decides what happens to
it (simulate, send now, or the durable outbox). Rendered request kinds: :class:`HttpRequest`
(webhook, opsgenie, slack), :class:`LogMessage` (logging), :class:`IndexRequest` (index), or a tuple
of them (one Slack message per recipient). Each carries ``connector_type``, the destination
(:mod:`watcher.destinations`) whose ``interpret`` turns the raw response into an :class:`Outcome`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Union

from watcher import errors
from watcher.model.secrets import mask

REDACTED = "::es_redacted::"  # what Watcher records show for Authorization values (docs/semantics.md#secrets)
_REDACTED_HEADERS = {"authorization", "proxy-authorization"}
TRACE = 5  # Python has no TRACE level; Watcher's logging action has one


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a rendered request comes from; the outbox derives the delivery id from it.

    Attributes:
        watch_id, record_id (``Run.record_id``), action_id: the execution and action.
        sequence: ``"0"``, ``"foreach:<i>"`` or ``"group:<key>"`` — stable across re-runs of a record.
        connector: the connector name (per-connector limits), or None.
    """

    watch_id: str
    record_id: str
    action_id: str
    sequence: str = "0"
    connector: str | None = None


def with_origin(rendered, origin: Origin):
    """``rendered`` with ``origin`` set on every :class:`HttpRequest` in it (tuples keep their order)."""
    if isinstance(rendered, tuple):
        return tuple(with_origin(item, origin) for item in rendered)
    return dataclasses.replace(rendered, origin=origin) if isinstance(rendered, HttpRequest) else rendered


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, fully rendered, ready to send.

    Attributes:
        method: upper-case HTTP method (``POST``).
        url: absolute URL including the query string (secrets in it are masked by :meth:`masked`).
        headers: header name → value, exactly what is sent (no Content-Type is added here).
        body: the body text (sent UTF-8 encoded), or None for no body.
        timeout_s: connect timeout in seconds.
        read_timeout_s: read timeout in seconds.
        verify: verify the server's TLS certificate.
        ca_file: PEM bundle to verify against (None = system/certifi defaults).
        proxy: proxy URL (``http://host:port``) or None.
        secrets: values to mask wherever this request is shown.
        connector_type: the connector module that interprets the response (``webhook``…).
        record: the request as Watcher's action result shows it (``{"host", "port", "scheme",
            "method", "path"?, "params"?, "headers"?, "auth"?, "body"?}``, secrets already masked),
            or None to derive it from the request (see ``watcher.destinations.webhook``).
    """

    method: str
    url: str
    headers: dict = dataclasses.field(default_factory=dict)
    body: str | None = None
    timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    verify: bool = True
    ca_file: str | None = None
    proxy: str | None = None
    secrets: tuple[str, ...] = ()
    connector_type: str = "webhook"
    record: dict | None = dataclasses.field(default=None, compare=False)
    origin: "Origin | None" = dataclasses.field(default=None, compare=False)

    def masked(self) -> dict:
        """``{"method", "url", "headers", "body"}`` safe to print or store.

        Every secret value is replaced with ``***``; ``Authorization`` and ``Proxy-Authorization``
        values show ``::es_redacted::`` as in Watcher records.
        """
        headers = {name: REDACTED if name.lower() in _REDACTED_HEADERS else mask(str(value), self.secrets)
                   for name, value in self.headers.items()}
        return {"method": self.method, "url": mask(self.url, self.secrets), "headers": headers,
                "body": mask(self.body, self.secrets) if self.body is not None else None}

    def __repr__(self) -> str:  # never show secrets, even in a debugger or a traceback
        shown = self.masked()
        return f"HttpRequest({shown['method']} {shown['url']})"


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    """What came back: status code, headers as (name, value) pairs in received order, body text."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def as_record(self) -> dict:
        """Watcher's response shape: ``{"status", "headers"?: {name: [values]}, "body"?}``.

        Header names are lower-cased with ``.`` replaced by ``_``; values are lists
        (Watcher HttpResponse.toXContent, docs/semantics.md#webhook-status-codes).
        """
        record: dict[str, Any] = {"status": self.status}
        headers: dict[str, list[str]] = {}
        for name, value in self.headers:
            headers.setdefault(name.lower().replace(".", "_"), []).append(value)
        if headers:
            record["headers"] = headers
        if self.body is not None:
            record["body"] = self.body
        return record


@dataclasses.dataclass(frozen=True)
class LogMessage:
    """A line for Python logging: ``level`` is error|warn|info|debug|trace, ``category`` the logger name."""

    level: str
    category: str
    text: str
    connector_type: str = "logging"


@dataclasses.dataclass(frozen=True)
class IndexRequest:
    """Documents to index in Elasticsearch.

    Attributes:
        docs: ``[{"index": str|None, "id": str|None, "source": dict}]`` in payload order.
        op_type: ``index`` or ``create``.
        refresh: None, ``"true"``, ``"false"`` or ``"wait_for"``.
        bulk: True when the payload's ``_doc`` was a list (the result is then a list too).
        timeout_s: request timeout in seconds (Watcher's default 60 s).
    """

    docs: tuple[dict, ...]
    op_type: str = "index"
    refresh: str | None = None
    bulk: bool = False
    timeout_s: float = 60.0
    connector_type: str = "index"


Rendered = Union[HttpRequest, LogMessage, IndexRequest, tuple]


def json_content_type(headers: Mapping[str, Any]) -> str | None:
    """The Content-Type value of ``headers`` when it declares JSON, else None.

    A header named ``Content-Type`` in any spelling declares JSON when its media type (the part
    before ``;``, case-insensitive) is ``application/json`` or ends in ``+json`` (RFC 6839's
    structured suffix: ``application/vnd.api+json``, ``application/problem+json``…).
    ``application/x-ndjson`` and ``text/plain`` do not (docs/correctness.md#json-bodies).
    """
    for name, value in headers.items():
        if str(name).lower() != "content-type" or value is None:
            continue
        media = str(value).split(";", 1)[0].strip().lower()
        if media == "application/json" or (media.endswith("+json") and "/" in media):
            return str(value)
    return None


class InvalidJsonBody(errors.TemplateRenderError):
    """A rendered request declares a JSON Content-Type but its body does not parse as JSON.

    Created (not raised) by :func:`json_body_error` before a request is handed to a delivery; the
    action then fails with this reason and nothing is sent (docs/correctness.md#json-bodies). Like
    any render error it concerns one run's data: the next run may render valid JSON.

    Attributes:
        content_type: the Content-Type header value that declares JSON.
        body_line, body_column: 1-based position in the body where parsing stopped (None when the
            body is empty).
    """

    def __init__(self, message: str, *, content_type: str, body_line: int | None = None,
                 body_column: int | None = None) -> None:
        super().__init__(message)
        self.content_type, self.body_line, self.body_column = content_type, body_line, body_column


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def json_body_error(rendered: Any) -> InvalidJsonBody | None:
    """The first :class:`HttpRequest` of ``rendered`` (a request, a tuple of them, or any other
    rendered value) whose Content-Type declares JSON (:func:`json_content_type`) while its body is
    not one JSON text (RFC 8259: ``NaN``/``Infinity`` refused, any value allowed at the top), as an
    :class:`InvalidJsonBody`; None when every such body parses. A request without a body (None)
    is not checked; an empty body is not JSON. The message never quotes the body (it may hold
    secrets)."""
    for request in rendered if isinstance(rendered, tuple) else (rendered,):
        if not isinstance(request, HttpRequest) or request.body is None:
            continue
        content_type = json_content_type(request.headers)
        if content_type is None:
            continue
        if not request.body.strip():
            return InvalidJsonBody(f"the body is empty, but its Content-Type is {content_type}; not sent",
                                   content_type=content_type)
        try:
            json.loads(request.body, parse_constant=_no_constants)
        except json.JSONDecodeError as error:
            return InvalidJsonBody(
                f"the body is not valid JSON ({error.msg.removesuffix(' at')} at body line {error.lineno}, "
                f"column {error.colno}), "
                f"but its Content-Type is {content_type}; not sent",
                content_type=content_type, body_line=error.lineno, body_column=error.colno)
        except ValueError as error:  # NaN, Infinity
            return InvalidJsonBody(f"the body is not valid JSON ({error}), but its Content-Type is {content_type}; "
                                   "not sent", content_type=content_type)
    return None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What delivering one rendered request gave.

    Attributes:
        status: ``success`` | ``failure`` | ``partial_failure`` | ``simulated`` (Watcher's action statuses).
        response: the response in Watcher's record shape (HTTP: ``{"status","headers","body"}``;
            index: the index response or the list of bulk item responses), or None.
        reason: Watcher's failure reason, e.g. ``received [503] status code``.
        error: ``{"type", "reason"}`` for transport errors and the like.
        parts: per-request outcomes when a tuple of requests was delivered (Slack recipients).
    """

    status: str
    response: Any = None
    reason: str | None = None
    error: dict | None = None
    parts: tuple["Outcome", ...] = ()


def combine(parts: Sequence[Outcome]) -> Outcome:
    """One outcome for several: the common status if all agree, else ``partial_failure``."""
    statuses = {part.status for part in parts}
    status = statuses.pop() if len(statuses) == 1 else "partial_failure"
    reasons = [part.reason for part in parts if part.reason]
    return Outcome(status, response=[part.response for part in parts],
                   reason=reasons[0] if status != "success" and reasons else None, parts=tuple(parts))


def http_outcome(response: HttpResponse, *, success_below: int = 400) -> Outcome:
    """Watcher's webhook rule: status < 400 is ``success``, else ``failure`` with reason
    ``received [<status>] status code`` (ExecutableWebhookAction; docs/semantics.md#webhook-action)."""
    record = response.as_record()
    if response.status < success_below:
        return Outcome("success", response=record)
    return Outcome("failure", response=record, reason=f"received [{response.status}] status code")


def basic_auth_header(username: str, password: str) -> str:
    """``Basic <base64(username:password)>`` (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def log_level(level: str) -> int:
    """Watcher's level names → Python logging levels (``warn`` → WARNING, ``trace`` → 5)."""
    return {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO,
            "debug": logging.DEBUG, "trace": TRACE}.get(level.lower(), logging.INFO)
