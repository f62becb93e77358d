"""Issue reports: /report (a multi-step flow), /queue and the issue card with its action
buttons, /issue (timeline), /board (公示反馈), /categories (coordinators: categories and
deadlines), and the rating buttons of the answer-back. Every rule is checked in
``services.issues``; this module only asks, shows and passes on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.i18n import N_
from handlers.context import Context
from handlers.router import Router
from handlers.types import Kind
from models.issues import DueKind, EventKind, IssuePriority, IssueSource, Rating
from models.members import Role
from services import issues, visits
from services.errors import InvalidInput
from services.issues import (
    ISSUE_BUTTON,
    RATE_BUTTON,
    RATING_CODES,
    RATING_KEYS,
    STATUS_KEYS,
    TIER_KEYS,
    Access,
    IssueCard,
    IssueLine,
    IssuePolicy,
    IssueView,
    fmt_time,
    handler_label,
    place_label,
    shorten,
)
from services.messages import Button, Photo, RequestButton

router = Router("issues")

HANDLERS = frozenset(
    {Role.grid_worker, Role.grid_leader, Role.coordinator, Role.department, Role.admin}
)
MANAGERS = frozenset({Role.coordinator, Role.admin})
SOURCE_KEYS = {
    IssueSource.visit: N_("issues.source_visit"),
    IssueSource.meeting: N_("issues.source_meeting"),
}
COMMUNITIES_PER_PAGE = 8
CATEGORIES_PER_ROW = 2

EVENT_KEYS = {
    EventKind.reported: N_("issues.event_reported"),
    EventKind.accepted: N_("issues.event_accepted"),
    EventKind.assigned: N_("issues.event_assigned"),
    EventKind.started: N_("issues.event_started"),
    EventKind.resolved: N_("issues.event_resolved"),
    EventKind.rated: N_("issues.event_rated"),
    EventKind.reopened: N_("issues.event_reopened"),
    EventKind.closed: N_("issues.event_closed"),
    EventKind.rejected: N_("issues.event_rejected"),
    EventKind.duplicate: N_("issues.event_duplicate"),
    EventKind.escalated: N_("issues.event_escalated"),
    EventKind.whistled: N_("issues.event_whistled"),
    EventKind.reported_in: N_("issues.event_reported_in"),
    EventKind.overdue: N_("issues.event_overdue"),
    EventKind.reminded: N_("issues.event_reminded"),
    EventKind.priority: N_("issues.event_priority"),
    EventKind.followed: N_("issues.event_followed"),
    EventKind.category: N_("issues.event_category"),
}

TAB_KEYS = {
    "new": N_("issues.tab_new"),
    "mine": N_("issues.tab_mine"),
    "overdue": N_("issues.tab_overdue"),
}

ACTION_KEYS = {
    "acc": N_("issues.button_accept"),
    "take": N_("issues.button_take"),
    "asg": N_("issues.button_assign"),
    "start": N_("issues.button_start"),
    "res": N_("issues.button_resolve"),
    "rej": N_("issues.button_reject"),
    "dup": N_("issues.button_duplicate"),
    "whs": N_("issues.button_whistle"),
    "rin": N_("issues.button_report_in"),
}
ACTION_ORDER = ("acc", "take", "start", "res", "asg", "whs", "rin", "rej", "dup")


def policy(ctx: Context) -> IssuePolicy:
    return IssuePolicy.from_settings(ctx.app.settings)


def when(ctx: Context, moment: datetime | None) -> str:
    return fmt_time(ctx.t, moment, ctx.app.settings.zone)


def payload(action: str, *args: object) -> str:
    return ":".join([ISSUE_BUTTON, action, *(str(a) for a in args)])


# ---------------------------------------------------------------------------------------------
# /report


async def answered_by_buttons(ctx: Context) -> None:
    """Steps answered with buttons accept no message (the dispatcher explains and asks
    again with the step's prompt), so this is never called."""


@router.command("report", description=N_("cmd.report"), order=10)
async def report(ctx: Context) -> None:
    if issues.may_report_for_others(ctx.actor):
        await ctx.set_step("issues.behalf", {})
        await ask_behalf(ctx)
        return
    await ctx.set_step("issues.category", {})
    await ask_category(ctx)


async def ask_behalf(ctx: Context) -> None:
    ctx.reply(
        ctx.t("issues.ask_behalf"),
        [
            [ctx.flow_button(ctx.t("issues.behalf_self"), "irb", 0)],
            [ctx.flow_button(ctx.t("issues.behalf_other"), "irb", 1)],
        ],
    )


router.step("issues.behalf", accepts=(), prompt=ask_behalf)(answered_by_buttons)


@router.button("irb", flow=True)
async def choose_behalf(ctx: Context) -> None:
    if ctx.int_arg(0) == 1:
        await ctx.set_step("issues.behalf_who", {}, keep_nonce=True)
        await ask_behalf_who(ctx)
        return
    await ctx.set_step("issues.category", {}, keep_nonce=True)
    await ask_category(ctx, edit=True)


async def ask_behalf_who(ctx: Context) -> None:
    ctx.edit(ctx.t("issues.ask_behalf_who", limit=issues.BEHALF_NOTE_MAX))


@router.step("issues.behalf_who", accepts={Kind.text, Kind.contact}, prompt=ask_behalf_who)
async def receive_behalf_who(ctx: Context) -> None:
    data = _data(ctx)
    raw = ctx.incoming.contact.phone if ctx.incoming.contact else ctx.incoming.text
    found = await issues.resident_by_phone(ctx.session, ctx.actor, raw)
    if found is not None:
        data["who"] = found.id
        ctx.reply(ctx.t("issues.behalf_member", name=found.name))
    else:
        note = " ".join(raw.split())
        if len(note) > issues.BEHALF_NOTE_MAX:
            raise InvalidInput("issues.behalf_too_long", limit=issues.BEHALF_NOTE_MAX)
        data["note"] = note
        ctx.reply(ctx.t("issues.behalf_note_saved", note=note))
    await ctx.set_step("issues.category", data, keep_nonce=True)
    await ask_category(ctx)


async def ask_category(ctx: Context, *, edit: bool = False) -> None:
    home = await issues.home_place(ctx.session, ctx.actor)
    categories = await issues.categories_for(ctx.session, home.unit if home else None)
    buttons = [ctx.flow_button(c.label(ctx.t.locale), "irc", c.id) for c in categories]
    rows = [buttons[i : i + CATEGORIES_PER_ROW] for i in range(0, len(buttons), CATEGORIES_PER_ROW)]
    if edit:
        ctx.edit(ctx.t("issues.ask_category"), rows)
    else:
        ctx.reply(ctx.t("issues.ask_category"), rows)


router.step("issues.category", accepts=(), prompt=ask_category)(answered_by_buttons)


@router.button("irc", flow=True)
async def choose_category(ctx: Context) -> None:
    category_id = ctx.int_arg(0)
    home = await issues.home_place(ctx.session, ctx.actor)
    categories = {
        c.id: c for c in await issues.categories_for(ctx.session, home.unit if home else None)
    }
    category = categories.get(category_id)
    if category is None:
        raise InvalidInput("issues.category_unknown")
    data = _data(ctx)
    data["cat"] = category.id
    await ctx.set_step("issues.description", data, keep_nonce=True)
    ctx.edit(ctx.t("issues.category_chosen", category=category.label(ctx.t.locale)))
    await ask_description(ctx)


async def ask_description(ctx: Context) -> None:
    ctx.reply(ctx.t("issues.ask_description", limit=issues.DESCRIPTION_MAX))


@router.step("issues.description", accepts={Kind.text, Kind.photo}, prompt=ask_description)
async def receive_description(ctx: Context) -> None:
    data = _data(ctx)
    if ctx.incoming.kind == Kind.photo:
        _add_photo(ctx, data)
        if not ctx.incoming.text.strip():
            await ctx.set_step("issues.description", data, keep_nonce=True)
            ctx.reply(ctx.t("issues.photo_kept_need_text"))
            return
    data["desc"] = issues.clean_description(ctx.incoming.text)
    await ctx.set_step("issues.photos", data, keep_nonce=True)
    await ask_photos(ctx)


def _add_photo(ctx: Context, data: dict[str, Any]) -> None:
    photo = ctx.incoming.photo
    assert photo is not None
    if photo.size is not None and photo.size > issues.MAX_PHOTO_BYTES:
        raise InvalidInput("issues.photo_too_large", limit=issues.MAX_PHOTO_BYTES // (1024 * 1024))
    photos = list(data.get("photos") or [])
    if len(photos) >= issues.MAX_PHOTOS:
        raise InvalidInput("issues.too_many_photos", limit=issues.MAX_PHOTOS)
    photos.append(photo.file_id)
    data["photos"] = photos


async def ask_photos(ctx: Context) -> None:
    count = len(_data(ctx).get("photos") or [])
    key = N_("issues.ask_more_photos") if count else N_("issues.ask_photos")
    label = N_("issues.photos_done") if count else N_("issues.photos_skip")
    ctx.reply(
        ctx.t(key, limit=issues.MAX_PHOTOS, count=count),
        [[ctx.flow_button(ctx.t(label), "irp")]],
    )


@router.step("issues.photos", accepts={Kind.photo, Kind.document}, prompt=ask_photos)
async def receive_photo(ctx: Context) -> None:
    if ctx.incoming.kind == Kind.document:
        ctx.reply(ctx.t("issues.document_not_photo"))
        await ask_photos(ctx)
        return
    data = _data(ctx)
    _add_photo(ctx, data)
    await ctx.set_step("issues.photos", data, keep_nonce=True)
    if len(data["photos"]) >= issues.MAX_PHOTOS:
        await _to_location(ctx, data)
        return
    ctx.reply(
        ctx.t("issues.photo_received", count=len(data["photos"]), limit=issues.MAX_PHOTOS),
        [[ctx.flow_button(ctx.t("issues.photos_done"), "irp")]],
    )


@router.button("irp", flow=True)
async def photos_done(ctx: Context) -> None:
    await _to_location(ctx, _data(ctx))


async def _to_location(ctx: Context, data: dict[str, Any]) -> None:
    await ctx.set_step("issues.location", data, keep_nonce=True)
    await ask_location(ctx)


async def ask_location(ctx: Context) -> None:
    ctx.reply(
        ctx.t("issues.ask_location", limit=issues.ADDRESS_MAX),
        request=(
            (RequestButton(ctx.t("issues.send_location"), "location"),),
            (RequestButton(ctx.t("issues.skip_location"), "text"),),
        ),
    )


@router.step("issues.location", accepts={Kind.location, Kind.text}, prompt=ask_location)
async def receive_location(ctx: Context) -> None:
    data = _data(ctx)
    location = ctx.incoming.location
    if location is not None:
        data["lat"], data["lon"] = location.latitude, location.longitude
    elif ctx.incoming.text.strip() != ctx.t("issues.skip_location"):
        data["addr"] = issues.clean_address(ctx.incoming.text)
    place = await issues.locate(
        ctx.session,
        ctx.actor,
        policy(ctx),
        latitude=data.get("lat"),
        longitude=data.get("lon"),
    )
    if place is None:
        key = N_("issues.location_far") if location is not None else N_("issues.place_unknown")
        ctx.reply(ctx.t(key), remove_keyboard=True)
        await ctx.set_step("issues.community", data, keep_nonce=True)
        await ask_community(ctx)
        return
    data["unit"] = place.unit.id
    ctx.reply(
        ctx.t("issues.place_found", place=place.unit.label(ctx.t.locale)), remove_keyboard=True
    )
    await _check_duplicates(ctx, data)


async def ask_community(ctx: Context, page: int = 0) -> None:
    units = await issues.communities(ctx.session)
    pages = max(1, (len(units) + COMMUNITIES_PER_PAGE - 1) // COMMUNITIES_PER_PAGE)
    page = max(0, min(page, pages - 1))
    shown = units[page * COMMUNITIES_PER_PAGE : (page + 1) * COMMUNITIES_PER_PAGE]
    rows = [[ctx.flow_button(u.label(ctx.t.locale), "irm", u.id)] for u in shown]
    nav = []
    if page > 0:
        nav.append(ctx.flow_button("◀", "irmp", page - 1))
    if page < pages - 1:
        nav.append(ctx.flow_button("▶", "irmp", page + 1))
    if nav:
        rows.append(nav)
    text = ctx.t("issues.ask_community")
    if ctx.incoming.kind == Kind.button:
        ctx.edit(text, rows)
    else:
        ctx.reply(text, rows)


router.step("issues.community", accepts=(), prompt=ask_community)(answered_by_buttons)


@router.button("irmp", flow=True)
async def community_page(ctx: Context) -> None:
    await ask_community(ctx, ctx.int_arg(0))


@router.button("irm", flow=True)
async def choose_community(ctx: Context) -> None:
    data = _data(ctx)
    place = await issues.locate(ctx.session, ctx.actor, policy(ctx), unit_id=ctx.int_arg(0))
    assert place is not None
    data["unit"] = place.unit.id
    ctx.edit(ctx.t("issues.place_found", place=place.unit.label(ctx.t.locale)))
    await _check_duplicates(ctx, data)


async def _check_duplicates(ctx: Context, data: dict[str, Any]) -> None:
    place = await issues.place_of(ctx.session, int(data["unit"]))
    similar = await issues.similar_open_issues(
        ctx.session,
        place,
        int(data["cat"]),
        ctx.now,
        policy(ctx),
        latitude=data.get("lat"),
        longitude=data.get("lon"),
    )
    if not similar:
        await ctx.set_step("issues.confirm", data, keep_nonce=True)
        await ask_confirm(ctx)
        return
    data["similar"] = [line.id for line in similar]
    await ctx.set_step("issues.duplicates", data, keep_nonce=True)
    await ask_duplicates(ctx)


async def ask_duplicates(ctx: Context) -> None:
    data = _data(ctx)
    lines = [ctx.t("issues.similar_found")]
    rows = []
    for card in await issues.issue_lines(ctx.session, data.get("similar") or []):
        lines.append(
            f"• {card.number} · {card.category.label(ctx.t.locale)} · "
            f"{ctx.t(STATUS_KEYS[card.status])}\n  {shorten(card.description)}"
        )
        rows.append([ctx.flow_button(ctx.t("issues.same_as", number=card.number), "ird", card.id)])
    rows.append([ctx.flow_button(ctx.t("issues.not_same"), "irn")])
    ctx.reply("\n".join(lines), rows)


router.step("issues.duplicates", accepts=(), prompt=ask_duplicates)(answered_by_buttons)


@router.button("ird", flow=True)
async def same_as(ctx: Context) -> None:
    issue_id = ctx.int_arg(0)
    if issue_id not in (_data(ctx).get("similar") or []):
        raise InvalidInput("core.stale_button")
    view = await issues.follow(ctx.session, ctx.actor, issue_id, ctx.now)
    await ctx.clear_step()
    ctx.edit(ctx.t("issues.following", number=view.number))


@router.button("irn", flow=True)
async def not_same(ctx: Context) -> None:
    data = _data(ctx)
    data.pop("similar", None)
    await ctx.set_step("issues.confirm", data, keep_nonce=True)
    await ask_confirm(ctx)


async def ask_confirm(ctx: Context) -> None:
    data = _data(ctx)
    home = await issues.place_of(ctx.session, int(data["unit"]))
    categories = {c.id: c for c in await issues.categories_for(ctx.session, home.unit)}
    category = categories.get(int(data["cat"]))
    lines = [
        ctx.t("issues.confirm_title"),
        ctx.t(
            "issues.field_category",
            value=category.label(ctx.t.locale) if category else "?",
        ),
        ctx.t("issues.field_place", value=home.unit.label(ctx.t.locale)),
    ]
    if data.get("addr"):
        lines.append(ctx.t("issues.field_address", value=data["addr"]))
    if data.get("lat") is not None:
        lines.append(ctx.t("issues.field_location_shared"))
    lines.append(ctx.t("issues.field_description", value=data.get("desc", "")))
    if data.get("photos"):
        lines.append(ctx.t("issues.photo_count", count=len(data["photos"])))
    if data.get("note"):
        lines.append(ctx.t("issues.field_behalf", value=data["note"]))
    lines += ["", ctx.t("issues.confirm_hint")]
    ctx.reply(
        "\n".join(lines),
        [
            [ctx.flow_button(ctx.t("issues.submit"), "irs", 0)],
            [ctx.flow_button(ctx.t("issues.submit_anonymous"), "irs", 1)],
            [ctx.flow_button(ctx.t("issues.discard"), "irx")],
        ],
    )


router.step("issues.confirm", accepts=(), prompt=ask_confirm)(answered_by_buttons)


@router.button("irs", flow=True)
async def submit(ctx: Context) -> None:
    data = _data(ctx)
    if "cat" not in data or "desc" not in data or "unit" not in data:
        raise InvalidInput("core.stale_button")
    view = await issues.create_report(
        ctx.session,
        ctx.actor,
        issues.NewReport(
            category=int(data["cat"]),
            description=str(data["desc"]),
            unit_id=int(data["unit"]),
            latitude=data.get("lat"),
            longitude=data.get("lon"),
            address=data.get("addr"),
            photos=list(data.get("photos") or []),
            anonymous=ctx.int_arg(0) == 1,
            on_behalf_of=data.get("who"),
            on_behalf_note=data.get("note"),
        ),
        ctx.now,
        policy(ctx),
    )
    await ctx.clear_step()
    key = N_("issues.submitted_anonymous") if view.anonymous else N_("issues.submitted")
    ctx.edit(
        ctx.t(key, number=view.number, time=when(ctx, view.due_at)),
        [[Button(ctx.t("issues.button_open"), payload=payload("open", view.id))]],
    )


@router.button("irx", flow=True)
async def discard(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("issues.discarded"))


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


# ---------------------------------------------------------------------------------------------
# The issue card and its buttons


def card_text(ctx: Context, card: IssueCard) -> str:
    view = card.issue
    t = ctx.t
    urgent = t("issues.urgent_mark") if view.priority == IssuePriority.urgent else ""
    lines = [
        f"📋 {urgent}{view.number} · {view.category.label(t.locale)}",
        t(
            "issues.field_status",
            status=t(STATUS_KEYS[view.status]),
            tier=t(TIER_KEYS[view.tier]),
        ),
        t("issues.field_place", value=place_label(t, view)),
    ]
    staff = card.access == Access.staff
    if view.address:
        lines.append(t("issues.field_address", value=view.address))
    lines.append(t("issues.field_description", value=view.description))
    if view.photos:
        lines.append(t("issues.photo_count", count=len(view.photos)))
    if staff:
        lines += _staff_lines(ctx, view)
    elif view.assignee is not None or view.department is not None:
        lines.append(
            t("issues.field_handler", value=handler_label(t, view.assignee or view.department))
        )
    if card.access == Access.follower and view.reporter:
        lines.append(t("issues.field_reporter", value=view.reporter.name))
    if view.duplicate_of:
        lines.append(t("issues.field_duplicate_of", value=view.duplicate_of))
    if view.reject_reason:
        lines.append(t("issues.field_reject_reason", value=view.reject_reason))
    if view.resolution_note:
        lines.append(t("issues.field_resolution", value=view.resolution_note))
    if view.rating is not None:
        lines.append(t("issues.field_rating", value=t(RATING_KEYS[view.rating])))
    if view.due_at and view.is_open:
        overdue = view.due_at < ctx.now
        key = N_("issues.field_due_overdue") if overdue else N_("issues.field_due")
        lines.append(
            t(
                key,
                what=t(issues.DUE_KEYS[view.due_kind or DueKind.handling]),
                time=when(ctx, view.due_at),
            )
        )
    lines.append(t("issues.field_created", time=when(ctx, view.created_at)))
    return "\n".join(lines)


def _staff_lines(ctx: Context, view: IssueView) -> list[str]:
    t = ctx.t
    lines = []
    if view.reporter is not None:
        phone = f" {view.reporter_phone}" if view.reporter_phone else ""
        anonymous = t("issues.anonymous_mark") if view.anonymous else ""
        lines.append(t("issues.field_reporter", value=f"{view.reporter.name}{phone}{anonymous}"))
    if view.reported_by is not None and view.reported_by.id != (
        view.reporter.id if view.reporter else None
    ):
        lines.append(t("issues.field_reported_by", value=view.reported_by.name))
    if view.on_behalf_note:
        lines.append(t("issues.field_behalf", value=view.on_behalf_note))
    if view.assignee is not None:
        lines.append(
            t(
                "issues.field_assignee",
                value=t(
                    "issues.person_with_role",
                    name=view.assignee.name,
                    role=handler_label(t, view.assignee),
                ),
            )
        )
    if view.department is not None:
        state = (
            t("issues.reported_in_at", time=when(ctx, view.reported_in_at))
            if view.reported_in_at
            else t("issues.not_reported_in")
        )
        lines.append(t("issues.field_department", value=f"{view.department.name} · {state}"))
    if view.followers:
        lines.append(t("issues.field_followers", count=view.followers))
    if view.source is not None:
        lines.append(t("issues.field_source", value=t(SOURCE_KEYS[view.source], id=view.source_id)))
    return lines


def card_buttons(ctx: Context, card: IssueCard) -> list[list[Button]]:
    view = card.issue
    actions = [
        Button(ctx.t(ACTION_KEYS[a]), payload=payload(a, view.id))
        for a in ACTION_ORDER
        if a in card.actions
    ]
    rows = [actions[i : i + 3] for i in range(0, len(actions), 3)]
    if "rate" in card.actions:
        rows += [list(row) for row in issues.rating_buttons(ctx.t, view)]
    extra = [Button(ctx.t("issues.button_timeline"), payload=payload("tl", view.id))]
    if view.photos or view.resolution_photos:
        extra.append(Button(ctx.t("issues.button_photos"), payload=payload("ph", view.id)))
    if "pri" in card.actions:
        key = (
            N_("issues.button_normal")
            if view.priority == IssuePriority.urgent
            else N_("issues.button_urgent")
        )
        extra.append(Button(ctx.t(key), payload=payload("pri", view.id)))
    rows.append(extra)
    if view.latitude is not None and view.longitude is not None:
        rows.append(
            [Button(ctx.t("issues.button_map"), url=map_url(view.latitude, view.longitude))]
        )
    return rows


def map_url(latitude: float, longitude: float) -> str:
    return (
        f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}"
        f"#map=18/{latitude:.6f}/{longitude:.6f}"
    )


async def show_card(ctx: Context, issue_id: int, *, edit: bool = False) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, issue_id)
    text, buttons = card_text(ctx, card), card_buttons(ctx, card)
    view = card.issue
    if view.source == IssueSource.visit and view.source_id is not None:
        household = await visits.household_of_visit(ctx.session, ctx.actor, view.source_id)
        if household is not None:
            buttons = [
                *buttons,
                [Button(ctx.t("issues.button_household"), payload=f"hh:{household}")],
            ]
    if edit:
        ctx.edit(text, buttons)
    else:
        ctx.reply(text, buttons)


@router.button(ISSUE_BUTTON)
async def issue_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    handler = _ACTIONS.get(action)
    if handler is None:
        raise InvalidInput("core.stale_button")
    ctx.button_args = ctx.button_args[1:]
    await handler(ctx)


async def _open(ctx: Context) -> None:
    await show_card(ctx, ctx.int_arg(0))


async def _accept(ctx: Context) -> None:
    view = await issues.accept(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, policy(ctx))
    ctx.answer(ctx.t("issues.done_accepted", number=view.number))
    await show_card(ctx, view.id, edit=True)


async def _take(ctx: Context) -> None:
    view = await issues.assign(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.member_id, ctx.now, policy(ctx)
    )
    ctx.answer(ctx.t("issues.done_taken", number=view.number))
    await show_card(ctx, view.id, edit=True)


async def _assign_menu(ctx: Context) -> None:
    issue_id = ctx.int_arg(0)
    people = await issues.assignable_people(ctx.session, ctx.actor, issue_id)
    if not people:
        raise InvalidInput("issues.nobody_to_assign")
    rows = [
        [
            Button(
                f"{p.name} · {handler_label(ctx.t, p)}",
                payload=payload("asgto", issue_id, p.id),
            )
        ]
        for p in people
    ]
    ctx.reply(ctx.t("issues.choose_assignee"), rows)


async def _assign_to(ctx: Context) -> None:
    view = await issues.assign(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.int_arg(1), ctx.now, policy(ctx)
    )
    name = view.assignee.name if view.assignee else "?"
    ctx.answer(ctx.t("issues.done_assigned", number=view.number, name=name))
    ctx.edit(ctx.t("issues.done_assigned", number=view.number, name=name))
    await show_card(ctx, view.id)


async def _start(ctx: Context) -> None:
    view = await issues.start(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now)
    ctx.answer(ctx.t("issues.done_started", number=view.number))
    await show_card(ctx, view.id, edit=True)


async def _resolve(ctx: Context) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, ctx.int_arg(0))
    if "res" not in card.actions:
        ctx.actor.refuse(f"resolve issue {card.issue.number}", card.issue.place)
    await ctx.set_step("issues.resolve_note", {"issue": card.issue.id, "number": card.issue.number})
    await ask_resolution(ctx)


