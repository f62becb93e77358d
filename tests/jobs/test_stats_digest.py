"""The coordinators' weekly digest: one message per person over all the communities they
coordinate, nothing for a quiet week, nothing twice in a week."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.db import Database
from bot.i18n import translator
from bot.settings import Settings
from jobs.stats import digest_texts, unit_digest_key, weekly_digest
from models.issues import IssueStatus
from models.members import Role
from models.outbox import Blob, OutboxKind, OutboxMessage
from services.stats import StatsPolicy, build_report, parse_period, summary_text
from tests.stats_world import StatsWorld

# Monday 9 November 2026, 09:00 in Shanghai (the default digest time): last week is 2026-W45.
MONDAY = datetime(2026, 11, 9, 1, 0, tzinfo=UTC)
W45 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)


@pytest.fixture
async def world(db: Database) -> StatsWorld:
    w = await StatsWorld(db).org()
    await w.person("both", (Role.coordinator, "XC1"), (Role.coordinator, "XC2"))
    await w.person("second", (Role.coordinator, "XC2"))
    await w.person("street", (Role.coordinator, "XS"), (Role.coordinator, "XC1"))
    return w


async def outbox(db: Database, member_id: int) -> list[OutboxMessage]:
    async with db.reading() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.member_id) == member_id)
            .order_by(col(OutboxMessage.id))
        )
        return list(rows.scalars())


async def test_one_digest_per_coordinator_over_all_their_communities(
    world: StatsWorld, settings: Settings
) -> None:
    await world.issue("XG1", W45, IssueStatus.new, [])
    await world.issue("XG3", W45, IssueStatus.accepted, [("accepted", 1, None)])
    await world.issue("XG3", W45 + timedelta(days=1), IssueStatus.new, [])
    assert await weekly_digest(world.db, settings, MONDAY) == 3  # three people, not five units

    both = await outbox(world.db, world.members["both"])
    assert [m.kind for m in both] == [OutboxKind.text, OutboxKind.photo]
    text = both[0].payload["text"]
    assert text.startswith("🗓 每周统计")
    assert text.count("2026-W45") == 2
    assert "XC1名 (XC1)" in text
    assert "XC2名 (XC2)" in text
    assert text.index("(XC1)") < text.index("(XC2)")
    assert "📮 民情：上报 1 ·" in text  # XC1
    assert "📮 民情：上报 2 ·" in text  # XC2
    assert "XC1名 / XC2名" in both[1].payload["caption"]
    async with world.db.reading() as session:
        blob = await session.get(Blob, both[1].payload["blob_id"])
    assert blob is not None
    width, height = struct.unpack(">II", blob.data[16:24])
    assert (width, height) == (1210, 2 * 506)  # one row per community, one under the other

    # A coordinator of one community gets that one alone.
    [second_text, _] = await outbox(world.db, world.members["second"])
    assert "(XC2)" in second_text.payload["text"]
    assert "(XC1)" not in second_text.payload["text"]
    # The street (with XC1 among its rows) is not repeated by a community digest of XC1.
    [street_text, street_chart] = await outbox(world.db, world.members["street"])
    assert street_text.payload["text"].count("📊") == 1
    assert "(XS)" in street_text.payload["text"]
    async with world.db.reading() as session:
        blob = await session.get(Blob, street_chart.payload["blob_id"])
    assert blob is not None
    assert struct.unpack(">II", blob.data[16:24]) == (1210, 506)

    # Another tick the same day, a tick later in the week: nothing new.
    assert await weekly_digest(world.db, settings, MONDAY + timedelta(hours=3)) == 0
    assert await weekly_digest(world.db, settings, MONDAY + timedelta(minutes=1)) == 0
    assert len(await outbox(world.db, world.members["both"])) == 2


async def test_a_community_without_news_is_left_out_and_a_quiet_week_sends_nothing(
    world: StatsWorld, settings: Settings
) -> None:
    assert await weekly_digest(world.db, settings, MONDAY) == 0
    for name in ("both", "second", "street"):
        assert await outbox(world.db, world.members[name]) == []
    # The week after, only XC2 had news: "both" hears about XC2 only, once.
    await world.issue("XG3", W45 + timedelta(days=7), IssueStatus.new, [])
    assert await weekly_digest(world.db, settings, MONDAY + timedelta(days=7)) == 3
    [text, _] = await outbox(world.db, world.members["both"])
    assert "(XC2)" in text.payload["text"]
    assert "(XC1)" not in text.payload["text"]


async def test_a_person_who_had_the_old_per_community_digest_is_not_sent_it_again(
    world: StatsWorld, settings: Settings
) -> None:
    """Digests queued before the change carried one key per person and unit: a person who
    already got one for the week gets no combined digest on top."""
    await world.issue("XG3", W45, IssueStatus.new, [])
    week = parse_period("2026-W45")
    async with world.db.transaction() as session:
        member = world.members["second"]
        session.add(
            OutboxMessage(
                chat_id=1,
                member_id=member,
                kind=OutboxKind.text,
                payload={"text": "old digest"},
                dedupe_key=unit_digest_key(member, world.id("XC2"), week),
            )
        )
    assert await weekly_digest(world.db, settings, MONDAY) == 2  # "both" and "street"
    assert len(await outbox(world.db, world.members["second"])) == 1


async def test_a_long_digest_is_split_between_units_never_inside_one(world: StatsWorld) -> None:
    await world.issue("XG1", W45, IssueStatus.new, [])
    async with world.db.reading() as session:
        report = await build_report(
            session, world.units["XC1"], parse_period("2026-W45"), MONDAY, StatsPolicy()
        )
    t = translator("zh_CN")
    one = summary_text(t, report)
    parts = digest_texts(t, [report] * 12)
    assert len(parts) > 1
    assert all(len(part.text) <= 4000 for part in parts)
    assert parts[0].text.startswith("🗓 每周统计")
    assert all(part.text.startswith("📊") for part in parts[1:])
    assert sum(part.text.count(one) for part in parts) == 12
