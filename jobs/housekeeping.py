"""Housekeeping: abandoned conversations expire quietly; old update ids are forgotten."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.db import Database
from services import conversations, updates

log = logging.getLogger(__name__)


async def housekeeping(db: Database, now: datetime) -> None:
    async with db.transaction() as session:
        expired = await conversations.expire_states(session, now)
        pruned = await updates.prune_updates(session, now)
    if expired or pruned:
        log.info("housekeeping: %s conversations expired, %s update ids pruned", expired, pruned)