async def ask_resolution(ctx: Context) -> None:
    data = _data(ctx)
    key = N_("issues.ask_resolution_text") if data.get("photo") else N_("issues.ask_resolution")
    ctx.reply(ctx.t(key, number=data.get("number", ""), limit=issues.NOTE_MAX))


@router.step("issues.resolve_note", accepts={Kind.text, Kind.photo}, prompt=ask_resolution)
async def receive_resolution(ctx: Context) -> None:
    data = _data(ctx)
    if ctx.incoming.kind == Kind.photo:
        photo = ctx.incoming.photo
        assert photo is not None
        if photo.size is not None and photo.size > issues.MAX_PHOTO_BYTES:
            raise InvalidInput(
                "issues.photo_too_large", limit=issues.MAX_PHOTO_BYTES // (1024 * 1024)
            )
        data["photo"] = photo.file_id
        if not ctx.incoming.text.strip():
            await ctx.set_step("issues.resolve_note", data, keep_nonce=True)
            await ask_resolution(ctx)
            return
        await _finish_resolution(ctx, data, ctx.incoming.text)
        return
    note = ctx.incoming.text.strip()
    if len(note) > issues.NOTE_MAX:
        raise InvalidInput("issues.note_too_long", limit=issues.NOTE_MAX)
    if data.get("photo"):
        await _finish_resolution(ctx, data, note)
        return
    data["note"] = note
    await ctx.set_step("issues.resolve_photo", data, keep_nonce=True)
    await ask_resolution_photo(ctx)


