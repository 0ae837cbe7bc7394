"""The durable outbox: every HTTP request and email an action renders is written to Elasticsearch
before it is sent, then sent with retries until it is delivered or dead (issue 5, item 4).
At-least-once: each HTTP delivery carries ``Idempotency-Key: <delivery id>`` and each email
``Message-ID: <delivery id@sender's domain>`` — the same on every try — so receivers can drop
duplicates. Emails are sent by :mod:`watcher.delivery.smtp` (in a worker thread: ``smtplib``
blocks): a 4xx reply, a refused, lost or timed-out connection are retried, a 5xx reply is dead at
once (docs/semantics.md#email-delivery).

Life of a delivery (index ``<prefix>-outbox``, one document per delivery, ``_id`` = delivery id; the
documents and the requests that create, claim, update and search them are
:mod:`watcher.es.outbox_store`; this module sends, queues, leases and retries)::

    deliver() ──► pending ──claim──► delivering ──► delivered
                     ▲                  │  └──────► dead  (4xx, too many attempts / too old,
                     └── retry (429, 5xx, network; next_attempt_at = now + backoff)   secret gone)

* **Write first.** :meth:`Outbox.deliver` writes the delivery ``pending`` (``op_type=create``: a
  re-execution of the same record creates nothing new) and only then offers it to the worker.
* **Bounded memory, nothing dropped.** Each connector has a bounded in-memory queue; when it is full
  the delivery stays only in the store ("spill") and the poller picks it up later.
* **Claims.** A worker claims a delivery (``pending`` → ``delivering`` with ``lease_until``) with
  optimistic concurrency (``if_seq_no``/``if_primary_term``), so two processes never send the same
  version. A ``delivering`` row whose lease expired (process killed mid-send) is claimed again.
* **Lanes.** Per-connector concurrency and rate limits (:mod:`watcher.delivery.ratelimit`): a slow
  receiver stalls only its own connector, never others nor rule evaluation (which only writes a row).
* **Retries** follow :class:`~watcher.delivery.retry.RetryPolicy` (backoff with full jitter,
  ``Retry-After`` honoured, dead after ``max_attempts`` or ``max_age_s``).
* **Secrets are never stored.** Each secret of the request (``HttpRequest.secrets``) is replaced by
  ``${secret:hmac:<32 hex of HMAC-SHA256(deployment key, value)>}`` before writing (``:url``,
  ``:urlplus``, ``:json`` suffixes for the URL-encoded and JSON-escaped forms; ``${secret-basic:…}``
  for a Basic Authorization token, which hides the password in base64), and the request records the
  key's id (``secret_key_id``). The key (:mod:`watcher.delivery.secretkey`) is kept outside
  Elasticsearch, so a stored placeholder cannot be tested against guesses of a short secret.
  An email is stored as :meth:`~watcher.model.requests.EmailRequest.as_dict` with every string
  sealed the same way (:func:`seal_email`): its SMTP password is a placeholder, never the value.
  Placeholders are resolved at send time from ``secrets_provider()`` (the daemon gives every secret
  its loaded definitions hold: the connectors' and those written in the watches' own actions, such
  as an inline basic-auth password; their digests are kept until it gives another list); one that
  cannot be resolved makes the delivery dead with the reason :data:`SECRET_GONE` (the secret was
  rotated: removed from the connectors, or the watch that held it changed or removed) or
  :data:`OTHER_KEY` (it was sealed under another deployment key: run with that key and retry it).
  Placeholders of the unkeyed form written before (``${secret:<16 hex of sha256(value)>}``) are
  still resolved, and the delivery is stored again with keyed ones when its attempt is recorded
  (docs/correctness.md#secret-placeholders).

Durability and speed: writes use the default ``refresh=false``. A write is durable once acknowledged
(Elasticsearch fsyncs the translog before answering, ``index.translog.durability: request``), and
gets by ``_id`` are real-time, so neither the enqueue nor the claim waits for a refresh. Only the
poller *searches*; it sees a new row after the next refresh (≤ 1 s), which is fine for spilled and
recovered deliveries, while the fast path (queue → claim → send) never searches. Admin views
(:meth:`Outbox.list_deliveries`, :meth:`Outbox.depth`) refresh first so they are exact.

Throughput. Each write is acknowledged only after the translog fsync (~10 ms), so writes are
group-committed (:mod:`watcher.es.groupcommit`): the creates of concurrent callers share a
``_bulk``, and so do the worker's claims and results; each item keeps its own answer (a version
conflict is its caller's alone). A lane claims ahead of its sends (:data:`CLAIM_AHEAD`), so a free
in-flight slot never waits for a claim's round trip, and releases the slot as soon as the receiver
answered (the result is written outside the connector's concurrency). A claim that waited so long
that its lease could end mid-send is claimed anew before sending (:data:`LEASE_MARGIN_S`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from watcher.delivery import smtp
from watcher.delivery.direct import SendNow
from watcher.delivery.ratelimit import ConnectorLimits
from watcher.delivery.retry import RetryPolicy, classify, parse_retry_after
from watcher.delivery.secretkey import SecretKey, process_key
from watcher.destinations import CONNECTORS as REGISTRY
from watcher.errors import FinalDeliveryError
from watcher.es.groupcommit import AsyncGroupCommit
from watcher.es.outbox_store import (DEAD, DELIVERED, DELIVERING, PENDING, STATES, OutboxStore, StoredDelivery,
                                     new_delivery)
from watcher.model.requests import (EMAIL_KIND, EmailRequest, HttpRequest, HttpResponse, IndexRequest, LogMessage,
                                    Outcome, combine, delivery_id, email_message_id)
from watcher.model.secrets import mask, mask_data
from watcher.support import httpclient
from watcher.support.datemath import format_iso_millis, parse_instant

log = logging.getLogger(__name__)

# A lane claims ahead of its sends (so a free slot never waits for a claim's round trip): up to
# CLAIM_AHEAD × its concurrency, and no more than its concurrency + about one second of its rate.
CLAIM_AHEAD = 4
# A poll's search sees rows as of the last refresh (≤ 1 s): a delivery finished this recently may
# still look due there; the poll skips it rather than claim a stale copy (a wasted conditional write).
RECENTLY_DONE_S = 3.0
# A claimed delivery is sent only with its timeouts + this much of its lease left (else claimed anew);
# a claim's lease is at least timeouts + 5 s, so it may wait up to 2.5 s for a slot and a token.
LEASE_MARGIN_S = 2.5

IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_GONE = "secret for this delivery is no longer configured"
# The start of the reason of a delivery sealed under another deployment key (see other_key_reason).
OTHER_KEY = "sealed with another deployment key"


def utcnow() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


def _iso(value: dt.datetime) -> str:
    return format_iso_millis(value)


def _iso_ceil(value: dt.datetime) -> str:
    # Round *up* to the millisecond: a stored "not before" time must never be earlier than computed.
    return format_iso_millis(value + dt.timedelta(microseconds=999))


# -- secrets ----------------------------------------------------------------------------------------

class UnresolvedSecret(FinalDeliveryError):
    """A stored placeholder names a secret that ``secrets_provider`` no longer gives, or one sealed
    under another deployment key; the message (:data:`SECRET_GONE` or :func:`other_key_reason`) is
    the dead delivery's reason and holds no secret."""


