"""``interval`` schedule: fire every fixed period, counted from when the watch was registered.

Watcher syntax (docs/semantics.md#interval-anchor)::

    {"interval": "5m"}        # units s m h d w; a bare number means seconds; at least 1s

Semantics (docs/semantics.md#interval-anchor; Watcher's ``IntervalSchedule`` /
``TickerScheduleTriggerEngine``): fire times are ``anchor + k·interval`` for k ≥ 1, where the anchor
is the moment the watch was registered with the scheduler — not aligned to the wall clock, and the
time zone plays no part. Missed periods are not replayed: the next fire is computed from ``after``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.support.durations import DurationError, parse_interval

TYPE = "interval"


@dataclasses.dataclass(frozen=True)
class Interval:
    """A parsed interval: ``every`` (≥ 1 s) and ``text``, the value as written (``"5m"``, ``30``)."""

    every: dt.timedelta
    text: str | int | float


def parse(reader: Reader, body: Any, path: Sequence[str | int]) -> Interval | None:
    """Parse ``"<n><unit>"`` (or a number of seconds); problems go to ``reader``."""
    value = plain(body)
    try:
        every = parse_interval(value, field="")
    except DurationError as error:
        reader.problem(path, str(error), at_value=True)
        return None
    return Interval(every=every, text=value)


def next_fire(config: Interval, after: dt.datetime, tz: dt.tzinfo | None = None,
              anchor: dt.datetime | None = None) -> dt.datetime:
    """The first ``anchor + k·every`` (k ≥ 1) strictly after ``after``, as aware UTC.

    Args:
        config: the parsed interval.
        after: aware datetime; before the anchor, the first fire is ``anchor + every``.
        tz: ignored (intervals do not depend on a zone).
        anchor: aware registration time; required.

    Raises:
        ValueError: ``anchor`` is None, or either datetime is naive.
    """
    if anchor is None:
        raise ValueError("an interval schedule needs an anchor (the time the watch was registered)")
    if after.utcoffset() is None or anchor.utcoffset() is None:
        raise ValueError("after and anchor must be aware datetimes")
    periods = (after - anchor) // config.every + 1 if after >= anchor else 1
    return (anchor + periods * config.every).astimezone(dt.timezone.utc)
