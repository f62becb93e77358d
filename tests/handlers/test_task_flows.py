"""Tasks in the chat, through the real App: a coordinator posts a task (bad input answered on
the way), volunteers take and give back slots from the announcement, the organiser checks
them in and out; an emergency call goes to the reserve first; forged buttons change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.i18n import translator
from jobs.tasks import settle_no_shows
from models.members import Member
from models.outbox import OutboxMessage, OutboxStatus
from models.points import LedgerEntry
from models.tasks import Task, TaskTake
from services import audiences, broadcasts, tasks
from services.access import load_actor
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, Draft
from services.members import find_member
from services.tasks import TaskDraft, TaskRules
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness, User

ZH = translator("zh_CN")


@pytest.fixture
async def town(harness: Harness) -> Harness:
    """The coordinator of C1, a resident of B1, a volunteer and a grid worker of G1, and a
    resident of B4 (community C2)."""
    harness.app.courier.per_chat_interval = 0
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


async def post_task(h: Harness, slots: str = "2") -> None:
    await h.send(COORDINATOR, "/task")
    await h.send(COORDINATOR, "清理3号楼垃圾")
    await h.send(COORDINATOR, "2026-11-28 09:00")
    await h.send(COORDINATOR, "11:00")
    await h.send(COORDINATOR, "3号楼门口")
    preview = (await h.send(COORDINATOR, slots))[-1]
    await h.press(COORDINATOR, preview.button("发布"), preview)
    await deliver(h)


async def only_task_id(h: Harness) -> int:
    async with h.app.db.transaction() as session:
        return int((await session.execute(select(col(Task.id)))).scalar_one() or 0)


def announcement(h: Harness, user: User) -> SentMessage:
    found = [m for m in h.transport.chats[user.id] if "清理3号楼垃圾" in m.text and m.buttons]
    assert found, f"{user.first_name} got the task"
    return found[-1]


async def test_a_coordinator_posts_a_task_and_bad_input_is_answered(town: Harness) -> None:
    h = town
    first = (await h.send(COORDINATOR, "/task"))[-1]
    assert first.text.startswith("任务名称是什么？")
    start = (await h.send(COORDINATOR, "清理3号楼垃圾"))[-1]
    assert start.text.startswith("什么时候开始？")
    past = (await h.send(COORDINATOR, "2026-11-01 09:00"))[-1]
    assert past.text == ZH("meetings.in_past")
    end = (await h.send(COORDINATOR, "2026-11-28 09:00"))[-1]
    assert end.text.startswith("什么时候结束？")
    before = (await h.send(COORDINATOR, "09:00"))[-1]
    assert before.text == "结束时间必须晚于开始时间。"
    place = (await h.send(COORDINATOR, "11:00"))[-1]
    assert place.text.startswith("在哪里？")
    slots = (await h.send(COORDINATOR, "3号楼门口"))[-1]
    assert slots.text.startswith("需要多少人？")
    zero = (await h.send(COORDINATOR, "0"))[-1]
    assert zero.text == "名额请输入 1 到 500 之间的数字。"
    preview = (await h.send(COORDINATOR, "5"))[-1]
    assert "将通知" in preview.text
    assert "11月28日" in preview.text
    async with h.app.db.transaction() as session:
        assert (await session.execute(select(Task))).first() is None, "nothing before confirm"
    sent = await h.press(COORDINATOR, preview.button("发布"), preview)
    assert preview.text.startswith("已发布“清理3号楼垃圾”")
    assert sent[-1].text.startswith("📋 志愿任务：清理3号楼垃圾")
    await deliver(h)
    card = announcement(h, VOLUNTEER)
    assert card.buttons[0][0][0] == "🙋 报名（0/5）"
    assert not [m for m in h.transport.chats[STRANGER.id] if "清理3号楼垃圾" in m.text]
    organiser = (await h.press(COORDINATOR, f"tk_card:{await only_task_id(h)}"))[-1]
    assert "📬 已通知 3 人：待发 0，已送达 3，失败 0，屏蔽 0" in organiser.text
    volunteer = (await h.press(VOLUNTEER, f"tk_card:{await only_task_id(h)}"))[-1]
    assert "📬" not in volunteer.text, "only organisers see the delivery"


async def test_volunteers_take_and_give_back_from_the_announcement(town: Harness) -> None:
    h = town
    await post_task(h, slots="1")
    card = announcement(h, VOLUNTEER)
    payload = card.button("报名")
    await h.press(VOLUNTEER, payload, card)
    assert h.last_toast() == "报名成功！已报名 1/1。"
    assert "已报名 1/1" in card.text
    assert card.buttons[0][0][0] == "↩ 退出（1/1）"
    await h.press(VOLUNTEER, payload)
    assert h.last_toast() == "你已经报名了这个班次。"
    other = announcement(h, GRID_WORKER)
    await h.press(GRID_WORKER, other.button("报名"), other)
    assert h.last_toast() == "名额已满，谢谢你的热心！"
    listing = (await h.send(VOLUNTEER, "/tasks"))[-1]
    assert "我报名的" in listing.text
    await h.press(VOLUNTEER, card.button("退出"), card)
    assert h.last_toast() == "已退出，名额已空出。"
    assert card.buttons[0][0][0] == "🙋 报名（0/1）"
    await h.press(GRID_WORKER, other.button("报名"), other)
    assert h.last_toast() == "报名成功！已报名 1/1。"


async def test_the_organiser_checks_in_and_out_and_points_follow(town: Harness) -> None:
    h = town
    await post_task(h)
    card = announcement(h, VOLUNTEER)
    await h.press(VOLUNTEER, card.button("报名"), card)
    async with h.app.db.transaction() as session:
        take_id = (await session.execute(select(col(TaskTake.id)))).scalar_one()
    # Forged buttons change nothing: a check-in by the volunteer, a cancel by the volunteer,
    # a take by someone in another community the task never reached.
    shift_id = int(card.button("退出").split(":")[1])
    task_id = await only_task_id(h)
    for user, payload in (
        (VOLUNTEER, f"tk_in:{take_id}"),
        (VOLUNTEER, f"tk_cancel:{task_id}"),
        (VOLUNTEER, f"tk_takers:{shift_id}"),
        (STRANGER, f"tk_take:{shift_id}"),
    ):
        await h.press(user, payload)
        assert h.last_toast() == ZH("error.permission"), payload
        assert h.texts(user)[-1] == ZH("error.permission")
    async with h.app.db.transaction() as session:
        take = await session.get(TaskTake, take_id)
        assert take is not None
        assert take.checked_in_at is None
        assert len((await session.execute(select(TaskTake))).all()) == 1
        assert (await session.get(Task, task_id)).status == "open"  # type: ignore[union-attr]
    organiser_card = [
        m for m in h.transport.chats[COORDINATOR.id] if m.text.startswith("📋 志愿任务")
    ][-1]
    h.clock.advance(days=5)  # Saturday 10:00 local, within the shift
    takers = (await h.press(COORDINATOR, organiser_card.button("报名名单")))[-1]
    assert "1. 李明 — 已报名" in takers.text
    await h.press(COORDINATOR, takers.button("签到"), takers)
    assert h.last_toast() == "李明 已签到。"
    assert "已签到" in takers.text
    h.clock.advance(hours=2)
    await h.press(COORDINATOR, takers.button("签退"), takers)
    assert h.last_toast() == "李明 已签退，记 1 小时。"
    await h.press(COORDINATOR, f"tk_out:{take_id}")
    assert h.last_toast() == "李明 之前已签退。"
    await deliver(h)
    assert any("积分 +5" in text for text in h.texts(VOLUNTEER))
    async with h.app.db.transaction() as session:
        entries = (
            (await session.execute(select(LedgerEntry).where(col(LedgerEntry.source) == "task")))
            .scalars()
            .all()
        )
    assert [e.points for e in entries] == [5]


async def test_an_emergency_call_goes_to_the_reserve_first(town: Harness) -> None:
    h = town
    async with h.app.db.transaction() as session:
        member = await find_member(session, GRID_WORKER.id)
        assert member is not None
        await audiences.join_reserve(session, await load_actor(session, member.id), h.clock())
    await h.send(COORDINATOR, "/emergency")
    await h.send(COORDINATOR, "防汛值守")
    await h.send(COORDINATOR, "河堤")
    shifts = (await h.send(COORDINATOR, "2026-11-24 08:00"))[-1]
    assert shifts.text.startswith("几个班次")
    bad = (await h.send(COORDINATOR, "3x30"))[-1]
    assert bad.text.startswith("请按“班次数x小时数”输入")
    await h.send(COORDINATOR, "3x8")
    widen = (await h.send(COORDINATOR, "2"))[-1]
    preview = (await h.press(COORDINATOR, widen.button("30 分钟"), widen))[-1]
    assert "先通知应急先锋队 1 人" in preview.text
    await h.press(COORDINATOR, preview.button("发布"), preview)
    await deliver(h)
    calls = [m for m in h.transport.chats[GRID_WORKER.id] if "防汛值守" in m.text]
    assert calls
    assert calls[-1].text.startswith("🚨 紧急动员：防汛值守")
    assert [label for row in calls[-1].buttons for label, _ in row] == [
        "🙋 报名班次1（0/2）",
        "🙋 报名班次2（0/2）",
        "🙋 报名班次3（0/2）",
    ]
    assert not [m for m in h.transport.chats[VOLUNTEER.id] if "防汛值守" in m.text]


async def test_only_coordinators_and_grid_leaders_post_tasks(town: Harness) -> None:
    h = town
    leader = User(2010, "刘强")
    await h.send(leader, "/start demo-gridleader")
    for user, command in ((VOLUNTEER, "/task"), (RESIDENT, "/emergency"), (leader, "/emergency")):
        refused = (await h.send(user, command))[-1]
        assert refused.text.startswith(f"{command} 不在您的角色可用范围内")
    ask = (await h.send(leader, "/task"))[-1]
    assert ask.text.startswith("任务名称是什么？"), "a grid leader posts tasks in the grid"
    async with h.app.db.transaction() as session:
        assert (await session.execute(select(Task))).first() is None


async def test_a_volunteer_back_after_blocking_the_bot_gets_what_still_matters(
    town: Harness,
) -> None:
    """While the volunteer had blocked the bot, a task call, a cancelled task's call and an
    urgent broadcast were held. When they write again, the open call (with today's counts)
    and the broadcast arrive, the cancelled task's call does not, and the broadcast report
    moves the copy from "blocked" to "sent"."""
    h = town
    async with h.app.db.transaction() as session:
        await session.execute(
            update(Member)
            .where(col(Member.telegram_id) == VOLUNTEER.id)
            .values(blocked_at=h.clock())
        )
        coordinator = await find_member(session, COORDINATOR.id)
        assert coordinator is not None
        organiser = await load_actor(session, coordinator.id)
    seen = len(h.transport.chats[VOLUNTEER.id])
    await post_task(h)
    task_id = await only_task_id(h)
    await h.press(RESIDENT, announcement(h, RESIDENT).button("报名"))
    rules = TaskRules.of(h.app.settings)
    policy = BroadcastPolicy.of(h.app.settings)
    async with h.app.db.transaction() as session:
        other = await tasks.create_task(
            session,
            organiser,
            TaskDraft(
                "搬运物资",
                "社区仓库",
                datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
                datetime(2026, 11, 29, 3, 0, tzinfo=UTC),
                3,
                organiser.grants[0].unit.id,
            ),
            h.clock(),
            rules,
        )
        await tasks.cancel(session, organiser, other.id, h.clock())
        sent = await broadcasts.send(
            session,
            organiser,
            Draft(
                "今晚有寒潮，请检查独居老人",
                audience=Audience(unit_ids=(organiser.grants[0].unit.id,)),
                urgent=True,
                ask_ack=True,
            ),
            h.clock(),
            policy,
        )
    await deliver(h)
    assert len(h.transport.chats[VOLUNTEER.id]) == seen, "nothing reaches a blocked person"
    async with h.app.db.transaction() as session:
        held = await broadcasts.report_of(session, sent.broadcast_id)
    assert held.blocked == 1
    assert held.queued == 0

    h.clock.advance(hours=1)
    await h.send(VOLUNTEER, "/tasks")
    await deliver(h)
    got = [m.text for m in h.transport.chats[VOLUNTEER.id][seen:]]
    assert any(t.startswith("🚨") and "今晚有寒潮" in t for t in got), got
    card = announcement(h, VOLUNTEER)
    assert card.buttons[0][0][0] == "🙋 报名（1/2）", "the call shows today's count"
    assert not any("搬运物资" in t for t in got), "the cancelled task's call is dropped"
    async with h.app.db.transaction() as session:
        after = await broadcasts.report_of(session, sent.broadcast_id)
        expired = (
            (
                await session.execute(
                    select(col(OutboxMessage.error)).where(
                        col(OutboxMessage.status) == OutboxStatus.expired
                    )
                )
            )
            .scalars()
            .all()
        )
        await broadcasts.refresh_reports(session, h.clock(), policy)
    assert (after.sent, after.blocked, after.queued) == (held.sent + 1, 0, 0)
    assert expired == ["held while blocked; the task is over"]
    await deliver(h)
    report = [m for m in h.transport.chats[COORDINATOR.id] if "已屏蔽机器人" in m.text][-1]
    assert f"已发送 {after.sent}" in report.text
    assert "已屏蔽机器人 0" in report.text
    organiser_card = (await h.press(COORDINATOR, f"tk_card:{task_id}"))[-1]
    assert "屏蔽 0" in organiser_card.text


async def test_a_no_show_is_told_and_the_organiser_undoes_it_from_the_list(town: Harness) -> None:
    h = town
    await post_task(h)
    card = announcement(h, VOLUNTEER)
    await h.press(VOLUNTEER, card.button("报名"), card)
    h.clock.advance(days=5, hours=3)  # Saturday 13:00 local: the 09:00–11:00 shift is over
    assert await settle_no_shows(h.app.db, TaskRules.of(h.app.settings), h.clock()) == 1
    await deliver(h)
    told = h.texts(VOLUNTEER)[-1]
    assert told.startswith("你报名了“清理3号楼垃圾”")
    assert "已记为未到" in told
    notice = h.last(COORDINATOR)
    assert "李明 报名后没有签到" in notice.text
    takers = (await h.press(COORDINATOR, notice.button("报名名单")))[-1]
    assert "1. 李明 — 未到" in takers.text
    assert "签到" not in " ".join(label for row in takers.buttons for label, _ in row)
    await h.press(VOLUNTEER, takers.button("撤销未到"))
    assert h.last_toast() == ZH("error.permission"), "only the organiser undoes it"
    await h.press(COORDINATOR, takers.button("撤销未到"), takers)
    assert h.last_toast() == "已撤销 李明 的未到记录，扣分已退回。"
    assert "1. 李明 — 已报名" in takers.text
    await deliver(h)
    assert h.texts(VOLUNTEER)[-1].startswith("组织者撤销了你在“清理3号楼垃圾”的未到记录")


async def test_an_overnight_shift_shows_both_dates_before_it_is_sent(town: Harness) -> None:
    h = town
    await h.send(COORDINATOR, "/task")
    await h.send(COORDINATOR, "夜间巡逻")
    await h.send(COORDINATOR, "2026-11-28 22:00")
    same = (await h.send(COORDINATOR, "22:00"))[-1]
    assert same.text == "结束时间必须晚于开始时间。"
    await h.send(COORDINATOR, "06:00")
    await h.send(COORDINATOR, "社区大门")
    preview = (await h.send(COORDINATOR, "2"))[-1]
    assert "11月28日" in preview.text
    assert "11月29日" in preview.text
    assert "06:00" in preview.text
    await h.press(COORDINATOR, preview.button("发布"), preview)
    async with h.app.db.transaction() as session:
        task = (await session.execute(select(Task))).scalar_one()
    assert task.ends_at - task.starts_at == timedelta(hours=8)
