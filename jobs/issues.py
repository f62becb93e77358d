"""Issue deadlines: reminders before them, one tier up after them, and unrated resolutions
closed as "no answer". Each tick claims due timer rows (``SKIP LOCKED`` on PostgreSQL), acts on
them and marks them done in one transaction per batch, so a breach is acted on once — across
restarts and with several processes ticking side by side."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from bot.db import Database
from services.issues import IssuePolicy, TimerOutcome, fire_due_timers

log = logging.getLogger(__name__)

BATCH = 100


async def issue_deadlines(
    db: Database, policy: IssuePolicy, now: datetime, *, batch: int = BATCH
) -> list[TimerOutcome]:
    """Act on every timer due at ``now``; returns what was done (for logs and tests)."""
    outcomes: list[TimerOutcome] = []
    while True:
        async with db.transaction() as session:
            done = await fire_due_timers(session, now, policy, limit=batch)
        outcomes += done
        if len(done) < batch:
            break
    if outcomes:
        counts = Counter(f"{o.kind.value}:{o.status.value}" for o in outcomes)
        log.info("issue deadlines: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return outcomes
