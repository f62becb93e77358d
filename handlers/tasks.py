"""Tasks in the chat: /task (post a task with slots), /emergency (an urgent call with shifts),
/tasks (open tasks and my slots), the task card with "take" / "give back" buttons, and the
organiser's takers list with check-in and check-out.

Every permission is checked again in :mod:`services.tasks`; buttons only show what a person is
likely allowed to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.i18n import N_
from handlers.context import Context
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from services import tasks
from services.errors import InvalidInput, PermissionDenied
from services.messages import Button
from services.points import format_hours
from services.tasks import (
    EMERGENCY_ROLES,
    ORGANISER_ROLES,
    EmergencyDraft,
    TaskDraft,
    TaskRules,
    TaskView,
    format_span,
    take_buttons,
    task_text,
)

router = Router("tasks")

TASK_STEPS = ("title", "start", "end", "place", "slots")
EMERGENCY_STEPS = ("title", "place", "start", "shifts", "slots", "widen")
QUESTIONS = {
    "title": N_("tasks.ask_title"),
    "start": N_("tasks.ask_start"),
    "end": N_("tasks.ask_end"),
    "place": N_("tasks.ask_place"),
    "slots": N_("tasks.ask_slots"),
    "shifts": N_("tasks.ask_shifts"),
    "widen": N_("tasks.ask_widen"),
}
WIDEN_CHOICES = (15, 30, 60)


def rules(ctx: Context) -> TaskRules:
    return TaskRules.of(ctx.app.settings)


def _span(ctx: Context, start: datetime, end: datetime) -> str:
    return format_span(ctx.t, start, end, ctx.app.settings.zone)


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


# ---------------------------------------------------------------------------------------------
# /task and /emergency: a few questions, a preview, confirm


@router.command("task", description=N_("tasks.cmd_task"), roles=ORGANISER_ROLES, order=64)
async def new_task(ctx: Context) -> None:
    await _begin(ctx, emergency=False)


@router.command("emergency", description=N_("tasks.cmd_emergency"), roles=EMERGENCY_ROLES, order=65)
async def new_emergency(ctx: Context) -> None:
    await _begin(ctx, emergency=True)


async def _begin(ctx: Context, *, emergency: bool) -> None:
    units = tasks.organiser_units(ctx.actor, emergency=emergency)
    if not units:
        raise PermissionDenied()
    kind = "emergency" if emergency else "task"
    if len(units) == 1:
        await _ask_step(ctx, {"kind": kind, "unit": units[0].id}, "title", new_flow=True)
        return
    await ctx.set_step("tasks.unit", {"kind": kind})
    buttons = [[ctx.flow_button(u.label(ctx.t.locale), "tk_unit", u.id)] for u in units[:20]]
    ctx.reply(ctx.t("tasks.ask_unit"), buttons)


@router.button("tk_unit", flow=True)
async def unit_chosen(ctx: Context) -> None:
    data = _data(ctx)
    if "kind" not in data:
        raise InvalidInput("core.stale_button")
    data["unit"] = ctx.int_arg(0)
    await _ask_step(ctx, data, "title")


def _steps(data: dict[str, Any]) -> tuple[str, ...]:
    return EMERGENCY_STEPS if data.get("kind") == "emergency" else TASK_STEPS


async def _ask_step(
    ctx: Context, data: dict[str, Any], step: str, *, new_flow: bool = False
) -> None:
    await ctx.set_step(f"tasks.new_{step}", data, keep_nonce=not new_flow)
    await ask(ctx)


async def ask(ctx: Context) -> None:
    """Ask the current step's question (again)."""
    step = (ctx.state.step if ctx.state else "").removeprefix("tasks.new_")
    zone = ctx.app.settings.zone
    example = f"{(ctx.now + timedelta(days=1)).astimezone(zone):%Y-%m-%d} 09:00"
    emergency = _data(ctx).get("kind") == "emergency"
    key = N_("tasks.ask_slots_per_shift") if step == "slots" and emergency else QUESTIONS[step]
    low, high = tasks.SLOTS_RANGE
    text = ctx.t(key, example=example, low=low, high=high, limit=tasks.TITLE_MAX)
    buttons: list[list[Button]] = []
    if step == "widen" and ctx.state:
        buttons = [
            [ctx.flow_button(ctx.t("tasks.minutes", n=n), "tk_widen", n) for n in WIDEN_CHOICES]
        ]
    ctx.reply(text, buttons)


async def _next(ctx: Context, data: dict[str, Any], done: str) -> None:
    steps = _steps(data)
    following = steps.index(done) + 1
    if following < len(steps):
        await _ask_step(ctx, data, steps[following])
    else:
        await _preview(ctx, data)


