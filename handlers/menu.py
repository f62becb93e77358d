"""Greeting, joining, /help, /cancel and the menu every other screen falls back to."""

from __future__ import annotations

from bot.i18n import N_, translator
from handlers.context import Context
from handlers.router import ANYONE, Router
from models.members import Role
from services import invites
from services.access import Actor
from services.members import Person, actor_for, ensure_member
from services.messages import Button, Commands

router = Router("menu")

ROLE_NAMES = {
    Role.resident: N_("role.resident"),
    Role.volunteer: N_("role.volunteer"),
    Role.grid_worker: N_("role.grid_worker"),
    Role.grid_leader: N_("role.grid_leader"),
    Role.coordinator: N_("role.coordinator"),
    Role.department: N_("role.department"),
    Role.admin: N_("role.admin"),
}

MENU_BUTTONS_PER_ROW = 2


def role_name(ctx: Context, role: Role | str) -> str:
    return ctx.t(ROLE_NAMES[Role(role)])


def person_of(ctx: Context) -> Person:
    incoming = ctx.incoming
    return Person(
        incoming.user_id,
        incoming.chat_id,
        incoming.user_name or str(incoming.user_id),
        ctx.t.locale,
    )


def command_menu(ctx: Context) -> Commands:
    """The chat's command menu for the person's roles, in their language."""
    specs = ctx.app.registry.menu(ctx.actor.roles, ctx.actor.is_member)
    return Commands(tuple((spec.name, ctx.t(spec.description)) for spec in specs))


async def show_menu(ctx: Context) -> None:
    """List exactly the person's commands, with a button for each."""
    specs = [
        s
        for s in ctx.app.registry.menu(ctx.actor.roles, ctx.actor.is_member)
        if s.name not in ("start", "cancel")
    ]
    lines = [ctx.t("menu.title")]
    lines += [f"/{spec.name} — {ctx.t(spec.description)}" for spec in specs]
    if not ctx.actor.is_member:
        lines += ["", ctx.t("menu.how_to_join")]
    buttons = [Button(f"/{spec.name}", payload=f"cmd:{spec.name}") for spec in specs]
    rows = [
        buttons[i : i + MENU_BUTTONS_PER_ROW] for i in range(0, len(buttons), MENU_BUTTONS_PER_ROW)
    ]
    ctx.reply("\n".join(lines), rows)


@router.command("start", description=N_("cmd.start"), roles=ANYONE, order=0)
async def start(ctx: Context) -> None:
    token = ctx.incoming.args.strip()
    if token:
        await join(ctx, token)
        return
    if ctx.actor.is_member and ctx.member is not None:
        ctx.reply(ctx.t("start.welcome_back", name=ctx.member.display_name))
    else:
        ctx.reply(ctx.t("start.greeting"))
    await show_menu(ctx)


async def join(ctx: Context, token: str) -> None:
    result = await invites.redeem(ctx.session, token, person_of(ctx), ctx.now)
    ctx.member = result.member
    ctx.actor = await actor_for(ctx.session, result.member.id)
    ctx.t = translator(result.member.locale)
    unit = f"{result.unit.label(ctx.t.locale)} ({result.unit.code})"
    key = N_("start.already_joined") if result.already else N_("start.joined")
    ctx.reply(
        ctx.t(key, name=result.member.display_name, role=role_name(ctx, result.role), unit=unit)
    )
    if not result.already:
        ctx.send(command_menu(ctx))
    await show_menu(ctx)


@router.command("help", description=N_("cmd.help"), roles=ANYONE, order=90)
async def help_(ctx: Context) -> None:
    await show_menu(ctx)


@router.command("cancel", description=N_("cmd.cancel"), roles=ANYONE, order=99)
async def cancel(ctx: Context) -> None:
    if ctx.previous_state is None:
        ctx.reply(ctx.t("cancel.nothing"), remove_keyboard=True)
    else:
        ctx.reply(ctx.t("cancel.done"), remove_keyboard=True)


async def remember_person(ctx: Context) -> Actor:
    """Make sure the person has a member row (language choice needs one before joining)."""
    if ctx.member is None:
        ctx.member = await ensure_member(ctx.session, person_of(ctx), ctx.now)
    return ctx.actor
