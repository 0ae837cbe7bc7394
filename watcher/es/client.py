"""The one client seam: :func:`make_client` gives a :class:`ClusterClient` for Elasticsearch 8 or 9 and for
OpenSearch 2, with the checks of what users give for the cluster: ``ES_URL``
(:meth:`ConnectionSettings.from_env`), URLs shown without their password (:func:`redact_url`) and
index prefixes (:func:`check_index_prefix`).

The client has the ``elasticsearch.Elasticsearch`` API (elasticsearch-py 8.x, which talks to 8.x and
9.x servers). Which product answers is found on the first request (``GET /``; ``ES_PRODUCT`` skips
the question); OpenSearch's requests are then sent by opensearch-py (:mod:`watcher.es.opensearch`)
and come back in the same shapes and exception classes. docs/backends.md lists what differs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import elastic_transport
from elasticsearch import ApiError, Elasticsearch, UnsupportedProductError
from elasticsearch.exceptions import HTTP_EXCEPTIONS

from watcher.errors import ClusterError, PermanentClusterError, TransientClusterError

ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"
PRODUCTS = (ELASTICSEARCH, OPENSEARCH)


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
        product: ``elasticsearch`` or ``opensearch`` when known; None asks the cluster (``GET /``) on
            the first request.
    """

    urls: Sequence[str]
    api_key: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    product: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ConnectionSettings":
        """Read ``ES_URL`` (comma-separated for several nodes), ``ES_API_KEY``, ``ES_USERNAME``,
        ``ES_PASSWORD``, ``ES_CA_CERTS``, ``ES_VERIFY_CERTS`` (``false`` to disable) and ``ES_PRODUCT``
        (``elasticsearch`` or ``opensearch``; unset or ``auto``: asked from the cluster — set it when
        the credentials may not read ``GET /``).

        Each URL must be ``http(s)://host:port`` (a path prefix is allowed; ``https`` defaults to port
        443). Credentials written in a URL (``http://user:password@host:port``) are moved to basic
        auth and removed from :attr:`urls`, so that printing the URLs never shows them;
        ``ES_USERNAME``/``ES_PASSWORD`` take precedence over them.

        Raises:
            ValueError: ``ES_URL`` is not set, a URL is not ``http(s)://host:port`` (the message shows
                the URL with its password masked), or two URLs carry different credentials.
        """
        env = os.environ if environ is None else environ
        urls = [u.strip() for u in env.get("ES_URL", "").split(",") if u.strip()]
        if not urls:
            raise ValueError("ES_URL is not set: give the cluster URL, e.g. ES_URL=http://127.0.0.1:9250")
        split = [_split_credentials(url) for url in urls]
        credentials = {creds for _, creds in split if creds is not None}
        if len(credentials) > 1:
            raise ValueError("ES_URL: the URLs carry different credentials; give one user in ES_USERNAME/ES_PASSWORD")
        url_user, url_password = credentials.pop() if credentials else (None, None)
        product = env.get("ES_PRODUCT", "").strip().lower()
        if product not in ("", "auto", *PRODUCTS):
            raise ValueError(f"ES_PRODUCT: expected {', '.join(PRODUCTS)} or auto, found {product!r}")
        return cls(
            urls=[url for url, _ in split],
            api_key=env.get("ES_API_KEY") or None,
            username=env.get("ES_USERNAME") or url_user or None,
            password=env.get("ES_PASSWORD") or (url_password if not env.get("ES_USERNAME") else None) or None,
            ca_certs=env.get("ES_CA_CERTS") or None,
            verify_certs=env.get("ES_VERIFY_CERTS", "true").lower() not in ("0", "false", "no"),
            product=product if product in PRODUCTS else None,
        )

    def client_kwargs(self) -> dict:
        kwargs: dict = {
            "hosts": list(self.urls),
            "request_timeout": self.request_timeout,
            "retry_on_timeout": True,
            "max_retries": 2,
            "connections_per_node": 64,  # one per daemon worker thread: pooled, not reopened
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


_HOST_AFTER_AT = re.compile(r"[A-Za-z0-9.\-_\[\]:%]+(?:[/?#]|$)")
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.%A-Za-z]*\]|[A-Za-z0-9.\-_%]*)(?::\d*)?")


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``***`` (the user is kept), for printing.

    ``http://elastic:secret@host:9200`` → ``http://elastic:***@host:9200``. The userinfo is what comes
    before the last ``@`` of the authority (RFC 3986 §3.2). People also type passwords with ``/``,
    ``?`` or ``#`` unencoded, which end the authority early: when what precedes the first of them is
    not ``host[:port]``, the ``@`` taken is the last one followed by something shaped like
    ``host[:port]`` (masking too much is the safe side). A URL without a password is returned
    unchanged, and so is text that is not a URL at all (nothing to mask).
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    authority_start = scheme_end + 3
    authority_end = min((i for i in (url.find(c, authority_start) for c in "/?#") if i >= 0), default=len(url))
    authority = url[authority_start:authority_end]
    if "@" in authority:
        at = authority_start + authority.rindex("@")
    elif _HOST_PORT.fullmatch(authority):
        return url  # a real host[:port]: any later "@" is in the path or query
    else:  # "user:pass/word@host": the password cut the authority short
        ats = [i for i in range(authority_end, len(url)) if url[i] == "@"]
        at = next((i for i in reversed(ats) if _HOST_AFTER_AT.match(url, i + 1)), None)
        if at is None:
            return url
    userinfo = url[authority_start:at]
    if ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{url[:authority_start]}{user}:***{url[at:]}"