@router.step("tasks.new_title", accepts={Kind.text}, prompt=ask)
async def receive_title(ctx: Context) -> None:
    data = _data(ctx) | {"title": tasks.clean_title(ctx.incoming.text)}
    await _next(ctx, data, "title")


@router.step("tasks.new_place", accepts={Kind.text}, prompt=ask)
async def receive_place(ctx: Context) -> None:
    data = _data(ctx) | {"place": tasks.clean_place(ctx.incoming.text)}
    await _next(ctx, data, "place")


@router.step("tasks.new_start", accepts={Kind.text}, prompt=ask)
async def receive_start(ctx: Context) -> None:
    start = tasks.parse_start(ctx.incoming.text, ctx.app.settings.zone, ctx.now)
    await _next(ctx, _data(ctx) | {"start": start.isoformat()}, "start")


@router.step("tasks.new_end", accepts={Kind.text}, prompt=ask)
async def receive_end(ctx: Context) -> None:
    data = _data(ctx)
    start = _moment(data, "start")
    end = tasks.parse_end(ctx.incoming.text, start, ctx.app.settings.zone, ctx.now)
    await _next(ctx, data | {"end": end.isoformat()}, "end")


@router.step("tasks.new_slots", accepts={Kind.text}, prompt=ask)
async def receive_slots(ctx: Context) -> None:
    await _next(ctx, _data(ctx) | {"slots": tasks.parse_slots(ctx.incoming.text)}, "slots")


@router.step("tasks.new_shifts", accepts={Kind.text}, prompt=ask)
async def receive_shifts(ctx: Context) -> None:
    count, hours = tasks.parse_shifts(ctx.incoming.text)
    await _next(ctx, _data(ctx) | {"shifts": count, "hours": hours}, "shifts")


@router.step("tasks.new_widen", accepts={Kind.text}, prompt=ask)
async def receive_widen(ctx: Context) -> None:
    await _next(ctx, _data(ctx) | {"widen": tasks.parse_widen(ctx.incoming.text)}, "widen")


@router.button("tk_widen", flow=True)
async def widen_chosen(ctx: Context) -> None:
    minutes = ctx.int_arg(0)
    await _next(ctx, _data(ctx) | {"widen": tasks.parse_widen(str(minutes))}, "widen")


def _moment(data: dict[str, Any], key: str) -> datetime:
    try:
        return datetime.fromisoformat(str(data[key]))
    except (KeyError, ValueError):
        raise InvalidInput("core.stale_button") from None


def _task_draft(data: dict[str, Any]) -> TaskDraft:
    try:
        return TaskDraft(
            title=str(data["title"]),
            place=str(data["place"]),
            starts_at=_moment(data, "start"),
            ends_at=_moment(data, "end"),
            slots=int(data["slots"]),
            unit_id=int(data["unit"]),
        )
    except (KeyError, ValueError):
        raise InvalidInput("core.stale_button") from None


def _emergency_draft(data: dict[str, Any]) -> EmergencyDraft:
    try:
        return EmergencyDraft(
            title=str(data["title"]),
            place=str(data["place"]),
            starts_at=_moment(data, "start"),
            shifts=int(data["shifts"]),
            shift_hours=int(data["hours"]),
            slots=int(data["slots"]),
            widen_minutes=int(data["widen"]),
            unit_id=int(data["unit"]),
        )
    except (KeyError, ValueError):
        raise InvalidInput("core.stale_button") from None


async def _preview(ctx: Context, data: dict[str, Any]) -> None:
    emergency = data.get("kind") == "emergency"
    reach = await tasks.preview_count(ctx.session, ctx.actor, int(data["unit"]), emergency)
    await ctx.set_step("tasks.confirm", data, keep_nonce=True)
    if emergency:
        draft = _emergency_draft(data)
        length = timedelta(hours=draft.shift_hours)
        text = ctx.t(
            "tasks.preview_emergency",
            title=draft.title,
            place=draft.place,
            when=_span(ctx, draft.starts_at, draft.starts_at + length * draft.shifts),
            shifts=draft.shifts,
            hours=draft.shift_hours,
            slots=draft.slots,
            widen=draft.widen_minutes,
            count=reach,
        )
    else:
        plain = _task_draft(data)
        text = ctx.t(
            "tasks.preview",
            title=plain.title,
            place=plain.place,
            when=_span(ctx, plain.starts_at, plain.ends_at),
            slots=plain.slots,
            count=reach,
        )
    ctx.reply(
        text,
        [
            [
                ctx.flow_button(ctx.t("tasks.confirm_send"), "tk_ok"),
                ctx.flow_button(ctx.t("tasks.confirm_drop"), "tk_drop"),
            ]
        ],
    )


