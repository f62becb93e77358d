"""Deadlines with a frozen clock: reminders before them, one tier up after them, the department
called in and overdue at the top, unrated resolutions closed; and nothing acted on twice, also
with two job runs at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.db import Database
from bot.settings import Settings
from jobs.issues import issue_deadlines
from jobs.scheduler import build_scheduler
from models.issues import EventKind, IssueEvent, IssueStatus, Tier, TimerKind, TimerStatus
from models.outbox import OutboxMessage
from services import issues
from tests.issues_world import MONDAY_10AM, POLICY, World, build_world

NOW = MONDAY_10AM


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await build_world(demo_db)


async def tick(world: World, minutes: float = 0, **kwargs: int) -> list[issues.TimerOutcome]:
    return await issue_deadlines(world.db, POLICY, NOW + timedelta(minutes=minutes, **kwargs))


def done(outcomes: list[issues.TimerOutcome]) -> list[str]:
    return [o.kind.value for o in outcomes if o.status == TimerStatus.done]


async def test_an_unaccepted_report_climbs_every_tier_until_the_street_is_told(
    world: World,
) -> None:
    view = await world.report()
    assert done(await tick(world, 7)) == []

    assert done(await tick(world, 8)) == ["response_reminder"]
    assert "距受理时限还有约 2 分钟" in (await world.told("worker"))[-1]

    assert done(await tick(world, 10)) == ["response_breach"]
    issue = await world.issue(view.id)
    assert issue.tier == Tier.community
    assert "超过受理时限，已提级至社区处理" in (await world.told("coordinator"))[-1]
    assert await world.told("street") == []

    assert done(await tick(world, 18)) == ["response_reminder"]
    assert "距受理时限" in (await world.told("coordinator"))[-1]
    assert done(await tick(world, 20)) == ["response_breach"]
    assert (await world.issue(view.id)).tier == Tier.street
    assert "已提级至街道处理" in (await world.told("street"))[-1]

    outcomes = await tick(world, 30)
    assert [(o.kind.value, o.status.value) for o in outcomes] == [
        ("response_reminder", "obsolete"),
        ("response_breach", "done"),
    ], "a reminder that comes due with its deadline is not sent"
    issue = await world.issue(view.id)
    assert issue.tier == Tier.department
    assert issue.status == IssueStatus.new
    called = (await world.told("department"))[-1]
    assert "已提级至部门处理" in called
    assert issue.due_at == NOW + timedelta(minutes=60), "30 working minutes to report in"

    assert done(await tick(world, 54)) == ["report_in_reminder"]
    assert done(await tick(world, 60)) == ["report_in_breach"]
    assert "已超过报到时限（当前在部门级），请督办" in (await world.told("street"))[-1]

    assert await tick(world, 600) == [], "nothing left to do"
    kinds = Counter(e.kind for e in await world.events(view.id))
    assert kinds[EventKind.escalated] == 3
    assert kinds[EventKind.overdue] == 1
    assert kinds[EventKind.reminded] == 3


async def test_the_department_reports_in_after_the_climb(world: World) -> None:
    view = await world.report(category="safety_hazard")
    for minutes in (10, 20, 30):
        await tick(world, minutes)
    assert (await world.issue(view.id)).tier == Tier.department
    async with world.db.transaction() as session:
        reported = await issues.report_in(
            session, world["department"], view.id, NOW + timedelta(minutes=31), POLICY
        )
    assert reported.status == IssueStatus.assigned
    assert reported.accepted_at == NOW + timedelta(minutes=31)
    assert done(await tick(world, 60)) == [], "the report-in deadline no longer applies"


async def test_without_a_department_the_issue_stays_with_the_street(demo_db: Database) -> None:
    world = await build_world(demo_db, ("resident", "worker", "coordinator", "street"))
    view = await world.report()
    for minutes in (10, 20, 30):
        await tick(world, minutes)
    issue = await world.issue(view.id)
    assert issue.tier == Tier.street
    assert "已超过受理时限（当前在街道级），请督办" in (await world.told("street"))[-1]
    assert await tick(world, 600) == []


async def test_an_accepted_issue_is_not_escalated_for_its_old_deadline(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.accept(session, world["worker"], view.id, NOW + timedelta(minutes=5), POLICY)
    outcomes = await tick(world, 10)
    assert [(o.kind, o.status) for o in outcomes] == [
        (TimerKind.response_reminder, TimerStatus.obsolete),
        (TimerKind.response_breach, TimerStatus.obsolete),
    ]
    assert (await world.issue(view.id)).tier == Tier.grid
    assert await world.told("coordinator") == []


async def test_the_handler_is_reminded_then_the_community_takes_over(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.assign(session, world["leader"], view.id, world.id("worker"), NOW, POLICY)
    hours_72 = 72 * 60
    assert done(await tick(world, hours_72 * 0.8)) == ["handling_reminder"]
    assert "距办结时限" in (await world.told("worker"))[-1]
    assert len(await world.told("leader")) == 1, "the reminder goes to the handler only"
    assert done(await tick(world, hours_72)) == ["handling_breach"]
    issue = await world.issue(view.id)
    assert issue.tier == Tier.community
    assert issue.assignee_id == world.id("worker"), "the handler keeps it"
    assert "超过办结时限，已提级至社区处理" in (await world.told("coordinator"))[-1]


async def test_an_unrated_resolution_closes_as_no_answer(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.assign(session, world["worker"], view.id, world.id("worker"), NOW, POLICY)
        await issues.resolve(session, world["worker"], view.id, "已处理", NOW, POLICY)
    assert done(await tick(world, days=6)) == []
    assert done(await tick(world, days=7)) == ["rating_timeout"]
    issue = await world.issue(view.id)
    assert issue.status == IssueStatus.closed
    assert issue.close_reason == "no_answer"
    assert (await world.told("resident"))[-1] == "C1-2026-0001 已过评价期限，已自动结案。"


async def escalation_counts(world: World) -> tuple[Counter[int], Counter[str]]:
    """Escalation events per issue, and notifications to the coordinator per issue."""
    async with world.db.transaction() as session:
        events = await session.execute(
            select(col(IssueEvent.issue_id)).where(
                col(IssueEvent.kind) == EventKind.escalated.value
            )
        )
        escalated = Counter(int(i) for i in events.scalars())
        sources = await session.execute(
            select(col(OutboxMessage.source)).where(
                col(OutboxMessage.member_id) == world.id("coordinator")
            )
        )
        told = Counter(str(s) for s in sources.scalars())
    return escalated, told


async def test_two_job_runs_at_once_escalate_each_breach_once(
    world: World, database_url: str
) -> None:
    reports = [await world.report(description=f"第 {i} 辆车") for i in range(24)]
    other = Database(database_url)
    try:
        first, second = await asyncio.gather(
            issue_deadlines(world.db, POLICY, NOW + timedelta(minutes=10), batch=4),
            issue_deadlines(other, POLICY, NOW + timedelta(minutes=10), batch=4),
        )
    finally:
        await other.dispose()
    acted = Counter((o.issue_id, o.kind) for o in first + second)
    assert set(acted.values()) == {1}, "no timer was acted on twice"
    assert len(acted) == 2 * len(reports)
    escalated, told = await escalation_counts(world)
    assert escalated == Counter({r.id: 1 for r in reports})
    assert set(told.values()) == {1}, "the coordinator is told once per issue"
    assert len(told) == len(reports)


@pytest.mark.postgres
async def test_a_second_process_skips_what_the_first_has_claimed(
    world: World, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED: PostgreSQL only (SQLite runs one writer at a time)")
    reports = [await world.report(description=f"第 {i} 辆车") for i in range(12)]
    await tick(world, 8)
    other = Database(database_url)
    try:
        async with world.db.transaction() as session:
            held = await issues.fire_due_timers(
                session, NOW + timedelta(minutes=10), POLICY, limit=5
            )
            # The first process has acted on five breaches but not committed yet.
            meanwhile = await issue_deadlines(other, POLICY, NOW + timedelta(minutes=10))
        again = await issue_deadlines(other, POLICY, NOW + timedelta(minutes=10))
    finally:
        await other.dispose()
    assert len(held) == 5
    assert len(meanwhile) == 7, "the other process took only the rows nobody held"
    assert {o.issue_id for o in held}.isdisjoint({o.issue_id for o in meanwhile})
    assert again == []
    escalated, _ = await escalation_counts(world)
    assert escalated == Counter({r.id: 1 for r in reports})


async def test_a_failing_deadline_is_tried_again_then_given_up(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = await world.report()
    failures = {"left": 1}
    real_climb = issues._climb

    async def flaky(*args: object, **kwargs: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("the database went away")
        await real_climb(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(issues, "_climb", flaky)
    first = await tick(world, 10)
    assert [(o.kind, o.status) for o in first][-1] == (
        TimerKind.response_breach,
        TimerStatus.pending,
    )
    assert (await world.issue(view.id)).tier == Tier.grid, "nothing half done"
    assert done(await tick(world, 11)) == ["response_breach"], "tried again a minute later"
    assert (await world.issue(view.id)).tier == Tier.community

    failures["left"] = 99
    for minute in range(21, 26):
        outcomes = await tick(world, minute)
    assert [o.status for o in outcomes] == [TimerStatus.failed], "given up after five tries"
    assert await tick(world, 60) == []


async def test_the_scheduler_ticks_issue_deadlines(demo_db: Database) -> None:
    scheduler = build_scheduler(Settings(_env_file=None), demo_db, lambda: NOW)
    job = scheduler.get_job("issues.deadlines")
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=30)
