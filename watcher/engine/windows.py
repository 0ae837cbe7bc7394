"""The window a rule searches at one scheduled time.

A rule searches ``[start, end)`` with ``end = scheduled − delay``. The start is ``end − window``,
except for a *calendar window*: with a cron schedule the window runs from the previous fire time
(``previous − delay``), so a daily digest covers the whole local day even when it lasts 23 or 25
hours (daylight saving), and no document is counted twice or missed. A rule gets a calendar window
when it sets ``calendar_window: true``, or by default when its cron schedule's usual period equals
its ``window`` (``window: 24h`` on a daily cron). By default the previous fire time is used only when
it lies within an hour (the largest daylight-saving shift) of the usual period: a weekday schedule's
Monday run keeps its fixed window rather than searching the whole weekend; ``calendar_window: true``
always uses it. docs/rule-types.md#windows-groups-time-zones.
"""

from __future__ import annotations

import datetime as dt

from watcher.model.rule import RuleSpec
from watcher.schedule import nominal_period, previous_fire

DST_TOLERANCE = dt.timedelta(hours=1)
"""How far the time since the previous fire may differ from the usual period for a default calendar
window to follow it (clocks move by one hour; Lord Howe Island's half hour fits too)."""


def uses_calendar_window(spec: RuleSpec) -> bool:
    """True when ``spec`` searches from its previous fire time (see the module docstring): its
    ``calendar_window`` when set, else whether its cron schedule's usual period equals ``window``.
    False for interval schedules and for specs whose schedule was never parsed."""
    trigger = spec.trigger
    if trigger is None or trigger.kind == "interval":
        return False
    if spec.calendar_window is not None:
        return spec.calendar_window
    return nominal_period(trigger) == spec.window


def window_of(spec: RuleSpec, scheduled_time: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``(start, end)`` of the window searched at ``scheduled_time`` (aware UTC): ``end`` is
    ``scheduled − delay``; ``start`` is ``end − window``, or the previous fire time minus ``delay``
    for a calendar window (``end − window`` when the schedule never fired before)."""
    end = scheduled_time - spec.delay
    if uses_calendar_window(spec):
        previous = previous_fire(spec.trigger, scheduled_time)
        if previous is not None and (spec.calendar_window or
                                     abs(scheduled_time - previous - spec.window) <= DST_TOLERANCE):
            return previous - spec.delay, end
    return end - spec.window, end
