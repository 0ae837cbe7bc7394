"""watcher.schedule: Watcher schedule types (parse + next fire), triggers and the rule ``schedule``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.definitions.watch import parse_trigger
from watcher.schedule import REGISTRY, next_fire, parse_rule_schedule, resolve_timezone, unix_to_quartz
from watcher.schedule.interval import Interval

UTC = dt.timezone.utc


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def load_schedule(text: str):
    """``text`` is YAML with a top-level ``schedule`` object; returns (component or None, problems)."""
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    component = REGISTRY.parse(reader, document.data["schedule"], ("schedule",))
    return component, [str(problem) for problem in reader.problems]


def load_trigger(text: str):
    """``text`` is a watch's ``trigger`` in YAML; parsed as watch.py does it."""
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    trigger = parse_trigger(reader, document.data["trigger"], ("trigger",), REGISTRY)
    assert reader.problems == []
    return trigger


def fires(text: str, after: dt.datetime, count: int = 1, tz: dt.tzinfo = UTC) -> list[dt.datetime]:
    """The next ``count`` fire times of the schedule in ``text``."""
    component, problems = load_schedule(text)
    assert problems == []
    module = REGISTRY.get(component.type)
    result = []
    for _ in range(count):
        after = module.next_fire(component.config, after, tz, None)
        result.append(after)
    return result


def test_registry_names():
    assert REGISTRY.names() == ["interval", "hourly", "daily", "weekly", "monthly", "yearly", "cron"]


# --- calendar types: parse + next fire -------------------------------------------------------------

