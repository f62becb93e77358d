"""Each update is processed once: ``(channel, update_id)`` is remembered."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.conversations import ProcessedUpdate
from services.sql import insert_ignore

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


async def prune_updates(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < now - KEEP_FOR)
    )
    return int(getattr(result, "rowcount", 0))
