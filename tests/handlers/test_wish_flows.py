"""Micro-wishes through the chat: what people type and tap, and what they see."""

from __future__ import annotations

import pytest

from bot.i18n import translator
from jobs.wishes import wish_deadlines
from tests.conftest import COORDINATOR, RESIDENT, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness, User

GRID_LEADER = User(2010, "刘网格长")
VOLUNTEER2 = User(2011, "周丽")
PHOTO = [{"file_id": "photo-1", "file_unique_id": "p1", "width": 640, "height": 480}]


@pytest.fixture(autouse=True)
def unpaced(harness: Harness) -> None:
    """Notifications still go through the real sender, without the one-a-second pacing per
    chat (which the sender's own tests cover), so that stories take no wall-clock time."""
    harness.app.courier.per_chat_interval = 0


async def deliver(harness: Harness) -> None:
    """Send what the outbox holds for other people (the sender job's work)."""
    for _ in range(20):
        if not await harness.app.courier.drain_once():
            return


async def join(harness: Harness, *people: tuple[User, str]) -> None:
    for user, token in people:
        await harness.send(user, f"/start {token}")


async def post_wish(harness: Harness, text: str = "孙子周末想找人辅导数学") -> None:
    chooser = (await harness.send(RESIDENT, "/wish"))[0]
    await harness.press(RESIDENT, chooser.button("辅导功课"), chooser)
    await harness.send(RESIDENT, text)
    photo_question = harness.last(RESIDENT)
    await harness.press(RESIDENT, photo_question.button("跳过"), photo_question)
    date_question = harness.last(RESIDENT)
    await harness.press(RESIDENT, date_question.button("不限"), date_question)
    summary = (await harness.send(RESIDENT, "1号楼2单元301"))[0]
    await harness.press(RESIDENT, summary.button("提交"), summary)
    await deliver(harness)


def notice(harness: Harness, user: User, part: str) -> SentMessage:
    for message in reversed(harness.transport.chats[user.id]):
        if part in message.text:
            return message
    raise AssertionError(f"{user.first_name} got no message with {part!r}: {harness.texts(user)}")


async def approved_wish(harness: Harness) -> None:
    await join(harness, (RESIDENT, "demo-resident"), (GRID_LEADER, "demo-gridleader"))
    await post_wish(harness)
    asked = notice(harness, GRID_LEADER, "新的微心愿待审核")
    await harness.press(GRID_LEADER, asked.button("通过"), asked)
    await deliver(harness)


async def test_resident_posts_a_wish_step_by_step_and_the_grid_leader_approves_it(
    harness: Harness,
) -> None:
    await join(harness, (RESIDENT, "demo-resident"), (GRID_LEADER, "demo-gridleader"))
    chooser = (await harness.send(RESIDENT, "/wish"))[0]
    assert chooser.text == "想发布什么样的微心愿？请选择类别："
    assert [label for row in chooser.buttons for label, _ in row] == [
        "困难帮扶",
        "助老关爱",
        "辅导功课",
        "维修",
        "健康",
        "其他",
    ]
    asked = await harness.press(RESIDENT, chooser.button("辅导功课"), chooser)
    assert chooser.text == "类别：辅导功课", "the chooser shows the choice"
    assert "请用一段话写下您的心愿" in asked[-1].text

    too_long = await harness.send(RESIDENT, "字" * 501)
    assert too_long[0].text == "心愿最多 500 个字，请精简后再发。"
    photo_question = (await harness.send(RESIDENT, "孙子周末想找人辅导数学"))[0]
    assert "可以发一张照片" in photo_question.text
    await harness.send_kind(RESIDENT, photo=PHOTO)
    date_question = harness.last(RESIDENT)
    assert "希望什么时候之前完成" in date_question.text
    unreadable = await harness.send(RESIDENT, "下个月吧")
    assert "没看懂这个日期" in unreadable[0].text
    address_question = (await harness.send(RESIDENT, "12-31"))[0]
    assert "只有认领人在认领后才能看到" in address_question.text
    summary = (await harness.send(RESIDENT, "1号楼2单元301"))[0]
    assert summary.text.splitlines()[:6] == [
        "请核对您的微心愿：",
        "类别：辅导功课",
        "心愿：孙子周末想找人辅导数学",
        "期望完成：2026-12-31",
        "照片：已附",
        "地址：1号楼2单元301",
    ]
    await harness.press(RESIDENT, summary.button("提交"), summary)
    assert summary.text.startswith("已提交 #1「辅导功课」孙子周末想找人辅导数学")
    await deliver(harness)

    photo, request = harness.transport.chats[GRID_LEADER.id][-2:]
    assert (photo.kind, photo.file_id) == ("photo", "photo-1")
    assert "新的微心愿待审核：#1「辅导功课」孙子周末想找人辅导数学" in request.text
    assert "1号楼2单元301" not in request.text
    await harness.press(GRID_LEADER, request.button("通过"), request)
    assert request.text == "已通过并发布：#1「辅导功课」孙子周末想找人辅导数学"
    again = await harness.press(GRID_LEADER, "wish:ok:1", request)
    assert again[-1].text == "这个微心愿已经审核通过了。"
    await deliver(harness)
    assert harness.texts(RESIDENT)[-1] == (
        "✅ 您的微心愿已通过审核并发布：#1「辅导功课」孙子周末想找人辅导数学"
    )


