"""watcher.support.datemath: Elasticsearch date math, instants, Watcher's timestamp format."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from watcher.support.datemath import DateMathError, format_iso_millis, parse_instant, resolve

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
# Wednesday 2024-05-15, with a sub-millisecond part that Elasticsearch's clock would not have.
NOW = datetime(2024, 5, 15, 10, 37, 42, 123456, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ms(*args: int) -> datetime:
    """UTC datetime whose last argument is milliseconds."""
    *head, millis = args
    return datetime(*head, millis * 1000, tzinfo=UTC)


# --- resolve: UTC ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("now", ms(2024, 5, 15, 10, 37, 42, 123)),           # now truncated to the millisecond
        ("now-5m", ms(2024, 5, 15, 10, 32, 42, 123)),
        ("now+90s", ms(2024, 5, 15, 10, 39, 12, 123)),
        ("now-1H", ms(2024, 5, 15, 9, 37, 42, 123)),
        ("now-1d", ms(2024, 5, 14, 10, 37, 42, 123)),
        ("now-2w", ms(2024, 5, 1, 10, 37, 42, 123)),
        ("now-1M", ms(2024, 4, 15, 10, 37, 42, 123)),
        ("now+1y", ms(2025, 5, 15, 10, 37, 42, 123)),
        ("now-d", ms(2024, 5, 14, 10, 37, 42, 123)),          # number defaults to 1
        ("now/s", utc(2024, 5, 15, 10, 37, 42)),
        ("now/m", utc(2024, 5, 15, 10, 37)),
        ("now/h", utc(2024, 5, 15, 10)),
        ("now/d", utc(2024, 5, 15)),
        ("now/w", utc(2024, 5, 13)),                          # Monday
        ("now/M", utc(2024, 5, 1)),
        ("now/y", utc(2024, 1, 1)),
        ("now+1h/d", utc(2024, 5, 15)),
        ("now-1d/d", utc(2024, 5, 14)),
        ("now/d+8h", utc(2024, 5, 15, 8)),
        ("now/M-1d", utc(2024, 4, 30)),
        ("2024-05-01T00:00:00Z||+1M/d", utc(2024, 6, 1)),
        ("2024-05-01||+1M", utc(2024, 6, 1)),
        ("2024-05-01T23:30:00+02:00||/d", utc(2024, 5, 1)),  # anchor offset read, math in UTC
        ("1714557600000||+1d", utc(2024, 5, 2, 10)),          # epoch-millis anchor
        ("2024-05-01", utc(2024, 5, 1)),                      # plain date, no math
        ("2024", utc(2024, 1, 1)),                            # 4 digits: a year, not 2024 ms
    ],
)
def test_resolve(expression, expected):
    result = resolve(expression, NOW)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2024-01-31||+1M", utc(2024, 2, 29)),        # clamp to the last day (leap year)
        ("2023-01-31||+1M", utc(2023, 2, 28)),
        ("2024-03-31||-1M", utc(2024, 2, 29)),
        ("2024-05-31||-1M", utc(2024, 4, 30)),
        ("2024-01-31||+2M", utc(2024, 3, 31)),
        ("2024-01-31||+1M+1M", utc(2024, 3, 29)),     # clamping is sticky: step by step
        ("2024-02-29||+1y", utc(2025, 2, 28)),
        ("2024-02-29||-4y", utc(2020, 2, 29)),
        ("2024-12-15||+1M", utc(2025, 1, 15)),
        ("2024-01-15||-13M", utc(2022, 12, 15)),
    ],
)
def test_resolve_calendar_months_and_years(expression, expected):
    assert resolve(expression, NOW) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("now/d", ms(2024, 5, 15, 23, 59, 59, 999)),
        ("now/h", ms(2024, 5, 15, 10, 59, 59, 999)),
        ("now/w", ms(2024, 5, 19, 23, 59, 59, 999)),           # Sunday
        ("now/M", ms(2024, 5, 31, 23, 59, 59, 999)),
        ("now/y", ms(2024, 12, 31, 23, 59, 59, 999)),
        ("now-1M/M", ms(2024, 4, 30, 23, 59, 59, 999)),
        ("now-5m", ms(2024, 5, 15, 10, 32, 42, 123)),          # no rounding: round_up changes nothing
        ("2024-05-01", ms(2024, 5, 1, 23, 59, 59, 999)),       # plain date: missing time filled up
        ("2024-05", ms(2024, 5, 1, 23, 59, 59, 999)),          # ES fills month/day with 1, not the end
        ("2024-05-01T10:15", ms(2024, 5, 1, 10, 15, 59, 999)),
        ("2024-05-01T10:15:30.5Z", ms(2024, 5, 1, 10, 15, 30, 500)),
        ("2024-05-01||/d", ms(2024, 5, 1, 23, 59, 59, 999)),
    ],
)
def test_resolve_round_up(expression, expected):
    assert resolve(expression, NOW, round_up=True) == expected


# --- resolve: a zone with DST ----------------------------------------------------------------------

# Europe/Paris: CET (+01:00) → CEST (+02:00) on 2024-03-31 at 01:00Z; back on 2024-10-27 at 01:00Z.
SPRING = utc(2024, 3, 31, 10)   # 12:00 CEST, on the 23-hour day
AUTUMN = utc(2024, 10, 27, 12)  # 13:00 CET, on the 25-hour day


@pytest.mark.parametrize(
    ("now", "expression", "round_up", "expected"),
    [
        (SPRING, "now/d", False, utc(2024, 3, 30, 23)),                 # local midnight, +01:00
        (SPRING, "now/d", True, ms(2024, 3, 31, 21, 59, 59, 999)),      # next midnight is +02:00
        (SPRING, "now-1d", False, utc(2024, 3, 30, 11)),                # same wall time 12:00, CET
        (SPRING, "now-24h", False, utc(2024, 3, 30, 10)),               # elapsed time
        (SPRING, "now-1d/d", False, utc(2024, 3, 29, 23)),
        (SPRING, "now/w", False, utc(2024, 3, 24, 23)),                 # Monday 25th, 00:00 CET
        (SPRING, "now/M", False, utc(2024, 2, 29, 23)),
        (SPRING, "now/h", False, utc(2024, 3, 31, 10)),
        (AUTUMN, "now/d", False, utc(2024, 10, 26, 22)),                # midnight was still CEST
        (AUTUMN, "now/d", True, ms(2024, 10, 27, 22, 59, 59, 999)),     # 25 hours later, minus 1 ms
        (AUTUMN, "now-1d", False, utc(2024, 10, 26, 11)),               # 13:00 CEST the day before
        (AUTUMN, "now-24h", False, utc(2024, 10, 26, 12)),
        (utc(2024, 10, 27, 0, 30), "now+1h", False, utc(2024, 10, 27, 1, 30)),  # through the overlap
        (utc(2024, 10, 27, 1, 30), "now/h", False, utc(2024, 10, 27, 1)),       # 02:30 CET → 02:00 CET
    ],
)
def test_resolve_in_paris(now, expression, round_up, expected):
    assert resolve(expression, now, round_up=round_up, tz=PARIS) == expected


def test_resolve_zone_by_name_and_zone_less_anchor_read_in_tz():
    assert resolve("now/d", SPRING, tz="Europe/Paris") == utc(2024, 3, 30, 23)
    assert resolve("2024-05-01T00:00:00||+1h", NOW, tz=PARIS) == utc(2024, 4, 30, 23)
    # an anchor with its own offset keeps it, but rounding happens in tz
    assert resolve("2024-05-01T23:30:00+00:00||/d", NOW, tz=PARIS) == utc(2024, 5, 1, 22)


def test_resolve_naive_now_is_utc():
    assert resolve("now/d", datetime(2024, 5, 15, 10)) == utc(2024, 5, 15)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("now-5x", 'could not resolve date math "now-5x": unit "x" is not supported (units y, M, w, d, h, H, m, s)'),
        ("now-", 'could not resolve date math "now-": "-" at the end is not followed by a unit (y, M, w, d, h, H, m, s)'),
        ("now-5", 'could not resolve date math "now-5": "-5" has no unit (y, M, w, d, h, H, m, s)'),
        ("now/2d", 'could not resolve date math "now/2d": rounding takes a unit without a number, such as /d, found "/2"'),
        ("now*5m", 'could not resolve date math "now*5m": operator "*" is not supported (expected +, - or / before a unit)'),
        ("now - 5m", 'could not resolve date math "now - 5m": operator " " is not supported (expected +, - or / before a unit)'),
        ("||+1d", 'could not resolve date math "||+1d": the date before "||" is empty'),
        ("yesterday", 'could not resolve date math "yesterday": "yesterday" is not a date such as '
                      '2024-05-01T10:15:30Z (ISO-8601) or epoch milliseconds'),
        ("NOW-5m", 'could not resolve date math "NOW-5m": "NOW-5m" is not a date such as '
                   '2024-05-01T10:15:30Z (ISO-8601) or epoch milliseconds'),
        ("2024-02-30||+1d", 'could not resolve date math "2024-02-30||+1d": "2024-02-30" is not a date such as '
                            '2024-05-01T10:15:30Z (ISO-8601) or epoch milliseconds (day is out of range for month)'),
        ("now+99999999999d", 'could not resolve date math "now+99999999999d": the number "99999999999" is too large'),
        ("now+9000y", 'could not resolve date math "now+9000y": the result is out of range'),
        ("now+9999999d", 'could not resolve date math "now+9999999d": the result is out of range'),
    ],
)
def test_resolve_errors(expression, message):
    with pytest.raises(DateMathError) as caught:
        resolve(expression, NOW)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert caught.value.expression == expression


def test_resolve_rejects_bad_now_and_zone():
    with pytest.raises(ValueError, match="^now must be a datetime, found str$"):
        resolve("now", "2024-05-15")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='^unknown time zone "Mars/Base"$'):
        resolve("now", NOW, tz="Mars/Base")


# --- parse_instant ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:15:30.123Z", ms(2024, 5, 1, 10, 15, 30, 123)),
        ("2024-05-01T10:15:30Z", utc(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T12:15:30+02:00", utc(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T12:15:30+0200", utc(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T07:15:30-03", utc(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T12:15:30Europe/Paris", utc(2024, 5, 1, 10, 15, 30)),
        ("2024-05-01T10:15:30.123456789Z", datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=UTC)),
        ("2024-05-01T10:15:30,5Z", ms(2024, 5, 1, 10, 15, 30, 500)),
        ("2024-05-01T10:15:30", utc(2024, 5, 1, 10, 15, 30)),     # zone-less: UTC
        ("2024-05-01T10:15", utc(2024, 5, 1, 10, 15)),
        ("2024-05-01T10", utc(2024, 5, 1, 10)),
        ("2024-05-01", utc(2024, 5, 1)),
        ("2024-05", utc(2024, 5, 1)),
        ("2024", utc(2024, 1, 1)),
        ("1714558530123", ms(2024, 5, 1, 10, 15, 30, 123)),
        ("-1000", utc(1969, 12, 31, 23, 59, 59)),
        ("1714558530123.5", datetime(2024, 5, 1, 10, 15, 30, 123500, tzinfo=UTC)),
        (1714558530123, ms(2024, 5, 1, 10, 15, 30, 123)),
        (1.5, datetime(1970, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)),
        (0, utc(1970, 1, 1)),
        (datetime(2024, 5, 1, 12, 0, tzinfo=PARIS), utc(2024, 5, 1, 10)),
        (datetime(2024, 5, 1, 12, 0), utc(2024, 5, 1, 12)),           # naive: UTC
    ],
)
def test_parse_instant(value, expected):
    result = parse_instant(value)
    assert result == expected
    assert result.tzinfo is UTC


E = "expected a date such as 2024-05-01T10:15:30Z (ISO-8601) or epoch milliseconds, found "


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", E + '"yesterday"'),
        ("", E + '""'),
        (" 2024-05-01", E + '" 2024-05-01"'),
        ("2024-05-01 10:15:30", E + '"2024-05-01 10:15:30"'),
        ("2024/05/01", E + '"2024/05/01"'),
        ("2024-13-01", E + '"2024-13-01" (month must be in 1..12)'),
        ("2024-05-01T24:00", E + '"2024-05-01T24:00" (hour must be in 0..23)'),
        ("2024-05-01T10:00Foo/Bar", E + '"2024-05-01T10:00Foo/Bar" (unknown time zone Foo/Bar)'),
        (True, E + "true"),
        (None, E + "null"),
        (float("nan"), E + "nan"),
        ([2024], E + "[2024] (list)"),
    ],
)
def test_parse_instant_errors(value, message):
    with pytest.raises(ValueError) as caught:
        parse_instant(value)
    assert str(caught.value) == message


# --- format_iso_millis -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (ms(2024, 5, 1, 10, 15, 30, 123), "2024-05-01T10:15:30.123Z"),
        (utc(2024, 5, 1), "2024-05-01T00:00:00.000Z"),
        (datetime(2024, 5, 1, 10, 15, 30, 123999, tzinfo=UTC), "2024-05-01T10:15:30.123Z"),  # truncated
        (datetime(2024, 5, 1, 12, 15, 30, tzinfo=PARIS), "2024-05-01T10:15:30.000Z"),
        (datetime(2024, 5, 1, 12, 15, 30, tzinfo=timezone(timedelta(hours=-3))), "2024-05-01T15:15:30.000Z"),
        (datetime(2024, 5, 1, 10, 15, 30), "2024-05-01T10:15:30.000Z"),                        # naive: UTC
        (utc(999, 1, 2, 3, 4, 5), "0999-01-02T03:04:05.000Z"),
    ],
)
def test_format_iso_millis(dt, text):
    assert format_iso_millis(dt) == text


def test_format_and_parse_round_trip():
    assert parse_instant(format_iso_millis(NOW)) == resolve("now", NOW)
