"""The delivery seam: what actions render, and who sends it (DESIGN.md "one path to the network").

Actions only *render* a request object; a :class:`Delivery` decides what happens to it:

* :class:`Simulate` — dry-run: nothing leaves the process, the outcome is ``simulated``;
* :class:`SendNow` — sends right away (dry-run ``--action-mode execute``, tests);
* the daemon's durable outbox (later) — enqueues, sends with retries.

Rendered request kinds: :class:`HttpRequest` (webhook, opsgenie, slack), :class:`LogMessage`
(logging), :class:`IndexRequest` (index), or a tuple of them (one Slack message per recipient).
Each carries ``connector_type``, the :mod:`watcher.connectors` module whose ``interpret`` turns the
raw response into an :class:`Outcome`.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Union

from watcher.model.secrets import mask, mask_data

log = logging.getLogger(__name__)

REDACTED = "::es_redacted::"  # what Watcher records show for Authorization values (semantics §1.9)
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
            or None to derive it from the request (see ``watcher.engine.actions.webhook``).
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
        (Watcher HttpResponse.toXContent, watcher-semantics §1.7 webhook, trap 16).
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


class _HideSecrets(logging.Filter):
    """Masks the secrets of requests in flight in the HTTP libraries' own log lines
    (httpx logs ``HTTP Request: POST <full URL>`` at INFO, which would show an ``apiKey``)."""

    def __init__(self) -> None:
        super().__init__()
        self._active: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hiding(self, secrets: Sequence[str]):
        with self._lock:
            self._active.update(s for s in secrets if s)
        try:
            yield
        finally:
            with self._lock:
                self._active.subtract(s for s in secrets if s)
                self._active = +self._active  # drop zero counts

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._active)
        if secrets:
            text = record.getMessage()
            masked = mask(text, secrets)
            if masked != text:
                record.msg, record.args = masked, ()
        return True


_hide_secrets = _HideSecrets()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_hide_secrets)


class Delivery(Protocol):
    """Something that takes rendered requests to their destination."""

    def deliver(self, rendered: Rendered, services: Any) -> Outcome:
        """Deliver ``rendered`` (using ``services``: ``watcher.engine.context.Services``)."""
        ...


class Simulate:
    """Dry-run delivery: sends nothing; the outcome is ``simulated`` (Watcher's simulate mode)."""

    def deliver(self, rendered: Rendered, services: Any = None) -> Outcome:
        if isinstance(rendered, tuple):
            return Outcome("simulated", parts=tuple(Outcome("simulated") for _ in rendered))
        return Outcome("simulated")


class SendNow:
    """Delivers immediately: HTTP through httpx, log lines through Python logging, documents
    through the Elasticsearch client in ``services.es``.

    Failures never raise: a transport error gives ``failure`` with ``error: {type, reason}``
    (secrets masked); the response interpretation is the connector module's ``interpret``.
    Redirects are not followed (a 3xx is a success, as in Watcher) and ``HTTP(S)_PROXY``
    environment variables are ignored: a proxy is set per connector or action.
    """

    def deliver(self, rendered: Rendered, services: Any = None) -> Outcome:
        if isinstance(rendered, tuple):
            parts = tuple(self.deliver(item, services) for item in rendered)
            return combine(parts)
        if isinstance(rendered, HttpRequest):
            return self._http(rendered)
        if isinstance(rendered, LogMessage):
            return self._log(rendered)
        if isinstance(rendered, IndexRequest):
            return self._index(rendered, services)
        raise TypeError(f"cannot deliver {type(rendered).__name__}")

    def _http(self, request: HttpRequest) -> Outcome:
        import httpx

        from watcher.connectors import interpreter

        timeout = httpx.Timeout(connect=request.timeout_s, read=request.read_timeout_s,
                                write=request.read_timeout_s, pool=request.timeout_s)
        verify: Any = request.verify
        if request.verify and request.ca_file:
            import ssl

            verify = ssl.create_default_context(cafile=request.ca_file)
        shown = request.masked()
        try:
            with _hide_secrets.hiding(request.secrets), httpx.Client(timeout=timeout, verify=verify, proxy=request.proxy,
                              follow_redirects=False, trust_env=False) as client:
                body = request.body.encode("utf-8") if request.body is not None else None
                response = client.request(request.method, request.url, headers=request.headers, content=body)
                received = HttpResponse(status=response.status_code,
                                        headers=tuple(response.headers.multi_items()),
                                        body=response.text)
        except (httpx.HTTPError, OSError, ValueError) as error:
            log.warning("%s %s failed: %s", shown["method"], shown["url"], mask(str(error), request.secrets))
            # Watcher records a transport error as ``error`` only (no ``reason``), semantics §1.7.
            return Outcome("failure", error={"type": _error_type(error),
                                             "reason": mask(str(error), request.secrets) or type(error).__name__})
        log.debug("%s %s → %s", shown["method"], shown["url"], received.status)
        outcome = interpreter(request.connector_type)(received)
        return dataclasses.replace(outcome, response=mask_data(outcome.response, request.secrets))

    def _log(self, message: LogMessage) -> Outcome:
        from watcher.connectors import interpreter

        logging.getLogger(message.category).log(log_level(message.level), "%s", message.text)
        return interpreter(message.connector_type)(None)

    def _index(self, request: IndexRequest, services: Any) -> Outcome:
        from watcher.connectors import interpreter

        es = getattr(services, "es", None)
        if es is None:
            return Outcome("failure", reason="no Elasticsearch client is configured",
                           error={"type": "illegal_state_exception",
                                  "reason": "no Elasticsearch client is configured"})
        try:
            client = es.options(request_timeout=request.timeout_s)
            refresh = request.refresh
            if request.bulk:
                operations: list[dict] = []
                for doc in request.docs:
                    meta = {key: value for key, value in (("_index", doc["index"]), ("_id", doc["id"]))
                            if value is not None}
                    operations += [{request.op_type: meta}, doc["source"]]
                kwargs = {"refresh": refresh} if refresh is not None else {}
                raw = client.bulk(operations=operations, **kwargs) if operations else {"items": []}
            else:
                doc = request.docs[0]
                kwargs = {"refresh": refresh} if refresh is not None else {}
                if doc["id"] is not None:
                    kwargs["id"] = doc["id"]
                raw = client.index(index=doc["index"], document=doc["source"], op_type=request.op_type, **kwargs)
        except Exception as error:  # the client raises many types: all mean "the action failed"
            reason = _es_reason(error)
            return Outcome("failure", reason=reason, error={"type": _error_type(error), "reason": reason})
        return interpreter(request.connector_type)(_body(raw))


def combine(parts: Sequence[Outcome]) -> Outcome:
    """One outcome for several: the common status if all agree, else ``partial_failure``."""
    statuses = {part.status for part in parts}
    status = statuses.pop() if len(statuses) == 1 else "partial_failure"
    reasons = [part.reason for part in parts if part.reason]
    return Outcome(status, response=[part.response for part in parts],
                   reason=reasons[0] if status != "success" and reasons else None, parts=tuple(parts))


def http_outcome(response: HttpResponse, *, success_below: int = 400) -> Outcome:
    """Watcher's webhook rule: status < 400 is ``success``, else ``failure`` with reason
    ``received [<status>] status code`` (ExecutableWebhookAction; semantics §1.7)."""
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


def _error_type(error: BaseException | type[BaseException]) -> str:
    # Elasticsearch-style snake_case names: ConnectError → connect_error
    name = (error if isinstance(error, type) else type(error)).__name__
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out or "exception"


def recorded_error_class(error_type: str) -> type[BaseException] | None:
    """The exception class an outcome's error ``type`` was written from by :meth:`SendNow._http`
    (the inverse of ``_error_type`` over httpx's errors and the built-in ``OSError`` family), or
    None for any other type. Lets a failed outcome read back from data be judged by class."""
    return _recorded_error_classes().get(error_type)


@functools.cache
def _recorded_error_classes() -> dict[str, type[BaseException]]:
    import httpx

    found: dict[str, type[BaseException]] = {}
    stack: list[type[BaseException]] = [httpx.HTTPError, OSError]
    while stack:
        cls = stack.pop()
        if cls is OSError or cls.__module__ in ("builtins", "httpx"):
            found.setdefault(_error_type(cls), cls)
            stack.extend(cls.__subclasses__())
    return found


def _es_reason(error: BaseException) -> str:
    info = getattr(error, "info", None) or getattr(error, "body", None)
    if isinstance(info, Mapping) and isinstance(info.get("error"), Mapping):
        reason = info["error"].get("reason")
        if reason:
            return str(reason)
    return str(error) or type(error).__name__


def _body(raw: Any) -> Any:
    return raw.body if hasattr(raw, "body") else raw

