"""The daily nudge and the weekly coverage summary over four weeks of a frozen clock."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, update
from sqlmodel import col, select

from bot.db import Database
from bot.settings import Settings, SettingsError, load_settings
from jobs.visits import run_visit_jobs
from models.households import Household, HubLink
from models.members import Member, Role
from models.outbox import OutboxMessage, OutboxStatus
from models.visits import VisitRun, VisitRunKind
from services import visits
from services.access import Actor
from tests.households_world import NOW, World

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


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


async def messages(world: World, source: str) -> list[OutboxMessage]:
    async with world.db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.source) == source)
                    .order_by(col(OutboxMessage.id))
                )
            ).scalars()
        )


def payloads(message: OutboxMessage) -> list[str]:
    return [b["payload"] for row in message.payload.get("buttons", []) for b in row]


async def test_four_weeks_of_nudges_and_summaries(world: World, settings: Settings) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    member = await world.person(3, "王五", (Role.volunteer, "G1"))
    hub = await world.person(4, "党员中心户", (Role.volunteer, "G1"))
    coordinator = await world.person(5, "陈静", (Role.coordinator, "C1"))
    special = await world.household("B1", "和平路88弄3号", "101", tags=["special_needs"])
    elderly = await world.household("B1", "和平路88弄3号", "102", tags=["elderly_alone"])
    neglected = await world.household("B2", "和平路88弄5号", "201", tags=["special_needs"])
    await world.household("B2", "和平路88弄5号", "202")  # default interval: not due for 90 days
    for household, who in ((special, volunteer), (elderly, volunteer), (neglected, member)):
        await assign(world, household.id, who)
    assert member.member_id is not None
    assert hub.member_id is not None
    async with world.db.transaction() as session:
        session.add(HubLink(member_id=member.member_id, hub_id=hub.member_id, created_at=NOW))

    first = date(2026, 11, 24)  # the day after the households were filed (Monday 23rd)
    started = await run_visit_jobs(world.db, settings, local(first, 7))
    assert [(d.kind, d.period) for d in started] == [(VisitRunKind.coverage, "2026-W48")], (
        "a process starting on Tuesday catches up on Monday's summary, not on past nudges"
    )
    for offset in range(28):
        day = first + timedelta(days=offset)
        assert await run_visit_jobs(world.db, settings, local(day, 8, 29)) == []
        done = await run_visit_jobs(world.db, settings, local(day, 8, 30))
        assert [d.kind for d in done] == (
            [VisitRunKind.nudge, VisitRunKind.coverage]
            if day.isoweekday() == 1
            else [VisitRunKind.nudge]
        )
        assert await run_visit_jobs(world.db, settings, local(day, 8, 31)) == [], "once a day"
        sent_today = [
            m for m in await messages(world, "visits.nudge") if m.created_at == local(day, 8, 30)
        ]
        if any(f"visit:{special.id}" in payloads(m) for m in sent_today):
            async with world.db.transaction() as session:
                await visits.log_visit(session, volunteer, special.id, "met", local(day, 10))

    nudges = await messages(world, "visits.nudge")
    days: dict[int | None, list[str]] = defaultdict(list)
    for message in nudges:
        days[message.member_id].append(message.created_at.astimezone(SHANGHAI).date().isoformat())
    assert all(m.status == OutboxStatus.pending for m in nudges)

    assert days[volunteer.member_id][:2] == ["2026-11-30", "2026-12-07"], (
        "nothing before the first visit is due; the special-needs household every week"
    )
    assert days[volunteer.member_id][2:] == [
        (date(2026, 12, 8) + timedelta(days=i)).isoformat() for i in range(14)
    ], "the unvisited elderly household every day from its due date"
    assert days[member.member_id] == [
        (date(2026, 11, 30) + timedelta(days=i)).isoformat() for i in range(22)
    ]
    assert days[hub.member_id] == [
        (date(2026, 12, 1) + timedelta(days=i)).isoformat() for i in range(21)
    ], "the hub hears once the group has something overdue"
    assert coordinator.member_id not in days

    by_day = {
        (m.member_id, m.created_at.astimezone(SHANGHAI).date().isoformat()): m for m in nudges
    }
    on_dec_14 = by_day[(volunteer.member_id, "2026-12-14")].payload
    assert on_dec_14["text"].splitlines() == [
        "🚪 今天的走访：2 户待走访，其中 1 户已逾期",
        "1. 新德1号楼 和平路88弄3号 102 · 独居老人 · 逾期 7 天",
        "2. 新德1号楼 和平路88弄3号 101 · 特需对象 · 今天到期",
    ]
    assert [row[0]["payload"] for row in on_dec_14["buttons"]] == [
        f"visit:{elderly.id}",
        f"visit:{special.id}",
    ]
    assert by_day[(hub.member_id, "2026-12-02")].payload == {
        "text": "🚪 今天的走访\n👥 您联系的 1 名党员名下共有 1 户逾期未走访。"
    }, "the hub is told a count, never the households or their contacts"

    summaries = await messages(world, "visits.coverage")
    assert [
        (m.member_id, m.created_at.astimezone(SHANGHAI).date().isoformat()) for m in summaries
    ] == [
        (coordinator.member_id, "2026-11-24"),
        (coordinator.member_id, "2026-11-30"),
        (coordinator.member_id, "2026-12-07"),
        (coordinator.member_id, "2026-12-14"),
        (coordinator.member_id, "2026-12-21"),
    ]
    assert summaries[-1].payload["text"].splitlines()[:3] == [
        "📅 每周走访覆盖情况",
        "📊 新德社区 (C1) 走访覆盖率",
        "住户 4 户，周期内已走访 1 户（25.0%）",
    ]


async def test_a_day_without_anything_due_sends_nothing(world: World, settings: Settings) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B1", "和平路88弄3号", "101")
    await assign(world, household.id, volunteer)
    done = await run_visit_jobs(world.db, settings, local(date(2026, 11, 25), 9))
    assert {d.kind: d.messages for d in done}[VisitRunKind.nudge] == 0
    assert await messages(world, "visits.nudge") == []


async def test_two_processes_ticking_at_once_send_one_nudge(
    world: World, settings: Settings, database_url: str
) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    household = await world.household("B1", "和平路88弄3号", "101", tags=["special_needs"])
    await assign(world, household.id, volunteer)
    other = Database(database_url)
    moment = local(date(2026, 12, 2), 8, 30)
    try:
        results = await asyncio.gather(
            run_visit_jobs(world.db, settings, moment), run_visit_jobs(other, settings, moment)
        )
    finally:
        await other.dispose()
    assert sorted(len(r) for r in results)[0] == 0, "one of them found everything done"
    assert [d.kind for r in results for d in r].count(VisitRunKind.nudge) == 1
    assert len(await messages(world, "visits.nudge")) == 1


async def test_the_nudge_time_and_summary_day_are_settings(
    world: World, settings: Settings
) -> None:
    late = settings.model_copy(update={"visit_nudge_time": "18:00", "visit_summary_weekday": 3})
    await world.person(5, "陈静", (Role.coordinator, "C1"))
    await world.household("B1", "和平路88弄3号", "101")
    wednesday = date(2026, 11, 25)
    assert await run_visit_jobs(world.db, late, local(wednesday, 17, 59)) == []
    done = await run_visit_jobs(world.db, late, local(wednesday, 18))
    assert [d.kind for d in done] == [VisitRunKind.nudge, VisitRunKind.coverage]


def test_a_malformed_nudge_time_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_VISIT_NUDGE_TIME", "25:00")
    with pytest.raises(SettingsError, match="GRIDBOT_VISIT_NUDGE_TIME: must be a local time"):
        load_settings(_env_file=None)
    monkeypatch.setenv("GRIDBOT_VISIT_NUDGE_TIME", "7:05")
    assert load_settings(_env_file=None).visit_nudge_time == "07:05"


async def test_a_replayed_run_adds_nothing_and_a_blocked_member_is_not_sent_to(
    world: World, settings: Settings
) -> None:
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    blocked = await world.person(3, "王五", (Role.volunteer, "G1"))
    for door, member in (("101", volunteer), ("102", blocked)):
        household = await world.household("B1", "和平路88弄3号", door, tags=["special_needs"])
        await assign(world, household.id, member)
    async with world.db.transaction() as session:
        await session.execute(
            update(Member).where(col(Member.id) == blocked.member_id).values(blocked_at=NOW)
        )
    moment = local(date(2026, 12, 2), 8, 30)
    first = await run_visit_jobs(world.db, settings, moment)
    assert {d.kind: d.messages for d in first}[VisitRunKind.nudge] == 2
    async with world.db.transaction() as session:
        await session.execute(delete(VisitRun))  # as if the run had never been recorded
    again = await run_visit_jobs(world.db, settings, moment)
    assert {d.kind: d.messages for d in again}[VisitRunKind.nudge] == 0, "dedupe keys hold"
    statuses = {m.member_id: m.status for m in await messages(world, "visits.nudge")}
    assert statuses == {
        volunteer.member_id: OutboxStatus.pending,
        blocked.member_id: OutboxStatus.blocked,
    }
