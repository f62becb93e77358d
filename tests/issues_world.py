"""A community with everybody the issue loop involves, on the demo org
(D1 > S1 > C1 (G1: B1, B2; G2: B3), C2 (G3: B4)), for service and job tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db import Database
from models.issues import Issue, IssueEvent
from models.members import Member, Role
from models.outbox import OutboxMessage
from services.access import Actor, load_actor
from services.invites import create_invite, redeem
from services.issues import IssuePolicy, IssueView, NewReport, create_report
from services.members import Person

MONDAY_10AM = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""10:00 on a Monday in Shanghai: inside working hours."""

POLICY = IssuePolicy(zone=ZoneInfo("Asia/Shanghai"))

PEOPLE: dict[str, tuple[Role, str, str]] = {
    "resident": (Role.resident, "B1", "王阿姨"),
    "neighbour": (Role.resident, "B1", "赵叔叔"),
    "far_resident": (Role.resident, "B4", "孙大爷"),
    "community_resident": (Role.resident, "C1", "周阿姨"),
    "volunteer": (Role.volunteer, "G1", "李明"),
    "worker": (Role.grid_worker, "G1", "张伟"),
    "worker2": (Role.grid_worker, "G1", "刘洋"),
    "leader": (Role.grid_leader, "G1", "吴刚"),
    "other_worker": (Role.grid_worker, "G3", "郑强"),
    "coordinator": (Role.coordinator, "C1", "陈静"),
    "other_coordinator": (Role.coordinator, "C2", "黄丽"),
    "street": (Role.coordinator, "S1", "何街道"),
    "department": (Role.department, "S1", "城管马科长"),
    "admin": (Role.admin, "D1", "管理员"),
}


@dataclass
class World:
    db: Database
    ids: dict[str, int] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]

    def id(self, name: str) -> int:
        return self.ids[name]

    def name_of(self, member_id: int) -> str:
        return next(n for n, i in self.ids.items() if i == member_id)

    async def report(
        self,
        who: str = "resident",
        now: datetime = MONDAY_10AM,
        policy: IssuePolicy = POLICY,
        **fields: Any,
    ) -> IssueView:
        fields.setdefault("category", "parking")
        fields.setdefault("description", "楼下消防通道被车堵住了")
        async with self.db.transaction() as session:
            return await create_report(session, self[who], NewReport(**fields), now, policy)

    async def told(self, name: str, source: str | None = None) -> list[str]:
        """Texts (or captions) queued for a person, oldest first."""
        async with self.db.transaction() as session:
            query = (
                select(OutboxMessage)
                .where(col(OutboxMessage.member_id) == self.ids[name])
                .order_by(col(OutboxMessage.id))
            )
            if source:
                query = query.where(col(OutboxMessage.source) == source)
            rows = (await session.execute(query)).scalars().all()
        return [str(r.payload.get("text") or r.payload.get("caption") or "") for r in rows]

    async def issue(self, issue_id: int) -> Issue:
        async with self.db.transaction() as session:
            found = await session.get(Issue, issue_id)
            assert found is not None
            return found

    async def events(self, issue_id: int) -> list[IssueEvent]:
        async with self.db.transaction() as session:
            return list(
                (
                    await session.execute(
                        select(IssueEvent)
                        .where(col(IssueEvent.issue_id) == issue_id)
                        .order_by(col(IssueEvent.id))
                    )
                )
                .scalars()
                .all()
            )

    async def outbox_count(self) -> int:
        async with self.db.transaction() as session:
            return int(
                (
                    await session.execute(select(func.count()).select_from(OutboxMessage))
                ).scalar_one()
            )


async def build_world(db: Database, names: tuple[str, ...] | None = None) -> World:
    """Everybody in PEOPLE (or the named ones), joined through real invites."""
    world = World(db)
    async with db.transaction() as session:
        for index, name in enumerate(names or tuple(PEOPLE)):
            role, unit, display = PEOPLE[name]
            await _join(session, world, name, role, unit, display, 3000 + index)
    return world


async def _join(
    session: AsyncSession,
    world: World,
    name: str,
    role: Role,
    unit: str,
    display: str,
    telegram_id: int,
) -> None:
    invite = await create_invite(session, Actor.cli(), role=role, unit_code=unit, now=MONDAY_10AM)
    joined = await redeem(
        session, invite.token, Person(telegram_id, telegram_id, display, "zh_CN"), MONDAY_10AM
    )
    world.ids[name] = joined.member.id
    member = await session.get(Member, joined.member.id)
    assert member is not None
    member.phone = f"1380000{telegram_id:04d}"
    world.actors[name] = await load_actor(session, joined.member.id)