_EXPECTED_URL = "expected http(s)://host:port"


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``(url without userinfo, (user, password) or None)``; ValueError when ``url`` is not one node URL."""
    found = f"found {redact_url(url)!r}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of 0-65535 or not a number
    except ValueError:  # urllib: a port that is not a number, or out of 0-65535
        raise ValueError(f"ES_URL: {_EXPECTED_URL} with a port from 1 to 65535, {found}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"ES_URL: {_EXPECTED_URL}, {found}")
    if port is None and parts.scheme == "http":
        raise ValueError(f"ES_URL: {_EXPECTED_URL} (http needs the port, e.g. 9200), {found}")
    if port == 0:
        raise ValueError(f"ES_URL: {_EXPECTED_URL} with a port from 1 to 65535, {found}")
    if parts.query or parts.fragment:
        raise ValueError(f"ES_URL: {_EXPECTED_URL} without ?query or #fragment, {found}")
    host = parts.netloc.rsplit("@", 1)[-1]
    clean = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.username is None and parts.password is None:
        return clean, None
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


# Elasticsearch index names: lowercase, no \\ / * ? " < > | , # : or space, not starting with - _ +
# (and a leading "." means a hidden/system index). The prefix starts every index name we create.
INDEX_PREFIX_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
MAX_INDEX_PREFIX_LENGTH = 200  # index names are limited to 255 bytes; "-history-YYYY.MM.DD" follows


def check_index_prefix(prefix: str) -> str:
    """Return ``prefix`` when it can start an Elasticsearch index name (``<prefix>-history-…``).

    Allowed: lowercase letters, digits, ``-``, ``_`` and ``.``, the first character a letter or
    digit, at most :data:`MAX_INDEX_PREFIX_LENGTH` characters (Elasticsearch's index-name rules,
    docs: "Create index API", path parameters).

    Raises:
        ValueError: the message says what was expected and what was found.
    """
    if not INDEX_PREFIX_PATTERN.fullmatch(prefix) or len(prefix) > MAX_INDEX_PREFIX_LENGTH:
        raise ValueError(f"expected lowercase letters, digits, '-', '_' or '.', starting with a letter or digit "
                         f"(at most {MAX_INDEX_PREFIX_LENGTH} characters), found {prefix!r}")
    return prefix


class _Backend:
    """What a client and its ``.options()`` copies share: the product answering, and OpenSearch's transport."""

    def __init__(self, settings: ConnectionSettings):
        self.settings = settings
        self.product = settings.product
        self.opensearch = None
        self._lock = threading.Lock()
        self._last_failure: tuple[float, Exception | None] = (0.0, None)
        if self.product == OPENSEARCH:
            self._open_opensearch()

    def resolve(self, ask) -> str:
        """The product. When it is not known yet, ``ask()`` (a ``GET /``) is called under a lock; its
        answer is kept only when it is decisive (:func:`_product_from_root` returns a product).

        Threads that waited while another thread's question failed get that failure at once instead of
        asking again one after the other (a cluster that does not answer would make each wait its
        timeout in turn).

        Raises:
            what ``ask()`` raises: the transport's ``ConnectionError``/``ConnectionTimeout``, or an
            ``ApiError`` of the status ``GET /`` answered when that does not tell the product.
        """
        if self.product is not None:
            return self.product
        waiting_since = time.monotonic()
        with self._lock:
            if self.product is None:
                failed_at, failure = self._last_failure
                if failure is not None and failed_at >= waiting_since:
                    raise failure
                try:
                    product = ask()
                except Exception as error:
                    self._last_failure = (time.monotonic(), error)
                    raise
                if product == OPENSEARCH:
                    self._open_opensearch()
                self.product = product
        return self.product

    def _open_opensearch(self) -> None:
        from watcher.es.opensearch import OpenSearchTransport  # deferred: opensearch-py only when the cluster is one

        s = self.settings
        self.opensearch = OpenSearchTransport(
            list(s.urls), max_retries=2, request_timeout=s.request_timeout, api_key=s.api_key,
            http_auth=(s.username, s.password or "") if s.username and not s.api_key else None,
            verify_certs=s.verify_certs, ca_certs=s.ca_certs)

    def close(self) -> None:
        if self.opensearch is not None:
            self.opensearch.close()


