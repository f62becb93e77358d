"""Logging a door-knocking visit (from the daily nudge, a household card or /myhouseholds) and
/coverage for grids and communities."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_
from handlers import issues as issue_handlers
from handlers import wishes as wish_handlers
from handlers.context import Context
from handlers.households import OUTCOMES, policy_of, unit_label
from handlers.router import Router
from handlers.types import Kind
from models.visits import VisitOutcome
from services import households as hh
from services import visits
from services.errors import InvalidInput
from services.issues import IssuePolicy
from services.messages import Button
from services.points import format_hours

router = Router("visits")

OUTCOME_ROWS = (
    (VisitOutcome.met, VisitOutcome.not_home),
    (VisitOutcome.refused, VisitOutcome.moved),
    (VisitOutcome.other,),
)
DETAILS = {
    "note": N_("visits.add_note"),
    "photo": N_("visits.add_photo"),
    "needs": N_("visits.add_needs"),
}
CHILDREN_SHOWN = 10


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


def _outcome_buttons(ctx: Context, household_id: int) -> list[list[Button]]:
    return [
        [Button(ctx.t(OUTCOMES[o]), payload=f"vo:{household_id}:{o.value}") for o in row]
        for row in OUTCOME_ROWS
    ]


@router.button("visit")
async def start_visit(ctx: Context) -> None:
    """The question at the door. Its buttons carry the household, not a flow: they still work
    after a long talk on the doorstep, and a second tap is caught by the visit log itself."""
    household_id = ctx.int_arg(0)
    view = await hh.get_household(ctx.session, ctx.actor, household_id)
    if view.archived:
        raise InvalidInput("visits.household_archived")
    ctx.reply(
        ctx.t("visits.ask_outcome", place=view.place(ctx.t.locale)),
        _outcome_buttons(ctx, household_id),
    )


@router.button("vo")
async def choose_outcome(ctx: Context) -> None:
    household_id = ctx.int_arg(0)
    value = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    if value not in set(VisitOutcome):
        raise InvalidInput("core.stale_button")
    outcome = VisitOutcome(value)
    if outcome == VisitOutcome.moved:
        view = await hh.get_household(ctx.session, ctx.actor, household_id)
        ctx.edit(
            ctx.t("visits.moved_confirm", place=view.place(ctx.t.locale)),
            [
                [
                    Button(ctx.t("visits.moved_yes"), payload=f"vo_mv:{household_id}"),
                    Button(ctx.t("visits.moved_back"), payload=f"vo_back:{household_id}"),
                ]
            ],
        )
        return
    await _log(ctx, household_id, outcome)


@router.button("vo_mv")
async def confirm_moved(ctx: Context) -> None:
    await _log(ctx, ctx.int_arg(0), VisitOutcome.moved)


@router.button("vo_back")
async def back_to_outcomes(ctx: Context) -> None:
    household_id = ctx.int_arg(0)
    view = await hh.get_household(ctx.session, ctx.actor, household_id)
    ctx.edit(
        ctx.t("visits.ask_outcome", place=view.place(ctx.t.locale)),
        _outcome_buttons(ctx, household_id),
    )


async def _log(ctx: Context, household_id: int, outcome: VisitOutcome) -> None:
    result = await visits.log_visit(
        ctx.session, ctx.actor, household_id, outcome, ctx.now, policy_of(ctx)
    )
    t = ctx.t
    place = result.household.place(t.locale)
    label = t(OUTCOMES[result.visit.outcome])
    at = result.visit.visited_at.astimezone(policy_of(ctx).zone).strftime("%H:%M")
    if not result.repeated:
        lines = [t("visits.logged", place=place, outcome=label)]
    elif result.changed:
        lines = [t("visits.repeat_changed", place=place, time=at, outcome=label)]
    else:
        lines = [t("visits.repeat_same", place=place, time=at)]
    if result.visit.outcome == VisitOutcome.moved:
        lines.append(t("visits.archived_now"))
    elif result.visit.outcome.counts:
        lines.append(t("visits.next_due", date=policy_of(ctx).local_date(result.household.due_at)))
    else:
        lines.append(t("visits.still_due"))
    if result.points > 0 or result.minutes > 0:
        lines.append(
            t("visits.earned", points=f"+{result.points}", hours=format_hours(result.minutes))
        )
    elif result.points < 0 or result.minutes < 0:
        lines.append(
            t(
                "visits.earned_back",
                points=str(result.points),
                hours=format_hours(-result.minutes),
            )
        )
    lines.append(t("visits.more_prompt"))
    ctx.edit("\n".join(lines), _more_buttons(ctx, result.visit.id, bool(result.visit.needs)))


def _more_buttons(ctx: Context, visit_id: int, needs: bool = False) -> list[list[Button]]:
    details = [
        Button(ctx.t(label), payload=f"vm:{visit_id}:{name}") for name, label in DETAILS.items()
    ]
    rows = [details]
    if needs:
        rows.append(
            [
                Button(ctx.t("visits.to_issue"), payload=f"vni:{visit_id}"),
                Button(ctx.t("visits.to_wish"), payload=f"vnw:{visit_id}"),
            ]
        )
    rows.append([Button(ctx.t("visits.done"), payload=f"vm:{visit_id}:done")])
    return rows


@router.button("vni")
async def needs_to_issue(ctx: Context) -> None:
    """One tap: the needs found become an issue report on the household's building."""
    view, created = await visits.needs_to_issue(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, IssuePolicy.from_settings(ctx.app.settings)
    )
    await issue_handlers.show_handoff(ctx, view, created)


