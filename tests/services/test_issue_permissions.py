"""Who may do what to an issue of grid G1 (reported by a resident of building B1): every action
tried by every role. Each attempt runs in a savepoint that is rolled back, so they do not
influence each other; a refusal is a PermissionDenied, anything else is named."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import Database
from models.issues import IssuePriority, Rating
from services import issues
from services.access import Actor
from services.errors import PermissionDenied, ServiceError
from tests.issues_world import MONDAY_10AM, POLICY, World, build_world

NOW = MONDAY_10AM
ROLES = (
    "resident",
    "neighbour",
    "far_resident",
    "volunteer",
    "worker",
    "leader",
    "other_worker",
    "coordinator",
    "other_coordinator",
    "street",
    "department",
    "admin",
)
GRID_AND_ABOVE = {"worker", "leader", "coordinator", "street", "admin"}
ASSIGNERS = {"leader", "coordinator", "street", "admin"}
WHISTLERS = {"coordinator", "street", "admin"}

Attempt = Callable[[AsyncSession, World, Actor, int], Awaitable[object]]


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await build_world(demo_db)


async def outcomes(world: World, issue_id: int, attempt: Attempt) -> dict[str, str]:
    found: dict[str, str] = {}
    async with world.db.transaction() as session:
        for name in ROLES:
            savepoint = await session.begin_nested()
            try:
                await attempt(session, world, world[name], issue_id)
                found[name] = "ok"
            except PermissionDenied:
                found[name] = "denied"
            except ServiceError as error:
                found[name] = error.key
            await savepoint.rollback()
    return found


def expect(allowed: set[str], **others: str) -> dict[str, str]:
    return {name: others.get(name, "ok" if name in allowed else "denied") for name in ROLES}


async def new_issue(world: World) -> int:
    return (await world.report()).id


async def assigned_issue(world: World) -> int:
    issue_id = await new_issue(world)
    async with world.db.transaction() as session:
        await issues.assign(session, world["leader"], issue_id, world.id("worker"), NOW, POLICY)
    return issue_id


async def resolved_issue(world: World) -> int:
    issue_id = await assigned_issue(world)
    async with world.db.transaction() as session:
        await issues.resolve(session, world["worker"], issue_id, "已处理", NOW, POLICY)
    return issue_id


async def test_who_sees_an_issue(world: World) -> None:
    async def view(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.get_card(session, actor, issue_id)

    assert await outcomes(world, await new_issue(world), view) == expect(
        GRID_AND_ABOVE | {"resident"}
    )


async def test_who_accepts(world: World) -> None:
    async def accept(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.accept(session, actor, issue_id, NOW, POLICY)

    assert await outcomes(world, await new_issue(world), accept) == expect(GRID_AND_ABOVE)


async def test_who_takes_an_issue_for_themselves(world: World) -> None:
    async def take(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        assert actor.member_id is not None
        return await issues.assign(session, actor, issue_id, actor.member_id, NOW, POLICY)

    assert await outcomes(world, await new_issue(world), take) == expect(GRID_AND_ABOVE)


async def test_who_assigns_somebody_else(world: World) -> None:
    async def assign(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.assign(session, actor, issue_id, w.id("worker2"), NOW, POLICY)

    assert await outcomes(world, await new_issue(world), assign) == expect(ASSIGNERS)


async def test_nobody_assigns_a_resident(world: World) -> None:
    async def assign(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.assign(session, actor, issue_id, w.id("neighbour"), NOW, POLICY)

    assert await outcomes(world, await new_issue(world), assign) == expect(set())


async def test_only_the_assignee_starts(world: World) -> None:
    async def start(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.start(session, actor, issue_id, NOW)

    assert await outcomes(world, await assigned_issue(world), start) == expect({"worker"})


async def test_who_resolves(world: World) -> None:
    async def resolve(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.resolve(session, actor, issue_id, "好了", NOW, POLICY)

    assert await outcomes(world, await assigned_issue(world), resolve) == expect(
        {"worker"} | ASSIGNERS
    )


async def test_who_rejects(world: World) -> None:
    async def reject(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.reject(session, actor, issue_id, "不属实", NOW)

    assert await outcomes(world, await new_issue(world), reject) == expect(GRID_AND_ABOVE)


async def test_who_marks_a_duplicate(world: World) -> None:
    original = await world.report(description="第一次")

    async def duplicate(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.mark_duplicate(session, actor, issue_id, original.number, NOW)

    assert await outcomes(world, await new_issue(world), duplicate) == expect(GRID_AND_ABOVE)


async def test_who_blows_the_whistle(world: World) -> None:
    async def whistle(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.whistle(session, actor, issue_id, w.id("department"), NOW, POLICY)

    assert await outcomes(world, await new_issue(world), whistle) == expect(WHISTLERS)


async def test_only_the_whistled_department_reports_in(world: World) -> None:
    issue_id = await new_issue(world)
    async with world.db.transaction() as session:
        await issues.whistle(
            session, world["coordinator"], issue_id, world.id("department"), NOW, POLICY
        )

    async def report_in(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.report_in(session, actor, issue_id, NOW, POLICY)

    assert await outcomes(world, issue_id, report_in) == expect({"department"})


async def test_who_changes_the_priority(world: World) -> None:
    async def urgent(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.set_priority(
            session, actor, issue_id, IssuePriority.urgent, NOW, POLICY
        )

    assert await outcomes(world, await new_issue(world), urgent) == expect(GRID_AND_ABOVE)


async def test_only_the_reporter_rates(world: World) -> None:
    async def rate(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.rate(session, actor, issue_id, 0, Rating.satisfied, NOW, POLICY)

    assert await outcomes(world, await resolved_issue(world), rate) == expect({"resident"})


async def test_who_may_follow(world: World) -> None:
    async def follow(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.follow(session, actor, issue_id, NOW)

    assert await outcomes(world, await new_issue(world), follow) == expect(
        set(ROLES) - {"far_resident", "other_worker", "other_coordinator"}
    )


async def test_who_sees_a_queue_and_manages_categories(world: World) -> None:
    async def queue(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.queue(session, actor, "new", NOW)

    async def categories(session: AsyncSession, w: World, actor: Actor, issue_id: int) -> object:
        return await issues.category_overview(session, actor, POLICY)

    issue_id = await new_issue(world)
    staff = GRID_AND_ABOVE | {"other_worker", "other_coordinator", "department"}
    assert await outcomes(world, issue_id, queue) == expect(staff)
    assert await outcomes(world, issue_id, categories) == expect(
        {"coordinator", "other_coordinator", "street", "admin"}
    )


async def test_a_refusal_is_logged_with_the_issue_and_changes_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    issue_id = await new_issue(world)
    caplog.set_level(logging.WARNING, logger="services.access")
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await issues.accept(session, world["other_worker"], issue_id, NOW, POLICY)
    assert "refused accept issue C1-2026-0001 on unit G1" in caplog.text
    assert (await world.issue(issue_id)).status == "new"
    async with world.db.transaction() as session:
        lines, counts = await issues.queue(
            session, world["other_worker"], "new", NOW + timedelta(minutes=1)
        )
    assert lines == [], "another grid's queue does not list it"
    assert counts.new == 0
