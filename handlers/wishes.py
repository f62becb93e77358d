"""Micro-wishes in the chat: /wish (post one), /wishes (browse and claim), /mywishes, /skills,
and the buttons every wish notification carries. Permissions are decided in services.wishes;
button payloads are only hints of what the person wants."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.i18n import N_
from handlers.context import Context
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from models.members import Role
from models.wishes import OPEN_STATUSES, ClaimKind, Skill, WishCategory, WishStatus
from services import wishes
from services.errors import InvalidInput
from services.messages import Button, Photo
from services.wishes import CATEGORY_NAMES, SKILL_NAMES, STATUS_NAMES, WishView

router = Router("wishes")

VOLUNTEERS = frozenset({Role.volunteer})
BROWSERS = wishes.BROWSERS
CATEGORY_ROW = 3
HOUR_CHOICES = ("0.5", "1", "2", "3", "4")
DATE_CHOICES = {"week": 7, "month": 30}
_DATE = re.compile(r"^\s*(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?\s*$")


def _category(ctx: Context, category: WishCategory) -> str:
    return ctx.t(CATEGORY_NAMES[category])


def _wish_id(ctx: Context) -> int:
    return ctx.int_arg(1)


# ---------------------------------------------------------------------------------------------
# /wish: post a wish in a few steps


@router.command("wish", description=N_("wishes.cmd_wish"), roles=MEMBERS, order=20)
async def wish(ctx: Context) -> None:
    wishes.resident_unit(ctx.actor)
    await ctx.set_step("wishes.category")
    buttons = [
        ctx.flow_button(_category(ctx, category), "wn_cat", category.value)
        for category in WishCategory
    ]
    rows = [buttons[i : i + CATEGORY_ROW] for i in range(0, len(buttons), CATEGORY_ROW)]
    ctx.reply(ctx.t("wishes.ask_category"), rows)


@router.button("wn_cat", flow=True)
async def choose_category(ctx: Context) -> None:
    try:
        category = WishCategory(ctx.button_args[0] if ctx.button_args else "")
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    await ctx.set_step("wishes.text", {"category": category.value}, keep_nonce=True)
    ctx.edit(ctx.t("wishes.category_chosen", category=_category(ctx, category)))
    await ask_text(ctx)


async def ask_text(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.ask_text", limit=wishes.TEXT_MAX))


@router.step("wishes.text", accepts={Kind.text}, prompt=ask_text)
async def receive_text(ctx: Context) -> None:
    text = ctx.incoming.text.strip()
    if len(text) > wishes.TEXT_MAX:
        raise InvalidInput("wishes.text_too_long", limit=wishes.TEXT_MAX)
    data = _data(ctx) | {"text": text}
    await ctx.set_step("wishes.photo", data, keep_nonce=True)
    await ask_photo(ctx)


async def ask_photo(ctx: Context) -> None:
    ctx.reply(
        ctx.t("wishes.ask_photo"), [[ctx.flow_button(ctx.t("wishes.button_skip"), "wn_nophoto")]]
    )


@router.step("wishes.photo", accepts={Kind.photo}, prompt=ask_photo)
async def receive_photo(ctx: Context) -> None:
    photo = ctx.incoming.photo
    data = _data(ctx) | {"photo": photo.file_id if photo else None}
    await ctx.set_step("wishes.date", data, keep_nonce=True)
    await ask_date(ctx)


@router.button("wn_nophoto", flow=True)
async def skip_photo(ctx: Context) -> None:
    await ctx.set_step("wishes.date", _data(ctx) | {"photo": None}, keep_nonce=True)
    ctx.edit(ctx.t("wishes.photo_skipped"))
    await ask_date(ctx)


async def ask_date(ctx: Context) -> None:
    ctx.reply(
        ctx.t("wishes.ask_date"),
        [
            [
                ctx.flow_button(ctx.t("wishes.date_week"), "wn_date", "week"),
                ctx.flow_button(ctx.t("wishes.date_month"), "wn_date", "month"),
                ctx.flow_button(ctx.t("wishes.date_none"), "wn_date", "none"),
            ]
        ],
    )


def parse_date(text: str, today: date) -> date:
    match = _DATE.match(text)
    if not match:
        raise InvalidInput("wishes.date_unreadable")
    year, month, day = match.groups()
    try:
        parsed = date(int(year) if year else today.year, int(month), int(day))
    except ValueError:
        raise InvalidInput("wishes.date_unreadable") from None
    if not year and parsed < today:
        parsed = parsed.replace(year=today.year + 1)
    return parsed


def _today(ctx: Context) -> date:
    return ctx.now.astimezone(ctx.app.settings.zone).date()


@router.step("wishes.date", accepts={Kind.text}, prompt=ask_date)
async def receive_date(ctx: Context) -> None:
    wished_by = parse_date(ctx.incoming.text, _today(ctx))
    if not _today(ctx) <= wished_by <= _today(ctx) + timedelta(days=wishes.MAX_WISHED_BY_DAYS):
        raise InvalidInput("wishes.date_invalid", days=wishes.MAX_WISHED_BY_DAYS)
    await _after_date(ctx, wished_by)


@router.button("wn_date", flow=True)
async def choose_date(ctx: Context) -> None:
    choice = ctx.button_args[0] if ctx.button_args else ""
    if choice == "none":
        wished_by = None
    elif choice in DATE_CHOICES:
        wished_by = _today(ctx) + timedelta(days=DATE_CHOICES[choice])
    else:
        raise InvalidInput("core.stale_button")
    ctx.edit(ctx.t("wishes.date_chosen", date=wished_by.isoformat() if wished_by else "—"))
    await _after_date(ctx, wished_by)


async def _after_date(ctx: Context, wished_by: date | None) -> None:
    data = _data(ctx) | {"wished_by": wished_by.isoformat() if wished_by else None}
    await ctx.set_step("wishes.address", data, keep_nonce=True)
    await ask_address(ctx)


async def ask_address(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.ask_address", limit=wishes.ADDRESS_MAX))


@router.step("wishes.address", accepts={Kind.text}, prompt=ask_address)
async def receive_address(ctx: Context) -> None:
    address = " ".join(ctx.incoming.text.split())
    if len(address) > wishes.ADDRESS_MAX:
        raise InvalidInput("wishes.address_too_long", limit=wishes.ADDRESS_MAX)
    data = _data(ctx) | {"address": address}
    await ctx.set_step("wishes.confirm", data, keep_nonce=True)
    await show_summary(ctx)


async def show_summary(ctx: Context) -> None:
    data = _data(ctx)
    category = WishCategory(data.get("category", WishCategory.other.value))
    phone = ctx.member.phone if ctx.member else None
    lines = [
        ctx.t("wishes.summary_title"),
        ctx.t("wishes.summary_category", category=_category(ctx, category)),
        ctx.t("wishes.line_text", text=data.get("text", "")),
        ctx.t("wishes.summary_date", date=data.get("wished_by") or "—"),
        ctx.t("wishes.summary_photo") if data.get("photo") else ctx.t("wishes.summary_no_photo"),
        ctx.t("wishes.summary_address", address=data.get("address", "")),
        ctx.t("wishes.summary_phone", phone=phone) if phone else ctx.t("wishes.summary_no_phone"),
        "",
        ctx.t("wishes.summary_privacy"),
    ]
    ctx.reply(
        "\n".join(lines),
        [
            [
                ctx.flow_button(ctx.t("wishes.button_submit"), "wn_submit"),
                ctx.flow_button(ctx.t("wishes.button_cancel"), "wn_cancel"),
            ]
        ],
    )


@router.step("wishes.confirm", accepts={Kind.text}, prompt=show_summary)
async def waiting_for_confirmation(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.press_submit"))
    await show_summary(ctx)


@router.button("wn_cancel", flow=True)
async def cancel_wish(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("wishes.cancelled"))


@router.button("wn_submit", flow=True)
async def submit_wish(ctx: Context) -> None:
    data = _data(ctx)
    if ctx.state is None or ctx.state.step != "wishes.confirm":
        raise InvalidInput("core.stale_button")
    wished_by = date.fromisoformat(data["wished_by"]) if data.get("wished_by") else None
    view = await wishes.create_wish(
        ctx.session,
        ctx.actor,
        now=ctx.now,
        category=data.get("category", ""),
        text=data.get("text", ""),
        address=data.get("address", ""),
        photo_file_id=data.get("photo"),
        wished_by=wished_by,
        zone=ctx.app.settings.zone,
    )
    await ctx.clear_step()
    ctx.edit(ctx.t("wishes.submitted", wish=wishes.title(ctx.t, view)))
    ctx.answer(ctx.t("wishes.submitted_short"))


def _data(ctx: Context) -> dict[str, str]:
    return dict(ctx.state.data) if ctx.state else {}


# ---------------------------------------------------------------------------------------------
# /wishes: browse open wishes in one's scope, by category and skills, paged


@router.command("wishes", description=N_("wishes.cmd_wishes"), roles=BROWSERS, order=21)
async def browse(ctx: Context) -> None:
    await _list(ctx, None, False, 0, new=True)


@router.button("wl")
async def list_button(ctx: Context) -> None:
    args = ctx.button_args
    if len(args) != 3:
        raise InvalidInput("core.stale_button")
    if args[0] == "pending":
        await _pending(ctx, ctx.int_arg(2))
        return
    category = None
    if args[0] != "-":
        try:
            category = WishCategory(args[0])
        except ValueError:
            raise InvalidInput("core.stale_button") from None
    await _list(ctx, category, args[1] == "1", ctx.int_arg(2), new=False)


def _line(ctx: Context, view: WishView) -> str:
    parts = [wishes.title(ctx.t, view), view.unit.label(ctx.t.locale)]
    if view.wished_by:
        parts.append(ctx.t("wishes.by_date", date=view.wished_by.isoformat()))
    if view.status == WishStatus.released:
        parts.append(ctx.t(STATUS_NAMES[view.status]))
    return " · ".join(parts)


async def _list(
    ctx: Context, category: WishCategory | None, by_skills: bool, page: int, *, new: bool
) -> None:
    result = await wishes.open_wishes(
        ctx.session, ctx.actor, category=category, by_skills=by_skills, page=page
    )
    heading = ctx.t(
        "wishes.list_title",
        filter=_category(ctx, category) if category else ctx.t("wishes.filter_all"),
        total=result.total,
    )
    if by_skills:
        heading += "\n" + ctx.t("wishes.filter_by_skills")
    lines = [heading, ""]
    if not result.wishes:
        empty = N_("wishes.list_empty")
        if by_skills and not await wishes.my_skills(ctx.session, ctx.member_id):
            empty = N_("wishes.list_no_skills")
        lines.append(ctx.t(empty))
    lines += [_line(ctx, view) for view in result.wishes]
    if result.pages > 1:
        lines += ["", ctx.t("wishes.page", page=result.page + 1, pages=result.pages)]
    cat = category.value if category else "-"
    skills = "1" if by_skills else "0"
    rows: list[list[Button]] = [
        [Button(ctx.t("wishes.button_view", id=v.id), payload=f"wish:view:{v.id}")]
        for v in result.wishes
    ]
    nav = []
    if result.page > 0:
        nav.append(Button("◀", payload=f"wl:{cat}:{skills}:{result.page - 1}"))
    if result.page < result.pages - 1:
        nav.append(Button("▶", payload=f"wl:{cat}:{skills}:{result.page + 1}"))
    if nav:
        rows.append(nav)
    filters = [
        Button(
            ("✓ " if category is None else "") + ctx.t("wishes.filter_all"),
            payload=f"wl:-:{skills}:0",
        ),
        Button(
            ("✓ " if by_skills else "") + ctx.t("wishes.filter_skills"),
            payload=f"wl:{cat}:{'0' if by_skills else '1'}:0",
        ),
    ]
    rows.append(filters)
    categories = [
        Button(
            ("✓ " if c == category else "") + _category(ctx, c), payload=f"wl:{c.value}:{skills}:0"
        )
        for c in WishCategory
    ]
    rows += [categories[i : i + CATEGORY_ROW] for i in range(0, len(categories), CATEGORY_ROW)]
    if ctx.actor.scopes(wishes.APPROVERS):
        pending = await wishes.pending_wishes(ctx.session, ctx.actor)
        rows.append(
            [Button(ctx.t("wishes.button_pending", count=pending.total), payload="wl:pending:0:0")]
        )
    text = "\n".join(lines)
    if new:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


async def _pending(ctx: Context, page: int) -> None:
    result = await wishes.pending_wishes(ctx.session, ctx.actor, page=page)
    lines = [ctx.t("wishes.pending_title", total=result.total), ""]
    if not result.wishes:
        lines.append(ctx.t("wishes.pending_empty"))
    lines += [_line(ctx, view) for view in result.wishes]
    rows = [
        [Button(ctx.t("wishes.button_view", id=v.id), payload=f"wish:view:{v.id}")]
        for v in result.wishes
    ]
    nav = []
    if result.page > 0:
        nav.append(Button("◀", payload=f"wl:pending:0:{result.page - 1}"))
    if result.page < result.pages - 1:
        nav.append(Button("▶", payload=f"wl:pending:0:{result.page + 1}"))
    if nav:
        rows.append(nav)
    rows.append([Button(ctx.t("wishes.button_back_to_list"), payload="wl:-:0:0")])
    ctx.edit("\n".join(lines), rows)


# ---------------------------------------------------------------------------------------------
# One wish: what the person may do with it


async def show_wish(ctx: Context, wish_id: int) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, wish_id)
    text = wishes.describe(ctx.t, view, ctx.app.settings.zone)
    me = ctx.actor.member_id
    if (
        view.claimer_id is not None
        and me == view.claimer_id
        and view.status
        in (
            WishStatus.claimed,
            WishStatus.fulfilled,
        )
    ):
        contact = await wishes.contact_of(ctx.session, ctx.actor, wish_id)
        text += "\n\n" + wishes.contact_text(ctx.t, contact)
    if view.photo_file_id:
        ctx.send(Photo(file_id=view.photo_file_id, caption=wishes.title(ctx.t, view)))
    ctx.reply(text, _actions(ctx, view))


def _actions(ctx: Context, view: WishView) -> list[list[Button]]:
    me = ctx.actor.member_id
    own = me is not None and me in (view.wisher_id, view.created_by)
    approver = ctx.actor.can(wishes.APPROVERS, view.unit)
    coordinator = ctx.actor.can({Role.coordinator}, view.unit)

    def button(key: str, action: str) -> Button:
        return Button(ctx.t(key), payload=f"wish:{action}:{view.id}")

    row: list[Button] = []
    if view.status == WishStatus.submitted and approver and not own:
        row += [button(N_("wishes.button_approve"), "ok"), button(N_("wishes.button_reject"), "no")]
    if view.status in OPEN_STATUSES:
        if not own and ctx.actor.can(wishes.CLAIMERS, view.unit):
            row.append(button(N_("wishes.button_claim"), "claim"))
        if approver and not own:
            row.append(button(N_("wishes.button_take_down"), "no"))
    if view.status in (WishStatus.submitted, *OPEN_STATUSES) and coordinator and not own:
        row.append(button(N_("wishes.button_dispatch"), "send"))
    if view.status == WishStatus.claimed and me == view.claimer_id:
        row += [
            button(N_("wishes.button_fulfil"), "done"),
            button(N_("wishes.button_give_back"), "give"),
        ]
    if view.status == WishStatus.fulfilled:
        confirmer = me is not None and me in wishes.confirmers(view)
        overdue = wishes.may_confirm_for_wisher(view, ctx.now)
        if confirmer or (coordinator and overdue):
            row.append(button(N_("wishes.button_confirm"), "conf"))
        if confirmer:
            row.append(button(N_("wishes.button_dispute"), "disp"))
    if own and view.status in (WishStatus.submitted, WishStatus.claimed, *OPEN_STATUSES):
        row.append(button(N_("wishes.button_withdraw"), "wd"))
    return [row[i : i + 2] for i in range(0, len(row), 2)]


@router.button("wish")
async def wish_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    handler = _ACTIONS.get(action)
    if handler is None:
        raise InvalidInput("core.stale_button")
    await handler(ctx)


async def _view(ctx: Context) -> None:
    await show_wish(ctx, _wish_id(ctx))


async def _approve(ctx: Context) -> None:
    view = await wishes.approve_wish(ctx.session, ctx.actor, _wish_id(ctx), ctx.now)
    ctx.answer(ctx.t("wishes.approved_short"))
    ctx.edit(ctx.t("wishes.approved", wish=wishes.title(ctx.t, view)))


async def _reject(ctx: Context) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, _wish_id(ctx))
    if not ctx.actor.can(wishes.APPROVERS, view.unit):
        ctx.actor.refuse("reject wish", view.unit)
    await ctx.set_step("wishes.reject_reason", {"wish": str(view.id)})
    await ask_reject_reason(ctx)


async def ask_reject_reason(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.ask_reject_reason", id=_data(ctx).get("wish", "?")))


@router.step("wishes.reject_reason", accepts={Kind.text}, prompt=ask_reject_reason)
async def receive_reject_reason(ctx: Context) -> None:
    wish_id = int(_data(ctx).get("wish", "0"))
    view = await wishes.reject_wish(ctx.session, ctx.actor, wish_id, ctx.incoming.text, ctx.now)
    await ctx.clear_step()
    ctx.reply(ctx.t("wishes.rejected", wish=wishes.title(ctx.t, view)))


async def _claim(ctx: Context) -> None:
    claimed = await wishes.claim_wish(
        ctx.session, ctx.actor, _wish_id(ctx), ctx.now, claim_days=ctx.app.settings.wish_claim_days
    )
    view = claimed.wish
    ctx.answer(ctx.t("wishes.claimed_short"))
    stale = view.claim_stale_at.astimezone(ctx.app.settings.zone) if view.claim_stale_at else None
    ctx.reply(
        ctx.t(
            "wishes.claimed",
            wish=wishes.title(ctx.t, view),
            days=ctx.app.settings.wish_claim_days,
            date=stale.strftime("%Y-%m-%d") if stale else "—",
        )
        + "\n\n"
        + wishes.contact_text(ctx.t, claimed.contact),
        _actions(ctx, view),
    )


async def _give_back(ctx: Context) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, _wish_id(ctx))
    ctx.reply(
        ctx.t("wishes.confirm_give_back", wish=wishes.title(ctx.t, view)),
        [[Button(ctx.t("wishes.button_give_back_sure"), payload=f"wish:give2:{view.id}")]],
    )


async def _give_back_sure(ctx: Context) -> None:
    view = await wishes.release_claim(ctx.session, ctx.actor, _wish_id(ctx), ctx.now)
    ctx.answer(ctx.t("wishes.given_back_short"))
    ctx.edit(ctx.t("wishes.given_back", wish=wishes.title(ctx.t, view)))


async def _withdraw(ctx: Context) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, _wish_id(ctx))
    ctx.reply(
        ctx.t("wishes.confirm_withdraw", wish=wishes.title(ctx.t, view)),
        [[Button(ctx.t("wishes.button_withdraw_sure"), payload=f"wish:wd2:{view.id}")]],
    )


async def _withdraw_sure(ctx: Context) -> None:
    view = await wishes.withdraw_wish(ctx.session, ctx.actor, _wish_id(ctx), ctx.now)
    ctx.answer(ctx.t("wishes.withdrawn_short"))
    ctx.edit(ctx.t("wishes.withdrawn", wish=wishes.title(ctx.t, view)))


async def _confirm(ctx: Context) -> None:
    result = await wishes.confirm_wish(
        ctx.session, ctx.actor, _wish_id(ctx), ctx.now, zone=ctx.app.settings.zone
    )
    ctx.answer(ctx.t("wishes.confirmed_short"))
    ctx.edit(
        ctx.t(
            "wishes.confirmed",
            wish=wishes.title(ctx.t, result.wish),
            name=result.wish.claimer_name or "—",
        )
    )


async def _dispute(ctx: Context) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, _wish_id(ctx))
    await ctx.set_step("wishes.dispute_reason", {"wish": str(view.id)})
    await ask_dispute_reason(ctx)


async def ask_dispute_reason(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.ask_dispute_reason", id=_data(ctx).get("wish", "?")))


@router.step("wishes.dispute_reason", accepts={Kind.text}, prompt=ask_dispute_reason)
async def receive_dispute_reason(ctx: Context) -> None:
    wish_id = int(_data(ctx).get("wish", "0"))
    view = await wishes.dispute_wish(
        ctx.session,
        ctx.actor,
        wish_id,
        ctx.incoming.text,
        ctx.now,
        claim_days=ctx.app.settings.wish_claim_days,
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("wishes.disputed", wish=wishes.title(ctx.t, view)))


async def _dispatch(ctx: Context) -> None:
    wish_id = _wish_id(ctx)
    liaisons = await wishes.department_liaisons(ctx.session, ctx.actor, wish_id)
    if not liaisons:
        raise InvalidInput("wishes.no_liaisons")
    view = await wishes.get_wish(ctx.session, ctx.actor, wish_id)
    ctx.reply(
        ctx.t("wishes.choose_liaison", wish=wishes.title(ctx.t, view)),
        [[Button(m.name, payload=f"wish:to:{wish_id}:{m.id}")] for m in liaisons[:10]],
    )


async def _dispatch_to(ctx: Context) -> None:
    view = await wishes.dispatch_wish(
        ctx.session,
        ctx.actor,
        _wish_id(ctx),
        ctx.int_arg(2),
        ctx.now,
        claim_days=ctx.app.settings.wish_claim_days,
        zone=ctx.app.settings.zone,
    )
    ctx.answer(ctx.t("wishes.dispatched_short"))
    ctx.edit(ctx.t("wishes.dispatched", wish=wishes.title(ctx.t, view), name=view.claimer_name))


# -- fulfilment: a note (required), a photo (optional), the hours spent ---------------------


async def _fulfil(ctx: Context) -> None:
    view = await wishes.get_wish(ctx.session, ctx.actor, _wish_id(ctx))
    if view.claimer_id != ctx.actor.member_id or view.status != WishStatus.claimed:
        if view.status == WishStatus.fulfilled:
            raise InvalidInput("wishes.already_fulfilled")
        ctx.actor.refuse("fulfil wish", view.unit)
    data = {"wish": str(view.id), "kind": (view.claim_kind or ClaimKind.volunteer).value}
    await ctx.set_step("wishes.fulfil_note", data)
    await ask_fulfil_note(ctx)


async def ask_fulfil_note(ctx: Context) -> None:
    ctx.reply(ctx.t("wishes.ask_fulfil_note", id=_data(ctx).get("wish", "?")))


@router.step("wishes.fulfil_note", accepts={Kind.text, Kind.photo}, prompt=ask_fulfil_note)
async def receive_fulfil_note(ctx: Context) -> None:
    data = _data(ctx)
    if ctx.incoming.photo is not None:
        data["photo"] = ctx.incoming.photo.file_id
    note = ctx.incoming.text.strip()
    if len(note) > wishes.NOTE_MAX:
        raise InvalidInput("wishes.note_too_long", limit=wishes.NOTE_MAX)
    if not note:
        await ctx.set_step("wishes.fulfil_note", data, keep_nonce=True)
        ctx.reply(ctx.t("wishes.photo_received_ask_note"))
        return
    data["note"] = note
    if data.get("kind") == ClaimKind.dispatch.value:
        await _finish_fulfil(ctx, data, None)
        return
    await ctx.set_step("wishes.fulfil_hours", data, keep_nonce=True)
    await ask_hours(ctx)


async def ask_hours(ctx: Context) -> None:
    buttons = [ctx.flow_button(f"{h} h", "wn_hours", h) for h in HOUR_CHOICES]
    ctx.reply(
        ctx.t("wishes.ask_hours"),
        [buttons, [ctx.flow_button(ctx.t("wishes.button_no_hours"), "wn_hours", "0")]],
    )


@router.step("wishes.fulfil_hours", accepts={Kind.text}, prompt=ask_hours)
async def receive_hours(ctx: Context) -> None:
    await _finish_fulfil(ctx, _data(ctx), ctx.incoming.text.strip().lower().removesuffix("h"))


@router.button("wn_hours", flow=True)
async def choose_hours(ctx: Context) -> None:
    choice = ctx.button_args[0] if ctx.button_args else ""
    if choice != "0" and choice not in HOUR_CHOICES:
        raise InvalidInput("core.stale_button")
    await _finish_fulfil(ctx, _data(ctx), None if choice == "0" else choice)


async def _finish_fulfil(ctx: Context, data: dict[str, str], hours: str | None) -> None:
    view = await wishes.fulfil_wish(
        ctx.session,
        ctx.actor,
        int(data.get("wish", "0")),
        note=data.get("note", ""),
        now=ctx.now,
        confirm_days=ctx.app.settings.wish_confirm_days,
        photo_file_id=data.get("photo"),
        hours=hours,
    )
    await ctx.clear_step()
    ctx.reply(
        ctx.t(
            "wishes.fulfilled",
            wish=wishes.title(ctx.t, view),
            days=ctx.app.settings.wish_confirm_days,
        )
    )


_ACTIONS = {
    "view": _view,
    "ok": _approve,
    "no": _reject,
    "claim": _claim,
    "give": _give_back,
    "give2": _give_back_sure,
    "wd": _withdraw,
    "wd2": _withdraw_sure,
    "conf": _confirm,
    "disp": _dispute,
    "send": _dispatch,
    "to": _dispatch_to,
    "done": _fulfil,
}


# ---------------------------------------------------------------------------------------------
# /mywishes and /skills


@router.command("mywishes", description=N_("wishes.cmd_mywishes"), roles=MEMBERS, order=22)
async def my_wishes(ctx: Context) -> None:
    posted, claimed = await wishes.my_wishes(ctx.session, ctx.actor)
    lines = [ctx.t("wishes.mine_posted")]
    lines += [f"• {wishes.title(ctx.t, v)} — {ctx.t(STATUS_NAMES[v.status])}" for v in posted] or [
        ctx.t("wishes.mine_none")
    ]
    lines += ["", ctx.t("wishes.mine_claimed")]
    lines += [f"• {wishes.title(ctx.t, v)} — {ctx.t(STATUS_NAMES[v.status])}" for v in claimed] or [
        ctx.t("wishes.mine_none")
    ]
    shown = {v.id: v for v in [*claimed, *posted]}
    buttons = [
        Button(ctx.t("wishes.button_view", id=wish_id), payload=f"wish:view:{wish_id}")
        for wish_id in list(shown)[:8]
    ]
    ctx.reply("\n".join(lines), [buttons[i : i + 2] for i in range(0, len(buttons), 2)])


@router.command("skills", description=N_("wishes.cmd_skills"), roles=VOLUNTEERS, order=23)
async def skills(ctx: Context) -> None:
    await _skills(ctx, new=True)


async def _skills(ctx: Context, *, new: bool) -> None:
    mine = await wishes.my_skills(ctx.session, ctx.member_id)
    buttons = [
        Button(("✅ " if s in mine else "") + ctx.t(SKILL_NAMES[s]), payload=f"skill:{s.value}")
        for s in Skill
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    names = "、".join(ctx.t(SKILL_NAMES[s]) for s in Skill if s in mine) or "—"
    text = ctx.t("wishes.skills", skills=names)
    if new:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


@router.button("skill")
async def toggle_skill(ctx: Context) -> None:
    await wishes.toggle_skill(
        ctx.session, ctx.actor, ctx.button_args[0] if ctx.button_args else "", ctx.now
    )
    await _skills(ctx, new=False)


# ---------------------------------------------------------------------------------------------
# Hand-offs: a wish posted for a household from a visit's needs, and its category


HANDOFF_CATEGORY = "whc"


def show_handoff(ctx: Context, view: WishView, created: bool) -> None:
    key = N_("wishes.handoff_posted") if created else N_("wishes.handoff_already")
    _handoff_message(ctx, view, key, edit=False)


def _handoff_message(ctx: Context, view: WishView, key: str, *, edit: bool) -> None:
    text = ctx.t(key, id=view.id, category=_category(ctx, view.category))
    buttons: list[list[Button]] = []
    if view.status == WishStatus.submitted:
        text += "\n" + ctx.t("wishes.handoff_category_prompt")
        choices = [
            Button(
                ("✓ " if category == view.category else "") + _category(ctx, category),
                payload=f"{HANDOFF_CATEGORY}:{view.id}:{category.value}",
            )
            for category in WishCategory
        ]
        buttons = [choices[i : i + CATEGORY_ROW] for i in range(0, len(choices), CATEGORY_ROW)]
    buttons.append(
        [Button(ctx.t("wishes.button_view", id=view.id), payload=f"wish:view:{view.id}")]
    )
    if edit:
        ctx.edit(text, buttons)
    else:
        ctx.reply(text, buttons)


@router.button(HANDOFF_CATEGORY)
async def handoff_category(ctx: Context) -> None:
    value = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    view = await wishes.set_category(ctx.session, ctx.actor, ctx.int_arg(0), value, ctx.now)
    _handoff_message(ctx, view, N_("wishes.category_changed"), edit=True)
