"""getUpdates semantics: conflicts, allowed_updates, negative offsets, limits."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError

from bot.sandbox import SandboxServer
from bot.sandbox.errors import CONFLICT_POLLING

from .conftest import ANN, Control, until


async def test_second_get_updates_terminates_the_waiting_one(
    abot: Bot, control: Control, sandbox: SandboxServer
) -> None:
    first = asyncio.create_task(abot.get_updates(timeout=5))
    await until(lambda: sandbox.state.updates.polling)
    second = asyncio.create_task(control.api("getUpdates", timeout=5))
    with pytest.raises(TelegramConflictError) as caught:
        await first
    assert caught.value.message == CONFLICT_POLLING
    # The newer request keeps polling and gets the next update.
    await until(lambda: sandbox.state.updates.polling)
    await control.post("send", {"user_id": ANN.id, "text": "hello"})
    status, body = await second
    assert status == 200
    assert body["result"][0]["message"]["text"] == "hello"
    assert (await control.get("stats"))["errors"] == {"409": 1}


async def test_allowed_updates_filter_and_persist(abot: Bot, control: Control) -> None:
    sent = await abot.send_message(ANN.id, "pick", reply_markup=None)
    await control.post("send", {"user_id": ANN.id, "text": "ignored"})
    await control.post(
        "press",
        {"user_id": ANN.id, "message_id": sent.message_id, "callback_data": "x", "forge": True},
    )
    updates = await abot.get_updates(allowed_updates=["callback_query"])
    assert [u.callback_query is not None for u in updates] == [True]
    await control.post("send", {"user_id": ANN.id, "text": "still ignored"})
    # The setting persists between calls.
    assert await abot.get_updates(offset=updates[-1].update_id + 1) == []
    await abot.get_updates(allowed_updates=[])  # empty list restores the default set
    await control.post("send", {"user_id": ANN.id, "text": "seen"})
    [update] = await abot.get_updates()
    assert update.message
    assert update.message.text == "seen"


async def test_limit_and_negative_offset(control: Control) -> None:
    for i in range(5):
        await control.post("send", {"user_id": ANN.id, "text": str(i)})
    _, body = await control.api("getUpdates", limit=2)
    assert [u["message"]["text"] for u in body["result"]] == ["0", "1"]
    _, body = await control.api("getUpdates", offset=-2)
    assert [u["message"]["text"] for u in body["result"]] == ["3", "4"]
    assert (await control.get("stats"))["updates_pending"] == 2


async def test_raw_update_and_send_many(control: Control) -> None:
    injected = await control.post(
        "raw_update", {"update": {"my_chat_member": {"chat": {"id": ANN.id, "type": "private"}}}}
    )
    many = await control.post(
        "send_many", {"items": [{"user_id": ANN.id, "text": f"b{i}"} for i in range(50)]}
    )
    assert many["update_ids"] == list(range(injected["update_id"] + 1, injected["update_id"] + 51))
    _, body = await control.api("getUpdates", limit=100)
    assert "my_chat_member" in body["result"][0]
    assert len(body["result"]) == 51
    stats = await control.get("stats")
    assert stats["updates_total"] == 51
    assert stats["updates_pending"] == 51