async def ask_resolution_photo(ctx: Context) -> None:
    ctx.reply(
        ctx.t("issues.ask_resolution_photo"),
        [[ctx.flow_button(ctx.t("issues.resolve_without_photo"), "irr")]],
    )


@router.step("issues.resolve_photo", accepts={Kind.photo}, prompt=ask_resolution_photo)
async def receive_resolution_photo(ctx: Context) -> None:
    data = _data(ctx)
    photo = ctx.incoming.photo
    assert photo is not None
    if photo.size is not None and photo.size > issues.MAX_PHOTO_BYTES:
        raise InvalidInput("issues.photo_too_large", limit=issues.MAX_PHOTO_BYTES // (1024 * 1024))
    data["photo"] = photo.file_id
    await _finish_resolution(ctx, data, str(data.get("note") or ""))


@router.button("irr", flow=True)
async def resolve_without_photo(ctx: Context) -> None:
    data = _data(ctx)
    await _finish_resolution(ctx, data, str(data.get("note") or ""))


async def _finish_resolution(ctx: Context, data: dict[str, Any], note: str) -> None:
    if "issue" not in data:
        raise InvalidInput("core.stale_button")
    view = await issues.resolve(
        ctx.session,
        ctx.actor,
        int(data["issue"]),
        note,
        ctx.now,
        policy(ctx),
        photo=data.get("photo"),
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("issues.done_resolved", number=view.number))


async def _reject(ctx: Context) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, ctx.int_arg(0))
    if "rej" not in card.actions:
        ctx.actor.refuse(f"reject issue {card.issue.number}", card.issue.place)
    await ctx.set_step(
        "issues.reject_reason", {"issue": card.issue.id, "number": card.issue.number}
    )
    await ask_reject_reason(ctx)


