"""Schedule types of ``trigger.schedule``: parse them and compute the next fire time.

Each type module (interval, hourly, daily, weekly, monthly, yearly, cron) has ``TYPE``,
``parse(reader, body, path) -> config`` and ``next_fire(config, after, tz, anchor) -> datetime``
(aware UTC, strictly after ``after``). Calendar types compile to Quartz cron expressions
(:mod:`watcher.schedule.quartz`), as Watcher does, so one engine computes every calendar schedule.

:func:`next_fire` dispatches on a :class:`~watcher.model.watch.Trigger`;
:func:`parse_rule_schedule` reads our YAML rule format's ``schedule`` (an interval, or a 5-field
Unix cron translated to Quartz) into the same Trigger. The daemon's scheduler wraps these
functions; nothing here sleeps or reads the clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from watcher.errors import DefinitionProblem
from watcher.model.problems import Reader
from watcher.model.registry import Registry
from watcher.model.source import plain
from watcher.model.watch import Trigger
from watcher.schedule import cron, daily, hourly, interval, monthly, quartz, weekly, yearly

__all__ = ["REGISTRY", "UnixCronError", "next_fire", "nominal_period", "parse_rule_schedule", "previous_fire",
           "resolve_timezone", "unix_to_quartz"]

REGISTRY = Registry("schedule", [interval, hourly, daily, weekly, monthly, yearly, cron])

UTC = dt.timezone.utc


def next_fire(trigger: Trigger, after: dt.datetime, anchor: dt.datetime | None = None) -> dt.datetime | None:
    """The first fire time of ``trigger`` strictly after ``after``.

    Args:
        trigger: a parsed trigger (``kind`` is a :data:`REGISTRY` name; ``timezone`` None = UTC).
        after: aware datetime.
        anchor: aware registration time of the watch; required for ``interval``, ignored otherwise.

    Returns:
        Aware UTC datetime, or None when the schedule never fires again (a cron limited to past
        years, or one naming a day that does not exist such as February 30th).

    Raises:
        ValueError: naive ``after``, missing anchor for an interval, unknown time zone.
        KeyError: unknown ``trigger.kind``.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be an aware datetime")
    module = REGISTRY.get(trigger.kind)
    return module.next_fire(trigger.config, after, resolve_timezone(trigger.timezone), anchor)


# How far back previous_fire looks at most: a yearly cron fires at least once in this span.
_LOOK_BACK = (dt.timedelta(hours=2), dt.timedelta(days=2), dt.timedelta(days=9), dt.timedelta(days=63),
              dt.timedelta(days=800))
_REFERENCE = dt.datetime(2001, 1, 1, tzinfo=UTC)  # nominal_period measures the schedule from here
_PERIOD_SAMPLES = 12


def previous_fire(trigger: Trigger, before: dt.datetime) -> dt.datetime | None:
    """The last fire time of a calendar or cron ``trigger`` strictly before ``before`` (aware UTC),
    or None when it fired never in the 800 days before (or it is an interval schedule, whose fire
    times depend on when the watch was registered).

    Raises:
        ValueError: naive ``before``, unknown time zone.
    """
    if before.tzinfo is None or before.utcoffset() is None:
        raise ValueError("before must be an aware datetime")
    if trigger.kind == "interval":
        return None
    for span in _LOOK_BACK:
        current, found = before - span, None
        while True:
            current = next_fire(trigger, current)
            if current is None or current >= before:
                break
            found = current
        if found is not None:
            return found
    return None


def nominal_period(trigger: Trigger) -> dt.timedelta | None:
    """The usual time between two fires of a calendar or cron ``trigger``: the most frequent gap
    between consecutive fire times over a reference year's first fires (so a daily schedule is
    24 h even though a day with a daylight-saving change lasts 23 or 25 h); None for an interval
    schedule or one that fires fewer than twice."""
    if trigger.kind == "interval":
        return None
    times, current = [], _REFERENCE
    while len(times) < _PERIOD_SAMPLES:
        current = next_fire(trigger, current)
        if current is None:
            break
        times.append(current)
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    return max(set(gaps), key=gaps.count) if gaps else None


