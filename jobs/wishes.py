"""Wish deadlines: remind claimers a day before their claim runs out, release stale claims
(the wish is published again), and hand unconfirmed fulfilments to the coordinators.

Each batch is claimed (SKIP LOCKED on PostgreSQL), acted on and marked in one transaction, so
two processes or a restart never do the same step twice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import Database
from services import wishes

log = logging.getLogger(__name__)

BATCH = 100


@dataclass(frozen=True)
class WishDeadlines:
    reminded: int
    released: int
    escalated: int


async def _drain(db: Database, step: Callable[[AsyncSession], Awaitable[int]]) -> int:
    total = 0
    while True:
        async with db.transaction() as session:
            done = await step(session)
        total += done
        if done < BATCH:
            return total


async def wish_deadlines(db: Database, now: datetime, zone: tzinfo) -> WishDeadlines:
    """Everything due at ``now`` (tests pass a frozen clock)."""
    reminded = await _drain(db, lambda s: wishes.remind_claims(s, now, zone=zone, limit=BATCH))
    released = await _drain(db, lambda s: wishes.release_stale_claims(s, now, limit=BATCH))
    escalated = await _drain(db, lambda s: wishes.escalate_unconfirmed(s, now, limit=BATCH))
    report = WishDeadlines(reminded, released, escalated)
    if reminded or released or escalated:
        log.info(
            "wishes: %s claim reminders, %s stale claims released, %s confirmations escalated",
            reminded,
            released,
            escalated,
        )
    return report
