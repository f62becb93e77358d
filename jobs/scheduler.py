"""APScheduler only ticks: every job reads its due rows from the database, so nothing is lost
with the in-memory job store and several processes can tick side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import Database
from bot.settings import Settings
from jobs.broadcasts import broadcast_reminders, refresh_broadcast_reports
from jobs.housekeeping import housekeeping
from jobs.issues import issue_deadlines
from jobs.meetings import plan_meetings, send_meeting_reminders
from jobs.points import hours_nudges
from jobs.stats import stats_exports, weekly_digest
from jobs.tasks import send_task_reminders, settle_no_shows, widen_emergency_calls
from jobs.visits import refresh_intervals, run_visit_jobs
from jobs.wishes import wish_deadlines
from services.broadcasts import BroadcastPolicy
from services.issues import IssuePolicy
from services.meetings import MeetingRules
from services.tasks import TaskRules

Tick = Callable[[datetime], Awaitable[object]]


def job_table(settings: Settings, db: Database) -> list[tuple[str, timedelta | None, Tick]]:
    """Every scheduled job: a deterministic id, how often it ticks (None: once, at start-up)
    and what it does at ``now``."""
    issue_policy = IssuePolicy.from_settings(settings)
    meeting_rules = MeetingRules.of(settings)
    broadcast_policy = BroadcastPolicy.of(settings)
    task_rules = TaskRules.of(settings)
    return [
        ("housekeeping", timedelta(minutes=5), lambda now: housekeeping(db, now)),
        ("issues.deadlines", timedelta(seconds=30),
         lambda now: issue_deadlines(db, issue_policy, now)),
        ("meetings.plan", timedelta(minutes=10),
         lambda now: plan_meetings(db, meeting_rules, now)),
        ("meetings.reminders", timedelta(minutes=1),
         lambda now: send_meeting_reminders(db, meeting_rules, now)),
        ("visits.intervals", None, lambda now: refresh_intervals(db, settings, now)),
        ("visits", timedelta(minutes=1), lambda now: run_visit_jobs(db, settings, now)),
        ("wishes.deadlines", timedelta(minutes=5),
         lambda now: wish_deadlines(db, now, settings.zone)),
        ("points.hours_nudges", timedelta(minutes=30),
         lambda now: hours_nudges(db, now, zone=settings.zone,
                                  target_hours=settings.service_hours_target)),
        ("broadcasts.reports", timedelta(seconds=settings.broadcast_report_seconds),
         lambda now: refresh_broadcast_reports(db, broadcast_policy, now)),
        ("broadcasts.reminders", timedelta(minutes=1),
         lambda now: broadcast_reminders(db, broadcast_policy, now)),
        ("tasks.reminders", timedelta(minutes=1),
         lambda now: send_task_reminders(db, task_rules, now)),
        ("tasks.widen", timedelta(minutes=1),
         lambda now: widen_emergency_calls(db, task_rules, now)),
        ("tasks.no_shows", timedelta(minutes=5),
         lambda now: settle_no_shows(db, task_rules, now)),
        ("stats.exports", timedelta(seconds=2), lambda now: stats_exports(db, settings, now)),
        ("stats.digest", timedelta(minutes=10), lambda now: weekly_digest(db, settings, now)),
    ]  # fmt: skip


def build_scheduler(
    settings: Settings, db: Database, clock: Callable[[], datetime]
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    for job_id, every, tick in job_table(settings, db):

        async def run(tick: Tick = tick) -> None:
            await tick(clock())

        # Every job also runs right at start-up (in the order of the table), so that after a
        # restart due work does not wait a whole interval.
        start = datetime.now(settings.zone)
        if every is None:
            scheduler.add_job(run, "date", run_date=start, id=job_id, replace_existing=True)
        else:
            scheduler.add_job(
                run, "interval", seconds=every.total_seconds(), id=job_id, coalesce=True,
                max_instances=1, replace_existing=True, next_run_time=start,
            )  # fmt: skip
    return scheduler
