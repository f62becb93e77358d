"""Broadcasts, service by service: one copy per recipient queued in one transaction, quiet
hours, urgent priority, refusals that leave nothing queued, acknowledgements, reminders for
urgent ones and the sender's live report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from models.broadcasts import Broadcast, BroadcastRecipient
from models.members import Role
from models.outbox import OutboxMessage, OutboxStatus, Priority
from services import broadcasts
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, Draft
from services.errors import InvalidInput, PermissionDenied, ServiceError
from tests.services.broadcast_fixtures import NOW, People, make_people

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = BroadcastPolicy(
    zone=SHANGHAI,
    quiet_start=time(21, 0),
    quiet_end=time(8, 0),
    renotify_every=timedelta(minutes=30),
    renotify_max=3,
    report_every=timedelta(seconds=5),
)
NIGHT = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
async def people(demo_db: Database) -> People:
    return await make_people(demo_db)


def c1(people: People, **fields: Any) -> Draft:
    base: dict[str, Any] = {
        "text": "周六上午九点楼下集合打扫卫生",
        "audience": Audience(unit_ids=(people.units["C1"],)),
    }
    return Draft(**(base | fields))


async def send(
    people: People, draft: Draft, who: str = "coordinator", now: datetime = NOW
) -> broadcasts.Sent:
    actor = await people.actor(who)
    async with people.db.transaction() as session:
        return await broadcasts.send(session, actor, draft, now, POLICY)


async def rows(db: Database, source: str) -> list[OutboxMessage]:
    async with db.transaction() as session:
        found = await session.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.source) == source)
            .order_by(col(OutboxMessage.id))
        )
        return list(found.scalars())


async def mark(db: Database, source: str, status: OutboxStatus, member_ids: list[int]) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.source) == source)
            .where(col(OutboxMessage.member_id).in_(member_ids))
            .values(
                status=status,
                error="Bad Request: wrong file identifier" if status == "failed" else None,
            )
        )


async def report(db: Database, broadcast_id: int) -> broadcasts.Report:
    async with db.transaction() as session:
        return await broadcasts.report_of(session, broadcast_id)


# -- sending ----------------------------------------------------------------------------------


async def test_each_recipient_gets_one_copy_in_their_language(people: People) -> None:
    g1, b1 = people.units["G1"], people.units["B1"]
    draft = c1(people, audience=Audience(unit_ids=(g1, b1)), ask_ack=True)
    actor = await people.actor("coordinator")
    async with people.db.transaction() as session:
        assert await broadcasts.preview(session, actor, draft) == 4
    sent = await send(people, draft)
    assert sent.recipients == 4
    copies = await rows(people.db, f"bc:{sent.broadcast_id}")
    by_member = {row.member_id: row for row in copies}
    assert set(by_member) == {
        people[n] for n in ("grid_leader", "volunteer", "resident", "blocked")
    }
    assert len(copies) == 4, "the volunteer in G1 and B1 gets one copy"
    assert by_member[people["resident"]].payload["text"].startswith("📣 Message from")
    assert by_member[people["volunteer"]].payload["text"].startswith("📣 来自")
    assert "周六上午九点" in by_member[people["volunteer"]].payload["text"]
    assert by_member[people["volunteer"]].payload["buttons"][0][0]["payload"] == (
        f"bc_ack:{sent.broadcast_id}"
    )
    assert by_member[people["blocked"]].status == OutboxStatus.blocked
    assert {row.priority for row in copies} == {Priority.normal}
    assert {row.not_before for row in copies} == {NOW}
    first = await report(people.db, sent.broadcast_id)
    assert (first.queued, first.sent, first.blocked, first.acknowledged) == (3, 0, 1, 0)
    [report_row] = await rows(people.db, f"bcr:{sent.broadcast_id}")
    assert report_row.member_id == people["coordinator"]
    assert report_row.priority > Priority.urgent, "the sender sees it before the copies go out"
    assert "Broadcast #" not in report_row.payload["text"]
    assert "群发" in report_row.payload["text"]


async def test_a_photo_goes_with_its_caption(people: People) -> None:
    sent = await send(people, c1(people, text="看图", photo_file_id="AgAD-photo"))
    copies = await rows(people.db, f"bc:{sent.broadcast_id}")
    assert {row.kind for row in copies} == {"photo"}
    assert all(row.payload["file_id"] == "AgAD-photo" for row in copies)
    assert all("看图" in row.payload["caption"] for row in copies)


async def test_outside_quiet_hours_urgent_or_not_goes_now(people: People) -> None:
    assert broadcasts.quiet_until(NOW, POLICY) is None
    sent = await send(people, c1(people, urgent=True))
    assert {row.priority for row in await rows(people.db, f"bc:{sent.broadcast_id}")} == {
        Priority.urgent
    }


async def test_non_urgent_broadcasts_wait_for_the_end_of_quiet_hours(people: People) -> None:
    morning = datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    quiet = await send(people, c1(people), now=NIGHT)
    assert quiet.deliver_from == morning
    assert {row.not_before for row in await rows(people.db, f"bc:{quiet.broadcast_id}")} == {
        morning
    }
    urgent = await send(people, c1(people, urgent=True), now=NIGHT)
    assert urgent.deliver_from == NIGHT
    assert {row.not_before for row in await rows(people.db, f"bc:{urgent.broadcast_id}")} == {NIGHT}


@pytest.mark.parametrize(
    ("local", "until"),
    [
        (datetime(2026, 11, 23, 20, 59), None),
        (datetime(2026, 11, 23, 21, 0), datetime(2026, 11, 24, 8, 0)),
        (datetime(2026, 11, 24, 0, 30), datetime(2026, 11, 24, 8, 0)),
        (datetime(2026, 11, 24, 7, 59), datetime(2026, 11, 24, 8, 0)),
        (datetime(2026, 11, 24, 8, 0), None),
    ],
)
def test_quiet_hours_wrap_midnight(local: datetime, until: datetime | None) -> None:
    now = local.replace(tzinfo=SHANGHAI).astimezone(UTC)
    expected = until.replace(tzinfo=SHANGHAI) if until else None
    assert broadcasts.quiet_until(now, POLICY) == expected
    daytime = POLICY.__class__(
        **{**POLICY.__dict__, "quiet_start": time(12), "quiet_end": time(14)}
    )
    assert broadcasts.quiet_until(now, daytime) is None


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"text": "   "}, "broadcasts.text_empty"),
        ({"text": "x" * (broadcasts.TEXT_MAX + 1)}, "broadcasts.text_too_long"),
        (
            {"text": "x" * (broadcasts.CAPTION_MAX + 1), "photo_file_id": "AgAD"},
            "broadcasts.caption_too_long",
        ),
        ({"audience": Audience()}, "audiences.empty"),
        ({"audience": Audience(skills=("legal",))}, "broadcasts.nobody"),
        ({"audience": Audience(unit_ids=(-1,))}, "org.unit_unknown"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_queued(
    people: People, fields: dict[str, Any], key: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        await send(people, c1(people, **fields))
    assert refused.value.key == key
    assert await count_all(people.db) == 0


async def count_all(db: Database) -> int:
    async with db.transaction() as session:
        queued = len(list((await session.execute(select(OutboxMessage.id))).scalars()))
        kept = len(list((await session.execute(select(Broadcast.id))).scalars()))
        return queued + kept


@pytest.mark.parametrize(
    ("who", "unit"), [("grid_leader", "G2"), ("coordinator", "C2"), ("far_coordinator", "C1")]
)
async def test_a_unit_outside_the_senders_scope_sends_nothing(
    people: People, who: str, unit: str
) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await send(people, c1(people, audience=Audience(unit_ids=(people.units[unit],))), who)
    assert refused.value.key == "audiences.unit_outside"
    assert await count_all(people.db) == 0


@pytest.mark.parametrize("who", ["resident", "volunteer"])
async def test_members_without_a_sending_role_cannot_broadcast(people: People, who: str) -> None:
    draft = c1(people, audience=Audience(roles=(Role.resident.value,)))
    with pytest.raises(PermissionDenied):
        await send(people, draft, who)
    assert await count_all(people.db) == 0


# -- acknowledgements -------------------------------------------------------------------------


async def ack(people: People, who: str, broadcast_id: int, now: datetime = NOW) -> bool:
    actor = await people.actor(who)
    async with people.db.transaction() as session:
        return await broadcasts.acknowledge(session, actor, broadcast_id, now, POLICY)


async def test_a_recipient_acknowledges_once(people: People) -> None:
    sent = await send(people, c1(people, ask_ack=True))
    assert await ack(people, "volunteer", sent.broadcast_id)
    assert not await ack(people, "volunteer", sent.broadcast_id), "pressed again: recorded once"
    assert await ack(people, "resident", sent.broadcast_id)
    assert (await report(people.db, sent.broadcast_id)).acknowledged == 2
    async with people.db.transaction() as session:
        acked = await session.execute(
            select(col(BroadcastRecipient.member_id)).where(
                col(BroadcastRecipient.acknowledged_at).is_not(None)
            )
        )
        assert sorted(acked.scalars()) == sorted([people["volunteer"], people["resident"]])


async def test_only_recipients_of_an_ack_broadcast_can_acknowledge(people: People) -> None:
    sent = await send(people, c1(people, ask_ack=True))
    with pytest.raises(PermissionDenied) as refused:
        await ack(people, "far_resident", sent.broadcast_id)
    assert refused.value.key == "broadcasts.not_recipient"
    plain = await send(people, c1(people))
    with pytest.raises(InvalidInput) as refused_plain:
        await ack(people, "volunteer", plain.broadcast_id)
    assert refused_plain.value.key == "broadcasts.no_ack"
    with pytest.raises(ServiceError) as unknown:
        await ack(people, "volunteer", 999_999)
    assert unknown.value.key == "broadcasts.unknown"


# -- reminders for urgent broadcasts ----------------------------------------------------------


async def remind(db: Database, now: datetime) -> int:
    async with db.transaction() as session:
        return await broadcasts.send_reminders(session, now, POLICY)


async def test_urgent_broadcasts_remind_the_silent_at_most_three_times(people: People) -> None:
    g1 = people.units["G1"]
    sent = await send(
        people, c1(people, audience=Audience(unit_ids=(g1,)), urgent=True, ask_ack=True)
    )
    source = f"bc:{sent.broadcast_id}"
    delivered = [people["volunteer"], people["resident"], people["grid_leader"]]
    await mark(people.db, source, OutboxStatus.sent, delivered)
    await ack(people, "grid_leader", sent.broadcast_id)
    assert await remind(people.db, NOW + timedelta(minutes=29)) == 0, "not yet due"
    first = NOW + timedelta(minutes=30)
    assert await remind(people.db, first) == 2, "the two who got it and did not acknowledge"
    assert await remind(people.db, first) == 0, "a second run at the same time adds nothing"
    reminders = await rows(people.db, f"bcn:{sent.broadcast_id}")
    assert {r.member_id for r in reminders} == {people["volunteer"], people["resident"]}
    assert {r.priority for r in reminders} == {Priority.urgent}
    assert "1/3" in reminders[0].payload["text"]
    await ack(people, "volunteer", sent.broadcast_id)
    assert await remind(people.db, first + timedelta(minutes=30)) == 1
    assert await remind(people.db, first + timedelta(minutes=60)) == 1
    assert await remind(people.db, first + timedelta(hours=5)) == 0, "three rounds at most"
    assert len(await rows(people.db, f"bcn:{sent.broadcast_id}")) == 4


async def test_non_urgent_or_no_ack_broadcasts_never_remind(people: People) -> None:
    for draft in (c1(people, ask_ack=True), c1(people, urgent=True)):
        sent = await send(people, draft)
        async with people.db.transaction() as session:
            broadcast = await session.get(Broadcast, sent.broadcast_id)
            assert broadcast is not None
            assert broadcast.next_renotify_at is None
    assert await remind(people.db, NOW + timedelta(days=1)) == 0


# -- the live report --------------------------------------------------------------------------


async def refresh(db: Database, now: datetime) -> int:
    async with db.transaction() as session:
        return await broadcasts.refresh_reports(session, now, POLICY)


async def test_the_report_is_edited_in_place_when_numbers_change_but_not_too_often(
    people: People,
) -> None:
    sent = await send(people, c1(people, ask_ack=True))
    source = f"bc:{sent.broadcast_id}"
    [report_row] = await rows(people.db, f"bcr:{sent.broadcast_id}")
    assert await refresh(people.db, NOW + timedelta(seconds=1)) == 0, "nothing changed"
    await mark(people.db, source, OutboxStatus.sent, [people["volunteer"], people["resident"]])
    assert await refresh(people.db, NOW + timedelta(seconds=2)) == 0, "edited 2 s ago: wait"
    assert await refresh(people.db, NOW + timedelta(seconds=6)) == 1
    await mark(people.db, source, OutboxStatus.failed, [people["g2_resident"]])
    await mark(
        people.db,
        source,
        OutboxStatus.sent,
        [people[n] for n in ("coordinator", "grid_leader", "g2_volunteer")],
    )
    assert await refresh(people.db, NOW + timedelta(seconds=7)) == 0
    edits = await rows(people.db, f"bcr:{sent.broadcast_id}")
    assert await refresh(people.db, NOW + timedelta(seconds=12)) == 1
    edits = await rows(people.db, f"bcr:{sent.broadcast_id}")
    assert [e.kind for e in edits] == ["text", "edit", "edit"]
    assert edits[1].status == OutboxStatus.cancelled, "an older edit not yet sent is dropped"
    last = edits[2]
    assert last.payload["outbox_id"] == report_row.id
    assert last.priority > Priority.urgent
    assert "已发送 5" in last.payload["text"]
    assert "失败 1" in last.payload["text"]
    assert "已屏蔽机器人 1" in last.payload["text"]
    assert "wrong file identifier" in last.payload["text"]
    assert "发送完毕" in last.payload["text"]
    assert await refresh(people.db, NOW + timedelta(seconds=30)) == 0, "settled"
    await ack(people, "volunteer", sent.broadcast_id, NOW + timedelta(seconds=31))
    edits = await rows(people.db, f"bcr:{sent.broadcast_id}")
    assert "已确认 1" in edits[-1].payload["text"], "an acknowledgement refreshes the report"


async def test_my_broadcasts_lists_the_newest_first(people: People) -> None:
    first = await send(people, c1(people))
    second = await send(people, c1(people, urgent=True))
    actor = await people.actor("coordinator")
    async with people.db.transaction() as session:
        mine = await broadcasts.my_broadcasts(session, actor)
    assert [r.broadcast_id for r in mine] == [second.broadcast_id, first.broadcast_id]
    other = await people.actor("far_coordinator")
    async with people.db.transaction() as session:
        assert await broadcasts.my_broadcasts(session, other) == []
