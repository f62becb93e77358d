"""Joining a grid: /start with and without an invite, /me, /help per role, the command menu."""

from __future__ import annotations

from sqlmodel import select

from models.invites import Invite
from models.members import Member
from services.access import Actor
from services.invites import create_invite
from tests.conftest import ALICE, COORDINATOR, GRID_WORKER, RESIDENT, STRANGER
from tests.harness import Harness


def commands_of(harness: Harness, chat_id: int) -> list[str]:
    return [name for name, _ in harness.transport.commands[(chat_id, None)]]


async def test_stranger_is_greeted_and_told_how_to_join(harness: Harness) -> None:
    replies = await harness.send(STRANGER, "/start")
    text = "\n".join(r.text for r in replies)
    assert "社区网格助手" in text
    assert "邀请链接" in text
    assert "/me" not in text


async def test_resident_joins_by_invite_and_gets_the_resident_menu(harness: Harness) -> None:
    replies = await harness.send(RESIDENT, "/start demo-resident")
    assert "王阿姨，欢迎您！您已作为「居民」加入 新德1号楼 (B1)" in replies[0].text
    menu = commands_of(harness, RESIDENT.id)
    assert menu == [
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
    assert "invite" not in menu


async def test_coordinator_menu_and_help_include_invite(harness: Harness) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    assert "invite" in commands_of(harness, COORDINATOR.id)
    help_text = (await harness.send(COORDINATOR, "/help"))[0].text
    assert "/invite" in help_text
    assert "/me" in help_text


async def test_help_lists_exactly_the_callers_commands(harness: Harness) -> None:
    stranger_help = (await harness.send(STRANGER, "/help"))[0]
    assert "/me" not in stranger_help.text
    assert "/invite" not in stranger_help.text
    assert "/language" in stranger_help.text
    await harness.send(RESIDENT, "/start demo-resident")
    resident_help = (await harness.send(RESIDENT, "/help"))[0]
    assert "/me" in resident_help.text
    assert "/invite" not in resident_help.text
    assert "cmd:me" in resident_help.payloads()


async def test_me_shows_name_language_and_every_role(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await harness.send(GRID_WORKER, "/start demo-volunteer")
    text = (await harness.send(GRID_WORKER, "/me"))[0].text
    assert "张伟" in text
    assert "中文" in text
    assert "网格员 · 新德第一网格 (G1)" in text
    assert "志愿者 · 新德第一网格 (G1)" in text
    assert "未提供" in text


async def test_english_speaker_is_answered_in_english(harness: Harness) -> None:
    replies = await harness.send(ALICE, "/start demo-resident")
    assert "Welcome, Alice! You have joined Xinde Building 1 (B1) as Resident." in replies[0].text


async def test_joining_twice_with_the_same_invite_uses_nothing(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-resident")
    replies = await harness.send(RESIDENT, "/start demo-resident")
    assert "您已经是 新德1号楼 (B1) 的「居民」了" in replies[0].text
    async with harness.app.db.transaction() as session:
        invite = (
            await session.execute(select(Invite).where(Invite.token == "demo-resident"))
        ).scalar_one()
        assert invite.uses == 1


async def test_unknown_expired_used_up_and_revoked_invites_say_which(harness: Harness) -> None:
    now = harness.app.clock()
    async with harness.app.db.transaction() as session:
        await create_invite(
            session,
            Actor.cli(),
            role="resident",
            unit_code="G1",
            now=now,
            expires_days=1,
            token="soon-expired",
        )
        await create_invite(
            session,
            Actor.cli(),
            role="resident",
            unit_code="G1",
            now=now,
            max_uses=1,
            token="single-use",
        )
        revoked = await create_invite(
            session, Actor.cli(), role="resident", unit_code="G1", now=now, token="revoked-one"
        )
        invite = await session.get(Invite, revoked.id)
        assert invite is not None
        invite.revoked_at = now

    assert "无效" in (await harness.send(STRANGER, "/start nonsense"))[0].text
    await harness.send(RESIDENT, "/start single-use")
    assert "使用次数已满" in (await harness.send(STRANGER, "/start single-use"))[0].text
    assert "已被撤销" in (await harness.send(STRANGER, "/start revoked-one"))[0].text
    harness.clock.advance(days=2)
    assert "已过期" in (await harness.send(STRANGER, "/start soon-expired"))[0].text

    async with harness.app.db.transaction() as session:
        stranger = (
            await session.execute(select(Member).where(Member.telegram_id == STRANGER.id))
        ).scalar_one_or_none()
    assert stranger is None, "a refused join must not leave a member behind"


async def test_member_command_before_joining_explains_how_to_join(harness: Harness) -> None:
    replies = await harness.send(STRANGER, "/me")
    assert "您还没有加入网格" in replies[0].text


async def test_resident_typing_invite_is_told_it_is_not_for_them(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-resident")
    replies = await harness.send(RESIDENT, "/invite")
    assert "/invite 不在您的角色可用范围内" in replies[0].text


async def test_invite_expiry_is_exact(harness: Harness) -> None:
    now = harness.app.clock()
    async with harness.app.db.transaction() as session:
        await create_invite(
            session,
            Actor.cli(),
            role="resident",
            unit_code="G1",
            now=now,
            expires_days=1,
            token="day-one",
        )
    harness.clock.advance(days=1, seconds=-1)
    assert "欢迎您" in (await harness.send(RESIDENT, "/start day-one"))[0].text
    harness.clock.advance(seconds=1)
    assert "已过期" in (await harness.send(GRID_WORKER, "/start day-one"))[0].text
