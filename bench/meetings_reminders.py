"""Meeting reminders at the scale of a large community: one invitation fanned out to every
member of an open council, next to queueing the same notifications straight into the outbox
(the floor: what any fan-out costs), and the planning job over many series. Prints rates and
the ratio of the fan-out to the floor.

Usage: .venv/bin/python bench/meetings_reminders.py [--members 2000] [--series 300]
       [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select
from sqlmodel import col

from bot.db import Database
from bot.i18n import Translator
from bot.migrate import upgrade
from models.members import Member, Role, RoleGrant
from models.org import Unit
from services import meetings, outbox
from services.access import Actor
from services.demo import seed_demo
from services.meetings import MeetingRules, SeriesDraft
from services.messages import Text
from tests import databases

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
RULES = MeetingRules()


async def add_members(db: Database, count: int) -> list[int]:
    async with db.transaction() as session:
        unit_id = (
            await session.execute(select(col(Unit.id)).where(col(Unit.code) == "B1"))
        ).scalar_one()
        ids = []
        for start in range(0, count, 500):
            rows = [
                {
                    "telegram_id": 900_000 + n,
                    "chat_id": 900_000 + n,
                    "display_name": f"居民{n}",
                    "locale": "zh_CN" if n % 5 else "en",
                    "created_at": NOW,
                }
                for n in range(start, min(start + 500, count))
            ]
            result = await session.execute(insert(Member).returning(col(Member.id)), rows)
            ids += [int(i or 0) for i in result.scalars()]
        await session.execute(
            insert(RoleGrant),
            [
                {"member_id": i, "role": Role.resident.value, "unit_id": unit_id, "created_at": NOW}
                for i in ids
            ],
        )
    return ids


def draft(title: str, unit: str = "G1", rrule: str = "FREQ=MONTHLY;BYDAY=+2TU") -> SeriesDraft:
    return SeriesDraft(
        kind="council",  # type: ignore[arg-type]
        title=title,
        unit_code=unit,
        first_start=datetime(2026, 12, 8, 11, 0, tzinfo=UTC),
        rrule=rrule,
        venue="党群服务站",
    )


async def fan_out(db: Database) -> tuple[int, float]:
    async with db.transaction() as session:
        await meetings.create_series(session, Actor.cli(), draft("月月谈"), NOW, RULES)
    started = time.perf_counter()
    async with db.transaction() as session:
        await meetings.send_due_reminders(session, NOW, RULES)
    elapsed = time.perf_counter() - started
    async with db.transaction() as session:
        from models.meetings import MeetingReminder

        sent = (
            await session.execute(
                select(col(MeetingReminder.recipients)).where(
                    col(MeetingReminder.kind) == "invitation"
                )
            )
        ).scalar_one()
    return int(sent or 0), elapsed


async def floor(db: Database, member_ids: list[int]) -> float:
    def render(t: Translator) -> Text:
        return Text(t("meetings.invitation_head") + "\n" + "x" * 200)

    started = time.perf_counter()
    async with db.transaction() as session:
        for member_id in member_ids:
            await outbox.notify(session, member_id, NOW, render, dedupe_key=f"floor:{member_id}")
    return time.perf_counter() - started


async def planning(db: Database, count: int) -> float:
    async with db.transaction() as session:
        for n in range(count):
            await meetings.create_series(
                session, Actor.cli(), draft(f"系列{n}", "G2"), NOW, RULES, quiet=True
            )
    started = time.perf_counter()
    async with db.transaction() as session:
        created = await meetings.plan_all(session, NOW + timedelta(days=30), RULES)
    elapsed = time.perf_counter() - started
    assert created >= count, created
    return elapsed


async def run(url: str, members: int, series: int) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await seed_demo(session, NOW)
        ids = await add_members(db, members)
        recipients, fan_time = await fan_out(db)
        floor_time = await floor(db, ids)
        plan_time = await planning(db, series)
    finally:
        await db.dispose()
    print(f"database: {db.dialect}")
    print(
        f"invitation fan-out: {recipients} recipients in {fan_time:.2f} s "
        f"({recipients / fan_time:.0f} notifications/s)"
    )
    rate = len(ids) / floor_time
    print(f"outbox floor: {len(ids)} notifications in {floor_time:.2f} s ({rate:.0f}/s)")
    print(f"ratio fan-out / floor: {floor_time / fan_time * recipients / len(ids):.2f}")
    print(f"planning: {series} series in {plan_time:.2f} s ({series / plan_time:.0f} series/s)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.database == "postgresql":
        reason = await databases.postgres_unreachable_reason()
        if reason:
            raise SystemExit(reason)
        url = await databases.create_postgres_database()
        try:
            await run(url, args.members, args.series)
        finally:
            await databases.drop_postgres_database(url)
        return
    with tempfile.TemporaryDirectory() as directory:
        await run(f"sqlite:///{directory}/bench.sqlite3", args.members, args.series)


if __name__ == "__main__":
    asyncio.run(main())
