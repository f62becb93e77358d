"""Broadcasts through the real bot process and the sandbox Bot API: thousands of recipients
with injected 429s, 403s and network errors, and a kill in the middle of a broadcast. Every
recipient gets exactly one copy; the sender's report counts every outcome.

The sandbox and the bot run faster than Telegram's 30/s here to keep the suite quick; the
benchmark (bench/broadcast_delivery.py) runs at 30/s against enforced limits."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.db import Database
from models.members import Role
from models.outbox import OutboxMessage, OutboxStatus
from services import broadcasts
from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import SandboxClient
from tests.services.broadcast_fixtures import People, unit_ids

pytestmark = pytest.mark.e2e

COORDINATOR = 1301
FIRST_MEMBER = 700_000
DAYTIME = {"GRIDBOT_BROADCAST_QUIET_HOURS": "08:00-08:00"}
"""No quiet hours: the bot runs on the wall clock, and a non-urgent broadcast confirmed in the
evening would otherwise wait for the morning (quiet hours have their own tests)."""
FAST = {
    "GRIDBOT_SEND_RATE_PER_SECOND": "1000",
    "GRIDBOT_BROADCAST_REPORT_SECONDS": "1",
    **DAYTIME,
}


def button(message: dict[str, Any], label_part: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label_part in key["text"] and key.get("callback_data"):
                return str(key["callback_data"])
    raise AssertionError(f"no button {label_part!r} in {message.get('reply_markup')}")


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text") or message.get("caption") or "")


async def members_in_g1(db: Database, sandbox: SandboxClient, count: int) -> list[int]:
    """``count`` volunteers of G1, in the database and as sandbox users."""
    people = People(db, await unit_ids(db))
    await people.add_many(count, Role.volunteer, "G1", first_telegram_id=FIRST_MEMBER)
    users = list(range(FIRST_MEMBER, FIRST_MEMBER + count))
    for start in range(0, count, 100):
        await asyncio.gather(*(sandbox.user(u, f"M{u}") for u in users[start : start + 100]))
    return users


async def broadcast_to_g1(
    sandbox: SandboxClient,
    text: str,
    *,
    ack: bool = False,
    before_send: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The coordinator writes, picks G1, previews and confirms, in the chat."""
    asked = await sandbox.reply_to(COORDINATOR, "/broadcast")
    assert "要发送什么内容" in text_of(asked[-1])
    picker = (await sandbox.reply_to(COORDINATOR, text))[-1]
    await sandbox.press(COORDINATOR, picker["message_id"], button(picker, "(G1)"))
    before = len(await sandbox.bot_messages(COORDINATOR))
    await sandbox.wait_until(
        COORDINATOR,
        lambda ms: any("新德第一网格——共" in text_of(m) for m in ms),
    )
    await sandbox.press(COORDINATOR, picker["message_id"], button(picker, "下一步"))
    found = await sandbox.wait_until(COORDINATOR, lambda ms: len(ms) >= before + 2)
    options = found[-1]
    assert "发给 新德第一网格" in text_of(options)
    if ack:
        await sandbox.press(COORDINATOR, options["message_id"], button(options, "请求确认已读"))
        await sandbox.wait_until(
            COORDINATOR,
            lambda ms: any("✅ 请求确认已读" in str(m.get("reply_markup")) for m in ms),
        )
    if before_send is not None:
        await before_send()
    await sandbox.press(COORDINATOR, options["message_id"], button(options, "✅ 发送"))


async def copies(sandbox: SandboxClient, users: list[int], marker: str) -> Counter[int]:
    """How many copies of the broadcast each user's chat holds."""
    found: Counter[int] = Counter()
    for start in range(0, len(users), 100):
        chunk = users[start : start + 100]
        chats = await asyncio.gather(*(sandbox.bot_messages(u) for u in chunk))
        for user, messages in zip(chunk, chats, strict=True):
            found[user] = sum(1 for m in messages if marker in text_of(m))
    return found


async def report(db: Database, broadcast_id: int = 1) -> broadcasts.Report:
    async with db.transaction() as session:
        return await broadcasts.report_of(session, broadcast_id)


async def settled(db: Database, timeout: float) -> broadcasts.Report:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            found = await report(db)
            if found.queued == 0:
                return found
        except Exception:
            found = None
        if loop.time() > deadline:
            raise AssertionError(f"the broadcast did not finish: {found}")
        await asyncio.sleep(0.2)


