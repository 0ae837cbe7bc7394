"""Helpers for the event stream tests: an HTTP configuration with tokens, and real clients of the
three ways to wait (httpx-sse, the ``websockets`` client, plain httpx for long-poll)."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import httpx
import websockets.sync.client
from httpx_sse import connect_sse

READER = "r" * 8 + "-reader-token-0001"
OTHER = "o" * 8 + "-other-token-00002"
ADMIN = "a" * 8 + "-admin-token-00003"


def write_http_config(folder: Path, **streams) -> Path:
    """An ``--http-config`` file with the tokens READER, OTHER (read) and ADMIN, and ``streams`` limits."""
    path = folder / "http.yaml"
    lines = ["tokens:", f"  wall: {{role: read, token: {READER}}}", f"  other: {{role: read, token: {OTHER}}}",
             f"  ops: {{role: admin, token: {ADMIN}}}"]
    if streams:
        lines.append("streams:")
        lines.extend(f"  {name}: {value}" for name, value in streams.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def auth(token: str = READER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def long_poll(base: str, after: str | None, *, wait: float = 0, limit: int = 1000, token: str = READER,
              **filters) -> dict:
    params: dict = {"wait": wait, "limit": limit, **filters}
    if after is not None:
        params["after"] = after
    answer = httpx.get(f"{base}/api/v1/events", params=params, headers=auth(token), timeout=wait + 30)
    answer.raise_for_status()
    return answer.json()


def read_all(base: str, after: str, **filters) -> tuple[list[dict], str]:
    """Every event after ``after`` available now (long-poll without waiting), and the last cursor."""
    events: list[dict] = []
    while True:
        page = long_poll(base, after, **filters)
        events.extend(page["events"])
        if not page["events"]:
            return events, after
        after = page["cursor"]


class SseCollector(threading.Thread):
    """An httpx-sse client following ``/api/v1/events/stream`` on a thread; ``events`` holds the
    parsed event JSON, ``frames`` every (event type, id, data) received; ``stop()`` closes it."""

    def __init__(self, base: str, *, after: str | None = None, last_event_id: str | None = None,
                 token: str = READER, params: dict | None = None):
        super().__init__(daemon=True)
        self.url = f"{base}/api/v1/events/stream"
        self.params = {**(params or {}), **({"after": after} if after else {})}
        self.headers = {**auth(token), **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        self.events: list[dict] = []
        self.frames: list[tuple[str, str, str]] = []
        self.opened = threading.Event()
        self.status: int | None = None
        self.error: BaseException | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._closing = False

    def run(self) -> None:
        try:
            with connect_sse(self._client, "GET", self.url, params=self.params, headers=self.headers) as source:
                self.status = source.response.status_code
                self.opened.set()
                for sse in source.iter_sse():
                    if not sse.data:  # the retry: hint alone (browsers dispatch nothing for it)
                        continue
                    self.frames.append((sse.event, sse.id, sse.data))
                    if sse.event not in ("cutoff", "gap"):
                        self.events.append(json.loads(sse.data))
        except BaseException as error:
            if not self._closing:
                self.error = error
        finally:
            self.opened.set()

    def stop(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            self._client.close()
        self.join(10)


class WsCollector(threading.Thread):
    """A ``websockets`` client of ``/api/v1/events/ws`` on a thread, collecting event messages."""

    def __init__(self, base: str, *, after: str | None = None, token: str = READER):
        super().__init__(daemon=True)
        self.url = base.replace("http://", "ws://") + "/api/v1/events/ws" + (f"?after={after}" if after else "")
        self.headers = auth(token)
        self.connection = None
        self.messages: list[dict] = []
        self.events: list[dict] = []
        self.error: BaseException | None = None
        self._closing = False

    def run(self) -> None:
        try:
            with websockets.sync.client.connect(self.url, additional_headers=self.headers,
                                                open_timeout=30) as self.connection:
                self._receive()
        except BaseException as error:
            if not self._closing:
                self.error = error

    def _receive(self) -> None:
        for text in self.connection:
            message = json.loads(text)
            self.messages.append(message)
            if message["type"] == "event":
                self.events.append(message["event"])

    def stop(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            if self.connection is not None:
                self.connection.close()
        self.join(10)
