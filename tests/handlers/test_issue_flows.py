"""Reporting and handling issues through the real App: what people type and press, and what
they and the others concerned see."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from jobs.housekeeping import housekeeping
from models.issues import Issue, IssueStatus, Tier
from models.members import Member
from services.access import Actor
from services.invites import create_invite
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER
from tests.fakes import SentMessage
from tests.harness import Harness, User

WORKER2 = User(2010, "刘洋")
NEIGHBOUR = User(2011, "赵叔叔")
DEPARTMENT = User(2012, "马科长")
FAR_WORKER = User(2013, "郑强")
LEADER = User(2014, "吴刚")

JOIN = {
    RESIDENT: "demo-resident",
    NEIGHBOUR: "demo-resident",
    GRID_WORKER: "demo-gridworker",
    WORKER2: "demo-gridworker",
    LEADER: "demo-gridleader",
    COORDINATOR: "demo-coordinator",
    DEPARTMENT: "demo-department",
    FAR_WORKER: "g3-gridworker",
}


@pytest.fixture
async def desk(harness: Harness) -> Harness:
    """The harness with everybody joined; queued notifications are delivered by `deliver`."""
    harness.app.courier.per_chat_interval = 0
    async with harness.app.db.transaction() as session:
        await create_invite(
            session,
            Actor.cli(),
            role="grid_worker",
            unit_code="G3",
            now=harness.clock(),
            token="g3-gridworker",
        )
    for user, token in JOIN.items():
        await harness.send(user, f"/start {token}")
    return harness


async def deliver(harness: Harness) -> None:
    while await harness.app.courier.drain_once():
        pass


def photo(file_id: str, size: int = 50_000) -> dict[str, Any]:
    return {
        "photo": [
            {"file_id": f"{file_id}-s", "width": 90, "height": 90, "file_size": 1000},
            {"file_id": file_id, "width": 1280, "height": 960, "file_size": size},
        ]
    }


async def issue_row(harness: Harness, number: str = "C1-2026-0001") -> Issue:
    async with harness.app.db.transaction() as session:
        found = (
            await session.execute(select(Issue).where(col(Issue.number) == number))
        ).scalar_one()
        return found


async def report(
    harness: Harness,
    user: User = RESIDENT,
    *,
    category: str = "停车管理",
    text: str = "楼下消防通道被车堵住了",
    location: dict[str, float] | None = None,
    anonymous: bool = False,
) -> SentMessage:
    """Walk through /report; returns the confirmation message (before submitting)."""
    question = (await harness.send(user, "/report"))[-1]
    if "代居民上报" in str(question.buttons):
        await harness.press(user, question.button("我发现的问题"), question)
    await harness.press(user, question.button(category), question)
    await harness.send(user, text)
    skip = harness.last(user)
    await harness.press(user, skip.button("跳过"), skip)
    if location:
        replies = await harness.send_kind(user, location=location)
    else:
        replies = await harness.send(user, "跳过")
    return replies[-1]


async def submit(
    harness: Harness, user: User, confirm: SentMessage, *, anonymous: bool = False
) -> None:
    await harness.press(user, confirm.button("匿名提交" if anonymous else "提交"), confirm)


async def test_resident_reports_with_photos_and_location_and_a_grid_worker_accepts(
    desk: Harness,
) -> None:
    question = (await desk.send(RESIDENT, "/report"))[-1]
    assert question.text == "请选择问题类别："
    labels = [label for row in question.buttons for label, _ in row]
    assert labels[:3] == ["停车管理", "文明养犬", "电动车充电"]
    assert len(labels) == 8

    await desk.press(RESIDENT, question.button("电动车充电"), question)
    assert question.text == "类别：电动车充电", "the question turns into the answer"
    asked = desk.last(RESIDENT)
    assert "请描述问题" in asked.text

    first = (await desk.send_kind(RESIDENT, caption="楼道里有人拉线给电动车充电", **photo("p1")))[
        -1
    ]
    assert "可以发送问题的照片" not in first.text
    assert "已收到 1 张照片" in first.text
    second = (await desk.send_kind(RESIDENT, **photo("p2")))[-1]
    assert "已收到第 2 张照片" in second.text
    located = await desk.press(RESIDENT, second.button("完成"), second)
    ask_location = located[-1]
    assert "问题在哪里" in ask_location.text
    assert [kind for row in ask_location.request for _, kind in row] == ["location", "text"]

    replies = await desk.send_kind(RESIDENT, location={"latitude": 31.2301, "longitude": 121.4731})
    assert replies[0].text == "地点：新德1号楼"
    assert replies[0].remove_keyboard
    confirm = replies[-1]
    assert "请确认您的上报" in confirm.text
    assert "📷 2 张照片" in confirm.text
    await submit(desk, RESIDENT, confirm)
    assert confirm.text.startswith("✅ 已提交，编号 C1-2026-0001。将在 11月23日 10:10 前受理")

    await deliver(desk)
    note = desk.last(GRID_WORKER)
    assert note.text.startswith("🆕 新的问题上报：C1-2026-0001 · 电动车充电")
    assert "📷 2 张照片" in note.text
    assert desk.last(WORKER2).text == note.text
    assert not any("新的问题上报" in m.text for m in desk.transport.chats[FAR_WORKER.id])

    await desk.press(GRID_WORKER, note.button("受理"), note)
    assert desk.last_toast() == "已受理 C1-2026-0001。"
    assert "状态：已受理（网格级）" in note.text, "the notification becomes the card"
    assert "上报人：王阿姨" in note.text
    assert [label for row in note.buttons for label, _ in row if label == "受理"] == []
    await deliver(desk)
    assert desk.last(RESIDENT).text == "您反映的问题 C1-2026-0001 已受理（新德第一网格）。"

    pictures = await desk.press(GRID_WORKER, note.button("照片"), note)
    assert [p.file_id for p in pictures if p.kind == "photo"] == ["p1", "p2"]
    assert ("🗺 在地图上查看", None) in note.buttons[-1], "a map link for the location"


async def test_a_document_a_huge_photo_and_a_sticker_are_explained(desk: Harness) -> None:
    question = (await desk.send(RESIDENT, "/report"))[-1]
    sticker = await desk.send_kind(RESIDENT, sticker={"file_id": "s", "emoji": "👍"})
    assert sticker[-1].text == "请选择问题类别：", "asked again after the explanation"
    await desk.press(RESIDENT, question.button("环境卫生"), question)
    await desk.send(RESIDENT, "垃圾桶满了没人清")
    document = await desk.send_kind(
        RESIDENT,
        document={"file_id": "d1", "file_name": "x.jpg", "mime_type": "image/jpeg", "file_size": 9},
    )
    assert document[0].text == "请以「照片」方式发送，不要作为文件发送。"
    assert "可以发送问题的照片" in document[-1].text
    huge = await desk.send_kind(RESIDENT, **photo("big", size=20 * 1024 * 1024))
    assert huge[-1].text == "照片太大了（最大 10 MB），请换一张或压缩后再发。"
    typed = await desk.send(RESIDENT, "x")
    assert typed[0].text == "这一步需要的不是文字。"
    assert "可以发送问题的照片" in typed[-1].text


async def test_cancel_or_walking_away_submits_nothing(desk: Harness) -> None:
    question = (await desk.send(RESIDENT, "/report"))[-1]
    await desk.press(RESIDENT, question.button("停车管理"), question)
    cancelled = await desk.send(RESIDENT, "/cancel")
    assert cancelled[-1].text == "已取消。"
    assert (await desk.send(RESIDENT, "车堵了"))[-1].text.startswith("我没看懂")

    question = (await desk.send(RESIDENT, "/report"))[-1]
    dogs = question.button("文明养犬")
    await desk.press(RESIDENT, question.button("停车管理"), question)
    desk.clock.advance(minutes=61)
    await housekeeping(desk.app.db, desk.clock())
    assert (await desk.send(RESIDENT, "车堵了"))[-1].text.startswith("我没看懂")
    stale = await desk.press(RESIDENT, dogs, question)
    assert stale[0].text == "这个按钮已失效。"
    async with desk.app.db.transaction() as session:
        assert (await session.execute(select(Issue))).first() is None


async def test_a_location_far_from_every_grid_asks_for_the_community(desk: Harness) -> None:
    confirm = await report(
        desk, COORDINATOR, location={"latitude": 39.9, "longitude": 116.4}, text="路灯坏了"
    )
    assert confirm.text == "请选择问题所在的社区："
    assert desk.transport.chats[COORDINATOR.id][-2].text == "这个位置不在任何网格附近。"
    await desk.press(COORDINATOR, confirm.button("光明社区"), confirm)
    final = desk.last(COORDINATOR)
    await submit(desk, COORDINATOR, final)
    issue = await issue_row(desk, "C2-2026-0001")
    assert issue.grid_id is None
    assert issue.tier == Tier.community


async def test_a_neighbour_is_offered_the_open_report_and_follows_it(desk: Harness) -> None:
    await submit(desk, RESIDENT, await report(desk))
    offer = await report(desk, NEIGHBOUR, text="又有车堵通道")
    assert "附近已经有人反映过相似的问题" in offer.text
    assert "C1-2026-0001 · 停车管理 · 待受理" in offer.text
    assert "王阿姨" not in offer.text
    await desk.press(NEIGHBOUR, offer.button("是同一件事"), offer)
    assert offer.text.startswith("好的，您已关注 C1-2026-0001")
    async with desk.app.db.transaction() as session:
        assert len((await session.execute(select(Issue))).all()) == 1

    await deliver(desk)
    note = desk.last(GRID_WORKER)
    await desk.press(GRID_WORKER, note.button("受理"), note)
    await deliver(desk)
    assert desk.last(NEIGHBOUR).text.startswith("您反映的问题 C1-2026-0001 已受理")


async def test_acting_on_another_grids_issue_is_refused_and_changes_nothing(
    desk: Harness,
) -> None:
    await submit(desk, RESIDENT, await report(desk))
    issue = await issue_row(desk)
    refused = await desk.press(FAR_WORKER, f"iss:acc:{issue.id}")
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"
    typed = await desk.send(FAR_WORKER, "/issue C1-2026-0001")
    assert typed[-1].text == "抱歉，您没有权限执行此操作。"
    snooping = await desk.send(NEIGHBOUR, "/issue c1-2026-0001")
    assert snooping[-1].text == "抱歉，您没有权限执行此操作。"
    assert (await desk.send(STRANGER, "/report"))[-1].text.startswith("您还没有加入网格")
    assert (await issue_row(desk)).status == IssueStatus.new


async def test_the_second_grid_worker_to_accept_is_told(desk: Harness) -> None:
    await submit(desk, RESIDENT, await report(desk))
    await deliver(desk)
    mine, theirs = desk.last(GRID_WORKER), desk.last(WORKER2)
    await desk.press(GRID_WORKER, mine.button("受理"), mine)
    late = await desk.press(WORKER2, theirs.button("受理"), theirs)
    assert late[-1].text == "C1-2026-0001 已被其他人受理。"
    assert desk.last_toast() == "C1-2026-0001 已被其他人受理。"


async def test_assign_resolve_with_photo_rate_unsatisfied_and_rate_again(desk: Harness) -> None:
    await submit(desk, RESIDENT, await report(desk))
    issue = await issue_row(desk)
    card = (await desk.press(COORDINATOR, f"iss:open:{issue.id}"))[-1]
    chooser = (await desk.press(COORDINATOR, card.button("指派"), card))[-1]
    names = [label for row in chooser.buttons for label, _ in row]
    assert names == [
        "张伟 · 新德第一网格 网格员",
        "刘洋 · 新德第一网格 网格员",
        "吴刚 · 新德第一网格 网格长",
        "陈静 · 新德社区 社区干部",
    ]
    await desk.press(COORDINATOR, chooser.button("张伟"), chooser)
    await deliver(desk)
    assert desk.last(RESIDENT).text == "C1-2026-0001 已交由新德第一网格 网格员处理。"
    task = desk.last(GRID_WORKER)
    assert task.text.startswith("📌 您被指派处理：C1-2026-0001")
    await desk.press(GRID_WORKER, task.button("开始处理"), task)
    assert "状态：处理中" in task.text
    await desk.press(GRID_WORKER, task.button("办结"), task)
    assert "请写 C1-2026-0001 的处理说明" in desk.last(GRID_WORKER).text
    done = await desk.send_kind(GRID_WORKER, caption="已联系车主挪车", **photo("after"))
    assert done[-1].text == "C1-2026-0001 已办结，已请上报人评价。"

    await deliver(desk)
    answer = desk.last(RESIDENT)
    assert answer.kind == "photo"
    assert answer.file_id == "after"
    assert "处理说明：已联系车主挪车" in answer.text
    await desk.press(RESIDENT, answer.button("不满意"), answer)
    assert desk.last(RESIDENT).text.startswith("收到。C1-2026-0001 已重新办理")
    await deliver(desk)
    assert "不满意" in desk.last(COORDINATOR).text, "the tier above is told"
    assert "不满意" in desk.last(GRID_WORKER).text
    again = await desk.press(RESIDENT, answer.button("满意"), answer)
    assert again[-1].text.startswith("C1-2026-0001 已经评价过了")

    reopened = desk.last(GRID_WORKER)
    await desk.press(GRID_WORKER, reopened.button("查看"), reopened)
    card = desk.last(GRID_WORKER)
    await desk.press(GRID_WORKER, card.button("办结"), card)
    await desk.send(GRID_WORKER, "已安装隔离桩")
    without_photo = desk.last(GRID_WORKER)
    await desk.press(GRID_WORKER, without_photo.button("不附照片"), without_photo)
    await deliver(desk)
    answer = desk.last(RESIDENT)
    assert answer.kind == "text"
    await desk.press(RESIDENT, answer.button("基本满意"), answer)
    assert desk.last(RESIDENT).text == "感谢您的评价（基本满意）！C1-2026-0001 已结案。"
    assert (await issue_row(desk)).status == IssueStatus.closed


async def test_a_grid_worker_reports_for_a_resident_met_at_the_door(desk: Harness) -> None:
    async with desk.app.db.transaction() as session:
        member = (
            await session.execute(select(Member).where(col(Member.telegram_id) == RESIDENT.id))
        ).scalar_one()
        member.phone = "13800000001"
    question = (await desk.send(GRID_WORKER, "/report"))[-1]
    await desk.press(GRID_WORKER, question.button("代居民上报"), question)
    assert "请输入居民的手机号" in question.text
    found = await desk.send(GRID_WORKER, "138-0000-0001")
    assert found[0].text == "已找到居民 王阿姨，每一步进展都会告诉 TA。"
    choose = found[-1]
    await desk.press(GRID_WORKER, choose.button("设施损坏"), choose)
    await desk.send(GRID_WORKER, "单元门禁坏了")
    skip = desk.last(GRID_WORKER)
    await desk.press(GRID_WORKER, skip.button("跳过"), skip)
    confirm = (await desk.send(GRID_WORKER, "和平路 8 号"))[-1]
    assert "地址：和平路 8 号" in confirm.text
    await submit(desk, GRID_WORKER, confirm)
    await deliver(desk)
    assert desk.last(RESIDENT).text.startswith("网格工作人员已代您上报问题 C1-2026-0001")
    mine = await desk.send(RESIDENT, "/issue")
    assert "C1-2026-0001 · 设施损坏 · 待受理" in mine[-1].text


async def test_queue_tabs_card_and_timeline(desk: Harness) -> None:
    await submit(desk, RESIDENT, await report(desk))
    await submit(desk, NEIGHBOUR, await report(desk, NEIGHBOUR, category="文明养犬", text="狗叫"))
    queue = (await desk.send(GRID_WORKER, "/queue"))[-1]
    assert queue.text.startswith("问题待办 · 待受理")
    assert "1. C1-2026-0001 · 停车管理 · 待受理 · 11月23日 10:10 前" in queue.text
    tabs = [label for label, _ in queue.buttons[-1]]
    assert tabs == ["• 待受理 (2)", "我的 (0)", "超时 (0)"]
    desk.clock.advance(minutes=11)
    await desk.press(GRID_WORKER, queue.button("超时"), queue)
    assert "⚠️ 已超时（11月23日 10:10）" in queue.text

    card = (await desk.press(GRID_WORKER, queue.button("1. C1-2026-0001"), queue))[-1]
    await desk.press(GRID_WORKER, card.button("我来处理"), card)
    await desk.press(GRID_WORKER, queue.button("我的"), queue)
    assert "1. C1-2026-0001" in queue.text
    assert "我的 (1)" in [label for label, _ in queue.buttons[-1]][1]

    timeline = (await desk.send(GRID_WORKER, "/issue C1-2026-0001"))[-1]
    assert "11月23日 10:00 上报 · 王阿姨" in timeline.text
    assert "受理 · 张伟" in timeline.text
    assert "指派 · 张伟 → 张伟" in timeline.text
    own = (await desk.send(RESIDENT, "/issue C1-2026-0001"))[-1]
    assert "受理" in own.text
    assert "张伟" not in own.text, "the reporter does not see staff names"


async def test_the_board_shows_resolved_issues_without_personal_data(desk: Harness) -> None:
    await submit(
        desk, RESIDENT, await report(desk, text="3号楼2单元501室门口堆杂物，电话13912345678")
    )
    issue = await issue_row(desk)
    card = (await desk.press(GRID_WORKER, f"iss:open:{issue.id}"))[-1]
    await desk.press(GRID_WORKER, card.button("我来处理"), card)
    await desk.press(GRID_WORKER, card.button("办结"), card)
    await desk.send_kind(GRID_WORKER, caption="已清理", **photo("clean"))
    board = (await desk.send(NEIGHBOUR, "/board"))[-1]
    assert board.text.startswith("📢 公示反馈 · 新德第一网格（近 30 天办结）")
    assert "C1-2026-0001 · 停车管理 · 新德1号楼" in board.text
    for secret in ("501", "13912345678", "王阿姨", "张伟"):
        assert secret not in board.text


async def test_a_coordinator_adds_a_category_and_sets_its_deadline(desk: Harness) -> None:
    overview = (await desk.send(COORDINATOR, "/categories"))[-1]
    assert overview.text.startswith("问题类别与办理时限（新德社区）")
    assert "• 停车管理：普通 10 分钟受理 / 72 小时办结；紧急 10 分钟 / 24 小时" in overview.text
    await desk.press(COORDINATOR, overview.button("新增类别"), overview)
    added = await desk.send(COORDINATOR, "高空抛物 / Things thrown from windows")
    assert added[0].text == "已新增类别「高空抛物」。"
    overview = added[-1]
    await desk.press(COORDINATOR, overview.button("高空抛物"), overview)
    await desk.press(COORDINATOR, overview.button("紧急时限"), overview)
    wrong = await desk.send(COORDINATOR, "快点")
    assert wrong[-1].text.startswith("请输入两个数字")
    saved = await desk.send(COORDINATOR, "5 12")
    assert saved[0].text.startswith("已保存：5 分钟内受理，12 小时内办结")
    assert "• 高空抛物：普通 10 分钟受理 / 72 小时办结；紧急 5 分钟 / 12 小时" in saved[-1].text
    assert (await desk.send(GRID_WORKER, "/categories"))[-1].text.startswith("/categories 不在")


async def test_whistle_and_report_in_with_buttons(desk: Harness) -> None:
    await submit(desk, RESIDENT, await report(desk))
    issue = await issue_row(desk)
    card = (await desk.press(COORDINATOR, f"iss:open:{issue.id}"))[-1]
    chooser = (await desk.press(COORDINATOR, card.button("吹哨"), card))[-1]
    await desk.press(COORDINATOR, chooser.button("马科长"), chooser)
    assert chooser.text == "已吹哨：马科长 需在 11月23日 10:30 前就 C1-2026-0001 报到。"
    await deliver(desk)
    call = desk.last(DEPARTMENT)
    assert call.text.startswith("📣 吹哨报到：请就 C1-2026-0001 · 停车管理 报到。")
    await desk.press(DEPARTMENT, call.button("报到"), call)
    assert "处理人：马科长" in call.text
    await deliver(desk)
    assert desk.last(COORDINATOR).text == "✅ 部门已就 C1-2026-0001 · 停车管理 报到。"
    assert desk.last(RESIDENT).text == "C1-2026-0001 已交由和平街道 部门联络员处理。"
    queue = (await desk.send(DEPARTMENT, "/queue"))[-1]
    assert "我的 (1)" in [label for label, _ in queue.buttons[-1]]


async def test_english_speakers_get_english(desk: Harness) -> None:
    alice = User(2020, "Alice", language_code="en")
    await desk.send(alice, "/start demo-resident")
    question = (await desk.send(alice, "/report"))[-1]
    assert question.text == "Choose the kind of problem:"
    assert question.buttons[0][0][0] == "Parking"
    await desk.press(alice, question.button("Dogs"), question)
    await desk.send(alice, "A dog barks all night")
    skip = desk.last(alice)
    await desk.press(alice, skip.button("Skip"), skip)
    confirm = (await desk.send(alice, "Skip"))[-1]
    await desk.press(alice, confirm.button("Submit anonymously"), confirm)
    assert confirm.text.startswith("✅ Submitted anonymously as C1-2026-0001.")
    await deliver(desk)
    note = desk.last(GRID_WORKER)
    card = (await desk.press(GRID_WORKER, note.button("查看"), note))[-1]
    assert "上报人：Alice（匿名上报）" in card.text, "staff still see who reported"
