"""Retry policy of the outbox: which results are retried, and how long to wait before the next try.

Pure functions, no I/O. The outbox owns retries (Alertmanager's shape: integrations say only whether a
result is retryable, one retry stage decides the rest; Prometheus Alertmanager's notify package).

* Retried: connection errors, timeouts, HTTP 429 and 5xx. Not retried (dead at once): any other
  4xx, 3xx (redirects are not followed), and errors that no retry can fix (a malformed URL).
* Backoff: exponential with *full jitter* — a uniformly random delay in
  ``[0, min(max_delay_s, base_s * factor ** (attempt - 1))]`` (AWS Architecture Blog, "Exponential
  Backoff And Jitter") — so thousands of deliveries failing together do not retry together.
* ``Retry-After`` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) is a floor: the next try is never
  sooner than it says, even when that is beyond ``max_delay_s``.
* Dead letter: after ``max_attempts`` tries, or when the next try would start after ``max_age_s``
  since the delivery was created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import random
from typing import Any, Callable, Literal

import httpx

from watcher.delivery.direct import recorded_error_class
from watcher.errors import DeliveryError, FinalDeliveryError, RetryableDeliveryError

Verdict = Literal["delivered", "retry", "dead"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How the outbox retries one delivery.

    Attributes:
        base_s: upper bound of the first retry delay, seconds.
        factor: growth of the upper bound per attempt.
        max_delay_s: the upper bound never exceeds this many seconds (a larger Retry-After wins).
        max_attempts: total tries (the first send included) before the delivery is dead.
        max_age_s: a delivery older than this many seconds (since it was written) is not retried.
    """

    base_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 300.0
    max_attempts: int = 200  # with the 300 s cap: about 8 h of retries; max_age_s bounds it at 24 h
    max_age_s: float = 86400.0

    def next_delay(self, attempt: int, retry_after: float | None = None,
                   rng: random.Random | None = None) -> float:
        """Seconds to wait before the next try, after ``attempt`` tries failed (``attempt`` ≥ 1).

        Full jitter: ``rng.uniform(0, min(max_delay_s, base_s * factor ** (attempt - 1)))``; then at
        least ``retry_after`` seconds when the receiver sent one (even beyond ``max_delay_s``).
        """
        rng = rng or random
        exponent = max(attempt, 1) - 1
        try:
            ceiling = min(self.max_delay_s, self.base_s * self.factor ** exponent)
        except OverflowError:  # factor ** a very large attempt count
            ceiling = self.max_delay_s
        delay = rng.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def give_up_reason(self, attempts: int, age_s: float, delay_s: float) -> str | None:
        """Why a delivery that failed ``attempts`` times must not be retried, or None to retry.

        Args:
            attempts: tries made so far (the failed one included).
            age_s: seconds since the delivery was written to the outbox.
            delay_s: the delay :meth:`next_delay` chose for the next try.
        """
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts (max_attempts {self.max_attempts})"
        if age_s + delay_s > self.max_age_s:
            return (f"gave up after {attempts} attempts: the next try would be {age_s + delay_s:.0f}s after "
                    f"the delivery was created (max_age {self.max_age_s:.0f}s)")
        return None


def next_delay(policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Module-level form of :meth:`RetryPolicy.next_delay`."""
    return policy.next_delay(attempt, retry_after, rng)


def classify(result: Any, retryable: Callable[[Any], bool | None] | None = None) -> Verdict:
    """What to do after one try: ``delivered``, ``retry`` or ``dead``.

    Args:
        result: an :class:`~watcher.model.requests.Outcome` (its ``response["status"]`` is the HTTP
            status), an exception raised while sending, or a bare HTTP status code (int).
        retryable: the connector's own opinion of a failed Outcome (``True`` retry, ``False`` dead,
            ``None`` = use the rules below); optional ``retryable(outcome)`` of a connector module.

    Rules: a ``success`` (or ``simulated``) outcome is delivered. Status 429 and 5xx → retry; any other
    failed status → dead. Exceptions, by :func:`delivery_error_class`: timeouts, connection and
    protocol errors, ``OSError`` → retry; anything else (bad URL, unsupported scheme) → dead. A failed
    outcome without a status (a transport error recorded by the sender) is judged by the class its
    error ``type`` was written from (:func:`watcher.delivery.direct.recorded_error_class`).
    """
    if isinstance(result, BaseException):
        return "retry" if delivery_error_class(result) is RetryableDeliveryError else "dead"
    if isinstance(result, int) and not isinstance(result, bool):
        if 200 <= result < 300:
            return "delivered"
        return "retry" if result == 429 or result >= 500 else "dead"
    if getattr(result, "status", None) in ("success", "simulated"):
        return "delivered"
    if retryable is not None:
        opinion = retryable(result)
        if opinion is not None:
            return "retry" if opinion else "dead"
    status = http_status(result)
    if status is not None:
        return "retry" if status == 429 or status >= 500 else "dead"
    error_class = recorded_error_class(str((getattr(result, "error", None) or {}).get("type", "")))
    if error_class is None:
        return "dead"
    return "retry" if delivery_error_class(error_class) is RetryableDeliveryError else "dead"


def http_status(outcome: Any) -> int | None:
    """The HTTP status in ``outcome.response`` (Watcher's response record), or None."""
    response = getattr(outcome, "response", None)
    if isinstance(response, dict) and isinstance(response.get("status"), int):
        return response["status"]
    return None


def delivery_error_class(error: BaseException | type[BaseException]) -> type[DeliveryError]:
    """Our delivery branch for an exception (or exception class) raised while sending:
    :class:`~watcher.errors.RetryableDeliveryError` or :class:`~watcher.errors.FinalDeliveryError`.

    Our own delivery errors keep their branch. httpx: an unsupported scheme, an invalid URL or a
    local protocol error → final; timeouts, network errors, remote protocol and proxy errors →
    retryable. Any other ``OSError`` (``TimeoutError``, ``ConnectionError``...) → retryable.
    Anything else → final.
    """
    cls = error if isinstance(error, type) else type(error)
    if issubclass(cls, (RetryableDeliveryError, FinalDeliveryError)):
        return RetryableDeliveryError if issubclass(cls, RetryableDeliveryError) else FinalDeliveryError
    if issubclass(cls, (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)):
        return FinalDeliveryError
    if issubclass(cls, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError,
                        OSError)):
        return RetryableDeliveryError
    return FinalDeliveryError


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value (RFC 9110 §10.2.3).

    Args:
        value: ``"120"`` (delay-seconds) or an HTTP-date ``"Wed, 21 Oct 2015 07:28:00 GMT"``.
        now: the current time, aware UTC (for HTTP-dates).

    Returns:
        Seconds ≥ 0 (a date in the past gives 0.0), or None when absent or unreadable.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / infinity
            return None
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=dt.timezone.utc)
    return max((when - now).total_seconds(), 0.0)
