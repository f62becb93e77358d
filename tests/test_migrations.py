"""Migrations create exactly the schema the models describe, and go down and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.db import Database
from bot.migrate import downgrade, head_revision, upgrade


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