class ClusterClient(Elasticsearch):
    """The ``elasticsearch.Elasticsearch`` API on Elasticsearch 8/9 or OpenSearch 2 (see the module docstring).

    Built by :func:`make_client`; ``.options(…)`` copies share the product and the connections.
    """

    _backend: _Backend | None = None

    def options(self, **kwargs: Any) -> "ClusterClient":
        client = super().options(**kwargs)
        client._backend = self._backend
        return client

    @property
    def product(self) -> str:
        """``elasticsearch`` or ``opensearch`` (asks the cluster on first use; raises what a request raises)."""
        return self._backend.resolve(self._ask_product) if self._backend else ELASTICSEARCH

    def perform_request(self, method: str, path: str, *, params=None, headers=None, body=None,
                        endpoint_id=None, path_parts=None):
        """Every API method's request: to opensearch-py's transport on OpenSearch, else as elasticsearch-py
        sends it. Raises the client's exceptions on both paths (``UnsupportedProductError`` with what to
        change when ``ES_PRODUCT=elasticsearch`` meets another product)."""
        if self._backend is not None and self.product == OPENSEARCH:
            return self._backend.opensearch.perform(
                method, path, params=params, headers=headers, body=body, request_timeout=self._request_timeout,
                max_retries=self._max_retries, ignore_status=self._ignore_status)
        try:
            return super().perform_request(method, path, params=params, headers=headers, body=body,
                                           endpoint_id=endpoint_id, path_parts=path_parts)
        except UnsupportedProductError as error:
            raise self._not_elasticsearch(error) from None

    def _ask_product(self) -> str:
        # Straight through the transport: the client's own product check would refuse OpenSearch. The
        # caller's timeout and retries apply (a quick health probe stays quick).
        headers = {**self._headers, "accept": "application/json"}
        meta, body = self.transport.perform_request(
            "GET", "/", headers=headers, request_timeout=self._request_timeout, max_retries=self._max_retries)
        product = _product_from_root(meta.status, meta.headers, body)
        if product is None:
            raise HTTP_EXCEPTIONS.get(meta.status, ApiError)(
                message=f"could not tell whether the cluster is Elasticsearch or OpenSearch: GET / answered "
                        f"{meta.status} (set ES_PRODUCT=elasticsearch or opensearch to skip this question)",
                meta=meta, body=body)
        return product

    def _not_elasticsearch(self, error: UnsupportedProductError) -> UnsupportedProductError:
        return UnsupportedProductError(
            message="the cluster is not Elasticsearch, but ES_PRODUCT=elasticsearch says it is; leave ES_PRODUCT "
                    "unset (or set it to opensearch for an OpenSearch cluster)", meta=error.meta, body=error.body)

    def close(self) -> None:
        super().close()
        if self._backend is not None:
            self._backend.close()