# 2024-01-01 is a Monday; 2024 is a leap year.
@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        # hourly
        ("schedule: {hourly: {minute: 30}}", utc(2024, 1, 1, 10, 30), [utc(2024, 1, 1, 11, 30)]),
        ("schedule: {hourly: {minute: [0, 15, 30, 45]}}", utc(2024, 1, 1, 10, 16),
         [utc(2024, 1, 1, 10, 30), utc(2024, 1, 1, 10, 45), utc(2024, 1, 1, 11, 0)]),
        ("schedule: {hourly: {minute: ['5']}}", utc(2024, 1, 1, 10), [utc(2024, 1, 1, 10, 5)]),
        ("schedule: {hourly: {}}", utc(2024, 1, 1, 10, 1), [utc(2024, 1, 1, 11)]),  # default minute 0
        # daily
        ("schedule: {daily: {at: 17:00}}", utc(2024, 1, 1, 17), [utc(2024, 1, 2, 17)]),
        ("schedule: {daily: {at: '7:05'}}", utc(2024, 1, 1), [utc(2024, 1, 1, 7, 5)]),
        ("schedule: {daily: {time: noon}}", utc(2024, 1, 1, 12), [utc(2024, 1, 2, 12)]),
        ("schedule: {daily: {}}", utc(2024, 1, 1, 1), [utc(2024, 1, 2)]),  # default midnight
        ("schedule: {daily: {at: [midnight, noon, '17:30']}}", utc(2024, 1, 1, 8),
         [utc(2024, 1, 1, 12), utc(2024, 1, 1, 17, 30), utc(2024, 1, 2, 0)]),
        ("schedule: {daily: {at: {hour: [0, 12], minute: [0, 30]}}}", utc(2024, 1, 1, 0, 31),
         [utc(2024, 1, 1, 12), utc(2024, 1, 1, 12, 30), utc(2024, 1, 2, 0)]),
        ("schedule: {daily: {at: [{hour: 9}, '17:45']}}", utc(2024, 1, 1, 10),
         [utc(2024, 1, 1, 17, 45), utc(2024, 1, 2, 9)]),  # entries are not crossed with each other
        # weekly — 1 = Sunday
        ("schedule: {weekly: {on: 1, at: noon}}", utc(2024, 1, 1), [utc(2024, 1, 7, 12)]),
        ("schedule: {weekly: {on: '7', at: noon}}", utc(2024, 1, 1), [utc(2024, 1, 6, 12)]),
        ("schedule: {weekly: {on: friday, at: '17:00'}}", utc(2024, 1, 1), [utc(2024, 1, 5, 17)]),
        ("schedule: {weekly: {day: FRI, time: '17:00'}}", utc(2024, 1, 1), [utc(2024, 1, 5, 17)]),
        ("schedule: {weekly: {on: [monday, fri], at: [noon, '17:00']}}", utc(2024, 1, 1, 12),
         [utc(2024, 1, 1, 17), utc(2024, 1, 5, 12), utc(2024, 1, 5, 17), utc(2024, 1, 8, 12)]),
        ("schedule: {weekly: [{on: tuesday, at: noon}, {on: friday, at: '17:00'}]}", utc(2024, 1, 1),
         [utc(2024, 1, 2, 12), utc(2024, 1, 5, 17), utc(2024, 1, 9, 12)]),
        ("schedule: {weekly: {}}", utc(2024, 1, 1), [utc(2024, 1, 8)]),  # default Monday midnight
        # monthly
        ("schedule: {monthly: {on: 10, at: noon}}", utc(2024, 1, 10, 12), [utc(2024, 2, 10, 12)]),
        ("schedule: {monthly: {on: 31, at: noon}}", utc(2024, 1, 31, 12),
         [utc(2024, 3, 31, 12), utc(2024, 5, 31, 12), utc(2024, 7, 31, 12)]),  # short months skipped
        ("schedule: {monthly: {on: last_day}}", utc(2024, 1, 31),
         [utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30)]),
        ("schedule: {monthly: {day: [first_day, 15, last_day], time: '8:00'}}", utc(2024, 2, 1, 8),
         [utc(2024, 2, 15, 8), utc(2024, 2, 29, 8), utc(2024, 3, 1, 8)]),
        ("schedule: {monthly: [{on: 1, at: noon}, {on: 20, at: midnight}]}", utc(2024, 1, 1, 12),
         [utc(2024, 1, 20), utc(2024, 2, 1, 12)]),
        ("schedule: {monthly: {}}", utc(2024, 1, 1), [utc(2024, 2, 1)]),  # default day 1 midnight
        # yearly
        ("schedule: {yearly: {in: january, on: 10, at: noon}}", utc(2024, 1, 10, 12), [utc(2025, 1, 10, 12)]),
        ("schedule: {yearly: {in: february, on: 29, at: noon}}", utc(2024, 3, 1), [utc(2028, 2, 29, 12)]),
        ("schedule: {yearly: {month: [jan, 7], day: [1, 15]}}", utc(2024, 1, 15),
         [utc(2024, 7, 1), utc(2024, 7, 15), utc(2025, 1, 1)]),
        ("schedule: {yearly: {in: last, on: last_day, at: '23:59'}}", utc(2024, 1, 1), [utc(2024, 12, 31, 23, 59)]),
        ("schedule: {yearly: [{in: 3, on: 1}, {in: SEP, on: 2}]}", utc(2024, 3, 1),
         [utc(2024, 9, 2), utc(2025, 3, 1)]),
        ("schedule: {yearly: {}}", utc(2024, 1, 1), [utc(2025, 1, 1)]),  # default 1 January midnight
        # cron (one or a list)
        ("schedule: {cron: '0 0/2 * ? * MON-FRI'}", utc(2024, 1, 5, 23, 59), [utc(2024, 1, 8, 0, 0)]),
        ("schedule: {cron: ['0 0 9 ? * MON-FRI', '0 0 12 ? * SAT,SUN']}", utc(2024, 1, 5, 10),
         [utc(2024, 1, 6, 12), utc(2024, 1, 7, 12), utc(2024, 1, 8, 9)]),
    ],
)
def test_calendar_next_fire(text, after, expected):
    assert fires(text, after, count=len(expected)) == expected


