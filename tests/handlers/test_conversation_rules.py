"""Bad input gets a clear answer and changes nothing: stale and forged buttons, wrong kinds of
message in a step, unknown commands, crashes, duplicates and group chats."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import func, select

from bot.app import App
from handlers import ROUTERS
from handlers.context import Context
from handlers.router import ANYONE, Registry, Router
from models.conversations import ProcessedUpdate
from models.invites import Invite
from models.members import Member
from tests.conftest import ALICE, RESIDENT, STRANGER
from tests.harness import Harness


async def joined(harness: Harness) -> Harness:
    await harness.send(RESIDENT, "/start demo-resident")
    return harness


async def member(harness: Harness, telegram_id: int) -> Member:
    async with harness.app.db.transaction() as session:
        return (
            await session.execute(select(Member).where(Member.telegram_id == telegram_id))
        ).scalar_one()


async def test_unknown_command_points_to_help(harness: Harness) -> None:
    replies = await harness.send(RESIDENT, "/frobnicate now")
    assert replies[0].text == "我不认识命令 /frobnicate。发送 /help 查看您可以使用的命令。"


async def test_plain_text_without_a_question_points_to_help(harness: Harness) -> None:
    await joined(harness)
    assert "我没看懂" in (await harness.send(RESIDENT, "hello?"))[0].text


async def test_whitespace_message_is_called_empty(harness: Harness) -> None:
    assert (await harness.send(RESIDENT, "   "))[0].text == "消息是空的。"


async def test_sticker_and_file_are_explained(harness: Harness) -> None:
    await joined(harness)
    sticker = await harness.send_kind(
        RESIDENT,
        sticker={
            "file_id": "s1",
            "file_unique_id": "u1",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        },
    )
    assert "贴纸" in sticker[0].text
    document = await harness.send_kind(RESIDENT, document={"file_id": "d1", "file_unique_id": "u2"})
    assert "这里不需要文件" in document[0].text


async def test_forged_button_is_refused_politely_with_a_fresh_menu(harness: Harness) -> None:
    await joined(harness)
    replies = await harness.press(RESIDENT, "evil:payload:1")
    assert harness.last_toast() == "这个按钮已失效。"
    assert replies[0].text == "这个按钮已失效。"
    assert "/me" in replies[1].text, "a fresh menu follows"


async def test_forged_language_code_changes_nothing(harness: Harness) -> None:
    await joined(harness)
    await harness.press(RESIDENT, "lang:xx")
    assert (await member(harness, RESIDENT.id)).locale == "zh_CN"
    assert harness.last_toast() == "这个按钮已失效。"


async def test_language_switch_edits_in_place_and_changes_menu_and_replies(
    harness: Harness,
) -> None:
    await joined(harness)
    chooser = (await harness.send(RESIDENT, "/language"))[0]
    await harness.press(RESIDENT, chooser.button("English"), chooser)
    assert chooser.text == "Language set to English.", "the chooser is edited in place"
    assert chooser.edits == 1
    menu = dict(harness.transport.commands[(RESIDENT.id, None)])
    assert menu["me"] == "My profile and roles"
    assert "Name: 王阿姨" in (await harness.send(RESIDENT, "/me"))[0].text


async def test_stranger_can_choose_english_before_joining(harness: Harness) -> None:
    chooser = (await harness.send(STRANGER, "/language"))[0]
    await harness.press(STRANGER, chooser.button("English"), chooser)
    assert "Hello!" in (await harness.send(STRANGER, "/start"))[0].text


async def test_step_asks_again_when_it_gets_the_wrong_kind_of_message(harness: Harness) -> None:
    await joined(harness)
    profile = (await harness.send(RESIDENT, "/me"))[0]
    ask = await harness.press(RESIDENT, profile.button("提供电话"), profile)
    assert ask[0].request == [[("📱 分享我的手机号", "contact")]]
    replies = await harness.send_kind(RESIDENT, location={"latitude": 31.0, "longitude": 121.0})
    assert replies[0].text == "这一步不需要位置。"
    assert replies[1].request == [[("📱 分享我的手机号", "contact")]], "the question again"
    saved = await harness.send_kind(
        RESIDENT,
        contact={"phone_number": "+86 138 0013 8000", "first_name": "王", "user_id": RESIDENT.id},
    )
    assert saved[0].text == "已保存电话 +86****8000。"
    assert saved[0].remove_keyboard
    assert (await member(harness, RESIDENT.id)).phone == "+8613800138000"


async def test_someone_elses_contact_is_refused(harness: Harness) -> None:
    await joined(harness)
    profile = (await harness.send(RESIDENT, "/me"))[0]
    await harness.press(RESIDENT, profile.button("提供电话"), profile)
    replies = await harness.send_kind(
        RESIDENT, contact={"phone_number": "13900000000", "first_name": "X", "user_id": 777}
    )
    assert replies[0].text == "请分享您自己的联系方式，而不是别人的。"
    assert (await member(harness, RESIDENT.id)).phone is None
    typed = await harness.send(RESIDENT, "13900001111")
    assert "已保存电话" in typed[0].text, "still in the step: a typed number works"


async def test_bad_phone_is_refused_and_the_step_stays(harness: Harness) -> None:
    await joined(harness)
    profile = (await harness.send(RESIDENT, "/me"))[0]
    await harness.press(RESIDENT, profile.button("提供电话"), profile)
    assert "不像是一个电话号码" in (await harness.send(RESIDENT, "call me"))[0].text
    assert (await member(harness, RESIDENT.id)).phone is None


async def test_name_over_the_limit_is_refused_and_nothing_changes(harness: Harness) -> None:
    await joined(harness)
    profile = (await harness.send(RESIDENT, "/me"))[0]
    await harness.press(RESIDENT, profile.button("修改姓名"), profile)
    replies = await harness.send(RESIDENT, "长" * 65)
    assert replies[0].text == "姓名太长了，最多 64 个字，请重新发送。"
    assert (await member(harness, RESIDENT.id)).display_name == "王阿姨"
    ok = await harness.send(RESIDENT, "王秀英")
    assert ok[0].text == "好的，以后称呼您为「王秀英」。"


async def test_cancel_ends_the_step(harness: Harness) -> None:
    await joined(harness)
    profile = (await harness.send(RESIDENT, "/me"))[0]
    await harness.press(RESIDENT, profile.button("修改姓名"), profile)
    assert (await harness.send(RESIDENT, "/cancel"))[0].text == "已取消。"
    assert "我没看懂" in (await harness.send(RESIDENT, "王秀英"))[0].text
    assert (await member(harness, RESIDENT.id)).display_name == "王阿姨"
    assert (await harness.send(RESIDENT, "/cancel"))[0].text == "当前没有进行中的操作。"


async def test_a_button_from_a_finished_flow_is_stale(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-coordinator")
    chooser = (await harness.send(RESIDENT, "/invite"))[0]
    role_button = chooser.button("居民")
    await harness.send(RESIDENT, "/cancel")
    await harness.press(RESIDENT, role_button, chooser)
    assert harness.last_toast() == "这个按钮已失效。"


async def test_same_update_twice_is_processed_once(harness: Harness) -> None:
    update = {
        "update_id": 555,
        "message": {
            "message_id": 1,
            "date": 0,
            "from": RESIDENT.json(),
            "chat": {"id": RESIDENT.id, "type": "private"},
            "text": "/start demo-resident",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    first = await harness.update(dict(update))
    second = await harness.update(dict(update))
    assert first is not None
    assert not first.duplicate
    assert second is not None
    assert second.duplicate
    assert sum("欢迎您" in t for t in harness.texts(RESIDENT)) == 1
    async with harness.app.db.transaction() as session:
        invite = (
            await session.execute(select(Invite).where(Invite.token == "demo-resident"))
        ).scalar_one()
    assert invite.uses == 1


async def test_group_chat_commands_are_redirected_to_private_chat(harness: Harness) -> None:
    await harness.update(
        {
            "message": {
                "message_id": 1,
                "date": 0,
                "from": RESIDENT.json(),
                "chat": {"id": -100123, "type": "supergroup", "title": "楼栋群"},
                "text": "/me",
                "entities": [{"type": "bot_command", "offset": 0, "length": 3}],
            }
        }
    )
    assert harness.transport.chats[-100123][0].text == "请在与我的私聊中使用命令。"


@pytest.fixture
def crashing_app(harness: Harness) -> Harness:
    boom = Router("boom")

    @boom.command("boom", description="cmd.help", roles=ANYONE)
    async def explode(ctx: Context) -> None:
        ctx.session.add(Member(telegram_id=999999, chat_id=999999, display_name="x", locale="en"))
        await ctx.session.flush()
        raise RuntimeError("kaboom")

    app = harness.app
    harness.app = App(
        app.settings,
        app.db,
        app.transport,
        app.bot,
        clock=app.clock,
        registry=Registry((*ROUTERS, boom)),
    )
    return harness


async def test_a_crash_apologises_logs_once_and_keeps_nothing(
    crashing_app: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        replies = await crashing_app.send(ALICE, "/boom")
    assert replies[0].text.startswith("Sorry, something went wrong")
    assert "Traceback" not in replies[0].text
    assert "kaboom" not in replies[0].text
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert "update" in failures[0].getMessage()
    async with crashing_app.app.db.transaction() as session:
        ghosts = (
            await session.execute(
                select(func.count()).select_from(Member).where(Member.telegram_id == 999999)
            )
        ).scalar_one()
        handled = (
            await session.execute(select(func.count()).select_from(ProcessedUpdate))
        ).scalar_one()
    assert ghosts == 0
    assert handled == 1, "the update is marked done, so it is not retried forever"
