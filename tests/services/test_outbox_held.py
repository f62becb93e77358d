"""Messages held while a person had blocked the bot: when they come back, what still matters
goes out through the normal queue and what is out of date is recorded as expired."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from models.outbox import OutboxMessage, OutboxStatus, Priority
from services import broadcasts, held, members, outbox
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, Draft
from services.held import HeldPolicy
from services.messages import Edit, Text
from tests.services.broadcast_fixtures import NOW, People, make_people

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = HeldPolicy(max_age=timedelta(hours=72), zone=SHANGHAI)
BROADCASTS = BroadcastPolicy(
    zone=SHANGHAI,
    quiet_start=time(21, 0),
    quiet_end=time(8, 0),
    renotify_every=timedelta(minutes=30),
    renotify_max=3,
    report_every=timedelta(seconds=5),
)


@pytest.fixture
async def people(demo_db: Database) -> People:
    return await make_people(demo_db)


async def queue(people: People, text: str, **options: object) -> int:
    at = options.pop("at", NOW)
    async with people.db.transaction() as session:
        (row,) = await outbox.notify_member(
            session,
            people["blocked"],
            Text(text) if not text.startswith("edit") else Edit(text, outbox_id=1),
            at,  # type: ignore[arg-type]
            **options,
        )
        return row.id


async def urgent_broadcast(people: People) -> int:
    draft = Draft(
        "寒潮预警",
        audience=Audience(unit_ids=(people.units["B2"],)),
        urgent=True,
        ask_ack=True,
    )
    actor = await people.actor("coordinator")
    async with people.db.transaction() as session:
        return (await broadcasts.send(session, actor, draft, NOW, BROADCASTS)).broadcast_id


async def come_back(people: People, later: timedelta = timedelta(hours=1)) -> held.Released:
    async with people.db.transaction() as session:
        await members.mark_returned(session, people["blocked"])
        return await held.release(session, people["blocked"], NOW + later, POLICY)


async def states(people: People) -> dict[str, tuple[str, str | None]]:
    async with people.db.transaction() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.member_id) == people["blocked"])
            .order_by(col(OutboxMessage.id))
        )
        return {str(r.payload["text"]): (str(r.status), r.error) for r in rows.scalars()}


async def test_old_messages_and_stale_replies_expire_the_rest_is_queued_again(
    people: People,
) -> None:
    await queue(people, "last week", at=NOW - timedelta(days=4))
    await queue(people, "a reply", priority=Priority.reply)
    await queue(people, "fresh news")
    released = await come_back(people)
    assert (released.delivered, released.dropped) == (1, 2)
    found = await states(people)
    assert found["fresh news"] == (OutboxStatus.pending, None)
    assert found["last week"] == (OutboxStatus.expired, "held while blocked; older than 72 h")
    assert found["a reply"][0] == OutboxStatus.expired
    assert await come_back(people) == held.Released(0, 0), "released once"


async def test_of_several_edits_and_reminder_rounds_only_the_newest_goes_out(
    people: People,
) -> None:
    await queue(people, "edit 1/3")
    await queue(people, "edit 3/3")
    first, second = await urgent_broadcast(people), await urgent_broadcast(people)
    async with people.db.transaction() as session:
        # The first one reached them before they blocked the bot; two reminders were held.
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.dedupe_key) == f"bc:{first}:{people['blocked']}")
            .values(status=OutboxStatus.sent)
        )
    for broadcast_id in (first, second):
        for n in (1, 2):
            await queue(people, f"{broadcast_id} round {n}", dedupe_key=f"bcn:{broadcast_id}:{n}:x")
    await queue(people, "daily nudge", dedupe_key="visits.nudge:d:1", at=NOW - timedelta(days=1))
    await come_back(people)
    found = await states(people)
    assert found["edit 3/3"][0] == OutboxStatus.pending
    assert found["edit 1/3"] == (
        OutboxStatus.expired,
        "held while blocked; superseded by a newer edit",
    )
    assert found[f"{first} round 1"][1] == "held while blocked; superseded by a newer reminder"
    assert found[f"{first} round 2"][0] == OutboxStatus.pending
    assert found[f"{second} round 1"][1] == "held while blocked; the broadcast itself goes out"
    assert found[f"{second} round 2"][0] == OutboxStatus.expired
    assert found["daily nudge"] == (
        OutboxStatus.expired,
        "held while blocked; a nudge of an earlier day",
    )


async def test_expired_copies_still_count_as_blocked_in_reports(people: People) -> None:
    await queue(people, "old", at=NOW - timedelta(days=4), source="bc:1")
    await queue(people, "new", source="bc:1")
    await come_back(people)
    async with people.db.transaction() as session:
        counted = await outbox.outcomes(session, "bc:1")
    assert (counted.queued, counted.blocked, counted.expired) == (1, 1, 1)
