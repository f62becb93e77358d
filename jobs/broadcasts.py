"""Broadcast jobs: keep each sender's live delivery report up to date, and remind the
recipients of urgent broadcasts who have not acknowledged them. Both take ``now`` so tests
freeze the clock; both claim their rows with SKIP LOCKED and queue with dedupe keys, so a
second process or a restart never sends anything twice."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.db import Database
from services import broadcasts
from services.broadcasts import BroadcastPolicy

log = logging.getLogger(__name__)


async def refresh_broadcast_reports(db: Database, policy: BroadcastPolicy, now: datetime) -> int:
    async with db.transaction() as session:
        return await broadcasts.refresh_reports(session, now, policy)


async def broadcast_reminders(db: Database, policy: BroadcastPolicy, now: datetime) -> int:
    async with db.transaction() as session:
        queued = await broadcasts.send_reminders(session, now, policy)
    if queued:
        log.info("broadcasts: queued %s reminders to acknowledge", queued)
    return queued