def test_calendar_configs_are_the_crons_watcher_builds():
    component, _ = load_schedule("schedule: {weekly: {on: [fri, 1], at: [noon, {hour: [8, 9], minute: 30}]}}")
    assert [cron.expression for cron in component.config] == ["0 0 12 ? * SUN,FRI", "0 30 8,9 ? * SUN,FRI"]
    component, _ = load_schedule("schedule: {monthly: {on: [31, last_day], at: noon}}")
    assert [cron.expression for cron in component.config] == ["0 0 12 31 * ?", "0 0 12 L * ?"]
    assert component.body == {"on": [31, "last_day"], "at": "noon"}


# --- time zones and DST through the trigger ---------------------------------------------------------

@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("{daily: {at: '17:00'}}", utc(2024, 1, 1), utc(2024, 1, 1, 17)),  # no timezone: UTC
        ("{timezone: Europe/Paris, daily: {at: '17:00'}}", utc(2024, 1, 1), utc(2024, 1, 1, 16)),
        ("{timezone: Europe/Paris, daily: {at: '17:00'}}", utc(2024, 7, 1), utc(2024, 7, 1, 15)),
        # spring forward (Paris 31 Mar 2024): 02:30 does not exist → first instant after the gap
        ("{timezone: Europe/Paris, daily: {at: '2:30'}}", utc(2024, 3, 30, 12), utc(2024, 3, 31, 1)),
        # autumn overlap (Paris 27 Oct 2024): 02:30 happens twice → fires once, the first time
        ("{timezone: Europe/Paris, daily: {at: '2:30'}}", utc(2024, 10, 26, 12), utc(2024, 10, 27, 0, 30)),
        ("{timezone: Europe/Paris, daily: {at: '2:30'}}", utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)),
        ("{timezone: Europe/Paris, hourly: {minute: 0}}", utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 2)),
        # New York (10 Mar / 3 Nov 2024)
        ("{timezone: America/New_York, daily: {at: '2:30'}}", utc(2024, 3, 9, 12), utc(2024, 3, 10, 7)),
        ("{timezone: America/New_York, daily: {at: '1:30'}}", utc(2024, 11, 2, 12), utc(2024, 11, 3, 5, 30)),
        ("{timezone: America/New_York, daily: {at: '1:30'}}", utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)),
        ("{timezone: America/New_York, weekly: {on: sunday, at: noon}}", utc(2024, 11, 2), utc(2024, 11, 3, 17)),
        ("{timezone: America/New_York, cron: '0 0 9 ? * MON-FRI'}", utc(2024, 3, 8, 15), utc(2024, 3, 11, 13)),
        ("{timezone: '+05:30', daily: {at: '9:00'}}", utc(2024, 1, 1), utc(2024, 1, 1, 3, 30)),
        ("{timezone: Europe/Paris, interval: 1h}", utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1)),  # zone ignored
    ],
)
def test_trigger_next_fire(schedule, after, expected):
    trigger = load_trigger(f"trigger: {{schedule: {schedule}}}")
    result = next_fire(trigger, after, anchor=utc(2024, 1, 1))
    assert result == expected
    assert result.tzinfo is UTC


def test_trigger_next_fire_none_when_never_again():
    trigger = load_trigger("trigger: {schedule: {cron: '0 0 0 1 1 ? 2020'}}")
    assert next_fire(trigger, utc(2024, 1, 1)) is None


def test_trigger_next_fire_rejects_naive_after():
    trigger = load_trigger("trigger: {schedule: {daily: {}}}")
    with pytest.raises(ValueError, match="aware"):
        next_fire(trigger, dt.datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, UTC),
        ("Europe/Paris", ZoneInfo("Europe/Paris")),
        ("europe/paris", ZoneInfo("Europe/Paris")),  # Watcher looks zones up case-insensitively
        ("UTC", ZoneInfo("UTC")),
        ("+02:00", dt.timezone(dt.timedelta(hours=2))),
        ("-0530", dt.timezone(-dt.timedelta(hours=5, minutes=30))),
        ("Z", UTC),
    ],
)
def test_resolve_timezone(name, expected):
    assert resolve_timezone(name) == expected


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "+25:00"])
def test_resolve_timezone_rejects(name):
    with pytest.raises(ValueError, match="unknown time zone"):
        resolve_timezone(name)


