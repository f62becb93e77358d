"""A real aiogram Bot against the sandbox: every supported method round-trips."""

from __future__ import annotations

import asyncio
import time

from aiogram import Bot
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.sandbox import SandboxServer
from bot.sandbox.images import sample_png

from .conftest import ANN, BOB, Control, until


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in pairs]
    )


async def test_get_me(abot: Bot) -> None:
    me = await abot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (
        123456,
        True,
        "gridbot_sandbox_bot",
        "Gridbot",
    )


async def test_get_updates_confirms_by_offset(abot: Bot, control: Control) -> None:
    sent = [await control.post("send", {"user_id": ANN.id, "text": f"m{i}"}) for i in range(3)]
    updates = await abot.get_updates()
    assert [u.update_id for u in updates] == [s["update_id"] for s in sent]
    assert [u.message.text for u in updates if u.message] == ["m0", "m1", "m2"]
    assert updates[0].message
    assert updates[0].message.from_user
    assert updates[0].message.from_user.id == ANN.id
    # Without a new offset the same updates are delivered again ...
    assert len(await abot.get_updates(limit=2)) == 2
    # ... an offset confirms everything before it.
    assert [u.update_id for u in await abot.get_updates(offset=updates[1].update_id + 1)] == [
        updates[2].update_id
    ]
    assert await abot.get_updates(offset=updates[2].update_id + 1) == []
    assert (await control.get("stats"))["updates_pending"] == 0


async def test_get_updates_long_poll_times_out_empty(abot: Bot) -> None:
    started = time.monotonic()
    assert await abot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 2.0


async def test_get_updates_returns_as_soon_as_an_update_arrives(
    abot: Bot, control: Control, sandbox: SandboxServer
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(abot.get_updates(timeout=10))
    await until(lambda: sandbox.state.updates.polling)
    await control.post("send", {"user_id": ANN.id, "text": "/start demo"})
    updates = await poll
    assert time.monotonic() - started < 2.0
    assert len(updates) == 1
    assert updates[0].message
    entities = updates[0].message.entities or []
    assert [(e.type, e.offset, e.length) for e in entities] == [("bot_command", 0, 6)]


async def test_send_message_with_inline_keyboard_edit_and_answer(
    abot: Bot, control: Control
) -> None:
    sent = await abot.send_message(
        ANN.id, "<b>报修</b> Repair?", parse_mode="HTML", reply_markup=keyboard(("Yes", "r:yes"))
    )
    assert sent.text == "报修 Repair?"
    assert sent.entities
    assert (sent.entities[0].type, sent.entities[0].length) == ("bold", 2)
    assert sent.reply_markup
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "r:yes"
    assert sent.chat.id == ANN.id
    assert sent.from_user
    assert sent.from_user.is_bot

    pressed = await control.post(
        "press", {"user_id": ANN.id, "message_id": sent.message_id, "callback_data": "r:yes"}
    )
    [update] = await abot.get_updates()
    query = update.callback_query
    assert query
    assert query.id == pressed["callback_query_id"]
    assert query.data == "r:yes"
    assert query.message
    assert query.message.message_id == sent.message_id
    assert query.chat_instance
    assert await abot.answer_callback_query(query.id, text="已收到 Received", show_alert=True)
    answers = (await control.get(f"chats/{ANN.id}/callback_answers"))["answers"]
    assert [(a["text"], a["show_alert"]) for a in answers] == [("已收到 Received", True)]

    edited = await abot.edit_message_text(
        "Done ✅", chat_id=ANN.id, message_id=sent.message_id, reply_markup=keyboard(("Undo", "u"))
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Done ✅"
    assert edited.edit_date is not None
    [view] = await control.messages(ANN.id, after=sent.message_id - 1)
    assert view["text"] == "Done ✅"
    assert view["edit_count"] == 1
    assert view["reply_markup"] == {"inline_keyboard": [[{"text": "Undo", "callback_data": "u"}]]}

    cleared = await abot.edit_message_reply_markup(chat_id=ANN.id, message_id=sent.message_id)
    assert not isinstance(cleared, bool)
    assert cleared.reply_markup is None
    assert await abot.delete_message(ANN.id, sent.message_id)
    assert await control.messages(ANN.id) == []


async def test_reply_keyboards_are_stored_for_the_page(abot: Bot, control: Control) -> None:
    markup = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📍 Where", request_location=True)],
            [KeyboardButton(text="Hi")],
        ],
        one_time_keyboard=True,
    )
    sent = await abot.send_message(BOB.id, "Share?", reply_markup=markup)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    await abot.send_message(BOB.id, "Thanks", reply_markup=ReplyKeyboardRemove())
    first, second = await control.messages(BOB.id)
    assert first["reply_markup"]["keyboard"][0][0] == {"text": "📍 Where", "request_location": True}
    assert first["reply_markup"]["one_time_keyboard"] is True
    assert second["reply_markup"] == {"remove_keyboard": True}


