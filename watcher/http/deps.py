"""Request dependencies shared by the routes: who calls (:func:`reader`, :func:`admin`) and the
daemon behind the app (:func:`daemon_of`).

A missing or unknown token answers 401 with ``WWW-Authenticate: Bearer``; a read-only token on an
admin route answers 403. Both bodies follow :mod:`watcher.http.errors`.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from watcher.http.access import Access, Principal
from watcher.http.errors import RequestProblem

__all__ = ["admin", "authenticate", "daemon_of", "reader"]

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="watcher"'}


def authenticate(connection: HTTPConnection) -> Principal:
    """The caller of ``connection`` (HTTP request or WebSocket).

    Raises:
        RequestProblem: 401 when no token is configured, none is sent, or it is unknown.
    """
    access: Access = connection.app.state.config.access
    if not access.configured:
        raise RequestProblem(401, "security_exception", "the API is closed: no token is configured "
                             "(watcher run --http-config FILE; see docs/api.md#authentication)", CHALLENGE)
    principal = access.authenticate(connection.headers.get("authorization"))
    if principal is None:
        reason = ("missing credentials: send Authorization: Bearer <token>"
                  if not connection.headers.get("authorization") else "unknown or malformed token")
        raise RequestProblem(401, "security_exception", reason, CHALLENGE)
    return principal


def reader(connection: HTTPConnection) -> Principal:
    """Any valid token (``read`` or ``admin``)."""
    return authenticate(connection)


def admin(connection: HTTPConnection) -> Principal:
    """An ``admin`` token.

    Raises:
        RequestProblem: 401 as :func:`authenticate`; 403 for a ``read`` token.
    """
    principal = authenticate(connection)
    if not principal.admin:
        raise RequestProblem(403, "security_exception",
                             f"token {principal.name!r} has the read role; this request needs admin")
    return principal


def daemon_of(connection: HTTPConnection):
    """The :class:`~watcher.daemon.service.Daemon` this app serves."""
    return connection.app.state.daemon
