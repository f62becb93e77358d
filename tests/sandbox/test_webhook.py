"""Webhook delivery: secret header, order, retry until 2xx, conflict with getUpdates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError
from aiohttp import web

from bot.sandbox import SandboxServer
from bot.sandbox.errors import CONFLICT_SET_WEBHOOK, CONFLICT_WEBHOOK

from .conftest import ANN, Control, until


class Receiver:
    """A bot-side webhook endpoint that fails its first `failures` requests with 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[str | None, dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.requests.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver(failures=1)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield hook
    await runner.cleanup()


async def test_webhook_delivery_with_secret_and_retry(
    abot: Bot, control: Control, receiver: Receiver
) -> None:
    assert await abot.set_webhook(receiver.url, secret_token="s3cr3t-Token_1")
    info = await abot.get_webhook_info()
    assert info.url == receiver.url
    assert info.pending_update_count == 0

    first = await control.post("send", {"user_id": ANN.id, "text": "one"})
    second = await control.post("send", {"user_id": ANN.id, "text": "two"})
    await until(lambda: len(receiver.requests) == 3)
    ids = [body["update_id"] for _, body in receiver.requests]
    # The first attempt got 500 and was retried before the next update was sent.
    assert ids == [first["update_id"], first["update_id"], second["update_id"]]
    assert {secret for secret, _ in receiver.requests} == {"s3cr3t-Token_1"}
    assert receiver.requests[2][1]["message"]["text"] == "two"

    info = await abot.get_webhook_info()
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

    with pytest.raises(TelegramConflictError) as caught:
        await abot.get_updates()
    assert caught.value.message == CONFLICT_WEBHOOK


async def test_delete_webhook_returns_to_polling(
    abot: Bot, control: Control, receiver: Receiver
) -> None:
    receiver.failures = 10**6  # the bot is down: updates stay pending
    assert await abot.set_webhook(receiver.url)
    await control.post("send", {"user_id": ANN.id, "text": "queued"})
    await until(lambda: len(receiver.requests) >= 1)
    assert await abot.delete_webhook()
    assert (await abot.get_webhook_info()).url == ""
    [update] = await abot.get_updates()
    assert update.message
    assert update.message.text == "queued"


async def test_set_webhook_terminates_poller_and_drops_pending(
    abot: Bot, control: Control, receiver: Receiver, sandbox: SandboxServer
) -> None:
    poll = asyncio.create_task(control.api("getUpdates", timeout=5))
    await until(lambda: sandbox.state.updates.polling)
    assert await abot.set_webhook(receiver.url)
    assert await poll == (
        409,
        {"ok": False, "error_code": 409, "description": CONFLICT_SET_WEBHOOK},
    )
    assert await abot.delete_webhook()

    await control.post("send", {"user_id": ANN.id, "text": "old"})
    assert (await abot.get_webhook_info()).pending_update_count == 1
    assert await abot.set_webhook(receiver.url, drop_pending_updates=True)
    await control.post("send", {"user_id": ANN.id, "text": "new"})
    await until(lambda: len(receiver.requests) == 2)
    assert [body["message"]["text"] for _, body in receiver.requests] == ["new", "new"]
