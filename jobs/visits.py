"""Door-knocking jobs: the daily nudge (one message per member with visits due today or
overdue) and the coordinators' weekly coverage summary.

Each run is a ``visit_runs`` row keyed by (kind, period) — the local day for the nudge, the ISO
week for the summary — planned once its time has come, claimed with ``SKIP LOCKED``, carried out
and marked done in one transaction. Every message also carries a dedupe key, so neither a
restart nor a second process sends anything twice.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db import Database
from bot.i18n import translator
from bot.settings import Settings
from models.visits import VisitRun, VisitRunKind
from services.households import VisitPolicy, list_tags, recompute_intervals
from services.outbox import Outgoing, enqueue_many, notify
from services.sql import insert_ignore, skip_locked
from services.visits import (
    CoverageReport,
    coordinator_scopes,
    coverage_of,
    daily_nudges,
    nudge_message,
    summary_message,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDone:
    kind: VisitRunKind
    period: str
    messages: int


def nudge_period(settings: Settings, now: datetime) -> tuple[str, datetime]:
    """Today's nudge: its key (the local date) and when it is due."""
    zone = settings.zone
    today = now.astimezone(zone).date()
    return today.isoformat(), datetime.combine(today, settings.visit_nudge_at, zone)


def summary_period(settings: Settings, now: datetime) -> tuple[str, datetime]:
    """This week's coverage summary: its key (the ISO week) and when it is due."""
    zone = settings.zone
    today = now.astimezone(zone).date()
    year, week, weekday = today.isocalendar()
    day: date = today + timedelta(days=settings.visit_summary_weekday - weekday)
    return f"{year}-W{week:02d}", datetime.combine(day, settings.visit_nudge_at, zone)


async def run_visit_jobs(db: Database, settings: Settings, now: datetime) -> list[RunDone]:
    """Plan the runs whose time has come, then carry out every due run not done yet."""
    policy = VisitPolicy.of(settings)
    current = {
        VisitRunKind.nudge: nudge_period(settings, now),
        VisitRunKind.coverage: summary_period(settings, now),
    }
    async with db.transaction() as session:
        for kind, (period, due_at) in current.items():
            if due_at <= now:
                await insert_ignore(
                    session,
                    VisitRun,
                    {"kind": kind.value, "period": period, "due_at": due_at, "messages": 0},
                    conflict=["kind", "period"],
                )
        claimed = (
            await session.execute(
                skip_locked(
                    session,
                    select(VisitRun)
                    .where(col(VisitRun.done_at).is_(None))
                    .where(col(VisitRun.due_at) <= now)
                    .order_by(col(VisitRun.due_at), col(VisitRun.id)),
                )
            )
        ).scalars()
        done = []
        for run in list(claimed):
            kind = VisitRunKind(run.kind)
            if run.period != current[kind][0]:
                log.info("visit run %s %s is stale; skipped", kind, run.period)
                messages = 0
            elif kind == VisitRunKind.nudge:
                messages = await send_nudges(session, now, policy, run.period)
            else:
                messages = await send_summaries(session, now, policy, run.period)
            run.done_at = now
            run.messages = messages
            done.append(RunDone(kind, run.period, messages))
    for run_done in done:
        log.info("visit %s for %s: %s messages", run_done.kind, run_done.period, run_done.messages)
    return done


async def send_nudges(
    session: AsyncSession, now: datetime, policy: VisitPolicy, period: str
) -> int:
    nudges = await daily_nudges(session, now, policy)
    tags = {tag.id: tag for tag in await list_tags(session)}
    today = policy.local_date(now)
    return await enqueue_many(
        session,
        [
            Outgoing(
                nudge.chat_id,
                nudge_message(translator(nudge.locale), nudge, tags, policy, today),
                member_id=nudge.member_id,
                dedupe_key=f"visits.nudge:{period}:{nudge.member_id}",
                blocked=nudge.blocked,
            )
            for nudge in nudges
        ],
        now,
        source="visits.nudge",
    )


async def send_summaries(
    session: AsyncSession, now: datetime, policy: VisitPolicy, period: str
) -> int:
    reports: dict[int, CoverageReport] = {}
    sent = 0
    for member_id, unit in await coordinator_scopes(session):
        if unit.id not in reports:
            reports[unit.id] = await coverage_of(session, unit, now, policy)
        report = reports[unit.id]
        if not report.counts.total:
            continue
        rows = await notify(
            session,
            member_id,
            now,
            functools.partial(summary_message, report=report),
            dedupe_key=f"visits.coverage:{period}:{member_id}:{unit.id}",
            source="visits.coverage",
        )
        sent += bool(rows)
    return sent


async def refresh_intervals(db: Database, settings: Settings, now: datetime) -> int:
    """At start-up: households follow the configured default interval if it changed."""
    async with db.transaction() as session:
        changed = await recompute_intervals(session, VisitPolicy.of(settings), now)
    if changed:
        log.info("visit intervals: %s households have new due dates", changed)
    return changed