def resolve_timezone(name: str | None) -> dt.tzinfo:
    """A zone for a trigger's ``timezone``: None → UTC; an IANA id (case-insensitive, as Watcher's
    ``TimezoneUtils`` looks it up); or a fixed offset ``+02:00`` / ``-0530`` / ``Z``.

    Raises:
        ValueError: not a known zone or offset.
    """
    if name is None:
        return UTC
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"unknown time zone {name!r}")
    text = name.strip()
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    canonical = _zones_by_lower_name().get(text.lower())
    if canonical:
        return ZoneInfo(canonical)
    if text.upper() == "Z":
        return UTC
    match = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", text, re.IGNORECASE)
    if match and int(match[2]) <= 18 and int(match[3] or 0) < 60:
        sign = 1 if match[1] == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(match[2]), minutes=int(match[3] or 0)))
    raise ValueError(f"unknown time zone {name!r}")


@functools.lru_cache(maxsize=1)
def _zones_by_lower_name() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_timezones()}


# --- our YAML rule format ------------------------------------------------------------------------------

EXPECTED_RULE_SCHEDULE = ("an interval such as 30s, 5m or 1h, or a mapping such as "
                          "{cron: '*/5 * * * *', timezone: Europe/Paris}")
EXPECTED_TIMEZONE = "an IANA time zone such as Europe/Paris or UTC"
RULE_SCHEDULE_KEYS = ("cron", "interval", "timezone")


def parse_rule_schedule(reader: Reader, value: Any, path: Sequence[str | int],
                        timezone: str | None = None) -> Trigger | None:
    """Parse a rule's ``schedule`` into the Trigger of the equivalent watch.

    Accepted forms:

    * ``schedule: 5m`` — an interval (whole number and unit s, m, h, d, w; at least 1 s), anchored
      at registration like Watcher's interval schedule;
    * ``schedule: {interval: 5m}`` — the same;
    * ``schedule: {cron: "*/5 * * * *", timezone: Europe/Paris}`` — a 5-field Unix cron
      (minute hour day-of-month month day-of-week; 0 and 7 = Sunday; names JAN–DEC, SUN–SAT;
      ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``), translated to Quartz.
      A 6- or 7-field expression is taken as Quartz as-is. ``timezone`` (default: the
      ``timezone`` argument, the rule's own, else UTC) is the zone of the wall clock.

    Args:
        reader: where problems go (positions of ``value`` in the rule file).
        value: the ``schedule`` value.
        path: where it sits in the document.
        timezone: the rule-level default zone, or None.

    Returns:
        A :class:`Trigger` (kind ``interval`` or ``cron``) whose ``body`` is the Watcher trigger,
        e.g. ``{"schedule": {"cron": "0 */5 * * * ?", "timezone": "Europe/Paris"}}``; None when
        problems were recorded.
    """
    if isinstance(value, Mapping):
        return _parse_rule_mapping(reader, value, path, timezone)
    if isinstance(plain(value), str):
        return _rule_interval(reader, plain(value).strip(), path)
    reader.expected(path, EXPECTED_RULE_SCHEDULE, value)
    return None


def _rule_interval(reader: Reader, text: Any, path: Sequence[str | int]) -> Trigger | None:
    if not isinstance(text, str):
        reader.expected(path, "an interval such as 30s, 5m or 1h", text)
        return None
    config = interval.parse(reader, text, path)
    if config is None:
        return None
    return Trigger(kind="interval", config=config, timezone=None, body={"schedule": {"interval": text}})


def _parse_rule_mapping(reader: Reader, value: Mapping, path: Sequence[str | int],
                        timezone: str | None) -> Trigger | None:
    before = len(reader.problems)
    for key in value:
        if key not in RULE_SCHEDULE_KEYS:
            reader.unknown_key(path, str(key), RULE_SCHEDULE_KEYS)
    if ("cron" in value) == ("interval" in value):
        reader.problem(path, "expected exactly one of 'cron' or 'interval'")
        return None
    if "interval" in value:
        if "timezone" in value:
            reader.problem((*path, "timezone"), "a timezone applies to cron schedules only, not to intervals")
        trigger = _rule_interval(reader, plain(value["interval"]), (*path, "interval"))
        return trigger if len(reader.problems) == before else None

    zone = plain(value.get("timezone", timezone))
    try:
        resolve_timezone(zone)
    except ValueError:
        where = (*path, "timezone") if "timezone" in value else tuple(path)
        reader.expected(where, EXPECTED_TIMEZONE, zone)
    text = plain(value["cron"])
    cron_path = (*path, "cron")
    if not isinstance(text, str):
        reader.expected(cron_path, "a cron expression such as '*/5 * * * *'", value["cron"])
        return None
    try:
        expressions = unix_to_quartz(text) if len(text.split()) <= 5 else [" ".join(text.split())]
        crons = tuple(quartz.parse(expression) for expression in expressions)
    except (UnixCronError, quartz.QuartzError) as error:
        reader.problem(cron_path, f"invalid cron expression {text!r}: {error}", at_value=True)
        return None
    if len(reader.problems) > before:
        return None
    schedule: dict[str, Any] = {"cron": expressions[0] if len(expressions) == 1 else expressions}
    if zone is not None:
        schedule["timezone"] = zone
    return Trigger(kind="cron", config=crons, timezone=zone, body={"schedule": schedule})


