"""Unit tests of the outbox retry policy (watcher.delivery.retry): classification, backoff, Retry-After."""

from __future__ import annotations

import datetime as dt
import random

import httpx
import pytest

from watcher.delivery.retry import RetryPolicy, classify, next_delay, parse_retry_after
from watcher.model.requests import HttpResponse, Outcome, http_outcome

NOW = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone.utc)


def outcome_for(status: int) -> Outcome:
    return http_outcome(HttpResponse(status=status))


# -- classify ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_outcomes_are_delivered(status):
    assert classify(outcome_for(status)) == "delivered"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_429_and_5xx_are_retried(status):
    assert classify(outcome_for(status)) == "retry"
    assert classify(status) == "retry"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_4xx_are_dead(status):
    assert classify(outcome_for(status)) == "dead"
    assert classify(status) == "dead"


def test_a_failed_redirect_is_dead_because_redirects_are_not_followed():
    slack_like = Outcome("failure", response={"status": 302}, reason="received [302] status code")
    assert classify(slack_like) == "dead"


def test_simulated_counts_as_delivered():
    assert classify(Outcome("simulated")) == "delivered"


@pytest.mark.parametrize("error", [
    httpx.ConnectError("connection refused"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"),
    httpx.ReadError("connection reset"),
    httpx.RemoteProtocolError("server disconnected without sending a response"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError("timed out"),
])
def test_network_errors_and_timeouts_are_retried(error):
    assert classify(error) == "retry"


@pytest.mark.parametrize("error", [
    httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'"),
    httpx.InvalidURL("Invalid URL"),
    ValueError("bad header value"),
])
def test_errors_no_retry_can_fix_are_dead(error):
    assert classify(error) == "dead"


def test_transport_error_outcome_without_status_follows_its_error_type():
    assert classify(Outcome("failure", error={"type": "connect_error", "reason": "refused"})) == "retry"
    assert classify(Outcome("failure", error={"type": "read_timeout", "reason": "slow"})) == "retry"
    assert classify(Outcome("failure", error={"type": "unsupported_protocol", "reason": "ftp"})) == "dead"


def test_the_connectors_own_opinion_wins_over_the_status_rules():
    assert classify(outcome_for(400), retryable=lambda outcome: True) == "retry"
    assert classify(outcome_for(503), retryable=lambda outcome: False) == "dead"
    assert classify(outcome_for(503), retryable=lambda outcome: None) == "retry"


# -- backoff ------------------------------------------------------------------------------------------

def test_full_jitter_backoff_with_a_seeded_rng_gives_exact_delays():
    # Random(42).random() → 0.6394…, 0.0250…, 0.2750…, 0.2232…, 0.7364…; ceilings 1, 2, 4, 8, min(300, 512).
    rng = random.Random(42)
    delays = [RetryPolicy().next_delay(attempt, None, rng) for attempt in (1, 2, 3, 4, 10)]
    assert delays == [0.6394267984578837, 0.05002151044533387, 1.100117273476477, 1.785685905190582,
                      220.94136424920373]


def test_the_ceiling_is_capped_at_max_delay():
    policy = RetryPolicy(base_s=1.0, factor=2.0, max_delay_s=300.0)
    rng = random.Random(7)
    # attempt 20 would be 2**19 s without the cap; Random(7).random() = 0.32383276483316237
    assert policy.next_delay(20, None, rng) == pytest.approx(300.0 * 0.32383276483316237)
    assert policy.next_delay(10_000, None, random.Random(0)) <= 300.0  # no overflow


def test_retry_after_is_a_floor_and_beats_the_cap():
    policy = RetryPolicy(max_delay_s=300.0)
    assert policy.next_delay(3, 30.0, random.Random(7)) == 30.0        # jitter (≤ 4 s) is below it
    assert policy.next_delay(3, 1000.0, random.Random(7)) == 1000.0    # larger than max_delay_s: wins
    # jitter above the Retry-After: the jittered delay stands
    assert policy.next_delay(1, 0.1, random.Random(42)) == 0.6394267984578837


def test_module_level_next_delay_matches_the_method():
    assert next_delay(RetryPolicy(), 2, None, random.Random(42)) == RetryPolicy().next_delay(2, None, random.Random(42))


def test_give_up_after_max_attempts_or_max_age():
    policy = RetryPolicy(max_attempts=3, max_age_s=100.0)
    assert policy.give_up_reason(2, age_s=10.0, delay_s=5.0) is None
    assert policy.give_up_reason(3, age_s=10.0, delay_s=5.0) == "gave up after 3 attempts (max_attempts 3)"
    reason = policy.give_up_reason(1, age_s=90.0, delay_s=20.0)
    assert reason == ("gave up after 1 attempts: the next try would be 110s after the delivery was created "
                      "(max_age 100s)")


# -- Retry-After ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("1", 1.0), ("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0),
])
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 01 May 2024 10:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Wed, 01 May 2024 09:00:00 GMT", NOW) == 0.0  # in the past: now


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Wed, 99 Foo 2024"])
def test_retry_after_unreadable_is_none(value):
    assert parse_retry_after(value, NOW) is None
