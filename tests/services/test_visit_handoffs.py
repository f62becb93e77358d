"""Visits hand on what they found (an issue report, a wish for the household) and earn the
visitor points and service hours by the rule table."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from bot.db import Database
from models.issues import Issue, IssueSource, IssueStatus
from models.members import Role
from models.points import HoursEntry, LedgerEntry
from models.visits import VisitOutcome
from models.wishes import Wish, WishCategory, WishStatus
from services import issues, points, visits, wishes
from services.access import Actor
from services.errors import NotFound, PermissionDenied
from services.households import VisitPolicy
from tests.households_world import NOW, World

POLICY = VisitPolicy(service_minutes=45)
ISSUES = issues.IssuePolicy()
NEEDS = "楼道灯坏了；老人需要每周送药"


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await World(demo_db).load()


async def visit_with_needs(world: World, visitor: Actor, needs: str | None = NEEDS) -> int:
    household = await world.household(
        "B1", "和平路88弄3号", "302", tags=["elderly_alone"], contact="王秀英", phone="13900001111"
    )
    async with world.db.transaction() as session:
        result = await visits.log_visit(session, visitor, household.id, "met", NOW, POLICY)
        if needs:
            await visits.set_needs(session, visitor, result.visit.id, needs, NOW)
    return result.visit.id


async def balance_and_minutes(world: World, member: Actor) -> tuple[int, int]:
    assert member.member_id is not None
    async with world.db.transaction() as session:
        return (
            await points.balance(session, member.member_id),
            await points.year_minutes(session, member.member_id, NOW),
        )


async def test_needs_become_one_issue_on_the_households_building(world: World) -> None:
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    visit_id = await visit_with_needs(world, worker)
    async with world.db.transaction() as session:
        issue, created = await visits.needs_to_issue(session, worker, visit_id, NOW, ISSUES)
    async with world.db.transaction() as session:
        again, created_again = await visits.needs_to_issue(
            session, worker, visit_id, NOW + timedelta(minutes=1), ISSUES
        )
        count = (await session.execute(select(func.count()).select_from(Issue))).scalar_one()
    assert created
    assert not created_again
    assert again.number == issue.number, "a second tap hands on nothing new"
    assert count == 1
    assert (issue.source, issue.source_id) == (IssueSource.visit, visit_id)
    assert issue.description == NEEDS
    assert issue.building is not None
    assert issue.building.code == "B1"
    assert issue.grid is not None
    assert issue.grid.code == "G1"
    assert issue.category.code == "other"
    assert issue.status == IssueStatus.new
    assert issue.address is None, "the door and the phone stay in the household file"
    assert issue.reporter is not None
    assert issue.reporter.id == worker.member_id


async def test_the_visitor_puts_the_issue_in_the_right_category_while_it_is_new(
    world: World,
) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    other = await world.person(4, "赵强", (Role.volunteer, "G1"))
    staff = await world.person(5, "网格员", (Role.grid_worker, "G1"))
    visit_id = await visit_with_needs(world, volunteer)
    async with world.db.transaction() as session:
        issue, _ = await visits.needs_to_issue(session, volunteer, visit_id, NOW, ISSUES)
        changed = await issues.change_category(session, volunteer, issue.id, "safety_hazard", NOW)
    assert changed.category.code == "safety_hazard"
    async with world.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await issues.change_category(session, other, issue.id, "parking", NOW)
    async with world.db.transaction() as session:
        await issues.accept(session, Actor.cli(), issue.id, NOW, ISSUES)
    async with world.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await issues.change_category(session, volunteer, issue.id, "parking", NOW)
        moved = await issues.change_category(session, staff, issue.id, "parking", NOW)
    assert moved.category.code == "parking"


async def test_needs_become_one_wish_for_the_household(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    visit_id = await visit_with_needs(world, volunteer)
    async with world.db.transaction() as session:
        wish, created = await visits.needs_to_wish(session, volunteer, visit_id, NOW, POLICY)
        again, created_again = await visits.needs_to_wish(session, volunteer, visit_id, NOW, POLICY)
        row = await session.get(Wish, wish.id)
        count = (await session.execute(select(func.count()).select_from(Wish))).scalar_one()
    assert created
    assert not created_again
    assert again.id == wish.id
    assert count == 1
    assert wish.status == WishStatus.submitted
    assert (wish.source, wish.source_id) == ("visit", visit_id)
    assert wish.household_id is not None
    assert wish.unit.code == "B1"
    assert wish.wisher_id is None
    assert wish.created_by == volunteer.member_id
    assert row is not None
    assert (row.contact_name, row.contact_phone) == ("王秀英", "13900001111")
    assert row.address == "和平路88弄3号 302"
    async with world.db.transaction() as session:
        changed = await wishes.set_category(session, volunteer, wish.id, "elderly", NOW)
    assert changed.category == WishCategory.elderly


async def test_only_the_visitor_or_staff_over_the_household_hand_on(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    colleague = await world.person(4, "赵强", (Role.volunteer, "G1"))
    elsewhere = await world.person(6, "钱军", (Role.grid_worker, "G2"))
    leader = await world.person(7, "孙丽", (Role.grid_leader, "G1"))
    visit_id = await visit_with_needs(world, volunteer)
    for stranger in (colleague, elsewhere):
        async with world.db.transaction() as session:
            with pytest.raises(PermissionDenied):
                await visits.needs_to_issue(session, stranger, visit_id, NOW, ISSUES)
        async with world.db.transaction() as session:
            with pytest.raises(PermissionDenied):
                await visits.needs_to_wish(session, stranger, visit_id, NOW, POLICY)
    async with world.db.transaction() as session:
        _, created = await visits.needs_to_wish(session, leader, visit_id, NOW, POLICY)
    assert created
    async with world.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await visits.needs_to_issue(session, volunteer, 999_999, NOW, ISSUES)


async def test_a_visit_without_needs_hands_on_nothing(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    visit_id = await visit_with_needs(world, volunteer, needs=None)
    async with world.db.transaction() as session:
        with pytest.raises(NotFound):
            await visits.needs_to_issue(session, volunteer, visit_id, NOW, ISSUES)
        with pytest.raises(NotFound):
            await visits.needs_to_wish(session, volunteer, visit_id, NOW, POLICY)


async def test_a_visit_earns_points_and_hours_once(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B1", "和平路88弄3号", "101")
    async with world.db.transaction() as session:
        first = await visits.log_visit(session, volunteer, household.id, "met", NOW, POLICY)
    async with world.db.transaction() as session:
        again = await visits.log_visit(
            session, volunteer, household.id, "met", NOW + timedelta(minutes=2), POLICY
        )
    assert (first.points, first.minutes) == (2, 45)
    assert (again.points, again.minutes) == (0, 0), "the same visit earns once"
    assert await balance_and_minutes(world, volunteer) == (2, 45)


async def test_a_closed_door_earns_nothing_and_a_correction_takes_points_back(
    world: World,
) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B1", "和平路88弄3号", "101")
    async with world.db.transaction() as session:
        closed = await visits.log_visit(
            session, volunteer, household.id, VisitOutcome.not_home, NOW, POLICY
        )
    assert (closed.points, closed.minutes) == (0, 0)
    assert await balance_and_minutes(world, volunteer) == (0, 0)

    later = NOW + timedelta(minutes=1)
    async with world.db.transaction() as session:
        met = await visits.log_visit(session, volunteer, household.id, "met", later, POLICY)
    assert met.changed
    assert (met.points, met.minutes) == (2, 45)
    async with world.db.transaction() as session:
        wrong = await visits.log_visit(session, volunteer, household.id, "not_home", later, POLICY)
    assert (wrong.points, wrong.minutes) == (-2, -45)
    assert await balance_and_minutes(world, volunteer) == (0, 0)
    async with world.db.transaction() as session:
        right = await visits.log_visit(session, volunteer, household.id, "refused", later, POLICY)
        awards = (
            await session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(col(LedgerEntry.source) == "visit")
                .where(col(LedgerEntry.reverses_id).is_(None))
            )
        ).scalar_one()
        hours = (await session.execute(select(func.count()).select_from(HoursEntry))).scalar_one()
    assert (right.points, right.minutes) == (2, 45)
    assert await balance_and_minutes(world, volunteer) == (2, 45)
    assert awards == 2, "one award, its reversal's opposite, one award again"
    assert hours == 3


async def test_a_switched_off_rule_awards_no_points_but_hours_still_count(world: World) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B1", "和平路88弄3号", "101")
    async with world.db.transaction() as session:
        await points.set_rule(session, Actor.cli(), code="visit_done", now=NOW, active=False)
        result = await visits.log_visit(session, volunteer, household.id, "met", NOW, POLICY)
    assert (result.points, result.minutes) == (0, 45)


async def test_only_people_who_may_open_the_file_are_led_from_the_issue_to_it(
    world: World,
) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    elsewhere = await world.person(6, "钱军", (Role.grid_worker, "G2"))
    department = await world.person(8, "城管", (Role.department, "S1"))
    coordinator = await world.person(9, "陈静", (Role.coordinator, "C1"))
    visit_id = await visit_with_needs(world, volunteer)
    async with world.db.transaction() as session:
        found = {
            name: await visits.household_of_visit(session, actor, visit_id)
            for name, actor in (
                ("volunteer", volunteer),
                ("elsewhere", elsewhere),
                ("department", department),
                ("coordinator", coordinator),
            )
        }
        unknown = await visits.household_of_visit(session, coordinator, 999_999)
    household_id = found["volunteer"]
    assert household_id is not None
    assert found == {
        "volunteer": household_id,
        "elsewhere": None,
        "department": None,
        "coordinator": household_id,
    }
    assert unknown is None


async def test_two_taps_at_once_hand_on_one_issue(world: World) -> None:
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    visit_id = await visit_with_needs(world, worker)

    async def tap() -> tuple[str, bool]:
        async with world.db.transaction() as session:
            view, created = await visits.needs_to_issue(session, worker, visit_id, NOW, ISSUES)
        return view.number, created

    results = await asyncio.gather(tap(), tap())
    async with world.db.transaction() as session:
        count = (await session.execute(select(func.count()).select_from(Issue))).scalar_one()
    assert count == 1
    assert results[0][0] == results[1][0]
    assert sorted(created for _, created in results) == [False, True]
