"""A real python-telegram-bot Bot against the sandbox (form bodies, JSON-encoded nesting)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import warnings

import pytest
import telegram
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter

from bot.sandbox import SandboxServer
from bot.sandbox.images import sample_png

from .conftest import ANN, Control, until


def seconds(value: int | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


async def test_get_me_and_updates(ptb: telegram.Bot, control: Control) -> None:
    assert ptb.username == "gridbot_sandbox_bot"
    assert ptb.id == 123456
    assert await ptb.delete_webhook()
    await control.post("send", {"user_id": ANN.id, "text": "你好"})
    [update] = await ptb.get_updates(allowed_updates=["message", "callback_query"])
    assert update.message
    assert update.message.text == "你好"
    assert update.message.from_user
    assert update.message.from_user.language_code == "zh-hans"
    assert await ptb.get_updates(offset=update.update_id + 1) == ()


async def test_long_poll_timeout_and_early_return(
    ptb: telegram.Bot, control: Control, sandbox: SandboxServer
) -> None:
    started = time.monotonic()
    assert await ptb.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 2.0

    started = time.monotonic()
    poll = asyncio.create_task(ptb.get_updates(timeout=10))
    await until(lambda: sandbox.state.updates.polling)
    await control.post("send", {"user_id": ANN.id, "text": "now"})
    [update] = await poll
    assert update.message
    assert update.message.text == "now"
    assert time.monotonic() - started < 2.0


async def test_keyboard_edit_callback_answer(ptb: telegram.Bot, control: Control) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("确认", callback_data="ok:1")]])
    sent = await ptb.send_message(
        ANN.id, "Confirm <i>visit</i>?", parse_mode="HTML", reply_markup=markup
    )
    assert sent.text == "Confirm visit?"
    assert sent.reply_markup == markup
    await control.post(
        "press", {"user_id": ANN.id, "message_id": sent.message_id, "callback_data": "ok:1"}
    )
    [update] = await ptb.get_updates()
    assert update.callback_query
    assert update.callback_query.data == "ok:1"
    assert await ptb.answer_callback_query(update.callback_query.id, text="OK")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await ptb.answer_callback_query(update.callback_query.id, text="again")
    edited = await ptb.edit_message_text("Confirmed", chat_id=ANN.id, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "Confirmed"
    assert edited.reply_markup is None  # editing text without reply_markup drops the keyboard
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await ptb.edit_message_text("Confirmed", chat_id=ANN.id, message_id=sent.message_id)


async def test_photo_document_and_download(ptb: telegram.Bot) -> None:
    png = sample_png(64, 48, seed=2)
    photo = await ptb.send_photo(ANN.id, png, caption="snap")
    assert photo.caption == "snap"
    assert (photo.photo[-1].width, photo.photo[-1].height) == (64, 48)
    file = await ptb.get_file(photo.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == png
    by_id = await ptb.send_photo(ANN.id, photo.photo[-1].file_id)
    assert by_id.photo[-1].file_id == photo.photo[-1].file_id

    doc = await ptb.send_document(ANN.id, b"a,b\n1,2\n", filename="data.csv")
    assert doc.document
    assert doc.document.file_name == "data.csv"
    assert doc.document.mime_type == "text/csv"
    assert doc.document.file_size == 8


async def test_commands_with_chat_scope(ptb: telegram.Bot, control: Control) -> None:
    scope = BotCommandScopeChat(ANN.id)
    assert await ptb.set_my_commands(
        [BotCommand("visit", "预约探访")], scope=scope, language_code="zh"
    )
    [command] = await ptb.get_my_commands(scope=scope, language_code="zh")
    assert (command.command, command.description) == ("visit", "预约探访")
    shown = await control.get(f"chats/{ANN.id}/commands")
    assert shown["commands"] == [{"command": "visit", "description": "预约探访"}]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_errors_map_to_ptb_exceptions(ptb: telegram.Bot, control: Control) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await ptb.send_message(999, "hi")
    await control.post("fail", {"method": "sendMessage", "error_code": 429, "retry_after": 5})
    with pytest.raises(RetryAfter) as caught:
        await ptb.send_message(ANN.id, "hi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert seconds(caught.value.retry_after) == 5
    await control.post("block", {"user_id": ANN.id, "blocked": True})
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await ptb.send_message(ANN.id, "hi")


async def test_conflict_between_two_pollers(
    ptb: telegram.Bot, control: Control, sandbox: SandboxServer
) -> None:
    first = asyncio.create_task(ptb.get_updates(timeout=5))
    await until(lambda: sandbox.state.updates.polling)
    status, body = await control.api("getUpdates", timeout=0)
    assert (status, body) == (200, {"ok": True, "result": []})
    with pytest.raises(Conflict, match=r"(?i)terminated by other getupdates request"):
        await first


async def test_remaining_methods(ptb: telegram.Bot, control: Control) -> None:
    assert await ptb.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
    info = await ptb.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/hook"
    assert info.pending_update_count == 0
    with pytest.raises(Conflict):
        await ptb.get_updates()
    assert await ptb.delete_webhook(drop_pending_updates=True)
    assert (await ptb.get_webhook_info()).url == ""

    assert await ptb.send_chat_action(ANN.id, "upload_photo")
    chat = await ptb.get_chat(ANN.id)
    assert (chat.id, chat.type, chat.first_name) == (ANN.id, "private", "Ann")

    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await ptb.send_message(ANN.id, "text", reply_markup=markup)
    changed = await ptb.edit_message_reply_markup(
        ANN.id,
        sent.message_id,
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("B", callback_data="b")]]),
    )
    assert isinstance(changed, telegram.Message)
    assert changed.reply_markup
    assert changed.reply_markup.inline_keyboard[0][0].callback_data == "b"
    location = await ptb.send_location(ANN.id, latitude=31.2304, longitude=121.4737)
    assert location.location
    assert location.location.longitude == 121.4737
    photo = await ptb.send_photo(ANN.id, sample_png(8, 8), caption="old")
    recaptioned = await ptb.edit_message_caption(ANN.id, photo.message_id, caption="new")
    assert isinstance(recaptioned, telegram.Message)
    assert recaptioned.caption == "new"
    assert await ptb.delete_message(ANN.id, sent.message_id)
    assert [m["message_id"] for m in await control.messages(ANN.id)] == [
        location.message_id,
        photo.message_id,
    ]

    assert await ptb.set_my_commands([BotCommand("start", "Start")])
    assert await ptb.delete_my_commands()
    assert await ptb.get_my_commands() == ()
