"""Full polling loops of aiogram's Dispatcher and PTB's Application against the sandbox."""

from __future__ import annotations

import asyncio
import time

import telegram
from aiogram import Bot, Dispatcher, F
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.sandbox import SandboxServer

from .conftest import ANN, BOB, TOKEN, Control


async def test_aiogram_dispatcher_round_trip(abot: Bot, control: Control) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Join", callback_data="join")]]
        )
        await message.answer(f"Welcome, payload={command.args}", reply_markup=markup)

    @dp.callback_query(F.data == "join")
    async def join(query: CallbackQuery) -> None:
        await query.answer("Joined!")
        assert query.message is not None
        await abot.edit_message_text(
            "You joined ✅", chat_id=query.message.chat.id, message_id=query.message.message_id
        )

    polling = asyncio.create_task(dp.start_polling(abot, handle_signals=False, polling_timeout=1))
    try:
        await control.post("send", {"user_id": ANN.id, "text": "/start invite-7"})
        got = await control.get("wait", chat_id=ANN.id, timeout=5)
        [welcome] = got["messages"]
        assert welcome["text"] == "Welcome, payload=invite-7"
        seq = (await control.get("config"))["seq"]
        await control.post(
            "press",
            {"user_id": ANN.id, "message_id": welcome["message_id"], "callback_data": "join"},
        )
        deadline = time.monotonic() + 5
        edited = None
        while edited is None and time.monotonic() < deadline:
            events = await control.get("events", after_seq=seq, timeout=2)
            seq = events["seq"]
            edited = next((m for m in events["messages"] if m["edit_count"]), None)
        assert edited is not None
        assert edited["text"] == "You joined ✅"
        answers = (await control.get(f"chats/{ANN.id}/callback_answers"))["answers"]
        assert [a["text"] for a in answers] == ["Joined!"]
    finally:
        await dp.stop_polling()
        await polling


async def test_ptb_application_round_trip(sandbox: SandboxServer, control: Control) -> None:
    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"PTB hello {context.args}")

    async def pressed(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("ok", show_alert=True)

    application = (
        Application.builder()
        .token(TOKEN)
        .base_url(f"{sandbox.base_url}/bot")
        .base_file_url(f"{sandbox.base_url}/file/bot")
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            await control.post("send", {"user_id": BOB.id, "text": "/start a b"})
            [reply] = (await control.get("wait", chat_id=BOB.id, timeout=5))["messages"]
            assert reply["text"] == "PTB hello ['a', 'b']"
            await control.post(
                "press",
                {"user_id": BOB.id, "message_id": 1, "callback_data": "x", "forge": True},
            )
            deadline = time.monotonic() + 5
            while not (await control.get(f"chats/{BOB.id}/callback_answers"))["answers"]:
                assert time.monotonic() < deadline
                await control.get("events", after_seq=sandbox.state.seq, timeout=1)
            [answer] = (await control.get(f"chats/{BOB.id}/callback_answers"))["answers"]
            assert (answer["text"], answer["show_alert"]) == ("ok", True)
        finally:
            await application.updater.stop()
            await application.stop()