async def ask_reject_reason(ctx: Context) -> None:
    data = _data(ctx)
    ctx.reply(
        ctx.t("issues.ask_reject_reason", number=data.get("number", ""), limit=issues.REASON_MAX)
    )


@router.step("issues.reject_reason", accepts={Kind.text}, prompt=ask_reject_reason)
async def receive_reject_reason(ctx: Context) -> None:
    data = _data(ctx)
    view = await issues.reject(
        ctx.session, ctx.actor, int(data["issue"]), ctx.incoming.text, ctx.now
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("issues.done_rejected", number=view.number))


async def _duplicate(ctx: Context) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, ctx.int_arg(0))
    if "dup" not in card.actions:
        ctx.actor.refuse(f"mark issue {card.issue.number} duplicate", card.issue.place)
    await ctx.set_step("issues.duplicate_of", {"issue": card.issue.id, "number": card.issue.number})
    await ask_original(ctx)


async def ask_original(ctx: Context) -> None:
    ctx.reply(ctx.t("issues.ask_original", number=_data(ctx).get("number", "")))


@router.step("issues.duplicate_of", accepts={Kind.text}, prompt=ask_original)
async def receive_original(ctx: Context) -> None:
    data = _data(ctx)
    view = await issues.mark_duplicate(
        ctx.session, ctx.actor, int(data["issue"]), ctx.incoming.text, ctx.now
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("issues.done_duplicate", number=view.number, original=view.duplicate_of or "?"))