@router.step("tasks.confirm", accepts={Kind.text})
async def waiting_for_confirm(ctx: Context) -> None:
    ctx.reply(ctx.t("tasks.press_confirm"))


@router.button("tk_ok", flow=True)
async def confirmed(ctx: Context) -> None:
    data = _data(ctx)
    if data.get("kind") == "emergency":
        task = await tasks.create_emergency(
            ctx.session, ctx.actor, _emergency_draft(data), ctx.now, rules(ctx)
        )
    else:
        task = await tasks.create_task(
            ctx.session, ctx.actor, _task_draft(data), ctx.now, rules(ctx)
        )
    await ctx.clear_step()
    key = N_("tasks.sent_emergency") if task.urgent else N_("tasks.sent")
    ctx.edit(ctx.t(key, title=task.title, count=task.called))
    await show_card(ctx, task.id)


@router.button("tk_drop", flow=True)
async def dropped(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("tasks.dropped"))


# ---------------------------------------------------------------------------------------------
# The task card, taking and giving back


def card_buttons(ctx: Context, card: tasks.TaskCard) -> list[list[Button]]:
    task = card.task
    rows = take_buttons(ctx.t, task, ctx.now, card.mine)
    if card.manage:
        for shift in task.shifts:
            label = (
                ctx.t("tasks.takers_button")
                if len(task.shifts) == 1
                else ctx.t("tasks.takers_shift_button", n=shift.number)
            )
            rows.append([Button(label, payload=f"tk_takers:{shift.id}")])
        if not task.cancelled and ctx.now < task.ends_at:
            rows.append([Button(ctx.t("tasks.cancel_button"), payload=f"tk_cancel:{task.id}")])
    return rows


async def show_card(ctx: Context, task_id: int, *, edit: bool = False) -> None:
    card = await tasks.task_card(ctx.session, ctx.actor, task_id)
    text = task_text(ctx.t, card.task, ctx.app.settings.zone)
    if card.mine:
        text += "\n" + ctx.t("tasks.card_mine")
    if card.delivery is not None:
        d = card.delivery
        text += "\n" + ctx.t(
            "tasks.card_delivery",
            called=card.task.called,
            queued=d.queued,
            sent=d.sent,
            failed=d.failed,
            blocked=d.blocked,
        )
    if edit:
        ctx.edit(text, card_buttons(ctx, card))
    else:
        ctx.reply(text, card_buttons(ctx, card))


@router.button("tk_card")
async def card_button(ctx: Context) -> None:
    await show_card(ctx, ctx.int_arg(0))


