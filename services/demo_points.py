"""Demo data for the points store: the default rule table and a few items on the shelf of the
demo community C1, so that `make sandbox` has something to redeem. Idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.points import StoreItem
from services import points, store
from services.access import Actor
from services.org import unit_by_code

DEMO_ITEMS: tuple[tuple[str, int, int], ...] = (
    ("洗衣液 2kg", 30, 10),
    ("东北大米 5kg", 60, 5),
    ("雨伞", 20, 8),
    ("理发券", 15, 20),
)


async def seed_points(session: AsyncSession, now: datetime) -> None:
    await points.ensure_default_rules(session, now)
    community = await unit_by_code(session, "C1")
    existing = (
        await session.execute(
            select(col(StoreItem.id)).where(col(StoreItem.community_id) == community.id).limit(1)
        )
    ).first()
    if existing is not None:
        return
    for name, cost, stock in DEMO_ITEMS:
        await store.add_item(
            session,
            Actor.cli(),
            community_id=community.id,
            name=name,
            cost=cost,
            stock=stock,
            now=now,
        )
