"""A small world for household and visit tests: the demo org, people with roles on it, and
household files, built straight through the services."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openpyxl import Workbook
from sqlalchemy import delete
from sqlmodel import select

from bot.db import Database
from models.households import Household, HouseholdInterval, HouseholdTagLink, HubLink
from models.members import Member, Role, RoleGrant
from models.org import Unit
from models.visits import Visit
from services.access import Actor, UnitRef, load_actor
from services.households import HouseholdDraft, HouseholdView, VisitPolicy, add_household, list_tags
from services.members import Person, ensure_member
from tests.harness import Harness

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""Monday 23 November 2026, 10:00 in Shanghai."""
POLICY = VisitPolicy()


async def empty_registry(db: Database) -> None:
    """Remove the demo households (``seed_demo`` files a dozen): tests start from nothing."""
    async with db.transaction() as session:
        for table in (Visit, HouseholdTagLink, HubLink, HouseholdInterval, Household):
            await session.execute(delete(table))


async def deliver_queued(harness: Harness) -> None:
    """Send what services queued for other people (the sender job's work), without pacing."""
    harness.app.courier.per_chat_interval = 0
    while await harness.app.courier.drain_once():
        pass


@dataclass
class World:
    db: Database
    units: dict[str, UnitRef] = field(default_factory=dict)

    async def load(self) -> World:
        await empty_registry(self.db)
        async with self.db.transaction() as session:
            for unit in (await session.execute(select(Unit))).scalars():
                self.units[unit.code] = UnitRef.of(unit)
        return self

    async def person(
        self,
        telegram_id: int,
        name: str,
        *grants: tuple[Role, str],
        phone: str | None = None,
        locale: str = "zh_CN",
    ) -> Actor:
        async with self.db.transaction() as session:
            member = await ensure_member(
                session, Person(telegram_id, telegram_id, name, locale), NOW
            )
            for role, code in grants:
                session.add(RoleGrant(member_id=member.id, role=role, unit_id=self.units[code].id))
            if phone:
                row = await session.get(Member, member.id)
                assert row is not None
                row.phone = phone
            await session.flush()
            return await load_actor(session, member.id)

    async def cadences(self, household_id: int) -> list[tuple[int, datetime]]:
        """The household's interval history: (days, in force from), oldest first."""
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(HouseholdInterval.interval_days, HouseholdInterval.valid_from)
                .where(HouseholdInterval.household_id == household_id)
                .order_by(HouseholdInterval.valid_from, HouseholdInterval.id)  # type: ignore[arg-type]
            )
            return [(int(days), at) for days, at in rows.all()]

    async def tag_ids(self, *codes: str) -> tuple[int, ...]:
        async with self.db.transaction() as session:
            tags = {t.code: t.id for t in await list_tags(session)}
        return tuple(tags[c] for c in codes)

    async def household(
        self,
        building: str,
        address: str,
        door: str = "",
        *,
        tags: Sequence[str] = (),
        contact: str | None = None,
        phone: str | None = None,
        now: datetime = NOW,
    ) -> HouseholdView:
        tag_ids = await self.tag_ids(*tags)
        async with self.db.transaction() as session:
            return await add_household(
                session,
                Actor.cli(),
                self.units[building].id,
                HouseholdDraft(address, door, tag_ids, contact, phone),
                now,
                POLICY,
            )


def xlsx(rows: Sequence[Sequence[object]], title: str | None = None) -> bytes:
    """An Excel workbook with one sheet: an optional title row, then ``rows``."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "住户台账"
    if title:
        sheet.append([title])
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
