"""Household files in the chat: a grid worker files a household, edits it, finds it again; a grid
leader assigns a building and groups members; a coordinator sets cadences; and personal data
never reaches anyone outside the grid."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.db import Database
from models.households import Household, HubLink
from services.access import Actor
from services.invites import create_invite
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness, User
from tests.households_world import deliver_queued, empty_registry


@pytest.fixture(autouse=True)
async def _empty_registry(demo_db: Database) -> None:
    await empty_registry(demo_db)


LEADER = User(2006, "刘队长")
FAR_VOLUNTEER = User(2007, "赵六")


async def stored(harness: Harness) -> list[Household]:
    async with harness.app.db.transaction() as session:
        return list(
            (await session.execute(select(Household).order_by(col(Household.id)))).scalars()
        )


async def file_a_household(harness: Harness, door: str = "302") -> SentMessage:
    """The grid worker's whole "add a household" conversation; returns the household card."""
    prompt = (await harness.send(GRID_WORKER, "/households"))[0]
    await harness.press(GRID_WORKER, prompt.button("新增住户"), prompt)
    assert "新增住户：在哪个楼栋？" in prompt.text
    asked = await harness.press(GRID_WORKER, prompt.button("B1"), prompt)
    assert prompt.text == "新增住户：新德1号楼 (B1)"
    assert "请发送地址" in asked[-1].text
    door_question = (await harness.send(GRID_WORKER, "和平路88弄3号"))[-1]
    assert "门牌号" in door_question.text
    tags = (await harness.send(GRID_WORKER, door))[-1]
    assert "已选：无 · 每 90 天走访一次" in tags.text
    await harness.press(GRID_WORKER, tags.button("特需对象"), tags)
    assert "已选：特需对象 · 每 7 天走访一次" in tags.text
    assert "✅ 特需对象" in [label for row in tags.buttons for label, _ in row]
    await harness.press(GRID_WORKER, tags.button("完成"), tags)
    assert tags.text == "标签：特需对象"
    await harness.send(GRID_WORKER, "王秀英")
    refused = await harness.send(GRID_WORKER, "1390000")
    assert refused[-1].text == "“1390000”不像是电话号码：请填 11 位手机号，或带区号的座机号。"
    replies = await harness.send(GRID_WORKER, "139 0000 1111")
    assert replies[0].text == "✅ 住户档案已建立。"
    return replies[-1]


