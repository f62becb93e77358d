"""Teams in the chat: a coordinator creates a team with buttons and a typed name, adds members
by tapping them or by sending their tg:<id>, a member leaves, the team is an audience in
/broadcast (a person in the team and a chosen grid receives once), and an archived team can no
longer be addressed, not even by a forged button."""

from __future__ import annotations

import pytest

from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness, User

GRID_LEADER = User(2010, "刘强")


@pytest.fixture
async def town(harness: Harness) -> Harness:
    harness.app.courier.per_chat_interval = 0
    for user, token in (
        (COORDINATOR, "demo-coordinator"),
        (GRID_LEADER, "demo-gridleader"),
        (RESIDENT, "demo-resident"),
        (VOLUNTEER, "demo-volunteer"),
        (GRID_WORKER, "demo-gridworker"),
    ):
        await harness.send(user, f"/start {token}")
    return harness


def labels(message: SentMessage) -> list[str]:
    return [label for row in message.buttons for label, _ in row]


async def deliver(harness: Harness) -> None:
    while await harness.app.courier.drain_once():
        pass


async def make_team(h: Harness) -> SentMessage:
    """The coordinator creates 清洁队 in G1; returns the team card."""
    listing = (await h.send(COORDINATOR, "/teams"))[-1]
    assert listing.text == "👥 队伍\n您还没有加入任何队伍。\n本辖区还没有队伍。"
    await h.press(COORDINATOR, listing.button("新建队伍"), listing)
    assert listing.text.startswith("新队伍属于哪个单位？")
    assert labels(listing) == ["新德社区 (C1)", "新德第一网格 (G1)", "新德第二网格 (G2)"]
    await h.press(COORDINATOR, listing.button("(G1)"), listing)
    assert listing.text.startswith("请输入 新德第一网格 (G1) 新队伍的名称")
    too_long = await h.send(COORDINATOR, "队" * 41)
    assert too_long[-1].text == "队伍名称最多 40 个字（现在 41 个）。"
    created = await h.send(COORDINATOR, "  清洁队 ")
    assert created[0].text == "✅ 已在 新德第一网格 (G1) 建立队伍「清洁队」。"
    card = created[-1]
    assert card.text == "👥 清洁队 · 新德第一网格 (G1)\n成员 0 人：\n（暂无成员）"
    return card


async def test_coordinator_builds_a_team_and_a_member_leaves_it(town: Harness) -> None:
    h = town
    card = await make_team(h)
    await h.press(COORDINATOR, card.button("添加成员"), card)
    assert card.text.startswith("给「清洁队」添加成员（现有 0 人）")
    assert sorted(labels(card)[:-1]) == ["➕ 刘强", "➕ 张伟", "➕ 李明", "➕ 王阿姨"]
    await h.press(COORDINATOR, card.button("王阿姨"), card)
    assert h.last_toast() == "已添加。"
    assert "➕ 王阿姨" not in labels(card), "added people leave the list"

    outside = await h.send(COORDINATOR, f"tg:{STRANGER.id}")
    assert "找不到" in outside[-1].text, "a stranger who never joined is not found"
    added = await h.send(COORDINATOR, f"tg:{VOLUNTEER.id}")
    assert added[0].text == "已添加 1 人：李明"
    new_card = added[-1]
    assert new_card.text.startswith("👥 清洁队 · 新德第一网格 (G1)\n成员 2 人：")
    assert new_card.text.endswith(("王阿姨、李明", "李明、王阿姨"))

    mine = (await h.send(RESIDENT, "/teams"))[-1]
    assert "我所在的队伍：清洁队" in mine.text
    assert labels(mine) == ["🚪 退出「清洁队」"], "a resident cannot manage teams"
    await h.press(RESIDENT, mine.button("退出"), mine)
    assert h.last_toast() == "已退出该队伍。"
    assert "您还没有加入任何队伍。" in mine.text

    await h.press(COORDINATOR, new_card.button("移除成员"), new_card)
    assert labels(new_card)[:-1] == ["✖ 李明"]
    await h.press(COORDINATOR, new_card.button("李明"), new_card)
    assert h.last_toast() == "已移除。"


async def test_a_team_is_an_audience_and_an_archived_one_is_refused(town: Harness) -> None:
    h = town
    card = await make_team(h)
    await h.press(COORDINATOR, card.button("添加成员"), card)
    await h.press(COORDINATOR, card.button("李明"), card)
    await h.press(COORDINATOR, card.button("完成"), card)
    assert "成员 1 人" in card.text

    await h.send(COORDINATOR, "/broadcast")
    picker = (await h.send(COORDINATOR, "周六上午清洁，请队员准时集合。"))[-1]
    assert "▫️ 👥 清洁队" in labels(picker)
    team_payload = picker.button("清洁队")
    await h.press(COORDINATOR, team_payload, picker)
    assert picker.text.endswith("接收对象：👥 清洁队——共 1 人。")
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    assert picker.text.endswith("接收对象：新德第一网格 · 👥 清洁队——共 4 人。"), (
        "the volunteer is in G1 and in the team: counted once"
    )
    replies = await h.press(COORDINATOR, picker.button("下一步"), picker)
    options = replies[-1]
    await h.press(COORDINATOR, options.button("发送"), options)
    await deliver(h)
    got = [t for t in h.texts(VOLUNTEER) if "请队员准时集合" in t]
    assert len(got) == 1, "one copy for a person reached twice"

    listing = (await h.send(COORDINATOR, "/teams"))[-1]
    await h.press(COORDINATOR, listing.button("清洁队"), listing)
    await h.press(COORDINATOR, listing.button("归档"), listing)
    assert listing.text.startswith("确定归档「清洁队」（1 名成员）吗？")
    await h.press(COORDINATOR, listing.button("保留"), listing)
    assert listing.text.startswith("👥 清洁队"), "keeping it goes back to the card"
    await h.press(COORDINATOR, listing.button("归档"), listing)
    await h.press(COORDINATOR, listing.button("确定归档"), listing)
    assert listing.text == "🗄 「清洁队」已归档。"

    await h.send(COORDINATOR, "/broadcast")
    picker = (await h.send(COORDINATOR, "再发一次"))[-1]
    assert not any("清洁队" in label for label in labels(picker))
    nonce = picker.button("(G1)").split(":")[1]
    team_id = team_payload.split(":")[-1]
    answer = await h.press(COORDINATOR, f"bc_t:{nonce}:{team_id}", picker)
    assert answer[-1].text == "队伍「清洁队」已归档，不能再向它发送。"
    assert picker.text.endswith("尚未选择接收对象。"), "the forged choice changed nothing"
