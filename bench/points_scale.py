"""/points and /rank for a community as the ledger grows: 20,000 members of one community,
measured at 100,000 and at 1,000,000 ledger entries, in one run.

Members, grants, entries, balances and ranking tallies are bulk-loaded with the database
driver (the service would take hours to append a million entries one by one); they are the
same rows the services write (``award`` entries over 2026, a few store debits, balances and
tallies summed from them). Then, for 50 members picked at random, it times

* the service calls behind the commands (``points.summary``; ``points.ranking`` for the
  community this year), and
* the whole update through the application (``/points``, ``/rank``: update bookkeeping, the
  queries, the reply written to the outbox and handed to an in-memory transport),

and prints the median and 95th percentile in milliseconds, and how they grew.

Usage: .venv/bin/python bench/points_scale.py [--database sqlite|postgresql]
       [--members 20000] [--entries 1000000] [--first 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg

from bot.app import App
from bot.db import Database
from bot.migrate import upgrade
from bot.settings import Settings
from services import points
from services.demo import seed_demo
from services.org import unit_by_code
from tests.fakes import FakeTransport
from tests.harness import Clock, Harness, User

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
YEAR_START = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Shanghai
FIRST_TELEGRAM_ID = 10_000_000
SAMPLES = 50
WARM_UP = 10
"""Untimed rounds first, so that a cold page cache right after loading does not count."""
AWARDS = (
    ("wish_fulfilled", 10, "wish"),
    ("visit_done", 2, "visit"),
    ("meeting_attended", 3, "meeting"),
    ("task_completed", 5, "task"),
)
LEDGER_COLUMNS = (
    "id", "member_id", "points", "kind", "rule_id", "rule_code", "source", "source_id", "at",
    "note", "community_id", "grid_id", "dedupe_key",
)  # fmt: skip


class Loader:
    """Bulk rows through the raw driver: sqlite3 executemany or asyncpg COPY."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    async def rows(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            path = self.url.split(":///", 1)[1]
            connection = sqlite3.connect(path)
            try:
                marks = ", ".join("?" for _ in columns)
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(_sqlite(v) for v in row) for row in rows],
                )
                connection.commit()
            finally:
                connection.close()
            return
        connection = await asyncpg.connect(self.url)
        try:
            await connection.copy_records_to_table(table, records=rows, columns=list(columns))
        finally:
            await connection.close()

    async def sql(self, statement: str) -> None:
        if self.sqlite:
            connection = sqlite3.connect(self.url.split(":///", 1)[1])
            try:
                connection.executescript(statement)
            finally:
                connection.close()
            return
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class Ledger:
    """Generates entries in time order and keeps balances and tallies as the services do."""

    def __init__(
        self, members: list[tuple[int, int, int]], rule_ids: dict[str, int], seed: int = 7
    ) -> None:
        self.members = members  # (member id, grid id, community id)
        self.rule_ids = rule_ids
        self.random = random.Random(seed)
        self.count = 0
        self.balance: dict[int, int] = {}
        self.tallies: dict[tuple[int, str], tuple[int, datetime]] = {}

    def entries(self, upto: int, total: int) -> Iterator[tuple[Any, ...]]:
        span = (NOW - YEAR_START).total_seconds()
        while self.count < upto:
            self.count += 1
            at = YEAR_START + timedelta(seconds=span * self.count / (total + 1))
            member, grid, community = self.members[self.random.randrange(len(self.members))]
            balance = self.balance.get(member, 0)
            if balance >= 20 and self.random.random() < 0.05:
                points_, kind, code, source = -20, "redemption", None, "store"
            else:
                code, points_, source = AWARDS[self.random.randrange(len(AWARDS))]
                kind = "award"
                local = at.astimezone(points.DEFAULT_ZONE)
                for period in (f"{local.year}", f"{local.year}-{local.month:02d}"):
                    total_, _ = self.tallies.get((member, period), (0, at))
                    self.tallies[(member, period)] = (total_ + points_, at)
            self.balance[member] = balance + points_
            rule_id = self.rule_ids.get(code or "")
            yield (
                self.count, member, points_, kind, rule_id, code, source, self.count, at, "",
                community, grid, f"bench:{self.count}",
            )  # fmt: skip


async def prepare(url: str, members: int) -> tuple[list[tuple[int, int, int]], dict[str, int]]:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await seed_demo(session, NOW)
            grids = [await unit_by_code(session, code) for code in ("G1", "G2")]
            community = await unit_by_code(session, "C1")
            rules = await points.effective_rules(session, ())
    finally:
        await db.dispose()
    loader = Loader(url)
    people = [
        (i, FIRST_TELEGRAM_ID + i, FIRST_TELEGRAM_ID + i, f"志愿者{i}", "zh_CN", NOW)
        for i in range(1, members + 1)
    ]
    await loader.rows(
        "members", ("id", "telegram_id", "chat_id", "display_name", "locale", "created_at"), people
    )
    grants = [(i, i, "volunteer", grids[i % 2].id, NOW) for i in range(1, members + 1)]
    await loader.rows("role_grants", ("id", "member_id", "role", "unit_id", "created_at"), grants)
    if not loader.sqlite:
        await loader.sql(
            f"SELECT setval('members_id_seq', {members}); "
            f"SELECT setval('role_grants_id_seq', {members});"
        )
    homes = [(i, grids[i % 2].id, community.id) for i in range(1, members + 1)]
    return homes, {rule.code: rule.id for rule in rules}


