"""Routes one incoming event to its handler; scope is decided once here, for every handler.

Private chats only; membership is checked before member commands; a step that receives the
wrong kind of message asks again; stale or forged buttons get a polite answer and a fresh menu.
A :class:`ServiceError` raised by a handler travels up to the application, which rolls back
the whole update and answers with the refusal alone (see :meth:`bot.app.App.handle`).
"""

from __future__ import annotations

import logging

from bot.i18n import N_
from handlers import menu
from handlers.context import Context
from handlers.router import Handler
from handlers.types import Kind

log = logging.getLogger(__name__)

MAX_TEXT_IN = 4096


async def dispatch(ctx: Context) -> None:
    incoming = ctx.incoming
    if not incoming.chat_is_private:
        if incoming.kind in (Kind.command, Kind.button):
            ctx.reply(ctx.t("core.private_only"))
        return
    if incoming.kind == Kind.button:
        await _button(ctx)
    elif incoming.kind == Kind.command:
        await _command(ctx, incoming.command or "")
    else:
        await _message(ctx)


async def run_guarded(ctx: Context, handler: Handler) -> None:
    await handler(ctx)


async def _command(ctx: Context, name: str) -> None:
    spec = ctx.app.registry.commands.get(name)
    if spec is None:
        ctx.reply(ctx.t("core.unknown_command", command="/" + name[:32]))
        return
    if spec.roles is not None:
        if ctx.member is None or not ctx.actor.is_member:
            ctx.reply(ctx.t("core.join_first"))
            return
        if not spec.visible_to(ctx.actor.roles, True):
            ctx.reply(ctx.t("core.not_for_you", command="/" + name))
            return
    if ctx.state is not None:
        ctx.previous_state = ctx.state
        await ctx.clear_step()
    await run_guarded(ctx, spec.handler)


async def _button(ctx: Context) -> None:
    payload = ctx.incoming.payload or ""
    prefix, _, rest = payload.partition(":")
    fields = rest.split(":") if rest else []
    if prefix == "cmd" and len(fields) == 1:
        await _command(ctx, fields[0])
        return
    spec = ctx.app.registry.buttons.get(prefix)
    if spec is None:
        await stale(ctx)
        return
    if spec.flow:
        if ctx.state is None or not fields or fields[0] != ctx.state.nonce:
            await stale(ctx)
            return
        fields = fields[1:]
    if not spec.public and (ctx.member is None or not ctx.actor.is_member):
        ctx.answer(ctx.t("core.join_first"), alert=True)
        return
    ctx.button_args = fields
    await run_guarded(ctx, spec.handler)


async def stale(ctx: Context) -> None:
    log.info("stale or unknown button on update %s", ctx.incoming.update_id)
    ctx.answer(ctx.t("core.stale_button"))
    ctx.reply(ctx.t("core.stale_button"))
    await menu.show_menu(ctx)


async def _message(ctx: Context) -> None:
    incoming = ctx.incoming
    if incoming.kind == Kind.text and not incoming.text.strip():
        ctx.reply(ctx.t("core.empty_message"))
        return
    if len(incoming.text) > MAX_TEXT_IN:
        ctx.reply(ctx.t("core.too_long", limit=MAX_TEXT_IN))
        return
    state = ctx.state
    if state is not None:
        step = ctx.app.registry.steps.get(state.step)
        if step is None:
            await ctx.clear_step()
            ctx.reply(ctx.t("core.flow_ended"))
            await menu.show_menu(ctx)
            return
        if incoming.kind not in step.accepts:
            ctx.reply(ctx.t(_STEP_WRONG.get(incoming.kind, _STEP_WRONG[Kind.other])))
            if step.prompt is not None:
                await run_guarded(ctx, step.prompt)
            return
        await run_guarded(ctx, step.handler)
        return
    if incoming.kind == Kind.text:
        ctx.reply(ctx.t("core.not_understood"))
    else:
        ctx.reply(ctx.t(_UNEXPECTED.get(incoming.kind, _UNEXPECTED[Kind.other])))


_STEP_WRONG = {
    Kind.text: N_("core.step_wrong_text"),
    Kind.photo: N_("core.step_wrong_photo"),
    Kind.location: N_("core.step_wrong_location"),
    Kind.contact: N_("core.step_wrong_contact"),
    Kind.document: N_("core.step_wrong_document"),
    Kind.sticker: N_("core.step_wrong_sticker"),
    Kind.other: N_("core.step_wrong_other"),
}
"""What a step says when it gets the wrong kind of message (before asking again)."""

_UNEXPECTED = {
    Kind.photo: N_("core.unexpected_photo"),
    Kind.location: N_("core.unexpected_location"),
    Kind.contact: N_("core.unexpected_contact"),
    Kind.document: N_("core.unexpected_document"),
    Kind.sticker: N_("core.unexpected_sticker"),
    Kind.other: N_("core.unexpected_other"),
}
"""What the bot says to a message it did not ask for."""
