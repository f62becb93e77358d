"""Broadcasts in the chat, through the real App: a coordinator writes, picks the audience with
buttons, previews, confirms; members receive once and acknowledge; the report is edited in
place; bad input gets clear answers and sends nothing; /reserve joins and leaves."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.db import Database
from jobs.broadcasts import broadcast_reminders, refresh_broadcast_reports
from models.broadcasts import Broadcast
from services.broadcasts import BroadcastPolicy
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER, VOLUNTEER
from tests.fakes import SentMessage
from tests.harness import Harness, User

GRID_LEADER = User(2010, "刘强")


@pytest.fixture
async def town(harness: Harness) -> Harness:
    """The coordinator of C1, the grid leader of G1, a resident of B1, a volunteer and a grid
    worker of G1; and a stranger who lives in C2."""
    harness.app.courier.per_chat_interval = 0
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await harness.send(GRID_LEADER, "/start demo-gridleader")
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


async def count(db: Database, model: type) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def labels(message: SentMessage) -> list[str]:
    return [label for row in message.buttons for label, _ in row]


async def start(
    h: Harness, text: str = "周六上午九点，3号楼门口集合打扫卫生。", who: User = COORDINATOR
) -> SentMessage:
    ask = await h.send(who, "/broadcast")
    assert ask[-1].text.startswith("📣 要发送什么内容？")
    return (await h.send(who, text))[-1]


async def test_coordinator_broadcasts_to_a_grid_and_sees_the_report_update(town: Harness) -> None:
    h = town
    picker = await start(h)
    assert picker.text.startswith("发给谁？")
    assert picker.text.endswith("尚未选择接收对象。")
    assert labels(picker)[:3] == ["▫️ 新德社区 (C1)", "▫️ 新德第一网格 (G1)", "▫️ 新德第二网格 (G2)"]
    assert "▫️ 应急预备队" in labels(picker)
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    assert picker.text.endswith("接收对象：新德第一网格——共 4 人。")
    await h.press(COORDINATOR, picker.button("(C1)"), picker)
    assert picker.text.endswith("接收对象：新德第一网格 · 新德社区——共 5 人。"), (
        "the coordinator of C1 is in C1; the G1 people are counted once"
    )
    await h.press(COORDINATOR, picker.button("新德社区"), picker)
    assert "▫️ 新德社区 (C1)" in labels(picker), "tapping again removes it"
    replies = await h.press(COORDINATOR, picker.button("下一步"), picker)
    assert picker.text == "接收对象：新德第一网格——共 4 人。"
    preview, options = replies[-2], replies[-1]
    assert preview.text.startswith("📣 来自 陈静 的消息：\n\n周六上午九点")
    assert options.text.startswith("发给 新德第一网格：共 4 人？")
    await h.press(COORDINATOR, options.button("请求确认已读"), options)
    assert "✅ 请求确认已读" in labels(options)
    assert await count(h.app.db, Broadcast) == 0, "nothing before the confirmation"

    await h.press(COORDINATOR, options.button("发送"), options)
    assert options.text.startswith("✅ 群发 #1 正在发送给 4 人。")
    await deliver(h)
    got = h.last(RESIDENT)
    assert got.text.startswith("📣 来自 陈静 的消息：")
    assert labels(got) == ["✅ 我已阅读"]
    assert [m.text for m in h.transport.chats[VOLUNTEER.id]].count(got.text) == 1
    assert h.last(GRID_WORKER).text == got.text
    assert all("周六上午九点" not in t for t in h.texts(STRANGER)), "C2 is not addressed"
    report = h.last(COORDINATOR)
    assert report.text.startswith("📊 群发 #1")

    await h.press(RESIDENT, got.button("我已阅读"), got)
    assert h.last_toast() == "谢谢，已记录您的确认。"
    await h.press(RESIDENT, got.button("我已阅读"), got)
    assert h.last_toast() == "您之前已确认过。"

    policy = BroadcastPolicy.of(h.app.settings)
    h.clock.advance(seconds=10)
    await refresh_broadcast_reports(h.app.db, policy, h.clock())
    await deliver(h)
    assert report.edits >= 1, "the same message is edited, not a new one sent"
    assert "已发送 4" in report.text
    assert "已确认 1" in report.text
    assert "发送完毕" in report.text

    listing = await h.send(COORDINATOR, "/broadcasts")
    assert listing[-1].text.startswith("📊 群发 #1")
    assert "已确认 1" in listing[-1].text


async def test_urgent_with_ack_reminds_those_who_did_not_answer(town: Harness) -> None:
    h = town
    picker = await start(h, "停水通知：今晚八点起停水")
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    await h.press(COORDINATOR, options.button("请求确认已读"), options)
    await h.press(COORDINATOR, options.button("紧急"), options)
    await h.press(COORDINATOR, options.button("发送"), options)
    await deliver(h)
    assert h.last(RESIDENT).text.startswith("🚨 紧急——来自 陈静：")
    await h.press(RESIDENT, h.last(RESIDENT).button("我已阅读"), h.last(RESIDENT))
    policy = BroadcastPolicy.of(h.app.settings)
    h.clock.advance(minutes=31)
    assert await broadcast_reminders(h.app.db, policy, h.clock()) == 3
    await deliver(h)
    assert h.last(VOLUNTEER).text.startswith("🔔 第 1/3 次提醒")
    assert not h.last(RESIDENT).text.startswith("🔔"), "the resident acknowledged"


async def test_grid_leader_broadcasts_within_the_grid_only(town: Harness) -> None:
    h = town
    picker = await start(h, who=GRID_LEADER)
    assert labels(picker)[0] == "▫️ 新德第一网格 (G1)"
    assert "(C1)" not in " ".join(labels(picker))
    refused = await h.send(GRID_LEADER, "G2")
    assert refused[-1].text == "单位 G2 不在您的管辖范围内：您只能向自己负责的单位发送。"
    g2_payload = picker.button("(G1)").rsplit(":", 1)[0] + ":" + str(await unit_id(h, "G2"))
    forged = await h.press(GRID_LEADER, g2_payload, picker)
    assert forged[-1].text == "单位 G2 不在您的管辖范围内：您只能向自己负责的单位发送。"
    typed = await h.send(GRID_LEADER, "G1")
    assert typed[-1].text.endswith("接收对象：新德第一网格——共 4 人。")


async def unit_id(h: Harness, code: str) -> int:
    from services.org import unit_by_code

    async with h.app.db.transaction() as session:
        return (await unit_by_code(session, code)).id


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("x" * 4001, "文字共 4001 字；群发最多 4000 字。请缩短后重新发送。"),
        ("x" * 5000, "消息太长了"),
    ],
)
async def test_over_long_text_is_refused_and_asked_again(
    town: Harness, text: str, answer: str
) -> None:
    h = town
    await h.send(COORDINATOR, "/broadcast")
    replies = await h.send(COORDINATOR, text)
    assert answer in replies[-1].text
    picker = await h.send(COORDINATOR, "短一点的通知")
    assert picker[-1].text.startswith("发给谁？"), "the flow goes on with a shorter text"


async def test_photo_with_a_long_caption_is_refused(town: Harness) -> None:
    h = town
    await h.send(COORDINATOR, "/broadcast")
    photo = [{"file_id": "AgAD-photo", "file_unique_id": "u1", "width": 90, "height": 90}]
    refused = await h.send_kind(COORDINATOR, photo=photo, caption="图" * 961)
    assert refused[-1].text.startswith("照片说明共 961 字；照片下最多 960 字。")
    picker = await h.send_kind(COORDINATOR, photo=photo, caption="活动照片")
    assert picker[-1].text.startswith("发给谁？")


async def test_empty_or_unreachable_audience_is_explained(town: Harness) -> None:
    h = town
    picker = await start(h)
    nothing = await h.press(COORDINATOR, picker.button("下一步"), picker)
    assert nothing[-1].text.startswith("请选择接收对象")
    await h.press(COORDINATOR, picker.button("法律"), picker)
    assert picker.text.endswith("——共 0 人。")
    nobody = await h.press(COORDINATOR, picker.button("下一步"), picker)
    assert nobody[-1].text == "该范围内没有任何人。请多选单位或减少筛选条件。"
    unknown = await h.send(COORDINATOR, "ZZ9")
    assert "ZZ9" in unknown[-1].text
    assert await count(h.app.db, Broadcast) == 0


async def test_confirm_twice_or_after_cancel_sends_once(town: Harness) -> None:
    h = town
    picker = await start(h)
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    send = options.button("发送")
    await h.press(COORDINATOR, send, options)
    again = await h.press(COORDINATOR, send, options)
    assert again[0].text == "这个按钮已失效。"
    assert await count(h.app.db, Broadcast) == 1
    picker = await start(h)
    await h.press(COORDINATOR, picker.button("取消"), picker)
    assert picker.text == "已取消，未发送任何内容。"
    assert await count(h.app.db, Broadcast) == 1


async def test_residents_and_volunteers_cannot_broadcast(town: Harness) -> None:
    for user in (RESIDENT, VOLUNTEER):
        replies = await town.send(user, "/broadcast")
        assert "/broadcast" in replies[-1].text
        assert not replies[-1].text.startswith("📣")
    assert await count(town.app.db, Broadcast) == 0


async def test_quiet_hours_hold_a_normal_broadcast_until_morning(town: Harness) -> None:
    h = town
    h.clock.advance(hours=12)  # 22:00 in Shanghai
    picker = await start(h, "明早的通知")
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    assert "🌙 现在是免打扰时段：非紧急消息将于 08:00 发出。" in options.text
    await h.press(COORDINATOR, options.button("发送"), options)
    assert "将于 08:00 发出" in options.text
    await deliver(h)
    assert not h.last(RESIDENT).text.startswith("📣"), "not at night"
    h.clock.advance(hours=10)
    await deliver(h)
    assert h.last(RESIDENT).text.startswith("📣 来自 陈静 的消息：")


async def test_a_member_joins_and_leaves_the_reserve(town: Harness) -> None:
    h = town
    offer = (await h.send(RESIDENT, "/reserve"))[-1]
    assert offer.text.startswith("🆘 应急预备队")
    await h.press(RESIDENT, offer.button("加入预备队"), offer)
    assert offer.text.startswith("✅ 您已加入应急预备队")
    status = (await h.send(RESIDENT, "/reserve"))[-1]
    assert status.text.startswith("🆘 您已加入应急预备队")
    picker = await start(h, "紧急召集")
    await h.press(COORDINATOR, picker.button("应急预备队"), picker)
    assert picker.text.endswith("接收对象：我负责的全部范围 · 应急预备队——共 1 人。")
    await h.press(RESIDENT, status.button("退出预备队"), status)
    assert status.text.startswith("您已退出应急预备队")
    assert (await h.send(STRANGER, "/reserve"))[-1].text.startswith("🆘 应急预备队")


async def test_a_member_who_blocked_the_bot_receives_again_after_returning(
    town: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.transport import Blocked
    from services.messages import Text

    h = town
    send_text = h.transport.send_text

    async def volunteer_blocked(chat_id: int, message: Text) -> int:
        if chat_id == VOLUNTEER.id:
            raise Blocked("Forbidden: bot was blocked by the user")
        return await send_text(chat_id, message)

    monkeypatch.setattr(h.transport, "send_text", volunteer_blocked)
    picker = await start(h, "第一条")
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    await h.press(COORDINATOR, options.button("发送"), options)
    await deliver(h)
    h.clock.advance(seconds=10)
    await refresh_broadcast_reports(h.app.db, BroadcastPolicy.of(h.app.settings), h.clock())
    await deliver(h)
    report = h.last(COORDINATOR)
    assert "已发送 3 · 失败 0 · 已屏蔽机器人 1" in report.text
    assert not any(t.endswith("第一条") for t in h.texts(VOLUNTEER))

    monkeypatch.setattr(h.transport, "send_text", send_text)
    await h.send(VOLUNTEER, "/start")
    picker = await start(h, "第二条")
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    await h.press(COORDINATOR, options.button("发送"), options)
    await deliver(h)
    assert h.last(VOLUNTEER).text.endswith("第二条"), "after writing again they receive again"


async def test_a_photo_telegram_rejects_is_counted_failed_with_the_reason(town: Harness) -> None:
    from jobs.transport import BadRequest

    h = town
    await h.send(COORDINATOR, "/broadcast")
    photo = [{"file_id": "AgAD-photo", "file_unique_id": "u1", "width": 90, "height": 90}]
    picker = (await h.send_kind(COORDINATOR, photo=photo, caption="活动照片"))[-1]
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    rejected = BadRequest("Bad Request: wrong file identifier/HTTP URL specified")
    h.transport.fail_next("send_photo", *([rejected] * 4))
    await h.press(COORDINATOR, options.button("发送"), options)
    await deliver(h)
    h.clock.advance(seconds=10)
    await refresh_broadcast_reports(h.app.db, BroadcastPolicy.of(h.app.settings), h.clock())
    await deliver(h)
    report = h.last(COORDINATOR)
    assert "已发送 0 · 失败 4" in report.text
    assert "⚠️ 4 条失败：Bad Request: wrong file identifier" in report.text
    assert "发送完毕" in report.text


async def test_files_that_cannot_go_out_as_a_photo_are_refused_before_anything_else(
    town: Harness,
) -> None:
    h = town
    await h.send(COORDINATOR, "/broadcast")
    pdf = {"file_id": "BQAD-pdf", "file_unique_id": "d1", "mime_type": "application/pdf"}
    refused = (await h.send_kind(COORDINATOR, document=pdf, caption="通知"))[-1]
    assert refused.text.startswith("这个文件不是图片")
    big = {
        "file_id": "BQAD-big",
        "file_unique_id": "d2",
        "mime_type": "image/jpeg",
        "file_size": 12 * 1024 * 1024,
    }
    refused = (await h.send_kind(COORDINATOR, document=big))[-1]
    assert refused.text.startswith("这张图片有 12.0 MB，超过了 Telegram 照片 10.0 MB 的上限")
    small = big | {"file_size": 200_000}
    refused = (await h.send_kind(COORDINATOR, document=small))[-1]
    assert "以“照片”方式发送" in refused.text
    photo = [{"file_id": "AgAD-photo", "file_unique_id": "u1", "width": 90, "height": 90}]
    picker = (await h.send_kind(COORDINATOR, photo=photo, caption="活动照片"))[-1]
    assert "(G1)" in " ".join(labels(picker)), "a photo is taken and the audience asked"


async def test_a_photo_refused_in_the_preview_cannot_be_sent(town: Harness) -> None:
    from jobs.transport import BadRequest

    h = town
    await h.send(COORDINATOR, "/broadcast")
    photo = [{"file_id": "AgAD-bad", "file_unique_id": "u9", "width": 90, "height": 90}]
    picker = (await h.send_kind(COORDINATOR, photo=photo, caption="活动照片"))[-1]
    await h.press(COORDINATOR, picker.button("(G1)"), picker)
    h.transport.fail_next("send_photo", BadRequest("Bad Request: wrong file identifier"))
    options = (await h.press(COORDINATOR, picker.button("下一步"), picker))[-1]
    await h.press(COORDINATOR, options.button("发送"), options)
    refusal = h.last(COORDINATOR).text
    assert refusal.startswith("Telegram 拒收了这张照片的预览（Bad Request: wrong file identifier）")
    assert await count(h.app.db, Broadcast) == 0, "nothing was sent"
    await h.press(COORDINATOR, options.button("取消"), options)
    assert await count(h.app.db, Broadcast) == 0
