"""The whole closed loop through the real aiogram runtime against the sandbox: a resident
reports with a photo and a location; a grid worker accepts; the coordinator assigns; the
worker resolves with a photo; the resident is unsatisfied, it reopens; resolved again, rated,
closed. Both the reporter's and the handlers' chats are checked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.sandbox_client import BotProcess, SandboxClient

pytestmark = pytest.mark.e2e

RESIDENT, WORKER, COORDINATOR = 1301, 1303, 1304

Messages = list[dict[str, Any]]


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text") or message.get("caption") or "")


def button(message: dict[str, Any], label: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label in key["text"] and "callback_data" in key:
                return str(key["callback_data"])
    raise AssertionError(f"no button {label!r} on {text_of(message)!r}")


def has(part: str, times: int = 1) -> Any:
    def check(messages: Messages) -> bool:
        return sum(part in text_of(m) for m in messages) >= times

    return check


def last_with(messages: Messages, part: str) -> dict[str, Any]:
    return next(m for m in reversed(messages) if part in text_of(m))


async def press(sandbox: SandboxClient, user: int, message: dict[str, Any], label: str) -> None:
    await sandbox.press(user, message["message_id"], button(message, label))


async def test_report_accept_assign_resolve_reopen_resolve_rate_close(
    sandbox: SandboxClient, bot: BotProcess
) -> None:
    await sandbox.user(RESIDENT, "王阿姨")
    await sandbox.user(WORKER, "张伟")
    await sandbox.user(COORDINATOR, "陈静")
    await sandbox.reply_to(RESIDENT, "/start demo-resident", count=2)
    await sandbox.reply_to(WORKER, "/start demo-gridworker", count=2)
    await sandbox.reply_to(COORDINATOR, "/start demo-coordinator", count=2)

    # The resident reports: category, description, a photo, a location, submit.
    question = (await sandbox.reply_to(RESIDENT, "/report"))[0]
    await press(sandbox, RESIDENT, question, "停车管理")
    await sandbox.wait_until(RESIDENT, has("请描述问题"))
    asked = (await sandbox.reply_to(RESIDENT, "楼下消防通道被车堵住了"))[0]
    assert "可以发送问题的照片" in asked["text"]
    await sandbox.send_photo(RESIDENT)
    received = last_with(await sandbox.wait_until(RESIDENT, has("已收到第 1 张照片")), "已收到")
    await press(sandbox, RESIDENT, received, "完成")
    where = last_with(await sandbox.wait_until(RESIDENT, has("问题在哪里")), "问题在哪里")
    assert where["reply_markup"]["keyboard"][0][0]["request_location"] is True
    await sandbox.send_location(RESIDENT, 31.2301, 121.4731)
    confirm = last_with(await sandbox.wait_until(RESIDENT, has("请确认您的上报")), "请确认")
    assert "位置：已发送" in confirm["text"]
    assert "📷 1 张照片" in confirm["text"]
    await press(sandbox, RESIDENT, confirm, "提交")
    await sandbox.wait_until(RESIDENT, has("✅ 已提交，编号 C1-2026-0001"))

    # The grid worker is told at once and accepts from the notification.
    note = last_with(await sandbox.wait_until(WORKER, has("新的问题上报")), "新的问题上报")
    assert "楼下消防通道被车堵住了" in note["text"]
    await press(sandbox, WORKER, note, "受理")
    await sandbox.wait_until(WORKER, has("状态：已受理（网格级）"))
    await sandbox.wait_until(RESIDENT, has("C1-2026-0001 已受理（新德第一网格）"))

    # The coordinator looks it up and assigns it to the grid worker.
    card = (await sandbox.reply_to(COORDINATOR, "/issue C1-2026-0001", count=2))[0]
    assert "上报人：王阿姨" in card["text"]
    await press(sandbox, COORDINATOR, card, "指派")
    chooser = last_with(await sandbox.wait_until(COORDINATOR, has("指派给谁")), "指派给谁")
    await press(sandbox, COORDINATOR, chooser, "张伟")
    await sandbox.wait_until(RESIDENT, has("已交由新德第一网格 网格员处理"))

    # The grid worker resolves with a photo and a note.
    task = last_with(await sandbox.wait_until(WORKER, has("您被指派处理")), "您被指派处理")
    await press(sandbox, WORKER, task, "办结")
    await sandbox.wait_until(WORKER, has("请写 C1-2026-0001 的处理说明"))
    await sandbox.send_photo(WORKER, caption="已联系车主挪车")
    await sandbox.wait_until(WORKER, has("C1-2026-0001 已办结，已请上报人评价"))

    # The resident gets the photo and the note, and is not satisfied.
    answer = last_with(
        await sandbox.wait_until(RESIDENT, has("处理说明：已联系车主挪车")), "处理说明"
    )
    assert answer["photo"], "the handler's photo comes with the answer"
    await press(sandbox, RESIDENT, answer, "不满意")
    await sandbox.wait_until(RESIDENT, has("C1-2026-0001 已重新办理"))
    await sandbox.wait_until(COORDINATOR, has("不满意"))
    reopened = last_with(await sandbox.wait_until(WORKER, has("不满意")), "不满意")

    # Resolved again (without a photo this time), rated, closed.
    await press(sandbox, WORKER, reopened, "查看")
    card = last_with(await sandbox.wait_until(WORKER, has("状态：重新办理")), "状态：重新办理")
    await press(sandbox, WORKER, card, "办结")
    await sandbox.wait_until(WORKER, has("请写 C1-2026-0001 的处理说明", times=2))
    photo_question = (await sandbox.reply_to(WORKER, "已安装隔离桩，车位已划线"))[0]
    await press(sandbox, WORKER, photo_question, "不附照片")
    await sandbox.wait_until(WORKER, has("已办结，已请上报人评价", times=2))
    second = last_with(await sandbox.wait_until(RESIDENT, has("已安装隔离桩")), "已安装隔离桩")
    await press(sandbox, RESIDENT, second, "满意")
    await sandbox.wait_until(RESIDENT, has("感谢您的评价（满意）！C1-2026-0001 已结案"))
    await sandbox.wait_until(WORKER, has("居民评价：满意"))

    resident_chat = "\n".join(text_of(m) for m in await sandbox.bot_messages(RESIDENT))
    assert "张伟" not in resident_chat, "the reporter never sees the handler's name"
    timeline = (await sandbox.reply_to(COORDINATOR, "/issue C1-2026-0001", count=2))[1]
    steps = [line.split(" ", 2)[2] for line in timeline["text"].splitlines()[1:] if "月" in line]
    assert [s.split(" · ")[0] for s in steps] == [
        "上报",
        "受理",
        "指派",
        "办结",
        "评价：不满意",
        "重新办理",
        "办结",
        "评价：满意",
        "结案",
    ]
