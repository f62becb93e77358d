"""The visit log, its effect on due dates, who may log what, the nudge list and coverage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, func, select

from bot.db import Database
from bot.i18n import translator
from models.households import Household, HubLink
from models.members import Role
from models.visits import Visit, VisitOutcome
from services import households as hh
from services import visits
from services.access import Actor
from services.errors import InvalidInput, NotFound, PermissionDenied
from tests.households_world import NOW, POLICY, World


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await World(demo_db).load()


async def assign(world: World, household_id: int, member: Actor) -> None:
    async with world.db.transaction() as session:
        await session.execute(
            update(Household)
            .where(col(Household.id) == household_id)
            .values(assignee_id=member.member_id)
        )


async def count_visits(world: World) -> int:
    async with world.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Visit))).scalar_one())


async def test_meeting_the_household_starts_its_cadence_again(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", tags=["elderly_alone"])
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    later = NOW + timedelta(days=20)
    async with world.db.transaction() as session:
        result = await visits.log_visit(session, volunteer, household.id, "met", later)
    assert not result.repeated
    assert result.visit.member_name == "李明"
    assert result.household.last_visited_at == later
    assert result.household.due_at == later + timedelta(days=14)


async def test_a_closed_door_keeps_the_household_due(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", tags=["special_needs"])
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    async with world.db.transaction() as session:
        result = await visits.log_visit(
            session, volunteer, household.id, VisitOutcome.not_home, NOW + timedelta(days=8)
        )
    assert result.household.last_visited_at is None
    assert result.household.due_at == household.due_at


async def test_a_second_tap_within_minutes_is_one_visit(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101")
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    async with world.db.transaction() as session:
        first = await visits.log_visit(session, volunteer, household.id, "met", NOW)
    async with world.db.transaction() as session:
        again = await visits.log_visit(
            session, volunteer, household.id, "met", NOW + timedelta(minutes=3)
        )
        together = await visits.log_visit(
            session, worker, household.id, "met", NOW + timedelta(minutes=5)
        )
    assert again.repeated
    assert not again.changed
    assert together.visit.id == first.visit.id, "two people at the same door: one visit"
    assert await count_visits(world) == 1
    async with world.db.transaction() as session:
        corrected = await visits.log_visit(
            session, volunteer, household.id, "not_home", NOW + timedelta(minutes=10)
        )
    assert corrected.changed
    assert corrected.household.last_visited_at is None, "the visit now says nobody was met"
    async with world.db.transaction() as session:
        tomorrow = await visits.log_visit(
            session, volunteer, household.id, "met", NOW + timedelta(days=1)
        )
    assert not tomorrow.repeated
    assert await count_visits(world) == 2


async def test_moved_away_archives_and_a_correction_brings_it_back(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101")
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    async with world.db.transaction() as session:
        moved = await visits.log_visit(session, volunteer, household.id, "moved", NOW)
    assert moved.household.archived
    with pytest.raises(InvalidInput) as refusal:
        async with world.db.transaction() as session:
            await visits.log_visit(session, volunteer, household.id, "met", NOW + timedelta(days=1))
    assert refusal.value.key == "visits.household_archived"
    async with world.db.transaction() as session:
        undone = await visits.log_visit(
            session, volunteer, household.id, "met", NOW + timedelta(minutes=2)
        )
    assert not undone.household.archived, "a wrong tap corrected within minutes"


@pytest.mark.parametrize(
    ("role", "unit"),
    [
        (Role.volunteer, "G3"),
        (Role.grid_worker, "G2"),
        (Role.resident, "B1"),
        (Role.department, "S1"),
    ],
)
async def test_logging_a_visit_outside_ones_grid_is_refused(
    world: World, role: Role, unit: str
) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", phone="13900001111")
    outsider = await world.person(9, "路人", (role, unit))
    with pytest.raises(PermissionDenied) as refusal:
        async with world.db.transaction() as session:
            await visits.log_visit(session, outsider, household.id, "met", NOW)
    assert refusal.value.params == {}, "the refusal says nothing about the household"
    assert await count_visits(world) == 0
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await visits.log_visit(session, outsider, 99_999, "met", NOW)


async def test_notes_needs_and_photo_by_the_visitor_or_staff_only(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101")
    visitor = await world.person(2, "李明", (Role.volunteer, "G1"))
    other = await world.person(4, "王五", (Role.volunteer, "G1"))
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    async with world.db.transaction() as session:
        logged = await visits.log_visit(session, visitor, household.id, "met", NOW)
        visit_id = logged.visit.id
        await visits.set_note(session, visitor, visit_id, "  身体还好  ", NOW)
        await visits.set_photo(session, visitor, visit_id, "AgACAgUAAx0", NOW)
        view = await visits.set_needs(session, worker, visit_id, "楼道灯坏了，需要报修", NOW)
    assert (view.note, view.photo_file_id, view.needs) == (
        "身体还好",
        "AgACAgUAAx0",
        "楼道灯坏了，需要报修",
    )
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await visits.set_note(session, other, visit_id, "改掉", NOW)
    with pytest.raises(InvalidInput):
        async with world.db.transaction() as session:
            await visits.set_needs(session, visitor, visit_id, "x" * 1001, NOW)


async def test_needs_found_are_ready_to_hand_on_with_the_household(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", contact="王秀英")
    visitor = await world.person(2, "李明", (Role.volunteer, "G1"))
    outsider = await world.person(9, "赵六", (Role.volunteer, "G3"))
    async with world.db.transaction() as session:
        logged = await visits.log_visit(session, visitor, household.id, "met", NOW)
        with pytest.raises(NotFound):
            await visits.visit_needs(session, visitor, logged.visit.id)
        await visits.set_needs(session, visitor, logged.visit.id, "需要上门送药", NOW)
        needs = await visits.visit_needs(session, visitor, logged.visit.id)
    assert needs.needs == "需要上门送药"
    assert needs.household.place("zh_CN") == "新德1号楼 和平路88弄3号 101"
    assert needs.household.building.code == "B1"
    assert needs.visitor_id == visitor.member_id
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await visits.visit_needs(session, outsider, logged.visit.id)


async def test_the_nudge_lists_due_households_most_overdue_first(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    far = await world.person(9, "赵六", (Role.volunteer, "G3"))
    special = await world.household("B1", "和平路88弄3号", "101", tags=["special_needs"])
    elderly = await world.household("B1", "和平路88弄3号", "102", tags=["elderly_alone"])
    later = await world.household("B2", "和平路88弄5号", "201")
    far_one = await world.household("B4", "光明路1号", "1", tags=["special_needs"])
    for household in (special, elderly, later):
        await assign(world, household.id, volunteer)
    await assign(world, far_one.id, far)
    async with world.db.transaction() as session:
        assert await visits.daily_nudges(session, NOW + timedelta(days=6), POLICY) == []
        nudges = await visits.daily_nudges(session, NOW + timedelta(days=14), POLICY)
    mine, theirs = nudges
    assert mine.member_id == volunteer.member_id
    assert [(i.household_id, i.overdue_days) for i in mine.items] == [
        (special.id, 7),
        (elderly.id, 0),
    ]
    assert (mine.due, mine.overdue) == (2, 1)
    assert [i.household_id for i in theirs.items] == [far_one.id]


async def test_a_household_the_assignee_may_no_longer_see_is_left_out(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B4", "光明路1号", "1", tags=["special_needs"])
    await assign(world, household.id, volunteer)
    async with world.db.transaction() as session:
        assert await visits.daily_nudges(session, NOW + timedelta(days=30), POLICY) == []


async def test_hub_members_see_their_groups_overdue_count(world: World) -> None:
    hub = await world.person(10, "党员中心户", (Role.volunteer, "G1"))
    member = await world.person(11, "党员甲", (Role.volunteer, "G1"))
    assert hub.member_id
    assert member.member_id
    for door in ("101", "102", "103"):
        household = await world.household("B1", "和平路88弄3号", door, tags=["special_needs"])
        await assign(world, household.id, member)
    async with world.db.transaction() as session:
        session.add(HubLink(member_id=member.member_id, hub_id=hub.member_id, created_at=NOW))
    async with world.db.transaction() as session:
        nudges = {
            n.member_id: n
            for n in await visits.daily_nudges(session, NOW + timedelta(days=9), POLICY)
        }
        assert await visits.group_overdue(
            session, hub.member_id, NOW + timedelta(days=9), POLICY
        ) == (1, 3)
        assert await visits.group_overdue(session, member.member_id, NOW, POLICY) is None
    assert nudges[hub.member_id].items == [], "the hub sees a count, not the households"
    assert (nudges[hub.member_id].group_members, nudges[hub.member_id].group_overdue) == (1, 3)
    text = visits.nudge_message(
        translator("zh_CN"), nudges[hub.member_id], {}, POLICY, NOW.date()
    ).text
    assert text == "🚪 今天的走访\n👥 您联系的 1 名党员名下共有 3 户逾期未走访。"


async def test_coverage_of_a_community_by_grid_tag_and_member(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    worker = await world.person(3, "张伟", (Role.grid_worker, "G2"))
    coordinator = await world.person(4, "陈静", (Role.coordinator, "C1"))
    visited = await world.household("B1", "和平路88弄3号", "101", tags=["special_needs"])
    late = await world.household("B1", "和平路88弄3号", "102", tags=["special_needs"])
    never = await world.household("B3", "和平路90弄1号", "1")
    await world.household("B4", "光明路1号", "1")  # another community
    for household in (visited, late):
        await assign(world, household.id, volunteer)
    day = NOW + timedelta(days=10)
    async with world.db.transaction() as session:
        met = await visits.log_visit(session, volunteer, visited.id, "met", day - timedelta(days=1))
        await visits.log_visit(session, worker, never.id, "not_home", day - timedelta(days=1))
        await visits.set_needs(session, volunteer, met.visit.id, "灯坏了", day)
        report = await visits.coverage(session, coordinator, world.units["C1"].id, day, POLICY)
    assert report.counts == visits.CoverageCounts(
        total=3, covered=1, overdue=1, never=2, unassigned=1
    )
    assert [(u.code, c.total, c.covered) for u, c in report.children] == [
        ("G1", 2, 1),
        ("G2", 1, 0),
    ]
    assert [(t.code, n) for t, n in report.overdue_by_tag] == [("special_needs", 1)]
    assert [(m.name, m.counts.total, m.counts.overdue) for m in report.members] == [("李明", 2, 1)]
    assert (report.visits_week, report.needs_week) == (2, 1)
    text = visits.coverage_text(translator("zh_CN"), report)
    assert "住户 3 户，周期内已走访 1 户（33.3%）" in text
    assert "13900" not in text
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await visits.coverage(session, worker, world.units["C1"].id, day, POLICY)
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await visits.coverage(session, volunteer, world.units["G1"].id, day, POLICY)
    async with world.db.transaction() as session:
        grid = await visits.coverage(session, worker, world.units["G2"].id, day, POLICY)
    assert grid.counts.total == 1
    assert [u.code for u, _ in grid.children] == ["B3"]


async def test_tagged_households_of_a_changed_default_get_new_due_dates(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", tags=["rented"])
    async with world.db.transaction() as session:
        changed = await hh.recompute_intervals(
            session, hh.VisitPolicy(default_days=30), NOW + timedelta(days=1)
        )
        view = await hh.get_household(session, Actor.cli(), household.id)
    assert changed == 1
    assert view.due_at == NOW + timedelta(days=30)
    assert await world.cadences(household.id) == [(90, NOW), (30, NOW + timedelta(days=1))]