async def _whistle_menu(ctx: Context) -> None:
    issue_id = ctx.int_arg(0)
    people = await issues.departments_for(ctx.session, ctx.actor, issue_id)
    if not people:
        raise InvalidInput("issues.no_department")
    rows = [
        [
            Button(
                f"{p.name} · {p.unit.label(ctx.t.locale) if p.unit else ''}",
                payload=payload("whsto", issue_id, p.id),
            )
        ]
        for p in people
    ]
    ctx.reply(ctx.t("issues.choose_department"), rows)


async def _whistle_to(ctx: Context) -> None:
    view = await issues.whistle(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.int_arg(1), ctx.now, policy(ctx)
    )
    name = view.department.name if view.department else "?"
    text = ctx.t("issues.done_whistled", number=view.number, name=name, time=when(ctx, view.due_at))
    ctx.answer(shorten(text, 190))
    ctx.edit(text)


async def _report_in(ctx: Context) -> None:
    view = await issues.report_in(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, policy(ctx))
    ctx.answer(ctx.t("issues.done_reported_in", number=view.number))
    await show_card(ctx, view.id, edit=True)


async def _priority(ctx: Context) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, ctx.int_arg(0))
    target = (
        IssuePriority.normal
        if card.issue.priority == IssuePriority.urgent
        else IssuePriority.urgent
    )
    await issues.set_priority(ctx.session, ctx.actor, card.issue.id, target, ctx.now, policy(ctx))
    await show_card(ctx, card.issue.id, edit=True)


