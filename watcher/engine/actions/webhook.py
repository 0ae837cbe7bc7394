"""The ``webhook`` action: an HTTP request built from Watcher's request template.

Body: Watcher's fields exactly (watcher-semantics §1.7 webhook; explore-analyze/alerts-cases/watcher/
actions-webhook.md): ``scheme`` (http), ``host``, ``port`` (required), ``method`` (get; echoed
lower-case), ``path``, ``params``, ``headers``, ``body`` (text templates, no escaping; a
``__json__::`` prefix switches to JSON escaping), ``auth.basic``, ``url`` (parsed once, not
templated), ``proxy``, ``connection_timeout``/``connection_timeout_in_millis`` and
``read_timeout``/``read_timeout_millis`` (10 s each). The parser is the http input's
(:func:`watcher.engine.inputs.http.parse_request`): the two share Watcher's HttpRequestTemplate.

Our extension: ``connector: NAME`` (a webhook connector) supplies scheme/host/port/base path and
params, method (when the action gives none), headers (the action's are merged over them), body
template (when the action gives none), auth, timeouts and TLS settings; ``url``/``scheme``/``host``/
``port`` are then not allowed in the action.

No Content-Type is added unless a header sets it; status ≥ 400 is a failure with reason
``received [<status>] status code`` (trap 16). Result ``{"webhook": {"request": {...}, "response":
{"status", "headers"?, "body"?}}}``; simulated: only ``request``. In the request the Authorization
header value and the basic-auth password show as ``::es_redacted::``, other secrets as ``***``.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from watcher.connectors import webhook as webhook_connector
from watcher.model.problems import Reader
from watcher.model.secrets import mask_data
from watcher.engine.actions import check_keys, connector_for, parse_connector_name, render as render_text
from watcher.engine.delivery import REDACTED, HttpRequest, Outcome, basic_auth_header
from watcher.engine.inputs import http as http_input

TYPE = "webhook"
KEYS = (*http_input.REQUEST_KEYS, "connector")
DESTINATION_KEYS = ("url", "scheme", "host", "port")
_PLACEHOLDER = {"host": "connector.invalid", "port": 1}  # replaced by the connector's destination


@dataclasses.dataclass(frozen=True)
class WebhookConfig:
    """A parsed webhook action.

    Attributes:
        request: Watcher's request template (host/port are placeholders when ``connector`` is set).
        connector: the webhook connector's name, or None.
        given: the keys written in the action (to know what overrides the connector).
    """

    request: http_input.HttpRequestTemplate
    connector: str | None = None
    given: frozenset = frozenset()


def parse(reader: Reader, body: Any, path) -> WebhookConfig | None:
    """Validate a Watcher ``webhook`` action body (or ``{connector: NAME, …}``); problems go to ``reader``."""
    holder = check_keys(reader, body, path, KEYS, "a webhook action such as {host: example.com, port: 443, path: /hook}")
    if holder is None:
        return None
    before = len(reader.problems)
    connector = parse_connector_name(reader, holder, path)
    fields = {key: value for key, value in holder.items() if key != "connector" and key in http_input.REQUEST_KEYS}
    if connector is not None:
        for key in DESTINATION_KEYS:
            if key in fields:
                reader.problem((*path, key), f"'{key}' cannot be combined with 'connector': the connector "
                                             f"[{connector}] gives the destination")
        fields = {**_PLACEHOLDER, **fields}
    request = http_input.parse_request(reader, fields, path)
    if len(reader.problems) > before or request is None:
        return None
    return WebhookConfig(request=request, connector=connector, given=frozenset(map(str, holder)))


def render(config: WebhookConfig, run: Any, model: dict) -> HttpRequest:
    """The request to send. Raises LookupError for an unknown connector; template errors as they come."""
    request = http_input.render_request(config.request, model)
    connector = connector_for(run, config.connector, "webhook")
    if connector is None:
        return _plain_request(request)
    settings = connector.config
    body = request.get("body")
    if "body" not in config.given and settings.body is not None:
        body = render_text(settings.body, model)
    fields = {
        "method": request["method"] if "method" in config.given else None,
        "path": request.get("path"),
        "params": request.get("params"),
        "headers": request.get("headers"),
        "body": body,
        "basic_auth": (request["auth"]["basic"]["username"], request["auth"]["basic"]["password"])
        if "auth" in request else None,
        "timeout_s": _seconds(request.get("connection_timeout_in_millis")),
        "read_timeout_s": _seconds(request.get("read_timeout_millis")),
        "proxy": _proxy_url(request.get("proxy")),
        "secrets": connector.secrets,
    }
    return webhook_connector.build_request(settings, fields)


def _plain_request(request: dict) -> HttpRequest:
    """A Watcher webhook without connector: exactly the rendered template."""
    headers = dict(request.get("headers") or {})
    secrets: tuple[str, ...] = ()
    if "auth" in request:
        basic = request["auth"]["basic"]
        headers["Authorization"] = basic_auth_header(basic["username"], basic["password"])
        secrets = (basic["password"],) if basic["password"] else ()
    record = mask_data(http_input.masked(request), secrets)
    return HttpRequest(
        method=request["method"].upper(),
        url=webhook_connector.build_url(request["scheme"], request["host"], request["port"],
                                        request.get("path"), request.get("params")),
        headers=headers,
        body=request.get("body"),
        timeout_s=_seconds(request.get("connection_timeout_in_millis")) or 10.0,
        read_timeout_s=_seconds(request.get("read_timeout_millis")) or 10.0,
        proxy=_proxy_url(request.get("proxy")),
        secrets=secrets,
        connector_type=TYPE,
        record=record,
    )


def _seconds(millis: int | None) -> float | None:
    return millis / 1000 if millis is not None else None


def _proxy_url(proxy: dict | None) -> str | None:
    return f"{proxy.get('scheme', 'http')}://{proxy['host']}:{proxy['port']}" if proxy else None


def request_record(request: HttpRequest) -> dict:
    """The request as Watcher's records show it: ``{"host", "port", "scheme", "method" (lower-case),
    "path"?, "params"?, "headers"?, "body"?}`` with secrets masked (``***``) and Authorization
    values as ``::es_redacted::``; ``request.record`` when the action set one."""
    if request.record is not None:
        return request.record
    parts = urlsplit(request.url)
    scheme = parts.scheme
    record: dict[str, Any] = {"host": parts.hostname or "", "port": parts.port or webhook_connector.default_port(scheme),
                              "scheme": scheme, "method": request.method.lower()}
    if parts.path:
        record["path"] = unquote(parts.path)
    if parts.query:
        record["params"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if request.headers:
        record["headers"] = {name: REDACTED if name.lower() in ("authorization", "proxy-authorization") else value
                             for name, value in request.headers.items()}
    if request.body is not None:
        record["body"] = request.body
    return mask_data(record, request.secrets)


def result(config: Any, rendered: HttpRequest, outcome: Outcome) -> dict:
    """``{"webhook": {"request": …, "response"?: …}}`` (no response when simulated or on a transport error)."""
    out: dict[str, Any] = {"request": request_record(rendered)}
    if outcome.response is not None:
        out["response"] = outcome.response
    return {"webhook": out}
