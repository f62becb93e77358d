"""The gentle nudge: in the last quarter, volunteers under the yearly service-hours target hear
once a month how far they are (planned rows with a unique key, claimed with SKIP LOCKED)."""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo

from bot.db import Database
from services import points

log = logging.getLogger(__name__)

BATCH = 200


async def hours_nudges(db: Database, now: datetime, *, zone: tzinfo, target_hours: int) -> int:
    """Plan this month's nudges (last quarter only) and send those that are due; returns how
    many were handled (sent or found to be on target)."""
    async with db.transaction() as session:
        await points.plan_hours_nudges(session, now, zone)
    handled = 0
    while True:
        async with db.transaction() as session:
            done = await points.send_hours_nudges(
                session, now, zone=zone, target_hours=target_hours, limit=BATCH
            )
        handled += done
        if done < BATCH:
            break
    if handled:
        log.info("points: %s service-hours nudges handled", handled)
    return handled