# --- Unix cron → Quartz ------------------------------------------------------------------------------

class UnixCronError(DefinitionProblem, ValueError):
    """An invalid 5-field Unix cron expression; the message names the field."""


_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_UNIX_FIELD_RE = {
    "minute": re.compile(r"[0-9*,/-]+"),
    "hour": re.compile(r"[0-9*,/-]+"),
    "day-of-month": re.compile(r"[0-9*,/-]+"),
    "month": re.compile(r"[0-9A-Za-z*,/-]+"),
}
_UNIX_DAYS = {name: i for i, name in enumerate(quartz.DAY_NAMES)}  # SUN = 0 in Unix cron


def unix_to_quartz(expression: str) -> list[str]:
    """Translate a 5-field Unix cron expression into equivalent Quartz expressions.

    ``*/5 * * * *`` → ``["0 */5 * * * ?"]``; ``0 9 * * 1-5`` → ``["0 0 9 ? * MON-FRI"]``. When both
    day-of-month and day-of-week are restricted, Unix cron fires when *either* matches, which
    Quartz cannot say in one expression: the result is two expressions (a Watcher ``cron`` list).

    Source: crontab(5) (Vixie cron): 0 and 7 are Sunday; names are case-insensitive.

    Raises:
        UnixCronError: wrong field count, characters Unix cron does not have (``? L W #``), bad
        day-of-week values, or a stepped ``*`` day field combined with a restricted other day field
        (Vixie then requires both to match, which Quartz cannot express). Ranges of the other
        fields are checked by :func:`quartz.parse` afterwards.
    """
    text = expression.strip()
    text = _MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise UnixCronError(f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}")
    minute, hour, dom, month, dow = fields
    for name, field in zip(_UNIX_FIELD_RE, (minute, hour, dom, month)):
        if not _UNIX_FIELD_RE[name].fullmatch(field):
            raise UnixCronError(f"{name} field: expected numbers with * , - /, found {field!r}")
    weekdays = _unix_weekdays(dow)
    prefix = f"0 {minute} {hour}"
    month = month.upper()
    if dow == "*" or (dow.startswith("*") and len(weekdays) == 7):
        return [f"{prefix} {dom} {month} ?"]
    weekday_field = quartz.format_weekdays(weekdays)
    if dom == "*":
        return [f"{prefix} ? {month} {weekday_field}"]
    if dom.startswith("*") or dow.startswith("*"):
        raise UnixCronError("day-of-month and day-of-week: a stepped '*' in one with values in the other means "
                            "both must match, which Quartz cannot express; use '*' in one of them")
    return [f"{prefix} {dom} {month} ?", f"{prefix} ? {month} {weekday_field}"]


def _unix_weekdays(text: str) -> list[int]:
    """Unix day-of-week field → Quartz weekdays (1 = Sunday)."""
    values: set[int] = set()
    for item in text.upper().split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or not 1 <= int(step_text) <= 7:
                raise UnixCronError(f"day-of-week field: expected a step from 1 to 7 after '/', found {step_text!r}")
            step = int(step_text)
        if base == "*":
            start, end = 0, 6
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _unix_weekday(first), _unix_weekday(last)
            if end < start:
                raise UnixCronError(f"day-of-week field: expected a range from low to high, found {base!r}")
        else:
            start = _unix_weekday(base)
            end = 7 if slash else start
        values.update(value % 7 + 1 for value in range(start, end + 1, step))
    return sorted(values)


def _unix_weekday(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _UNIX_DAYS:
        return _UNIX_DAYS[token]
    raise UnixCronError(f"day-of-week field: expected 0-7 or SUN-SAT (0 and 7 = Sunday), found {token!r}")
