"""Requests to an OpenSearch cluster, sent by opensearch-py, answered in the Elasticsearch client's shapes.

The engine talks to every cluster through :class:`watcher.es.client.ClusterClient` (the
``elasticsearch.Elasticsearch`` API). The REST calls we make — search, msearch, bulk, get/mget,
index/create/delete, count, field caps, index templates, ingest pipelines, stored scripts, the
Painless execute API, cluster health, node info — have the same paths and bodies on OpenSearch 2
(the Elasticsearch 7.10 REST API it kept). What differs is the wire: the Elasticsearch client sends
``application/vnd.elasticsearch+json; compatible-with=8`` (OpenSearch answers 406) and refuses any
server that lacks the ``X-Elastic-Product`` header. So for OpenSearch the client builds the request
as usual and :class:`OpenSearchTransport` sends it with opensearch-py's transport (plain JSON media
types, its connection pool, retries and authentication), then gives back what the Elasticsearch
client would have: an ``ApiResponse`` on success, and on failure the same exception classes
(``NotFoundError``, ``ConflictError``, ``elastic_transport.ConnectionError``…) — so every caller,
and :func:`watcher.es.client.cluster_error_class`, decides the same way on both products.

What we lose: response headers and the exact 2xx status (opensearch-py returns only the body); a
success is reported as status 200. Differences between the products that matter to the engine are
in docs/backends.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlencode

import elastic_transport
import opensearchpy
from elastic_transport import (
    ApiResponse,
    ApiResponseMeta,
    BinaryApiResponse,
    HeadApiResponse,
    HttpHeaders,
    ListApiResponse,
    ObjectApiResponse,
    TextApiResponse,
)
from elastic_transport.client_utils import DEFAULT, url_to_node_config  # DEFAULT: "option not set"
from elasticsearch import ApiError
from elasticsearch.exceptions import HTTP_EXCEPTIONS

_NDJSON = "x-ndjson"


class OpenSearchTransport:
    """opensearch-py transports for one set of nodes (one with the configured retries, one with none).

    Args:
        urls: node URLs (``http(s)://host:port``).
        max_retries: retries on connection errors, timeouts and 502/503/504.
        request_timeout: default per-request timeout in seconds.
        http_auth: ``(user, password)`` or None.
        api_key: sent as ``Authorization: ApiKey …`` when given (OpenSearch itself has no API keys; a
            proxy in front of it may).
        verify_certs, ca_certs: TLS settings for ``https`` URLs.
        pool_size: connections kept per node.
    """

    def __init__(self, urls: list[str], *, max_retries: int, request_timeout: float,
                 http_auth: tuple[str, str] | None = None, api_key: str | None = None,
                 verify_certs: bool = True, ca_certs: str | None = None, pool_size: int = 64):
        # Retried as elasticsearch-py retries: timeouts, 429 and 502/503/504.
        options: dict[str, Any] = {"timeout": request_timeout, "retry_on_timeout": True, "pool_maxsize": pool_size,
                                   "retry_on_status": (429, 502, 503, 504)}
        if http_auth:
            options["http_auth"] = http_auth
        if api_key:
            options["headers"] = {"authorization": f"ApiKey {api_key}"}
        if any(url.startswith("https") for url in urls):
            options["verify_certs"] = verify_certs
            options["ssl_show_warn"] = verify_certs
            if ca_certs:
                options["ca_certs"] = ca_certs
        self._node = url_to_node_config(urls[0])
        # opensearch-py logs a WARNING for every non-2xx answer, even a 404 we asked to ignore; the
        # Elasticsearch client does not. Callers report the failures that matter themselves.
        requests_log = logging.getLogger("opensearch")
        if requests_log.level == logging.NOTSET:
            requests_log.setLevel(logging.ERROR)
        # The OpenSearch client parses the URLs into its transport's host list; we use only the transport.
        self._clients = [opensearchpy.OpenSearch(urls, max_retries=retries, **options) for retries in (max_retries, 0)]
        self._retrying, self._once = (client.transport for client in self._clients)

    def close(self) -> None:
        """Close the connections of both transports."""
        for client in self._clients:
            client.close()

    def perform(self, method: str, path: str, *, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None,
                body: Any, request_timeout: Any, max_retries: Any, ignore_status: Any) -> ApiResponse:
        """Send one request; return or raise as ``elasticsearch.Elasticsearch.perform_request`` does.

        Args:
            method, path, params, headers, body: as the Elasticsearch client's API methods pass them
                (a list body with an ``x-ndjson`` content type is newline-delimited JSON).
            request_timeout, max_retries, ignore_status: the client's ``.options()`` values, or
                ``DEFAULT``; ``max_retries`` other than 0 uses the configured retries.

        Raises:
            elasticsearch.ApiError (its status class), elastic_transport.ConnectionError,
            ConnectionTimeout, TlsError or SerializationError.
        """
        params, body = _opensearch_shape(path, dict(params or {}), body)
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        content_type = headers.get("content-type", "application/json")
        if isinstance(body, (list, tuple)) and _NDJSON in content_type:
            body = "".join(_ndjson_line(item) for item in body)
        elif body is not None and not isinstance(body, (str, bytes)):
            body = _JSON.dumps(body).decode("utf-8")  # datetimes, Decimals… as elasticsearch-py writes them
        # The client's own media types (never the compatible-with=8 ones, which OpenSearch refuses).
        plain = {name: headers[name] for name in ("accept", "content-type") if name in headers}
        transport = self._once if max_retries == 0 else self._retrying
        timeout = None if request_timeout is DEFAULT else request_timeout
        ignored = _ignored(ignore_status)
        target = f"{path}?{urlencode({k: _query_value(v) for k, v in params.items()})}" if params else path
        try:
            data = transport.perform_request(method, target, params={}, body=body, timeout=timeout, headers=plain)
        except opensearchpy.TransportError as error:
            status = error.status_code if isinstance(error.status_code, int) else None
            if status is None:
                raise _transport_error(error) from error
            meta = self._meta(status)
            if status in ignored:
                return _response(method, meta, error.info)
            raise HTTP_EXCEPTIONS.get(status, ApiError)(message=str(error.error), meta=meta, body=error.info) from None
        except opensearchpy.SerializationError as error:
            raise elastic_transport.SerializationError(str(error)) from error
        if method == "HEAD":  # opensearch-py answers True/False; a 404 is a normal answer here too
            return HeadApiResponse(meta=self._meta(200 if data else 404))
        return _response(method, self._meta(200), data)

    def _meta(self, status: int) -> ApiResponseMeta:
        return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0, node=self._node)


def _opensearch_shape(path: str, params: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
    """Requests whose shape differs between elasticsearch-py 8 and OpenSearch 2, rewritten for OpenSearch.

    * ``_field_caps``: the client puts ``fields`` in the body (Elasticsearch 8.5+); OpenSearch reads
      it only from the query string.
    """
    if path.endswith("/_field_caps") and isinstance(body, dict) and "fields" in body:
        body = dict(body)
        params["fields"] = body.pop("fields")
        body = body or None
    return params, body


_JSON = elastic_transport.JsonSerializer()  # the serialiser elasticsearch-py uses for the same bodies


def _ndjson_line(item: Any) -> str:
    # The bulk helpers hand over lines they serialised already (str or bytes).
    if isinstance(item, bytes):
        return item.decode("utf-8") + "\n"
    return (item if isinstance(item, str) else _JSON.dumps(item).decode("utf-8")) + "\n"


def _query_value(value: Any) -> str:
    """A query-string value as Elasticsearch and OpenSearch read it: lists comma-joined, booleans lowercase."""
    if isinstance(value, (list, tuple)):
        return ",".join(_query_value(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value.decode() if isinstance(value, bytes) else str(value)


def _ignored(ignore_status: Any) -> Collection[int]:
    if ignore_status is DEFAULT or ignore_status is None:
        return ()
    return (ignore_status,) if isinstance(ignore_status, int) else tuple(ignore_status)


def _response(method: str, meta: ApiResponseMeta, data: Any) -> ApiResponse:
    if isinstance(data, dict):
        return ObjectApiResponse(body=data, meta=meta)
    if isinstance(data, list):
        return ListApiResponse(body=data, meta=meta)
    if isinstance(data, str):
        return TextApiResponse(body=data, meta=meta)
    if isinstance(data, bytes):
        return BinaryApiResponse(body=data, meta=meta)
    return ApiResponse(body=data, meta=meta)


def _transport_error(error: opensearchpy.TransportError) -> elastic_transport.TransportError:
    """The elastic_transport class for an opensearch-py failure that has no HTTP status."""
    message = str(error.error)
    cause = (error.info,) if isinstance(error.info, BaseException) else ()  # shown by str(): "… caused by: …"
    if isinstance(error, opensearchpy.ConnectionTimeout):
        return elastic_transport.ConnectionTimeout(message, errors=cause)
    if isinstance(error, opensearchpy.SSLError):
        return elastic_transport.TlsError(message, errors=cause)
    if isinstance(error, opensearchpy.ConnectionError):
        return elastic_transport.ConnectionError(message, errors=cause)
    return elastic_transport.TransportError(message, errors=cause)
