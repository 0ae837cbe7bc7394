"""Elasticsearch client factory (elasticsearch-py 8.x, which talks to 8.x and 9.x servers)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from elasticsearch import AsyncElasticsearch, Elasticsearch


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """How to reach a cluster.

    Attributes:
        urls: one or more node URLs (``http(s)://host:port``); the client round-robins and retries.
        api_key: base64 ``id:key`` API key (sent as ``Authorization: ApiKey …``); excluded from repr.
        username, password: basic auth, used when no API key is given; password excluded from repr.
        ca_certs: path to a PEM CA bundle for TLS.
        verify_certs: verify server certificates (default True; turn off only for local tests).
        request_timeout: per-request timeout in seconds.
    """

    urls: Sequence[str]
    api_key: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ConnectionSettings":
        """Read ``ES_URL`` (comma-separated for several nodes), ``ES_API_KEY``, ``ES_USERNAME``,
        ``ES_PASSWORD``, ``ES_CA_CERTS`` and ``ES_VERIFY_CERTS`` (``false`` to disable).

        Raises:
            ValueError: ``ES_URL`` is not set.
        """
        env = os.environ if environ is None else environ
        urls = [u.strip() for u in env.get("ES_URL", "").split(",") if u.strip()]
        if not urls:
            raise ValueError("ES_URL is not set: give the cluster URL, e.g. ES_URL=http://127.0.0.1:9250")
        return cls(
            urls=urls,
            api_key=env.get("ES_API_KEY") or None,
            username=env.get("ES_USERNAME") or None,
            password=env.get("ES_PASSWORD") or None,
            ca_certs=env.get("ES_CA_CERTS") or None,
            verify_certs=env.get("ES_VERIFY_CERTS", "true").lower() not in ("0", "false", "no"),
        )

    def client_kwargs(self) -> dict:
        kwargs: dict = {
            "hosts": list(self.urls),
            "request_timeout": self.request_timeout,
            "retry_on_timeout": True,
            "max_retries": 2,
        }
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.username:
            kwargs["basic_auth"] = (self.username, self.password or "")
        if any(u.startswith("https") for u in self.urls):
            kwargs["verify_certs"] = self.verify_certs
            if self.ca_certs:
                kwargs["ca_certs"] = self.ca_certs
        return kwargs


def make_client(settings: ConnectionSettings) -> Elasticsearch:
    """A synchronous client for ``settings`` (CLI verbs, dry-run, tests)."""
    return Elasticsearch(**settings.client_kwargs())


def make_async_client(settings: ConnectionSettings) -> AsyncElasticsearch:
    """An asyncio client for ``settings`` (the daemon)."""
    return AsyncElasticsearch(**settings.client_kwargs())


def server_version(client: Elasticsearch) -> str:
    """The Elasticsearch version number of the node answering, e.g. ``"8.14.1"``.

    Uses ``GET /``; falls back to ``GET /_nodes/_local`` on distributions without the ``rest-root``
    module (Maven Central's integration-test distribution answers ``GET /`` with 405).
    """
    from elasticsearch import ApiError

    try:
        return client.info()["version"]["number"]
    except ApiError as error:
        if error.status_code != 405:
            raise
    nodes = client.nodes.info(node_id="_local")["nodes"]
    return next(iter(nodes.values()))["version"]
