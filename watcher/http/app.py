"""The ASGI application of the daemon (FastAPI): every route, the error shape, the OpenAPI document
(``/api/v1/openapi.json``; docs/api.md).

Routes by module: :mod:`watcher.http.operations` (``/healthz``, ``/metrics``, open),
:mod:`watcher.http.api_v1` (``/api/v1``: watches, history, execute, ack…, outbox),
:mod:`watcher.http.events` (``/api/v1/events``, ``/events/stream``, ``/events/ws``; docs/events.md).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from watcher.http import api_v1, events, operations, watcher_api
from watcher.http.access import HttpConfig
from watcher.http.errors import (CLUSTER_ERRORS, RequestProblem, cluster_error_response, http_exception_response,
                                 problem_response, unexpected_error_response, validation_response)
from watcher.version import __version__

__all__ = ["create_app"]

OPEN_PATHS = ("/healthz", "/metrics")


def create_app(daemon, config: HttpConfig | None = None) -> FastAPI:
    """The app serving ``daemon`` (a :class:`~watcher.daemon.service.Daemon`, started or not).

    Args:
        daemon: read by the routes through :func:`watcher.http.deps.daemon_of`.
        config: tokens, TLS and stream limits (default: no token, the API closed).
    """
    app = FastAPI(title="watcher", version=__version__, openapi_url="/api/v1/openapi.json",
                  docs_url="/api/v1/docs", redoc_url=None,
                  description="Alert rules and Elastic Watcher watches on Elasticsearch and OpenSearch: "
                              "status, history, execution, acknowledgement, the outbox and live events.")
    app.state.daemon = daemon
    app.state.config = config or HttpConfig()
    app.add_exception_handler(Exception, unexpected_error_response)
    app.add_exception_handler(RequestProblem, problem_response)
    app.add_exception_handler(HTTPException, http_exception_response)
    app.add_exception_handler(RequestValidationError, validation_response)
    for error_class in CLUSTER_ERRORS:
        app.add_exception_handler(error_class, cluster_error_response)
    app.include_router(operations.router)
    app.include_router(api_v1.router)
    app.include_router(events.router)
    app.include_router(watcher_api.router)
    app.add_middleware(watcher_api.ProductHeader)
    app.openapi = lambda: _openapi_with_security(app)
    return app


def _openapi_with_security(app: FastAPI) -> dict:
    """FastAPI's document plus the bearer scheme every route but ``/healthz`` and ``/metrics`` needs
    (the routes check tokens themselves, so FastAPI cannot tell)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        document.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "A token of --http-config (docs/api.md#authentication); also accepted as "
                                     "`Authorization: ApiKey <token>`."}}
        for path, operations in document.get("paths", {}).items():
            if path not in OPEN_PATHS:
                for operation in operations.values():
                    operation["security"] = [{"token": []}]
        app.openapi_schema = document
    return app.openapi_schema