async def test_volunteer_finds_claims_and_fulfils_and_the_resident_confirms(
    harness: Harness,
) -> None:
    await approved_wish(harness)
    await join(harness, (VOLUNTEER, "demo-volunteer"), (VOLUNTEER2, "demo-volunteer"))
    listing = (await harness.send(VOLUNTEER, "/wishes"))[0]
    assert listing.text.splitlines()[0] == "可认领的微心愿（全部）：共 1 个"
    assert "#1「辅导功课」孙子周末想找人辅导数学 · 新德1号楼" in listing.text
    assert "1号楼2单元301" not in listing.text
    view = (await harness.press(VOLUNTEER, listing.button("查看 #1")))[-1]
    assert "状态：已发布" in view.text
    claimed = (await harness.press(VOLUNTEER, view.button("认领"), view))[-1]
    assert claimed.text.startswith("认领成功：#1「辅导功课」孙子周末想找人辅导数学")
    assert "联系人：王阿姨" in claimed.text
    assert "地址：1号楼2单元301" in claimed.text

    late = await harness.press(VOLUNTEER2, "wish:claim:1")
    assert late[-1].text == "这个微心愿已经被认领了。"
    assert harness.last_toast() == "这个微心愿已经被认领了。"
    await deliver(harness)
    assert "李明 认领了您的微心愿" in harness.texts(RESIDENT)[-1]

    asked = (await harness.press(VOLUNTEER, claimed.button("已完成"), claimed))[-1]
    assert "请简单写下 #1 的完成情况" in asked.text
    after_photo = await harness.send_kind(VOLUNTEER, photo=PHOTO)
    assert after_photo[-1].text == "收到照片。请再写一句完成情况。"
    hours = (await harness.send(VOLUNTEER, "周六上午辅导了两个小时"))[-1]
    assert "这次服务用了多长时间" in hours.text
    done = await harness.press(VOLUNTEER, hours.button("2 h"), hours)
    assert done[-1].text.startswith("已标记完成：#1")
    await deliver(harness)

    asked_to_confirm = notice(harness, RESIDENT, "李明 已完成您的微心愿")
    assert "说明：周六上午辅导了两个小时" in asked_to_confirm.text
    await harness.press(RESIDENT, asked_to_confirm.button("确认完成"), asked_to_confirm)
    assert asked_to_confirm.text.startswith("已确认完成：#1")
    twice = await harness.press(RESIDENT, "wish:conf:1")
    assert twice[-1].text == "这个微心愿已经确认完成了。"
    await deliver(harness)
    assert "积分 +10，服务时长 2 小时" in harness.texts(VOLUNTEER)[-1]
    points = (await harness.send(VOLUNTEER, "/points"))[0].text
    assert "可用积分：10" in points
    assert "+10 完成微心愿" in points


async def test_an_approver_cannot_approve_their_own_wish_in_the_chat(harness: Harness) -> None:
    await join(harness, (GRID_LEADER, "demo-gridleader"), (COORDINATOR, "demo-coordinator"))
    chooser = (await harness.send(GRID_LEADER, "/wish"))[0]
    await harness.press(GRID_LEADER, chooser.button("维修"), chooser)
    await harness.send(GRID_LEADER, "楼道灯坏了")
    await harness.press(GRID_LEADER, harness.last(GRID_LEADER).button("跳过"))
    await harness.press(GRID_LEADER, harness.last(GRID_LEADER).button("不限"))
    summary = (await harness.send(GRID_LEADER, "1号楼楼道"))[0]
    await harness.press(GRID_LEADER, summary.button("提交"), summary)
    own = await harness.press(GRID_LEADER, "wish:ok:1")
    assert own[-1].text == "不能审核自己发布的微心愿，请由其他网格长或社区审核。"
    await deliver(harness)
    asked = notice(harness, COORDINATOR, "新的微心愿待审核")
    await harness.press(COORDINATOR, asked.button("通过"), asked)
    assert asked.text.startswith("已通过并发布")


