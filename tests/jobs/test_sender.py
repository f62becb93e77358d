"""The delivery engine under 429s, 403s, network errors and refusals: nothing lost, nothing
sent twice, every outcome recorded."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.db import Database
from jobs.sender import Courier
from jobs.transport import BadRequest, Blocked, NetworkError, RetryAfter
from models.members import Member
from models.outbox import OutboxMessage, OutboxStatus, Priority
from services import members, outbox
from services.messages import Button, Edit, Text
from tests.fakes import FakeTransport
from tests.harness import Clock


@pytest.fixture
def courier(db: Database, transport: FakeTransport, clock: Clock) -> Courier:
    return Courier(
        db, transport, owner="test", rate=1000, lease_seconds=30, clock=clock, per_chat_interval=0
    )


async def add_member(db: Database, telegram_id: int) -> int:
    async with db.transaction() as session:
        member = Member(
            telegram_id=telegram_id, chat_id=telegram_id, display_name="M", locale="zh_CN"
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        return member.id


async def notify(db: Database, member_id: int, text: str, clock: Clock, **options: object) -> None:
    async with db.transaction() as session:
        await outbox.notify_member(session, member_id, Text(text), clock(), **options)


async def drain(courier: Courier, clock: Clock, rounds: int = 20) -> None:
    """Drain until nothing is due, moving the clock past retry times."""
    for _ in range(rounds):
        if not await courier.drain_once():
            clock.advance(seconds=400)
            if not await courier.drain_once():
                return


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as session:
        return list(
            (await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars()
        )


async def test_notifications_are_delivered_once_in_order_per_chat(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    ids = [await add_member(db, 9000 + i) for i in range(5)]
    for member_id in ids:
        for n in range(3):
            await notify(db, member_id, f"note {n}", clock)
    await drain(courier, clock)
    for i in range(5):
        assert [m.text for m in transport.chats[9000 + i]] == ["note 0", "note 1", "note 2"]
    assert {r.status for r in await rows(db)} == {OutboxStatus.sent}


async def test_flood_limit_pauses_and_retries_without_counting_an_attempt(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9100)
    await notify(db, member_id, "hello", clock)
    transport.fail_next("send_text", RetryAfter(0.05), RetryAfter(0.05))
    await drain(courier, clock)
    assert [m.text for m in transport.chats[9100]] == ["hello"]
    (row,) = await rows(db)
    assert row.status == OutboxStatus.sent
    assert row.attempts == 1


async def test_network_errors_retry_with_backoff_then_give_up(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    first, second = await add_member(db, 9200), await add_member(db, 9201)
    await notify(db, first, "flaky", clock)
    transport.fail_next("send_text", NetworkError("reset"), NetworkError("reset"))
    await drain(courier, clock)
    assert [m.text for m in transport.chats[9200]] == ["flaky"]

    await notify(db, second, "never", clock)
    transport.fail_next("send_text", *[NetworkError("down")] * outbox.MAX_ATTEMPTS)
    await drain(courier, clock, rounds=outbox.MAX_ATTEMPTS + 2)
    failed = [r for r in await rows(db) if r.chat_id == 9201]
    assert failed[0].status == OutboxStatus.failed
    assert failed[0].attempts == outbox.MAX_ATTEMPTS
    assert "down" in (failed[0].error or "")
    assert transport.chats[9201] == []


async def test_blocked_person_is_marked_and_not_sent_to_until_they_return(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9300)
    await notify(db, member_id, "one", clock)
    await notify(db, member_id, "two", clock)
    transport.fail_next("send_text", Blocked("Forbidden: bot was blocked by the user"))
    await drain(courier, clock)
    assert transport.chats[9300] == []
    assert [r.status for r in await rows(db)] == [OutboxStatus.blocked] * 2
    await notify(db, member_id, "three", clock)
    await drain(courier, clock)
    assert transport.chats[9300] == [], "nothing goes to someone who blocked the bot"
    async with db.transaction() as session:
        await members.mark_returned(session, member_id)
    await notify(db, member_id, "welcome back", clock)
    await drain(courier, clock)
    assert [m.text for m in transport.chats[9300]] == ["welcome back"]


async def test_a_refused_message_fails_once_and_is_not_retried(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9400)
    await notify(db, member_id, "bad", clock)
    transport.fail_next("send_text", BadRequest("Bad Request: chat not found"))
    await drain(courier, clock)
    (row,) = await rows(db)
    assert row.status == OutboxStatus.failed
    assert row.error == "Bad Request: chat not found"
    assert transport.calls.count("send_text") == 1


async def test_edit_of_a_queued_message_waits_for_it(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9500)
    async with db.transaction() as session:
        (report,) = await outbox.notify_member(session, member_id, Text("queued 0/3"), clock())
        await outbox.notify_member(
            session, member_id, Edit("sent 3/3", outbox_id=report.id), clock()
        )
    await drain(courier, clock)
    (message,) = transport.chats[9500]
    assert message.text == "sent 3/3"
    assert message.edits == 1


async def test_a_long_text_is_split_and_buttons_go_on_the_last_part(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9600)
    long_text = "\n".join(f"line {i:05d} " + "x" * 60 for i in range(150))
    async with db.transaction() as session:
        await outbox.notify_member(
            session, member_id, Text(long_text, ((Button("OK", payload="ok"),),)), clock()
        )
    await drain(courier, clock)
    parts = transport.chats[9600]
    assert len(parts) == 3
    assert all(len(p.text) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts) == long_text
    assert [p.buttons for p in parts] == [[], [], [[("OK", "ok")]]]


async def test_dedupe_key_makes_a_second_notification_a_no_op(db: Database, clock: Clock) -> None:
    member_id = await add_member(db, 9700)
    await notify(db, member_id, "once", clock, dedupe_key="reminder:1")
    await notify(db, member_id, "once", clock, dedupe_key="reminder:1")
    assert len(await rows(db)) == 1


async def test_a_dead_senders_lease_runs_out_and_another_takes_over(
    db: Database, transport: FakeTransport, clock: Clock
) -> None:
    member_id = await add_member(db, 9800)
    async with db.transaction() as session:
        await outbox.notify_member(
            session,
            member_id,
            Text("orphan"),
            clock(),
            lease_owner="dead-process",
            lease_seconds=30,
        )
    survivor = Courier(db, transport, owner="survivor", rate=1000, clock=clock, per_chat_interval=0)
    assert await survivor.drain_once() == 0, "still leased"
    clock.advance(seconds=31)
    assert await survivor.drain_once() == 1
    assert [m.text for m in transport.chats[9800]] == ["orphan"]


async def test_claims_by_two_senders_never_overlap(
    db: Database, transport: FakeTransport, clock: Clock
) -> None:
    ids = [await add_member(db, 9900 + i) for i in range(40)]
    for member_id in ids:
        await notify(db, member_id, "hi", clock)
    async with db.transaction() as session:
        first = await outbox.claim(session, "a", clock(), limit=25)
    async with db.transaction() as session:
        second = await outbox.claim(session, "b", clock(), limit=25)
    assert len(first) == 25
    assert len(second) == 15
    assert not {r.id for r in first} & {r.id for r in second}


async def test_start_up_sends_left_over_replies_but_leaves_urgent_broadcasts_to_the_pacing(
    db: Database, courier: Courier, transport: FakeTransport, clock: Clock
) -> None:
    """At start-up replies go out at once; an urgent broadcast ranks above replies in the
    queue but must still be drained at the flood limit, not all at once."""
    member_id = await add_member(db, 9700)
    await notify(db, member_id, "reply", clock, priority=Priority.reply)
    await notify(db, member_id, "urgent call", clock, priority=Priority.urgent)
    assert await courier.drain_replies() == 1
    assert [m.text for m in transport.chats[9700]] == ["reply"]
    await drain(courier, clock)
    assert [m.text for m in transport.chats[9700]] == ["reply", "urgent call"]
