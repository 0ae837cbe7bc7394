"""A small HTTP receiver that shows the webhooks it gets (a local stand-in for OpsGenie, Slack…).

Each request prints one line (time, method, path with secrets masked, size, and a short summary of a
JSON body); ``--save FILE`` appends each request as one JSON line. It answers 200 with a JSON body
shaped like OpsGenie's ``{"result": "Request will be processed", "requestId": …}``.

Masked as ``***``, in the printed line and in the saved record: the values of query parameters and
headers whose name contains ``token``, ``key``, ``secret``, ``password``, ``auth`` or ``signature``
(case-insensitive; so ``apiKey``, ``X-Api-Key``, ``Authorization``, ``X-Slack-Signature``…), and the
``Cookie`` header. The receiver cannot know which segment of a URL path is a secret (a Slack webhook
URL's last segments are one): paths are shown as received.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO
from urllib.parse import parse_qsl, urlencode, urlsplit

SECRET_NAME_PARTS = ("token", "key", "secret", "password", "auth", "signature")
SECRET_HEADERS = {"cookie"}  # besides the names matching SECRET_NAME_PARTS


# Names that contain "key" but carry no secret: the delivery id receivers use to drop duplicates.
NOT_SECRET_NAMES = frozenset({"idempotency-key", "x-idempotency-key"})


def is_secret_name(name: str) -> bool:
    """True when a query parameter or header named ``name`` holds a secret: the name contains one of
    :data:`SECRET_NAME_PARTS`, case-insensitive (``apiKey``, ``X-Auth-Token``, ``X-Hub-Signature``…)."""
    lowered = name.lower()
    if lowered in NOT_SECRET_NAMES:
        return False
    return any(part in lowered for part in SECRET_NAME_PARTS)


def mask_query(query: str) -> str:
    """``query`` (``a=1&b=2``) with the values of secret parameters (:func:`is_secret_name`) as ``***``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if is_secret_name(k) else v) for k, v in pairs], safe="*")


def mask_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{name: value}`` with the values of secret headers (:func:`is_secret_name`, and Cookie) as ``***``."""
    return {k: ("***" if is_secret_name(k) or k.lower() in SECRET_HEADERS else v) for k, v in headers}


def summarize(body: object) -> str:
    """A one-line summary of a webhook body: the watch id, message or text fields when present."""
    if not isinstance(body, dict):
        return ""
    parts = []
    for key in ("watch_id", "rule", "alias", "message", "text", "title"):
        if isinstance(body.get(key), (str, int, float)):
            parts.append(f"{key}={str(body[key])[:80]!r}")
    payload = body.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("hits"), dict):
        parts.append(f"hits={payload['hits'].get('total')}")
    return " ".join(parts)


class Receiver(ThreadingHTTPServer):
    """The HTTP server; ``records`` keeps every request received (method, path, query, headers, body)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, out: IO[str] | None, save: IO[str] | None, status: int = 200):
        super().__init__(address, _Handler)
        self.out, self.save, self.status = out, save, status
        self.records: list[dict] = []
        self._lock = threading.Lock()

    def record(self, entry: dict) -> None:
        with self._lock:
            self.records.append(entry)
            if self.save is not None:
                self.save.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self.save.flush()
            if self.out is not None:
                self.out.write(entry["line"] + "\n")
                self.out.flush()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        text = raw.decode("utf-8", errors="replace")
        try:
            body: object = json.loads(text) if text else None
        except ValueError:
            body = text
        split = urlsplit(self.path)
        query = mask_query(split.query)
        now = dt.datetime.now(dt.timezone.utc)
        line = (f"{now:%H:%M:%S} {self.command} {split.path}{'?' + query if query else ''} "
                f"{len(raw)} B {summarize(body)}").rstrip()
        headers = mask_headers(self.headers.items())
        self.server.record({"received_at": now.isoformat(), "method": self.command, "path": split.path,
                            "query": query, "headers": headers, "body": body, "line": line})
        reply = json.dumps({"result": "Request will be processed", "took": 0.0,
                            "requestId": str(uuid.uuid4())}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = _handle

    def log_message(self, format: str, *args) -> None:  # the summary line replaces the access log
        pass
