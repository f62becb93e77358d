"""Task jobs: remind takers before their shift, widen emergency calls whose slots stay
empty, and mark takers never checked in as no-shows after the shift. All take ``now`` so
tests freeze the clock; all are safe in several processes (rows are claimed with SKIP LOCKED)
and after a crash (persisted marks and unique dedupe keys)."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.db import Database
from services import tasks
from services.tasks import TaskRules

log = logging.getLogger(__name__)

MAX_BATCHES = 20
"""Batches per tick; the rest waits for the next tick."""


async def send_task_reminders(db: Database, rules: TaskRules, now: datetime) -> int:
    """Each batch is claimed, queued to the outbox and marked done in one transaction."""
    total = 0
    for _ in range(MAX_BATCHES):
        async with db.transaction() as session:
            sent = await tasks.send_due_reminders(session, now, rules)
            more = await tasks.reminders_due(session, now)
        total += sent
        if not more:
            break
    if total:
        log.info("tasks: reminded the takers of %s shifts", total)
    return total


async def widen_emergency_calls(db: Database, rules: TaskRules, now: datetime) -> int:
    """Each batch of due calls is claimed, widened and re-planned in one transaction."""
    total = 0
    for _ in range(MAX_BATCHES):
        async with db.transaction() as session:
            widened = await tasks.widen_due(session, now, rules)
            more = await tasks.widening_due(session, now)
        total += widened
        if not more:
            break
    if total:
        log.info("tasks: widened %s emergency calls", total)
    return total


async def settle_no_shows(db: Database, rules: TaskRules, now: datetime) -> int:
    """Each batch of ended shifts is claimed, its no-shows marked, deducted and told, in one
    transaction; a rerun finds the shifts settled (and the ledger keys taken)."""
    total = 0
    for _ in range(MAX_BATCHES):
        async with db.transaction() as session:
            total += await tasks.settle_no_shows(session, now, rules)
            more = await tasks.no_shows_due(session, now, rules)
        if not more:
            break
    if total:
        log.info("tasks: marked %s no-shows", total)
    return total
