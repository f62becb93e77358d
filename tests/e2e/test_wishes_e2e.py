"""A micro-wish's whole life through the real aiogram runtime, over HTTP, against the sandbox:
posted, approved, claimed, released by timeout, claimed again, fulfilled, confirmed by a
coordinator after the confirmation timeout, points awarded.

Time: the bot process runs on the real clock. "Days pass" by moving the claim's and the
fulfilment's deadlines into the past, then the deadline job runs with a frozen ``now`` (as
the scheduler would at its next tick); the running bot delivers what the job queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from bot.db import Database
from jobs.wishes import wish_deadlines
from models.wishes import Wish, WishClaim
from services.points import DEFAULT_ZONE
from tests.e2e.sandbox_client import BotProcess, SandboxClient

pytestmark = pytest.mark.e2e

RESIDENT, GRID_LEADER, VOLUNTEER, COORDINATOR = 1201, 1202, 1203, 1204

Message = dict[str, Any]


def button(message: Message, label: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label in key["text"] and "callback_data" in key:
                return str(key["callback_data"])
    raise AssertionError(f"no button {label!r} on {message.get('text')!r}")


Snapshot = dict[int, int]
"""Message id → edit count: what a chat showed before an action."""


async def snapshot(sandbox: SandboxClient, user: int) -> Snapshot:
    return {m["message_id"]: m["edit_count"] for m in await sandbox.bot_messages(user)}


async def arrived(sandbox: SandboxClient, user: int, part: str, since: Snapshot) -> Message:
    """Wait for a message containing ``part`` that is new or was edited after ``since``."""

    def fresh(messages: list[Message]) -> list[Message]:
        return [
            m
            for m in messages
            if part in (m.get("text") or "")
            and (m["message_id"] not in since or m["edit_count"] > since[m["message_id"]])
        ]

    return fresh(await sandbox.wait_until(user, lambda ms: bool(fresh(ms))))[-1]


async def say(sandbox: SandboxClient, user: int, text: str, then: str) -> Message:
    since = await snapshot(sandbox, user)
    await sandbox.send(user, text)
    return await arrived(sandbox, user, then, since)


async def tap(
    sandbox: SandboxClient, user: int, message: Message, label: str, then: str
) -> Message:
    """Press a button and wait until a message containing ``then`` shows (new or edited)."""
    since = await snapshot(sandbox, user)
    await sandbox.press(user, message["message_id"], button(message, label))
    return await arrived(sandbox, user, then, since)


async def days_pass(db: Database, *, claims: bool = False, confirmation: bool = False) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with db.transaction() as session:
        if claims:
            await session.execute(
                update(WishClaim)
                .where(col(WishClaim.live_wish_id).is_not(None))
                .values(remind_at=past, stale_at=past)
            )
        if confirmation:
            await session.execute(update(Wish).values(confirm_due_at=past))


async def test_a_wish_from_posting_to_points_with_both_timeouts(
    sandbox: SandboxClient, bot: BotProcess, demo_db: Database
) -> None:
    for user, name, token in (
        (RESIDENT, "王阿姨", "demo-resident"),
        (GRID_LEADER, "刘网格长", "demo-gridleader"),
        (VOLUNTEER, "李明", "demo-volunteer"),
        (COORDINATOR, "陈静", "demo-coordinator"),
    ):
        await sandbox.user(user, name)
        await sandbox.reply_to(user, f"/start {token}", count=2)

    # The resident posts a wish in a few taps.
    leader, resident = await snapshot(sandbox, GRID_LEADER), await snapshot(sandbox, RESIDENT)
    chooser = await say(sandbox, RESIDENT, "/wish", "请选择类别")
    await tap(sandbox, RESIDENT, chooser, "维修", "请用一段话写下您的心愿")
    photo = await say(sandbox, RESIDENT, "厨房水龙头一直漏水", "可以发一张照片")
    date = await tap(sandbox, RESIDENT, photo, "跳过", "希望什么时候之前完成")
    await tap(sandbox, RESIDENT, date, "一周内", "请写下地址")
    summary = await say(sandbox, RESIDENT, "1号楼2单元301", "请核对您的微心愿")
    await tap(sandbox, RESIDENT, summary, "提交", "已提交 #1「维修」厨房水龙头一直漏水")

    # The grid leader approves it from the notice.
    notice = await arrived(sandbox, GRID_LEADER, "新的微心愿待审核", leader)
    assert "1号楼2单元301" not in notice["text"]
    resident = await snapshot(sandbox, RESIDENT)
    await tap(sandbox, GRID_LEADER, notice, "通过", "已通过并发布")
    await arrived(sandbox, RESIDENT, "已通过审核并发布", resident)

    # A volunteer finds and claims it, and only now sees the address.
    resident = await snapshot(sandbox, RESIDENT)
    listing = await say(sandbox, VOLUNTEER, "/wishes", "可认领的微心愿")
    assert "1号楼2单元301" not in listing["text"]
    view = await tap(sandbox, VOLUNTEER, listing, "查看 #1", "状态：已发布")
    claimed = await tap(sandbox, VOLUNTEER, view, "认领", "认领成功")
    assert "地址：1号楼2单元301" in claimed["text"]
    await arrived(sandbox, RESIDENT, "李明 认领了您的微心愿", resident)

    # A week passes without fulfilment: the claim is released and the wish published again.
    volunteer, resident = await snapshot(sandbox, VOLUNTEER), await snapshot(sandbox, RESIDENT)
    await days_pass(demo_db, claims=True)
    report = await wish_deadlines(demo_db, datetime.now(UTC), DEFAULT_ZONE)
    assert report.released == 1
    await arrived(sandbox, VOLUNTEER, "超过期限未完成，已自动释放", volunteer)
    await arrived(sandbox, RESIDENT, "它已重新发布", resident)

    # The volunteer claims it again and this time fulfils it.
    resident = await snapshot(sandbox, RESIDENT)
    listing = await say(sandbox, VOLUNTEER, "/wishes", "可认领的微心愿（全部）：共 1 个")
    view = await tap(sandbox, VOLUNTEER, listing, "查看 #1", "状态：重新发布")
    claimed = await tap(sandbox, VOLUNTEER, view, "认领", "认领成功")
    await tap(sandbox, VOLUNTEER, claimed, "已完成", "请简单写下 #1 的完成情况")
    hours = await say(sandbox, VOLUNTEER, "换了新的阀芯，不漏了", "这次服务用了多长时间")
    await tap(sandbox, VOLUNTEER, hours, "1 h", "已标记完成")
    asked = await arrived(sandbox, RESIDENT, "已完成您的微心愿", resident)
    assert button(asked, "确认完成") == "wish:conf:1"

    # The resident does not confirm in time: the coordinator is asked and confirms.
    coordinator = await snapshot(sandbox, COORDINATOR)
    resident, volunteer = await snapshot(sandbox, RESIDENT), await snapshot(sandbox, VOLUNTEER)
    await days_pass(demo_db, confirmation=True)
    report = await wish_deadlines(demo_db, datetime.now(UTC), DEFAULT_ZONE)
    assert report.escalated == 1
    overdue = await arrived(sandbox, COORDINATOR, "发布人超时未确认", coordinator)
    await tap(sandbox, COORDINATOR, overdue, "确认完成", "已确认完成：#1")
    await arrived(sandbox, RESIDENT, "社区已代为确认", resident)
    await arrived(sandbox, VOLUNTEER, "积分 +10，服务时长 1 小时", volunteer)
    points = await say(sandbox, VOLUNTEER, "/points", "我的积分")
    assert "可用积分：10" in points["text"]
    assert "+10 完成微心愿" in points["text"]
    answers = await sandbox.callback_answers(COORDINATOR)
    assert answers[-1]["text"] == "已确认"