def other_key_reason(sealed_with: str, ours: str) -> str:
    """Why a delivery sealed under key id ``sealed_with`` cannot be sent by a process with key id
    ``ours`` (both key ids, never keys), and what the operator does about it."""
    return (f"{OTHER_KEY} (key id {sealed_with}; this process has {ours}): run watcher with the key it was "
            f"written with (--secret-key-file or WATCHER_SECRET_KEY), then `watcher outbox --retry ID`")


# ${secret:hmac:<32 hex>} (keyed, group 1) or ${secret:<16 hex>} (unkeyed, written before; group 2),
# with an optional form (group 3); or ${secret-basic:<base64 with placeholders inside>} (group 4).
_PLACEHOLDER = re.compile(r"\$\{secret:(?:hmac:([0-9a-f]{32})|([0-9a-f]{16}))(?::(url|urlplus|json))?\}"
                          r"|\$\{secret-basic:([A-Za-z0-9+/=]*)\}")
_BASIC = re.compile(r"^(\s*basic\s+)([A-Za-z0-9+/=]+)(\s*)$", re.IGNORECASE)
_FORMS: dict[str | None, Callable[[str], str]] = {
    None: lambda s: s,
    "url": lambda s: quote(s, safe=""),
    "urlplus": quote_plus,
    "json": lambda s: json.dumps(s)[1:-1],
}
# The stored request's field naming the key its placeholders were sealed under.
KEY_ID_FIELD = "secret_key_id"


def _unkeyed_digest(value: str) -> str:
    """How placeholders named a secret before they were keyed: 16 hex of sha256(value). Only ever
    computed to *resolve* such placeholders, in memory; never written."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def _placeholder(digest: str, form: str | None) -> str:
    return f"${{secret:hmac:{digest}}}" if form is None else f"${{secret:hmac:{digest}:{form}}}"


def _replacer(secrets: Iterable[str], key: SecretKey) -> Callable[[str], str]:
    """A function replacing every form of every secret with its placeholder, in one pass (so a
    placeholder's own text is never rescanned), longest form first."""
    table: dict[str, str] = {}
    unique = list(dict.fromkeys(s for s in secrets if s))
    # A value that contains another secret (``Bearer <token>``, a URL with a key) is stored with the
    # inner secret's placeholder: the configured secret is what the daemon can resolve later.
    unique = [s for s in unique if not any(other != s and other in s for other in unique)]
    for secret in unique:
        digest = key.digest(secret)
        for form, encode in _FORMS.items():
            text = encode(secret)
            if text and text not in table:  # the plain form wins when encodings coincide
                table[text] = _placeholder(digest, form)
    if not table:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(text) for text in sorted(table, key=len, reverse=True)))
    return lambda text: pattern.sub(lambda match: table[match.group(0)], text) if text else text