async def test_grid_worker_files_a_household_in_a_few_messages(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    card = await file_a_household(harness)
    assert card.text.splitlines()[:4] == [
        "🏠 新德1号楼 和平路88弄3号 302",
        "标签：特需对象（每 7 天走访一次）",
        "联系人：王秀英 · 13900001111",
        "负责人：尚未分配",
    ]
    assert "下次走访：2026-11-30 到期" in card.text
    [household] = await stored(harness)
    assert card.payloads() == [f"visit:{household.id}", f"hhe:{household.id}"]

    again = await harness.send(GRID_WORKER, "/households")
    await harness.press(GRID_WORKER, again[0].button("新增住户"), again[0])
    await harness.press(GRID_WORKER, again[0].button("B1"), again[0])
    await harness.send(GRID_WORKER, "和平路 88弄3号")
    await harness.send(GRID_WORKER, "３０２")
    tags = harness.last(GRID_WORKER)
    await harness.press(GRID_WORKER, tags.button("完成"), tags)
    await harness.press(GRID_WORKER, harness.last(GRID_WORKER).button("跳过"))
    duplicate = await harness.press(GRID_WORKER, harness.last(GRID_WORKER).button("跳过"))
    assert duplicate[-1].text == "这个楼栋已经有相同地址和门牌号的住户档案了。"
    assert len(await stored(harness)) == 1


async def test_grid_worker_edits_finds_and_archives_with_confirmation(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    card = await file_a_household(harness)
    [household] = await stored(harness)
    chooser = (await harness.press(GRID_WORKER, card.button("修改档案"), card))[-1]
    await harness.press(GRID_WORKER, chooser.button("人数"), chooser)
    bad = await harness.send(GRID_WORKER, "很多")
    assert bad[-1].text == "人数请填 1 到 50 之间的整数。"
    updated = await harness.send(GRID_WORKER, "2")
    assert updated[0].text == "已保存。"
    assert "人数：2" in updated[-1].text

    search = (await harness.send(GRID_WORKER, "/households"))[0]
    assert "查找住户" in search.text
    found = await harness.send(GRID_WORKER, "王秀")
    assert found[-1].text.startswith("找到 1 户：\n• 新德1号楼 和平路88弄3号 302")
    assert found[-1].payloads() == [f"hh:{household.id}"]

    chooser = (await harness.press(GRID_WORKER, card.button("修改档案"), card))[-1]
    await harness.press(GRID_WORKER, chooser.button("迁出"), chooser)
    assert "确认这户已迁出？" in chooser.text
    await harness.press(GRID_WORKER, chooser.button("确认迁出"), chooser)
    assert "⚠️ 已迁出" in chooser.text
    assert (await stored(harness))[0].archived_at is not None
    assert chooser.payloads() == [f"hhe:{household.id}"], "no more visits to log"


async def test_volunteer_cannot_edit_and_a_forged_edit_changes_nothing(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await file_a_household(harness)
    [household] = await stored(harness)
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    card = (await harness.press(VOLUNTEER, f"hh:{household.id}"))[-1]
    assert "13900001111" in card.text, "a volunteer of the grid may call the household"
    assert card.payloads() == [f"visit:{household.id}"], "but not edit it"
    refused = await harness.press(VOLUNTEER, f"hhe:{household.id}")
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"
    not_for_you = await harness.send(VOLUNTEER, "/households")
    assert "/households" in not_for_you[-1].text


async def test_nobody_outside_the_grid_sees_a_phone_number(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await file_a_household(harness)
    [household] = await stored(harness)
    async with harness.app.db.transaction() as session:
        await create_invite(
            session,
            Actor.cli(),
            role="volunteer",
            unit_code="G3",
            now=harness.clock(),
            token="g3-volunteer",
        )
    await harness.send(FAR_VOLUNTEER, "/start g3-volunteer")
    await harness.send(RESIDENT, "/start demo-resident")
    for person in (FAR_VOLUNTEER, RESIDENT, STRANGER):
        for payload in (
            f"hh:{household.id}",
            f"visit:{household.id}",
            f"hhe:{household.id}",
            "hh_list:0",
            f"cov:{household.grid_id}",
        ):
            await harness.press(person, payload)
        for command in ("/myhouseholds", "/households", "/coverage", "/assign", "/hubs"):
            await harness.send(person, command)
            await harness.send(person, "王秀英")
        everything = "\n".join(harness.texts(person))
        toasts = "\n".join(text or "" for _, text, _ in harness.transport.callbacks)
        assert "13900001111" not in everything + toasts
        assert "王秀英" not in everything
        assert "和平路88弄3号" not in everything
    assert "抱歉，您没有权限执行此操作。" in harness.texts(FAR_VOLUNTEER)


async def test_grid_leader_assigns_a_building_and_the_member_sees_it(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await file_a_household(harness, "301")
    await file_a_household(harness, "302")
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await harness.send(LEADER, "/start demo-gridleader")
    chooser = (await harness.send(LEADER, "/assign"))[0]
    assert [label for row in chooser.buttons for label, _ in row] == [
        "新德1号楼 (B1)",
        "新德2号楼 (B2)",
    ]
    await harness.press(LEADER, chooser.button("B1"), chooser)
    members = [label for row in chooser.buttons for label, _ in row]
    assert members == ["刘队长 · 网格长", "张伟 · 网格员", "李明 · 志愿者"]
    await harness.press(LEADER, chooser.button("李明"), chooser)
    await harness.press(LEADER, chooser.button("全部交给 李明"), chooser)
    assert chooser.text == "✅ 已将 新德1号楼 (B1) 的 2 户交给 李明 走访。"
    await deliver_queued(harness)
    told = harness.last(VOLUNTEER)
    assert told.text == "您已负责走访 新德1号楼 的 2 户。发送 /myhouseholds 查看。"

    mine = (await harness.send(VOLUNTEER, "/myhouseholds"))[0]
    assert mine.text.splitlines() == [
        "我负责的住户共 2 户，其中 0 户今天该走访：",
        "1. 新德1号楼 和平路88弄3号 301 · 特需对象 · 2026-11-30 到期",
        "2. 新德1号楼 和平路88弄3号 302 · 特需对象 · 2026-11-30 到期",
    ]
    harness.clock.advance(days=8)
    mine = (await harness.send(VOLUNTEER, "/myhouseholds"))[0]
    assert "其中 2 户今天该走访" in mine.text
    assert "逾期 1 天" in mine.text


async def test_grid_leader_groups_members_under_a_hub_member(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await harness.send(LEADER, "/start demo-gridleader")
    chooser = (await harness.send(LEADER, "/hubs"))[0]
    assert "选择党员中心户" in chooser.text
    await harness.press(LEADER, chooser.button("李明"), chooser)
    await harness.press(LEADER, chooser.button("张伟"), chooser)
    assert "李明 联系的党员（1 人）：张伟" in chooser.text
    assert "✅ 张伟 · 网格员" in [label for row in chooser.buttons for label, _ in row]
    await harness.press(LEADER, chooser.button("完成"), chooser)
    assert chooser.text == "✅ 李明 联系 1 名党员：张伟"
    async with harness.app.db.transaction() as session:
        links = list((await session.execute(select(HubLink))).scalars())
    assert len(links) == 1
    await harness.send(VOLUNTEER, "/myhouseholds")
    assert "👥 您联系的 1 名党员名下共有 0 户逾期未走访。" in harness.last(VOLUNTEER).text


async def test_coordinator_changes_a_cadence_and_adds_a_tag(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await file_a_household(harness)
    await harness.send(COORDINATOR, "/start demo-coordinator")
    listing = (await harness.send(COORDINATOR, "/tags"))[0]
    assert "• 特需对象：每 7 天" in listing.text
    assert "• 出租户：每 90 天" in listing.text
    await harness.press(COORDINATOR, listing.button("特需对象"), listing)
    wrong = await harness.send(COORDINATOR, "每周")
    assert wrong[-1].text == "请发送 1 到 3650 之间的整数天数，或“-”。"
    done = await harness.send(COORDINATOR, "5")
    assert done[-1].text == "✅ “特需对象”改为每 5 天走访一次，1 户的下次走访日期已更新。"
    listing = (await harness.send(COORDINATOR, "/tags"))[0]
    await harness.press(COORDINATOR, listing.button("新标签"), listing)
    await harness.send(COORDINATOR, "重点关注")
    added = await harness.send(COORDINATOR, "30")
    assert added[-1].text == "✅ 已新增标签“重点关注”：每 30 天走访一次。"
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    assert "tags" not in [name for name, _ in harness.transport.commands[(GRID_WORKER.id, None)]]


async def test_an_old_flow_button_after_cancel_is_answered_politely(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    prompt = (await harness.send(GRID_WORKER, "/households"))[0]
    await harness.send(GRID_WORKER, "/cancel")
    replies = await harness.press(GRID_WORKER, prompt.button("新增住户"), prompt)
    assert replies[0].text == "这个按钮已失效。"
    assert await stored(harness) == []
