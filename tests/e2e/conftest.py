"""End-to-end fixtures: the sandbox Bot API in the test's event loop, the real bot as a child
process talking to it over HTTP, and a migrated, seeded database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.db import Database
from bot.sandbox import SandboxServer
from tests.e2e.sandbox_client import TOKEN, BotProcess, SandboxClient

pytestmark = pytest.mark.e2e


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxClient]:
    server = SandboxServer(token=TOKEN, bot_username="gridbot_sandbox_bot")
    url = await server.start()
    client = SandboxClient(url)
    yield client
    await client.close()
    await server.stop()


BotFactory = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def start_bot(
    sandbox: SandboxClient, demo_db: Database, database_url: str, tmp_path: Path
) -> AsyncIterator[BotFactory]:
    """Start (or restart) the bot; every process is stopped at the end of the test."""
    processes: list[BotProcess] = []

    async def start(runtime: str = "aiogram", **env: str) -> BotProcess:
        process = BotProcess(sandbox.base_url, database_url, tmp_path / "bot.log", runtime, **env)
        await process.start()
        processes.append(process)
        await process.wait_ready(sandbox)
        return process

    yield start
    for process in processes:
        await process.stop()


@pytest.fixture
async def bot(start_bot: BotFactory) -> BotProcess:
    return await start_bot()
