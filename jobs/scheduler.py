"""APScheduler only ticks: every job reads its due rows from the database, so nothing is lost
with the in-memory job store and several processes can tick side by side."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import Database
from bot.settings import Settings
from jobs.housekeeping import housekeeping
from jobs.points import hours_nudges
from jobs.wishes import wish_deadlines


def build_scheduler(
    settings: Settings, db: Database, clock: Callable[[], datetime]
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    defaults = {"coalesce": True, "max_instances": 1, "replace_existing": True}

    async def tick_housekeeping() -> None:
        await housekeeping(db, clock())

    scheduler.add_job(tick_housekeeping, "interval", minutes=5, id="housekeeping", **defaults)

    async def tick_wishes() -> None:
        await wish_deadlines(db, clock(), settings.zone)

    async def tick_hours() -> None:
        await hours_nudges(
            db, clock(), zone=settings.zone, target_hours=settings.service_hours_target
        )

    scheduler.add_job(tick_wishes, "interval", minutes=5, id="wishes.deadlines", **defaults)
    scheduler.add_job(tick_hours, "interval", minutes=30, id="points.hours_nudges", **defaults)
    return scheduler