def seal_request(request: HttpRequest, key: SecretKey | None = None) -> dict:
    """The request as stored in the outbox: secrets replaced by placeholders, nothing else lost.

    Args:
        request: the rendered request; ``request.secrets`` are the values to replace.
        key: the deployment key naming the secrets (default: :func:`~watcher.delivery.secretkey.process_key`).

    Returns:
        ``{"method", "url", "headers": {name: value}, "body", "timeout_s", "read_timeout_s", "verify",
        "ca_file", "proxy", "connector_type", "secret_key_id"}``.
    """
    key = key or process_key()
    replace = _replacer(request.secrets, key)
    headers = {}
    for name, value in request.headers.items():
        text = str(value)
        basic = _BASIC.match(text)
        if basic and request.secrets:
            try:
                decoded = base64.b64decode(basic.group(2), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = None
            if decoded is not None and replace(decoded) != decoded:
                token = base64.b64encode(replace(decoded).encode("utf-8")).decode("ascii")
                text = f"{basic.group(1)}${{secret-basic:{token}}}{basic.group(3)}"
        headers[replace(str(name))] = replace(text)
    return {
        "method": request.method,
        "url": replace(request.url),
        "headers": headers,
        "body": replace(request.body) if request.body is not None else None,
        "timeout_s": request.timeout_s,
        "read_timeout_s": request.read_timeout_s,
        "verify": request.verify,
        "ca_file": request.ca_file,
        "proxy": replace(request.proxy) if request.proxy else request.proxy,
        "connector_type": request.connector_type,
        KEY_ID_FIELD: key.key_id,
    }


def seal_email(request: EmailRequest, key: SecretKey | None = None) -> dict:
    """The email as stored in the outbox: :meth:`EmailRequest.as_dict` with every secret of
    ``request.secrets`` (the SMTP password among them) replaced by its placeholder in every string
    (the SMTP settings and the message alike), plus the key's id.

    Returns:
        ``{"kind": "email", "connector_type", "timeout_s", "read_timeout_s", "smtp": {…}, "message":
        {…}, "secret_key_id"}`` holding no secret.
    """
    key = key or process_key()
    replace = _replacer(request.secrets, key)
    return {**_map_strings(request.as_dict(), replace), KEY_ID_FIELD: key.key_id}


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (JSON-like) with ``change`` applied to every string in it (keys left alone)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return value


def _rewrite(stored: dict, simple: Callable[[re.Match], str], *, unwrap_basic: bool) -> dict:
    """``stored`` with every placeholder of its URL, headers, body and proxy replaced by
    ``simple(match)``; a Basic token's placeholders are rewritten inside the token, which stays a
    ``${secret-basic:…}`` placeholder unless ``unwrap_basic``."""

    def text_of(text: str | None) -> str | None:
        if not text or "${secret" not in text:
            return text

        def substitute(match: re.Match) -> str:
            if match.group(4) is not None:  # a Basic token: decode, rewrite inside, encode again
                inner = text_of(base64.b64decode(match.group(4)).decode("utf-8"))
                token = base64.b64encode(inner.encode("utf-8")).decode("ascii")
                return token if unwrap_basic else f"${{secret-basic:{token}}}"
            return simple(match)

        return _PLACEHOLDER.sub(substitute, text)

    request = dict(stored)
    if stored.get("kind") == EMAIL_KIND:
        for part in ("smtp", "message"):
            request[part] = _map_strings(stored.get(part) or {}, text_of)
        return request
    request["url"] = text_of(stored["url"])
    request["headers"] = {text_of(name): text_of(str(value)) for name, value in (stored.get("headers") or {}).items()}
    request["body"] = text_of(stored.get("body"))
    request["proxy"] = text_of(stored.get("proxy"))
    return request


def secret_digests(secrets: Iterable[str], key: SecretKey) -> dict[str, str]:
    """``{key's digest of the secret: secret}`` of every non-empty value of ``secrets``: how keyed
    placeholders are looked up."""
    return {key.digest(s): s for s in secrets if s}


def unseal_request(stored: dict, secrets: Iterable[str], key: SecretKey | None = None, *,
                   digests: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """Resolve the placeholders of a stored request.

    Keyed placeholders are looked up by ``key``'s digest of each of ``secrets``; unkeyed ones
    (written before placeholders were keyed) by their sha256 prefix.

    Args:
        stored: the request as :func:`seal_request` stored it.
        secrets: the secret values the process knows now (the daemon: its connectors' secrets and
            those written in its watches' actions).
        key: the deployment key (default: :func:`~watcher.delivery.secretkey.process_key`).
        digests: :func:`secret_digests` of ``secrets`` under ``key``, when the caller keeps them.

    Returns:
        ``(request dict ready to send, the secret values used)`` (the latter to mask error texts).

    Raises:
        UnresolvedSecret: a placeholder names a secret not in ``secrets`` (:data:`SECRET_GONE`), or
            one sealed under a key other than ``key`` (:func:`other_key_reason`).
    """
    key = key or process_key()
    known = [s for s in secrets if s]
    keyed = digests if digests is not None else secret_digests(known, key)
    unkeyed: dict[str, str] = {}
    used: list[str] = []

    def resolve(match: re.Match) -> str:
        if match.group(1) is not None:
            secret = keyed.get(match.group(1))
        else:
            if not unkeyed:
                unkeyed.update((_unkeyed_digest(s), s) for s in known)
            secret = unkeyed.get(match.group(2))
        if secret is None:
            sealed_with = stored.get(KEY_ID_FIELD)
            if match.group(1) is not None and sealed_with and sealed_with != key.key_id:
                raise UnresolvedSecret(other_key_reason(sealed_with, key.key_id))
            raise UnresolvedSecret(SECRET_GONE)
        used.append(secret)
        return _FORMS[match.group(3)](secret)

    return _rewrite(stored, resolve, unwrap_basic=True), used


def has_unkeyed_placeholders(stored: dict) -> bool:
    """True when ``stored`` holds a placeholder of the unkeyed form (written before they were keyed)."""
    found = False

    def note(match: re.Match) -> str:
        nonlocal found
        found = found or match.group(2) is not None
        return match.group(0)

    _rewrite(stored, note, unwrap_basic=False)
    return found


def reseal_request(stored: dict, secrets: Iterable[str], key: SecretKey | None = None) -> dict:
    """``stored`` with each unkeyed placeholder whose secret is among ``secrets`` replaced by the
    keyed placeholder of the same secret and form (others unchanged), marked with ``key``'s id when
    none is left: what the outbox writes back after resolving a delivery stored before placeholders
    were keyed, so that Elasticsearch no longer holds the unkeyed digest."""
    key = key or process_key()
    unkeyed = {_unkeyed_digest(s): s for s in secrets if s}

    def translate(match: re.Match) -> str:
        secret = unkeyed.get(match.group(2)) if match.group(2) is not None else None
        return match.group(0) if secret is None else _placeholder(key.digest(secret), match.group(3))

    request = _rewrite(stored, translate, unwrap_basic=False)
    if not has_unkeyed_placeholders(request):
        request[KEY_ID_FIELD] = key.key_id
    return request


# -- the outbox ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Lane:
    name: str
    queue: asyncio.Queue
    semaphore: asyncio.Semaphore  # requests in flight to the receiver (the connector's concurrency)
    bucket: Any
    claims: asyncio.Semaphore     # deliveries claimed or being claimed and not yet sent
    dispatcher: asyncio.Task | None = None


class _Slot:
    """One in-flight place of a lane (its semaphore, acquired), released once: when the HTTP
    exchange ends, or when the delivery's task ends without one."""

    __slots__ = ("_semaphore", "_held")

    def __init__(self, semaphore: asyncio.Semaphore):
        self._semaphore, self._held = semaphore, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


def _default_client(*, verify: Any, proxy: str | None):
    return httpclient.async_client(verify=verify, proxy=proxy)


class Outbox:
    """The daemon's delivery: implements the seam (``deliver(rendered, services) -> Outcome``).

    Args:
        es: synchronous ``elasticsearch.Elasticsearch`` client (thread-safe; used from the caller's
            thread by :meth:`deliver` and from the worker's threads).
        prefix: index prefix (``<prefix>-outbox``).
        policy: retry policy (default :class:`RetryPolicy`).
        limits: per-connector limits (default :class:`ConnectorLimits` with its defaults); lanes are
            keyed by connector name (``origin.connector``, else ``<connector_type>@<host:port>``).
            Give each running Outbox its own instance (asyncio primitives belong to one loop).
        secrets_provider: ``() -> iterable of secret strings`` of the currently loaded definitions
            (connectors and the watches' own actions); called at send time to resolve placeholders.
            Their digests are computed again only when it returns another object than the last time.
        secret_key: the deployment key naming secrets in stored requests
            (:mod:`watcher.delivery.secretkey`); every outbox sending this store's deliveries needs
            the same one. Default: :func:`~watcher.delivery.secretkey.process_key` (this process only).
        queue_size: capacity of each connector's in-memory queue; beyond it deliveries wait in the store.
        poll_interval_s: seconds between polls of the store for due, spilled and orphaned deliveries.
        lease_s: seconds a claim lasts (extended to the request's timeouts + 5 s when longer); a
            ``delivering`` row older than its lease is claimed again.
        http_client_factory: ``(verify=…, proxy=…) -> httpx.AsyncClient`` (default: pooled client, no
            redirects, no proxy from the environment).
        on_event: ``on_event(kind, **fields)`` for metrics and events; kinds ``enqueued`` (id, connector),
            ``delivered`` (id, connector, attempts, latency_s = creation → delivery, send_s),
            ``retried`` (id, connector, attempts, delay_s, reason), ``dead`` (id, connector, attempts,
            reason) — these three also with watch_id, record_id, action_id — ``depth`` (counts: {state: n} from the store, queued: n in memory). Exceptions
            raised by the callback are logged and ignored.
        clock: now, aware UTC (tests). rng: random source for jitter (tests pass a seeded one).
    """

    def __init__(self, es, prefix: str = "watcher", *, policy: RetryPolicy | None = None,
                 limits: ConnectorLimits | None = None,
                 secrets_provider: Callable[[], Iterable[str]] | None = None, queue_size: int = 1000,
                 poll_interval_s: float = 1.0, lease_s: float = 60.0, http_client_factory=None,
                 on_event: Callable[..., Any] | None = None, clock: Callable[[], dt.datetime] = utcnow,
                 rng: random.Random | None = None, secret_key: SecretKey | None = None):
        if queue_size < 1:
            raise ValueError(f"queue_size must be ≥ 1, found {queue_size}")
        self.store = OutboxStore(es, prefix)
        self.policy = policy or RetryPolicy()
        self.limits = limits or ConnectorLimits()
        self._secrets_provider = secrets_provider or (lambda: ())
        self._known: tuple = (None, {}, ())  # the provider's last answer, its digests, its values
        self.secret_key = secret_key or process_key()
        self._unkeyed_logged = False
        self.queue_size = queue_size
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self._client_factory = http_client_factory or _default_client
        self._on_event = on_event
        self._clock = clock
        self._rng = rng or random.Random()
        self._send_now = SendNow()
        self._ensured = False
        self._ensure_lock = threading.Lock()
        # worker state (lives in the worker's event loop)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._grace_s = 10.0
        self._closing = False
        self._lanes: dict[str, _Lane] = {}
        self._in_memory: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._active: set[asyncio.Task] = set()          # claiming, sending or recording
        self._claims: dict[str, StoredDelivery] = {}     # claimed, result not yet recorded
        self._timers: set[asyncio.TimerHandle] = set()
        self._clients: dict[tuple, Any] = {}
        self._writes: AsyncGroupCommit | None = None    # claims and results of the worker share _bulk requests
        self._recently_done: dict[str, float] = {}       # id → monotonic time its task ended (oldest first)
        self._spilled = False  # a delivery waits in the store only: poll again as soon as there is room
        self._poll_failure_logged = float("-inf")  # monotonic time of the last "poll failed" warning

    # -- the seam ------------------------------------------------------------------------------------
    def deliver(self, rendered, services: Any = None) -> Outcome:
        """Accept ``rendered`` for delivery.

        HTTP requests (alone or in a tuple) and emails are written to the outbox and queued; the outcome is
        ``success`` with ``response = {"outbox": {"id", "state"}}`` ("accepted for delivery"), or
        ``failure`` when the outbox cannot be written. Log lines and index requests are not network
        deliveries to a receiver and go straight through :class:`SendNow`.

        The delivery id comes from ``rendered.origin`` (``record_id``, ``action_id``, ``sequence``,
        ``watch_id``, ``connector``) when the request carries one; without it every call gets a
        fresh id (no de-duplication across re-executions).
        """
        if isinstance(rendered, tuple):
            return combine(tuple(self._deliver_one(item, services, part) for part, item in enumerate(rendered)))
        return self._deliver_one(rendered, services, 0)

    def _deliver_one(self, item, services, part: int) -> Outcome:
        if isinstance(item, (HttpRequest, EmailRequest)):
            origin = getattr(item, "origin", None)
            if origin is None:
                return self.enqueue(item, watch_id=None, record_id=f"unkeyed-{uuid.uuid4()}", action_id="", part=part)
            return self.enqueue(item, watch_id=getattr(origin, "watch_id", None),
                                record_id=origin.record_id, action_id=origin.action_id,
                                sequence=getattr(origin, "sequence", 0), part=part,
                                connector=getattr(origin, "connector", None))
        if isinstance(item, (LogMessage, IndexRequest)):
            return self._send_now.deliver(item, services)
        raise TypeError(f"cannot deliver {type(item).__name__}")

    def enqueue(self, request: HttpRequest | EmailRequest, *, record_id: str, action_id: str,
                sequence: str | int = 0, part: int = 0, watch_id: str | None = None,
                connector: str | None = None) -> Outcome:
        """Write one HTTP request or email to the outbox (``pending``) and offer it to the running worker.

        Args:
            request: the rendered request (its secrets are replaced by placeholders before writing:
                :func:`seal_request`, :func:`seal_email`).
            record_id, action_id, sequence, part: identify the delivery (see :func:`delivery_id`);
                the same values give the same id, and an existing id is not written again.
            watch_id: for listing and metrics.
            connector: the connector name, which selects the lane (limits); default
                ``<connector_type>@<host:port>``.

        Returns:
            ``Outcome("success", response={"outbox": {"id", "state"}})`` (``state`` is the stored
            one when the delivery already existed), or ``Outcome("failure", reason=…)`` when the
            store cannot be written (the action then fails and nothing was accepted).
        """
        identifier = delivery_id(record_id, action_id, sequence, part)
        lane = connector or _lane_name(request, self.secret_key)
        try:
            self._ensure_once()
        except Exception as error:
            return self._not_accepted(error, request)
        now = self._clock()
        document = new_delivery(identifier, watch_id=watch_id, action_id=action_id, record_id=record_id,
                                connector=lane, request=_seal(request, self.secret_key), now=now)
        try:
            stored, created = self.store.create(identifier, document)
        except Exception as error:  # the client raises many types; all mean "not accepted"
            return self._not_accepted(error, request)
        if created:
            self._emit("enqueued", id=identifier, connector=lane)
            self._offer_threadsafe(stored)
        return Outcome("success", response={"outbox": {"id": identifier, "state": stored.state}})

    @staticmethod
    def _not_accepted(error: Exception, request: HttpRequest) -> Outcome:
        reason = f"could not write the delivery to the outbox: {mask(str(error), request.secrets) or type(error).__name__}"
        log.warning("%s", reason)
        return Outcome("failure", reason=reason, error={"type": "outbox_unavailable", "reason": reason})

    def _ensure_once(self) -> None:
        if not self._ensured:
            with self._ensure_lock:
                if not self._ensured:
                    self.store.ensure()
                    self._ensured = True

    # -- admin -----------------------------------------------------------------------------------------
    def list_deliveries(self, state: str | None = None, size: int = 50) -> list[dict]:
        """Deliveries (``{"id", "state", "attempts", "last_error", …, "request"}`` with placeholders
        instead of secrets), most recently updated first; ``state`` filters (pending, dead…)."""
        if state is not None and state not in STATES:
            raise ValueError(f"expected a state among {', '.join(STATES)}, found {state!r}")
        return [item.as_dict() for item in self.store.list(state, size)]

    def retry(self, delivery_id_: str) -> bool:
        """Send a dead delivery again: ``dead`` → ``pending`` now, attempts reset to 0.

        Returns:
            True if it was dead and is now pending; False if it is not dead (nothing changed).

        Raises:
            KeyError: no delivery has this id.
        """
        item = self.store.get(delivery_id_)
        if item is None:
            raise KeyError(f"no delivery [{delivery_id_}] in {self.store.index}")
        if item.state != DEAD:
            return False
        now = self._clock()
        updated = self.store.update(item, {"state": PENDING, "attempts": 0, "next_attempt_at": _iso(now),
                                           "updated_at": _iso(now), "lease_until": None, "last_error": None})
        if updated is None:
            return False
        self._offer_threadsafe(updated)
        return True

    def depth(self) -> dict[str, int]:
        """``{state: count}`` of every state in the store (refreshed first, so exact)."""
        return self.store.depth(refresh=True)

    # -- worker lifecycle --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Create the index if needed and start the worker (an event loop in a daemon thread).

        Raises:
            RuntimeError: already running. Elasticsearch errors from creating the index.
        """
        if self.running:
            raise RuntimeError("the outbox worker is already running")
        self._ensure_once()
        self.limits.reset()
        self._closing = False
        self._ready.clear()
        self._lanes, self._in_memory, self._tasks = {}, set(), set()
        self._active, self._claims, self._timers, self._clients = set(), {}, set(), {}
        self._recently_done = {}
        self._writes = self.store.async_writes()
        self._spilled = False
        self._thread = threading.Thread(target=self._run_loop, name="watcher-outbox", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the worker: no new sends; sends in flight get ``grace_s`` seconds to finish; the rest
        stays ``pending`` in the store (a send cut short is put back to ``pending``). Blocks until done."""
        if not self.running or self._loop is None:
            return
        self._grace_s = grace_s
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join(timeout=grace_s + 30)
        self._thread = None

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        self._stop_requested = asyncio.Event()
        self._wake = asyncio.Event()
        poller = asyncio.create_task(self._poll(), name="outbox-poller")
        self._ready.set()
        await self._stop_requested.wait()
        await self._shutdown(poller)

    async def _shutdown(self, poller: asyncio.Task) -> None:
        self._closing = True
        for timer in self._timers:
            timer.cancel()
        background = [poller, *(lane.dispatcher for lane in self._lanes.values() if lane.dispatcher)]
        waiting = [task for task in self._tasks if task not in self._active]  # hold no claim yet
        for task in (*background, *waiting):
            task.cancel()
        await asyncio.gather(*background, *waiting, return_exceptions=True)
        active = list(self._active)
        if active:
            _, late = await asyncio.wait(active, timeout=self._grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        # sends cut short: back to pending now (the receiver may have got it; at-least-once)
        now = self._clock()
        for item in list(self._claims.values()):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.update, item, {
                    "state": PENDING, "lease_until": None, "next_attempt_at": _iso(now), "updated_at": _iso(now)})
        self._claims.clear()
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()

    # -- queueing ---------------------------------------------------------------------------------------
    def _offer_threadsafe(self, item: StoredDelivery) -> None:
        loop = self._loop
        if loop is None or self._closing:
            return  # no worker here: the row waits in the store for a poller
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self._offer, item)

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            limits = self.limits.lane(name)
            # Claims run ahead of the sends (up to CLAIM_AHEAD × concurrency), so a free slot never
            # waits for a claim's round trip to Elasticsearch.
            settings = limits.settings
            ahead = min(CLAIM_AHEAD * settings.concurrency, settings.concurrency + math.ceil(settings.rate_per_s))
            claims = asyncio.Semaphore(max(1, ahead))
            lane = _Lane(name, asyncio.Queue(maxsize=self.queue_size), limits.semaphore, limits.bucket, claims)
            lane.dispatcher = asyncio.get_running_loop().create_task(self._dispatch(lane), name=f"outbox-{name}")
            self._lanes[name] = lane
        return lane

    def _offer(self, item: StoredDelivery) -> bool:
        """Put ``item`` on its lane's queue (in the loop). False = spilled: it stays in the store."""
        if self._closing or item.id in self._in_memory:
            return False
        lane = self._lane(item.connector)
        try:
            lane.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._spilled = True
            return False
        self._in_memory.add(item.id)
        return True

    async def _dispatch(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await lane.claims.acquire()
            try:
                item = await lane.queue.get()
            except BaseException:
                lane.claims.release()
                raise
            ahead = _Slot(lane.claims)
            task = loop.create_task(self._process(lane, item, ahead))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, lane, ahead, item))

    def _finished(self, lane: _Lane, ahead: "_Slot", item: StoredDelivery, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._active.discard(task)
        self._in_memory.discard(item.id)
        self._recently_done.pop(item.id, None)  # re-inserted last: the dict stays oldest first
        self._recently_done[item.id] = time.monotonic()
        ahead.release()
        if not task.cancelled() and task.exception() is not None:
            log.warning("outbox delivery %s: %s", item.id, task.exception())
        if self._spilled and lane.queue.qsize() <= self.queue_size // 2:
            # room in memory again: spilled rows can come in now (at half full, not at every free
            # place: one poll brings up to 100 rows, where a poll per finished delivery would bring one)
            self._wake.set()

    async def _poll(self) -> None:
        while True:
            self._wake.clear()
            self._spilled = False
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # cluster down: keep polling, nothing is lost
                now = time.monotonic()
                if now - self._poll_failure_logged >= 60.0:  # once a minute, not once a poll
                    log.warning("outbox poll failed (the cluster is unreachable?): %s", error)
                    self._poll_failure_logged = now
            else:
                self._poll_failure_logged = float("-inf")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            if self._wake.is_set():
                await asyncio.sleep(min(0.05, self.poll_interval_s))  # coalesce bursts of wake-ups

    async def _poll_once(self) -> None:
        full = [name for name, lane in self._lanes.items() if lane.queue.full()]
        horizon = time.monotonic() - RECENTLY_DONE_S
        while self._recently_done:  # oldest first (insertion order): drop what the search sees now
            oldest = next(iter(self._recently_done))
            if self._recently_done[oldest] > horizon:
                break
            del self._recently_done[oldest]
        in_memory = [*self._in_memory, *(i for i in self._recently_done if i not in self._in_memory)][:10000]
        items = await asyncio.to_thread(self.store.due, self._clock(), 100,
                                        exclude_connectors=full, exclude_ids=in_memory)
        for item in items:
            self._offer(item)
            await asyncio.sleep(0)  # let dispatchers take items so the queue makes room
        counts = await asyncio.to_thread(self.store.depth, False)
        self._emit("depth", counts=counts, queued=sum(lane.queue.qsize() for lane in self._lanes.values()))

    # -- one delivery -------------------------------------------------------------------------------------
    async def _process(self, lane: _Lane, item: StoredDelivery, ahead: "_Slot") -> None:
        """Claim ``item``, wait for an in-flight slot and a token of its lane, send, record.

        ``ahead`` (the lane's claim-ahead budget) is released once the exchange with the receiver
        is over; the slot too, so recording the result does not hold the receiver's concurrency."""
        if self._closing:
            return
        self._active.add(asyncio.current_task())
        if not _claimable(item, self._clock()):
            return
        claimed = await self._claim(item)
        if claimed is None:
            return  # another process claimed it, or our copy was stale
        await lane.semaphore.acquire()
        slot = _Slot(lane.semaphore)
        try:
            await lane.bucket.acquire()
            if self._closing:
                return  # not sent: the shutdown puts the claim back to pending
            if _lease_left_s(claimed, self._clock()) < _send_time_s(claimed) + LEASE_MARGIN_S:
                # it waited for its turn so long that the lease might end mid-send: claim it anew
                self._claims.pop(item.id, None)
                claimed = await self._claim(claimed)
                if claimed is None:
                    log.warning("outbox delivery %s: its claim was lost while it waited; another worker owns it",
                                item.id)
                    return
            await self._send(claimed, slot, ahead)
        finally:
            slot.release()

    async def _claim(self, item: StoredDelivery) -> StoredDelivery | None:
        """``pending``/expired → ``delivering`` with a lease of ``max(lease_s, timeouts + 5 s)``
        (conditional on ``item``'s version; None when another worker got there first)."""
        now = self._clock()
        lease = max(self.lease_s, _send_time_s(item) + 5)
        claimed = await self.store.update_async(item, {
            "state": DELIVERING, "lease_until": _iso(now + dt.timedelta(seconds=lease)), "updated_at": _iso(now)},
            self._writes)
        if claimed is not None:
            self._claims[item.id] = claimed
        return claimed

    async def _send(self, item: StoredDelivery, *slots: "_Slot") -> None:
        """Send ``item`` and record the outcome; ``slots`` are released as soon as the exchange with
        the receiver is over (before the result is written)."""

        stored = item.source["request"]
        try:
            secrets, digests = self._known_secrets()
            request, used = unseal_request(stored, secrets, self.secret_key, digests=digests)
        except UnresolvedSecret as error:
            for slot in slots:
                slot.release()
            await self._record(item, "dead", str(error), status=None, unresolved=True)
            return
        resealed = None
        if has_unkeyed_placeholders(stored):  # written before placeholders were keyed: store it keyed now
            resealed = reseal_request(stored, used, self.secret_key)
            if not self._unkeyed_logged:
                self._unkeyed_logged = True
                log.warning("outbox delivery %s was stored with unkeyed secret placeholders (written by an older "
                            "version); it is sent, and stored again with keyed ones, as is every such delivery "
                            "when it is next attempted", item.id)
        connector_type = request.get("connector_type") or "webhook"
        started = time.monotonic()
        status = retry_after = created = None
        try:
            if request.get("kind") == EMAIL_KIND:
                verdict, reason, status = await self._send_email(item.id, request, used)
            else:
                response = await self._request(item.id, request)
                received = HttpResponse(status=response.status_code, headers=tuple(response.headers.multi_items()),
                                        body=response.text)
                module = REGISTRY.get(connector_type)
                outcome = module.interpret(received)
                verdict = classify(outcome, retryable=getattr(module, "retryable", None))
                status = received.status
                reason = mask(outcome.reason, used) if outcome.reason else (
                    f"received [{status}] status code" if verdict != "delivered" else None)
                if verdict == "retry":
                    retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
                elif verdict == "delivered" and hasattr(module, "delivered"):
                    created = mask_data(module.delivered(outcome), used)  # what it made: Jira's issue key…
        except asyncio.CancelledError:
            raise
        except Exception as error:  # transport errors, bad URLs: classified below
            verdict = classify(error)
            reason = f"{type(error).__name__}: {mask(str(error), used) or 'no detail'}"
        finally:
            # The lane bounds requests in flight to the receiver: the exchange is over, so the
            # next delivery may start while this result is written (the claim still holds it).
            for slot in slots:
                slot.release()
        send_s = time.monotonic() - started
        await self._record(item, verdict, reason, status=status, retry_after=retry_after, send_s=send_s,
                           request=resealed, created=created)

    def _known_secrets(self) -> tuple[tuple[str, ...] | list[str], dict[str, str]]:
        """``secrets_provider()`` and its :func:`secret_digests`, kept while it returns the same object."""
        secrets = self._secrets_provider()
        if secrets is not self._known[0]:
            listed = secrets if isinstance(secrets, (list, tuple)) else tuple(secrets)
            self._known = (secrets, secret_digests(listed, self.secret_key), listed)
        return self._known[2], self._known[1]

    async def _send_email(self, identifier: str, request: dict, used: list[str]) -> tuple[str, str | None, int | None]:
        """Send a stored email (placeholders resolved) with the Message-ID of delivery ``identifier``:
        ``(verdict, reason, SMTP code)``. ``smtplib`` blocks, so it runs in a worker thread."""
        try:
            email = EmailRequest.from_dict(request, secrets=used)
        except (KeyError, TypeError, ValueError) as error:
            return "dead", f"the stored email cannot be read: {type(error).__name__}: {error}", None
        message_id = email_message_id(identifier, email.sender)
        try:
            receipt = await asyncio.to_thread(smtp.send, email, message_id)
        except (smtp.SmtpTransientError, smtp.SmtpPermanentError) as error:
            return classify(error), f"{type(error).__name__}: {error}", error.code
        return "delivered", None, receipt.code

    async def _request(self, identifier: str, request: dict):
        key = (request.get("verify", True), request.get("ca_file"), request.get("proxy"))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._client_factory(verify=httpclient.verification(key[0], key[1]),
                                                               proxy=key[2])
        headers = [(name, value) for name, value in request["headers"].items()
                   if name.lower() != IDEMPOTENCY_HEADER.lower()]
        headers.append((IDEMPOTENCY_HEADER, identifier))
        connect = float(request.get("timeout_s") or 10.0)
        read = float(request.get("read_timeout_s") or 10.0)
        body = request["body"].encode("utf-8") if request.get("body") is not None else None
        return await client.request(request["method"], request["url"], headers=headers, content=body,
                                    timeout=httpclient.timeout(connect, read))

    async def _record(self, item: StoredDelivery, verdict: str, reason: str | None, *, status: int | None,
                      retry_after: float | None = None, send_s: float | None = None, unresolved: bool = False,
                      request: dict | None = None, created: dict | None = None) -> None:
        """Write the outcome of one attempt (``unresolved``: dead because a placeholder could not be
        resolved, ``reason`` as is); ``request``, when given, replaces the stored request; ``created``
        (what the receiver made, the destination's ``delivered(outcome)``) is kept as ``result``."""
        now = self._clock()
        attempts = item.attempts + 1
        changes: dict[str, Any] = {"attempts": attempts, "updated_at": _iso(now), "lease_until": None,
                                   "last_status": status}
        if request is not None:
            changes["request"] = request
        delay = None
        fields = {"id": item.id, "connector": item.connector, "attempts": attempts,
                  **{name: item.source.get(name) for name in ("watch_id", "record_id", "action_id")}}
        if verdict == "delivered":
            changes.update(state=DELIVERED, delivered_at=_iso(now), last_error=None)
            if created:
                changes["result"] = created
            created = parse_instant(item.source["created_at"])
            event = ("delivered", {**fields, "latency_s": (now - created).total_seconds(), "send_s": send_s})
        elif verdict == "retry":
            age = (now - parse_instant(item.source["created_at"])).total_seconds()
            delay = self.policy.next_delay(attempts, retry_after, self._rng)
            give_up = self.policy.give_up_reason(attempts, age, delay)
            if give_up:
                reason = f"{give_up}; last error: {reason}"
                changes.update(state=DEAD, last_error=reason)
                event = ("dead", {**fields, "reason": reason})
                delay = None
            else:
                changes.update(state=PENDING, last_error=reason,
                               next_attempt_at=_iso_ceil(now + dt.timedelta(seconds=delay)))
                event = ("retried", {**fields, "delay_s": delay, "reason": reason})
        else:
            if not unresolved:
                reason = f"{reason} (not retried)"
            changes.update(state=DEAD, last_error=reason)
            event = ("dead", {**fields, "reason": reason})
        updated = await self.store.update_async(item, changes, self._writes)
        self._claims.pop(item.id, None)
        if updated is None:
            log.warning("outbox delivery %s: its claim was lost (lease expired?); another worker owns it", item.id)
            return
        self._emit(event[0], **event[1])
        if delay is not None and not self._closing:
            # Retry from memory at the due time (+2 ms: never before the stored next_attempt_at);
            # the row is pending in the store too, so a restart loses nothing.
            loop = asyncio.get_running_loop()
            handle = loop.call_later(delay + 0.002, self._retry_due, updated)
            self._timers.add(handle)

    def _retry_due(self, item: StoredDelivery) -> None:
        self._timers = {timer for timer in self._timers if not timer.cancelled() and timer.when() > time.monotonic()}
        self._offer(item)

    def _emit(self, kind: str, **fields) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, **fields)
        except Exception:  # metrics must never break delivery
            log.exception("outbox on_event callback failed for %s", kind)


