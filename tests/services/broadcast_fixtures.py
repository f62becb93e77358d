"""People for audience and broadcast tests: the demo org with members placed directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlmodel import col

from bot.db import Database
from models.broadcasts import ReserveMember
from models.members import Member, Role, RoleGrant
from models.org import Unit
from models.wishes import MemberSkill, Skill
from services.access import Actor, load_actor

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""10:00 in Shanghai on Monday 23 November 2026 (outside quiet hours)."""


@dataclass
class People:
    db: Database
    units: dict[str, int]
    ids: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> int:
        return self.ids[name]

    async def actor(self, name: str) -> Actor:
        async with self.db.transaction() as session:
            return await load_actor(session, self.ids[name])

    async def add(
        self,
        name: str,
        grants: list[tuple[Role, str]],
        *,
        telegram_id: int | None = None,
        locale: str = "zh_CN",
        skills: tuple[str, ...] = (),
        reserve: bool = False,
        blocked: bool = False,
    ) -> int:
        telegram_id = telegram_id or 50_000 + len(self.ids)
        async with self.db.transaction() as session:
            member = Member(
                telegram_id=telegram_id,
                chat_id=telegram_id,
                display_name=name,
                locale=locale,
                created_at=NOW,
                blocked_at=NOW if blocked else None,
            )
            session.add(member)
            await session.flush()
            assert member.id is not None
            for role, unit in grants:
                session.add(RoleGrant(member_id=member.id, role=role, unit_id=self.units[unit]))
            for skill in skills:
                session.add(MemberSkill(member_id=member.id, skill=Skill(skill)))
            if reserve:
                session.add(ReserveMember(member_id=member.id, joined_at=NOW))
        self.ids[name] = member.id
        return member.id

    async def add_many(
        self, count: int, role: Role, unit: str, *, first_telegram_id: int = 1_000_000
    ) -> list[int]:
        """Many members in one role at once (a few statements, for the scale tests)."""
        async with self.db.transaction() as session:
            rows = [
                {
                    "telegram_id": first_telegram_id + i,
                    "chat_id": first_telegram_id + i,
                    "display_name": f"member {i}",
                    "locale": "zh_CN" if i % 2 else "en",
                    "created_at": NOW,
                }
                for i in range(count)
            ]
            for start in range(0, count, 500):
                await session.execute(insert(Member), rows[start : start + 500])
            ids = list(
                (
                    await session.execute(
                        select(col(Member.id))
                        .where(col(Member.telegram_id) >= first_telegram_id)
                        .where(col(Member.telegram_id) < first_telegram_id + count)
                        .order_by(col(Member.id))
                    )
                ).scalars()
            )
            grants = [
                {"member_id": m, "role": role.value, "unit_id": self.units[unit], "created_at": NOW}
                for m in ids
            ]
            for start in range(0, count, 500):
                await session.execute(insert(RoleGrant), grants[start : start + 500])
        return [int(m or 0) for m in ids]


async def unit_ids(db: Database) -> dict[str, int]:
    async with db.transaction() as session:
        return {
            str(code): int(unit_id or 0)
            for code, unit_id in (await session.execute(select(col(Unit.code), col(Unit.id)))).all()
        }


async def make_people(db: Database) -> People:
    """Coordinators of C1 and C2, the grid leader of G1, and members around them."""
    units = await unit_ids(db)
    people = People(db, units)
    await people.add("coordinator", [(Role.coordinator, "C1")], telegram_id=4001)
    await people.add("far_coordinator", [(Role.coordinator, "C2")], telegram_id=4002)
    await people.add("grid_leader", [(Role.grid_leader, "G1")], telegram_id=4003)
    await people.add("admin", [(Role.admin, "D1")], telegram_id=4004, locale="en")
    await people.add(
        "volunteer",
        [(Role.volunteer, "G1"), (Role.resident, "B1")],
        telegram_id=4005,
        skills=("medical", "errands"),
        reserve=True,
    )
    await people.add("resident", [(Role.resident, "B1")], telegram_id=4006, locale="en")
    await people.add(
        "g2_volunteer", [(Role.volunteer, "G2")], telegram_id=4007, skills=("repairs",)
    )
    await people.add("g2_resident", [(Role.resident, "B3")], telegram_id=4008, reserve=True)
    await people.add("far_resident", [(Role.resident, "B4")], telegram_id=4009, reserve=True)
    await people.add("blocked", [(Role.resident, "B2")], telegram_id=4010, blocked=True)
    return people