# --- interval ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "every"),
    [("schedule: {interval: 5m}", dt.timedelta(minutes=5)), ("schedule: {interval: 30}", dt.timedelta(seconds=30)),
     ("schedule: {interval: 1s}", dt.timedelta(seconds=1)), ("schedule: {interval: 2w}", dt.timedelta(weeks=2)),
     ("schedule: {interval: 3d}", dt.timedelta(days=3)), ("schedule: {interval: 1h}", dt.timedelta(hours=1))],
)
def test_interval_parse(text, every):
    component, problems = load_schedule(text)
    assert problems == [] and component.config.every == every


ANCHOR = utc(2024, 1, 1, 10, 0, 0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2024, 1, 1, 10, 7, 30), utc(2024, 1, 1, 10, 10)),
        (utc(2024, 1, 1, 10, 10), utc(2024, 1, 1, 10, 15)),  # strictly after
        (ANCHOR, utc(2024, 1, 1, 10, 5)),  # never at the anchor itself
        (utc(2024, 1, 1, 9), utc(2024, 1, 1, 10, 5)),  # before registration
        (utc(2024, 1, 2, 10, 2, 0, 1), utc(2024, 1, 2, 10, 5)),  # missed periods are not replayed
        (dt.datetime(2024, 1, 1, 11, 7, tzinfo=ZoneInfo("Europe/Paris")), utc(2024, 1, 1, 10, 10)),
    ],
)
def test_interval_next_fire_is_anchored(after, expected):
    from watcher.schedule import interval

    config = Interval(every=dt.timedelta(minutes=5), text="5m")
    assert interval.next_fire(config, after, UTC, ANCHOR) == expected


def test_interval_needs_an_anchor():
    from watcher.schedule import interval

    with pytest.raises(ValueError, match="anchor"):
        interval.next_fire(Interval(dt.timedelta(minutes=5), "5m"), utc(2024, 1, 1), UTC, None)


# --- parse problems: exact messages and positions --------------------------------------------------

