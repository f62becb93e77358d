"""APScheduler only ticks: every job reads its due rows from the database, so nothing is lost
with the in-memory job store and several processes can tick side by side."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import Database
from bot.settings import Settings
from jobs.housekeeping import housekeeping
from jobs.visits import refresh_intervals, run_visit_jobs


def build_scheduler(
    settings: Settings, db: Database, clock: Callable[[], datetime]
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    defaults = {"coalesce": True, "max_instances": 1, "replace_existing": True}

    async def tick_housekeeping() -> None:
        await housekeeping(db, clock())

    scheduler.add_job(tick_housekeeping, "interval", minutes=5, id="housekeeping", **defaults)

    async def tick_visits() -> None:
        await run_visit_jobs(db, settings, clock())

    async def start_visits() -> None:
        await refresh_intervals(db, settings)
        await tick_visits()

    scheduler.add_job(tick_visits, "interval", minutes=1, id="visits", **defaults)
    scheduler.add_job(start_visits, "date", id="visits.start", **defaults)
    return scheduler
