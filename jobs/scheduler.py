"""APScheduler only ticks: every job reads its due rows from the database, so nothing is lost
with the in-memory job store and several processes can tick side by side."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import Database
from bot.settings import Settings
from jobs.housekeeping import housekeeping
from jobs.issues import issue_deadlines
from services.issues import IssuePolicy


def build_scheduler(
    settings: Settings, db: Database, clock: Callable[[], datetime]
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    defaults = {"coalesce": True, "max_instances": 1, "replace_existing": True}

    async def tick_housekeeping() -> None:
        await housekeeping(db, clock())

    scheduler.add_job(tick_housekeeping, "interval", minutes=5, id="housekeeping", **defaults)

    issue_policy = IssuePolicy.from_settings(settings)

    async def tick_issue_deadlines() -> None:
        await issue_deadlines(db, issue_policy, clock())

    scheduler.add_job(
        tick_issue_deadlines, "interval", seconds=30, id="issue_deadlines", **defaults
    )
    return scheduler
