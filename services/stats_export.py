"""The statistics workbook (Excel): a sheet per section with the unit's children as rows, the
department league table and the metric definitions. Written with openpyxl's write-only mode,
so rows stream out instead of building the whole sheet in memory.

In the chat an export is a row (``stats_exports``) that the statistics job picks up: the
person's update answers at once, the job edits one "preparing…" message as the sections are
done, and sends the file at the end. The chat report of /stats and its buttons goes the same
way (a row of kind ``report``): the update only checks the unit and queues it, so that no
update transaction waits for a report (on SQLite, the single writer would), and the job
replaces the "working…" message with the summary and its buttons and sends the chart."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db import Database
from bot.i18n import N_, Translator, translator
from models.org import Unit
from models.stats import ExportStatus, RequestKind, StatsExport
from services import stats
from services.access import Actor, UnitRef, load_actor
from services.errors import InvalidInput, ServiceError
from services.messages import Button, Document, Edit, Keyboard, Photo, Text
from services.outbox import notify, notify_member, store_blob
from services.sql import insert_ignore, skip_locked
from services.stats import (
    LEAGUE_COLUMNS,
    SECTION_LABELS,
    LeagueRow,
    MetricUnit,
    Period,
    Report,
    Section,
    StatsPolicy,
    metrics_of,
)
from services.stats_chart import render_chart

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STALE_RUN = timedelta(minutes=15)
"""A running export not finished after this long (its process died) is taken up again."""
FORMATS: dict[MetricUnit, str] = {
    MetricUnit.number: "0",
    MetricUnit.share: "0.0%",
    MetricUnit.hours: "0.0",
    MetricUnit.days: "0.0",
    MetricUnit.points: "0",
}
BOLD = Font(bold=True)


def _pick(locale: str, zh: str, en: str) -> str:
    return en if locale == "en" else zh


def _cell(sheet: Any, value: Any, fmt: str | None = None, bold: bool = False) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    if fmt:
        cell.number_format = fmt
    if bold:
        cell.font = BOLD
    return cell


def _sheet(
    book: Workbook, title: str, heading: str, headers: Sequence[str], widths: Sequence[float]
) -> Any:
    """A sheet with a title line and a header row, both frozen, and column widths set (in
    write-only mode these must be set before the first row)."""
    sheet: Any = book.create_sheet(title=title[:31])
    sheet.freeze_panes = "C3"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([_cell(sheet, heading, bold=True)])
    sheet.append([_cell(sheet, h, bold=True) for h in headers])
    return sheet


def write_workbook(
    report: Report, league: Sequence[LeagueRow], locale: str, *, minimum: int = 0
) -> bytes:
    """The workbook as bytes: numbers as numbers (shares as fractions formatted as percent,
    an undefined share or median as an empty cell)."""
    t = translator(locale)
    book = Workbook(write_only=True)
    unit_name = f"{report.unit.label(locale)} ({report.unit.code})"
    period = stats.period_label(t, report.period)
    unit_header = _pick(locale, "单位", "Unit")
    code_header = _pick(locale, "代码", "Code")
    total_label = _pick(locale, "合计", "Total")
    own_label = _pick(locale, "（本级）", " (itself)")
    for section in Section:
        metrics = metrics_of(section)
        tags = report.tags if section == Section.visits else ()
        headers = [unit_header, code_header] + [m.label(locale) for m in metrics]
        headers += [
            _pick(locale, f"逾期：{tag.label(locale)}", f"Overdue: {tag.label(locale)}")
            for tag in tags
        ]
        widths = [24.0, 10.0] + [
            max(12.0, min(28.0, len(h) * (2.0 if locale != "en" else 1.1))) for h in headers[2:]
        ]
        title = _pick(locale, *SECTION_LABELS[section])
        sheet = _sheet(book, title, f"{title} · {unit_name} · {period}", headers, widths)
        lines: list[tuple[str, str, stats.Values, dict[str, int]]] = [
            (
                row.unit.label(locale) + (own_label if row.own else ""),
                row.unit.code,
                row.values,
                row.overdue_by_tag,
            )
            for row in report.rows
        ]
        lines.append((total_label, report.unit.code, report.total, report.overdue_by_tag))
        for index, (name, code, values, by_tag) in enumerate(lines):
            last = index == len(lines) - 1
            cells = [_cell(sheet, name, bold=last), _cell(sheet, code, bold=last)]
            cells += [_cell(sheet, values.get(m.key), FORMATS[m.unit], last) for m in metrics]
            cells += [_cell(sheet, by_tag.get(tag.code, 0), "0", last) for tag in tags]
            sheet.append(cells)

    title = _pick(locale, "部门排名", "Departments")
    headers = [_pick(locale, "名次", "Rank"), _pick(locale, "部门", "Department")] + [
        _pick(locale, zh, en) for _, zh, en in LEAGUE_COLUMNS
    ]
    sheet = _sheet(
        book, title, f"{title} · {unit_name} · {period}", headers, [8, 24, 12, 16, 16, 12]
    )
    for row in league:
        sheet.append(
            [
                _cell(sheet, row.rank),
                _cell(sheet, row.name),
                _cell(sheet, row.cases, "0"),
                _cell(sheet, row.report_in_share, "0.0%"),
                _cell(sheet, row.resolved_share, "0.0%"),
                _cell(sheet, row.rework_share, "0.0%"),
            ]
        )
    if minimum:
        sheet.append([_cell(sheet, t("stats.league_unranked", minimum=minimum))])

    title = _pick(locale, "指标说明", "Definitions")
    headers = [
        _pick(locale, "板块", "Section"),
        _pick(locale, "代码", "Key"),
        _pick(locale, "指标", "Figure"),
        _pick(locale, "单位", "Unit"),
        _pick(locale, "汇总方式", "Roll-up"),
    ]
    sheet = _sheet(book, title, f"{title} · docs/metrics.md", headers, [14, 34, 28, 10, 12])
    for metric in stats.METRICS:
        sheet.append(
            [
                _pick(locale, *SECTION_LABELS[metric.section]),
                metric.key,
                metric.label(locale),
                metric.unit.value,
                metric.rollup.value,
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


Progress = Callable[[int, int], Awaitable[None]]
Reading = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def build_export(
    session: AsyncSession,
    unit: UnitRef,
    period: Period,
    now: datetime,
    policy: StatsPolicy,
    locale: str,
    progress: Progress | None = None,
    reading: Reading | None = None,
) -> bytes:
    """Read the report and the league table (no permission check: callers check the unit),
    then write the workbook on a worker thread. ``reading``: see :func:`stats.build_report`."""
    report = await stats.build_report(
        session, unit, period, now, policy, progress=progress, reading=reading
    )
    league = await stats.league(session, unit, period, policy)
    return await asyncio.to_thread(
        write_workbook, report, league, locale, minimum=policy.league_min_cases
    )


def filename(unit: UnitRef, period: Period) -> str:
    return f"stats-{unit.code}-{period.key.replace('..', '_')}.xlsx"


# ---------------------------------------------------------------------------------------------
# Exports asked for in the chat


@dataclass(frozen=True)
class Queued:
    export_id: int | None
    created: bool


async def request_export(
    session: AsyncSession,
    actor: Actor,
    unit_id: int,
    period: Period,
    now: datetime,
    locale: str,
) -> Queued:
    """Queue a workbook for the actor (scope checked here); a second request for the same unit
    and period while the first is still being built changes nothing."""
    unit = await stats.require_unit(session, actor, unit_id)
    if actor.member_id is None:
        raise InvalidInput("core.join_first")
    export_id = await _enqueue(
        session, actor.member_id, unit, period, now, locale, RequestKind.export, None,
        live_key=f"{actor.member_id}:{unit.id}:{period.key}",
    )  # fmt: skip
    if export_id is None:
        return Queued(None, False)
    t = translator(locale)
    rows = await notify_member(
        session,
        actor.member_id,
        Text(_progress_text(t, unit, period, 0, 1)),
        now,
    )
    await session.execute(
        update(StatsExport)
        .where(col(StatsExport.id) == export_id)
        .values(progress_outbox_id=rows[0].id if rows else None)
    )
    return Queued(int(export_id), True)


async def request_report(
    session: AsyncSession,
    actor: Actor,
    unit_id: int,
    period: Period,
    now: datetime,
    locale: str,
    *,
    message_id: int | None = None,
    kind: RequestKind = RequestKind.report,
) -> Queued:
    """Queue the chat report (or the department league table) of a unit and period for the
    actor (scope checked here, so a forged or typed unit outside is refused before anything is
    queued). It replaces the message ``message_id`` (a pressed button's) or, without one, a new
    "working…" message; the same one asked for again while it is being made changes nothing."""
    unit = await stats.require_unit(session, actor, unit_id)
    if actor.member_id is None:
        raise InvalidInput("core.join_first")
    request_id = await _enqueue(
        session, actor.member_id, unit, period, now, locale, kind, message_id,
        live_key=f"{kind.value}:{actor.member_id}:{unit.id}:{period.key}",
    )  # fmt: skip
    if request_id is None:
        return Queued(None, False)
    working = _working_text(translator(locale), unit, period)
    if message_id is not None:
        await notify_member(session, actor.member_id, Edit(working, message_id=message_id), now)
        return Queued(int(request_id), True)
    rows = await notify_member(session, actor.member_id, Text(working), now)
    await session.execute(
        update(StatsExport)
        .where(col(StatsExport.id) == request_id)
        .values(progress_outbox_id=rows[0].id if rows else None)
    )
    return Queued(int(request_id), True)


async def _enqueue(
    session: AsyncSession,
    member_id: int,
    unit: UnitRef,
    period: Period,
    now: datetime,
    locale: str,
    kind: RequestKind,
    message_id: int | None,
    *,
    live_key: str,
) -> int | None:
    """The request's row, or None when the same one (``live_key``) is still being made."""
    request_id = await insert_ignore(
        session,
        StatsExport,
        {
            "member_id": member_id,
            "unit_id": unit.id,
            "period": period.key,
            "locale": locale,
            "kind": kind.value,
            "status": ExportStatus.pending.value,
            "live_key": live_key,
            "message_id": message_id,
            "created_at": now,
        },
        conflict=["live_key"],
        returning="id",
    )
    return None if request_id is None else int(request_id)


def _working_text(t: Translator, unit: UnitRef, period: Period) -> str:
    return t(
        "stats.report_working",
        unit=f"{unit.label(t.locale)} ({unit.code})",
        period=stats.period_label(t, period),
    )


def _progress_text(t: Translator, unit: UnitRef, period: Period, done: int, total: int) -> str:
    return t(
        "stats.export_progress",
        unit=unit.label(t.locale),
        period=stats.period_label(t, period),
        percent=int(done * 100 / total) if total else 0,
    )


async def _claim(session: AsyncSession, now: datetime, limit: int) -> list[StatsExport]:
    due = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(StatsExport)
                    .where(
                        or_(
                            col(StatsExport.status) == ExportStatus.pending.value,
                            (col(StatsExport.status) == ExportStatus.running.value)
                            & (col(StatsExport.started_at) < now - STALE_RUN),
                        )
                    )
                    .order_by(col(StatsExport.created_at), col(StatsExport.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    for export in due:
        export.status = ExportStatus.running
        export.started_at = now
    await session.flush()
    return list(due)


async def _any_due(db: Database, now: datetime) -> bool:
    """Whether there is anything to claim, read without taking the writer (the job ticks
    often, so that a report asked for in the chat comes within a couple of seconds)."""
    async with db.reading() as session:
        found = await session.execute(
            select(col(StatsExport.id))
            .where(
                or_(
                    col(StatsExport.status) == ExportStatus.pending.value,
                    (col(StatsExport.status) == ExportStatus.running.value)
                    & (col(StatsExport.started_at) < now - STALE_RUN),
                )
            )
            .limit(1)
        )
        return found.first() is not None


async def run_exports(db: Database, policy: StatsPolicy, now: datetime, *, limit: int = 2) -> int:
    """The statistics job: claim queued workbooks and chat reports, build each through a
    read-only session (off the event loop on SQLite), and deliver them through the outbox."""
    if not await _any_due(db, now):
        return 0
    async with db.transaction() as session:
        claimed = await _claim(session, now, limit)
    done = 0
    for export in claimed:
        failed = FAILED[RequestKind(export.kind)]
        try:
            if export.kind == RequestKind.report:
                await _run_report(db, export, policy, now)
            elif export.kind == RequestKind.league:
                await _run_league(db, export, policy, now)
            else:
                await _run_one(db, export, policy, now)
            done += 1
        except ServiceError as refused:
            # The person lost the scope since asking: say why, as the update would have.
            await _fail(db, export, now, refused.key, _refusal_text(refused))
        except Exception as error:
            log.exception("statistics %s %s failed", export.kind, export.id)
            await _fail(db, export, now, str(error)[:300], _key_text(failed))
    return done


FAILED: dict[RequestKind, str] = {
    RequestKind.export: N_("stats.export_failed"),
    RequestKind.report: N_("stats.report_failed"),
    RequestKind.league: N_("stats.report_failed"),
}


def _key_text(key: str) -> Callable[[Translator], str]:
    return lambda t: t(key)


def _refusal_text(refused: ServiceError) -> Callable[[Translator], str]:
    return lambda t: t(refused.key, **refused.params)


async def _fail(
    db: Database,
    export: StatsExport,
    now: datetime,
    error: str,
    text: Callable[[Translator], str],
) -> None:
    async with db.transaction() as session:
        await _finish(session, export, now, ExportStatus.failed, error)
        await _edit(session, export, now, text)


async def _edit(
    session: AsyncSession,
    export: StatsExport,
    now: datetime,
    text: Callable[[Translator], str],
    buttons: Callable[[Translator], Keyboard] | None = None,
) -> None:
    """Replace the request's message: the "preparing…"/"working…" one the service queued, or
    the pressed button's."""
    progress_id, message_id = export.progress_outbox_id, export.message_id
    if progress_id is None and message_id is None:
        return

    def render(t: Translator) -> Edit:
        keyboard = buttons(t) if buttons is not None else ()
        return Edit(text(t)[:4000], keyboard, message_id=message_id, outbox_id=progress_id)

    await notify(session, export.member_id, now, render)


async def _finish(
    session: AsyncSession,
    export: StatsExport,
    now: datetime,
    status: ExportStatus,
    error: str | None = None,
) -> None:
    await session.execute(
        update(StatsExport)
        .where(col(StatsExport.id) == export.id)
        .values(status=status.value, done_at=now, live_key=None, error=error)
    )


async def _run_one(db: Database, export: StatsExport, policy: StatsPolicy, now: datetime) -> None:
    period = stats.parse_period(export.period)
    async with db.transaction() as session:
        found = await session.get(Unit, export.unit_id)
        assert found is not None
        unit = UnitRef.of(found)

    async def progress(step: int, steps: int) -> None:
        async with db.transaction() as session:
            await _edit(
                session, export, now, lambda t: _progress_text(t, unit, period, step, steps)
            )

    async with db.reading() as session:
        data = await build_export(
            session, unit, period, now, policy, export.locale, progress, db.reading
        )
    async with db.transaction() as session:
        blob_id = await store_blob(session, data, filename(unit, period), XLSX)
        await notify(
            session,
            export.member_id,
            now,
            lambda t: Document(
                blob_id=blob_id,
                caption=t(
                    "stats.export_caption",
                    unit=unit.label(t.locale),
                    period=stats.period_label(t, period),
                ),
            ),
        )
        await _edit(session, export, now, lambda t: _progress_text(t, unit, period, 1, 1))
        await _finish(session, export, now, ExportStatus.done)


async def _run_report(
    db: Database, request: StatsExport, policy: StatsPolicy, now: datetime
) -> None:
    """The chat report: the scope is checked again (grants may have changed since), the report
    and the trend are read through a read-only session, the chart is drawn on a worker thread,
    and only then a short transaction queues the summary (in place of the request's message)
    and the chart."""
    period = stats.parse_period(request.period)
    async with db.transaction() as session:
        actor = await load_actor(session, request.member_id)
        unit = await stats.require_unit(session, actor, request.unit_id)
        parent = await stats.parent_in_scope(session, actor, unit)
    async with db.reading() as session:
        report = await stats.build_report(session, unit, period, now, policy, reading=db.reading)
        points = [] if report.empty else await stats.trend(session, unit, period, now, policy)
    report = replace(report, parent=parent)
    chart = (
        None
        if report.empty
        else await asyncio.to_thread(render_chart, report, points, request.locale)
    )
    today = now.astimezone(policy.zone).date()
    async with db.transaction() as session:
        await _edit(
            session,
            request,
            now,
            lambda t: stats.summary_text(t, report),
            lambda t: stats.summary_buttons(t, report, today),
        )
        if chart is not None:
            blob_id = await store_blob(session, chart, f"stats-{period.key}.png", "image/png")
            await notify(
                session,
                request.member_id,
                now,
                lambda t: Photo(
                    blob_id=blob_id,
                    caption=t(
                        "stats.chart_caption",
                        unit=unit.label(t.locale),
                        period=stats.period_label(t, period),
                    ),
                ),
            )
        await _finish(session, request, now, ExportStatus.done)


async def _run_league(
    db: Database, request: StatsExport, policy: StatsPolicy, now: datetime
) -> None:
    """The department league table, read like the report, in place of the request's message."""
    period = stats.parse_period(request.period)
    async with db.transaction() as session:
        actor = await load_actor(session, request.member_id)
        unit = await stats.require_unit(session, actor, request.unit_id)
    async with db.reading() as session:
        table = await stats.league(session, unit, period, policy)
    async with db.transaction() as session:
        await _edit(
            session,
            request,
            now,
            lambda t: stats.league_text(t, unit, period, table, policy.league_min_cases),
            lambda t: [[Button(t("stats.back"), payload=f"sx:{unit.id}:{period.key}")]],
        )
        await _finish(session, request, now, ExportStatus.done)
