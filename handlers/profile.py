"""/me (name, phone, roles) and /language."""

from __future__ import annotations

from bot.i18n import N_, translator
from handlers.context import Context
from handlers.menu import command_menu, remember_person, role_name
from handlers.router import ANYONE, Router
from handlers.types import Kind
from services import members
from services.errors import InvalidInput
from services.messages import Button, RequestButton

router = Router("profile")

LANGUAGES = {"zh_CN": "中文", "en": "English"}


def _mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else phone


@router.command("me", description=N_("cmd.me"))
async def me(ctx: Context) -> None:
    member = ctx.member
    if member is None:
        raise InvalidInput("core.join_first")
    lines = [
        ctx.t("me.name", name=member.display_name),
        ctx.t("me.language", language=LANGUAGES.get(member.locale, member.locale)),
        ctx.t("me.phone", phone=_mask_phone(member.phone))
        if member.phone
        else ctx.t("me.no_phone"),
        "",
        ctx.t("me.roles"),
    ]
    for grant in ctx.actor.grants:
        unit = f"{grant.unit.label(ctx.t.locale)} ({grant.unit.code})"
        lines.append(f"• {role_name(ctx, grant.role)} · {unit}")
    phone_button = (
        Button(ctx.t("me.remove_phone"), payload="profile:unphone")
        if member.phone
        else Button(ctx.t("me.share_phone"), payload="profile:phone")
    )
    ctx.reply(
        "\n".join(lines),
        [
            [Button(ctx.t("me.edit_name"), payload="profile:name"), phone_button],
            [Button(ctx.t("me.change_language"), payload="cmd:language")],
        ],
    )


@router.button("profile")
async def profile_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    if action == "name":
        await ctx.set_step("profile.name")
        await ask_name(ctx)
    elif action == "phone":
        await ctx.set_step("profile.phone")
        await ask_phone(ctx)
    elif action == "unphone":
        await members.set_phone(ctx.session, ctx.member_id, None)
        ctx.answer(ctx.t("profile.phone_removed"))
        ctx.reply(ctx.t("profile.phone_removed"))
    else:
        raise InvalidInput("core.stale_button")


async def ask_name(ctx: Context) -> None:
    ctx.reply(ctx.t("profile.ask_name", limit=members.NAME_MAX))


@router.step("profile.name", accepts={Kind.text}, prompt=ask_name)
async def receive_name(ctx: Context) -> None:
    name = await members.set_name(ctx.session, ctx.member_id, ctx.incoming.text)
    await ctx.clear_step()
    ctx.reply(ctx.t("profile.name_saved", name=name))


async def ask_phone(ctx: Context) -> None:
    ctx.reply(
        ctx.t("profile.ask_phone"),
        request=((RequestButton(ctx.t("profile.share_button"), "contact"),),),
    )


@router.step("profile.phone", accepts={Kind.contact, Kind.text}, prompt=ask_phone)
async def receive_phone(ctx: Context) -> None:
    contact = ctx.incoming.contact
    if contact is not None:
        if contact.user_id is not None and contact.user_id != ctx.incoming.user_id:
            raise InvalidInput("profile.phone_not_yours")
        raw = contact.phone
    else:
        raw = ctx.incoming.text
    phone = await members.set_phone(ctx.session, ctx.member_id, raw)
    await ctx.clear_step()
    ctx.reply(ctx.t("profile.phone_saved", phone=_mask_phone(phone or "")), remove_keyboard=True)


@router.command("language", description=N_("cmd.language"), roles=ANYONE, order=91)
async def language(ctx: Context) -> None:
    ctx.reply(
        ctx.t("language.choose"),
        [[Button(label, payload=f"lang:{code}") for code, label in LANGUAGES.items()]],
    )


@router.button("lang", public=True)
async def set_language(ctx: Context) -> None:
    code = ctx.button_args[0] if ctx.button_args else ""
    if code not in LANGUAGES:
        raise InvalidInput("core.stale_button")
    await remember_person(ctx)
    await members.set_locale(ctx.session, ctx.member_id, code)
    ctx.t = translator(code)
    ctx.edit(ctx.t("language.set", language=LANGUAGES[code]))
    ctx.answer(ctx.t("language.set", language=LANGUAGES[code]))
    ctx.send(command_menu(ctx))
