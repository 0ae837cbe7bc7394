"""Per-connector concurrency and rate limits for the outbox (pure asyncio, no I/O).

Each connector name gets its own lane: an ``asyncio.Semaphore`` bounding requests in flight and a
:class:`TokenBucket` bounding requests per second, so a slow or rate-limited receiver holds up only
its own deliveries, never another connector's.

asyncio primitives belong to the event loop that first waits on them: use one
:class:`ConnectorLimits` per running loop, or call :meth:`ConnectorLimits.reset` before reusing it
in a new loop (the outbox does this on every ``start()``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

DEFAULT_CONCURRENCY = 4
DEFAULT_RATE_PER_S = 10.0
DEFAULT_BURST = 10


class TokenBucket:
    """A token bucket: at most ``burst`` requests at once, refilled at ``rate_per_s`` tokens per second.

    Args:
        rate_per_s: tokens added per second (> 0).
        burst: bucket capacity (≥ 1); the bucket starts full.
        clock: monotonic time in seconds (tests pass a fake one).
        sleep: ``async sleep(seconds)`` (tests pass one that advances the fake clock).

    Raises:
        ValueError: rate_per_s ≤ 0 or burst < 1.
    """

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be > 0, found {rate_per_s}")
        if burst < 1:
            raise ValueError(f"burst must be ≥ 1, found {burst}")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None  # created in the loop that first acquires

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token if one is available now; never waits."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Wait until a token is available and take it. Waiters are served in arrival order."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # FIFO: one waiter computes its wait at a time
            while not self.try_acquire():
                await self._sleep((1.0 - self._tokens) / self.rate_per_s)


@dataclasses.dataclass(frozen=True)
class LimitSettings:
    """One connector's limits: ``concurrency`` requests in flight, ``rate_per_s`` with ``burst``."""

    concurrency: int = DEFAULT_CONCURRENCY
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST


@dataclasses.dataclass
class Lane:
    """What one connector's deliveries go through: ``semaphore`` (in flight) and ``bucket`` (rate)."""

    name: str
    settings: LimitSettings
    semaphore: asyncio.Semaphore
    bucket: TokenBucket


class ConnectorLimits:
    """Per-connector lanes, created on first use.

    Args:
        overrides: connector name → ``{"concurrency"?: int, "rate_per_s"?: float, "burst"?: int}``
            (or a :class:`LimitSettings`); keys not given take the defaults below.
        concurrency: default requests in flight per connector (4).
        rate_per_s: default requests per second per connector (10).
        burst: default bucket size per connector (10).
        clock, sleep: passed to every :class:`TokenBucket` (tests).

    Raises:
        ValueError: an override has an unknown key or a value out of range.
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, concurrency: int = DEFAULT_CONCURRENCY,
                 rate_per_s: float = DEFAULT_RATE_PER_S, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.default = _checked(LimitSettings(concurrency, rate_per_s, burst), "default")
        self._overrides = {name: self._settings(name, value) for name, value in (overrides or {}).items()}
        self._clock = clock
        self._sleep = sleep
        self._lanes: dict[str, Lane] = {}

    def _settings(self, name: str, value: Any) -> LimitSettings:
        if isinstance(value, LimitSettings):
            return _checked(value, name)
        unknown = set(value) - {"concurrency", "rate_per_s", "burst"}
        if unknown:
            raise ValueError(f"limits for connector [{name}]: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"expected concurrency, rate_per_s, burst")
        return _checked(dataclasses.replace(self.default, **value), name)

    def settings(self, name: str) -> LimitSettings:
        """The limits that apply to connector ``name``."""
        return self._overrides.get(name, self.default)

    def lane(self, name: str) -> Lane:
        """Connector ``name``'s lane (the same object on every call until :meth:`reset`)."""
        lane = self._lanes.get(name)
        if lane is None:
            settings = self.settings(name)
            lane = Lane(name, settings, asyncio.Semaphore(settings.concurrency),
                        TokenBucket(settings.rate_per_s, settings.burst, clock=self._clock, sleep=self._sleep))
            self._lanes[name] = lane
        return lane

    def semaphore(self, name: str) -> asyncio.Semaphore:
        return self.lane(name).semaphore

    def bucket(self, name: str) -> TokenBucket:
        return self.lane(name).bucket

    def reset(self) -> None:
        """Forget every lane (new semaphores and full buckets on next use, e.g. in a new event loop)."""
        self._lanes.clear()


def _checked(settings: LimitSettings, name: str) -> LimitSettings:
    if int(settings.concurrency) < 1:
        raise ValueError(f"limits for connector [{name}]: concurrency must be ≥ 1, found {settings.concurrency}")
    if float(settings.rate_per_s) <= 0:
        raise ValueError(f"limits for connector [{name}]: rate_per_s must be > 0, found {settings.rate_per_s}")
    if int(settings.burst) < 1:
        raise ValueError(f"limits for connector [{name}]: burst must be ≥ 1, found {settings.burst}")
    return settings