async def test_two_thousand_recipients_through_429s_403s_and_network_errors(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("~30 s; the sender's PostgreSQL path is covered by the kill test below")
    await sandbox.user(COORDINATOR, "陈静")
    await start_bot(**FAST)
    await sandbox.reply_to(COORDINATOR, "/start demo-coordinator", count=2)
    users = await members_in_g1(demo_db, sandbox, 2000)
    blocked = users[::100]
    for user in blocked:
        await sandbox.block(user)

    async def faults() -> None:
        """Flood answers for the whole bot, gateway errors, and a global limit that the bot's
        own pacing must respect."""
        await sandbox.fail("sendMessage", 429, count=3, retry_after=1)
        await sandbox.fail("sendMessage", 502, count=15)
        await sandbox.flood(global_per_second=1000, per_chat_per_second=1)

    await broadcast_to_g1(sandbox, "【演练】今晚八点紧急集合演练", ack=True, before_send=faults)
    final = await settled(demo_db, timeout=120)
    assert (final.recipients, final.sent, final.blocked, final.failed) == (2000, 1980, 20, 0)

    got = await copies(sandbox, users, "紧急集合演练")
    assert {u for u, n in got.items() if n == 0} == set(blocked), "only the blocked got none"
    assert {u: n for u, n in got.items() if n > 1} == {}, "nobody got it twice"

    reader = users[1]
    [copy] = [m for m in await sandbox.bot_messages(reader) if "紧急集合演练" in text_of(m)]
    await sandbox.press(reader, copy["message_id"], button(copy, "我已阅读"))
    await sandbox.wait_until(
        COORDINATOR,
        lambda ms: any(
            "已发送 1980" in text_of(m)
            and "已屏蔽机器人 20" in text_of(m)
            and "已确认 1" in text_of(m)
            for m in ms
        ),
        timeout=30,
    )
    errors = (await sandbox.stats())["errors"]
    assert errors["429"] >= 3, "the injected floods (and any the limits caused) were answered"
    assert (errors["502"], errors["403"]) == (15, 20)


async def sent_rows(db: Database) -> int:
    async with db.transaction() as session:
        counted = await session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.source).in_(["bc:1", "bcr:1"]))
            .where(col(OutboxMessage.status) == OutboxStatus.sent)
        )
        return int(counted.scalar_one())


async def test_killing_the_bot_mid_broadcast_delivers_every_copy_exactly_once(
    sandbox: SandboxClient, start_bot: BotFactory, demo_db: Database
) -> None:
    await sandbox.user(COORDINATOR, "陈静")
    bot = await start_bot(GRIDBOT_SEND_RATE_PER_SECOND="200", **DAYTIME)
    await sandbox.reply_to(COORDINATOR, "/start demo-coordinator", count=2)
    users = await members_in_g1(demo_db, sandbox, 400)
    baseline = 0

    async def remember_baseline() -> None:
        nonlocal baseline
        baseline = (await sandbox.stats())["messages_from_bot"]

    await broadcast_to_g1(sandbox, "【通知】明天上午停电检修", before_send=remember_baseline)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (await sandbox.stats())["messages_from_bot"] - baseline < 150:
        assert loop.time() < deadline, "the broadcast did not start"
        await asyncio.sleep(0.05)
    # Freeze the "network": sends now in flight never get an answer. Once every answered send
    # is on record, kill the process (SIGKILL, no clean-up) with the rest of the queue leased.
    await sandbox.hold("sendMessage")
    while True:
        delivered = (await sandbox.stats())["messages_from_bot"] - baseline
        recorded = await sent_rows(demo_db)
        if recorded == delivered:
            break
        assert loop.time() < deadline, "answered sends were not recorded"
        await asyncio.sleep(0.05)
    await bot.kill()
    await sandbox.release()
    assert delivered < 400, "killed in the middle"

    await start_bot(GRIDBOT_SEND_RATE_PER_SECOND="200", **DAYTIME)
    final = await settled(demo_db, timeout=90)
    assert (final.sent, final.failed, final.blocked) == (400, 0, 0)
    got = await copies(sandbox, users, "停电检修")
    lost = sorted(u for u, n in got.items() if n == 0)
    duplicated = {u: n for u, n in got.items() if n > 1}
    assert lost == []
    assert duplicated == {}, f"{len(duplicated)} recipients got it more than once"