EXPECTED_TIME = "a time such as 17:00 (HH:mm, 24-hour), midnight or noon, or {hour: [...], minute: [...]}"
EXPECTED_DAY = "a day of the week (sunday..saturday, sun..sat, or 1..7 with 1 = Sunday)"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("schedule:\n  interval: 5x\n",
         ['watch.yaml:2:13: schedule.interval: expected an interval such as 30s, 5m, 1h (a whole number and a '
          'unit s, m, h, d, w; at least 1s), found "5x" (unknown unit "x")']),
        ("schedule:\n  interval: 0s\n",
         ['watch.yaml:2:13: schedule.interval: expected an interval such as 30s, 5m, 1h (a whole number and a '
          'unit s, m, h, d, w; at least 1s), found "0s" (must be at least 1s)']),
        ("schedule:\n  interval: 500ms\n",
         ['watch.yaml:2:13: schedule.interval: expected an interval such as 30s, 5m, 1h (a whole number and a '
          'unit s, m, h, d, w; at least 1s), found "500ms" (unit "ms" is not supported for intervals)']),
        ("schedule:\n  hourly:\n    minute: [0, 60]\n",
         ["watch.yaml:3:17: schedule.hourly.minute[1]: expected a minute from 0 to 59, found an integer 60"]),
        ("schedule:\n  hourly:\n    minutes: 5\n",
         ["watch.yaml:3:5: schedule.hourly.minutes: unknown key 'minutes' (did you mean 'minute'?); "
          "expected one of: minute"]),
        ("schedule:\n  hourly: 5\n",
         ["watch.yaml:2:11: schedule.hourly: expected a mapping such as {minute: [0, 30]}, found an integer 5"]),
        ("schedule:\n  daily:\n    att: 17:00\n",
         ["watch.yaml:3:5: schedule.daily.att: unknown key 'att' (did you mean 'at'?); expected one of: at, time"]),
        ("schedule:\n  daily:\n    at: '25:00'\n",
         [f"watch.yaml:3:9: schedule.daily.at: expected {EXPECTED_TIME}, found a string '25:00': "
          "hour 25 (0-23) is out of range"]),
        ("schedule:\n  daily:\n    at: [noon, '5pm']\n",
         [f"watch.yaml:3:16: schedule.daily.at[1]: expected {EXPECTED_TIME}, found a string '5pm'"]),
        ("schedule:\n  daily:\n    at: 1700\n",
         [f"watch.yaml:3:9: schedule.daily.at: expected {EXPECTED_TIME}, found an integer 1700"]),
        ("schedule:\n  daily:\n    at: {hour: 24, minit: 0}\n",
         ["watch.yaml:3:20: schedule.daily.at.minit: unknown key 'minit' (did you mean 'minute'?); "
          "expected one of: hour, minute",
          "watch.yaml:3:16: schedule.daily.at.hour: expected an hour from 0 to 23, found an integer 24"]),
        ("schedule:\n  daily: {at: 17:00, time: noon}\n",
         ["watch.yaml:2:22: schedule.daily.time: 'time' and 'at' mean the same; give only one of them"]),
        ("schedule:\n  weekly:\n    on: [friday, funday]\n",
         [f"watch.yaml:3:18: schedule.weekly.on[1]: expected {EXPECTED_DAY}, found a string 'funday' "
          "(did you mean 'sunday'?)"]),
        ("schedule:\n  weekly:\n    on: 8\n",
         [f"watch.yaml:3:9: schedule.weekly.on: expected {EXPECTED_DAY}, found an integer 8"]),
        ("schedule:\n  weekly:\n    - on: monday\n    - onn: friday\n",
         ["watch.yaml:4:7: schedule.weekly[1].onn: unknown key 'onn' (did you mean 'on'?); "
          "expected one of: at, day, on, time"]),
        ("schedule:\n  monthly:\n    on: [1, 32]\n",
         ["watch.yaml:3:13: schedule.monthly.on[1]: expected a day of the month (1..31, first_day or last_day), "
          "found an integer 32"]),
        ("schedule:\n  monthly:\n    on: lastday\n",
         ["watch.yaml:3:9: schedule.monthly.on: expected a day of the month (1..31, first_day or last_day), "
          "found a string 'lastday' (did you mean 'last_day'?)"]),
        ("schedule:\n  yearly:\n    in: janury\n",
         ["watch.yaml:3:9: schedule.yearly.in: expected a month (january..december, jan..dec, or 1..12), "
          "found a string 'janury' (did you mean 'january'?)"]),
        ("schedule:\n  yearly:\n    in: 13\n",
         ["watch.yaml:3:9: schedule.yearly.in: expected a month (january..december, jan..dec, or 1..12), "
          "found an integer 13"]),
        ("schedule:\n  cron: '0 0 12 ? * 8'\n",
         ["watch.yaml:2:9: schedule.cron: invalid cron expression '0 0 12 ? * 8': "
          "day-of-week field: expected 1-7 or SUN-SAT, found '8'"]),
        ("schedule:\n  cron:\n    - '0 0 12 ? * MON'\n    - '0 0 12 * * MON'\n",
         ["watch.yaml:4:7: schedule.cron[1]: invalid cron expression '0 0 12 * * MON': day-of-month and "
          "day-of-week fields: exactly one must be '?', found '*' and 'MON' (Quartz does not support both; "
          "e.g. '0 0 12 ? * MON-FRI' or '0 0 12 1 * ?')"]),
        ("schedule:\n  cron: '*/5 * * * *'\n",
         ["watch.yaml:2:9: schedule.cron: invalid cron expression '*/5 * * * *': expected 6 or 7 fields "
          "(second minute hour day-of-month month day-of-week [year]), found 5 fields; Quartz starts with "
          "seconds and needs '?' in one day field: Unix '*/5 * * * *' is '0 */5 * * * ?'"]),
        ("schedule:\n  cron: []\n",
         ["watch.yaml:2:9: schedule.cron: expected a Quartz cron expression such as '0 0/5 * * * ?' "
          "or a list of them, found a list of 0 items"]),
        ("schedule:\n  dayly: {at: noon}\n",
         ["watch.yaml:2:3: schedule.dayly: unknown schedule type 'dayly' (did you mean 'daily'?); expected one of: "
          "cron, daily, hourly, interval, monthly, weekly, yearly"]),
    ],
)
def test_parse_problems(text, problems):
    component, found = load_schedule(text)
    assert component is None
    assert found == problems