def _product_from_root(status: int, headers: Mapping[str, str], body: Any) -> str | None:
    """Which product answered ``GET /``, or None when the answer does not tell.

    OpenSearch: a 2xx whose ``version.distribution`` is ``opensearch``. Elasticsearch: any answer with
    the ``X-Elastic-Product: Elasticsearch`` header (Elasticsearch 7.14+ sends it on every response,
    errors included), another 2xx, or a 405 (no ``GET /`` handler). A 401, 403, 429 or 5xx without that header tells nothing (an
    OpenSearch security plugin not initialised, a proxy, a node starting up): ask again later.
    """
    if 200 <= status < 300 and isinstance(body, dict):
        version = body.get("version")
        if isinstance(version, dict) and version.get("distribution") == OPENSEARCH:
            return OPENSEARCH
    # 405: Elasticsearch's integration-test distributions have no GET / handler (no rest-root module).
    if headers.get("x-elastic-product") == "Elasticsearch" or 200 <= status < 300 or status == 405:
        return ELASTICSEARCH
    return None


def make_client(settings: ConnectionSettings) -> ClusterClient:
    """A synchronous client for ``settings`` (daemon, CLI verbs, dry-run, tests).

    Contacts nobody: the product is asked on the first request (unless ``settings.product`` says it).
    """
    client = ClusterClient(**settings.client_kwargs())
    client._backend = _Backend(settings)
    return client


def _node_version(client: Elasticsearch) -> tuple[str | None, str]:
    """``(distribution or None, version number)`` of the node answering: ``GET /``, else
    ``GET /_nodes/_local`` on distributions without the ``rest-root`` module (Maven Central's
    integration-test distribution answers ``GET /`` with 405; it is Elasticsearch)."""
    try:
        version = client.info()["version"]
        return version.get("distribution"), version["number"]
    except ApiError as error:
        if error.status_code != 405:
            raise
    node = next(iter(client.nodes.info(node_id="_local")["nodes"].values()))
    return None, node["version"]


def server_version(client: Elasticsearch) -> str:
    """The version number of the node answering, e.g. ``"8.14.1"`` (or ``"2.19.6"`` on OpenSearch).

    Raises: the client's errors (``ApiError``, ``TransportError``) other than the 405 handled above.
    """
    return _node_version(client)[1]


def server_description(client: Elasticsearch) -> str:
    """``"Elasticsearch 8.14.1"`` or ``"OpenSearch 2.19.6"``, for logs and status lines: what the node
    says it is, not what ``ES_PRODUCT`` claims. Raises as :func:`server_version`."""
    distribution, number = _node_version(client)
    return f"{'OpenSearch' if distribution == OPENSEARCH else 'Elasticsearch'} {number}"


def cluster_error_class(error: BaseException | type[BaseException]) -> type[ClusterError] | None:
    """Our cluster branch for an exception (or exception class) of the Elasticsearch client.

    * :class:`~watcher.errors.TransientClusterError` — the cluster could not answer now: the
      transport's ``ConnectionError``, ``ConnectionTimeout``, ``SniffingError`` and any other
      ``TransportError``; and ``ApiError`` itself, which the client raises only for statuses
      without a class of their own (``elasticsearch.HTTP_EXCEPTIONS``): 408, 429 and 5xx; another 4xx
      of an exception (not a class), e.g. 406, is permanent.
    * :class:`~watcher.errors.PermanentClusterError` — ``TlsError`` (certificates), ``SerializationError``,
      and the classes of the statuses retrying cannot fix (400, 401, 403, 404, 409; a server that is
      not Elasticsearch).
    * Our own cluster errors keep their branch (a bare :class:`~watcher.errors.ClusterError` stays one).
    * None: not a cluster error.
    """

    cls = error if isinstance(error, type) else type(error)
    for branch in (TransientClusterError, PermanentClusterError, ClusterError):
        if issubclass(cls, branch):
            return branch
    if issubclass(cls, (elastic_transport.TlsError, elastic_transport.SerializationError,
                        UnsupportedProductError, *HTTP_EXCEPTIONS.values())):
        return PermanentClusterError
    status = getattr(error, "status_code", None) if not isinstance(error, type) else None
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return PermanentClusterError  # e.g. 406: a request the cluster will never accept
    if issubclass(cls, (elastic_transport.TransportError, elastic_transport.ApiError)):
        return TransientClusterError
    return None


def client_error_classes() -> list[type[BaseException]]:
    """Every exception class of the Elasticsearch client (the ``TransportError`` and ``ApiError``
    trees of elastic_transport and elasticsearch), roots first."""

    found: list[type[BaseException]] = []
    queue: list[type[BaseException]] = [elastic_transport.TransportError, elastic_transport.ApiError]
    while queue:
        cls = queue.pop(0)
        if cls not in found:
            found.append(cls)
            queue.extend(cls.__subclasses__())
    return found
