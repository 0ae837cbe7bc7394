"""Delivery without the outbox: :class:`Simulate` (dry-run) and :class:`SendNow` (dry-run's
``--action-mode execute``, tests); the daemon's durable outbox is :mod:`watcher.delivery.outbox`.
Emails go through :mod:`watcher.delivery.smtp` with the Message-ID of their delivery id, the same
one the outbox would give them.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from watcher.delivery import smtp
from watcher.destinations import interpreter
from watcher.errors import DeliveryError
from watcher.model.requests import (EmailRequest, HttpRequest, HttpResponse, IndexRequest, LogMessage, Outcome,
                                    Rendered, combine, email_message_id, log_level, origin_delivery_id)
from watcher.model.secrets import mask, mask_data
from watcher.support import httpclient

log = logging.getLogger(__name__)


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
    """Delivers immediately: HTTP through httpx, emails over SMTP, log lines through Python logging,
    documents through the Elasticsearch client in ``services.es``.

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
        if isinstance(rendered, EmailRequest):
            return self._email(rendered)
        if isinstance(rendered, LogMessage):
            return self._log(rendered)
        if isinstance(rendered, IndexRequest):
            return self._index(rendered, services)
        raise TypeError(f"cannot deliver {type(rendered).__name__}")

    def _http(self, request: HttpRequest) -> Outcome:
        timeout = httpclient.timeout(request.timeout_s, request.read_timeout_s)
        verify = httpclient.verification(request.verify, request.ca_file)  # a bad CA file fails the action
        shown = request.masked()
        try:
            with _hide_secrets.hiding(request.secrets), \
                    httpclient.client(verify=verify, proxy=request.proxy, timeout_s=timeout) as client:
                body = request.body.encode("utf-8") if request.body is not None else None
                response = client.request(request.method, request.url, headers=request.headers, content=body)
                received = HttpResponse(status=response.status_code,
                                        headers=tuple(response.headers.multi_items()),
                                        body=response.text)
        except (httpx.HTTPError, OSError, ValueError) as error:
            log.warning("%s %s failed: %s", shown["method"], shown["url"], mask(str(error), request.secrets))
            # Watcher records a transport error as ``error`` only, no ``reason``
            # (docs/semantics.md#webhook-action).
            return Outcome("failure", error={"type": _error_type(error),
                                             "reason": mask(str(error), request.secrets) or type(error).__name__})
        log.debug("%s %s → %s", shown["method"], shown["url"], received.status)
        outcome = interpreter(request.connector_type)(received)
        # the response, and a reason quoting it (PagerDuty's, Jira's error texts), never show a secret
        return dataclasses.replace(outcome, response=mask_data(outcome.response, request.secrets),
                                   reason=mask(outcome.reason, request.secrets) if outcome.reason else outcome.reason)

    def _email(self, request: EmailRequest) -> Outcome:
        # The delivery id of the request's origin, as the outbox computes it: one Message-ID per delivery.
        identifier = origin_delivery_id(request.origin) or str(uuid.uuid4())
        message_id = email_message_id(identifier, request.sender)
        try:
            receipt = smtp.send(request, message_id)
        except DeliveryError as error:  # smtp.send raises nothing else
            log.warning("email to %s:%s failed: %s", mask(request.host, request.secrets), request.port, error)
            return Outcome("failure", reason=str(error), error={"type": _error_type(error), "reason": str(error)})
        log.debug("email %s accepted by %s:%s", message_id, mask(request.host, request.secrets), request.port)
        return interpreter(request.connector_type)(receipt)

    def _log(self, message: LogMessage) -> Outcome:
        logging.getLogger(message.category).log(log_level(message.level), "%s", message.text)
        return interpreter(message.connector_type)(None)

    def _index(self, request: IndexRequest, services: Any) -> Outcome:
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