@router.button("vnw")
async def needs_to_wish(ctx: Context) -> None:
    """One tap: the needs found become a wish on the household's behalf."""
    view, created = await visits.needs_to_wish(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, policy_of(ctx)
    )
    wish_handlers.show_handoff(ctx, view, created)


@router.button("vm")
async def more(ctx: Context) -> None:
    visit_id = ctx.int_arg(0)
    what = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    if what == "done":
        visit = await visits.get_visit(ctx.session, ctx.actor, visit_id)
        if ctx.state is not None and ctx.state.step.startswith("visits."):
            await ctx.clear_step()
        ctx.edit(ctx.t("visits.saved", outcome=ctx.t(OUTCOMES[visit.outcome])))
        return
    if what not in DETAILS:
        raise InvalidInput("core.stale_button")
    await visits.get_visit(ctx.session, ctx.actor, visit_id)
    await ctx.set_step(f"visits.{what}", {"visit": visit_id})
    await PROMPTS[what](ctx)


async def ask_note(ctx: Context) -> None:
    ctx.reply(ctx.t("visits.ask_note", limit=visits.NOTE_MAX))


async def ask_photo(ctx: Context) -> None:
    ctx.reply(ctx.t("visits.ask_photo"))


async def ask_needs(ctx: Context) -> None:
    ctx.reply(ctx.t("visits.ask_needs", limit=visits.NEEDS_MAX))


PROMPTS = {"note": ask_note, "photo": ask_photo, "needs": ask_needs}


async def _back_to_more(ctx: Context, key: str, needs: bool = False) -> None:
    visit_id = int(_data(ctx).get("visit", 0))
    await ctx.clear_step()
    ctx.reply(ctx.t(key) + "\n" + ctx.t("visits.more_prompt"), _more_buttons(ctx, visit_id, needs))


@router.step("visits.note", accepts={Kind.text}, prompt=ask_note)
async def receive_note(ctx: Context) -> None:
    visit_id = int(_data(ctx).get("visit", 0))
    view = await visits.set_note(ctx.session, ctx.actor, visit_id, ctx.incoming.text, ctx.now)
    await _back_to_more(ctx, N_("visits.note_saved"), bool(view.needs))


@router.step("visits.photo", accepts={Kind.photo}, prompt=ask_photo)
async def receive_photo(ctx: Context) -> None:
    visit_id = int(_data(ctx).get("visit", 0))
    file_id = ctx.incoming.photo.file_id if ctx.incoming.photo else ""
    view = await visits.set_photo(ctx.session, ctx.actor, visit_id, file_id, ctx.now)
    await _back_to_more(ctx, N_("visits.photo_saved"), bool(view.needs))


@router.step("visits.needs", accepts={Kind.text}, prompt=ask_needs)
async def receive_needs(ctx: Context) -> None:
    visit_id = int(_data(ctx).get("visit", 0))
    await visits.set_needs(ctx.session, ctx.actor, visit_id, ctx.incoming.text, ctx.now)
    await _back_to_more(ctx, N_("visits.needs_saved"), True)


# ---------------------------------------------------------------------------------------------
# /coverage


@router.command("coverage", description=N_("visits.cmd_coverage"), roles=visits.COVERAGE_ROLES)
async def coverage_command(ctx: Context) -> None:
    scopes = visits.coverage_scopes(ctx.actor)
    if len(scopes) == 1:
        await _report(ctx, scopes[0].id)
        return
    ctx.reply(
        ctx.t("visits.coverage_choose"),
        [[Button(unit_label(ctx, unit), payload=f"cov:{unit.id}")] for unit in scopes[:20]],
    )


@router.button("cov")
async def coverage_button(ctx: Context) -> None:
    await _report(ctx, ctx.int_arg(0))


async def _report(ctx: Context, unit_id: int) -> None:
    report = await visits.coverage(ctx.session, ctx.actor, unit_id, ctx.now, policy_of(ctx))
    worst = sorted(report.children, key=lambda pair: (pair[1].share, pair[0].code))
    rows = [
        [Button(f"{unit_label(ctx, unit)} · {counts.share:.0%}"[:60], payload=f"cov:{unit.id}")]
        for unit, counts in worst[:CHILDREN_SHOWN]
    ]
    ctx.reply(visits.coverage_text(ctx.t, report), rows)
