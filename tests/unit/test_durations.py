"""watcher.support.durations: Watcher time values, interval schedules, rule durations, formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watcher.support.durations import (
    DurationError,
    format_duration,
    parse_interval,
    parse_rule_duration,
    parse_time_value,
    to_millis,
)

TV = "expected a duration such as 30s, 5m, 1.5h (units ms, s, m, h, d, w), found "
IV = ("trigger.schedule.interval: expected an interval such as 30s, 5m, 1h "
      "(a whole number and a unit s, m, h, d, w; at least 1s), found ")
RD = ("expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, h, d, w) "
      "or a mapping such as {minutes: 5} (keys weeks, days, hours, minutes, seconds), found ")


# --- parse_time_value ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("5s", timedelta(seconds=5)),
        ("5m", timedelta(minutes=5)),
        ("1.5h", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("1.5H", timedelta(minutes=90)),        # case-insensitive ...
        ("5M", timedelta(minutes=5)),           # ... so M is minutes here, not months
        ("10MS", timedelta(milliseconds=10)),
        ("  30s  ", timedelta(seconds=30)),     # Watcher trims
        ("5 m", timedelta(minutes=5)),          # Double.parseDouble trims the number part
        ("0.1h", timedelta(minutes=6)),         # exact decimal, no float drift
        (".5s", timedelta(milliseconds=500)),
        ("1e3ms", timedelta(seconds=1)),        # Java's Double.parseDouble takes an exponent
        ("1500micros", timedelta(microseconds=1500)),
        ("2500nanos", timedelta(microseconds=2)),  # truncated to timedelta's microsecond
        ("1.0005s", timedelta(microseconds=1_000_500)),
        (1500, timedelta(milliseconds=1500)),   # numbers are milliseconds
        (0, timedelta(0)),
        (0.3, timedelta(microseconds=300)),
        (250.5, timedelta(microseconds=250_500)),
    ],
)
def test_parse_time_value(text, expected):
    assert parse_time_value(text) == expected


@pytest.mark.parametrize("text", ["-1", " -1 ", -1, -1.0])
def test_parse_time_value_minus_one_means_no_value(text):
    assert parse_time_value(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5m", TV + '"-5m" (negative durations are not allowed)'),
        ("-0.5s", TV + '"-0.5s" (negative durations are not allowed)'),
        (-5, TV + "-5 (negative durations are not allowed)"),
        ("5", TV + '"5" (the unit is missing)'),
        ("1.5", TV + '"1.5" (the unit is missing)'),
        ("5x", TV + '"5x" (unknown unit "x")'),
        ("5 minutes", TV + '"5 minutes" (unknown unit "minutes")'),
        ("abc", TV + '"abc"'),
        ("", TV + '""'),
        ("NaN s", TV + '"NaN s"'),
        ("1,5h", TV + '"1,5h"'),
        (True, TV + "true (not a string or a number)"),
        (None, TV + "null (not a string or a number)"),
        ([5], TV + "[5] (not a string or a number)"),
        (float("inf"), TV + "inf (not a finite number)"),
        (float("nan"), TV + "nan (not a finite number)"),
    ],
)
def test_parse_time_value_errors(text, message):
    with pytest.raises(DurationError) as caught:
        parse_time_value(text)
    assert str(caught.value) == message


def test_parse_time_value_error_names_the_field_and_is_a_value_error():
    with pytest.raises(ValueError) as caught:
        parse_time_value("soon", field="actions.og.throttle_period")
    error = caught.value
    assert isinstance(error, DurationError)
    assert str(error) == "actions.og.throttle_period: " + TV + '"soon"'
    assert (error.field, error.value, error.reason) == ("actions.og.throttle_period", "soon", "")


# --- parse_interval --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("90s", timedelta(seconds=90)),
        (30, timedelta(seconds=30)),            # a JSON number means seconds
        (30.0, timedelta(seconds=30)),
        (1, timedelta(seconds=1)),
    ],
)
def test_parse_interval(text, expected):
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", IV + '"30" (the unit is missing)'),
        ("500ms", IV + '"500ms" (unit "ms" is not supported for intervals)'),
        ("100nanos", IV + '"100nanos" (unit "nanos" is not supported for intervals)'),
        ("1.5h", IV + '"1.5h" (the number must be a whole number)'),
        ("0s", IV + '"0s" (must be at least 1s)'),
        (0, IV + "0 (must be at least 1s)"),
        (-5, IV + "-5 (must be at least 1s)"),
        (0.5, IV + "0.5 (the number must be a whole number)"),
        ("-5m", IV + '"-5m" (negative intervals are not allowed)'),
        ("5M", IV + '"5M" (unknown unit "M")'),      # case-sensitive, as Watcher
        ("5S", IV + '"5S" (unknown unit "S")'),
        ("5x", IV + '"5x" (unknown unit "x")'),
        (" 5m", IV + '" 5m" (blanks are not allowed)'),
        ("5 m", IV + '"5 m" (blanks are not allowed)'),
        ("every minute", IV + '"every minute"'),
        (True, IV + "true (not a string or a number)"),
        (None, IV + "null (not a string or a number)"),
    ],
)
def test_parse_interval_errors(text, message):
    with pytest.raises(DurationError) as caught:
        parse_interval(text)
    assert str(caught.value) == message


def test_parse_interval_field_override():
    with pytest.raises(DurationError, match=r"^schedule: expected an interval"):
        parse_interval("1ms", field="schedule")


# --- parse_rule_duration ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("30s", timedelta(seconds=30)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 1m ", timedelta(minutes=1)),
        ({"minutes": 5}, timedelta(minutes=5)),
        ({"hours": 1, "minutes": 30}, timedelta(minutes=90)),
        ({"weeks": 1, "days": 1, "hours": 1, "minutes": 1, "seconds": 1},
         timedelta(weeks=1, days=1, hours=1, minutes=1, seconds=1)),
        ({"minutes": 0.5}, timedelta(seconds=30)),
        ({"hours": 0.1}, timedelta(minutes=6)),
    ],
)
def test_parse_rule_duration(value, expected):
    assert parse_rule_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0s", 'window: ' + RD + '"0s" (must be greater than zero)'),
        ({"minutes": 0}, 'window: ' + RD + '{minutes: 0} (must be greater than zero)'),
        ("5", 'window: ' + RD + '"5" (the unit is missing)'),
        (5, 'window: ' + RD + '5 (the unit is missing)'),
        ("500ms", 'window: ' + RD + '"500ms" (unit "ms" is not supported here)'),
        ("5M", 'window: ' + RD + '"5M" (unknown unit "M")'),
        ("1.5h", 'window: ' + RD + '"1.5h" (the number must be a whole number)'),
        ("5 m", 'window: ' + RD + '"5 m" (blanks are not allowed)'),
        ("-5m", 'window: ' + RD + '"-5m" (negative durations are not allowed)'),
        ({}, 'window: ' + RD + '{} (the mapping is empty)'),
        ({"mins": 5}, 'window: ' + RD + '{mins: 5} (unknown key "mins")'),
        ({"minutes": -1}, 'window: ' + RD + '{minutes: -1} (negative durations are not allowed)'),
        ({"minutes": "5"}, 'window: ' + RD + '{minutes: "5"} ("minutes" must be a number)'),
        ({"minutes": True}, 'window: ' + RD + '{minutes: true} ("minutes" must be a number)'),
        (None, 'window: ' + RD + 'null (not a string or a mapping)'),
        (True, 'window: ' + RD + 'true (not a string or a mapping)'),
    ],
)
def test_parse_rule_duration_errors(value, message):
    with pytest.raises(DurationError) as caught:
        parse_rule_duration(value, field="window")
    assert str(caught.value) == message


@pytest.mark.parametrize("value", ["0s", "0m", {"seconds": 0}])
def test_parse_rule_duration_allow_zero(value):
    assert parse_rule_duration(value, allow_zero=True) == timedelta(0)


# --- format_duration / to_millis -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(minutes=5), "5m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(hours=1), "1h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(days=1), "1d"),
        (timedelta(days=7), "1w"),
        (timedelta(days=14), "2w"),
        (timedelta(days=10), "10d"),
        (timedelta(hours=36), "36h"),
        (timedelta(microseconds=1500), "1500micros"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration(td, text):
    assert format_duration(td) == text


@pytest.mark.parametrize("text", ["5m", "90s", "1h", "1500ms", "2w", "10d", "1500micros"])
def test_format_duration_round_trips_through_parse_time_value(text):
    assert format_duration(parse_time_value(text)) == text


@pytest.mark.parametrize(
    ("td", "millis"),
    [
        (timedelta(seconds=1.5), 1500),
        (timedelta(minutes=5), 300_000),
        (timedelta(weeks=1), 604_800_000),
        (timedelta(microseconds=1999), 1),       # truncated, not rounded
        (timedelta(microseconds=999), 0),
        (timedelta(microseconds=-1500), -1),     # toward zero, like Java's (long) cast
        (timedelta(0), 0),
    ],
)
def test_to_millis(td, millis):
    assert to_millis(td) == millis
    assert isinstance(to_millis(td), int)
