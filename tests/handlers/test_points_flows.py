"""Points, hours, rankings, rules, manual awards and the store through the chat."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import col, select

from models.members import Member
from models.points import LedgerEntry
from services import points
from tests.conftest import COORDINATOR, RESIDENT, VOLUNTEER
from tests.harness import Harness, User

VOLUNTEER2 = User(2011, "周丽")
PHOTO = [{"file_id": "soap-photo", "file_unique_id": "s1", "width": 640, "height": 480}]


@pytest.fixture(autouse=True)
def unpaced(harness: Harness) -> None:
    harness.app.courier.per_chat_interval = 0


async def deliver(harness: Harness) -> None:
    for _ in range(20):
        if not await harness.app.courier.drain_once():
            return


async def member_id(harness: Harness, user: User) -> int:
    async with harness.app.db.transaction() as session:
        found = (
            await session.execute(select(Member.id).where(col(Member.telegram_id) == user.id))
        ).scalar_one()
    return int(found or 0)


async def earn(harness: Harness, user: User, rule: str, source_id: int) -> None:
    member = await member_id(harness, user)
    async with harness.app.db.transaction() as session:
        await points.award(
            session,
            member_id=member,
            rule_code=rule,
            source="task",
            source_id=source_id,
            now=harness.clock.now,
        )


async def test_points_hours_and_rank_show_what_a_volunteer_earned(harness: Harness) -> None:
    for user in (VOLUNTEER, VOLUNTEER2):
        await harness.send(user, "/start demo-volunteer")
    await earn(harness, VOLUNTEER, "task_completed", 1)
    await earn(harness, VOLUNTEER2, "wish_fulfilled", 2)
    volunteer = await member_id(harness, VOLUNTEER)
    async with harness.app.db.transaction() as session:
        await points.log_hours(
            session,
            member_id=volunteer,
            hours=Decimal("2.5"),
            source="task",
            source_id=1,
            now=harness.clock.now,
        )

    shown = (await harness.send(VOLUNTEER, "/points"))[0]
    assert shown.text.splitlines() == [
        "⭐ 我的积分",
        "可用积分：5",
        "2026 年积分：5（本月 5）",
        "新德第一网格排名：第 2 名 / 共 2 人",
        "新德社区排名：第 2 名 / 共 2 人",
        "",
        "最近记录：",
        "+5 完成志愿任务 · 11-23",
    ]
    hours = (await harness.send(VOLUNTEER, "/hours"))[0].text
    assert hours.splitlines()[:2] == [
        "⏱ 2026 年服务时长：2.5 / 24 小时",
        "还差 21.5 小时。/wishes 看看身边的微心愿。",
    ]
    board = (await harness.press(VOLUNTEER, shown.button("排行榜")))[-1]
    assert board.text.splitlines()[:4] == [
        "🏆 新德第一网格 · 2026 积分排行",
        "",
        "🥇 周丽 · 10",
        "🥈 李明 · 5 ← 您",
    ]
    assert board.text.splitlines()[-1] == "您：第 2 名 / 共 2 人 · 5 分"
    await harness.press(VOLUNTEER, board.button("社区"), board)
    assert board.text.startswith("🏆 新德社区 · 2026 积分排行")
    await harness.press(VOLUNTEER, board.button("本月"), board)
    assert board.text.startswith("🏆 新德社区 · 2026-11 积分排行")
    resident = await harness.send(RESIDENT, "/start demo-resident")
    assert resident
    assert "不在您的角色可用范围内" in (await harness.send(RESIDENT, "/rank"))[0].text


async def test_redeeming_needs_a_confirmation_and_a_second_press_changes_nothing(
    harness: Harness,
) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await earn(harness, VOLUNTEER, "wish_fulfilled", 1)
    await earn(harness, VOLUNTEER, "emergency_duty", 2)
    shelf = (await harness.send(VOLUNTEER, "/store"))[0]
    assert shelf.text.splitlines()[:3] == [
        "🛒 新德社区 积分兑换超市",
        "您的可用积分：20",
        "",
    ]
    assert "• 理发券 · 15 分 · 剩 20 件" in shelf.text
    confirm = (await harness.press(VOLUNTEER, shelf.button("兑换 理发券")))[-1]
    assert "用 15 积分兑换「理发券」？您现在有 20 分。" in confirm.text
    payload = confirm.button("确认兑换")
    await harness.press(VOLUNTEER, payload, confirm)
    assert confirm.text.startswith("✅ 兑换成功：理发券（-15 分），兑换编号 #1。")
    again = await harness.press(VOLUNTEER, payload, confirm)
    assert again[0].text == "这个按钮已失效。"
    too_dear = (await harness.press(VOLUNTEER, shelf.button("兑换 雨伞")))[-1]
    refused = await harness.press(VOLUNTEER, too_dear.button("确认兑换"), too_dear)
    assert refused[-1].text == "积分不足：需要 20 分，您现在有 5 分。"
    async with harness.app.db.transaction() as session:
        entries = (await session.execute(select(LedgerEntry))).scalars().all()
    assert sorted(e.points for e in entries) == [-15, 10, 10]

    await deliver(harness)
    new = harness.transport.chats[COORDINATOR.id][-1]
    assert "李明 兑换了「理发券」（15 分），编号 #1" in new.text
    await harness.press(COORDINATOR, new.button("已发放"), new)
    assert new.text == "✅ 已发放 #1：理发券 → 李明"
    await deliver(harness)
    assert harness.texts(VOLUNTEER)[-1] == "✅ 您兑换的「理发券」已领取。"


async def test_a_member_cancels_a_redemption_and_gets_the_points_back(harness: Harness) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await earn(harness, VOLUNTEER, "wish_fulfilled", 1)
    await earn(harness, VOLUNTEER, "emergency_duty", 2)
    shelf = (await harness.send(VOLUNTEER, "/store"))[0]
    confirm = (await harness.press(VOLUNTEER, shelf.button("兑换 雨伞")))[-1]
    await harness.press(VOLUNTEER, confirm.button("确认兑换"), confirm)
    shelf = (await harness.send(VOLUNTEER, "/store"))[0]
    await harness.press(VOLUNTEER, shelf.button("我的兑换"), shelf)
    assert "#1 雨伞 · 20 分 · 待领取" in shelf.text
    sure = (await harness.press(VOLUNTEER, shelf.button("取消 #1"), shelf))[-1]
    assert sure.text == "取消兑换 #1？积分会退回给您。"
    await harness.press(VOLUNTEER, sure.button("确定取消"), sure)
    assert sure.text == "已取消：雨伞，20 分已退回。"
    twice = await harness.press(VOLUNTEER, "rd:cancel2:1")
    assert twice[-1].text == "这次兑换已经领取或取消了。"
    assert "可用积分：20" in (await harness.send(VOLUNTEER, "/points"))[0].text


async def test_a_coordinator_puts_an_item_on_the_shelf(harness: Harness) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    shelf = (await harness.send(COORDINATOR, "/store"))[0]
    await harness.press(COORDINATOR, shelf.button("管理货架"), shelf)
    assert shelf.text.startswith("🛠 新德社区 货架管理：")
    asked = (await harness.press(COORDINATOR, shelf.button("新增商品"), shelf))[-1]
    assert asked.text == "请发送商品名称（最多 60 字）。"
    await harness.send(COORDINATOR, "香皂")
    bad = await harness.send(COORDINATOR, "很多")
    assert bad[0].text == "积分需要是 1 到 100000 之间的整数。"
    await harness.send(COORDINATOR, "8")
    photo_question = (await harness.send(COORDINATOR, "12"))[0]
    assert "可以发一张商品照片" in photo_question.text
    added = await harness.send_kind(COORDINATOR, photo=PHOTO)
    assert added[-1].text == "✅ 已上架：香皂 · 8 分 · 12 件"
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    shelf = (await harness.send(VOLUNTEER, "/store"))[0]
    assert "• 香皂 · 8 分 · 剩 12 件" in shelf.text
    await harness.press(VOLUNTEER, shelf.button("兑换 香皂"))
    photo = harness.transport.chats[VOLUNTEER.id][-2]
    assert (photo.kind, photo.file_id) == ("photo", "soap-photo")
    volunteer_admin = await harness.press(VOLUNTEER, "st:add:3")
    assert volunteer_admin[-1].text == "抱歉，您没有权限执行此操作。"


async def test_a_coordinator_changes_a_rule_for_the_community(harness: Harness) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    table = (await harness.send(COORDINATOR, "/rules"))[0]
    assert table.text.splitlines()[0] == "📋 积分规则（新德社区）："
    assert "入户走访 (visit_done) · 基础分 +2，每月最多 60 分" in table.text
    await harness.press(COORDINATOR, table.button("visit_done"), table)
    asked = (await harness.press(COORDINATOR, table.button("改分值"), table))[-1]
    assert asked.text == "请发送分值（1 到 1000；扣分项也发正数）。"
    assert (await harness.send(COORDINATOR, "很多"))[0].text == "请发送一个整数。"
    saved = await harness.send(COORDINATOR, "4")
    assert saved[0].text == "✅ 已保存。\n入户走访 (visit_done) · 基础分 +4，每月最多 60 分"
    new = (await harness.send(COORDINATOR, "/rules"))[0]
    await harness.press(COORDINATOR, new.button("新增规则"), new)
    await harness.send(COORDINATOR, "clean_up")
    await harness.send(COORDINATOR, "清洁家园")
    kind = (await harness.send(COORDINATOR, "Clean-up day"))[0]
    await harness.press(COORDINATOR, kind.button("加分项"), kind)
    done = await harness.send(COORDINATOR, "3")
    assert done[0].text == "✅ 已保存。\n清洁家园 (clean_up) · 加分项 +3"
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    assert "不在您的角色可用范围内" in (await harness.send(VOLUNTEER, "/rules"))[0].text
    assert (await harness.press(VOLUNTEER, "rule:flip:visit_done"))[-1].text == (
        "抱歉，您没有权限执行此操作。"
    )


async def test_a_coordinator_awards_and_then_corrects_with_a_reversing_entry(
    harness: Harness,
) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    asked = (await harness.send(COORDINATOR, "/award"))[0]
    assert asked.text == "要为谁记录？请发送姓名中的几个字。"
    assert (await harness.send(COORDINATOR, "无此人"))[0].text.startswith("在您的社区里没有找到")
    found = (await harness.send(COORDINATOR, "李"))[0]
    await harness.press(COORDINATOR, found.button("李明"), found)
    menu = found
    assert menu.text == "李明：可用积分 0。要做什么？"
    await harness.press(COORDINATOR, menu.button("按规则加/扣分"), menu)
    await harness.press(COORDINATOR, menu.button("表扬奖励"), menu)
    confirm = (await harness.send(COORDINATOR, "组织了楼道清洁"))[0]
    assert confirm.text == "确认为 李明 记录「表扬奖励」+5 分？\n说明：组织了楼道清洁"
    payload = confirm.button("确认")
    await harness.press(COORDINATOR, payload, confirm)
    assert confirm.text == "✅ 已为 李明 记录 +5 分，已通知本人。"
    assert (await harness.press(COORDINATOR, payload, confirm))[0].text == "这个按钮已失效。"
    await deliver(harness)
    assert harness.texts(VOLUNTEER)[-1] == "⭐ 积分 +5：表扬奖励\n说明：组织了楼道清洁"

    await harness.send(COORDINATOR, "/award")
    found = (await harness.send(COORDINATOR, "李明"))[0]
    await harness.press(COORDINATOR, found.button("李明"), found)
    menu = found
    await harness.press(COORDINATOR, menu.button("更正积分记录"), menu)
    await harness.press(COORDINATOR, menu.button("+5 表扬奖励"), menu)
    confirm = (await harness.send(COORDINATOR, "记错了人"))[0]
    await harness.press(COORDINATOR, confirm.button("确认"), confirm)
    assert confirm.text == "✅ 已更正：-5 分。"
    await deliver(harness)
    assert harness.texts(VOLUNTEER)[-1] == "积分更正 -5：表扬奖励\n原因：记错了人"
    shown = (await harness.send(VOLUNTEER, "/points"))[0].text
    assert "可用积分：0" in shown
    assert "+5 表扬奖励 · 11-23 （已更正）" in shown
    assert "更正：表扬奖励" in shown

    await harness.send(COORDINATOR, "/award")
    found = (await harness.send(COORDINATOR, "李明"))[0]
    await harness.press(COORDINATOR, found.button("李明"), found)
    menu = found
    await harness.press(COORDINATOR, menu.button("记录服务时长"), menu)
    assert (await harness.send(COORDINATOR, "30"))[0].text.startswith("时长需要大于 0")
    await harness.send(COORDINATOR, "1.5")
    note = harness.last(COORDINATOR)
    confirm = (await harness.press(COORDINATOR, note.button("不写"), note))[-1]
    assert confirm.text == "确认为 李明 记录服务时长 1.5 小时？"
    await harness.press(COORDINATOR, confirm.button("确认"), confirm)
    assert confirm.text == "✅ 已为 李明 记录服务时长 1.5 小时。"
