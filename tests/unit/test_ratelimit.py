"""Unit tests of per-connector limits (watcher.delivery.ratelimit), with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from watcher.delivery.ratelimit import ConnectorLimits, LimitSettings, TokenBucket


class FakeClock:
    """Monotonic seconds that only move when someone sleeps."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds
        await asyncio.sleep(0)


def test_burst_is_free_then_one_token_per_interval():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=clock, sleep=clock.sleep)

    async def take(n):
        stamps = []
        for _ in range(n):
            await bucket.acquire()
            stamps.append(clock.now)
        return stamps

    stamps = asyncio.run(take(6))
    # three at once (burst), then one every 0.5 s
    assert stamps == [100.0, 100.0, 100.0, 100.5, 101.0, 101.5]
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_tokens_refill_while_idle_but_never_beyond_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=2, clock=clock, sleep=clock.sleep)
    assert bucket.try_acquire() and bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 10.0  # idle for 10 s: refills to 2, not 10
    assert bucket.try_acquire() and bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 0.5
    assert not bucket.try_acquire()  # half a token
    clock.now += 0.5
    assert bucket.try_acquire()


def test_waiters_are_served_in_arrival_order():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=4.0, burst=1, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def worker(n):
        await bucket.acquire()
        order.append(n)

    async def main():
        await asyncio.gather(*(worker(n) for n in range(5)))

    asyncio.run(main())
    assert order == [0, 1, 2, 3, 4]
    assert clock.now == pytest.approx(101.0)  # 1 free + 4 × 0.25 s


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_bucket_rejects_nonsense(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_each_connector_gets_its_own_lane_with_defaults_and_overrides():
    limits = ConnectorLimits({"slow-hook": {"concurrency": 1, "rate_per_s": 0.5}}, burst=7)
    assert limits.settings("anything") == LimitSettings(concurrency=4, rate_per_s=10.0, burst=7)
    assert limits.settings("slow-hook") == LimitSettings(concurrency=1, rate_per_s=0.5, burst=7)
    a, b = limits.lane("a"), limits.lane("b")
    assert a is limits.lane("a") and a is not b
    assert a.semaphore is not b.semaphore and a.bucket is not b.bucket
    assert limits.bucket("slow-hook").rate_per_s == 0.5 and limits.bucket("slow-hook").burst == 7
    limits.reset()
    assert limits.lane("a") is not a


def test_overrides_are_checked():
    with pytest.raises(ValueError, match=r"connector \[x\]: unknown key\(s\) rate; expected concurrency"):
        ConnectorLimits({"x": {"rate": 3}})
    with pytest.raises(ValueError, match=r"connector \[y\]: concurrency must be ≥ 1, found 0"):
        ConnectorLimits({"y": {"concurrency": 0}})


def test_a_full_connector_does_not_block_another():
    limits = ConnectorLimits({"a": {"concurrency": 1}})

    async def main():
        release = asyncio.Event()
        entered: list[str] = []

        async def use(name):
            async with limits.semaphore(name):
                entered.append(name)
                if name == "a":
                    await release.wait()

        first_a = asyncio.create_task(use("a"))
        second_a = asyncio.create_task(use("a"))  # waits: a allows one at a time
        await asyncio.sleep(0)
        # b is not held up by a (a holds its only place until the release below; the timeout
        # only matters on failure)
        await asyncio.wait_for(use("b"), timeout=30.0)
        assert entered == ["a", "b"]
        release.set()
        await asyncio.gather(first_a, second_a)
        assert entered == ["a", "b", "a"]

    asyncio.run(main())
