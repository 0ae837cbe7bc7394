"""Webhook connector: a named HTTP destination (URL, method, headers, body template, auth, TLS).

Configuration (connectors.yaml)::

    my-hook:
      type: webhook
      url: https://hooks.example.com/alerts?team=sre   # or scheme/host/port/path/params
      method: post                                     # head|get|post|put|patch|delete, default post
      headers: {Content-Type: application/json}
      body: '{{#toJson}}ctx.payload{{/toJson}}'        # Mustache template (Watcher's engine), optional
      auth: {basic: {username: u, password: '${HOOK_PASSWORD}'}}   # or bearer: {token}
                                                       # or api_key: {key, header: X-API-Key}
      timeout: 10s          # connect timeout        read_timeout: 10s
      verify: true          # TLS verification       ca_file: /etc/ssl/my-ca.pem
      proxy: http://proxy:3128

Follows Kibana's ``.webhook`` connector (docs/semantics.md#kibana-webhook-connector: method default post,
basic auth, CA and verification mode) with Watcher's HTTP defaults (10 s timeouts,
docs/semantics.md#webhook-action). This module also holds the pieces the other HTTP connectors share
(:class:`HttpSettings`, :func:`build_url`).

The action (a watch's ``webhook`` action, or a rule action naming a webhook connector):

The ``webhook`` action: an HTTP request built from Watcher's request template.

Body: Watcher's fields exactly (docs/semantics.md#webhook-action): ``scheme`` (http), ``host``, ``port``
(required), ``method`` (get; echoed lower-case), ``path``, ``params``, ``headers``, ``body`` (text templates,
no escaping; a ``__json__::`` prefix switches to JSON escaping; we differ: when the headers declare a
JSON Content-Type, values printed inside the body's JSON strings are escaped, and a body that still
does not parse fails the action unsent, docs/correctness.md#json-bodies), ``auth.basic``, ``url`` (parsed once, not
templated), ``proxy``, ``connection_timeout``/``connection_timeout_in_millis`` and
``read_timeout``/``read_timeout_millis`` (10 s each). The parser is the http input's
(:func:`watcher.templates.http_request.parse_request`): the two share Watcher's HttpRequestTemplate.

Our extension: ``connector: NAME`` (a webhook connector) supplies scheme/host/port/base path and
params, method (when the action gives none), headers (the action's are merged over them), body
template (when the action gives none), auth, timeouts and TLS settings; ``url``/``scheme``/``host``/
``port`` are then not allowed in the action, and a credential header the action sets must be written
as is, not as a template (its value is a secret the outbox must restore, docs/correctness.md#secret-placeholders).

No Content-Type is added unless a header sets it; status ≥ 400 is a failure with reason
``received [<status>] status code`` (docs/semantics.md#webhook-status-codes). Result ``{"webhook": {"request":
{...}, "response": {"status", "headers"?, "body"?}}}``; simulated: only ``request``. In the request the
Authorization header value and the basic-auth password show as ``::es_redacted::``, other secrets as ``***``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pydantic
from pydantic import AfterValidator, BeforeValidator, ConfigDict, WithJsonSchema

from watcher.destinations.common import check_keys, connector_for, parse_connector_name
from watcher.destinations.common import render as render_text
from watcher.model.problems import Reader
from watcher.model.requests import (REDACTED, HttpRequest, HttpResponse, Outcome, basic_auth_header, http_outcome,
                                    json_content_type)
from watcher.model.schema_parts import CONNECTOR_REF, http_request_schema
from watcher.model.secrets import Secret, mask_data, secret_values
from watcher.support.durations import DurationError, parse_time_value
from watcher.templates import http_request
from watcher.templates.mustache import TemplateSyntaxError, compile_template

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "webhook"
ACTION_SCHEMA = {"type": "object", "description": "An HTTP request, or {connector: NAME, …overrides}.",
                 "properties": {**http_request_schema()["properties"], **CONNECTOR_REF}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""
METHODS = ("head", "get", "post", "put", "patch", "delete")
# Header names whose values are credentials: masked wherever the request is shown.
SECRET_HEADER_WORDS = ("authorization", "token", "secret", "api-key", "apikey", "api_key", "cookie", "password")


def _duration_seconds(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 10s or 1500ms, found {value!r}")
    try:
        parsed = parse_time_value(value)
    except DurationError as error:
        raise ValueError(str(error)) from None
    if parsed is None:
        raise ValueError(f"expected a duration such as 10s or 1500ms, found {value!r}")
    return parsed.total_seconds()


Seconds = Annotated[float, BeforeValidator(_duration_seconds),
                    WithJsonSchema({"type": "string", "description": "a duration such as 10s, 1500ms, 1m"})]
"""A duration written ``10s`` / ``1500ms`` / ``1m`` in the file, held as float seconds."""


def readable_ca_file(value: str | None) -> str | None:
    """Validator of a ``ca_file`` setting: None, or a file that exists (ValueError otherwise)."""
    if value is not None and not Path(value).expanduser().is_file():
        raise ValueError(f"cannot read CA file {value}: no such file")
    return value


class StrictModel(pydantic.BaseModel):
    """Base of connector schemas: unknown keys are errors (with a did-you-mean)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(StrictModel):
    """Transport settings every HTTP connector accepts.

    Attributes:
        timeout: connect timeout, seconds (file: ``10s``); Watcher's default 10 s.
        read_timeout: read timeout, seconds; default 10 s.
        verify: verify TLS certificates (default true).
        ca_file: PEM CA bundle to verify against.
        proxy: proxy URL such as ``http://proxy:3128``.
    """

    timeout: Seconds = 10.0
    read_timeout: Seconds = 10.0
    verify: bool = True
    ca_file: str | None = None
    proxy: str | None = None

    _ca_file_readable = pydantic.field_validator("ca_file")(readable_ca_file)

    @pydantic.field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
                raise ValueError(f"expected a proxy URL such as http://proxy:3128, found {value!r}")
        return value


