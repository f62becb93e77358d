"""Fixtures: a running sandbox, a control-API client, and real aiogram / PTB bots on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import telegram
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.sandbox import DemoUser, SandboxServer

TOKEN = "123456:SANDBOX"
ANN = DemoUser(
    1001, "Ann", "Lee", username="ann", phone_number="+8613800000001", label="居民 Resident"
)
BOB = DemoUser(1002, "Bob", language_code="en", label="网格员 Grid worker")


class FastCloseSession(AiohttpSession):
    """aiogram's close() sleeps 250 ms for TLS shutdown; there is no TLS here."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class Control:
    """Small JSON client for /_sandbox/ and raw Bot API calls."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        async with self.session.post(f"{self.base_url}/_sandbox/{path}", json=body) as resp:
            data: dict[str, Any] = await resp.json()
            assert resp.status == status, data
            return data

    async def get(self, path: str, status: int = 200, **query: Any) -> dict[str, Any]:
        params = {k: str(v) for k, v in query.items()}
        async with self.session.get(f"{self.base_url}/_sandbox/{path}", params=params) as resp:
            data: dict[str, Any] = await resp.json()
            assert resp.status == status, data
            return data

    async def api(self, method: str, token: str = TOKEN, **params: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.base_url}/bot{token}/{method}", json=params) as resp:
            return resp.status, await resp.json()

    async def messages(self, chat_id: int, after: int = 0) -> list[dict[str, Any]]:
        data = await self.get(f"chats/{chat_id}/messages", after_message_id=after)
        messages: list[dict[str, Any]] = data["messages"]
        return messages


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(token=TOKEN, demo_users=[ANN, BOB])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def control(sandbox: SandboxServer) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession() as session:
        yield Control(sandbox.base_url, session)


@pytest.fixture
async def abot(sandbox: SandboxServer) -> AsyncIterator[Bot]:
    session = FastCloseSession(api=TelegramAPIServer.from_base(sandbox.base_url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await session.close()


@pytest.fixture
async def ptb(sandbox: SandboxServer) -> AsyncIterator[telegram.Bot]:
    bot = telegram.Bot(
        TOKEN,
        base_url=f"{sandbox.base_url}/bot",
        base_file_url=f"{sandbox.base_url}/file/bot",
    )
    async with bot:
        yield bot


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Waits for a condition on in-process state (yielding to the event loop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)
