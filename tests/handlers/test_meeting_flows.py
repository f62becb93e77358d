"""Meetings in the chat, through the real App: a coordinator calls a council, residents are
invited and answer, check in by code or location, suggest topics; the organiser moves a
meeting, posts minutes and hands out follow-ups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlmodel import func, select

from models.meetings import Meeting, MeetingAttendance
from services import meetings
from services.access import load_actor
from services.members import find_member
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness
from tests.services.meeting_fixtures import (
    FIRST,
    RULES,
    VENUE,
    draft,
    hours,
    without_demo_meetings,
)


@pytest.fixture
async def town(harness: Harness) -> Harness:
    """The coordinator of C1, a resident of B1, a volunteer and a grid worker of G1; and a
    stranger who joined another community (C2)."""
    harness.app.courier.per_chat_interval = 0
    await without_demo_meetings(harness.app.db)
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await harness.send(RESIDENT, "/start demo-resident")
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    async with harness.app.db.transaction() as session:
        from services.access import Actor
        from services.invites import create_invite

        await create_invite(
            session, Actor.cli(), role="resident", unit_code="B4", now=harness.clock(), token="b4"
        )
    await harness.send(STRANGER, "/start b4")
    return harness


async def deliver(harness: Harness) -> None:
    while await harness.app.courier.drain_once():
        pass


async def call(harness: Harness, **overrides: object) -> int:
    """The coordinator calls a council (through the service), invitations go out."""
    async with harness.app.db.transaction() as session:
        member = await find_member(session, COORDINATOR.id)
        assert member is not None
        actor = await load_actor(session, member.id)
        _, planned = await meetings.create_series(
            session, actor, draft(**overrides), harness.clock(), RULES
        )
        await meetings.send_due_reminders(session, harness.clock(), RULES)
    await deliver(harness)
    return planned[0].id


def labels(message: SentMessage) -> list[str]:
    return [label for row in message.buttons for label, _ in row]


async def count(harness: Harness, model: type) -> int:
    async with harness.app.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# -- calling a meeting ------------------------------------------------------------------------


async def test_coordinator_calls_a_monthly_council_in_a_few_taps(town: Harness) -> None:
    h = town
    chooser = (await h.send(COORDINATOR, "/newmeeting"))[0]
    assert chooser.text == "要发起哪类会议？"
    assert labels(chooser) == ["月月谈", "多方联席会", "三会一课", "共建联席会", "其他会议"]
    await h.press(COORDINATOR, chooser.button("月月谈"), chooser)
    assert "为哪个单位召开？" in chooser.text
    assert labels(chooser) == [
        "新德社区 (C1)",
        "新德第一网格 (G1)",
        "新德第二网格 (G2)",
        "新德1号楼 (B1)",
        "新德2号楼 (B2)",
        "新德3号楼 (B3)",
    ]
    title = (await h.press(COORDINATOR, chooser.button("(G1)"), chooser))[-1]
    assert title.text.startswith("会议名称是什么？")
    audience = (await h.press(COORDINATOR, title.button("新德第一网格 月月谈"), title))[-1]
    assert audience.text == "邀请哪些人？"
    when = (await h.press(COORDINATOR, audience.button("公开"), audience))[-1]
    assert when.text.startswith("第一次会议什么时候开？")

    refused = await h.send(COORDINATOR, "2027-02-31 19:00")
    assert refused[-1].text == "2027 年 2 月没有 31 日（这个月只有 28 天）。"
    rules = (await h.send(COORDINATOR, "2026-12-08 19:00"))[-1]
    assert rules.text == "第一次会议：12月8日 周二 19:00。以后怎么重复？"
    assert labels(rules) == [
        "仅此一次",
        "每周周二",
        "每月第二个周二",
        "每月 8 日",
        "每两个月的第二个周二",
        "每两个月的 8 日",
        "自定义规则（RRULE）",
    ]
    venue = (await h.press(COORDINATOR, rules.button("每月第二个周二"), rules))[-1]
    assert venue.text.startswith("在哪里开？")
    place = await h.send(COORDINATOR, "新德社区党群服务站")
    assert place[0].request == [[("📍 发送我的位置", "location")]]
    confirm = (
        await h.send_kind(COORDINATOR, location={"latitude": VENUE[0], "longitude": VENUE[1]})
    )[-1]
    assert "名称：新德第一网格 月月谈" in confirm.text
    assert "重复：每月第二个周二 19:00" in confirm.text
    assert "• 12月8日 周二 19:00\n• 1月12日 周二 19:00\n• 2月9日 周二 19:00" in confirm.text
    assert "（可位置签到）" in confirm.text
    assert await count(h, Meeting) == 0, "nothing before the confirmation"

    replies = await h.press(COORDINATOR, confirm.button("创建"), confirm)
    assert (
        confirm.text
        == "✅ 已创建「新德第一网格 月月谈」，第一次会议：12月8日 周二 19:00。邀请很快就会发出。"
    )
    card = replies[-1]
    assert card.text.startswith("【月月谈】新德第一网格 月月谈\n🕖 12月8日 周二 19:00–20:30")
    assert "🔢 签到码" in labels(card)
    assert await count(h, Meeting) == 1


async def test_a_rule_that_never_occurs_is_refused_in_the_chat(town: Harness) -> None:
    h = town
    chooser = (await h.send(COORDINATOR, "/newmeeting"))[0]
    await h.press(COORDINATOR, chooser.button("其他会议"), chooser)
    await h.press(COORDINATOR, chooser.button("(C1)"), chooser)
    await h.send(COORDINATOR, "二月特别会议")
    audience = h.last(COORDINATOR)
    await h.press(COORDINATOR, audience.button("按角色"), audience)
    roles = audience
    assert roles.text == "点选受邀的角色（可多选），然后点「完成」。"
    await h.press(COORDINATOR, roles.button("完成"), roles)
    assert h.last(COORDINATOR).text == "请至少选择一个角色。"
    await h.press(COORDINATOR, roles.button("网格员"), roles)
    assert "✔ 网格员" in labels(roles)
    await h.press(COORDINATOR, roles.button("完成"), roles)
    rules = (await h.send(COORDINATOR, "2027-02-26 10:00"))[-1]
    await h.press(COORDINATOR, rules.button("自定义"), rules)
    refused = await h.send(COORDINATOR, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31")
    assert refused[-1].text.startswith("按这个规则，会议永远不会举行（比如并不存在 2 月 31 日）")
    venue = await h.send(COORDINATOR, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1")
    assert venue[-1].text.startswith("在哪里开？"), "the last day of February is fine"
    assert await count(h, Meeting) == 0


async def test_residents_cannot_call_meetings(town: Harness) -> None:
    replies = await town.send(RESIDENT, "/newmeeting")
    assert replies[-1].text.startswith("/newmeeting 不在您的角色可用范围内。")


# -- invitations, RSVP, calendar file ---------------------------------------------------------


async def test_resident_is_invited_answers_and_gets_a_calendar_file(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    invitation = h.last(RESIDENT)
    assert invitation.text.startswith("📅 会议邀请\n【月月谈】新德第一网格月月谈")
    assert labels(invitation)[:3] == ["参加", "不参加", "待定"]
    assert not [m for m in h.transport.chats[STRANGER.id] if "会议邀请" in m.text], (
        "another community is not invited"
    )

    await h.press(RESIDENT, invitation.button("参加"), invitation)
    assert h.last_toast() == "已记录：参加"
    assert "您的回复：参加" in invitation.text, "the invitation turns into the meeting card"
    assert "✔ 参加" in labels(invitation)

    listing = (await h.send(RESIDENT, "/meetings"))[0]
    assert "1. 12月8日 周二 19:00\n   新德第一网格月月谈 · 📍 新德社区党群服务站" in listing.text
    assert "我的回复：参加" in listing.text
    document = (await h.press(RESIDENT, listing.button("日历"), listing))[-1]
    assert document.kind == "document"
    assert document.upload is not None
    assert document.upload.filename == f"meeting-{meeting_id}.ics"
    event = Calendar.from_ical(document.upload.data).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == FIRST

    summary = await h.press(COORDINATOR, f"mtg_rsvps:{meeting_id}")
    assert "参加（1）：王阿姨" in summary[-1].text
    assert "未回复：3 人" in summary[-1].text


async def test_rsvp_to_a_cancelled_meeting_gets_a_clear_answer(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    invitation = h.last(RESIDENT)
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    confirm = (await h.press(COORDINATOR, card.button("取消本次"), card))[-1]
    assert "取消后不能恢复" in confirm.text
    await h.press(COORDINATOR, confirm.button("确定取消"), confirm)
    assert confirm.text.startswith("已取消 12月8日 周二 19:00 的「新德第一网格月月谈」")
    await deliver(h)
    assert h.last(RESIDENT).text.startswith("❌ 会议取消")
    await h.press(RESIDENT, invitation.button("参加"), invitation)
    assert h.last(RESIDENT).text == "「新德第一网格月月谈」这次会议已取消。"


async def test_forged_buttons_for_a_meeting_outside_ones_audience_are_refused(
    town: Harness,
) -> None:
    h = town
    meeting_id = await call(h, audience="roles", roles=("grid_worker",))
    for payload in (
        f"mtg_rsvp:{meeting_id}:yes",
        f"mtg_card:{meeting_id}",
        f"mtg_ics:{meeting_id}",
    ):
        replies = await h.press(RESIDENT, payload)
        assert replies[-1].text == "您不在这次会议的邀请范围内。"
    replies = await h.press(RESIDENT, f"mtg_code:{meeting_id}")
    assert replies[-1].text == "抱歉，您没有权限执行此操作。"


# -- check-in ---------------------------------------------------------------------------------


async def test_check_in_by_code_and_by_location(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    h.clock.now = FIRST - timedelta(minutes=10)
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    shown = (await h.press(COORDINATOR, card.button("签到码"), card))[-1]
    code = shown.text.split("\n\n")[1]
    assert len(code) == 6
    assert "有效时间：12月8日 周二 18:30 至 21:00" in shown.text

    done = await h.send(RESIDENT, f"/checkin {code}")
    assert done[-1].text == "✅ 签到成功：「新德第一网格月月谈」，18:50。\n🏅 参会积分 +3。"
    again = await h.send(RESIDENT, f"/checkin {code}")
    assert again[-1].text == "您已于 18:50 在「新德第一网格月月谈」签到过了，不会重复计算。"

    asked = await h.send(VOLUNTEER, "/checkin")
    assert asked[-1].request == [[("📍 发送我的位置", "location")]]
    far = await h.send_kind(
        VOLUNTEER, location={"latitude": VENUE[0] + 0.02, "longitude": VENUE[1]}
    )
    assert far[-1].text.startswith("您距离会场约 2.2 km，需在 300 米以内才能位置签到。")
    near = await h.send_kind(
        VOLUNTEER, location={"latitude": VENUE[0] + 0.0005, "longitude": VENUE[1]}
    )
    assert near[-1].text == (
        "✅ 签到成功：「新德第一网格月月谈」，18:50。\n🏅 参会积分 +3 · 服务时长 1.5 小时。"
    )
    assert near[-1].remove_keyboard

    late = FIRST + hours(3)
    h.clock.now = late
    expired = await h.send(GRID_WORKER, f"/checkin {code}")
    assert expired[-1].text == "这个签到码已过期（签到于 12-08 21:00 结束）。"
    assert await count(h, MeetingAttendance) == 2


async def test_a_member_outside_the_audience_cannot_check_in(town: Harness) -> None:
    h = town
    meeting_id = await call(h, audience="roles", roles=("volunteer",))
    h.clock.now = FIRST
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    code = (await h.press(COORDINATOR, card.button("签到码"), card))[-1].text.split("\n\n")[1]
    refused = await h.send(RESIDENT, f"/checkin {code}")
    assert refused[-1].text == "您不在这次会议的邀请范围内。"
    bound = await h.press(VOLUNTEER, f"mtg_checkin:{meeting_id}")
    assert bound[-1].text.startswith("请输入会场展示的 6 位签到码")
    wrong = await h.send(VOLUNTEER, "12345")
    assert wrong[-1].text == "签到码是 6 位数字。"
    ok = await h.send(VOLUNTEER, code)
    assert ok[-1].text.startswith("✅ 签到成功")
    assert await count(h, MeetingAttendance) == 1


# -- the organiser's side ---------------------------------------------------------------------


async def test_organiser_moves_a_meeting_and_everyone_is_told(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    asked = (await h.press(COORDINATOR, card.button("改时间"), card))[-1]
    assert asked.text.startswith("改到什么时间？")
    confirm = (await h.send(COORDINATOR, "12月10日 19:30"))[-1]
    assert confirm.text == (
        "把「新德第一网格月月谈」从 12月8日 周二 19:00 改到 12月10日 周四 19:30？"
        "所有受邀人员都会收到通知。"
    )
    await h.press(COORDINATOR, confirm.button("确定改期"), confirm)
    assert confirm.text.startswith("✅「新德第一网格月月谈」已改到 12月10日 周四 19:30")
    await deliver(h)
    told = h.last(VOLUNTEER)
    assert told.text.startswith("🕑 会议改期（原定 12月8日 周二 19:00）：")
    assert "12月10日 周四 19:30–21:00" in told.text
    assert labels(told)[:3] == ["参加", "不参加", "待定"]


async def test_topics_minutes_and_follow_ups(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    saved = await h.send(RESIDENT, "/topic 3号楼楼道堆放杂物")
    assert saved[-1].text.startswith("✅ 议题已提交给「新德第一网格月月谈」（12月8日 周二 19:00）")
    await h.send(VOLUNTEER, "/topic")
    await h.send(VOLUNTEER, "电动车飞线充电")
    agenda = await h.press(COORDINATOR, f"mtg_agenda:{meeting_id}")
    assert agenda[-1].text == (
        "📝「新德第一网格月月谈」的议题（2 条）：\n"
        "1. 3号楼楼道堆放杂物 — 王阿姨\n"
        "2. 电动车飞线充电 — 李明"
    )

    h.clock.now = FIRST + hours(2)
    closed = await h.send(RESIDENT, "/topic 太晚了")
    assert closed[-1].text == "近期没有您可以提议题的会议。"
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    await h.press(COORDINATOR, card.button("纪要"), card)
    saved_minutes = await h.send(COORDINATOR, "一、楼道杂物本周清理\n二、增设充电桩")
    assert saved_minutes[-1].text.startswith("🗒「新德第一网格月月谈」的纪要已保存。")
    followups = (await h.press(COORDINATOR, saved_minutes[-1].button("待办"), saved_minutes[-1]))[
        -1
    ]
    assert "还没有待办事项。" in followups.text
    await h.press(COORDINATOR, followups.button("添加"), followups)
    owners = (await h.send(COORDINATOR, "清理3号楼楼道杂物"))[-1]
    assert labels(owners) == ["陈静", "暂不指定"]
    await h.press(COORDINATOR, owners.button("陈静"), owners)
    added = await h.send(COORDINATOR, "2026-12-15")
    assert added[-1].text == "📌 已添加待办：清理3号楼楼道杂物\n负责人：陈静 · 期限：2026年12月15日"
    listing = (await h.press(COORDINATOR, added[-1].button("待办"), added[-1]))[-1]
    assert "1. 清理3号楼楼道杂物\n   负责人：陈静 · 期限：2026年12月15日 · 进行中" in listing.text
    await h.press(COORDINATOR, listing.button("1 项完成"), listing)
    assert h.last(COORDINATOR).text == "已更新：清理3号楼楼道杂物 → 已完成"


async def test_attendance_over_time(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    h.clock.now = FIRST
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    code = (await h.press(COORDINATOR, card.button("签到码"), card))[-1].text.split("\n\n")[1]
    await h.send(RESIDENT, f"/checkin {code}")
    h.clock.now = FIRST + timedelta(days=1)
    chooser = (await h.send(COORDINATOR, "/attendance"))[0]
    report = (await h.press(COORDINATOR, chooser.button("新德第一网格月月谈"), chooser))[-1]
    assert report.text == (
        "📊「新德第一网格月月谈」出勤情况\n2026年12月8日：签到 1/4 人（25%），报名参加 0 人\n\n"
        "每人参会次数：\n• 王阿姨: 1/1"
    )


async def test_english_speakers_get_english(town: Harness) -> None:
    from tests.conftest import ALICE

    h = town
    await h.send(ALICE, "/start demo-volunteer")
    await call(h)
    listing = (await h.send(ALICE, "/meetings"))[0]
    assert listing.text.startswith("📅 Your upcoming meetings:\n\n1. Tue 8 Dec, 19:00")
    assert "Your answer: no answer yet" in listing.text


async def test_organiser_ends_a_series_after_confirming(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    refused = await h.press(RESIDENT, card.button("结束系列"))
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"
    confirm = (await h.press(COORDINATOR, card.button("结束系列"), card))[-1]
    assert "已经排好的会议仍会举行" in confirm.text
    await h.press(COORDINATOR, confirm.button("确定结束"), confirm)
    assert confirm.text == "「新德第一网格月月谈」系列已结束，不再安排新的会议。"
    async with h.app.db.transaction() as session:
        assert await meetings.plan_all(session, FIRST + timedelta(days=40), RULES) == 0
    card = (await h.press(COORDINATOR, f"mtg_card:{meeting_id}"))[-1]
    assert "⏹ 结束系列" not in labels(card)
