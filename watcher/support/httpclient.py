"""The one place HTTP clients are made (httpx), for every path to the network: the ``http`` input,
dry-run's ``--action-mode execute`` (:class:`watcher.delivery.direct.SendNow`) and the daemon's
outbox. Each sets the same things the same way: connect/read timeouts, TLS verification with an
optional CA bundle, an explicit proxy, and no redirects (Watcher records a 3xx as the response; a
redirect followed silently could carry credentials to another host).

Timeouts are seconds (float). ``HTTP(S)_PROXY`` environment variables are ignored unless
``environment_proxies`` is set: a proxy is configured per connector or per request.
"""

from __future__ import annotations

import functools
import ssl

import httpx

POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""Connections one pooled client keeps: at most 100 open, 20 idle kept alive."""


def timeout(connect_s: float, read_s: float) -> httpx.Timeout:
    """``connect_s`` for connecting and for a free pooled connection, ``read_s`` for reading and
    writing."""
    return httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s)


def verification(verify: bool = True, ca_file: str | None = None) -> bool | ssl.SSLContext:
    """What httpx's ``verify`` takes: False (no verification), True (the system's CAs), or a context
    trusting ``ca_file`` (PEM; one context per file, made once).

    Raises:
        OSError, ssl.SSLError: ``ca_file`` cannot be read or holds no certificate.
    """
    return _context(ca_file) if verify and ca_file else verify


@functools.lru_cache(maxsize=64)
def _context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def client(*, verify: bool | ssl.SSLContext = True, ca_file: str | None = None, proxy: str | None = None,
           timeout_s: httpx.Timeout | None = None, environment_proxies: bool = False) -> httpx.Client:
    """A synchronous client (close it, or use it as a context manager).

    Args:
        verify, ca_file: see :func:`verification` (a ready context is taken as is).
        proxy: ``http://host:port``, or None for a direct connection.
        timeout_s: the client's default timeout (see :func:`timeout`); requests may give their own.
        environment_proxies: honour ``HTTP(S)_PROXY`` and ``NO_PROXY`` (the http input does).
    """
    checked = verify if isinstance(verify, ssl.SSLContext) else verification(verify, ca_file)
    return httpx.Client(verify=checked, proxy=proxy, timeout=timeout_s, follow_redirects=False,
                        trust_env=environment_proxies)


def async_client(*, verify: bool | ssl.SSLContext = True, ca_file: str | None = None,
                 proxy: str | None = None) -> httpx.AsyncClient:
    """A pooled asynchronous client (:data:`POOL_LIMITS`) for many requests to few hosts."""
    checked = verify if isinstance(verify, ssl.SSLContext) else verification(verify, ca_file)
    return httpx.AsyncClient(verify=checked, proxy=proxy, follow_redirects=False, trust_env=False, limits=POOL_LIMITS)
