"""Statistics jobs: the chat reports (/stats) and Excel exports people asked for in the chat
(built off their updates, see services/stats_export.py), and the coordinators' weekly digest
(on a configurable weekday and time): one digest per person, with last week's one-screen summary
of each unit they coordinate and one chart with a row per unit; units where nothing happened are
left out, and nothing is sent when nothing happened in any.

Every digest carries a dedupe key per person and ISO week, so neither another tick that day, a
restart nor a second process sends it twice."""

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
from services.stats import Period, PeriodKind, Report, StatsPolicy, TrendPoint
from services.stats_chart import UNITS_STACKED, render_charts
from services.stats_export import run_exports

log = logging.getLogger(__name__)

DIGEST_TEXT_LIMIT = 4000


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


def digest_key(member_id: int, week: Period) -> str:
    return f"stats-digest:{member_id}:{week.key}"


def unit_digest_key(member_id: int, unit_id: int, week: Period) -> str:
    """The key of the earlier digests, one per person and unit: a person who got one of those
    for a week is not sent the combined digest of that week again."""
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
                .order_by(col(RoleGrant.member_id), col(Unit.code))
            )
        ).all()
        units_of: dict[int, list[UnitRef]] = {}
        for member_id, granted in grants:
            units_of.setdefault(int(member_id), []).append(UnitRef.of(granted))
        keys = {
            member_id: [
                digest_key(member_id, week),
                *(unit_digest_key(member_id, u.id, week) for u in units),
            ]
            for member_id, units in units_of.items()
        }
        sent = set(
            (
                await session.execute(
                    select(col(OutboxMessage.dedupe_key)).where(
                        col(OutboxMessage.dedupe_key).in_(
                            [key for ks in keys.values() for key in ks] or [""]
                        )
                    )
                )
            ).scalars()
        )
    due = {
        member_id: _outermost(units)
        for member_id, units in units_of.items()
        if not sent.intersection(keys[member_id])
    }
    reports: dict[int, tuple[Report, list[TrendPoint]] | None] = {}
    count = 0
    for member_id, units in due.items():
        try:
            for unit in units:
                if unit.id not in reports:
                    reports[unit.id] = await _unit_report(db, unit, week, now, policy)
            parts = [part for u in units if (part := reports[u.id]) is not None]
            if parts:
                count += await _send_digest(db, member_id, parts, week, now)
        except Exception:
            log.exception("weekly statistics digest for member %s failed", member_id)
    return count


def _outermost(units: list[UnitRef]) -> list[UnitRef]:
    """The person's units without those inside another of them (a street coordinator who also
    coordinates one of its communities gets the street, whose report has the community)."""
    return [u for u in units if not any(o != u and u.within(o) for o in units)]


async def _unit_report(
    db: Database, unit: UnitRef, week: Period, now: datetime, policy: StatsPolicy
) -> tuple[Report, list[TrendPoint]] | None:
    """Last week's report and trend of one unit; None when nothing happened there."""
    async with db.reading() as session:
        report = await stats.build_report(session, unit, week, now, policy, reading=db.reading)
        if report.empty:
            return None
        points = await stats.trend(session, unit, week, now, policy)
    return report, points


def digest_texts(t: Translator, reports: list[Report]) -> list[Text]:
    """The intro and one summary per unit, in as few messages as the length limit allows (a
    new message starts at a unit's summary, never inside one)."""
    chunks: list[str] = []
    current = t("stats.digest_intro")
    for report in reports:
        summary = stats.summary_text(t, report)[:DIGEST_TEXT_LIMIT]
        if len(current) + 2 + len(summary) > DIGEST_TEXT_LIMIT:
            chunks.append(current)
            current = summary
        else:
            current += "\n\n" + summary
    chunks.append(current)
    return [Text(chunk) for chunk in chunks]


async def _send_digest(
    db: Database,
    member_id: int,
    parts: list[tuple[Report, list[TrendPoint]]],
    week: Period,
    now: datetime,
) -> int:
    """One digest for one person: the summaries of their units with news and one chart with a
    row per unit."""
    charts: dict[str, bytes] = {}
    for locale in ("zh_CN", "en"):
        charts[locale] = await asyncio.to_thread(render_charts, parts, locale)
    reports = [report for report, _ in parts]
    async with db.transaction() as session:
        blobs = {
            locale: await store_blob(session, png, f"stats-{week.key}.png", "image/png")
            for locale, png in charts.items()
        }

        def render(t: Translator) -> list[Text | Photo]:
            units = " / ".join(r.unit.label(t.locale) for r in reports[:UNITS_STACKED])
            caption = t("stats.chart_caption", unit=units, period=stats.period_label(t, week))
            return [*digest_texts(t, reports), Photo(blob_id=blobs[t.locale], caption=caption)]

        rows = await notify(session, member_id, now, render, dedupe_key=digest_key(member_id, week))
    return 1 if rows else 0
