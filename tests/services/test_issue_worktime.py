"""Working time: response deadlines count only working minutes in the installation's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.issues import IssuePolicy

POLICY = IssuePolicy(zone=ZoneInfo("Asia/Shanghai"))
MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, minutes=st.floats(min_value=0.5, max_value=5000))
def test_a_deadline_lands_in_working_hours_and_never_before_the_start(
    start: datetime, minutes: float
) -> None:
    due = POLICY.add_working_minutes(start, minutes)
    assert due > start
    local = due.astimezone(POLICY.zone)
    minute_of_day = local.hour * 60 + local.minute + local.second / 60
    assert local.isoweekday() in POLICY.weekdays
    assert POLICY.work_start <= minute_of_day <= POLICY.work_end


@settings(max_examples=200, deadline=None)
@given(start=MOMENTS, first=st.floats(0.5, 3000), extra=st.floats(0.5, 3000))
def test_more_minutes_never_make_an_earlier_deadline(
    start: datetime, first: float, extra: float
) -> None:
    assert POLICY.add_working_minutes(start, first + extra) >= POLICY.add_working_minutes(
        start, first
    )


def test_a_working_day_holds_nine_hours() -> None:
    monday_0830 = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert POLICY.add_working_minutes(monday_0830, 9 * 60) == monday_0830 + timedelta(hours=9)
    assert POLICY.add_working_minutes(monday_0830, 9 * 60 + 1) == monday_0830 + timedelta(
        days=1, minutes=1
    )


def test_a_six_day_week_works_saturdays() -> None:
    six_days = IssuePolicy(zone=ZoneInfo("Asia/Shanghai"), weekdays=frozenset(range(1, 7)))
    saturday_0800 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert six_days.add_working_minutes(saturday_0800, 10) == saturday_0800 + timedelta(minutes=40)
