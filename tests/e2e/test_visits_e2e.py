"""Door-knocking through the real aiogram runtime against the sandbox: the morning nudge leads
to a logged visit with the needs found, a grid worker files a household by chat, and a volunteer
of another grid never sees its phone number."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from models.base import utcnow
from models.households import Household
from models.members import Role, RoleGrant
from models.org import Unit
from models.visits import Visit
from services.access import Actor
from services.invites import create_invite
from services.members import Person, ensure_member
from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import SandboxClient

pytestmark = pytest.mark.e2e

VOLUNTEER, GRID_WORKER, FAR_VOLUNTEER = 1002, 1003, 1006


def button(message: dict[str, Any], label_part: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label_part in key["text"] and "callback_data" in key:
                return str(key["callback_data"])
    raise AssertionError(f"no button {label_part!r} on {message.get('text')!r}")


async def edited_to(sandbox: SandboxClient, user: int, message_id: int, part: str) -> str:
    """Wait until the bot has edited the message to contain ``part`` (the sandbox's long poll
    wakes on new messages only, so edits are looked for every few milliseconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        text = str((await current(sandbox, user, message_id))["text"])
        if part in text:
            return text
        if loop.time() > deadline:
            raise AssertionError(f"message {message_id} still says {text!r}")
        await asyncio.sleep(0.05)


async def current(sandbox: SandboxClient, user: int, message_id: int) -> dict[str, Any]:
    """A message as the chat shows it now (after edits)."""
    return next(m for m in await sandbox.bot_messages(user) if m["message_id"] == message_id)


def more_than(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda messages: len(messages) > count


async def a_volunteer_with_building_b1(db: Database) -> None:
    """李明 joined G1 as a volunteer earlier and was given the demo households of B1."""
    async with db.transaction() as session:
        person = Person(VOLUNTEER, VOLUNTEER, "李明", "zh_CN")
        member = await ensure_member(session, person, utcnow())
        units = {u.code: u for u in (await session.execute(select(Unit))).scalars()}
        grid, building = units["G1"], units["B1"]
        assert grid.id is not None
        session.add(RoleGrant(member_id=member.id, role=Role.volunteer, unit_id=grid.id))
        await session.execute(
            update(Household)
            .where(col(Household.building_id) == building.id)
            .values(assignee_id=member.id)
        )


async def test_nudge_to_visit_with_needs_and_a_filed_phone_stays_in_the_grid(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database
) -> None:
    """One bot run, two stories: 李明's morning nudge leads to a logged visit with the needs
    found; then 张伟 files a household by chat and 赵六 of another grid cannot see it."""
    await sandbox.user(VOLUNTEER, "李明")
    await sandbox.user(GRID_WORKER, "张伟")
    await sandbox.user(FAR_VOLUNTEER, "赵六")
    await a_volunteer_with_building_b1(demo_db)
    async with demo_db.transaction() as session:
        await create_invite(
            session, Actor.cli(), role="volunteer", unit_code="G3", now=utcnow(), token="g3-vol"
        )
    await start_bot(GRIDBOT_VISIT_NUDGE_TIME="00:00")

    # Other morning messages (e.g. the service-hours nudge of the last quarter) may come too.
    found = await sandbox.wait_until(
        VOLUNTEER, lambda ms: any(m["text"].startswith("🚪 今天的走访") for m in ms)
    )
    nudge = next(m for m in found if m["text"].startswith("🚪 今天的走访"))
    assert nudge["text"].splitlines() == [
        "🚪 今天的走访：4 户待走访，其中 4 户已逾期",
        "1. 新德1号楼 和平路88弄3号 202 · 出租户 · 逾期 30 天",
        "2. 新德1号楼 和平路88弄3号 301 · 残疾人 · 逾期 10 天",
        "3. 新德1号楼 和平路88弄3号 101 · 独居老人 · 逾期 6 天",
        "4. 新德1号楼 和平路88弄3号 201 · 特需对象、低保户 · 逾期 2 天",
    ]
    before = len(await sandbox.bot_messages(VOLUNTEER))
    await sandbox.press(VOLUNTEER, nudge["message_id"], button(nudge, "📝 4."))
    question = (await sandbox.wait_until(VOLUNTEER, lambda ms: len(ms) > before))[before]
    assert question["text"] == "走访 新德1号楼 和平路88弄3号 201：情况如何？"

    met = button(question, "见到本人")
    await sandbox.press(VOLUNTEER, question["message_id"], met)
    logged = await edited_to(sandbox, VOLUNTEER, question["message_id"], "已记录走访")
    assert logged.startswith("✅ 已记录走访：新德1号楼 和平路88弄3号 201 · 见到本人")
    # A client that lost the answer sends the same press again (the button has moved on).
    await sandbox.press(VOLUNTEER, question["message_id"], met, forge=True)
    await edited_to(sandbox, VOLUNTEER, question["message_id"], "不会重复记录")

    shown = await current(sandbox, VOLUNTEER, question["message_id"])
    await sandbox.press(VOLUNTEER, question["message_id"], button(shown, "发现需求"))
    await sandbox.wait_until(VOLUNTEER, lambda ms: "请描述发现的需求" in ms[-1]["text"])
    saved = await sandbox.reply_to(VOLUNTEER, "老人腿脚不便，需要每周上门送药")
    assert saved[0]["text"].startswith("需求已记录在这次走访里。")
    await sandbox.press(VOLUNTEER, saved[0]["message_id"], button(saved[0], "完成"))
    await edited_to(sandbox, VOLUNTEER, saved[0]["message_id"], "走访已保存")

    async with demo_db.transaction() as session:
        visits = list((await session.execute(select(Visit).order_by(col(Visit.id)))).scalars())
    fresh = [v for v in visits if v.member_id is not None]
    assert [(v.outcome, v.needs) for v in fresh] == [("met", "老人腿脚不便，需要每周上门送药")]

    await sandbox.reply_to(GRID_WORKER, "/start demo-gridworker", count=2)
    prompt = (await sandbox.reply_to(GRID_WORKER, "/households"))[0]
    await sandbox.press(GRID_WORKER, prompt["message_id"], button(prompt, "新增住户"))
    chooser = await edited_to(sandbox, GRID_WORKER, prompt["message_id"], "在哪个楼栋")
    assert "新增住户：在哪个楼栋？" in chooser
    shown = await current(sandbox, GRID_WORKER, prompt["message_id"])
    await sandbox.press(GRID_WORKER, prompt["message_id"], button(shown, "B2"))
    await sandbox.wait_until(GRID_WORKER, lambda ms: "请发送地址" in ms[-1]["text"])
    await sandbox.reply_to(GRID_WORKER, "和平路88弄5号")
    tags = (await sandbox.reply_to(GRID_WORKER, "601"))[0]
    await sandbox.press(GRID_WORKER, tags["message_id"], button(tags, "独居老人"))
    await edited_to(sandbox, GRID_WORKER, tags["message_id"], "每 14 天")
    shown = await current(sandbox, GRID_WORKER, tags["message_id"])
    await sandbox.press(GRID_WORKER, tags["message_id"], button(shown, "完成"))
    await sandbox.wait_until(GRID_WORKER, lambda ms: "联系人姓名" in ms[-1]["text"])
    await sandbox.reply_to(GRID_WORKER, "何秀兰")
    card = (await sandbox.reply_to(GRID_WORKER, "13912345678", count=2))[1]
    assert card["text"].splitlines()[:2] == [
        "🏠 新德2号楼 和平路88弄5号 601",
        "标签：独居老人（每 14 天走访一次）",
    ]
    assert "联系人：何秀兰 · 13912345678" in card["text"]
    household_id = int(button(card, "记录走访").split(":")[1])

    joined = await sandbox.reply_to(FAR_VOLUNTEER, "/start g3-vol", count=2)
    for payload in (f"hh:{household_id}", f"visit:{household_id}", f"hhe:{household_id}"):
        before = len(await sandbox.bot_messages(FAR_VOLUNTEER))
        await sandbox.press(FAR_VOLUNTEER, joined[0]["message_id"], payload, forge=True)
        refused = await sandbox.wait_until(FAR_VOLUNTEER, more_than(before))
        assert refused[-1]["text"] == "抱歉，您没有权限执行此操作。"
    await sandbox.reply_to(FAR_VOLUNTEER, "/myhouseholds")
    seen = [m["text"] for m in await sandbox.messages(FAR_VOLUNTEER) if m["from_bot"]]
    answers = [a["text"] or "" for a in await sandbox.callback_answers(FAR_VOLUNTEER)]
    assert not [text for text in seen + answers if "13912345678" in text or "何秀兰" in text]
