"""Meetings hand on to the other capabilities: attendance earns points (and, for volunteers,
service hours) once, and a follow-up becomes a tracked issue whose state shows on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from bot.db import Database
from models.issues import Issue, IssueSource, IssueStatus
from models.meetings import FollowUpStatus
from services import issues, meetings, points
from services.access import Actor
from services.errors import InvalidInput, PermissionDenied
from tests.services.meeting_fixtures import FIRST, NOW, RULES, VENUE, Town, call_meeting, make_town

ISSUES = issues.IssuePolicy()


@pytest.fixture
async def town(demo_db: Database) -> Town:
    return await make_town(demo_db)


async def code_of(town: Town, meeting_id: int) -> str:
    async with town.db.transaction() as session:
        _, code, _, _ = await meetings.checkin_code(
            session, town["coordinator"], meeting_id, NOW, RULES
        )
    return code


async def balance_and_minutes(town: Town, name: str) -> tuple[int, int]:
    async with town.db.transaction() as session:
        return (
            await points.balance(session, town.member(name)),
            await points.year_minutes(session, town.member(name), FIRST),
        )


async def test_attending_earns_points_once_and_volunteers_log_the_meetings_length(
    town: Town,
) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    code = await code_of(town, meeting_id)
    async with town.db.transaction() as session:
        resident = await meetings.check_in_with_code(
            session, town["resident"], code, FIRST - timedelta(minutes=5), RULES
        )
        again = await meetings.check_in_with_code(session, town["resident"], code, FIRST, RULES)
        volunteer = await meetings.check_in_with_location(
            session, town["volunteer"], *VENUE, FIRST + timedelta(minutes=3), RULES
        )
    assert (resident.points, resident.minutes) == (3, 0), "residents owe no service hours"
    assert (again.already, again.points, again.minutes) == (True, 0, 0)
    assert (volunteer.points, volunteer.minutes) == (3, 90)
    assert await balance_and_minutes(town, "resident") == (3, 0)
    assert await balance_and_minutes(town, "volunteer") == (3, 90)


async def test_attendance_of_another_occurrence_earns_again(town: Town) -> None:
    _, first = await call_meeting(town, rrule=None)
    _, second = await call_meeting(
        town, title="楼栋会", rrule=None, first_start=FIRST + timedelta(days=1)
    )
    for meeting in (first[0], second[0]):
        code = await code_of(town, meeting.id)
        async with town.db.transaction() as session:
            result = await meetings.check_in_with_code(
                session, town["resident"], code, meeting.starts_at, RULES
            )
        assert result.points == 3
    assert await balance_and_minutes(town, "resident") == (6, 0)


async def test_a_switched_off_rule_awards_nothing(town: Town) -> None:
    _, planned = await call_meeting(town)
    code = await code_of(town, planned[0].id)
    async with town.db.transaction() as session:
        await points.set_rule(session, Actor.cli(), code="meeting_attended", now=NOW, active=False)
        result = await meetings.check_in_with_code(session, town["resident"], code, FIRST, RULES)
    assert (result.already, result.points) == (False, 0)


async def add_followup(town: Town, meeting_id: int, text: str = "修复3号楼路灯") -> int:
    async with town.db.transaction() as session:
        item = await meetings.add_followup(
            session, town["grid_leader"], meeting_id, text, None, None, FIRST, RULES
        )
    return item.id


async def test_a_follow_up_becomes_one_tracked_issue_whose_state_shows_on_it(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    followup_id = await add_followup(town, meeting_id)
    async with town.db.transaction() as session:
        item, issue, created = await meetings.track_followup(
            session, town["grid_leader"], followup_id, FIRST, ISSUES
        )
    async with town.db.transaction() as session:
        _, again, created_again = await meetings.track_followup(
            session, town["coordinator"], followup_id, FIRST, ISSUES
        )
        count = (await session.execute(select(func.count()).select_from(Issue))).scalar_one()
    assert created
    assert not created_again
    assert again.number == issue.number
    assert count == 1, "a second press makes no second issue"
    assert (issue.source, issue.source_id) == (IssueSource.meeting, followup_id)
    assert issue.grid is not None
    assert issue.grid.code == "G1"
    assert issue.description == "新德第一网格月月谈: 修复3号楼路灯"
    assert (item.issue_number, item.issue_status) == (issue.number, IssueStatus.new)

    async with town.db.transaction() as session:
        await issues.accept(session, Actor.cli(), issue.id, FIRST, ISSUES)
        await issues.resolve(session, Actor.cli(), issue.id, "路灯已修好", FIRST, ISSUES)
    async with town.db.transaction() as session:
        _, items = await meetings.followups(session, town["grid_leader"], meeting_id)
    assert [(i.issue_number, i.issue_status) for i in items] == [
        (issue.number, IssueStatus.resolved)
    ]


async def test_only_organisers_track_open_follow_ups(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    followup_id = await add_followup(town, meeting_id)
    for stranger in ("volunteer", "grid_worker", "far_coordinator"):
        with pytest.raises(PermissionDenied):
            async with town.db.transaction() as session:
                await meetings.track_followup(session, town[stranger], followup_id, FIRST, ISSUES)
    async with town.db.transaction() as session:
        await meetings.close_followup(
            session, town["grid_leader"], followup_id, FollowUpStatus.done, FIRST
        )
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.track_followup(session, town["grid_leader"], followup_id, FIRST, ISSUES)
    assert refused.value.key == "meetings.followup_not_open"
    async with town.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Issue))).scalar_one() == 0
