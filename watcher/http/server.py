"""uvicorn on a background thread of the daemon, with its own event loop.

The socket is bound by :class:`HttpServer` itself before uvicorn starts, so a port in use is an
``OSError`` raised to the caller (uvicorn would exit the process) and port 0 is known at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from watcher.errors import WatcherError
from watcher.http.access import TlsFiles

__all__ = ["HttpServer", "HttpServerError"]

LOG = logging.getLogger("watcher.http")
# uvicorn's own start/stop lines repeat ours; its errors and warnings still show
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
START_TIMEOUT_S = 30.0


class HttpServerError(WatcherError):
    """The HTTP server could not start: the address cannot be bound, or uvicorn failed (the message
    says which)."""


class HttpServer:
    """Serve an ASGI ``app`` on ``host:port`` until :meth:`stop`.

    Args:
        app: the ASGI application (:func:`watcher.http.app.create_app`).
        host: address to bind (``127.0.0.1``, ``0.0.0.0``, ``::``…).
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        tls: certificate and key files; None serves plain HTTP.

    Raises (from :meth:`start`):
        HttpServerError: the address cannot be bound (in use, not local…), or uvicorn did not start
            within 30 s (its error is in the log).
    """

    def __init__(self, app, host: str, port: int, tls: TlsFiles | None = None):
        self.host = host
        self.tls = tls
        self._app = app
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="websockets-sansio",
                                ssl_certfile=tls.certfile if tls else None, ssl_keyfile=tls.keyfile if tls else None,
                                timeout_graceful_shutdown=5, ws_ping_interval=None, server_header=False)
        self._server = uvicorn.Server(config)

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._socket is None:
            return self._requested_port
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        """``http(s)://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self) -> None:
        """Bind, then serve on a daemon thread; returns once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as error:
            sock.close()
            raise HttpServerError(f"the HTTP server cannot listen on {self.url.split('//', 1)[1]}: {error} "
                                  "(--http-host, --http-port)") from None
        sock.set_inheritable(True)
        self._socket = sock
        self._thread = threading.Thread(target=self._serve, name="watcher-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise HttpServerError(f"the HTTP server on {self.url} did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                raise HttpServerError(f"the HTTP server on {self.url} did not start within {START_TIMEOUT_S:.0f}s")
            time.sleep(0.01)
        LOG.info("HTTP API on %s (/healthz, /metrics, /api/v1, /_watcher)", self.url)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as error:  # SystemExit from uvicorn's start-up included: keep the daemon up
            self._failure = error
            LOG.error("HTTP server stopped: %r", error)

    def stop(self) -> None:
        """Stop serving, close the socket. Idempotent. The event streams are ended first (each
        client resumes from its last cursor; docs/events.md#shutdown), so that uvicorn's graceful
        shutdown does not wait for them and then cancel them with an error."""
        if self._thread is not None:
            hub = getattr(self._app.state, "events_hub", None)
            if hub is not None:
                hub.close_threadsafe()
            self._server.should_exit = True
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
            self._thread = None
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