@router.button("tk_take")
async def take_button(ctx: Context) -> None:
    result = await tasks.take(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    shift = result.shift
    ctx.answer(ctx.t("tasks.taken", taken=shift.taken, slots=shift.slots))
    await show_card(ctx, result.task.id, edit=True)


@router.button("tk_back")
async def give_back_button(ctx: Context) -> None:
    result = await tasks.give_back(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now)
    ctx.answer(ctx.t("tasks.given_back"))
    await show_card(ctx, result.task.id, edit=True)


# ---------------------------------------------------------------------------------------------
# /tasks


@router.command("tasks", description=N_("tasks.cmd_tasks"), roles=MEMBERS, order=63)
async def list_tasks(ctx: Context) -> None:
    found = await tasks.listing(ctx.session, ctx.actor, ctx.now)
    if not found.open and not found.mine:
        ctx.reply(ctx.t("tasks.none"))
        return
    lines: list[str] = []
    buttons: list[Button] = []
    if found.mine:
        lines.append(ctx.t("tasks.mine_title"))
        for task, shift in found.mine:
            lines.append(
                ctx.t(
                    "tasks.mine_line",
                    title=task.title,
                    when=_span(ctx, shift.starts_at, shift.ends_at),
                    place=task.place,
                )
            )
    if found.open:
        lines.append(ctx.t("tasks.open_title"))
        for number, task in enumerate(found.open, start=1):
            lines.append(
                ctx.t(
                    "tasks.open_line",
                    n=number,
                    title=task.title,
                    when=_span(ctx, task.starts_at, task.ends_at),
                    taken=task.taken,
                    slots=task.slots,
                )
            )
            buttons.append(
                Button(ctx.t("tasks.open_button", n=number), payload=f"tk_card:{task.id}")
            )
    ctx.reply("\n".join(lines), [buttons[i : i + 3] for i in range(0, len(buttons), 3)])


# ---------------------------------------------------------------------------------------------
# Organiser: takers, check-in, check-out, cancel


async def show_takers(ctx: Context, shift_id: int, *, edit: bool = False) -> None:
    task, shift, people = await tasks.takers(ctx.session, ctx.actor, shift_id)
    zone = ctx.app.settings.zone
    lines = [
        ctx.t(
            "tasks.takers_title",
            title=task.title,
            when=_span(ctx, shift.starts_at, shift.ends_at),
            taken=shift.taken,
            slots=shift.slots,
        )
    ]
    rows: list[list[Button]] = []
    if not people:
        lines.append(ctx.t("tasks.takers_none"))
    for number, person in enumerate(people, start=1):
        if person.checked_out_at is not None:
            state = ctx.t(
                "tasks.state_out",
                hours=format_hours(person.minutes or 0),
            )
        elif person.checked_in_at is not None:
            state = ctx.t("tasks.state_in", at=f"{person.checked_in_at.astimezone(zone):%H:%M}")
        elif person.no_show_at is not None:
            state = ctx.t("tasks.state_no_show")
        else:
            state = ctx.t("tasks.state_taken")
        lines.append(ctx.t("tasks.taker_line", n=number, name=person.name, state=state))
        if task.cancelled:
            continue
        if person.no_show_at is not None:
            rows.append(
                [
                    Button(
                        ctx.t("tasks.undo_no_show_button", name=person.name[:20]),
                        payload=f"tk_unshow:{person.take_id}",
                    )
                ]
            )
        elif person.checked_in_at is None and ctx.now < shift.ends_at:
            rows.append(
                [
                    Button(
                        ctx.t("tasks.checkin_button", name=person.name[:20]),
                        payload=f"tk_in:{person.take_id}",
                    )
                ]
            )
        elif person.checked_out_at is None:
            rows.append(
                [
                    Button(
                        ctx.t("tasks.checkout_button", name=person.name[:20]),
                        payload=f"tk_out:{person.take_id}",
                    )
                ]
            )
    rows.append([Button(ctx.t("tasks.back_to_card"), payload=f"tk_card:{task.id}")])
    if edit:
        ctx.edit("\n".join(lines), rows)
    else:
        ctx.reply("\n".join(lines), rows)


@router.button("tk_takers")
async def takers_button(ctx: Context) -> None:
    await show_takers(ctx, ctx.int_arg(0))


@router.button("tk_in")
async def checkin_button(ctx: Context) -> None:
    result, fresh = await tasks.check_in(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now)
    key = N_("tasks.checked_in") if fresh else N_("tasks.already_checked_in")
    ctx.answer(ctx.t(key, name=result.taker.name))
    await show_takers(ctx, result.shift.id, edit=True)


@router.button("tk_out")
async def checkout_button(ctx: Context) -> None:
    result, fresh = await tasks.check_out(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx)
    )
    if fresh:
        ctx.answer(
            ctx.t(
                "tasks.checked_out",
                name=result.taker.name,
                hours=format_hours(result.taker.minutes or 0),
            )
        )
    else:
        ctx.answer(ctx.t("tasks.already_checked_out", name=result.taker.name))
    await show_takers(ctx, result.shift.id, edit=True)


@router.button("tk_unshow")
async def undo_no_show_button(ctx: Context) -> None:
    result, fresh = await tasks.undo_no_show(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx)
    )
    key = N_("tasks.no_show_undone") if fresh else N_("tasks.not_no_show")
    ctx.answer(ctx.t(key, name=result.taker.name))
    await show_takers(ctx, result.shift.id, edit=True)


@router.button("tk_cancel")
async def cancel_button(ctx: Context) -> None:
    card = await tasks.task_card(ctx.session, ctx.actor, ctx.int_arg(0))
    if not card.manage:
        raise PermissionDenied()
    await ctx.set_step("tasks.cancel", {"task": card.task.id})
    ctx.reply(
        ctx.t("tasks.cancel_confirm", title=card.task.title, taken=card.task.taken),
        [
            [
                ctx.flow_button(ctx.t("tasks.cancel_yes"), "tk_cancel_ok"),
                ctx.flow_button(ctx.t("tasks.keep"), "tk_keep"),
            ]
        ],
    )


@router.button("tk_cancel_ok", flow=True)
async def cancel_confirmed(ctx: Context) -> None:
    task_id = int(_data(ctx).get("task") or 0)
    task: TaskView = await tasks.cancel(ctx.session, ctx.actor, task_id, ctx.now)
    await ctx.clear_step()
    ctx.edit(ctx.t("tasks.cancelled_done", title=task.title))


@router.button("tk_keep", flow=True)
async def keep(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("tasks.nothing_changed"))
