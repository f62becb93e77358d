"""Door-knocking at district scale: the daily nudge for everyone and the coverage report of a
community, at 10,000 and at 100,000 households with 5,000 members.

The org: one community with 50 grids and 2,000 buildings; 5,000 volunteers (100 per grid), 500
of them hub members linking nine others ("1+10+N"). Households arrive through the real import
(`import_households`, the code behind `gridbot households import`) with a realistic mix of tags
(5 % special needs, 10 % elderly living alone, …) and last visits spread over about one and a
third of each household's interval, every household assigned to a volunteer of its grid.

Printed per size: how many households are due, how many members get a nudge, the time to
compute every nudge (`services.visits.daily_nudges`), the whole job as it runs each morning
(compute, render in each member's language, 5,000 outbox rows, commit), and the coverage report
of the community (`services.visits.coverage_of`). Target: nudge for everyone under 2 s on SQLite.

Usage: .venv/bin/python bench/visits_scale.py [--database sqlite|postgresql] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert, select, update
from sqlmodel import col

from bot.db import Database
from bot.migrate import upgrade
from bot.settings import Settings
from jobs.visits import run_visit_jobs
from models.households import Household, HubLink
from models.members import Member, Role, RoleGrant
from models.org import Unit
from models.outbox import OutboxMessage
from models.visits import VisitRun
from services.access import Actor, UnitRef
from services.households import (
    Sheet,
    SheetRow,
    VisitPolicy,
    import_households,
    list_tags,
)
from services.org import import_org
from services.visits import coverage_of, daily_nudges

GRIDS = 50
BUILDINGS_PER_GRID = 40
MEMBERS = 5_000
HUB_GROUP = 10
NOW = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # Monday 08:30 in Shanghai
TAG_MIX = (
    ("特需对象", 0.05),
    ("独居老人", 0.10),
    ("残疾人", 0.05),
    ("低保户", 0.08),
    ("出租户", 0.05),
)
INTERVALS = {"特需对象": 7, "独居老人": 14}


def org_yaml() -> str:
    lines = [
        "units:",
        "  - {code: D1, kind: district, name: 示范区}",
        "  - {code: S1, kind: street, name: 和平街道, parent: D1}",
        "  - {code: C1, kind: community, name: 新德社区, parent: S1}",
    ]
    for grid in range(GRIDS):
        lines.append(f"  - {{code: G{grid}, kind: grid, name: 第{grid}网格, parent: C1}}")
        for building in range(BUILDINGS_PER_GRID):
            code = f"B{grid}-{building}"
            lines.append(f"  - {{code: {code}, kind: building, name: {code}号楼, parent: G{grid}}}")
    return "\n".join(lines) + "\n"


async def prepare(db: Database) -> None:
    """The org and 5,000 volunteers (100 per grid), every tenth a hub member of the next nine."""
    async with db.transaction() as session:
        await import_org(session, org_yaml())
        grids = {
            u.code: u.id
            for u in (await session.execute(select(Unit).where(col(Unit.kind) == "grid"))).scalars()
        }
        members = [
            {
                "telegram_id": 10_000_000 + i,
                "chat_id": 10_000_000 + i,
                "display_name": f"志愿者{i}",
                "locale": "zh_CN" if i % 10 else "en",
                "created_at": NOW,
            }
            for i in range(MEMBERS)
        ]
        result = await session.execute(
            insert(Member).returning(col(Member.id), sort_by_parameter_order=True), members
        )
        ids = list(result.scalars())
        await session.execute(
            insert(RoleGrant),
            [
                {
                    "member_id": member_id,
                    "role": Role.volunteer.value,
                    "unit_id": grids[f"G{i % GRIDS}"],
                    "created_at": NOW,
                }
                for i, member_id in enumerate(ids)
            ],
        )
        links = [
            {"member_id": member_id, "hub_id": ids[i - i % HUB_GROUP], "created_at": NOW}
            for i, member_id in enumerate(ids)
            if i % HUB_GROUP
        ]
        await session.execute(insert(HubLink), links)


def sheet(first: int, count: int, seed: int) -> Sheet:
    """Registry rows as the import reads them (the file parsing itself is not measured)."""
    rng = random.Random(seed)
    per_grid = MEMBERS // GRIDS
    rows = []
    for n in range(first, first + count):
        grid = n % GRIDS
        building = (n // GRIDS) % BUILDINGS_PER_GRID
        tags = [name for name, share in TAG_MIX if rng.random() < share]
        interval = min([INTERVALS.get(t, 90) for t in tags], default=90)
        days_ago = rng.randrange(0, int(interval * 1.33) + 1)
        last = (NOW - timedelta(days=days_ago)).date().isoformat()
        rows.append(
            SheetRow(
                n + 2,
                {
                    "building": f"B{grid}-{building}",
                    "address": f"和平路{n // 1000}弄{n % 1000 // 10}号",
                    "door": f"{n % 10}0{n % 7 + 1}",
                    "tags": "、".join(tags),
                    "contact_name": f"住户{n}",
                    "phone": f"139{n:08d}",
                    "assignee": f"tg:{10_000_000 + grid + GRIDS * rng.randrange(per_grid)}",
                    "last_visit": last,
                },
            )
        )
    columns = {name: name for name in rows[0].cells}
    return Sheet(rows, columns, [])


async def measure(
    db: Database, settings: Settings, community: UnitRef, repeat: int
) -> dict[str, float]:
    policy = VisitPolicy.of(settings)
    compute, compute_cpu, job, job_cpu, cover = [], [], [], [], []
    nudges = []
    for _ in range(repeat):
        async with db.transaction() as session:
            start, cpu = time.perf_counter(), time.process_time()
            nudges = await daily_nudges(session, NOW, policy)
            compute.append(time.perf_counter() - start)
            compute_cpu.append(time.process_time() - cpu)
        async with db.transaction() as session:
            start = time.perf_counter()
            report = await coverage_of(session, community, NOW, policy)
            cover.append(time.perf_counter() - start)
        async with db.transaction() as session:
            await session.execute(delete(OutboxMessage))
            await session.execute(delete(VisitRun))
        start, cpu = time.perf_counter(), time.process_time()
        done = await run_visit_jobs(db, settings, NOW)
        job.append(time.perf_counter() - start)
        job_cpu.append(time.process_time() - cpu)
    sent = {d.kind.value: d.messages for d in done}
    return {
        "due": sum(n.due for n in nudges),
        "nudged": len(nudges),
        "sent": sent.get("nudge", 0),
        "compute": statistics.median(compute),
        "compute_cpu": statistics.median(compute_cpu),
        "job": statistics.median(job),
        "job_cpu": statistics.median(job_cpu),
        "coverage": statistics.median(cover),
        "share": report.counts.share,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="gridbot-bench-"))
    admin_url = args.postgres_url
    name = f"gridbot_bench_{os.getpid()}"
    if args.database == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        import asyncpg

        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        database_url = admin_url.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, database_url)
    settings = Settings(database_url=database_url, _env_file=None)
    db = Database(database_url)
    try:
        print(f"database: {args.database}; preparing the org and {MEMBERS:,} members …")
        await prepare(db)
        async with db.transaction() as session:
            await list_tags(session)
            community = UnitRef.of(
                (await session.execute(select(Unit).where(col(Unit.code) == "C1"))).scalar_one()
            )
        policy = VisitPolicy.of(settings)
        print(
            "| households | due today or overdue | members nudged | compute every nudge | "
            "whole nudge job (+ outbox, commit) | community coverage | import of the batch |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        loaded = 0
        for size in (10_000, 100_000):
            rows = size - loaded
            batch = sheet(loaded, rows, seed=size)
            start = time.perf_counter()
            async with db.transaction() as session:
                report = await import_households(session, Actor.cli(), batch, NOW, policy)
            imported = time.perf_counter() - start
            assert report.created == rows, report.problems[:3]
            loaded = size
            result = await measure(db, settings, community, args.repeat)
            print(
                f"| {size:,} | {int(result['due']):,} | {int(result['nudged']):,} "
                f"| {result['compute']:.2f} s ({result['compute_cpu']:.2f}) "
                f"| {result['job']:.2f} s ({result['job_cpu']:.2f}) "
                f"| {result['coverage']:.2f} s | {imported:.1f} s ({rows:,} rows) |",
                flush=True,
            )
        share = result["share"]
        async with db.transaction() as session:
            await session.execute(update(Household).values(due_at=NOW - timedelta(days=3)))
        result = await measure(db, settings, community, args.repeat)
        print(
            f"| {loaded:,}, all overdue (worst case) | {int(result['due']):,} "
            f"| {int(result['nudged']):,} "
            f"| {result['compute']:.2f} s ({result['compute_cpu']:.2f}) "
            f"| {result['job']:.2f} s ({result['job_cpu']:.2f}) "
            f"| {result['coverage']:.2f} s | — |",
            flush=True,
        )
        print(
            f"coverage share at {loaded:,}: {share:.1%}; medians of {args.repeat} runs; "
            "in brackets: CPU seconds of this process (with SQLite that includes the queries)"
        )
    finally:
        await db.dispose()
        if args.database == "postgresql":
            import asyncpg

            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
