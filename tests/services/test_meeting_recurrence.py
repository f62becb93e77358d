"""Recurrence of meeting series: rules expanded in the installation's zone, across month ends,
leap years and zones without daylight saving; dates people type; rules that never occur."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.i18n import translator
from services.errors import InvalidInput
from services.meetings import (
    describe_rule,
    normalise_rule,
    occurrences,
    parse_day,
    parse_when,
    presets,
    preview,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def rule_of(start: datetime, code: str, zone: ZoneInfo = SHANGHAI) -> str | None:
    return {p.code: p.rrule for p in presets(start, zone)}[code]


def local_dates(starts: list[datetime], zone: ZoneInfo = SHANGHAI) -> list[date]:
    return [s.astimezone(zone).date() for s in starts]


def test_monthly_on_the_31st_falls_on_the_last_day_of_shorter_months() -> None:
    start = at(SHANGHAI, 2027, 1, 31, 19, 0)
    rule = rule_of(start, "monthly_day")
    found = occurrences(start, rule, SHANGHAI, start, at(SHANGHAI, 2028, 3, 31, 23, 0))
    assert local_dates(found)[:5] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
        date(2027, 5, 31),
    ]
    assert date(2028, 2, 29) in local_dates(found), "a leap year's February ends on the 29th"
    assert len(found) == 15, "exactly one meeting every month"
    assert {s.astimezone(SHANGHAI).hour for s in found} == {19}


def test_monthly_on_the_30th_meets_on_the_28th_in_february() -> None:
    start = at(SHANGHAI, 2027, 1, 30, 19, 0)
    found = occurrences(
        start, rule_of(start, "monthly_day"), SHANGHAI, start, at(SHANGHAI, 2027, 4, 1, 0, 0)
    )
    assert local_dates(found) == [date(2027, 1, 30), date(2027, 2, 28), date(2027, 3, 30)]


def test_second_tuesday_every_month_across_the_year_end() -> None:
    start = at(SHANGHAI, 2026, 12, 8, 19, 0)
    rule = rule_of(start, "monthly_weekday")
    assert rule == "FREQ=MONTHLY;BYDAY=+2TU"
    found = occurrences(start, rule, SHANGHAI, start, at(SHANGHAI, 2027, 3, 31, 0, 0))
    assert local_dates(found) == [
        date(2026, 12, 8),
        date(2027, 1, 12),
        date(2027, 2, 9),
        date(2027, 3, 9),
    ]
    assert {(s.hour, s.minute) for s in found} == {(11, 0)}, "19:00 in Shanghai is 11:00 UTC"


def test_a_fifth_tuesday_repeats_on_the_last_tuesday() -> None:
    start = at(SHANGHAI, 2026, 12, 29, 19, 0)
    rule = rule_of(start, "monthly_weekday")
    assert rule == "FREQ=MONTHLY;BYDAY=-1TU"
    found = occurrences(start, rule, SHANGHAI, start, at(SHANGHAI, 2027, 3, 31, 0, 0))
    assert local_dates(found) == [
        date(2026, 12, 29),
        date(2027, 1, 26),
        date(2027, 2, 23),
        date(2027, 3, 30),
    ]


def test_every_two_months_skips_a_month() -> None:
    start = at(SHANGHAI, 2026, 12, 15, 14, 30)
    found = occurrences(
        start, rule_of(start, "bimonthly_day"), SHANGHAI, start, at(SHANGHAI, 2027, 7, 1, 0, 0)
    )
    assert local_dates(found) == [
        date(2026, 12, 15),
        date(2027, 2, 15),
        date(2027, 4, 15),
        date(2027, 6, 15),
    ]


@pytest.mark.parametrize(
    ("zone_name", "utc_hour", "utc_minute"),
    [("Asia/Shanghai", 11, 0), ("Asia/Kolkata", 13, 30), ("Asia/Kathmandu", 13, 15)],
)
def test_zones_without_daylight_saving_keep_one_utc_time_all_year(
    zone_name: str, utc_hour: int, utc_minute: int
) -> None:
    zone = ZoneInfo(zone_name)
    start = at(zone, 2027, 1, 5, 19, 0)
    found = occurrences(start, "FREQ=WEEKLY", zone, start, start + timedelta(days=364))
    assert len(found) == 53
    assert {(s.hour, s.minute) for s in found} == {(utc_hour, utc_minute)}
    assert {s.astimezone(zone).strftime("%H:%M") for s in found} == {"19:00"}


def test_a_zone_with_daylight_saving_keeps_the_local_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = at(berlin, 2027, 3, 16, 19, 0)
    found = occurrences(start, "FREQ=WEEKLY", berlin, start, at(berlin, 2027, 4, 7, 0, 0))
    assert [s.astimezone(berlin).strftime("%m-%d %H:%M") for s in found] == [
        "03-16 19:00",
        "03-23 19:00",
        "03-30 19:00",
        "04-06 19:00",
    ]
    assert [s.hour for s in found] == [18, 18, 17, 17], "UTC moves with the clock change"


@settings(max_examples=60, deadline=None)
@given(day=st.integers(min_value=1, max_value=31), month=st.integers(min_value=1, max_value=12))
def test_monthly_by_day_meets_once_a_month_on_that_day_or_the_last(day: int, month: int) -> None:
    year = 2027
    day = min(day, calendar.monthrange(year, month)[1])
    start = at(SHANGHAI, year, month, day, 9, 30)
    found = occurrences(
        start, rule_of(start, "monthly_day"), SHANGHAI, start, start + timedelta(days=730)
    )
    months = [(d.year, d.month) for d in local_dates(found)]
    assert len(months) == len(set(months)) >= 23, "one meeting per month, none skipped"
    for moment in local_dates(found):
        last = calendar.monthrange(moment.year, moment.month)[1]
        assert moment.day == (day if day <= 28 else min(day, last))


def test_31_february_never_occurs() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_rule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31")
    assert refused.value.key == "meetings.never_occurs"
    assert translator("en")(refused.value.key).startswith("With this rule the meeting would never")


async def test_a_rule_without_any_date_is_refused_after_searching() -> None:
    start = at(SHANGHAI, 2026, 12, 7, 19, 0)
    rule = normalise_rule("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6")
    with pytest.raises(InvalidInput) as refused:
        await preview(start, rule, SHANGHAI)
    assert refused.value.key == "meetings.never_occurs"


async def test_preview_lists_the_first_dates() -> None:
    start = at(SHANGHAI, 2026, 12, 8, 19, 0)
    first = await preview(start, "FREQ=MONTHLY;BYDAY=+2TU", SHANGHAI, count=3)
    assert local_dates(first) == [date(2026, 12, 8), date(2027, 1, 12), date(2027, 2, 9)]


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("FREQ=DAILY", "meetings.rule_freq"),
        ("FREQ=MINUTELY", "meetings.rule_freq"),
        ("FREQ=WEEKLY;INTERVAL=99", "meetings.rule_interval"),
        ("FREQ=WEEKLY;BYHOUR=3", "meetings.bad_rule"),
        ("every second tuesday", "meetings.bad_rule"),
        ("FREQ=MONTHLY;BYDAY=XX", "meetings.bad_rule"),
        ("FREQ=MONTHLY;COUNT=3;UNTIL=20271231", "meetings.bad_rule"),
    ],
)
def test_unusable_rules_get_a_clear_answer(typed: str, key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_rule(typed)
    assert refused.value.key == key


def test_rules_are_stored_in_one_canonical_form() -> None:
    assert normalise_rule("rrule:freq=monthly; byday=2tu;interval=2") == (
        "FREQ=MONTHLY;BYDAY=2TU;INTERVAL=2"
    )
    assert normalise_rule("FREQ=MONTHLY;UNTIL=20271231") == "FREQ=MONTHLY;UNTIL=20271231T235959Z"


def test_a_rule_with_an_end_stops() -> None:
    start = at(SHANGHAI, 2026, 12, 8, 19, 0)
    found = occurrences(start, "FREQ=MONTHLY;COUNT=3", SHANGHAI, start, start + timedelta(days=400))
    assert len(found) == 3


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-12-08 19:00", (2026, 12, 8, 19, 0)),
        ("2026/12/8 19:30", (2026, 12, 8, 19, 30)),
        ("12月8日 19:00", (2026, 12, 8, 19, 0)),
        ("2027年1月5日19点", (2027, 1, 5, 19, 0)),
        ("１２－０８ １９：００", (2026, 12, 8, 19, 0)),
        ("11-01 09:00", (2027, 11, 1, 9, 0)),
    ],
)
def test_dates_typed_in_common_ways(typed: str, expected: tuple[int, int, int, int, int]) -> None:
    assert parse_when(typed, SHANGHAI, NOW) == at(SHANGHAI, *expected)


@pytest.mark.parametrize(
    ("typed", "key", "params"),
    [
        ("2027-02-31 19:00", "meetings.no_such_date", {"days": 28}),
        ("2028-02-30 19:00", "meetings.no_such_date", {"days": 29}),
        ("2027-13-01 19:00", "meetings.no_such_month", {}),
        ("2026-12-08 25:00", "meetings.bad_time", {}),
        ("2026-12-08", "meetings.bad_when", {}),
        ("next tuesday", "meetings.bad_when", {}),
        ("2026-11-01 19:00", "meetings.in_past", {}),
        ("2030-01-01 19:00", "meetings.too_far", {}),
    ],
)
def test_bad_dates_get_a_clear_answer(typed: str, key: str, params: dict[str, int]) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_when(typed, SHANGHAI, NOW)
    assert refused.value.key == key
    for name, value in params.items():
        assert refused.value.params[name] == value


def test_a_local_time_the_clock_change_skips_is_refused() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    with pytest.raises(InvalidInput) as refused:
        parse_when("2027-03-28 02:30", berlin, NOW)
    assert refused.value.key == "meetings.time_skipped"


def test_due_dates() -> None:
    assert parse_day("2026-12-31", SHANGHAI, NOW) == date(2026, 12, 31)
    assert parse_day("12月1日", SHANGHAI, NOW) == date(2026, 12, 1)
    with pytest.raises(InvalidInput):
        parse_day("2026-11-01", SHANGHAI, NOW)


def test_rules_read_as_words() -> None:
    start = at(SHANGHAI, 2026, 12, 8, 19, 0)
    zh, en = translator("zh_CN"), translator("en")
    assert describe_rule(zh, "FREQ=MONTHLY;BYDAY=+2TU", start, SHANGHAI) == "每月第二个周二 19:00"
    assert describe_rule(en, "FREQ=MONTHLY;INTERVAL=2;BYDAY=+2TU", start, SHANGHAI) == (
        "every 2 months, 2nd Tuesday, at 19:00"
    )
    end = at(SHANGHAI, 2027, 1, 31, 19, 0)
    assert describe_rule(zh, rule_of(end, "monthly_day"), end, SHANGHAI) == (
        "每月31日（当月没有这一天时为月末） 19:00"
    )
    assert describe_rule(en, None, start, SHANGHAI) == "once"
    assert describe_rule(en, "FREQ=YEARLY;BYMONTH=3", start, SHANGHAI) == (
        "custom rule FREQ=YEARLY;BYMONTH=3"
    )
