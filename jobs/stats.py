"""Statistics jobs: the chat reports (/stats) and Excel exports people asked for in the chat
(built off their updates, see services/stats_export.py), and the coordinators' weekly digest
(last week's one-screen summary and chart of the unit they coordinate, on a configurable
weekday and time; nothing is sent for a week in which nothing happened).

Every digest message carries a dedupe key per person, unit and ISO week, so neither another
tick that day, a restart nor a second process sends it twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel import col, select

from bot.db import Database
from bot.i18n import Translator
from bot.settings import Settings
from models.members import Role, RoleGrant
from models.org import Unit, UnitKind
from models.outbox import OutboxMessage
from services import stats
from services.access import UnitRef
from services.messages import Photo, Text
from services.outbox import notify, store_blob
from services.stats import Period, PeriodKind, StatsPolicy
from services.stats_chart import render_chart
from services.stats_export import run_exports

log = logging.getLogger(__name__)


async def stats_exports(db: Database, settings: Settings, now: datetime) -> int:
    return await run_exports(db, StatsPolicy.from_settings(settings), now)


def digest_week(settings: Settings, now: datetime) -> Period | None:
    """Last week, when this week's digest time has come (on the configured weekday)."""
    local = now.astimezone(settings.zone)
    if local.isoweekday() != settings.stats_digest_weekday:
        return None
    if local.time() < settings.stats_digest_at:
        return None
    this_week = stats.current_period(PeriodKind.week, local.date())
    return this_week.previous()


def digest_key(member_id: int, unit_id: int, week: Period) -> str:
    return f"stats-digest:{member_id}:{unit_id}:{week.key}"


async def weekly_digest(db: Database, settings: Settings, now: datetime) -> int:
    """Send due digests; returns how many people got one in this tick."""
    week = digest_week(settings, now)
    if week is None:
        return 0
    policy = StatsPolicy.from_settings(settings)
    async with db.transaction() as session:
        grants = (
            await session.execute(
                select(col(RoleGrant.member_id), Unit)
                .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
                .where(col(RoleGrant.role) == Role.coordinator.value)
                .where(col(Unit.kind).in_([UnitKind.community.value, UnitKind.street.value]))
                .order_by(col(Unit.id), col(RoleGrant.member_id))
            )
        ).all()
        wanted = {
            digest_key(int(m), UnitRef.of(u).id, week): (int(m), UnitRef.of(u)) for m, u in grants
        }
        sent = set(
            (
                await session.execute(
                    select(col(OutboxMessage.dedupe_key)).where(
                        col(OutboxMessage.dedupe_key).in_(list(wanted) or [""])
                    )
                )
            ).scalars()
        )
    by_unit: dict[int, tuple[UnitRef, list[tuple[int, str]]]] = {}
    for key, (member_id, unit) in wanted.items():
        if key not in sent:
            by_unit.setdefault(unit.id, (unit, []))[1].append((member_id, key))
    count = 0
    for unit, people in by_unit.values():
        try:
            count += await _digest_for(db, unit, people, week, now, policy)
        except Exception:
            log.exception("weekly statistics digest for unit %s failed", unit.code)
    return count


async def _digest_for(
    db: Database,
    unit: UnitRef,
    people: list[tuple[int, str]],
    week: Period,
    now: datetime,
    policy: StatsPolicy,
) -> int:
    async with db.reading() as session:
        report = await stats.build_report(session, unit, week, now, policy, reading=db.reading)
        if report.empty:
            return 0
        points = await stats.trend(session, unit, week, now, policy)
    charts: dict[str, bytes] = {}
    for locale in ("zh_CN", "en"):
        charts[locale] = await asyncio.to_thread(render_chart, report, points, locale)
    async with db.transaction() as session:
        blobs = {
            locale: await store_blob(session, png, f"stats-{week.key}.png", "image/png")
            for locale, png in charts.items()
        }
        for member_id, key in people:

            def render(t: Translator) -> list[Text | Photo]:
                text = t("stats.digest_intro") + "\n\n" + stats.summary_text(t, report)
                caption = t(
                    "stats.chart_caption",
                    unit=unit.label(t.locale),
                    period=stats.period_label(t, week),
                )
                return [Text(text[:4000]), Photo(blob_id=blobs[t.locale], caption=caption)]

            await notify(session, member_id, now, render, dedupe_key=key)
    return len(people)
