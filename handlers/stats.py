"""/stats: the one-table report for a unit and a period as a short text and a chart, with
buttons to go down to a child, up to the parent (within one's scope), to another period, to the
department league table and to the Excel export (/export). The report and the workbook are made
by the statistics job, off the person's update (services/stats_export.py)."""

from __future__ import annotations

from bot.i18n import N_
from handlers.context import Context
from handlers.router import Router
from models.stats import RequestKind
from services import stats
from services import stats_export as exports
from services.access import UnitRef
from services.errors import InvalidInput
from services.messages import Button
from services.stats import Period, PeriodKind

router = Router("stats")


def today(ctx: Context) -> Period:
    local = ctx.now.astimezone(ctx.app.settings.zone).date()
    return stats.current_period(PeriodKind.month, local)


async def parse_args(ctx: Context) -> tuple[UnitRef | None, Period]:
    """``/stats [CODE] [PERIOD]`` in any order; without a code the person's own scope."""
    unit: UnitRef | None = None
    period: Period | None = None
    for token in ctx.incoming.args.split():
        if token[:1].isdigit():
            period = stats.parse_period(token)
        else:
            found = await stats.unit_by_code(ctx.session, token)
            unit = await stats.require_unit(ctx.session, ctx.actor, found.id)
    return unit, period or today(ctx)


@router.command("stats", description=N_("stats.cmd_stats"), roles=stats.STATS_ROLES)
async def stats_command(ctx: Context) -> None:
    unit, period = await parse_args(ctx)
    if unit is None:
        scopes = stats.stats_scopes(ctx.actor)
        if not scopes:
            raise InvalidInput("stats.no_scope")
        if len(scopes) > 1:
            ctx.reply(
                ctx.t("stats.choose_unit"),
                [[Button(_label(ctx, u), payload=f"sx:{u.id}:{period.key}")] for u in scopes[:20]],
            )
            return
        unit = scopes[0]
    await show(ctx, unit.id, period, edit=False)


def _label(ctx: Context, unit: UnitRef) -> str:
    return stats.unit_button_label(ctx.t, unit)


def _period_arg(ctx: Context, index: int) -> Period:
    try:
        return stats.parse_period(ctx.button_args[index])
    except (IndexError, InvalidInput):
        raise InvalidInput("core.stale_button") from None


@router.button("sx")
async def stats_button(ctx: Context) -> None:
    await show(ctx, ctx.int_arg(0), _period_arg(ctx, 1), edit=True)


async def show(
    ctx: Context,
    unit_id: int,
    period: Period,
    *,
    edit: bool,
    kind: RequestKind = RequestKind.report,
) -> None:
    """The report (or the league table) is made by the statistics job (jobs/stats.py), off this
    update: the unit is checked here, a "working…" text replaces the pressed message (or comes
    as a new one), and the job puts the result with its buttons there (and sends the chart)."""
    queued = await exports.request_report(
        ctx.session,
        ctx.actor,
        unit_id,
        period,
        ctx.now,
        ctx.t.locale,
        message_id=ctx.incoming.message_id if edit else None,
        kind=kind,
    )
    if not queued.created:
        if edit:
            ctx.answer(ctx.t("stats.report_already"))
        else:
            ctx.reply(ctx.t("stats.report_already"))


@router.button("sxl")
async def league_button(ctx: Context) -> None:
    await show(ctx, ctx.int_arg(0), _period_arg(ctx, 1), edit=True, kind=RequestKind.league)


# ---------------------------------------------------------------------------------------------
# /export


@router.command("export", description=N_("stats.cmd_export"), roles=stats.STATS_ROLES)
async def export_command(ctx: Context) -> None:
    unit, period = await parse_args(ctx)
    if unit is None:
        scopes = stats.stats_scopes(ctx.actor)
        if not scopes:
            raise InvalidInput("stats.no_scope")
        unit = scopes[0]
    await _export(ctx, unit.id, period)


@router.button("sxe")
async def export_button(ctx: Context) -> None:
    await _export(ctx, ctx.int_arg(0), _period_arg(ctx, 1))


async def _export(ctx: Context, unit_id: int, period: Period) -> None:
    """The workbook is built by the export job (jobs/stats.py), off this update: it shows its
    progress by editing one message and then sends the file."""
    queued = await exports.request_export(
        ctx.session, ctx.actor, unit_id, period, ctx.now, ctx.t.locale
    )
    if not queued.created:
        ctx.answer(ctx.t("stats.export_already"))
        return
    ctx.answer(ctx.t("stats.export_queued"))
