"""Who may call the HTTP API: bearer tokens with a role, read from the HTTP configuration file.

File shape (``watcher run --http-config FILE``; docs/api.md#authentication)::

    tokens:
      wallboard:                      # the token's name: shown in logs and metrics, never its value
        role: read                    # read: GET endpoints and streams; admin: everything
        token: ${WALLBOARD_TOKEN}     # ${ENV}, ${ENV:-default} or ${file:/path}, as in connectors.yaml
      ops:
        role: admin
        token: ${file:/run/secrets/watcher-admin-token}
    tls:                              # optional: serve HTTPS
      certfile: /etc/watcher/tls/cert.pem
      keyfile: /etc/watcher/tls/key.pem
    streams:                          # optional: limits of the live event streams
      max_subscribers: 2000
      max_subscribers_per_token: 200
      buffer_events: 1000

A request carries ``Authorization: Bearer <token>`` (or ``ApiKey <token>``, the form Elasticsearch
clients send for an API key). Without a configuration file, or with no tokens in it, every API path
answers 401: the API is closed until a token is configured. ``/healthz`` and ``/metrics`` are always
open (they hold no secrets). Tokens are compared in constant time and never logged or returned.
"""

from __future__ import annotations

import dataclasses
import hmac
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pydantic

from watcher.model.problems import Reader
from watcher.model.secrets import mask, resolve_secrets
from watcher.model.source import load_file, plain

__all__ = ["Access", "HttpConfig", "Principal", "Role", "StreamLimits", "TlsFiles", "load_http_config"]

Role = Literal["read", "admin"]
MIN_TOKEN_LENGTH = 16


class _TokenModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    role: Role
    token: str

    @pydantic.field_validator("token")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(f"expected a token of at least {MIN_TOKEN_LENGTH} characters (a random one: "
                             "`openssl rand -hex 32`)")
        if not (value.isascii() and value.isprintable()) or " " in value:
            # an Authorization header carries visible ASCII only: such a token could never match
            raise ValueError("expected a token of printable ASCII characters without spaces (a random one: "
                             "`openssl rand -hex 32`)")
        return value


class TlsFiles(pydantic.BaseModel):
    """PEM files of the HTTPS listener (``certfile`` may hold the chain; ``keyfile`` unencrypted)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    certfile: str
    keyfile: str


class StreamLimits(pydantic.BaseModel):
    """Limits of the live event streams (SSE, WebSocket, long-poll waits).

    Attributes:
        max_subscribers: open streams in total; one more is refused with 503.
        max_subscribers_per_token: open streams per token; one more is refused with 429.
        buffer_events: events queued for one subscriber before it is cut off with its resume cursor.
        heartbeat_s: seconds between keep-alive comments (SSE) or pings (WebSocket).
    """

    model_config = pydantic.ConfigDict(extra="forbid")
    max_subscribers: int = pydantic.Field(2000, ge=1)
    max_subscribers_per_token: int = pydantic.Field(200, ge=1)
    buffer_events: int = pydantic.Field(1000, ge=1)
    heartbeat_s: float = pydantic.Field(15.0, gt=0)


class _FileModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    tokens: dict[str, _TokenModel] = {}
    tls: TlsFiles | None = None
    streams: StreamLimits = StreamLimits()


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller of a request: the token's ``name`` and ``role``."""

    name: str
    role: Role

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Access:
    """The configured tokens; :meth:`authenticate` maps an ``Authorization`` header to a principal.

    Args:
        tokens: ``{name: (role, token value)}``.
    """

    def __init__(self, tokens: Mapping[str, tuple[Role, str]] | None = None):
        self._tokens = [(Principal(name, role), value.encode("utf-8")) for name, (role, value) in (tokens or {}).items()]

    @property
    def configured(self) -> bool:
        """True when at least one token exists (else the API is closed)."""
        return bool(self._tokens)

    @property
    def secrets(self) -> list[str]:
        """The token values (to mask wherever text could echo them)."""
        return [value.decode("utf-8") for _, value in self._tokens]

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal whose token the header carries (``Bearer <token>`` or ``ApiKey <token>``),
        or None. Every configured token is compared, in constant time, whatever matches."""
        if not authorization:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() not in ("bearer", "apikey") or not credential.strip():
            return None
        offered = credential.strip().encode("utf-8")
        found = None
        for principal, value in self._tokens:
            if hmac.compare_digest(offered, value) and found is None:
                found = principal
        return found


def _check_tls(tls: TlsFiles, reader: Reader) -> None:
    """A problem at ``tls.certfile`` when the files cannot be read or the key does not match the
    certificate (else the server would fail at start with a traceback)."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.certfile, tls.keyfile)
    except OSError as error:  # ssl.SSLError included
        reader.problem(("tls", "certfile"), f"cannot load the certificate and key ({tls.certfile}, {tls.keyfile}): "
                                            f"{error.strerror or error}")


@dataclasses.dataclass(frozen=True)
class HttpConfig:
    """The HTTP configuration: tokens, TLS files (None: plain HTTP) and stream limits."""

    access: Access = dataclasses.field(default_factory=Access)
    tls: TlsFiles | None = None
    streams: StreamLimits = dataclasses.field(default_factory=StreamLimits)


def load_http_config(path: str | Path | None, *, environ: Mapping[str, str] | None = None) -> HttpConfig:
    """Read the HTTP configuration file (module docstring); None gives the default (API closed).

    Raises:
        watcher.model.source.SourceError: the file cannot be read or is not YAML/JSON.
        watcher.model.problems.DefinitionError: every problem found, each with file, line, column
            and field (a secret's value is never part of a message); TLS files that cannot be read
            or do not match are one.
    """
    if path is None:
        return HttpConfig()
    document = load_file(path)
    reader = Reader(document)
    data = document.data if document.data is not None else {}
    if reader.mapping((), data, "a mapping with the keys tokens, tls, streams") is None:
        reader.raise_if_problems()
    base_dir = Path(path).resolve().parent
    resolved, substituted = resolve_secrets(plain(data), reader, (), environ=environ, base_dir=base_dir)
    reader.raise_if_problems()
    model = reader.validate(_FileModel, resolved, ())
    # a validation message may quote a substituted value: never show it
    reader.problems = [dataclasses.replace(p, message=mask(p.message, substituted)) for p in reader.problems]
    reader.raise_if_problems()
    assert model is not None
    for name in model.tokens:
        if not name or not isinstance(name, str):
            reader.problem(("tokens",), f"expected token names, found {name!r}")
    if model.tls is not None:
        _check_tls(model.tls, reader)
    values = [item.token for item in model.tokens.values()]
    if len(set(values)) != len(values):
        reader.problem(("tokens",), "two tokens have the same value: each token needs its own")
    reader.raise_if_problems()
    return HttpConfig(access=Access({name: (item.role, item.token) for name, item in model.tokens.items()}),
                      tls=model.tls, streams=model.streams)