async def test_forged_wish_buttons_change_nothing(harness: Harness) -> None:
    await approved_wish(harness)
    claimed_by_resident = await harness.press(RESIDENT, "wish:claim:1")
    assert claimed_by_resident[-1].text == "抱歉，您没有权限执行此操作。"
    unknown = await harness.press(RESIDENT, "wish:view:424242")
    assert unknown[-1].text == "没有找到这个微心愿。"
    nonsense = await harness.press(RESIDENT, "wish:explode:1")
    assert nonsense[-1].text == "这个按钮已失效。"
    await harness.press(RESIDENT, "wish:view:abc")
    assert harness.last_toast() == "这个按钮已失效。"


async def test_rejection_asks_for_a_reason_and_the_resident_sees_it(harness: Harness) -> None:
    await join(harness, (RESIDENT, "demo-resident"), (GRID_LEADER, "demo-gridleader"))
    await post_wish(harness, "想要一台新电视")
    asked = notice(harness, GRID_LEADER, "新的微心愿待审核")
    question = (await harness.press(GRID_LEADER, asked.button("不通过"), asked))[-1]
    assert question.text == "请写下 #1 不通过的原因（会告诉发布人）。"
    await harness.send(GRID_LEADER, "不属于微心愿范围，可申请临时救助")
    await deliver(harness)
    assert "原因：不属于微心愿范围，可申请临时救助" in harness.texts(RESIDENT)[-1]
    mine = (await harness.send(RESIDENT, "/mywishes"))[0].text
    assert "#1「辅导功课」想要一台新电视 — 未通过" in mine


async def test_skills_are_toggled_and_filter_the_list(harness: Harness) -> None:
    await approved_wish(harness)
    await join(harness, (VOLUNTEER, "demo-volunteer"))
    skills = (await harness.send(VOLUNTEER, "/skills"))[0]
    assert skills.text.startswith("我的志愿技能：—")
    await harness.press(VOLUNTEER, skills.button("辅导功课"), skills)
    assert skills.text.startswith("我的志愿技能：辅导功课")
    assert "✅ 辅导功课" in [label for row in skills.buttons for label, _ in row]
    listing = (await harness.send(VOLUNTEER, "/wishes"))[0]
    await harness.press(VOLUNTEER, listing.button("按我的技能"), listing)
    assert "只看与我的技能相符的" in listing.text
    assert "#1「辅导功课」" in listing.text
    await harness.press(VOLUNTEER, listing.button("维修"), listing)
    assert "暂时没有待认领的微心愿" in listing.text


async def test_deadlines_with_a_frozen_clock_release_and_escalate(harness: Harness) -> None:
    await approved_wish(harness)
    await join(harness, (VOLUNTEER, "demo-volunteer"), (COORDINATOR, "demo-coordinator"))
    await harness.press(VOLUNTEER, "wish:claim:1")
    zone = harness.app.settings.zone

    harness.clock.advance(days=7)
    report = await wish_deadlines(harness.app.db, harness.clock.now, zone)
    assert (report.reminded, report.released) == (1, 1)
    await deliver(harness)
    assert "超过期限未完成，已自动释放" in harness.texts(VOLUNTEER)[-1]
    assert "它已重新发布" in harness.texts(RESIDENT)[-1]
    again = await wish_deadlines(harness.app.db, harness.clock.now, zone)
    assert (again.reminded, again.released, again.escalated) == (0, 0, 0)

    claimed = (await harness.press(VOLUNTEER, "wish:claim:1"))[-1]
    await harness.press(VOLUNTEER, claimed.button("已完成"), claimed)
    hours = (await harness.send(VOLUNTEER, "辅导完成"))[-1]
    await harness.press(VOLUNTEER, hours.button("不记录时长"), hours)
    await deliver(harness)
    early = await harness.press(COORDINATOR, "wish:conf:1")
    assert "之后社区才能代为确认" in early[-1].text

    harness.clock.advance(days=3)
    report = await wish_deadlines(harness.app.db, harness.clock.now, zone)
    assert report.escalated == 1
    await deliver(harness)
    overdue = notice(harness, COORDINATOR, "发布人超时未确认")
    await harness.press(COORDINATOR, overdue.button("确认完成"), overdue)
    assert overdue.text.startswith("已确认完成：#1")
    await deliver(harness)
    assert "社区已代为确认" in harness.texts(RESIDENT)[-1]
    assert "积分 +10" in harness.texts(VOLUNTEER)[-1]


async def test_english_speakers_get_english(harness: Harness) -> None:
    alice = User(2020, "Alice", language_code="en")
    await join(harness, (alice, "demo-resident"))
    chooser = (await harness.send(alice, "/wish"))[0]
    assert chooser.text == "What kind of wish is it? Please choose a category:"
    t = translator("en")
    assert t("wishes.category_tutoring") in [label for row in chooser.buttons for label, _ in row]