async def _timeline(ctx: Context) -> None:
    card, events = await issues.timeline(ctx.session, ctx.actor, ctx.int_arg(0))
    ctx.reply(timeline_text(ctx, card, events))


def timeline_text(ctx: Context, card: IssueCard, events: list[issues.EventView]) -> str:
    t = ctx.t
    lines = [t("issues.timeline_title", number=card.issue.number)]
    for event in events:
        label = t(EVENT_KEYS[event.kind])
        if event.kind == EventKind.rated and event.note:
            label = t("issues.event_rated_as", rating=t(RATING_KEYS[Rating(event.note)]))
        line = f"{when(ctx, event.at)} {label}"
        if event.kind in (EventKind.escalated, EventKind.whistled) and event.tier:
            line += f" → {t(TIER_KEYS[event.tier])}"
        if event.actor is not None:
            line += f" · {event.actor.name}"
        elif event.kind in (EventKind.escalated, EventKind.overdue, EventKind.reminded) or (
            event.kind == EventKind.closed and event.note == "no_answer"
        ):
            line += " · " + t("issues.by_system")
        if event.target is not None:
            line += f" → {event.target.name}"
        if event.note and event.kind in (
            EventKind.resolved,
            EventKind.rejected,
            EventKind.duplicate,
        ):
            line += f"\n    {shorten(event.note, 300)}"
        lines.append(line)
    return "\n".join(lines)


async def _photos(ctx: Context) -> None:
    card = await issues.get_card(ctx.session, ctx.actor, ctx.int_arg(0))
    view = card.issue
    for file_id in view.photos:
        ctx.send(Photo(file_id=file_id, caption=ctx.t("issues.photo_caption", number=view.number)))
    for file_id in view.resolution_photos:
        ctx.send(
            Photo(
                file_id=file_id,
                caption=ctx.t("issues.resolution_photo_caption", number=view.number),
            )
        )
    if not view.photos and not view.resolution_photos:
        ctx.reply(ctx.t("issues.no_photos"))


_ACTIONS = {
    "open": _open,
    "acc": _accept,
    "take": _take,
    "asg": _assign_menu,
    "asgto": _assign_to,
    "start": _start,
    "res": _resolve,
    "rej": _reject,
    "dup": _duplicate,
    "whs": _whistle_menu,
    "whsto": _whistle_to,
    "rin": _report_in,
    "pri": _priority,
    "tl": _timeline,
    "ph": _photos,
}


