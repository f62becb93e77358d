"""A person joins their grid through the real aiogram runtime, over HTTP, against the sandbox."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import BotProcess, SandboxClient

pytestmark = pytest.mark.e2e

RESIDENT, VOLUNTEER, COORDINATOR, ALICE = 1001, 1002, 1004, 1005


async def people(sandbox: SandboxClient) -> None:
    await sandbox.user(RESIDENT, "王阿姨")
    await sandbox.user(VOLUNTEER, "李明")
    await sandbox.user(COORDINATOR, "陈静")
    await sandbox.user(ALICE, "Alice", "en")


async def test_join_me_help_per_role_and_language(sandbox: SandboxClient, bot: BotProcess) -> None:
    await people(sandbox)

    greeting = await sandbox.reply_to(RESIDENT, "/start", count=2)
    assert "社区网格助手" in greeting[0]["text"]
    assert "/me" not in greeting[1]["text"], "no member commands before joining"
    assert "/me" not in (await sandbox.reply_to(RESIDENT, "/me"))[0]["text"]

    joined = await sandbox.reply_to(RESIDENT, "/start demo-resident", count=2)
    assert "王阿姨，欢迎您！您已作为「居民」加入 新德1号楼 (B1)" in joined[0]["text"]
    await sandbox.wait_until(RESIDENT, lambda _: True)
    assert await sandbox.commands(RESIDENT) == [
        "start",
        "wish",
        "mywishes",
        "points",
        "store",
        "me",
        "help",
        "language",
        "cancel",
    ]

    await sandbox.reply_to(COORDINATOR, "/start demo-coordinator", count=2)
    assert await sandbox.commands(COORDINATOR) == [
        "start",
        "wish",
        "wishes",
        "mywishes",
        "points",
        "hours",
        "rank",
        "store",
        "me",
        "invite",
        "rules",
        "award",
        "help",
        "language",
        "cancel",
    ]
    coordinator_help = (await sandbox.reply_to(COORDINATOR, "/help"))[0]
    assert "/invite" in coordinator_help["text"]
    resident_help = (await sandbox.reply_to(RESIDENT, "/help"))[0]
    assert "/invite" not in resident_help["text"]

    me = (await sandbox.reply_to(RESIDENT, "/me"))[0]
    assert "居民 · 新德1号楼 (B1)" in me["text"]

    chooser = (await sandbox.reply_to(RESIDENT, "/language"))[0]
    await sandbox.press(RESIDENT, chooser["message_id"], "lang:en")
    edited = await sandbox.wait_until(
        RESIDENT, lambda ms: any(m["text"] == "Language set to English." for m in ms)
    )
    assert next(m for m in edited if m["message_id"] == chooser["message_id"])["edit_count"] == 1
    answers = await sandbox.callback_answers(RESIDENT)
    assert answers[-1]["text"] == "Language set to English."
    assert (
        "Resident · Xinde Building 1 (B1)" in (await sandbox.reply_to(RESIDENT, "/me"))[0]["text"]
    )

    english = await sandbox.reply_to(ALICE, "/start demo-volunteer", count=2)
    assert "You have joined Xinde Grid 1 (G1) as Volunteer." in english[0]["text"]


async def test_forged_button_changes_nothing(sandbox: SandboxClient, bot: BotProcess) -> None:
    await people(sandbox)
    await sandbox.reply_to(RESIDENT, "/start demo-resident", count=2)
    me = (await sandbox.reply_to(RESIDENT, "/me"))[0]
    before = len(await sandbox.bot_messages(RESIDENT))
    await sandbox.press(RESIDENT, me["message_id"], "inv_make:000000:all", forge=True)
    replies = await sandbox.wait_until(RESIDENT, lambda ms: len(ms) >= before + 2)
    assert replies[before]["text"] == "这个按钮已失效。"
    assert "/me" in replies[before + 1]["text"], "followed by a fresh menu"
    answers = await sandbox.callback_answers(RESIDENT)
    assert answers[-1]["text"] == "这个按钮已失效。"
    assert (await sandbox.reply_to(RESIDENT, "/me"))[0]["text"] == me["text"]


async def test_ptb_runtime_runs_the_same_handlers(
    sandbox: SandboxClient, start_bot: BotFactory
) -> None:
    await start_bot(runtime="ptb")
    await people(sandbox)
    joined = await sandbox.reply_to(VOLUNTEER, "/start demo-volunteer", count=2)
    assert "您已作为「志愿者」加入 新德第一网格 (G1)" in joined[0]["text"]
    me = (await sandbox.reply_to(VOLUNTEER, "/me"))[0]
    assert "志愿者 · 新德第一网格 (G1)" in me["text"]
    await sandbox.press(VOLUNTEER, me["message_id"], "profile:phone")
    asked = await sandbox.wait_until(VOLUNTEER, lambda ms: "分享您的手机号" in ms[-1]["text"])
    assert asked[-1]["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    await sandbox.send_contact(VOLUNTEER, "+8613800000002")
    saved = await sandbox.wait_until(VOLUNTEER, lambda ms: "已保存电话" in ms[-1]["text"])
    assert saved[-1]["text"] == "已保存电话 +86****0002。"