async def test_send_photo_upload_then_by_file_id_and_download(abot: Bot, control: Control) -> None:
    png = sample_png(200, 100, seed=1)
    first = await abot.send_photo(
        ANN.id, BufferedInputFile(png, "map.png"), caption="<i>Map</i>", parse_mode="HTML"
    )
    assert first.photo
    assert first.caption == "Map"
    biggest = first.photo[-1]
    assert (biggest.width, biggest.height, biggest.file_size) == (200, 100, len(png))
    assert len({p.file_id for p in first.photo}) == len(first.photo) >= 2

    again = await abot.send_photo(BOB.id, biggest.file_id)
    assert again.photo
    assert [p.file_id for p in again.photo] == [p.file_id for p in first.photo]

    file = await abot.get_file(biggest.file_id)
    assert file.file_path
    assert file.file_size == len(png)
    downloaded = await abot.download_file(file.file_path)
    assert downloaded is not None
    assert downloaded.read() == png

    [view] = await control.messages(BOB.id)
    async with control.session.get(control.base_url + view["photo"]) as resp:
        assert resp.content_type == "image/png"
        assert await resp.read() == png


async def test_send_document_upload(abot: Bot, control: Control) -> None:
    sent = await abot.send_document(
        ANN.id, BufferedInputFile("报告 report\n".encode(), "报告.txt"), caption="weekly"
    )
    doc = sent.document
    assert doc
    assert doc.file_name == "报告.txt"
    assert doc.mime_type == "text/plain"
    assert doc.file_size == len("报告 report\n".encode())
    [view] = await control.messages(ANN.id)
    assert view["document"]["file_name"] == "报告.txt"
    assert view["caption"] == "weekly"
    async with control.session.get(control.base_url + view["document"]["url"]) as resp:
        assert await resp.text() == "报告 report\n"


async def test_chat_action_and_get_chat(abot: Bot, sandbox: SandboxServer) -> None:
    assert await abot.send_chat_action(ANN.id, "typing")
    assert sandbox.state.chats[ANN.id].action == "typing"
    chat = await abot.get_chat(ANN.id)
    assert (chat.id, chat.type, chat.first_name, chat.username) == (ANN.id, "private", "Ann", "ann")


async def test_commands_per_scope_and_language(abot: Bot, control: Control) -> None:
    chat_scope = BotCommandScopeChat(chat_id=ANN.id)
    await abot.set_my_commands([BotCommand(command="start", description="Start")])
    await abot.set_my_commands(
        [BotCommand(command="help", description="Help")], scope=BotCommandScopeAllPrivateChats()
    )
    await abot.set_my_commands(
        [BotCommand(command="report", description="上报问题")], scope=chat_scope, language_code="zh"
    )
    got = await abot.get_my_commands(scope=chat_scope, language_code="zh")
    assert [(c.command, c.description) for c in got] == [("report", "上报问题")]
    assert await abot.get_my_commands(scope=chat_scope) == []  # exact (scope, language) only

    # Ann speaks zh-hans → the chat scope in "zh"; Bob (en) falls back to all_private_chats.
    ann = await control.get(f"chats/{ANN.id}/commands")
    assert ann["commands"] == [{"command": "report", "description": "上报问题"}]
    assert ann["scope"] == {"type": "chat", "chat_id": ANN.id}
    assert ann["language_code"] == "zh"
    bob = await control.get(f"chats/{BOB.id}/commands")
    assert bob["commands"] == [{"command": "help", "description": "Help"}]

    assert await abot.delete_my_commands(scope=chat_scope, language_code="zh")
    assert await abot.delete_my_commands(scope=BotCommandScopeAllPrivateChats())
    ann = await control.get(f"chats/{ANN.id}/commands")
    assert ann["commands"] == [{"command": "start", "description": "Start"}]
    assert ann["scope"] == {"type": "default"}


async def test_location_and_caption_edit(abot: Bot, control: Control) -> None:
    location = await abot.send_location(ANN.id, latitude=31.2304, longitude=121.4737)
    assert location.location
    assert (location.location.latitude, location.location.longitude) == (31.2304, 121.4737)
    photo = await abot.send_photo(ANN.id, BufferedInputFile(sample_png(8, 8), "p.png"))
    edited = await abot.edit_message_caption(
        chat_id=ANN.id, message_id=photo.message_id, caption="<b>new</b>", parse_mode="HTML"
    )
    assert not isinstance(edited, bool)
    assert edited.caption == "new"
    assert edited.caption_entities
    assert edited.caption_entities[0].type == "bold"
    views = await control.messages(ANN.id)
    assert views[0]["location"] == {"latitude": 31.2304, "longitude": 121.4737}
    assert (views[1]["caption"], views[1]["edit_count"]) == ("new", 1)
