"""Demo household files for the sandbox: a dozen households in the demo buildings with tags,
contacts and a few past visits, so that /households, /assign and /coverage have something to
show. Nobody is assigned yet: the demo coordinator assigns a building with /assign."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import func, select

from models.households import Household
from models.visits import Visit, VisitOutcome
from services.access import Actor
from services.households import HouseholdDraft, VisitPolicy, add_household, list_tags
from services.org import unit_by_code

DEMO_HOUSEHOLDS: tuple[tuple[str, str, str, tuple[str, ...], str, str, int | None], ...] = (
    ("B1", "和平路88弄3号", "101", ("elderly_alone",), "王秀英", "13900001101", 20),
    ("B1", "和平路88弄3号", "102", (), "李建国", "13900001102", 40),
    ("B1", "和平路88弄3号", "201", ("special_needs", "low_income"), "赵桂兰", "13900001201", 9),
    ("B1", "和平路88弄3号", "202", ("rented",), "孙磊", "13900001202", None),
    ("B1", "和平路88弄3号", "301", ("disabled",), "周淑珍", "02155551301", 100),
    ("B2", "和平路88弄5号", "101", ("elderly_alone",), "吴国华", "13900002101", 3),
    ("B2", "和平路88弄5号", "102", (), "郑丽", "13900002102", None),
    ("B2", "和平路88弄5号", "201", ("special_needs",), "钱志强", "13900002201", 2),
    ("B3", "和平路90弄1号", "101", ("vacant",), "", "", None),
    ("B3", "和平路90弄1号", "102", ("elderly_alone",), "冯玉梅", "13900003102", 16),
    ("B4", "光明路1号", "101", (), "陈海", "13900004101", 10),
    ("B4", "光明路1号", "102", ("special_needs",), "褚红", "13900004102", None),
)
"""(building, address, door, tags, contact, phone, days since the last visit or None)."""


async def seed_households(session: AsyncSession, now: datetime) -> None:
    """Idempotent: only an empty registry is seeded."""
    if (await session.execute(select(func.count()).select_from(Household))).scalar_one():
        return
    tags = {t.code: t.id for t in await list_tags(session)}
    policy = VisitPolicy()
    for building, address, door, codes, contact, phone, days_ago in DEMO_HOUSEHOLDS:
        unit = await unit_by_code(session, building)
        created = now - timedelta(days=120)
        view = await add_household(
            session,
            Actor.cli(),
            unit.id,
            HouseholdDraft(
                address, door, tuple(tags[c] for c in codes), contact or None, phone or None
            ),
            created,
            policy,
        )
        household = await session.get(Household, view.id)
        assert household is not None
        if days_ago is not None:
            visited = now - timedelta(days=days_ago)
            session.add(
                Visit(
                    household_id=view.id,
                    visited_at=visited,
                    outcome=VisitOutcome.met,
                    created_at=visited,
                    updated_at=visited,
                )
            )
            household.last_visited_at = visited
        household.due_at = (household.last_visited_at or created) + timedelta(
            days=household.interval_days
        )
    await session.flush()
