"""Meeting jobs: plan the next occurrences of every series, and send due invitations and
reminders. Both take ``now`` so tests freeze the clock; both are safe to run in several
processes (rows are claimed with SKIP LOCKED) and again after a crash (unique keys)."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.db import Database
from services import meetings
from services.meetings import MeetingRules

log = logging.getLogger(__name__)

MAX_BATCHES = 20
"""Reminder batches per tick; the rest waits for the next tick (a minute later)."""


async def plan_meetings(db: Database, rules: MeetingRules, now: datetime) -> int:
    async with db.transaction() as session:
        created = await meetings.plan_all(session, now, rules)
    if created:
        log.info("meetings: planned %s occurrences", created)
    return created


async def send_meeting_reminders(db: Database, rules: MeetingRules, now: datetime) -> int:
    """Each batch is claimed, queued to the outbox and marked done in one transaction."""
    total = 0
    for _ in range(MAX_BATCHES):
        async with db.transaction() as session:
            sent = await meetings.send_due_reminders(session, now, rules)
            more = await meetings.reminders_due(session, now)
        total += sent
        if not more:
            break
    if total:
        log.info("meetings: sent %s invitations and reminders", total)
    return total
