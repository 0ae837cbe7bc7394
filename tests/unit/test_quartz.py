"""watcher.schedule.quartz: Quartz cron parsing and next fire times (UTC, Europe/Paris, America/New_York)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from watcher.schedule.quartz import QuartzError, earliest_after, format_weekdays, parse, wall_to_utc

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


# 2024-01-01 is a Monday; 2024 is a leap year.
@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0/15 * * * ?", utc(2024, 1, 1, 10, 7, 30), utc(2024, 1, 1, 10, 15)),
        ("0 */15 * * * ?", utc(2024, 1, 1, 10, 45), utc(2024, 1, 1, 11, 0)),
        ("0 10-40/10 * * * ?", utc(2024, 1, 1, 10, 40), utc(2024, 1, 1, 11, 10)),
        ("0 10-40/10 * * * ?", utc(2024, 1, 1, 10, 10, 0, 1), utc(2024, 1, 1, 10, 20)),  # strictly after
        ("*/20 * * * * ?", utc(2024, 1, 1, 10, 0, 40), utc(2024, 1, 1, 10, 1, 0)),
        ("5/15 * * * * ?", utc(2024, 1, 1, 10, 0, 50), utc(2024, 1, 1, 10, 1, 5)),
        ("0 0 12 * * ?", utc(2024, 12, 31, 12), utc(2025, 1, 1, 12)),  # carry into the next year
        ("0 0 22-2 * * ?", utc(2024, 1, 1, 2), utc(2024, 1, 1, 22)),  # overflowing range
        ("0 0 22-2 * * ?", utc(2024, 1, 1, 23), utc(2024, 1, 2, 0)),
        ("0 0 0 1 NOV-FEB ?", utc(2024, 2, 1), utc(2024, 11, 1)),
        ("0 0 9 ? * MON-FRI", utc(2024, 1, 5, 9), utc(2024, 1, 8, 9)),  # Friday → Monday
        ("0 0 9 ? * 2-6", utc(2024, 1, 5, 9), utc(2024, 1, 8, 9)),
        ("0 0 12 ? * 1", utc(2024, 1, 1), utc(2024, 1, 7, 12)),  # 1 = Sunday
        ("0 0 12 ? * sun", utc(2024, 1, 1), utc(2024, 1, 7, 12)),  # names are case-insensitive
        ("0 0 0 ? * L", utc(2024, 1, 1), utc(2024, 1, 6)),  # 'L' alone = Saturday
        ("0 0 12 ? * 6#3", utc(2024, 1, 1), utc(2024, 1, 19, 12)),  # third Friday
        ("0 0 12 ? * 6#3", utc(2024, 1, 19, 12), utc(2024, 2, 16, 12)),
        ("0 0 12 ? * FRI#3", utc(2024, 1, 1), utc(2024, 1, 19, 12)),
        ("0 0 12 ? * 2#5", utc(2024, 2, 1), utc(2024, 4, 29, 12)),  # fifth Monday: none in Feb/Mar 2024
        ("0 0 12 ? * 5L", utc(2024, 1, 1), utc(2024, 1, 25, 12)),  # last Thursday
        ("0 0 12 ? * 5L", utc(2024, 1, 25, 12), utc(2024, 2, 29, 12)),
        ("0 0 12 L * ?", utc(2024, 2, 1), utc(2024, 2, 29, 12)),
        ("0 0 12 L * ?", utc(2023, 2, 1), utc(2023, 2, 28, 12)),
        ("0 0 12 L-3 * ?", utc(2024, 2, 1), utc(2024, 2, 26, 12)),
        ("0 0 12 L-3 * ?", utc(2023, 2, 1), utc(2023, 2, 25, 12)),
        ("0 0 12 LW * ?", utc(2024, 3, 1), utc(2024, 3, 29, 12)),  # 31st is a Sunday → Friday 29th
        ("0 0 12 LW * ?", utc(2024, 11, 1), utc(2024, 11, 29, 12)),  # 30th is a Saturday
        ("0 0 12 LW * ?", utc(2025, 2, 1), utc(2025, 2, 28, 12)),  # a Friday already
        ("0 0 12 15W * ?", utc(2024, 6, 1), utc(2024, 6, 14, 12)),  # 15th is a Saturday → Friday
        ("0 0 12 15W * ?", utc(2024, 9, 1), utc(2024, 9, 16, 12)),  # 15th is a Sunday → Monday
        ("0 0 12 1W * ?", utc(2024, 5, 31), utc(2024, 6, 3, 12)),  # Saturday 1st → Monday 3rd, same month
        ("0 0 12 31W * ?", utc(2024, 4, 1), utc(2024, 5, 31, 12)),  # no 31st in April: skipped
        ("0 0 0 31 * ?", utc(2024, 4, 1), utc(2024, 5, 31)),
        ("0 0 0 29 2 ?", utc(2024, 3, 1), utc(2028, 2, 29)),
        ("0 0 0 1 1 ? 2030", utc(2024, 6, 1), utc(2030, 1, 1)),
        ("0 0 0 1 1 ? 2024,2026", utc(2024, 1, 1), utc(2026, 1, 1)),
        ("0 0 0 1 1 ? 2025-2099/5", utc(2026, 1, 1), utc(2030, 1, 1)),
        ("0 0 0 1 1 ? 2020", utc(2024, 1, 1), None),  # only past years
        ("0 0 0 30 2 ?", utc(2024, 1, 1), None),  # February 30th never exists
        ("0 0 0 * * ?", utc(2099, 12, 31, 0), None),  # beyond the last supported year
    ],
)
def test_next_after_utc(expression, after, expected):
    assert parse(expression).next_after(after, UTC) == expected


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # Europe/Paris 2024: spring forward 31 Mar 01:00 UTC (02:00 CET → 03:00 CEST),
        # fall back 27 Oct 01:00 UTC (03:00 CEST → 02:00 CET).
        ("0 0 9 * * ?", PARIS, utc(2024, 3, 30, 8), utc(2024, 3, 31, 7)),
        ("0 30 2 * * ?", PARIS, utc(2024, 3, 30, 12), utc(2024, 3, 31, 1)),  # gap: 02:30 → 03:00 CEST
        ("0 30 2 * * ?", PARIS, utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)),
        ("0 */15 2 * * ?", PARIS, utc(2024, 3, 31, 0), utc(2024, 3, 31, 1)),  # four missing times → one fire
        ("0 */15 2 * * ?", PARIS, utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)),
        ("0 30 2 * * ?", PARIS, utc(2024, 10, 26, 12), utc(2024, 10, 27, 0, 30)),  # overlap: first occurrence
        ("0 30 2 * * ?", PARIS, utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)),  # ... and only once
        ("0 */30 * * * ?", PARIS, utc(2024, 10, 27, 0, 45), utc(2024, 10, 27, 2, 0)),  # repeated hour skipped
        ("0 */30 * * * ?", PARIS, utc(2024, 10, 27, 1, 10), utc(2024, 10, 27, 2, 0)),  # after inside 2nd pass
        ("0 0 3 * * ?", PARIS, utc(2024, 10, 26, 12), utc(2024, 10, 27, 2)),
        # America/New_York 2024: spring forward 10 Mar 07:00 UTC, fall back 3 Nov 06:00 UTC.
        ("0 30 2 * * ?", NEW_YORK, utc(2024, 3, 9, 12), utc(2024, 3, 10, 7)),  # 03:00 EDT
        ("0 0 12 * * ?", NEW_YORK, utc(2024, 3, 9, 18), utc(2024, 3, 10, 16)),
        ("0 30 1 * * ?", NEW_YORK, utc(2024, 11, 2, 12), utc(2024, 11, 3, 5, 30)),  # 01:30 EDT
        ("0 30 1 * * ?", NEW_YORK, utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)),  # not 01:30 EST
        ("0 0 12 * * ?", NEW_YORK, utc(2024, 11, 3, 12), utc(2024, 11, 3, 17)),
        ("0 0 9 * * ?", dt.timezone(dt.timedelta(hours=5, minutes=30)), utc(2024, 1, 1), utc(2024, 1, 1, 3, 30)),
    ],
)
def test_next_after_in_a_zone(expression, zone, after, expected):
    assert parse(expression).next_after(after, zone) == expected


def test_after_in_another_zone_and_result_in_utc():
    after = dt.datetime(2024, 1, 1, 10, 0, tzinfo=PARIS)  # 09:00 UTC
    result = parse("0 0 * * * ?").next_after(after, UTC)
    assert result == utc(2024, 1, 1, 10) and result.tzinfo is UTC


def test_naive_after_is_rejected():
    with pytest.raises(ValueError, match="aware"):
        parse("0 0 * * * ?").next_after(dt.datetime(2024, 1, 1), UTC)


def test_earliest_after_picks_the_soonest():
    crons = [parse("0 0 12 ? * FRI"), parse("0 0 9 * * ?"), parse("0 0 0 1 1 ? 2020")]
    assert earliest_after(crons, utc(2024, 1, 5, 10), UTC) == utc(2024, 1, 5, 12)
    assert earliest_after([parse("0 0 0 1 1 ? 2020")], utc(2024, 1, 1), UTC) is None


def test_sequence_is_strictly_increasing_through_dst():
    cron, after, fires = parse("0 0/30 * * * ?"), utc(2024, 10, 26, 23), []
    for _ in range(8):
        after = cron.next_after(after, PARIS)
        fires.append(after.strftime("%H:%M"))
    # 01:00 … 02:30 CEST, then 03:00 CET (the repeated 02:xx hour fires once only)
    assert fires == ["23:30", "00:00", "00:30", "02:00", "02:30", "03:00", "03:30", "04:00"]


def test_wall_to_utc():
    assert wall_to_utc(dt.datetime(2024, 3, 31, 2, 30), PARIS) == utc(2024, 3, 31, 1)
    assert wall_to_utc(dt.datetime(2024, 10, 27, 2, 30), PARIS) == utc(2024, 10, 27, 0, 30)
    assert wall_to_utc(dt.datetime(2024, 7, 1, 12), PARIS) == utc(2024, 7, 1, 10)


def test_parsed_fields():
    cron = parse("0 10-40/10 22-2 ? jan,JUL 6#3 2030")
    assert cron.expression == "0 10-40/10 22-2 ? JAN,JUL 6#3 2030"
    assert cron.minutes == (10, 20, 30, 40)
    assert cron.hours == (0, 1, 2, 22, 23)
    assert cron.months == (1, 7)
    assert cron.years == (2030,)
    assert parse("  0  0  12  *  *  ?  ").expression == "0 0 12 * * ?"


def test_next_is_not_a_scan(monkeypatch):
    from watcher.schedule import quartz

    months: list[tuple[int, int]] = []
    month_days = quartz._month_days

    def counted(rules, year, month):
        months.append((year, month))
        return month_days(rules, year, month)

    monkeypatch.setattr(quartz, "_month_days", counted)
    cron = parse("0 0 0 29 2 ? 2096")
    assert cron.next_after(utc(2024, 3, 1), UTC) == utc(2096, 2, 29)
    # the years and months fields are jumped to, not walked: the days of one month are looked at,
    # not those of the 864 months (or 26,000 days) in between
    assert months == [(2096, 2)]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 12 ? * 8", "day-of-week field: expected 1-7 or SUN-SAT, found '8'"),
        ("0 0 12 ? * FOO", "day-of-week field: expected 1-7 or SUN-SAT, found 'FOO'"),
        ("0 0 12 ? * 0", "day-of-week field: expected 1-7 or SUN-SAT, found '0'"),
        ("0 0 * * *", "expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), "
                      "found 5 fields; Quartz starts with seconds and needs '?' in one day field: "
                      "Unix '*/5 * * * *' is '0 */5 * * * ?'"),
        ("", "expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), found 0 fields"),
        ("0 0 0 1 1 ? 2024 x", "expected 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), "
                               "found 8 fields"),
        ("60 * * * * ?", "second field: expected 0-59, found '60'"),
        ("0 60 * * * ?", "minute field: expected 0-59, found '60'"),
        ("0 0 24 * * ?", "hour field: expected 0-23, found '24'"),
        ("0 0 0 32 * ?", "day-of-month field: expected 1-31, found '32'"),
        ("0 0 0 0 * ?", "day-of-month field: expected 1-31, found '0'"),
        ("0 0 0 1 13 ?", "month field: expected 1-12 or JAN-DEC, found '13'"),
        ("0 0 0 1 JANUARY ?", "month field: expected 1-12 or JAN-DEC, found 'JANUARY'"),
        ("0 0 0 1 1 ? 1969", "year field: expected 1970-2099, found '1969'"),
        ("0 0 0 1 1 ? 2100", "year field: expected 1970-2099, found '2100'"),
        ("0 0 0 1 1 ? 2030-2025", "year field: expected a range from low to high, found '2030-2025'"),
        ("0 0/60 * * * ?", "minute field: expected a step from 1 to 59 after '/', found '60'"),
        ("0 0/0 * * * ?", "minute field: expected a step from 1 to 59 after '/', found '0'"),
        ("0 0/x * * * ?", "minute field: expected a step from 1 to 59 after '/', found 'X'"),
        ("0 1,,2 * * * ?", "minute field: expected 0-59, found an empty list item in '1,,2'"),
        ("0 0 12 * * MON", "day-of-month and day-of-week fields: exactly one must be '?', found '*' and 'MON' "
                           "(Quartz does not support both; e.g. '0 0 12 ? * MON-FRI' or '0 0 12 1 * ?')"),
        ("0 0 12 ? * ?", "day-of-month and day-of-week fields: exactly one must be '?', found '?' and '?' "
                         "(Quartz does not support both; e.g. '0 0 12 ? * MON-FRI' or '0 0 12 1 * ?')"),
        ("0 0 ? * * ?", "hour field: '?' is only allowed in the day-of-month or day-of-week field"),
        ("0 0 0 1,L * ?", "day-of-month field: 'L' and 'W' must stand alone, found '1,L'"),
        ("0 0 0 L-31 * ?", "day-of-month field: expected an offset from 0 to 30 after 'L-', found '31'"),
        ("0 0 0 32W * ?", "day-of-month field: expected 1-31 before 'W', found '32'"),
        ("0 0 0 LX * ?", "day-of-month field: expected 1-31, L, L-n, LW or nW, found 'LX'"),
        ("0 0 0 ? * 6#6", "day-of-week field: expected 1-5 after '#', found '6'"),
        ("0 0 0 ? * 8#1", "day-of-week field: expected 1-7 or SUN-SAT, found '8'"),
        ("0 0 0 ? * 1#1,6#3", "day-of-week field: 'L' and '#' must stand alone, found '1#1,6#3'"),
        ("0 0 0 ? * 8L", "day-of-week field: expected 1-7 or SUN-SAT, found '8'"),
    ],
)
def test_parse_errors(expression, message):
    with pytest.raises(QuartzError) as error:
        parse(expression)
    assert str(error.value) == message
    assert isinstance(error.value, ValueError)


def test_format_weekdays():
    assert format_weekdays([2, 3, 4, 5, 6]) == "MON-FRI"
    assert format_weekdays([1, 7]) == "SUN,SAT"
    assert format_weekdays([1, 2, 4]) == "SUN,MON,WED"
    assert format_weekdays([6]) == "FRI"
