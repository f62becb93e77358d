"""Broadcasts in the chat: /broadcast (text or photo → audience of units, teams, roles, skills
or the reserve → preview → options → send),
/broadcasts (my recent ones with their delivery report), the "I have read it" button every
broadcast asking for it carries, and /reserve (join or leave the emergency reserve).
Permissions and scopes are decided in services; button payloads are only hints."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_
from handlers.context import Context
from handlers.menu import role_name
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from models.wishes import Skill
from services import audiences, broadcasts, media, org, teams
from services.audiences import CHOOSABLE_ROLES, SENDER_ROLES, Audience
from services.broadcasts import CAPTION_MAX, TEXT_MAX, BroadcastPolicy, Draft
from services.errors import InvalidInput
from services.messages import Button
from services.wishes import SKILL_NAMES

router = Router("broadcasts")

UNIT_BUTTONS = 24
TEAM_BUTTONS = 12
UNITS_PER_ROW = 2
CHOICES_PER_ROW = 3
CHECKED = "✅ "
UNCHECKED = "▫️ "


def _policy(ctx: Context) -> BroadcastPolicy:
    return BroadcastPolicy.of(ctx.app.settings)


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


def _audience(data: dict[str, Any]) -> Audience:
    return Audience.from_json(data.get("audience"))


def _draft(data: dict[str, Any]) -> Draft:
    return Draft(
        text=str(data.get("text") or ""),
        photo_file_id=data.get("photo"),
        audience=_audience(data),
        urgent=bool(data.get("urgent")),
        ask_ack=bool(data.get("ack")),
    )


def _mark(on: bool) -> str:
    return CHECKED if on else UNCHECKED


def _rows(buttons: list[Button], per_row: int) -> list[list[Button]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


# ---------------------------------------------------------------------------------------------
# /broadcast: the text


@router.command("broadcast", description=N_("broadcasts.cmd_broadcast"), roles=SENDER_ROLES)
async def start(ctx: Context) -> None:
    broadcasts.require_sender(ctx.actor)
    await ctx.set_step("broadcasts.text")
    await ask_text(ctx)


async def ask_text(ctx: Context) -> None:
    ctx.reply(ctx.t("broadcasts.ask_text", limit=TEXT_MAX, caption=CAPTION_MAX))


@router.step("broadcasts.text", accepts={Kind.text, Kind.photo, Kind.document}, prompt=ask_text)
async def receive_text(ctx: Context) -> None:
    document = ctx.incoming.document
    if document is not None:
        media.check_document(document.mime_type, document.size)
    if ctx.incoming.photo is not None:
        media.check_photo(ctx.incoming.photo.size)
    photo = ctx.incoming.photo.file_id if ctx.incoming.photo else None
    text = broadcasts.check_text(ctx.incoming.text, photo)
    await ctx.set_step(
        "broadcasts.audience", {"text": text, "photo": photo, "audience": {}}, keep_nonce=True
    )
    await show_audience(ctx)


# ---------------------------------------------------------------------------------------------
# The audience


async def describe(ctx: Context, audience: Audience) -> str:
    parts: list[str] = []
    for unit_id in audience.unit_ids:
        unit = await org.unit_by_id(ctx.session, unit_id)
        parts.append(unit.label(ctx.t.locale))
    if not audience.unit_ids and audience.selects:
        parts.append(ctx.t("broadcasts.my_area"))
    if audience.roles:
        parts.append(" / ".join(role_name(ctx, r) for r in audience.roles))
    if audience.skills:
        parts.append(" / ".join(ctx.t(SKILL_NAMES[Skill(s)]) for s in audience.skills))
    if audience.reserve:
        parts.append(ctx.t("broadcasts.reserve"))
    for team_id in audience.team_ids:
        team = await teams.team(ctx.session, ctx.actor, team_id)
        parts.append(ctx.t("broadcasts.team", name=team.name))
    return " · ".join(parts)


async def show_audience(ctx: Context) -> None:
    audience = _audience(_data(ctx))
    units = await audiences.choosable_units(ctx.session, ctx.actor)
    unit_buttons = [
        ctx.flow_button(
            f"{_mark(u.id in audience.unit_ids)}{u.label(ctx.t.locale)} ({u.code})", "bc_u", u.id
        )
        for u in units[:UNIT_BUTTONS]
    ]
    role_buttons = [
        ctx.flow_button(_mark(r.value in audience.roles) + role_name(ctx, r), "bc_r", r.value)
        for r in CHOOSABLE_ROLES
    ]
    skill_buttons = [
        ctx.flow_button(_mark(s.value in audience.skills) + ctx.t(SKILL_NAMES[s]), "bc_s", s.value)
        for s in Skill
    ]
    team_buttons = [
        ctx.flow_button(
            f"{_mark(t.id in audience.team_ids)}{ctx.t('broadcasts.team', name=t.name)}",
            "bc_t",
            t.id,
        )
        for t in (await teams.teams_in_scope(ctx.session, ctx.actor))[:TEAM_BUTTONS]
    ]
    rows = [
        *_rows(unit_buttons, UNITS_PER_ROW),
        *_rows(team_buttons, UNITS_PER_ROW),
        *_rows(role_buttons, CHOICES_PER_ROW),
        *_rows(skill_buttons, CHOICES_PER_ROW),
        [ctx.flow_button(_mark(audience.reserve) + ctx.t("broadcasts.reserve"), "bc_v")],
        [
            ctx.flow_button(ctx.t("broadcasts.next"), "bc_next"),
            ctx.flow_button(ctx.t("broadcasts.cancel"), "bc_x"),
        ],
    ]
    if audience.is_empty:
        summary = ctx.t("broadcasts.audience_none")
    else:
        number = await audiences.count(ctx.session, ctx.actor, audience)
        summary = ctx.t(
            "broadcasts.audience_count", who=await describe(ctx, audience), count=number
        )
    ctx.edit(ctx.t("broadcasts.ask_audience") + "\n\n" + summary, rows)


async def _toggle(ctx: Context, field: str, value: Any) -> None:
    data = _data(ctx)
    data["audience"] = _audience(data).toggled(field, value).to_json()
    await ctx.set_step("broadcasts.audience", data, keep_nonce=True)
    await show_audience(ctx)


@router.button("bc_u", flow=True)
async def toggle_unit(ctx: Context) -> None:
    await _toggle(ctx, "unit_ids", ctx.int_arg(0))


@router.button("bc_r", flow=True)
async def toggle_role(ctx: Context) -> None:
    await _toggle(ctx, "roles", ctx.button_args[0] if ctx.button_args else "")


@router.button("bc_s", flow=True)
async def toggle_skill(ctx: Context) -> None:
    await _toggle(ctx, "skills", ctx.button_args[0] if ctx.button_args else "")


@router.button("bc_t", flow=True)
async def toggle_team(ctx: Context) -> None:
    await _toggle(ctx, "team_ids", ctx.int_arg(0))


@router.button("bc_v", flow=True)
async def toggle_reserve(ctx: Context) -> None:
    await _toggle(ctx, "reserve", None)


async def prompt_audience(ctx: Context) -> None:
    ctx.reply(ctx.t("broadcasts.audience_hint"))


@router.step("broadcasts.audience", accepts={Kind.text}, prompt=prompt_audience)
async def type_units(ctx: Context) -> None:
    """Unit codes typed in (e.g. "G1 G2") are added to the audience."""
    data = _data(ctx)
    audience = _audience(data)
    codes = [c for c in ctx.incoming.text.replace(",", " ").replace("，", " ").split() if c]
    for code in codes[: audiences.MAX_UNITS]:
        unit = await org.unit_by_code(ctx.session, code)
        if unit.id not in audience.unit_ids:
            audience = audience.toggled("unit_ids", unit.id)
    data["audience"] = audience.to_json()
    await ctx.set_step("broadcasts.audience", data, keep_nonce=True)
    await show_audience(ctx)


# ---------------------------------------------------------------------------------------------
# Preview, options and sending


@router.button("bc_next", flow=True)
async def to_preview(ctx: Context) -> None:
    data = _data(ctx)
    draft = _draft(data)
    number = await broadcasts.preview(ctx.session, ctx.actor, draft)
    if number == 0:
        raise InvalidInput("broadcasts.nobody")
    data |= {"count": number, "who": await describe(ctx, draft.audience)}
    await ctx.set_step("broadcasts.confirm", data, keep_nonce=True)
    ctx.edit(ctx.t("broadcasts.audience_count", who=data["who"], count=number))
    ctx.send(
        broadcasts.render(
            ctx.t,
            0,
            draft.text,
            draft.photo_file_id,
            urgent=draft.urgent,
            ask_ack=False,
            sender=ctx.member.display_name if ctx.member else "",
        )
    )
    await show_options(ctx, new=True)


async def show_options(ctx: Context, *, new: bool = False) -> None:
    data = _data(ctx)
    urgent = bool(data.get("urgent"))
    lines = [ctx.t("broadcasts.confirm", who=data.get("who", ""), count=data.get("count", 0))]
    waits = None if urgent else broadcasts.quiet_until(ctx.now, _policy(ctx))
    if waits is not None:
        lines.append(
            ctx.t(
                "broadcasts.quiet_now",
                time=waits.astimezone(ctx.app.settings.zone).strftime("%H:%M"),
            )
        )
    rows = [
        [ctx.flow_button(_mark(bool(data.get("ack"))) + ctx.t("broadcasts.option_ack"), "bc_oa")],
        [ctx.flow_button(_mark(urgent) + ctx.t("broadcasts.option_urgent"), "bc_ou")],
        [
            ctx.flow_button(ctx.t("broadcasts.send"), "bc_go"),
            ctx.flow_button(ctx.t("broadcasts.cancel"), "bc_x"),
        ],
    ]
    text = "\n".join(lines)
    if new:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


async def _option(ctx: Context, key: str) -> None:
    data = _data(ctx)
    data[key] = not bool(data.get(key))
    await ctx.set_step("broadcasts.confirm", data, keep_nonce=True)
    await show_options(ctx)


@router.button("bc_oa", flow=True)
async def toggle_ack(ctx: Context) -> None:
    await _option(ctx, "ack")


@router.button("bc_ou", flow=True)
async def toggle_urgent(ctx: Context) -> None:
    await _option(ctx, "urgent")


async def prompt_confirm(ctx: Context) -> None:
    ctx.reply(ctx.t("broadcasts.confirm_hint"))


@router.step("broadcasts.confirm", accepts=(), prompt=prompt_confirm)
async def confirm_step(ctx: Context) -> None:
    await prompt_confirm(ctx)


@router.button("bc_go", flow=True)
async def send(ctx: Context) -> None:
    draft = _draft(_data(ctx))
    if draft.photo_file_id:
        # The preview went to the sender as the very photo: if Telegram refused it, it would
        # refuse every copy.
        await media.require_preview_delivered(
            ctx.session, ctx.incoming.chat_id, draft.photo_file_id
        )
    sent = await broadcasts.send(ctx.session, ctx.actor, draft, ctx.now, _policy(ctx))
    await ctx.clear_step()
    text = ctx.t("broadcasts.sent", id=sent.broadcast_id, count=sent.recipients)
    if sent.deliver_from > ctx.now:
        waits = sent.deliver_from.astimezone(ctx.app.settings.zone).strftime("%H:%M")
        text += "\n" + ctx.t("broadcasts.sent_later", time=waits)
    ctx.edit(text)


@router.button("bc_x", flow=True)
async def cancel(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("broadcasts.cancelled"))


# ---------------------------------------------------------------------------------------------
# /broadcasts, acknowledgements


@router.command("broadcasts", description=N_("broadcasts.cmd_list"), roles=SENDER_ROLES)
async def my_broadcasts(ctx: Context) -> None:
    broadcasts.require_sender(ctx.actor)
    reports = await broadcasts.my_broadcasts(ctx.session, ctx.actor)
    if not reports:
        ctx.reply(ctx.t("broadcasts.none"))
        return
    zone = ctx.app.settings.zone
    ctx.reply("\n\n".join(broadcasts.render_report(ctx.t, r, zone) for r in reports))


@router.button("bc_ack")
async def acknowledge(ctx: Context) -> None:
    recorded = await broadcasts.acknowledge(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, _policy(ctx)
    )
    key = N_("broadcasts.acknowledged") if recorded else N_("broadcasts.already_acknowledged")
    ctx.answer(ctx.t(key))


# ---------------------------------------------------------------------------------------------
# /reserve


@router.command("reserve", description=N_("broadcasts.cmd_reserve"), roles=MEMBERS, order=60)
async def reserve(ctx: Context) -> None:
    joined = await audiences.in_reserve(ctx.session, ctx.member_id)
    if joined:
        ctx.reply(
            ctx.t("broadcasts.reserve_in"),
            [[Button(ctx.t("broadcasts.reserve_leave"), payload="rsv:leave")]],
        )
    else:
        ctx.reply(
            ctx.t("broadcasts.reserve_out"),
            [[Button(ctx.t("broadcasts.reserve_join"), payload="rsv:join")]],
        )


@router.button("rsv")
async def reserve_choice(ctx: Context) -> None:
    choice = ctx.button_args[0] if ctx.button_args else ""
    if choice == "join":
        await audiences.join_reserve(ctx.session, ctx.actor, ctx.now)
        ctx.edit(ctx.t("broadcasts.reserve_joined"))
    elif choice == "leave":
        await audiences.leave_reserve(ctx.session, ctx.actor)
        ctx.edit(ctx.t("broadcasts.reserve_left"))
    else:
        raise InvalidInput("core.stale_button")