class BasicAuth(StrictModel):
    """HTTP basic auth of a webhook connector; the password is a secret."""
    username: str
    password: Secret


class BearerAuth(StrictModel):
    """``Authorization: Bearer <token>`` for a webhook connector; the token is a secret."""
    token: Secret


class ApiKeyAuth(StrictModel):
    """``header: key`` (default header ``X-API-Key``); ``prefix`` is put before the key (``ApiKey ``)."""

    key: Secret
    header: str = "X-API-Key"
    prefix: str = ""


class Auth(StrictModel):
    """Exactly one of ``basic``, ``bearer``, ``api_key``."""

    basic: BasicAuth | None = None
    bearer: BearerAuth | None = None
    api_key: ApiKeyAuth | None = None

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> "Auth":
        given = [name for name in ("basic", "bearer", "api_key") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of basic, bearer, api_key, found "
                             f"{', '.join(given) if given else 'none'}")
        return self

    def header(self) -> tuple[str, str]:
        """The (name, value) header this authentication sends."""
        if self.basic is not None:
            return "Authorization", basic_auth_header(self.basic.username, self.basic.password.reveal())
        if self.bearer is not None:
            return "Authorization", f"Bearer {self.bearer.token.reveal()}"
        assert self.api_key is not None
        return self.api_key.header, f"{self.api_key.prefix}{self.api_key.key.reveal()}"


