"""Crashes, restarts, a second process and the webhook: nothing lost, nothing answered twice."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import func, select

from bot.db import Database
from models.conversations import ProcessedUpdate
from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import TOKEN, SandboxClient

pytestmark = pytest.mark.e2e

USERS = (1101, 1102, 1103, 1104, 1105)
UNKNOWN = re.compile(r"/x(\d+)")


def answered_commands(messages: list[dict[str, object]]) -> Counter[str]:
    found: Counter[str] = Counter()
    for message in messages:
        match = UNKNOWN.search(str(message.get("text") or ""))
        if match:
            found[match.group(0)] += 1
    return found


async def test_kill_in_the_middle_of_a_burst_then_every_update_is_answered_once(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database
) -> None:
    bot = await start_bot()
    for user in USERS:
        await sandbox.user(user, f"U{user}")
        await sandbox.reply_to(user, "/start demo-resident", count=2)
    greeting_counts = {u: len(await sandbox.bot_messages(u)) for u in USERS}

    # Replies and button answers hang at the "network": the bot commits the first updates,
    # then blocks on answering a button press, with the rest of the burst unconfirmed.
    await sandbox.hold("sendMessage", "answerCallbackQuery")
    burst: list[tuple[int, str]] = []
    for round_ in range(4):
        for user in USERS:
            burst.append((user, f"/x{round_ * 100 + user}"))
    await sandbox.send_many(burst[:10])
    first_message = (await sandbox.bot_messages(USERS[0]))[-1]
    await sandbox.press(USERS[0], first_message["message_id"], "no:such:button", forge=True)
    await sandbox.send_many(burst[10:])
    for _ in range(400):
        if (await sandbox.stats())["calls"].get("answerCallbackQuery"):
            break
        await asyncio.sleep(0.025)
    assert await sandbox.held() >= 2, "replies and the button answer are in flight"

    await bot.kill()
    await sandbox.release()
    after_kill = {u: len(await sandbox.bot_messages(u)) for u in USERS}
    assert after_kill == greeting_counts, "nothing that was held reached anyone"

    await start_bot()
    for user in USERS:
        expected = {f"/x{r * 100 + user}" for r in range(4)}

        def all_answered(ms: list[dict[str, object]], e: set[str] = expected) -> bool:
            return set(answered_commands(ms)) >= e

        messages = await sandbox.wait_until(user, all_answered, timeout=30)
        counts = answered_commands(messages)
        assert counts == Counter({command: 1 for command in expected}), f"user {user}: {counts}"
    first = await sandbox.wait_until(
        USERS[0], lambda ms: any(m["text"] == "这个按钮已失效。" for m in ms)
    )
    texts = [str(m["text"]) for m in first[greeting_counts[USERS[0]] :]]
    assert texts[:3] == [
        "我不认识命令 /x1101。发送 /help 查看您可以使用的命令。",
        "我不认识命令 /x1201。发送 /help 查看您可以使用的命令。",
        "这个按钮已失效。",
    ], "the chat reads in the order it was written"
    assert texts.count("这个按钮已失效。") == 1, "the forged press is answered once too"

    async with demo_db.transaction() as session:
        processed = (
            await session.execute(select(func.count()).select_from(ProcessedUpdate))
        ).scalar_one()
    assert processed == len(USERS) + len(burst) + 1, "joins, the burst and the press"


async def test_a_second_process_on_the_same_sqlite_file_refuses_to_start(
    sandbox: SandboxClient, start_bot: BotFactory, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("one process per database file is a SQLite rule")
    await start_bot()
    env = {
        "PATH": os.environ["PATH"],
        "GRIDBOT_TELEGRAM_TOKEN": TOKEN,
        "GRIDBOT_TELEGRAM_API_URL": sandbox.base_url,
        "GRIDBOT_DATABASE_URL": database_url,
    }
    second = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert second.returncode == 2
    assert "already running on this database file" in second.stderr
    assert "Traceback" not in second.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_checks_the_secret_token(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database
) -> None:
    port, secret = free_port(), secrets.token_urlsafe(16)
    url = f"http://127.0.0.1:{port}/telegram/hook"
    await start_bot(
        GRIDBOT_WEBHOOK_URL=url,
        GRIDBOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        GRIDBOT_WEBHOOK_SECRET=secret,
    )
    await sandbox.user(RESIDENT := 1201, "王阿姨")
    joined = await sandbox.reply_to(RESIDENT, "/start demo-resident", count=2)
    assert "欢迎您" in joined[0]["text"], "updates arrive through the webhook"

    forged = {
        "update_id": 999_000,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": RESIDENT, "type": "private"},
            "from": {"id": RESIDENT, "is_bot": False, "first_name": "X"},
            "text": "/me",
            "entities": [{"type": "bot_command", "offset": 0, "length": 3}],
        },
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=forged, headers=headers) as response:
                assert response.status == 401
    async with demo_db.transaction() as session:
        seen = (
            await session.execute(
                select(ProcessedUpdate).where(ProcessedUpdate.update_id == 999_000)
            )
        ).first()
    assert seen is None, "nothing processed without the secret"
    assert len(await sandbox.bot_messages(RESIDENT)) == 2


async def test_check_reports_settings_database_and_token(
    sandbox: SandboxClient, database_url: str, demo_db: Database, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "GRIDBOT_TELEGRAM_API_URL": sandbox.base_url,
        "GRIDBOT_DATABASE_URL": database_url,
    }
    good = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "check"],
        env={**env, "GRIDBOT_TELEGRAM_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "✓ token: accepted by" in good.stdout
    assert "@gridbot_sandbox_bot" in good.stdout
    bad = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "check"],
        env={**env, "GRIDBOT_TELEGRAM_TOKEN": "999:WRONG"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "✗ token: the Bot API said" in bad.stdout
    assert "✓ database" in bad.stdout