# --- rule format: schedule: 5m | {cron: "...", timezone: ...} ------------------------------------------

def load_rule_schedule(text: str, timezone: str | None = None):
    document = load_text(text, "rule.yaml")
    reader = Reader(document)
    trigger = parse_rule_schedule(reader, document.data["schedule"], ("schedule",), timezone)
    return trigger, [str(problem) for problem in reader.problems]


def test_rule_interval():
    trigger, problems = load_rule_schedule("schedule: 5m")
    assert problems == []
    assert (trigger.kind, trigger.timezone, trigger.body) == ("interval", None, {"schedule": {"interval": "5m"}})
    assert next_fire(trigger, utc(2024, 1, 1, 10, 7), anchor=utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 10, 10)
    trigger, problems = load_rule_schedule("schedule: {interval: 30s}")
    assert problems == [] and trigger.body == {"schedule": {"interval": "30s"}}


def test_rule_cron_with_timezone():
    trigger, problems = load_rule_schedule('schedule: {cron: "*/5 * * * *", timezone: Europe/Paris}')
    assert problems == []
    assert trigger.kind == "cron" and trigger.timezone == "Europe/Paris"
    assert trigger.body == {"schedule": {"cron": "0 */5 * * * ?", "timezone": "Europe/Paris"}}
    assert next_fire(trigger, utc(2024, 1, 1, 10, 7)) == utc(2024, 1, 1, 10, 10)


def test_rule_cron_uses_the_rule_timezone_by_default():
    trigger, problems = load_rule_schedule('schedule: {cron: "0 9 * * 1-5"}', timezone="America/New_York")
    assert problems == []
    assert trigger.body == {"schedule": {"cron": "0 0 9 ? * MON-FRI", "timezone": "America/New_York"}}
    assert next_fire(trigger, utc(2024, 1, 5, 15)) == utc(2024, 1, 8, 14)
    trigger, _ = load_rule_schedule('schedule: {cron: "0 9 * * *"}')
    assert trigger.timezone is None and trigger.body == {"schedule": {"cron": "0 0 9 * * ?"}}


def test_rule_cron_with_both_day_fields_fires_on_either():
    trigger, problems = load_rule_schedule('schedule: {cron: "0 0 13 * 5"}')  # the 13th, and every Friday
    assert problems == []
    assert trigger.body == {"schedule": {"cron": ["0 0 0 13 * ?", "0 0 0 ? * FRI"]}}
    assert next_fire(trigger, utc(2024, 9, 6)) == utc(2024, 9, 13)  # a Friday the 13th
    assert next_fire(trigger, utc(2024, 9, 13)) == utc(2024, 9, 20)
    assert next_fire(trigger, utc(2024, 12, 7)) == utc(2024, 12, 13)


def test_rule_cron_six_fields_is_quartz():
    trigger, problems = load_rule_schedule('schedule: {cron: "30 0 12 ? * 6#3"}')
    assert problems == [] and trigger.body == {"schedule": {"cron": "30 0 12 ? * 6#3"}}


