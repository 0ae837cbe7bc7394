"""Watcher's HTTP request template, shared by the ``http`` input and the ``webhook`` action:
``scheme``, ``host``, ``port``, ``method``, ``path``, ``params``, ``headers``, ``auth.basic``,
``body``, ``url``, ``proxy`` and the connection/read timeouts (10 s by default). ``path``,
``params``, ``headers`` and ``body`` are Mustache text templates (no escaping); for the webhook
action, a body whose request declares a JSON Content-Type escapes the values it prints inside JSON
strings (``escape_json_body``; ours, docs/correctness.md#json-bodies).
See docs/semantics.md#webhook-action and #http-input.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from collections.abc import Mapping
from typing import Any

from watcher.model.fields import parse_timeout
from watcher.model.problems import Reader
from watcher.model.requests import REDACTED, json_content_type
from watcher.model.source import plain
from watcher.templates.text import render_text

METHODS = ("head", "get", "post", "put", "delete")
SCHEMES = {"http": 80, "https": 443}
REQUEST_KEYS = ("scheme", "host", "port", "method", "path", "params", "headers", "auth", "body", "url",
                "proxy", "connection_timeout", "connection_timeout_in_millis", "read_timeout",
                "read_timeout_millis")


@dataclasses.dataclass(frozen=True)
class Text:
    """A text template rendered without escaping: ``lang`` mustache (Watcher's) or jinja (rules)."""

    source: str
    params: dict = dataclasses.field(default_factory=dict)
    lang: str = "mustache"

    def literal(self) -> str | None:
        """The text itself when rendering cannot change it (Mustache without params or ``{{``), else None."""
        return self.source if self.lang == "mustache" and not self.params and "{{" not in self.source else None


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

def render_request(template: HttpRequestTemplate, model: dict, *, escape_json_body: bool = False,
                   inherited_headers: Mapping[str, str] | None = None) -> dict:
    """Render the templates; return the request as plain values (secrets included — never log it).

    Args:
        template: the parsed request.
        model: the template model, ``{"ctx": …}`` (plus a rule alert's variables).
        escape_json_body: when the request declares a JSON Content-Type (its rendered headers over
            ``inherited_headers``, see :func:`watcher.model.requests.json_content_type`), render the
            body with ``escape="json_strings"`` (the webhook action; the http input keeps
            Watcher's unescaped body).
        inherited_headers: headers the request will also carry (a webhook connector's), used only to
            decide whether the body is JSON.

    Returns:
        ``{"scheme", "host", "port", "method", "path"?, "params"?, "headers"?, "auth"?: {"basic":
        {"username", "password"}}, "body"?, "connection_timeout_in_millis"?, "read_timeout_millis"?,
        "proxy"?}`` — Watcher's ``HttpRequest`` JSON.
    """
    def text(t: Text, escape: str = "none") -> str:
        if t.literal() is not None:
            return t.source
        return render_text({"source": t.source, "params": t.params, "lang": t.lang}, model, escape=escape)

    request: dict[str, Any] = {"host": template.host, "port": template.port, "scheme": template.scheme,
                               "method": template.method}
    if template.path is not None:
        request["path"] = text(template.path)
    if template.params:
        request["params"] = {name: text(value) for name, value in template.params.items()}
    if template.headers:
        request["headers"] = {name: text(value) for name, value in template.headers.items()}
    json_body = escape_json_body and json_content_type({**(inherited_headers or {}), **request.get("headers", {})}) is not None
    if template.auth is not None:
        request["auth"] = {"basic": {"username": template.auth[0], "password": template.auth[1]}}
    if template.body is not None:
        request["body"] = text(template.body, "json_strings" if json_body else "none")
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