class Config(HttpSettings):
    """A webhook connector. Give ``url`` or ``host`` (with optional scheme/port/path/params)."""

    type: Literal["webhook"]
    url: str | None = None
    scheme: Literal["http", "https"] | None = None
    host: str | None = None
    port: int | None = pydantic.Field(default=None, gt=0, lt=65536)
    path: str | None = None
    params: dict[str, str] = {}
    method: str = "post"
    headers: dict[str, str] = {}
    body: str | None = None
    auth: Auth | None = None

    @pydantic.field_validator("body")
    @classmethod
    def _body_template(cls, value: str | None) -> str | None:
        # The body is a Mustache template (Watcher's engine): a syntax error is a load-time problem.

        if value is not None and "{{" in value:
            try:
                compile_template(value[len("__json__::"):] if value.startswith("__json__::") else value)
            except TemplateSyntaxError as error:
                raise ValueError(f"Mustache template error at {error}") from None
        return value

    @pydantic.field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.lower() not in METHODS:
            raise ValueError(f"expected one of {', '.join(METHODS)}, found {value!r}")
        return value.lower()

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"expected an http(s) URL such as https://hooks.example.com/path, found {value!r}")
        return value

    @pydantic.model_validator(mode="after")
    def _url_or_host(self) -> "Config":
        if (self.url is None) == (self.host is None):
            raise ValueError("give either url or host (with scheme, port, path, params), not "
                             + ("both" if self.url else "neither"))
        if self.url is not None and any(v is not None for v in (self.scheme, self.port, self.path)):
            raise ValueError("scheme, port and path cannot be combined with url")
        return self

    def base(self) -> dict:
        """``{"scheme", "host", "port", "path", "params"}`` of the destination (port defaulted)."""
        if self.url is not None:
            return parse_url(self.url)
        scheme = self.scheme or "http"
        return {"scheme": scheme, "host": self.host, "port": self.port or default_port(scheme),
                "path": self.path or "", "params": dict(self.params)}


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: webhook`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def default_port(scheme: str) -> int:
    """The port of ``scheme`` when none is given: 443 for https, else 80."""
    return 443 if scheme == "https" else 80


def parse_url(url: str) -> dict:
    """Split an absolute URL into ``{"scheme", "host", "port", "path", "params"}``.

    Mirrors Watcher's ``url`` shortcut (HttpRequestTemplate.fromUrl): port defaults from the
    scheme; the query string becomes decoded ``params``; the path is kept decoded.
    """

    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    return {"scheme": scheme, "host": parts.hostname or "", "port": parts.port or default_port(scheme),
            "path": unquote(parts.path), "params": dict(parse_qsl(parts.query, keep_blank_values=True))}


def build_url(scheme: str, host: str, port: int | None, path: str | None, params: Mapping[str, Any] | None) -> str:
    """``scheme://host[:port]/path?query`` with the path percent-encoded (existing ``%XX`` kept) and
    params form-encoded (space → ``+``, as Watcher's Apache client does). The port is left out
    when it is the scheme's default."""
    netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port and port != default_port(scheme):
        netloc += f":{port}"
    path = path or ""
    if path and not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{netloc}{quote(path, safe='/%:@!$&()*+,;=-._~')}"
    if params:
        url += "?" + urlencode([(str(k), "" if v is None else str(v)) for k, v in params.items()])
    return url


def secret_url(value: Secret, example: str) -> Secret:
    """``value`` when it is an http(s) URL with a host; else ValueError naming ``example`` and never
    the value (a webhook URL that carries its token in the path is the secret itself)."""
    parts = urlsplit(value.reveal())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) webhook URL such as {example}")
    return value


def check_url(value: str, example: str) -> str:
    """``value`` when it is an http(s) URL with a host; else ValueError naming ``example``."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected a URL such as {example}, found {value!r}")
    return value


def SecretUrl(example: str) -> Any:  # noqa: N802 - used as a type in connector models
    """The type of a connector's ``url`` that is itself the secret (a webhook URL carrying its token):
    a :class:`Secret` checked by :func:`secret_url` (``example`` names the expected form)."""
    return Annotated[Secret, AfterValidator(functools.partial(secret_url, example=example))]


def CheckedUrl(example: str) -> Any:  # noqa: N802 - used as a type in connector models
    """The type of a connector's http(s) ``url`` (checked by :func:`check_url`)."""
    return Annotated[str, AfterValidator(functools.partial(check_url, example=example))]


def url_secrets(config: Any) -> list[str]:
    """``secrets`` of a connector whose ``url`` is a :func:`SecretUrl`: its path and query
    (:func:`url_path_secrets`)."""
    return url_path_secrets(config.url.reveal())


def post_to_secret_url(config: Any, payload: Any, extra_secrets, connector_type: str) -> HttpRequest:
    """The JSON POST of ``payload`` to a connector whose ``url`` is a :func:`SecretUrl`; the URL's
    path and ``extra_secrets`` are masked wherever the request is shown."""
    return json_request(config, config.url.reveal(), payload, secrets=(*url_secrets(config), *(extra_secrets or ())),
                        connector_type=connector_type)


def url_path_secrets(url: str) -> list[str]:
    """What to mask of a webhook URL whose token is in its path (Slack, Teams, Discord): the path
    and query, so ``https://hooks.slack.com/***`` still says where it goes; the whole URL when
    that part is too short to be a secret of its own."""
    parts = urlsplit(url)
    hidden = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return [hidden] if len(hidden) >= 4 else [url]


def json_request(settings: HttpSettings, url: str, payload: Any, *, secrets, connector_type: str,
                 headers: Mapping[str, str] | None = None) -> HttpRequest:
    """A POST of ``payload`` as compact UTF-8 JSON (``Content-Type: application/json`` plus
    ``headers``) to ``url``, with ``settings``' timeouts, TLS and proxy; ``secrets`` are the values
    to mask wherever the request is shown (duplicates and empty values dropped)."""
    return HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json", **(headers or {})},
                       body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                       timeout_s=settings.timeout, read_timeout_s=settings.read_timeout, verify=settings.verify,
                       ca_file=settings.ca_file, proxy=settings.proxy,
                       secrets=tuple(dict.fromkeys(s for s in secrets if s)), connector_type=connector_type)


def credential_header(name: str) -> bool:
    """True for a header name that looks like it carries a credential (Authorization, X-API-Key, *token*, Cookie…)."""
    return any(word in name.lower() for word in SECRET_HEADER_WORDS)


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Values of credential-looking headers (:func:`credential_header`)."""
    return [str(value) for name, value in headers.items() if value and credential_header(name)]


def secrets(config: Config) -> list[str]:
    """What to mask for this connector: its secret fields and the whole value of each
    credential-looking header it sets (``Authorization: Bearer …`` written out in the file), so
    the daemon's outbox can resolve every placeholder it stores for them."""
    return [*secret_values(config), *header_secrets(config.headers)]


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """The request for one use of the connector.

    Args:
        config: the connector.
        fields: rendered values from the action, each optional: ``method``, ``path`` (replaces the
            connector's), ``params`` and ``headers`` (merged over the connector's), ``body`` (text;
            None = the caller rendered no body), ``basic_auth`` (``(user, password)``, replaces the
            connector's auth), ``timeout_s``, ``read_timeout_s``, ``proxy``, ``secrets`` (extra values
            to mask, e.g. the connector's substituted ``${…}`` values).

    Returns:
        An :class:`HttpRequest`; no Content-Type is added unless a header sets it
        (docs/semantics.md#webhook-status-codes).
    """
    base = config.base()
    params = {**base["params"], **dict(fields.get("params") or {})}
    path = fields["path"] if fields.get("path") is not None else base["path"]
    headers = {**config.headers, **dict(fields.get("headers") or {})}
    secrets = [*secret_values(config), *header_secrets(headers), *(fields.get("secrets") or ())]
    if fields.get("basic_auth"):
        username, password = fields["basic_auth"]
        headers["Authorization"] = basic_auth_header(username, password)
        secrets.append(password)
    elif config.auth is not None:
        name, value = config.auth.header()
        headers[name] = value
    method = str(fields.get("method") or config.method).upper()
    return HttpRequest(
        method=method,
        url=build_url(base["scheme"], base["host"], base["port"], path, params),
        headers=headers,
        body=fields.get("body"),
        timeout_s=fields.get("timeout_s") or config.timeout,
        read_timeout_s=fields.get("read_timeout_s") or config.read_timeout,
        verify=config.verify,
        ca_file=config.ca_file,
        proxy=fields.get("proxy") or config.proxy,
        secrets=tuple(dict.fromkeys(s for s in secrets if s)),
        connector_type=TYPE,
    )


def interpret(response: HttpResponse) -> Outcome:
    """HTTP status < 400 → success, else failure ``received [<status>] status code`` (Watcher)."""
    return http_outcome(response)


# ---- the action --------------------------------------------------------------------------------

KEYS = (*http_request.REQUEST_KEYS, "connector")
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

    request: http_request.HttpRequestTemplate
    connector: str | None = None
    given: frozenset = frozenset()


def parse(reader: Reader, body: Any, path) -> WebhookConfig | None:
    """Validate a Watcher ``webhook`` action body (or ``{connector: NAME, …}``); problems go to ``reader``."""
    holder = check_keys(reader, body, path, KEYS, "a webhook action such as {host: example.com, port: 443, path: /hook}")
    if holder is None:
        return None
    before = len(reader.problems)
    connector = parse_connector_name(reader, holder, path)
    fields = {key: value for key, value in holder.items() if key != "connector" and key in http_request.REQUEST_KEYS}
    if connector is not None:
        for key in DESTINATION_KEYS:
            if key in fields:
                reader.problem((*path, key), f"'{key}' cannot be combined with 'connector': the connector "
                                             f"[{connector}] gives the destination")
        fields = {**_PLACEHOLDER, **fields}
    request = http_request.parse_request(reader, fields, path)
    if connector is not None and request is not None:
        for name, text in request.headers.items():
            if credential_header(name) and text.literal() is None:
                reader.problem((*path, "headers", name),
                               f"header {name} carries a credential and is a template: a value rendered when the "
                               "watch runs cannot be kept out of the outbox and restored when it is sent; write it "
                               "here as is, or give it in the connector (e.g. from ${ENV})")
    if len(reader.problems) > before or request is None:
        return None
    return WebhookConfig(request=request, connector=connector, given=frozenset(map(str, holder)))


def action_secrets(config: WebhookConfig) -> list[str]:
    """The secrets a webhook action writes itself, known when the watch loads: its basic-auth
    password and, with a connector, the value of each credential header it sets (written as is:
    :func:`parse` refuses a template there). :func:`render` puts these in the request's ``secrets``
    besides the connector's, so the outbox stores placeholders for them."""
    request = config.request
    found = [request.auth[1]] if request.auth is not None and request.auth[1] else []
    if config.connector is not None:
        found += header_secrets({name: text.literal() or "" for name, text in request.headers.items()})
    return found


def render(config: WebhookConfig, run: Any, model: dict) -> HttpRequest:
    """The request to send.

    When the request's headers (the connector's merged under the action's) declare a JSON
    Content-Type, the body template — the action's, else the connector's — is rendered with
    ``escape="json_strings"`` (docs/correctness.md#json-bodies). Whether the rendered body then
    parses is checked before delivery (:func:`watcher.model.requests.json_body_error`).

    Raises:
        LookupError: an unknown connector. TemplateRenderError: as the templates raise it.
    """
    connector = connector_for(run, config.connector, "webhook")
    inherited = connector.config.headers if connector is not None else {}
    request = http_request.render_request(config.request, model, escape_json_body=True, inherited_headers=inherited)
    if connector is None:
        return _plain_request(request)
    settings = connector.config
    body = request.get("body")
    if "body" not in config.given and settings.body is not None:
        json_body = json_content_type({**settings.headers, **(request.get("headers") or {})})
        body = render_text(settings.body, model, escape="json_strings" if json_body else "none")
    fields = {
        "method": request["method"] if "method" in config.given else None,
        "path": request.get("path"),
        "params": request.get("params"),
        "headers": request.get("headers"),
        "body": body,
        "basic_auth": (request["auth"]["basic"]["username"], request["auth"]["basic"]["password"])
        if "auth" in request else None,
        "timeout_s": _millis_to_seconds(request.get("connection_timeout_in_millis")),
        "read_timeout_s": _millis_to_seconds(request.get("read_timeout_millis")),
        "proxy": _proxy_url(request.get("proxy")),
        "secrets": connector.secrets,
    }
    return build_request(settings, fields)


def _plain_request(request: dict) -> HttpRequest:
    """A Watcher webhook without connector: exactly the rendered template."""
    headers = dict(request.get("headers") or {})
    secrets: tuple[str, ...] = ()
    if "auth" in request:
        basic = request["auth"]["basic"]
        headers["Authorization"] = basic_auth_header(basic["username"], basic["password"])
        secrets = (basic["password"],) if basic["password"] else ()
    record = mask_data(http_request.masked(request), secrets)
    return HttpRequest(
        method=request["method"].upper(),
        url=build_url(request["scheme"], request["host"], request["port"], request.get("path"), request.get("params")),
        headers=headers,
        body=request.get("body"),
        timeout_s=_millis_to_seconds(request.get("connection_timeout_in_millis")) or 10.0,
        read_timeout_s=_millis_to_seconds(request.get("read_timeout_millis")) or 10.0,
        proxy=_proxy_url(request.get("proxy")),
        secrets=secrets,
        connector_type=TYPE,
        record=record,
    )


def _millis_to_seconds(millis: int | None) -> float | None:
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
    record: dict[str, Any] = {"host": parts.hostname or "", "port": parts.port or default_port(scheme),
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
    return http_result(TYPE, rendered, outcome)


def http_result(kind: str, rendered: HttpRequest, outcome: Outcome) -> dict:
    """``{kind: {"request": <request_record>, "response"?: …}}``: the result of an action that sends
    one HTTP request (no response when simulated or on a transport error)."""
    out: dict[str, Any] = {"request": request_record(rendered)}
    if outcome.response is not None:
        out["response"] = outcome.response
    return {kind: out}


def detailed_outcome(response: HttpResponse, detail: Callable[[dict], str]) -> Outcome:
    """2xx → success; else failure ``received [<status>] status code`` followed by ``: <detail>``
    when the body is a JSON object and ``detail(object)`` says something (the API's own words for
    what it refused). Whether the failure is retried is decided by the status alone."""
    outcome = http_outcome(response, success_below=300)
    if outcome.status == "success":
        return outcome
    try:
        answer = json.loads(response.body or "")
    except ValueError:
        return outcome
    said = detail(answer) if isinstance(answer, dict) else ""
    return dataclasses.replace(outcome, reason=f"{outcome.reason}: {said}") if said else outcome


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_BODY = "{{ alert | tojson }}"
"""What a rule's webhook action sends when neither the rule nor the connector gives a body (Jinja2)."""


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's body when the rule overrides nothing: the alert as JSON, unless the
    connector has a body template of its own (which then wins)."""
    return {} if getattr(connector.config, "body", None) else {"body": DEFAULT_RULE_BODY}


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    return {k: v for k, v in action.items() if not (k == "body" and v == DEFAULT_RULE_BODY)}
