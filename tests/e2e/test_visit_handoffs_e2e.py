"""Visit → issue and visit → wish through the real aiogram runtime against the sandbox: the
volunteer logs a visit from the morning nudge (and sees the points it earned), notes the needs
found, reports them as an issue in one tap (a resent tap makes no second one) and puts it in the
right category; the grid worker is told of the new report; the same needs become a wish for the
household in one more tap."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select

from bot.db import Database
from models.issues import Issue
from models.visits import Visit
from models.wishes import Wish
from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import SandboxClient
from tests.e2e.test_visits_e2e import (
    GRID_WORKER,
    VOLUNTEER,
    a_volunteer_with_building_b1,
    button,
    current,
    edited_to,
)

pytestmark = pytest.mark.e2e


async def press_for_new(
    sandbox: SandboxClient, user: int, message_id: int, data: str
) -> list[dict[str, Any]]:
    """Press a button and return the messages the bot sent in answer."""
    before = len(await sandbox.bot_messages(user))
    await sandbox.press(user, message_id, data)
    return (await sandbox.wait_until(user, lambda ms: len(ms) > before))[before:]


async def test_needs_found_at_the_door_become_a_tracked_issue(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database
) -> None:
    await sandbox.user(VOLUNTEER, "李明")
    await sandbox.user(GRID_WORKER, "张伟")
    await a_volunteer_with_building_b1(demo_db)
    await start_bot(GRIDBOT_VISIT_NUDGE_TIME="00:00")
    await sandbox.reply_to(GRID_WORKER, "/start demo-gridworker", count=2)

    found = await sandbox.wait_until(
        VOLUNTEER, lambda ms: any(m["text"].startswith("🚪 今天的走访") for m in ms)
    )
    nudge = next(m for m in found if m["text"].startswith("🚪 今天的走访"))
    before = len(await sandbox.bot_messages(VOLUNTEER))
    await sandbox.press(VOLUNTEER, nudge["message_id"], button(nudge, "📝 4."))
    question = (await sandbox.wait_until(VOLUNTEER, lambda ms: len(ms) > before))[before]
    await sandbox.press(VOLUNTEER, question["message_id"], button(question, "见到本人"))
    logged = await edited_to(sandbox, VOLUNTEER, question["message_id"], "已记录走访")
    assert "🏅 积分 +2 · 服务时长 0.5 小时" in logged.splitlines()

    shown = await current(sandbox, VOLUNTEER, question["message_id"])
    await sandbox.press(VOLUNTEER, question["message_id"], button(shown, "发现需求"))
    await sandbox.wait_until(VOLUNTEER, lambda ms: "请描述发现的需求" in ms[-1]["text"])
    saved = (await sandbox.reply_to(VOLUNTEER, "楼道灯坏了，老人晚上下楼看不见"))[0]
    to_issue = button(saved, "上报为问题")
    reported = (await press_for_new(sandbox, VOLUNTEER, saved["message_id"], to_issue))[0]
    assert reported["text"].startswith("📋 已上报为问题 C1-2026-")
    number = re.findall(r"C1-\d{4}-\d{4}", reported["text"])[0]

    # A client that lost the answer sends the same tap again: the same issue, not a second one.
    again = (await press_for_new(sandbox, VOLUNTEER, saved["message_id"], to_issue))[0]
    assert again["text"].startswith(f"这条已经上报过了：问题 {number}")

    await sandbox.press(VOLUNTEER, reported["message_id"], button(reported, "设施损坏"))
    changed = await edited_to(sandbox, VOLUNTEER, reported["message_id"], "类别已改为")
    assert changed.startswith(f"问题 {number} 的类别已改为：设施损坏。")

    told = await sandbox.wait_until(GRID_WORKER, lambda ms: any(number in m["text"] for m in ms))
    assert any("楼道灯坏了" in m["text"] for m in told if number in m["text"])

    to_wish = button(saved, "发布为心愿")
    wished = (await press_for_new(sandbox, VOLUNTEER, saved["message_id"], to_wish))[0]
    assert wished["text"].startswith("🎁 已代住户发布心愿 #")

    async with demo_db.transaction() as session:
        wishes = [w for w in (await session.execute(select(Wish))).scalars() if w.source]
        issues = list((await session.execute(select(Issue))).scalars())
        visits = [v for v in (await session.execute(select(Visit))).scalars() if v.needs]
    assert [(i.number, i.source, i.source_id) for i in issues if i.source] == [
        (number, "visit", visits[0].id)
    ]
    assert [(w.source, w.source_id, w.text) for w in wishes] == [
        ("visit", visits[0].id, "楼道灯坏了，老人晚上下楼看不见")
    ]
