"""A task through the real aiogram runtime, over HTTP, against the sandbox: a coordinator posts
it in the chat, a volunteer takes the only slot from the announcement, a grid worker finds it
full, the volunteer gives it back and the grid worker takes it.

The bot runs on the real clock, so the task starts tomorrow; quiet hours are switched off so the
announcement goes out whatever the hour the test runs at."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import SandboxClient
from tests.e2e.test_wishes_e2e import arrived, button, say, snapshot, tap

pytestmark = pytest.mark.e2e

COORDINATOR, VOLUNTEER, GRID_WORKER = 1301, 1302, 1303


async def test_take_full_give_back_take(
    sandbox: SandboxClient, start_bot: BotFactory, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only, to keep the suite fast: PostgreSQL runs the same flow in-process")
    await start_bot(GRIDBOT_BROADCAST_QUIET_HOURS="08:00-08:00")
    for user, name, token in (
        (COORDINATOR, "陈静", "demo-coordinator"),
        (VOLUNTEER, "李明", "demo-volunteer"),
        (GRID_WORKER, "张伟", "demo-gridworker"),
    ):
        await sandbox.user(user, name)
        await sandbox.reply_to(user, f"/start {token}", count=2)

    tomorrow = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)
    await say(sandbox, COORDINATOR, "/task", "任务名称是什么")
    await say(sandbox, COORDINATOR, "清理3号楼垃圾", "什么时候开始")
    await say(sandbox, COORDINATOR, f"{tomorrow:%Y-%m-%d} 09:00", "什么时候结束")
    await say(sandbox, COORDINATOR, "11:00", "在哪里")
    await say(sandbox, COORDINATOR, "3号楼门口", "需要多少人")
    preview = await say(sandbox, COORDINATOR, "1", "请确认")
    volunteer, worker = await snapshot(sandbox, VOLUNTEER), await snapshot(sandbox, GRID_WORKER)
    await tap(sandbox, COORDINATOR, preview, "发布", "已发布“清理3号楼垃圾”")

    card = await arrived(sandbox, VOLUNTEER, "清理3号楼垃圾", volunteer)
    other = await arrived(sandbox, GRID_WORKER, "清理3号楼垃圾", worker)
    taken = await tap(sandbox, VOLUNTEER, card, "报名（0/1）", "已报名 1/1")
    answers = await sandbox.callback_answers(VOLUNTEER)
    assert answers[-1]["text"] == "报名成功！已报名 1/1。"
    await sandbox.press(GRID_WORKER, other["message_id"], button(other, "报名"))
    full = await _answer(sandbox, GRID_WORKER, "名额已满")
    assert full == "名额已满，谢谢你的热心！"

    await tap(sandbox, VOLUNTEER, taken, "退出（1/1）", "已报名 0/1")
    await tap(sandbox, GRID_WORKER, other, "报名", "已报名 1/1")


async def _answer(sandbox: SandboxClient, user: int, part: str) -> str:
    for _ in range(100):
        answers = await sandbox.callback_answers(user)
        if answers and part in str(answers[-1].get("text")):
            return str(answers[-1]["text"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer containing {part!r}")
