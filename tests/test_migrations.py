"""Migrations create exactly the schema the models describe, and go down and up again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from bot.db import Database
from bot.migrate import downgrade, head_revision, upgrade
from models.households import Household, HouseholdInterval
from models.org import Unit, UnitKind


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    assert differences == []


async def test_downgrade_to_nothing_and_upgrade_again(database_url: str) -> None:
    await asyncio.to_thread(downgrade, database_url, "base")
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(_diff)
    finally:
        await db.dispose()
    assert differences == []
    assert head_revision() is not None


async def test_household_intervals_are_backfilled_from_the_filing_date(database_url: str) -> None:
    """0075 starts every existing household's cadence history at its filing date, with the
    interval it has: the coverage of past periods then reads what it read before."""
    await asyncio.to_thread(downgrade, database_url, "0060")
    filed = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            grid = Unit(code="MG", kind=UnitKind.grid, name="网格", path="/")
            session.add(grid)
            await session.flush()
            building = Unit(code="MB", kind=UnitKind.building, name="楼", parent_id=grid.id)
            session.add(building)
            await session.flush()
            assert grid.id is not None
            assert building.id is not None
            await session.execute(
                insert(Household.__table__),  # type: ignore[attr-defined]
                [
                    {"building_id": building.id, "grid_id": grid.id, "address_key": key,
                     "interval_days": days, "due_at": filed, "created_at": filed,
                     "updated_at": filed}
                    for key, days in (("a", 7), ("b", 90))
                ],
            )  # fmt: skip
    finally:
        await db.dispose()
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            rows = await session.execute(
                select(Household.address_key, HouseholdInterval.interval_days,
                       HouseholdInterval.valid_from)
                .join(Household, Household.id == HouseholdInterval.household_id)  # type: ignore[arg-type]
                .order_by(Household.address_key)
            )  # fmt: skip
            assert [tuple(r) for r in rows.all()] == [("a", 7, filed), ("b", 90, filed)]
    finally:
        await db.dispose()
