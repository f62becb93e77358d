"""Each update is processed once: ``(channel, update_id)`` is remembered."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.conversations import ProcessedUpdate
from services.sql import dialect, insert_ignore

KEEP_FOR = timedelta(days=7)


async def claim_update(session: AsyncSession, channel: str, update_id: int, now: datetime) -> bool:
    """True the first time an update is seen (in this transaction's view of the world)."""
    inserted = await insert_ignore(
        session,
        ProcessedUpdate,
        {"channel": channel, "update_id": update_id, "processed_at": now},
        conflict=["channel", "update_id"],
    )
    return bool(inserted)


async def claim_updates(
    session: AsyncSession, seen: Sequence[tuple[str, int]], now: datetime
) -> set[tuple[str, int]]:
    """Claim a batch of updates in one statement; returns those seen for the first time."""
    if not seen:
        return set()
    statement = _claim_many_statement(dialect(session))
    rows = [
        {"channel": channel, "update_id": update_id, "processed_at": now}
        for channel, update_id in dict.fromkeys(seen)
    ]
    result = await session.execute(statement, rows)
    return {(channel, int(update_id)) for channel, update_id in result.all()}


@functools.cache
def _claim_many_statement(dialect_name: str) -> Any:
    table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["channel", "update_id"])
        .returning(table.c.channel, table.c.update_id)
    )


async def prune_updates(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < now - KEEP_FOR)
    )
    return int(getattr(result, "rowcount", 0))