def _send_time_s(item: StoredDelivery) -> float:
    """Seconds one try of ``item`` may take: its connect + read timeouts (10 s each by default)."""
    request = item.source.get("request") or {}
    return float(request.get("timeout_s") or 10) + float(request.get("read_timeout_s") or 10)


def _lease_left_s(item: StoredDelivery, now: dt.datetime) -> float:
    """Seconds until ``item``'s lease ends (0 when it has none or it ended)."""
    lease = item.source.get("lease_until")
    return max(0.0, (parse_instant(lease) - now).total_seconds()) if lease else 0.0


def _claimable(item: StoredDelivery, now: dt.datetime) -> bool:
    if item.state == PENDING:
        due = item.source.get("next_attempt_at")
        return not due or parse_instant(due) <= now
    if item.state == DELIVERING:
        lease = item.source.get("lease_until")
        return not lease or parse_instant(lease) <= now
    return False


def _seal(request: HttpRequest | EmailRequest, key: SecretKey) -> dict:
    return seal_email(request, key) if isinstance(request, EmailRequest) else seal_request(request, key)


def _lane_name(request: HttpRequest | EmailRequest, key: SecretKey) -> str:
    """``<connector_type>@<host[:port]>`` for a request without a connector name (secrets sealed)."""
    if isinstance(request, EmailRequest):
        return _replacer(request.secrets, key)(f"{request.connector_type}@{request.host}:{request.port}")
    parts = urlsplit(request.url)
    host = parts.hostname or "unknown"
    name = f"{request.connector_type}@{host}:{parts.port}" if parts.port else f"{request.connector_type}@{host}"
    return _replacer(request.secrets, key)(name)
