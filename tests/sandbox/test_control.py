"""The control API: acting as users, press validation, transcripts, waiting, stats, reset."""

from __future__ import annotations

import asyncio

import aiohttp
from aiogram import Bot
from aiogram.types import InaccessibleMessage, InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox import SandboxServer
from bot.sandbox.images import image_size, sample_png

from .conftest import ANN, BOB, Control


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="b", callback_data=data)]]
    )


async def test_users_and_config(control: Control) -> None:
    users = (await control.get("users"))["users"]
    assert [(u["id"], u["label"]) for u in users] == [(ANN.id, ANN.label), (BOB.id, BOB.label)]
    created = await control.post("users", {"id": 2001, "first_name": "Cai", "username": "cai"})
    assert created["user"]["language_code"] == "zh-hans"
    assert (await control.post("send", {"user_id": 2001, "text": "hi"}))["message_id"] == 1
    unknown = await control.post("send", {"user_id": 3001, "text": "hi"}, status=404)
    assert unknown["ok"] is False
    assert "unknown user" in unknown["error"]
    config = await control.get("config")
    assert config["bot"]["username"] == "gridbot_sandbox_bot"
    assert config["demo_user_ids"] == [ANN.id, BOB.id]


async def test_press_validation_and_forge(abot: Bot, control: Control) -> None:
    sent = await abot.send_message(ANN.id, "choose", reply_markup=keyboard("pick:1"))
    body = {"user_id": ANN.id, "message_id": sent.message_id}
    wrong = await control.post("press", {**body, "callback_data": "pick:2"}, status=400)
    assert "no inline button" in wrong["error"]
    user_msg = await control.post("send", {"user_id": ANN.id, "text": "hi"})
    await control.post(
        "press",
        {**body, "message_id": user_msg["message_id"], "callback_data": "pick:1"},
        status=400,
    )
    await control.post("press", {**body, "message_id": 99, "callback_data": "pick:1"}, status=400)
    forged = await control.post("press", {**body, "callback_data": "pick:2", "forge": True})
    gone = await control.post(
        "press", {**body, "message_id": 99, "callback_data": "x", "forge": True}
    )
    updates = await abot.get_updates()
    queries = [u.callback_query for u in updates if u.callback_query]
    assert [q.id for q in queries] == [forged["callback_query_id"], gone["callback_query_id"]]
    assert queries[0].data == "pick:2"
    assert queries[0].message
    assert queries[0].message.message_id == sent.message_id
    # A press on a message the bot no longer has arrives as an InaccessibleMessage (date 0).
    assert isinstance(queries[1].message, InaccessibleMessage)
    assert queries[1].message.message_id == 99


async def test_user_media_messages(abot: Bot, control: Control) -> None:
    await control.post("send_photo", {"user_id": ANN.id, "caption": "pothole"})
    png = sample_png(30, 20)
    form = aiohttp.FormData()
    form.add_field("user_id", str(BOB.id))
    form.add_field("photo", png, filename="p.png", content_type="image/png")
    async with control.session.post(f"{control.base_url}/_sandbox/send_photo", data=form) as r:
        assert r.status == 200
    await control.post(
        "send_location", {"user_id": ANN.id, "latitude": 31.2304, "longitude": 121.4737}
    )
    await control.post("send_contact", {"user_id": ANN.id, "phone_number": "+8613800000001"})
    await control.post("send_sticker", {"user_id": ANN.id})
    await control.post("send_document", {"user_id": ANN.id, "file_name": "plan.pdf"})
    updates = [u.message for u in await abot.get_updates() if u.message]
    photo, uploaded, location, contact, sticker, document = updates
    assert photo.photo
    assert len(photo.photo) == 3
    assert photo.caption == "pothole"
    assert uploaded.photo
    assert (uploaded.photo[-1].width, uploaded.photo[-1].height) == (30, 20)
    file = await abot.get_file(photo.photo[-1].file_id)
    assert file.file_path
    data = await abot.download_file(file.file_path)
    assert data is not None
    assert image_size(data.read()) == (640, 480, "image/png")
    assert location.location
    assert location.location.latitude == 31.2304
    assert contact.contact
    assert contact.contact.user_id == ANN.id
    assert contact.contact.first_name == "Ann"
    assert contact.contact.phone_number == "+8613800000001"
    assert sticker.sticker
    assert sticker.sticker.emoji == "👍"
    assert document.document
    assert document.document.file_name == "plan.pdf"
    assert document.document.mime_type == "application/pdf"
    views = await control.messages(ANN.id)
    assert views[0]["photo"].startswith("/_sandbox/files/")
    assert not views[0]["from_bot"]
    assert views[1]["location"] == {"latitude": 31.2304, "longitude": 121.4737}
    assert views[4]["document"]["file_name"] == "plan.pdf"