async def load(loader: Loader, ledger: Ledger, upto: int, total: int) -> None:
    batch: list[tuple[Any, ...]] = []
    for entry in ledger.entries(upto, total):
        batch.append(entry)
        if len(batch) == 50_000:
            await loader.rows("points_ledger", LEDGER_COLUMNS, batch)
            batch = []
    if batch:
        await loader.rows("points_ledger", LEDGER_COLUMNS, batch)
    await loader.sql("DELETE FROM points_accounts; DELETE FROM points_tallies;")
    await loader.rows(
        "points_accounts",
        ("member_id", "balance", "updated_at"),
        [(m, b, NOW) for m, b in ledger.balance.items()],
    )
    homes = {m: (g, c) for m, g, c in ledger.members}
    await loader.rows(
        "points_tallies",
        ("member_id", "period", "community_id", "grid_id", "points", "reached_at"),
        [
            (m, period, homes[m][1], homes[m][0], total_, at)
            for (m, period), (total_, at) in ledger.tallies.items()
        ],
    )
    sequence = f"SELECT setval('points_ledger_id_seq', {ledger.count});"
    if loader.sqlite:
        await loader.sql("ANALYZE;")
    else:  # the state autovacuum reaches soon after a bulk load: statistics, visibility map
        await loader.sql(sequence)
        await loader.sql("VACUUM ANALYZE;")


class Site:
    """One loaded database with the application in front of it."""

    def __init__(self, url: str, size: int, members: int) -> None:
        self.url, self.size = url, size
        self.db = Database(url)
        transport = FakeTransport()
        settings = Settings(database_url=url, _env_file=None)
        app = App(settings, self.db, transport, transport.identity, clock=Clock(NOW))
        app.courier.per_chat_interval = 0
        self.harness = Harness(app, transport, Clock(NOW))
        picker = random.Random(11)
        self.people = [picker.randrange(1, members + 1) for _ in range(SAMPLES + WARM_UP)]
        self.turn = 0
        self.board: Any = None

    def member(self) -> int:
        self.turn += 1
        return self.people[self.turn % len(self.people)]

    async def summary(self) -> None:
        async with self.db.transaction() as session:
            await points.summary(session, self.member(), NOW)

    async def ranking(self) -> None:
        async with self.db.transaction() as session:
            community = await unit_by_code(session, "C1")
            await points.ranking(session, unit=community, period="2026", member_id=self.member())

    async def command(self, text: str) -> None:
        member = self.member()
        replies = await self.harness.send(User(FIRST_TELEGRAM_ID + member, f"V{member}"), text)
        assert replies, f"no answer to {text}"

    async def community_button(self) -> None:
        owner = User(FIRST_TELEGRAM_ID + self.people[0], "V")
        if self.board is None:
            self.board = (await self.harness.send(owner, "/rank"))[0]
        await self.harness.press(owner, "rk:c:y", self.board)


OPERATIONS: dict[str, Callable[[Site], Awaitable[None]]] = {
    "points.summary (service)": Site.summary,
    "points.ranking, community (service)": Site.ranking,
    "/points (whole update)": lambda site: site.command("/points"),
    "/rank (whole update)": lambda site: site.command("/rank"),
    "/rank → community button": Site.community_button,
}


def _stats(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def measure(small: Site, large: Site) -> None:
    """Each operation alternately on both sizes, so that a busy machine slows both alike."""
    print(
        f"{'':38}{small.size:>10,} entries       {large.size:>10,} entries     growth"
        "\n"
        f"{'':38}{'median':>10} {'p95':>8} ms   {'median':>10} {'p95':>8} ms   (median)"
    )
    for name, operation in OPERATIONS.items():
        for _ in range(WARM_UP):
            await operation(small)
            await operation(large)
        samples: dict[int, list[float]] = {small.size: [], large.size: []}
        for round_ in range(SAMPLES):
            for site in (small, large) if round_ % 2 == 0 else (large, small):
                start = time.perf_counter()
                await operation(site)
                samples[site.size].append((time.perf_counter() - start) * 1000)
        (a, a95), (b, b95) = _stats(samples[small.size]), _stats(samples[large.size])
        print(f"  {name:36}{a:10.2f} {a95:8.2f}      {b:10.2f} {b95:8.2f}      x{b / a:4.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--first", type=int, default=100_000)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="points-bench-")
    names = [f"gridbot_bench_{os.getpid()}_{size}" for size in (args.first, args.entries)]
    urls = []
    for name in names:
        if args.database == "sqlite":
            urls.append(f"sqlite:///{scratch}/{name}.sqlite3")
        else:
            admin = await asyncpg.connect(args.postgres_url)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            urls.append(args.postgres_url.rsplit("/", 1)[0] + "/" + name)
    sites: list[Site] = []
    try:
        started = time.perf_counter()
        for url, size in zip(urls, (args.first, args.entries), strict=True):
            load_start = time.perf_counter()
            homes, rule_ids = await prepare(url, args.members)
            await load(Loader(url), Ledger(homes, rule_ids), size, size)
            print(
                f"{args.database}: {size:,} ledger entries over {args.members:,} members of one "
                f"community loaded in {time.perf_counter() - load_start:.0f} s"
            )
            sites.append(Site(url, size, args.members))
        await measure(sites[0], sites[1])
        print(f"total {time.perf_counter() - started:.0f} s")
    finally:
        for site in sites:
            await site.db.dispose()
        if args.database == "postgresql":
            admin = await asyncpg.connect(args.postgres_url)
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        else:
            for url in urls:
                path = Path(url.split(":///", 1)[1])
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
