"""A meeting end to end: created from the CLI, the organiser shows the check-in code in the
room, attendees check in by typing it or by sharing their location — through the real aiogram
runtime, over HTTP, against the sandbox."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.db import Database
from models.base import utcnow
from services.access import Actor
from services.invites import create_invite
from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import ROOT, SandboxClient

pytestmark = pytest.mark.e2e

RESIDENT, VOLUNTEER, COORDINATOR, NEIGHBOUR = 1101, 1102, 1104, 1108
VENUE = (31.2300, 121.4730)


def button(message: dict[str, Any], label_part: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label_part in key["text"] and key.get("callback_data"):
                return str(key["callback_data"])
    raise AssertionError(f"no button {label_part!r} in {message.get('reply_markup')}")


async def send_location(sandbox: SandboxClient, user_id: int, lat: float, lon: float) -> None:
    body = {"user_id": user_id, "latitude": lat, "longitude": lon}
    async with sandbox.http.post(f"{sandbox.base_url}/_sandbox/send_location", json=body) as r:
        assert r.status == 200, await r.text()


async def gridbot(database_url: str, *args: str) -> str:
    """Run the CLI (`gridbot ...`) against the test database; returns what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={"GRIDBOT_DATABASE_URL": database_url, "GRIDBOT_LOG_LEVEL": "WARNING"},
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def next_bot_message(sandbox: SandboxClient, chat_id: int, contains: str) -> dict[str, Any]:
    found = await sandbox.wait_until(
        chat_id, lambda ms: any(contains in (m.get("text") or "") for m in ms)
    )
    return [m for m in found if contains in (m.get("text") or "")][-1]


async def test_check_in_by_code_and_by_location_through_the_sandbox(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database, database_url: str
) -> None:
    async with demo_db.transaction() as session:
        await create_invite(
            session, Actor.cli(), role="resident", unit_code="B4", now=utcnow(), token="e2e-b4"
        )
    await start_bot()
    for user_id, name, token in (
        (COORDINATOR, "陈静", "demo-coordinator"),
        (RESIDENT, "王阿姨", "demo-resident"),
        (VOLUNTEER, "李明", "demo-volunteer"),
        (NEIGHBOUR, "光明居民", "e2e-b4"),
    ):
        await sandbox.user(user_id, name)
        await sandbox.reply_to(user_id, f"/start {token}", count=2)

    start = (utcnow() + timedelta(minutes=10)).astimezone(ZoneInfo("Asia/Shanghai"))
    printed = await gridbot(
        database_url,
        "meeting",
        "create",
        "--unit",
        "G1",
        "--title",
        "新德第一网格月月谈",
        "--start",
        f"{start:%Y-%m-%d %H:%M}",
        "--venue",
        "新德社区党群服务站",
        "--roles",
        "resident,volunteer",
        "--lat",
        str(VENUE[0]),
        "--lon",
        str(VENUE[1]),
        "--organiser",
        str(COORDINATOR),
    )
    assert "created series" in printed
    assert f"{start:%Y-%m-%d}" in printed

    listing = (await sandbox.reply_to(COORDINATOR, "/meetings"))[0]
    assert "新德第一网格月月谈" in listing["text"]
    await sandbox.press(COORDINATOR, listing["message_id"], button(listing, "📋 1"))
    card = await next_bot_message(sandbox, COORDINATOR, "【月月谈】新德第一网格月月谈")
    await sandbox.press(COORDINATOR, card["message_id"], button(card, "签到码"))
    shown = await next_bot_message(sandbox, COORDINATOR, "签到码：")
    code = shown["text"].split("\n\n")[1]
    assert len(code) == 6
    assert code.isdigit()

    done = (await sandbox.reply_to(RESIDENT, f"/checkin {code}"))[0]
    assert done["text"].startswith("✅ 签到成功：「新德第一网格月月谈」")
    again = (await sandbox.reply_to(RESIDENT, f"/checkin {code}"))[0]
    assert "签到过了，不会重复计算" in again["text"]
    outsider = (await sandbox.reply_to(NEIGHBOUR, f"/checkin {code}"))[0]
    assert outsider["text"] == "您不在这次会议的邀请范围内。"

    asked = (await sandbox.reply_to(VOLUNTEER, "/checkin"))[0]
    assert asked["reply_markup"]["keyboard"][0][0]["request_location"] is True
    before = len(await sandbox.bot_messages(VOLUNTEER))
    await send_location(sandbox, VOLUNTEER, VENUE[0] + 0.02, VENUE[1])
    far = (await sandbox.wait_until(VOLUNTEER, lambda ms: len(ms) > before))[-1]
    assert far["text"].startswith("您距离会场约 2.2 km")
    await send_location(sandbox, VOLUNTEER, VENUE[0] + 0.0005, VENUE[1])
    near = await next_bot_message(sandbox, VOLUNTEER, "✅ 签到成功")
    assert "新德第一网格月月谈" in near["text"]

    await sandbox.press(COORDINATOR, card["message_id"], button(card, "签到名单"))
    present = await next_bot_message(sandbox, COORDINATOR, "已签到")
    assert present["text"] == "✅「新德第一网格月月谈」已签到 2 人：王阿姨、李明"
