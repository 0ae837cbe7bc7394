"""Errors of HTTP requests, and the one JSON shape every error answers with.

Body (the shape Elasticsearch answers errors with, so that its clients read ours too)::

    {"error": {"type": "resource_not_found_exception", "reason": "no watch named 'x'"}, "status": 404}

Under ``/_watcher`` (Elastic Watcher's REST API) ``error`` also holds ``root_cause``, a list of
``{"type", "reason"}``, as Elasticsearch's errors do.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, TransportError
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from watcher.errors import WatcherError

__all__ = ["RequestProblem", "cluster_error_response", "error_body", "http_exception_response", "problem_response",
           "unexpected_error_response", "validation_response"]


class RequestProblem(WatcherError):
    """A request that cannot be served as asked; the caller gets ``status`` with :func:`error_body`.

    Args:
        status: HTTP status (400, 401, 403, 404, 409, 429, 503…).
        type: the error type in the body (Elasticsearch's names where one exists:
            ``resource_not_found_exception``, ``illegal_argument_exception``,
            ``version_conflict_engine_exception``, ``security_exception``…).
        reason: one sentence for a person; never a secret.
        headers: extra response headers (``WWW-Authenticate``, ``Retry-After``…).
    """

    def __init__(self, status: int, type: str, reason: str, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(reason)
        self.status = status
        self.type = type
        self.reason = reason
        self.headers = headers or {}
        self.extra = extra


def error_body(status: int, type: str, reason: str, **extra: Any) -> dict:
    """``{"error": {"type", "reason", …extra}, "status"}``."""
    return {"error": {"type": type, "reason": reason, **extra}, "status": status}


_TYPES = {400: "illegal_argument_exception", 401: "security_exception", 403: "security_exception",
          404: "resource_not_found_exception", 405: "method_not_allowed", 409: "version_conflict_engine_exception"}


def _shaped(request: Request, body: dict) -> dict:
    """Under ``/_watcher`` the body also carries Elasticsearch's ``root_cause`` (docs/watcher-api.md#errors)."""
    if request.url.path.startswith("/_watcher"):
        error = body["error"]
        body["error"] = {"root_cause": [{"type": error["type"], "reason": error["reason"]}], **error}
    return body


async def http_exception_response(request: Request, error: HTTPException) -> JSONResponse:
    """The exception handler of Starlette's ``HTTPException`` (unknown path, wrong method…): the
    same body shape as :class:`RequestProblem`."""
    reason = error.detail if isinstance(error.detail, str) else str(error.detail)
    body = error_body(error.status_code, _TYPES.get(error.status_code, "http_error"), reason)
    return JSONResponse(_shaped(request, body), status_code=error.status_code, headers=dict(error.headers or {}))


async def problem_response(request: Request, problem: RequestProblem) -> JSONResponse:
    """The exception handler of :class:`RequestProblem`."""
    return JSONResponse(_shaped(request, error_body(problem.status, problem.type, problem.reason, **problem.extra)),
                        status_code=problem.status, headers=problem.headers)


def _where(location: tuple) -> str:
    """``body.actions[0]``, ``query.size``… from a pydantic error location."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


async def validation_response(request: Request, error: RequestValidationError) -> JSONResponse:
    """The exception handler of FastAPI's request validation: 400 ``illegal_argument_exception``
    naming each bad parameter or body field and what was expected (never the value sent)."""
    reasons = [f"{_where(tuple(item.get('loc', ())))}: {item.get('msg', 'invalid')}" for item in error.errors()]
    body = error_body(400, "illegal_argument_exception", "; ".join(reasons) or "invalid request")
    return JSONResponse(_shaped(request, body), status_code=400)


async def cluster_error_response(request: Request, error: Exception) -> JSONResponse:
    """The exception handler of the Elasticsearch client's errors: the cluster could not be reached
    (503, ``Retry-After``) or refused a request (502 with its status); the reason names the class only."""
    if isinstance(error, ApiError):
        body = error_body(502, "cluster_error", f"the cluster answered {error.status_code} ({type(error).__name__})")
        return JSONResponse(_shaped(request, body), status_code=502)
    body = error_body(503, "cluster_unavailable", f"the cluster cannot be reached ({type(error).__name__})")
    return JSONResponse(_shaped(request, body), status_code=503, headers={"Retry-After": "5"})


async def unexpected_error_response(request: Request, error: Exception) -> JSONResponse:
    """The handler of any other exception (a bug): 500 ``internal_server_error`` naming the class only
    (its message could hold anything); Starlette logs the traceback after this answer is sent."""
    body = error_body(500, "internal_server_error",
                      f"the request failed with {type(error).__name__}; the daemon's log has the details")
    return JSONResponse(_shaped(request, body), status_code=500)


CLUSTER_ERRORS = (ApiError, TransportError)