@router.button(RATE_BUTTON)
async def rate_button(ctx: Context) -> None:
    rating = RATING_CODES.get(ctx.button_args[2] if len(ctx.button_args) > 2 else "")
    if rating is None:
        raise InvalidInput("core.stale_button")
    view = await issues.rate(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.int_arg(1), rating, ctx.now, policy(ctx)
    )
    if rating == Rating.unsatisfied:
        text = ctx.t("issues.done_reopened", number=view.number)
    else:
        text = ctx.t("issues.done_rated", number=view.number, rating=ctx.t(RATING_KEYS[rating]))
    ctx.answer(shorten(text, 190))
    ctx.reply(text)


# ---------------------------------------------------------------------------------------------
# /queue, /issue, /board


@router.command("queue", description=N_("cmd.queue"), roles=HANDLERS, order=5)
async def queue_command(ctx: Context) -> None:
    await show_queue(ctx, "new")


@router.button("iq")
async def queue_tab(ctx: Context) -> None:
    tab = ctx.button_args[0] if ctx.button_args else ""
    if tab not in issues.QUEUE_TABS:
        raise InvalidInput("core.stale_button")
    await show_queue(ctx, tab, edit=True)


async def show_queue(ctx: Context, tab: str, *, edit: bool = False) -> None:
    lines, counts = await issues.queue(ctx.session, ctx.actor, tab, ctx.now)
    t = ctx.t
    text = [t("issues.queue_title", tab=t(TAB_KEYS[tab]))]
    if not lines:
        text.append(t("issues.queue_empty"))
    for index, line in enumerate(lines, 1):
        text.append(queue_line(ctx, index, line))
    rows = [
        [Button(f"{i}. {line.number}", payload=payload("open", line.id))]
        for i, line in enumerate(lines, 1)
    ]
    tabs = []
    for name, count in zip(
        issues.QUEUE_TABS, (counts.new, counts.mine, counts.overdue), strict=True
    ):
        mark = "• " if name == tab else ""
        tabs.append(Button(f"{mark}{t(TAB_KEYS[name])} ({count})", payload=f"iq:{name}"))
    rows.append(tabs)
    if edit:
        ctx.edit("\n".join(text), rows)
    else:
        ctx.reply("\n".join(text), rows)


def queue_line(ctx: Context, index: int, line: IssueLine) -> str:
    t = ctx.t
    urgent = t("issues.urgent_mark") if line.priority == IssuePriority.urgent else ""
    due = ""
    if line.due_at is not None:
        key = N_("issues.line_overdue") if line.due_at < ctx.now else N_("issues.line_due")
        due = " · " + t(key, time=when(ctx, line.due_at))
    return (
        f"{index}. {urgent}{line.number} · {line.category.label(t.locale)} · "
        f"{t(STATUS_KEYS[line.status])}{due}\n    {shorten(line.description, 50)}"
    )


@router.command("issue", description=N_("cmd.issue"), order=11)
async def issue_command(ctx: Context) -> None:
    number = ctx.incoming.args.strip()
    if number:
        issue_id = await issues.issue_id_by_number(ctx.session, number)
        card, events = await issues.timeline(ctx.session, ctx.actor, issue_id)
        ctx.reply(card_text(ctx, card), card_buttons(ctx, card))
        ctx.reply(timeline_text(ctx, card, events))
        return
    lines = await issues.my_reports(ctx.session, ctx.actor)
    if not lines:
        ctx.reply(ctx.t("issues.mine_empty"))
        return
    text = [ctx.t("issues.mine_title")]
    for index, line in enumerate(lines, 1):
        text.append(
            f"{index}. {line.number} · {line.category.label(ctx.t.locale)} · "
            f"{ctx.t(STATUS_KEYS[line.status])}\n    {shorten(line.description, 50)}"
        )
    rows = [
        [Button(f"{i}. {line.number}", payload=payload("open", line.id))]
        for i, line in enumerate(lines, 1)
    ]
    ctx.reply("\n".join(text), rows)


@router.command("board", description=N_("cmd.board"), order=12)
async def board_command(ctx: Context) -> None:
    board = await issues.board(ctx.session, ctx.actor, ctx.now, policy(ctx))
    t = ctx.t
    text = [t("issues.board_title", unit=board.unit.label(t.locale), days=board.days)]
    if not board.entries:
        text.append(t("issues.board_empty"))
    for entry in board.entries:
        days = max(0, (entry.resolved_at - entry.created_at).days)
        rating = f" · {t(RATING_KEYS[entry.rating])}" if entry.rating else ""
        text.append(
            t(
                "issues.board_entry",
                number=entry.number,
                category=entry.category.label(t.locale),
                place=entry.place.label(t.locale),
                reported=when(ctx, entry.created_at),
                resolved=when(ctx, entry.resolved_at),
                days=days,
            )
            + rating
        )
    ctx.reply("\n\n".join(text))


# ---------------------------------------------------------------------------------------------
# /categories (coordinators and admins): categories and their deadlines


@router.command("categories", description=N_("cmd.categories"), roles=MANAGERS, order=40)
async def categories_command(ctx: Context) -> None:
    await show_categories(ctx)


async def show_categories(ctx: Context, *, edit: bool = False) -> None:
    scope, rows = await issues.category_overview(ctx.session, ctx.actor, policy(ctx))
    t = ctx.t
    text = [t("issues.categories_title", unit=scope.label(t.locale))]
    buttons = []
    for row in rows:
        hidden = "" if row.category.active else t("issues.category_hidden")
        text.append(
            t(
                "issues.category_line",
                name=row.category.label(t.locale),
                response=row.normal.response_minutes,
                handling=row.normal.handling_hours,
                urgent_response=row.urgent.response_minutes,
                urgent_handling=row.urgent.handling_hours,
            )
            + hidden
        )
        if row.editable:
            buttons.append(
                Button(row.category.label(t.locale), payload=f"icat:c:{row.category.id}")
            )
    keyboard = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    keyboard.append([Button(t("issues.category_add"), payload="icat:add")])
    if edit:
        ctx.edit("\n".join(text), keyboard)
    else:
        ctx.reply("\n".join(text), keyboard)