@pytest.mark.parametrize(
    ("unix", "quartz"),
    [
        ("*/5 * * * *", ["0 */5 * * * ?"]),
        ("0 9 * * 1-5", ["0 0 9 ? * MON-FRI"]),
        ("30 4 * * 0", ["0 30 4 ? * SUN"]),
        ("30 4 * * 7", ["0 30 4 ? * SUN"]),  # 7 is Sunday too
        ("0 0 * * 5-7", ["0 0 0 ? * SUN,FRI,SAT"]),
        ("0 0 * * sat,sun", ["0 0 0 ? * SUN,SAT"]),
        ("0 0 * * */2", ["0 0 0 ? * SUN,TUE,THU,SAT"]),
        ("0 0 * * */1", ["0 0 0 * * ?"]),
        ("0 0 1 jan *", ["0 0 0 1 JAN ?"]),
        ("15 10,22 1-15/2 * *", ["0 15 10,22 1-15/2 * ?"]),
        ("0 0 1,15 * mon", ["0 0 0 1,15 * ?", "0 0 0 ? * MON"]),
        ("@daily", ["0 0 0 * * ?"]),
        ("@hourly", ["0 0 * * * ?"]),
        ("@weekly", ["0 0 0 ? * SUN"]),
        ("@yearly", ["0 0 0 1 1 ?"]),
    ],
)
def test_unix_to_quartz(unix, quartz):
    assert unix_to_quartz(unix) == quartz


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("schedule: 5x",
         ['rule.yaml:1:11: schedule: expected an interval such as 30s, 5m, 1h (a whole number and a unit '
          's, m, h, d, w; at least 1s), found "5x" (unknown unit "x")']),
        ("schedule: 5",
         ["rule.yaml:1:11: schedule: expected an interval such as 30s, 5m or 1h, or a mapping such as "
          "{cron: '*/5 * * * *', timezone: Europe/Paris}, found an integer 5"]),
        ('schedule: {cron: "* * * * 8"}',
         ["rule.yaml:1:18: schedule.cron: invalid cron expression '* * * * 8': "
          "day-of-week field: expected 0-7 or SUN-SAT (0 and 7 = Sunday), found '8'"]),
        ('schedule: {cron: "61 * * * *"}',
         ["rule.yaml:1:18: schedule.cron: invalid cron expression '61 * * * *': "
          "minute field: expected 0-59, found '61'"]),
        ('schedule: {cron: "0 0 L * *"}',
         ["rule.yaml:1:18: schedule.cron: invalid cron expression '0 0 L * *': "
          "day-of-month field: expected numbers with * , - /, found 'L'"]),
        ('schedule: {cron: "* * * *"}',
         ["rule.yaml:1:18: schedule.cron: invalid cron expression '* * * *': "
          "expected 5 fields (minute hour day-of-month month day-of-week), found 4"]),
        ('schedule: {cron: "0 0 */2 * 1"}',
         ["rule.yaml:1:18: schedule.cron: invalid cron expression '0 0 */2 * 1': day-of-month and day-of-week: "
          "a stepped '*' in one with values in the other means both must match, which Quartz cannot express; "
          "use '*' in one of them"]),
        ('schedule: {cron: "* * * * *", timezone: Mars/Olympus}',
         ["rule.yaml:1:41: schedule.timezone: expected an IANA time zone such as Europe/Paris or UTC, "
          "found a string 'Mars/Olympus'"]),
        ('schedule: {cron: "* * * * *", tz: UTC}',
         ["rule.yaml:1:31: schedule.tz: unknown key 'tz'; expected one of: cron, interval, timezone"]),
        ("schedule: {timezone: UTC}",
         ["rule.yaml:1:1: schedule: expected exactly one of 'cron' or 'interval'"]),
        ("schedule: {interval: 5m, timezone: UTC}",
         ["rule.yaml:1:26: schedule.timezone: a timezone applies to cron schedules only, not to intervals"]),
    ],
)
def test_rule_schedule_problems(text, problems):
    trigger, found = load_rule_schedule(text)
    assert trigger is None
    assert found == problems
