"""The ``http`` input: call an HTTP endpoint; the parsed response becomes the payload.

``request`` has the webhook action's fields (docs/semantics.md#webhook-action: scheme, host, port, method,
path, params, headers, auth.basic, body, url, proxy, connection/read timeouts, default 10 s).
``path``, ``params``, ``headers`` and ``body`` are Mustache text templates (no escaping).

Payload (``ExecutableHttpInput``): ``_status_code`` (int), ``_headers`` (lower-cased name → list of
values, only when the response has headers) and the body: parsed JSON/YAML merged in (a top-level
array goes under ``data``), or — for text, or when no JSON/YAML is recognised — the text under
``_value``. The content type comes from ``response_content_type``, else the response's
Content-Type, else sniffing (``{`` → JSON, ``---`` → YAML). A 4xx/5xx response is not a failure.

Sources: docs/semantics.md#http-input;
x-pack/plugin/watcher/.../input/http/ExecutableHttpInput.java; .../common/http/HttpRequest.java.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import httpx
from ruamel.yaml import YAML

from watcher.engine.searching import extract_paths, parse_extract
from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.support import httpclient
from watcher.templates.http_request import HttpRequestTemplate, masked, parse_request, render_request

TYPE = "http"
CONTENT_TYPES = ("json", "yaml", "text")
DEFAULT_TIMEOUT = dt.timedelta(seconds=10)


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


def send(request: dict, client: Any = None):
    """Send a rendered request with httpx; return the ``httpx.Response``.

    Args:
        request: from :func:`render_request`.
        client: an ``httpx.Client`` to reuse (ignored when the request has a proxy); None → a
            short-lived client.

    Raises:
        httpx.HTTPError: connection failures and timeouts (connect/read default 10 s each).
    """

    connect = request.get("connection_timeout_in_millis", 10_000) / 1000
    read = request.get("read_timeout_millis", 10_000) / 1000
    timeout = httpclient.timeout(connect, read)
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
    with httpclient.client(proxy=proxy_url, environment_proxies=True) as own:
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
