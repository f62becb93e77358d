"""APScheduler only ticks: every job reads its due rows from the database, so nothing is lost
with the in-memory job store and several processes can tick side by side."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import Database
from bot.settings import Settings
from jobs.housekeeping import housekeeping
from jobs.meetings import plan_meetings, send_meeting_reminders
from services.meetings import MeetingRules


def build_scheduler(
    settings: Settings, db: Database, clock: Callable[[], datetime]
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    # Every job also runs right at start-up: after a restart, due work is not left waiting
    # for a whole interval.
    defaults = {
        "coalesce": True,
        "max_instances": 1,
        "replace_existing": True,
        "next_run_time": datetime.now(settings.zone),
    }

    async def tick_housekeeping() -> None:
        await housekeeping(db, clock())

    scheduler.add_job(tick_housekeeping, "interval", minutes=5, id="housekeeping", **defaults)

    meeting_rules = MeetingRules.of(settings)

    async def tick_meeting_plans() -> None:
        await plan_meetings(db, meeting_rules, clock())

    async def tick_meeting_reminders() -> None:
        await send_meeting_reminders(db, meeting_rules, clock())

    scheduler.add_job(tick_meeting_plans, "interval", minutes=10, id="meetings.plan", **defaults)
    scheduler.add_job(
        tick_meeting_reminders, "interval", minutes=1, id="meetings.reminders", **defaults
    )
    return scheduler