@router.button("icat")
async def category_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    if action == "add":
        await issues.category_overview(ctx.session, ctx.actor, policy(ctx))
        await ctx.set_step("issues.category_name", {})
        await ask_category_name(ctx)
    elif action == "c":
        await _category_menu(ctx, ctx.int_arg(1))
    elif action == "dl":
        priority = IssuePriority.urgent if ctx.button_args[2:3] == ["u"] else IssuePriority.normal
        category_id = ctx.int_arg(1)
        await issues.category_overview(ctx.session, ctx.actor, policy(ctx))
        await ctx.set_step("issues.deadline", {"cat": category_id, "pri": priority.value})
        await ask_deadline(ctx)
    elif action == "tog":
        scope, rows = await issues.category_overview(ctx.session, ctx.actor, policy(ctx))
        current = {r.category.id: r.category for r in rows}.get(ctx.int_arg(1))
        if current is None:
            ctx.actor.refuse("toggle a category", scope)
        await issues.set_category_active(ctx.session, ctx.actor, current.id, not current.active)
        await show_categories(ctx, edit=True)
    else:
        raise InvalidInput("core.stale_button")


async def _category_menu(ctx: Context, category_id: int) -> None:
    scope, rows = await issues.category_overview(ctx.session, ctx.actor, policy(ctx))
    row = {r.category.id: r for r in rows}.get(category_id)
    if row is None or not row.editable:
        ctx.actor.refuse("edit a category", scope)
    t = ctx.t
    toggle = N_("issues.category_show") if not row.category.active else N_("issues.category_hide")
    ctx.edit(
        t(
            "issues.category_menu",
            name=row.category.label(t.locale),
            unit=scope.label(t.locale),
            response=row.normal.response_minutes,
            handling=row.normal.handling_hours,
            urgent_response=row.urgent.response_minutes,
            urgent_handling=row.urgent.handling_hours,
        ),
        [
            [
                Button(t("issues.deadline_normal"), payload=f"icat:dl:{category_id}:n"),
                Button(t("issues.deadline_urgent"), payload=f"icat:dl:{category_id}:u"),
            ],
            [Button(t(toggle), payload=f"icat:tog:{category_id}")],
        ],
    )


async def ask_category_name(ctx: Context) -> None:
    ctx.reply(ctx.t("issues.ask_category_name", limit=issues.CATEGORY_NAME_MAX))


@router.step("issues.category_name", accepts={Kind.text}, prompt=ask_category_name)
async def receive_category_name(ctx: Context) -> None:
    name, _, name_en = ctx.incoming.text.partition("/")
    category = await issues.add_category(
        ctx.session, ctx.actor, name, name_en.strip() or None, ctx.now
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("issues.category_added", name=category.label(ctx.t.locale)))
    await show_categories(ctx)


async def ask_deadline(ctx: Context) -> None:
    ctx.reply(ctx.t("issues.ask_deadline"))


@router.step("issues.deadline", accepts={Kind.text}, prompt=ask_deadline)
async def receive_deadline(ctx: Context) -> None:
    data = _data(ctx)
    parts = ctx.incoming.text.replace(",", " ").replace("，", " ").split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InvalidInput("issues.deadline_invalid")
    deadlines = await issues.set_deadlines(
        ctx.session,
        ctx.actor,
        int(data["cat"]),
        IssuePriority(data["pri"]),
        int(parts[0]),
        int(parts[1]),
        ctx.now,
    )
    await ctx.clear_step()
    ctx.reply(
        ctx.t(
            "issues.deadline_saved",
            response=deadlines.response_minutes,
            handling=deadlines.handling_hours,
        )
    )
    await show_categories(ctx)


# ---------------------------------------------------------------------------------------------
# Hand-offs: an issue made from a visit's needs or a meeting's follow-up, and its category


HANDOFF_CATEGORY = "ihc"


async def show_handoff(ctx: Context, view: IssueView, created: bool) -> None:
    """The one-tap report made from elsewhere, with the categories to put it right."""
    key = N_("issues.handoff_reported") if created else N_("issues.handoff_already")
    await _handoff_message(ctx, view, key, edit=False)


async def _handoff_message(ctx: Context, view: IssueView, key: str, *, edit: bool) -> None:
    t = ctx.t
    text = t(key, number=view.number, category=issues.category_label(t, view.category))
    buttons: list[list[Button]] = []
    if view.is_open:
        text += "\n" + t("issues.handoff_category_prompt")
        categories = await issues.categories_for(ctx.session, view.place)
        row: list[Button] = []
        for category in categories:
            mark = "✓ " if category.id == view.category.id else ""
            row.append(
                Button(
                    (mark + issues.category_label(t, category))[:60],
                    payload=f"{HANDOFF_CATEGORY}:{view.id}:{category.id}",
                )
            )
            if len(row) == CATEGORIES_PER_ROW:
                buttons.append(row)
                row = []
        if row:
            buttons.append(row)
    buttons.append([issues.open_button(t, view.id)])
    if edit:
        ctx.edit(text, buttons)
    else:
        ctx.reply(text, buttons)


@router.button(HANDOFF_CATEGORY)
async def handoff_category(ctx: Context) -> None:
    view = await issues.change_category(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.int_arg(1), ctx.now
    )
    await _handoff_message(ctx, view, N_("issues.category_changed"), edit=True)
