"""The ``http`` input: call an HTTP endpoint; the parsed response becomes the payload.

``request`` has the webhook action's fields (watcher-semantics §1.7: scheme, host, port, method,
path, params, headers, auth.basic, body, url, proxy, connection/read timeouts, default 10 s).
``path``, ``params``, ``headers`` and ``body`` are Mustache text templates (no escaping).

Payload (``ExecutableHttpInput``): ``_status_code`` (int), ``_headers`` (lower-cased name → list of
values, only when the response has headers) and the body: parsed JSON/YAML merged in (a top-level
array goes under ``data``), or — for text, or when no JSON/YAML is recognised — the text under
``_value``. The content type comes from ``response_content_type``, else the response's
Content-Type, else sniffing (``{`` → JSON, ``---`` → YAML). A 4xx/5xx response is not a failure.

Sources: explore-analyze/alerts-cases/watcher/input-http.md;
x-pack/plugin/watcher/.../input/http/ExecutableHttpInput.java; .../common/http/HttpRequest.java.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.engine.searching import extract_paths, parse_extract, parse_timeout

TYPE = "http"
REDACTED = "::es_redacted::"
METHODS = ("head", "get", "post", "put", "delete")
SCHEMES = {"http": 80, "https": 443}
CONTENT_TYPES = ("json", "yaml", "text")
DEFAULT_TIMEOUT = dt.timedelta(seconds=10)
REQUEST_KEYS = ("scheme", "host", "port", "method", "path", "params", "headers", "auth", "body", "url",
                "proxy", "connection_timeout", "connection_timeout_in_millis", "read_timeout",
                "read_timeout_millis")


@dataclasses.dataclass(frozen=True)
class Text:
    """A text template rendered without escaping: ``lang`` mustache (Watcher's) or jinja (rules)."""

    source: str
    params: dict = dataclasses.field(default_factory=dict)
    lang: str = "mustache"


@dataclasses.dataclass(frozen=True)
class HttpRequestTemplate:
    """A parsed http ``request``. Timeouts are None when not given (then 10 s, not echoed)."""

    host: str
    port: int
    scheme: str = "http"
    method: str = "get"
    path: Text | None = None
    params: dict[str, Text] = dataclasses.field(default_factory=dict)
    headers: dict[str, Text] = dataclasses.field(default_factory=dict)
    auth: tuple[str, str] | None = None  # (username, password)
    body: Text | None = None
    proxy: dict | None = None  # {"host", "port", "scheme"}
    connection_timeout: dt.timedelta | None = None
    read_timeout: dt.timedelta | None = None


@dataclasses.dataclass(frozen=True)
class HttpInputConfig:
    """A parsed http input: the request template, ``extract`` paths (None = whole payload), content type."""
    request: HttpRequestTemplate
    extract: tuple[str, ...] | None
    response_content_type: str | None  # json | yaml | text | None (detect)


def parse(reader: Reader, body: Any, path) -> HttpInputConfig | None:
    """``{"request": {...}, "extract"?: [...], "response_content_type"?: json|yaml|text}``."""
    holder = reader.check_keys(path, body, ("request", "extract", "response_content_type"),
                               "an http input object such as {request: {host: ..., port: ...}}")
    if holder is None:
        return None
    if "request" not in holder:
        reader.problem(path, "missing required field 'request'")
        return None
    request = parse_request(reader, holder["request"], (*path, "request"))
    extract = parse_extract(reader, holder["extract"], (*path, "extract")) if "extract" in holder else None
    content_type = plain(holder.get("response_content_type"))
    if content_type is not None:
        if isinstance(content_type, str) and content_type.lower() in CONTENT_TYPES:
            content_type = content_type.lower()
        else:
            reader.expected((*path, "response_content_type"), "one of json, yaml, text", content_type)
    if request is None:
        return None
    return HttpInputConfig(request=request, extract=extract, response_content_type=content_type)


def parse_request(reader: Reader, value: Any, path) -> HttpRequestTemplate | None:
    """Parse the webhook-style request (keys applied in the order written, so ``url`` and explicit
    fields overwrite each other as in Watcher). ``host`` and ``port`` are required unless ``url``
    gives them. None on problems."""
    request = reader.mapping(path, value, "an http request object such as {host: example.com, port: 443}")
    if request is None:
        return None
    before = len(reader.problems)
    fields: dict[str, Any] = {}
    for key, item in request.items():
        at, item = (*path, key), plain(item)
        if key not in REQUEST_KEYS:
            reader.unknown_key(path, str(key), REQUEST_KEYS)
        elif key == "url":
            fields.update(_parse_url(reader, item, at))
        elif key == "scheme":
            if isinstance(item, str) and item.lower() in SCHEMES:
                fields["scheme"] = item.lower()
            else:
                reader.expected(at, "http or https", item)
        elif key == "host":
            if isinstance(item, str) and item:
                fields["host"] = item
            else:
                reader.expected(at, "a host name", item)
        elif key == "port":
            if isinstance(item, int) and not isinstance(item, bool) and 0 < item < 65536:
                fields["port"] = item
            else:
                reader.expected(at, "a port number between 1 and 65535", item)
        elif key == "method":
            if isinstance(item, str) and item.lower() in METHODS:
                fields["method"] = item.lower()
            else:
                reader.expected(at, f"one of {', '.join(METHODS)}", item)
        elif key in ("path", "body"):
            fields[key] = _parse_text(reader, item, at)
        elif key in ("params", "headers"):
            # Watcher merges params/headers into what a ``url`` shortcut already set (putParams).
            fields[key] = {**fields.get(key, {}), **_parse_text_map(reader, item, at)}
        elif key == "auth":
            fields["auth"] = _parse_auth(reader, item, at)
        elif key == "proxy":
            fields["proxy"] = _parse_proxy(reader, item, at)
    fields["connection_timeout"] = parse_timeout(reader, request, path, "connection_timeout",
                                                 "connection_timeout_in_millis", None)
    fields["read_timeout"] = parse_timeout(reader, request, path, "read_timeout", "read_timeout_millis", None)
    if "host" not in fields:
        reader.problem(path, "missing required field 'host' (or 'url')")
    if "port" not in fields:
        reader.problem(path, "missing required field 'port' (or 'url')")
    if len(reader.problems) > before:
        return None
    return HttpRequestTemplate(**fields)


def _parse_url(reader: Reader, value: Any, path) -> dict:
    # Watcher parses ``url`` once when the watch is stored: it is not a template.
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme.lower() not in SCHEMES or not parts.hostname:
        reader.expected(path, "an absolute http(s) URL such as https://example.com:9200/path?x=1", value)
        return {}
    scheme = parts.scheme.lower()
    fields: dict[str, Any] = {"scheme": scheme, "host": parts.hostname, "port": parts.port or SCHEMES[scheme]}
    if parts.path:
        fields["path"] = Text(urllib.parse.unquote(parts.path))
    if parts.query:
        fields["params"] = {k: Text(v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
    return fields


def _parse_text(reader: Reader, value: Any, path) -> Text | None:
    """A text template: a string, or ``{"source": "...", "params"?: {...}}`` (TextTemplate.parse)."""
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Text(str(value))
    if isinstance(value, dict) and isinstance(value.get("source"), str) and set(value) <= {"source", "params", "lang", "options"}:
        params = value.get("params") or {}
        lang = value.get("lang") or "mustache"
        if isinstance(params, dict) and lang in ("mustache", "jinja"):
            return Text(value["source"], params, lang)
    reader.expected(path, "a template string or {source: '...', params: {...}}", value)
    return None


def _parse_text_map(reader: Reader, value: Any, path) -> dict[str, Text]:
    if not isinstance(value, dict):
        reader.expected(path, "a mapping of name to template string", value)
        return {}
    texts = {}
    for name, item in value.items():
        text = _parse_text(reader, item, (*path, name))
        if text is not None:
            texts[str(name)] = text
    return texts


def _parse_auth(reader: Reader, value: Any, path) -> tuple[str, str] | None:
    basic = value.get("basic") if isinstance(value, dict) and set(value) == {"basic"} else None
    if isinstance(basic, dict) and isinstance(basic.get("username"), str) and isinstance(basic.get("password"), str):
        return basic["username"], basic["password"]
    # never echo the value: it holds a password
    reader.problem(path, "expected {basic: {username: ..., password: ...}}", at_value=True)
    return None


def _parse_proxy(reader: Reader, value: Any, path) -> dict | None:
    if (isinstance(value, dict) and isinstance(value.get("host"), str) and isinstance(value.get("port"), int)
            and value.get("scheme", "http") in SCHEMES and set(value) <= {"host", "port", "scheme"}):
        return {"host": value["host"], "port": value["port"], "scheme": value.get("scheme", "http")}
    reader.expected(path, "{host: ..., port: ..., scheme?: http|https}", value)
    return None


# ---------------------------------------------------------------------------------------------- run

def render_request(template: HttpRequestTemplate, model: dict) -> dict:
    """Render the templates; return the request as plain values (secrets included — never log it).

    Returns:
        ``{"scheme", "host", "port", "method", "path"?, "params"?, "headers"?, "auth"?: {"basic":
        {"username", "password"}}, "body"?, "connection_timeout_in_millis"?, "read_timeout_millis"?,
        "proxy"?}`` — Watcher's ``HttpRequest`` JSON.
    """
    def text(t: Text) -> str:
        from watcher.templates.text import render_text

        if t.lang == "mustache" and not t.params and "{{" not in t.source:
            return t.source
        return render_text({"source": t.source, "params": t.params, "lang": t.lang}, model)

    request: dict[str, Any] = {"host": template.host, "port": template.port, "scheme": template.scheme,
                               "method": template.method}
    if template.path is not None:
        request["path"] = text(template.path)
    if template.params:
        request["params"] = {name: text(value) for name, value in template.params.items()}
    if template.headers:
        request["headers"] = {name: text(value) for name, value in template.headers.items()}
    if template.auth is not None:
        request["auth"] = {"basic": {"username": template.auth[0], "password": template.auth[1]}}
    if template.body is not None:
        request["body"] = text(template.body)
    if template.connection_timeout is not None:
        request["connection_timeout_in_millis"] = int(template.connection_timeout.total_seconds() * 1000)
    if template.read_timeout is not None:
        request["read_timeout_millis"] = int(template.read_timeout.total_seconds() * 1000)
    if template.proxy is not None:
        request["proxy"] = dict(template.proxy)
    return request


def masked(request: dict) -> dict:
    """The request as records show it: basic-auth password and Authorization header → ``::es_redacted::``."""
    shown = dict(request)
    if "auth" in shown:
        shown["auth"] = {"basic": {"username": shown["auth"]["basic"]["username"], "password": REDACTED}}
    if "headers" in shown:
        # Watcher matches "Authorization" exactly; any spelling is masked here (secrets never leak)
        shown["headers"] = {k: (REDACTED if k.lower() == "authorization" else v) for k, v in shown["headers"].items()}
    return shown


def send(request: dict, client: Any = None):
    """Send a rendered request with httpx; return the ``httpx.Response``.

    Args:
        request: from :func:`render_request`.
        client: an ``httpx.Client`` to reuse (ignored when the request has a proxy); None → a
            short-lived client.

    Raises:
        httpx.HTTPError: connection failures and timeouts (connect/read default 10 s each).
    """
    import httpx

    connect = request.get("connection_timeout_in_millis", 10_000) / 1000
    read = request.get("read_timeout_millis", 10_000) / 1000
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
    url = httpx.URL(scheme=request["scheme"], host=request["host"], port=request["port"],
                    path=_absolute(request.get("path", "")))
    auth = (request["auth"]["basic"]["username"], request["auth"]["basic"]["password"]) if "auth" in request else None
    arguments = dict(params=request.get("params") or None, headers=request.get("headers") or None,
                     content=request["body"].encode("utf-8") if "body" in request else None,
                     auth=auth, timeout=timeout)
    proxy = request.get("proxy")
    if client is not None and proxy is None:
        return client.request(request["method"].upper(), url, **arguments)
    proxy_url = f"{proxy['scheme']}://{proxy['host']}:{proxy['port']}" if proxy else None
    with httpx.Client(proxy=proxy_url, follow_redirects=False) as own:
        return own.request(request["method"].upper(), url, **arguments)


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def response_payload(response, content_type: str | None, extract) -> dict:
    """Build the payload from an ``httpx.Response`` (see the module docstring).

    Raises:
        ValueError: the body does not parse as the expected/declared JSON or YAML.
    """
    payload: dict[str, Any] = {"_status_code": response.status_code}
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        headers.setdefault(name.lower(), []).append(value)
    if headers:
        payload["_headers"] = headers
    raw = response.content
    if not raw:
        return payload
    kind = content_type or _declared_type(response.headers.get("content-type")) or _sniff(raw)
    if kind in (None, "text"):
        payload["_value"] = raw.decode("utf-8", errors="replace")
        return payload
    try:
        data = _load(raw, kind)
        if extract is not None:
            if not isinstance(data, Mapping):
                raise TypeError("extract needs an object")
            payload.update(extract_paths(data, extract))
        elif isinstance(data, list):
            payload["data"] = data
        elif isinstance(data, Mapping):
            payload.update(data)
        else:
            raise TypeError("not an object or array")
    except Exception:
        text = raw.decode("utf-8", errors="replace")
        raise ValueError(f"could not parse response body [{text[:300]}] it does not appear to be [{kind}]") from None
    return payload


def _declared_type(header: str | None) -> str | None:
    if not header:
        return None
    media = header.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml") or media.endswith("+yaml"):
        return "yaml"
    return None


def _sniff(raw: bytes) -> str | None:
    # XContentFactory.xContentType: "---" → YAML, first non-blank "{" → JSON, else unknown (text)
    if raw.startswith(b"---"):
        return "yaml"
    if raw.lstrip()[:1] == b"{":
        return "json"
    return None


def _load(raw: bytes, kind: str) -> Any:
    if kind == "json":
        return json.loads(raw)
    from ruamel.yaml import YAML

    return plain(YAML(typ="safe", pure=True).load(raw.decode("utf-8")))


def execute(config: HttpInputConfig, run: Any) -> dict:
    """Render, send, and build the payload.

    Returns:
        ``{"type": "http", "status": "success", "payload": {...}, "http": {"request": <masked>,
        "status_code": 200}}`` — also for 4xx/5xx responses.

    Raises:
        httpx.HTTPError (connection/timeouts), ValueError (unparseable JSON/YAML body).
    """
    request = render_request(config.request, run.model())
    response = send(request, getattr(run.services, "http", None))
    payload = response_payload(response, config.response_content_type, config.extract)
    return {"type": TYPE, "status": "success", "payload": payload,
            "http": {"request": masked(request), "status_code": response.status_code}}