async def test_wait_for_bot_messages(abot: Bot, control: Control) -> None:
    timed_out = await control.get("wait", chat_id=ANN.id, timeout=0.1)
    assert timed_out == {"ok": True, "messages": [], "timed_out": True}
    waiting = asyncio.create_task(
        control.get("wait", chat_id=ANN.id, after_message_id=0, timeout=5)
    )
    await asyncio.sleep(0.05)
    await control.post("send", {"user_id": ANN.id, "text": "user messages do not count"})
    await abot.send_message(BOB.id, "other chats do not count")
    await abot.send_message(ANN.id, "reply")
    got = await waiting
    assert [m["text"] for m in got["messages"]] == ["reply"]
    assert got["timed_out"] is False
    anywhere = await control.get("wait", after_message_id=1, timeout=1)
    assert [m["text"] for m in anywhere["messages"]] == ["reply"]


async def test_events_report_new_edited_and_deleted_messages(abot: Bot, control: Control) -> None:
    seq = (await control.get("config"))["seq"]
    sent = await abot.send_message(ANN.id, "v1", reply_markup=keyboard("k"))
    await abot.edit_message_text("v2", chat_id=ANN.id, message_id=sent.message_id)
    await abot.send_chat_action(ANN.id, "typing")
    events = await control.get("events", after_seq=seq, timeout=1)
    [message] = events["messages"]
    assert (message["text"], message["edit_count"], message["reply_markup"]) == ("v2", 1, None)
    assert events["actions"] == [{"chat_id": ANN.id, "action": "typing"}]
    await abot.delete_message(ANN.id, sent.message_id)
    later = await control.get("events", after_seq=events["seq"], timeout=1)
    assert [m["deleted"] for m in later["messages"]] == [True]
    stale = await control.get("events", after_seq=10**9, timeout=0)
    assert stale["reset"] is True


async def test_stats_and_reset(abot: Bot, control: Control, sandbox: SandboxServer) -> None:
    await control.post("send", {"user_id": ANN.id, "text": "hi"})
    [update] = await abot.get_updates()
    await abot.send_message(ANN.id, "hello")
    await control.api("sendMessage", chat_id=ANN.id, text="")
    stats = await control.get("stats")
    assert stats["calls"] == {"getUpdates": 1, "sendMessage": 2}
    assert stats["messages_from_bot"] == 1
    assert stats["errors"] == {"400": 1}
    assert (stats["updates_total"], stats["updates_pending"]) == (1, 1)
    await control.post("users", {"id": 5005, "first_name": "Temp"})
    await control.post("reset")
    stats = await control.get("stats")
    assert stats["calls"] == {}
    assert stats["updates_total"] == 0
    assert [u["id"] for u in (await control.get("users"))["users"]] == [ANN.id, BOB.id]
    assert await control.messages(ANN.id) == []
    # Update ids keep increasing so a running bot's offset stays valid.
    again = await control.post("send", {"user_id": ANN.id, "text": "after reset"})
    assert again["update_id"] == update.update_id + 1
    assert again["message_id"] == 1
    assert (await abot.get_me()).id == 123456


async def test_page_and_static_files(control: Control) -> None:
    async with control.session.get(control.base_url + "/") as resp:
        html = await resp.text()
        assert resp.status == 200
        assert "/static/app.js" in html
    async with control.session.get(control.base_url + "/static/app.js") as resp:
        script = await resp.text()
        assert resp.status == 200
    # Bot text must never be injected as HTML.
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    async with control.session.get(control.base_url + "/static/style.css") as resp:
        assert resp.status == 200
