"""The operations endpoints of the daemon (issue 5, item 5): ``GET /healthz`` and ``GET /metrics``.

Served by the standard library's WSGI server (threaded, as prometheus_client's own
``start_wsgi_server`` does) on a background thread; ``/metrics`` is prometheus_client's WSGI app
over the daemon's registry, so content negotiation (OpenMetrics, gzip) is the library's.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from watcher.daemon.metrics import Metrics

__all__ = ["OperationsServer"]

LOG = logging.getLogger(__name__)

Health = Callable[[], dict]


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to our logger at DEBUG instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)


class _IPv4Server(ThreadingWSGIServer):
    address_family = socket.AF_INET


class _IPv6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class OperationsServer:
    """``/healthz`` and ``/metrics`` on ``host:port``.

    Args:
        host: address to bind (``127.0.0.1``, ``0.0.0.0``, ``::``…).
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        metrics: whose registry ``/metrics`` exposes.
        health: returns the health document, e.g. ``{"status": "ok", "watches": 12}``; called on
            every ``/healthz`` request, from the server's threads. ``"status": "ok"`` answers 200,
            anything else 503; an exception answers 503 ``{"status": "error", "reason": …}``
            (the exception's type only: its message could hold anything, secrets included).

    Other paths answer 404; methods other than GET/HEAD on ``/healthz`` answer 405.
    """

    def __init__(self, host: str, port: int, metrics: Metrics, health: Health):
        self.host = host
        self._health = health
        self._metrics_app = make_wsgi_app(metrics.registry)
        server_class = _IPv6Server if ":" in host else _IPv4Server
        self._server = make_server(host, port, self._app, server_class=server_class, handler_class=_QuietHandler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._server.server_port

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="watcher-operations-http", daemon=True)
        self._thread.start()
        LOG.info("operations endpoints on %s (/healthz, /metrics)", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent; also fine when never started)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OperationsServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- WSGI

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            return self._healthz(environ, start_response)
        return _respond(start_response, "404 Not Found", {"status": "error", "reason": f"no such path {path}"})

    def _healthz(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", {"status": "error", "reason": "use GET"},
                            [("Allow", "GET, HEAD")])
        try:
            document = self._health()
        except Exception as error:
            LOG.exception("health check failed")
            document = {"status": "error", "reason": f"health check raised {type(error).__name__}"}
        healthy = isinstance(document, dict) and document.get("status") == "ok"
        return _respond(start_response, "200 OK" if healthy else "503 Service Unavailable", document)


def _respond(start_response: Callable, status: str, document: Any,
             headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps(document, default=str, sort_keys=True).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *(headers or [])])
    return [body]
