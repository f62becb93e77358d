"""/invite: staff create an invite link and QR code for their own scope, in three taps."""

from __future__ import annotations

from bot.i18n import N_
from handlers.context import Context
from handlers.menu import role_name
from handlers.router import Router
from models.members import Role
from services import invites
from services.errors import InvalidInput, PermissionDenied
from services.messages import Button, Photo
from services.outbox import store_blob

router = Router("invites")

INVITERS = frozenset({Role.grid_worker, Role.grid_leader, Role.coordinator, Role.admin})
UNITS_PER_PAGE = 8
PRESETS: dict[str, tuple[int | None, int | None]] = {
    "1": (1, 7),
    "10": (10, 7),
    "50": (50, 30),
    "all": (None, 30),
}
PRESET_LABELS = {
    "1": N_("invite.preset_1"),
    "10": N_("invite.preset_10"),
    "50": N_("invite.preset_50"),
    "all": N_("invite.preset_all"),
}


@router.command("invite", description=N_("cmd.invite"), roles=INVITERS)
async def invite(ctx: Context) -> None:
    roles = invites.invitable_roles(ctx.actor)
    if not roles:
        raise PermissionDenied()
    await ctx.set_step("invite.role")
    buttons = [ctx.flow_button(role_name(ctx, role), "inv_role", role.value) for role in roles]
    ctx.reply(ctx.t("invite.choose_role"), [buttons[i : i + 2] for i in range(0, len(buttons), 2)])


@router.button("inv_role", flow=True)
async def choose_role(ctx: Context) -> None:
    role = _role(ctx.button_args[0] if ctx.button_args else "")
    await ctx.set_step("invite.unit", {"role": role.value}, keep_nonce=True)
    await _unit_page(ctx, role, 0)


@router.button("inv_page", flow=True)
async def unit_page(ctx: Context) -> None:
    role = _role((ctx.state.data if ctx.state else {}).get("role", ""))
    await _unit_page(ctx, role, ctx.int_arg(0))


async def _unit_page(ctx: Context, role: Role, page: int) -> None:
    units = await invites.invite_targets(ctx.session, ctx.actor, role)
    if not units:
        raise InvalidInput("invite.no_units")
    pages = (len(units) + UNITS_PER_PAGE - 1) // UNITS_PER_PAGE
    page = max(0, min(page, pages - 1))
    shown = units[page * UNITS_PER_PAGE : (page + 1) * UNITS_PER_PAGE]
    rows = [
        [ctx.flow_button(f"{u.label(ctx.t.locale)} ({u.code})", "inv_unit", u.id)] for u in shown
    ]
    nav = []
    if page > 0:
        nav.append(ctx.flow_button("◀", "inv_page", page - 1))
    if page < pages - 1:
        nav.append(ctx.flow_button("▶", "inv_page", page + 1))
    if nav:
        rows.append(nav)
    ctx.edit(
        ctx.t("invite.choose_unit", role=role_name(ctx, role), page=page + 1, pages=pages), rows
    )


@router.button("inv_unit", flow=True)
async def choose_unit(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    role = _role(data.get("role", ""))
    unit_id = ctx.int_arg(0)
    units = {u.id: u for u in await invites.invite_targets(ctx.session, ctx.actor, role)}
    unit = units.get(unit_id)
    if unit is None:
        raise PermissionDenied()
    data["unit"] = unit.code
    await ctx.set_step("invite.preset", data, keep_nonce=True)
    ctx.edit(
        ctx.t(
            "invite.choose_preset",
            role=role_name(ctx, role),
            unit=f"{unit.label(ctx.t.locale)} ({unit.code})",
        ),
        [[ctx.flow_button(ctx.t(PRESET_LABELS[key]), "inv_make", key)] for key in PRESETS],
    )


@router.button("inv_make", flow=True)
async def make_invite(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    preset = PRESETS.get(ctx.button_args[0] if ctx.button_args else "")
    if preset is None or "unit" not in data:
        raise InvalidInput("core.stale_button")
    max_uses, days = preset
    view = await invites.create_invite(
        ctx.session,
        ctx.actor,
        role=_role(data.get("role", "")),
        unit_code=data["unit"],
        now=ctx.now,
        max_uses=max_uses,
        expires_days=days,
    )
    await ctx.clear_step()
    link = invites.deep_link(ctx.app.bot_username, view.token)
    uses = ctx.t("invite.uses_unlimited") if view.max_uses is None else str(view.max_uses)
    text = ctx.t(
        "invite.created",
        role=role_name(ctx, view.role),
        unit=f"{view.unit.label(ctx.t.locale)} ({view.unit.code})",
        link=link,
        uses=uses,
        days=days,
    )
    ctx.edit(text)
    blob_id = await store_blob(ctx.session, invites.qr_png(link), "invite.png", "image/png")
    ctx.send(
        Photo(
            blob_id=blob_id,
            caption=ctx.t(
                "invite.qr_caption",
                role=role_name(ctx, view.role),
                unit=view.unit.label(ctx.t.locale),
            ),
            buttons=((Button(ctx.t("invite.open_link"), url=link),),),
        )
    )


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput("core.stale_button") from None
