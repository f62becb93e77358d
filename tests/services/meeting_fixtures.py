"""A small town for meeting tests: the demo org with people in their roles, and helpers to call
a meeting and to run the reminder job with a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlmodel import col, select

from bot.db import Database
from models.meetings import (
    Audience,
    Meeting,
    MeetingEvent,
    MeetingKind,
    MeetingReminder,
    MeetingSeries,
    MeetingSeriesMember,
)
from models.members import Role
from models.outbox import OutboxMessage
from services import meetings
from services.access import Actor, load_actor
from services.invites import create_invite, redeem
from services.meetings import MeetingRules, MeetingView, SeriesDraft, SeriesView
from services.members import Person

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""10:00 in Shanghai on Monday 23 November 2026."""
FIRST = datetime(2026, 12, 8, 19, 0, tzinfo=SHANGHAI).astimezone(UTC)
"""The second Tuesday of December, 19:00 in Shanghai."""
RULES = MeetingRules(zone=SHANGHAI)
VENUE = (31.2300, 121.4730)

PEOPLE: dict[str, tuple[int, str, str]] = {
    "coordinator": (3001, "陈静", "demo-coordinator"),
    "grid_leader": (3002, "刘强", "demo-gridleader"),
    "grid_worker": (3003, "张伟", "demo-gridworker"),
    "resident": (3004, "王阿姨", "demo-resident"),
    "volunteer": (3005, "李明", "demo-volunteer"),
    "department": (3006, "赵部门", "demo-department"),
    "admin": (3007, "管理员", "demo-admin"),
    "far_resident": (3008, "光明居民", "test-b4-resident"),
    "far_coordinator": (3009, "光明社区干部", "test-c2-coordinator"),
}


@dataclass
class Town:
    db: Database
    actors: dict[str, Actor]

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]

    def member(self, name: str) -> int:
        member_id = self.actors[name].member_id
        assert member_id is not None
        return member_id


async def without_demo_meetings(db: Database) -> None:
    """The demo seed plans two series relative to the real clock; these tests keep their own
    frozen calendar, so they start without them."""
    async with db.transaction() as session:
        for model in (MeetingEvent, MeetingReminder, Meeting, MeetingSeriesMember, MeetingSeries):
            await session.execute(delete(model))


async def make_town(db: Database) -> Town:
    await without_demo_meetings(db)
    async with db.transaction() as session:
        for token, role, unit in (
            ("test-b4-resident", Role.resident, "B4"),
            ("test-c2-coordinator", Role.coordinator, "C2"),
        ):
            await create_invite(
                session, Actor.cli(), role=role, unit_code=unit, now=NOW, token=token
            )
        actors = {}
        for name, (telegram_id, display, token) in PEOPLE.items():
            joined = await redeem(
                session, token, Person(telegram_id, telegram_id, display, "zh_CN"), NOW
            )
            actors[name] = await load_actor(session, joined.member.id)
    return Town(db, actors)


def draft(**overrides: Any) -> SeriesDraft:
    base = SeriesDraft(
        kind=MeetingKind.council,
        title="新德第一网格月月谈",
        unit_code="G1",
        first_start=FIRST,
        rrule="FREQ=MONTHLY;BYDAY=+2TU",
        venue="新德社区党群服务站",
        audience=Audience.open,
        latitude=VENUE[0],
        longitude=VENUE[1],
    )
    return replace(base, **overrides)


async def call_meeting(
    town: Town, who: str = "coordinator", now: datetime = NOW, **overrides: Any
) -> tuple[SeriesView, list[MeetingView]]:
    async with town.db.transaction() as session:
        return await meetings.create_series(session, town[who], draft(**overrides), now, RULES)


async def run_reminders(db: Database, now: datetime) -> int:
    async with db.transaction() as session:
        return await meetings.send_due_reminders(session, now, RULES)


async def outbox_texts(db: Database, member_id: int | None = None) -> list[str]:
    async with db.transaction() as session:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if member_id is not None:
            query = query.where(col(OutboxMessage.member_id) == member_id)
        rows = (await session.execute(query)).scalars().all()
    return [str(row.payload.get("text", row.payload.get("caption", ""))) for row in rows]


async def reminders(db: Database, meeting_id: int) -> list[MeetingReminder]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(MeetingReminder)
            .where(col(MeetingReminder.meeting_id) == meeting_id)
            .order_by(col(MeetingReminder.id))
        )
        return list(rows.scalars())


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
