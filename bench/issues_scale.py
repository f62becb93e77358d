"""Issues at city scale: 100,000 issues across 200 grids. Times the escalation tick (the job
that acts on due deadlines) and /queue for one grid at 10,000 issues and again at 100,000, and
prints how each grows (it should stay flat: indexed queries, work proportional to what is due).

The 10,000 and the 100,000 are two databases built from the same seed (the first 10,000
issues alike), measured in turns so that the noise of a shared machine hits both alike.

Usage: .venv/bin/python bench/issues_scale.py [--database sqlite|postgresql] [--due 50]
       [--rounds 5] [--repeat 40]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select
from sqlmodel import col

from bot.app import App
from bot.db import Database
from bot.migrate import upgrade
from bot.runtime.incoming import incoming_from_update
from bot.settings import Settings
from jobs.issues import issue_deadlines
from models.issues import (
    Issue,
    IssueCategory,
    IssueEvent,
    IssueTimer,
)
from models.members import Member, Role, RoleGrant
from models.org import Unit
from services.access import Actor, load_actor
from services.issues import IssuePolicy, NewReport, create_report, ensure_default_categories, queue
from services.org import import_org
from tests import databases
from tests.fakes import FakeTransport

GRIDS = 200
GRIDS_PER_COMMUNITY = 10
SMALL, LARGE = 10_000, 100_000
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 on a Monday in Shanghai
CHUNK = 5_000
LIVE = 2_000
"""Issues in hand (open, or resolved and waiting for a rating): 10 per grid."""
UPDATE_IDS = itertools.count(10**9)


def org_yaml() -> str:
    lines = ["units:", "  - {code: D1, kind: district, name: 区}"]
    for street in range(2):
        lines.append(f"  - {{code: S{street}, kind: street, name: 街道{street}, parent: D1}}")
    for grid in range(GRIDS):
        community = grid // GRIDS_PER_COMMUNITY
        street = community % 2
        if grid % GRIDS_PER_COMMUNITY == 0:
            lines.append(
                f"  - {{code: C{community}, kind: community, name: 社区{community}, "
                f"parent: S{street}}}"
            )
        lat, lon = 31.0 + grid * 0.01, 121.0 + grid * 0.01
        lines.append(
            f"  - {{code: G{grid}, kind: grid, name: 网格{grid}, parent: C{community}, "
            f"lat: {lat:.4f}, lon: {lon:.4f}}}"
        )
        lines.append(f"  - {{code: B{grid}, kind: building, name: 楼{grid}, parent: G{grid}}}")
    return "\n".join(lines) + "\n"


class World:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.grids: list[tuple[int, int, int]] = []  # (grid id, community id, building id)
        self.workers: list[int] = []
        self.residents: list[int] = []
        self.categories: list[int] = []
        self.created = 0
        self.numbers = 0


async def build_world(db: Database) -> World:
    world = World(db)
    async with db.transaction() as session:
        await import_org(session, org_yaml())
        await ensure_default_categories(session, NOW)
        units = {u.code: u for u in (await session.execute(select(Unit))).scalars()}
        categories = (await session.execute(select(col(IssueCategory.id)))).scalars()
        world.categories = [c for c in categories if c is not None]
        members: list[dict[str, Any]] = []
        for grid in range(GRIDS):
            for kind in ("worker", "resident"):
                telegram_id = 10_000 + grid * 2 + (kind == "resident")
                members.append(
                    {
                        "telegram_id": telegram_id,
                        "chat_id": telegram_id,
                        "display_name": f"{kind}{grid}",
                        "locale": "zh_CN",
                        "created_at": NOW,
                    }
                )
        for community in range(GRIDS // GRIDS_PER_COMMUNITY):
            members.append(
                {
                    "telegram_id": 90_000 + community,
                    "chat_id": 90_000 + community,
                    "display_name": f"coordinator{community}",
                    "locale": "zh_CN",
                    "created_at": NOW,
                }
            )
        await session.execute(insert(Member), members)
        ids = {m.telegram_id: m.id or 0 for m in (await session.execute(select(Member))).scalars()}
        grants = []
        for grid in range(GRIDS):
            g, b = units[f"G{grid}"], units[f"B{grid}"]
            c = units[f"C{grid // GRIDS_PER_COMMUNITY}"]
            assert g.id
            assert b.id
            assert c.id
            world.grids.append((g.id, c.id, b.id))
            worker, resident = ids[10_000 + grid * 2], ids[10_000 + grid * 2 + 1]
            assert worker
            assert resident
            world.workers.append(worker)
            world.residents.append(resident)
            grants.append({"member_id": worker, "role": Role.grid_worker.value, "unit_id": g.id})
            grants.append({"member_id": resident, "role": Role.resident.value, "unit_id": b.id})
        for community in range(GRIDS // GRIDS_PER_COMMUNITY):
            unit = units[f"C{community}"]
            grants.append(
                {
                    "member_id": ids[90_000 + community],
                    "role": Role.coordinator.value,
                    "unit_id": unit.id,
                }
            )
        await session.execute(insert(RoleGrant), [{**g, "created_at": NOW} for g in grants])
    return world


async def add_history(world: World, count: int, rng: random.Random, *, live: int = 0) -> None:
    """``count`` issues spread over the grids: ``live`` of them open (deadlines in the future)
    or resolved and waiting for a rating, the rest closed at some time in the past year; each
    with its events and deadline rows, as the running system leaves them. Growing from 10k to
    100k adds only history: the work in hand stays the same, as it does in a real city."""
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        issue_rows: list[dict[str, Any]] = []
        for index in range(start, start + size):
            world.created += 1
            grid_index = rng.randrange(GRIDS)
            grid, community, building = world.grids[grid_index]
            created = NOW - timedelta(minutes=rng.randrange(60, 365 * 24 * 60))
            due: datetime | None
            if index >= live:
                status, due, kind = "closed", None, None
            elif index % 3 == 0:
                status, due, kind = "resolved", NOW + timedelta(days=rng.randrange(1, 7)), "rating"
            else:
                status = rng.choice(["accepted", "assigned", "in_progress"])
                due, kind = NOW + timedelta(hours=rng.randrange(-24, 72)), "handling"
                created = NOW - timedelta(hours=rng.randrange(1, 48))
            resolved = created + timedelta(hours=rng.randrange(1, 72))
            issue_rows.append(
                {
                    "number": f"H{world.created:07d}",
                    "community_id": community,
                    "grid_id": grid,
                    "building_id": building,
                    "category_id": rng.choice(world.categories),
                    "priority": "normal",
                    "status": status,
                    "tier": "grid",
                    "description": "楼道堆放杂物，影响通行" * rng.randrange(1, 4),
                    "anonymous": False,
                    "reported_by": world.residents[grid_index],
                    "reporter_id": world.residents[grid_index],
                    "assignee_id": world.workers[grid_index],
                    "due_at": due,
                    "due_kind": kind,
                    "deadline_seq": 3,
                    "cycle": 0,
                    "accepted_at": created + timedelta(minutes=5),
                    "resolved_at": resolved if status in ("closed", "resolved") else None,
                    "closed_at": resolved if status == "closed" else None,
                    "rating": "satisfied" if status == "closed" else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        async with world.db.transaction() as session:
            inserted = await session.execute(
                insert(Issue).returning(
                    col(Issue.id), col(Issue.status), col(Issue.due_at), col(Issue.created_at)
                ),
                issue_rows,
            )
            events, timers = [], []
            for issue_id, status, due, created in inserted.all():
                for kind in ("reported", "accepted", "assigned", "resolved"):
                    events.append(
                        {"issue_id": issue_id, "kind": kind, "at": created, "to_status": status}
                    )
                for seq, timer_kind in ((1, "response_breach"), (2, "handling_breach")):
                    timers.append(
                        {
                            "issue_id": issue_id,
                            "kind": timer_kind,
                            "seq": seq,
                            "due_at": created + timedelta(minutes=10 * seq),
                            "status": "obsolete",
                            "key": f"{issue_id}:{seq}:{timer_kind}",
                            "done_at": created,
                        }
                    )
                if due is not None:
                    # Overdue ones were acted on already (done); the others are pending.
                    timers.append(
                        {
                            "issue_id": issue_id,
                            "kind": "handling_breach",
                            "seq": 3,
                            "due_at": due,
                            "status": "done" if due <= NOW else "pending",
                            "key": f"{issue_id}:3:handling_breach",
                            "done_at": due if due <= NOW else None,
                        }
                    )
            await session.execute(insert(IssueEvent), events)
            await session.execute(insert(IssueTimer), timers)


async def add_due(world: World, count: int, rng: random.Random, policy: IssuePolicy) -> None:
    """``count`` fresh reports nobody accepted: their response deadlines have passed."""
    reported = NOW - timedelta(minutes=15)
    for _ in range(count):
        grid_index = rng.randrange(GRIDS)
        async with world.db.transaction() as session:
            actor = await load_actor(session, world.residents[grid_index])
            await create_report(
                session,
                actor,
                NewReport(category="parking", description="消防通道被堵"),
                reported,
                policy,
            )


Probe = Callable[[], Awaitable[Any]]


async def alternate(pairs: dict[str, tuple[Probe, Probe]], repeat: int) -> dict[str, list[float]]:
    """Median seconds of each probe on the small and the large database, measured in turns
    (small, large, large, small, …) so that a busy moment of the machine hits both alike."""
    samples: dict[str, list[list[float]]] = {name: [[], []] for name in pairs}
    for probes in pairs.values():
        for probe in probes:
            await probe()  # warm-up
    for round_ in range(repeat):
        for name, probes in pairs.items():
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for side in order:
                started = time.perf_counter()
                await probes[side]()
                samples[name][side].append(time.perf_counter() - started)
    return {name: [statistics.median(side) for side in sides] for name, sides in samples.items()}


class Side:
    """One database with its world and an App to answer /queue."""

    def __init__(self, world: World, app: App) -> None:
        self.world = world
        self.app = app
        self.actor: Actor | None = None

    async def queue(self, tab: str) -> None:
        if self.actor is None:
            async with self.world.db.transaction() as session:
                self.actor = await load_actor(session, self.world.workers[0])
        async with self.world.db.transaction() as session:
            await queue(session, self.actor, tab, NOW)

    async def slash_queue(self) -> None:
        telegram_id = 10_000  # the grid worker of the first grid
        update = {
            "update_id": next(UPDATE_IDS),
            "message": {
                "message_id": 1,
                "date": 0,
                "from": {"id": telegram_id, "is_bot": False, "first_name": "w"},
                "chat": {"id": telegram_id, "type": "private"},
                "text": "/queue",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        incoming = incoming_from_update(update, "bench_bot", NOW)
        assert incoming is not None
        handled = await self.app.handle(incoming)
        assert handled.rows, "the queue was answered"

    async def idle_tick(self, policy: IssuePolicy) -> None:
        assert await issue_deadlines(self.world.db, policy, NOW) == []


async def prepare(url: str, count: int, label: str) -> Side:
    db = Database(url)
    world = await build_world(db)
    started = time.perf_counter()
    await add_history(world, count, random.Random(20261123), live=LIVE)
    print(
        f"  {label}: {count:,} issues ({LIVE:,} in hand) written in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    transport = FakeTransport()
    settings = Settings(database_url=url, _env_file=None)
    return Side(world, App(settings, db, transport, transport.identity, clock=lambda: NOW))


async def run(database: str, due: int, rounds: int, repeat: int) -> None:
    policy = IssuePolicy()
    urls: list[str] = []
    sides: list[Side] = []
    with tempfile.TemporaryDirectory() as directory:
        try:
            print(f"database: {database}; 200 grids in 20 communities", flush=True)
            for count, label in ((SMALL, "small"), (LARGE, "large")):
                if database == "sqlite":
                    url = f"sqlite:///{directory}/{label}.sqlite3"
                    await asyncio.to_thread(upgrade, url)
                else:
                    url = await databases.create_postgres_database()
                urls.append(url)
                sides.append(await prepare(url, count, label))
            small, large = sides
            probes: dict[str, tuple[Probe, Probe]] = {
                f"queue() '{tab}' for one grid": (
                    functools.partial(small.queue, tab),
                    functools.partial(large.queue, tab),
                )
                for tab in ("new", "mine", "overdue")
            }
            probes["/queue update for one grid (whole App)"] = (
                small.slash_queue,
                large.slash_queue,
            )
            probes["escalation tick, nothing due"] = (
                functools.partial(small.idle_tick, policy),
                functools.partial(large.idle_tick, policy),
            )
            results = await alternate(probes, repeat)

            ticks: list[list[float]] = [[], []]
            rng = random.Random(7)
            for round_ in range(rounds):
                for side in sides:
                    await add_due(side.world, due, rng, policy)
                for index in (0, 1) if round_ % 2 == 0 else (1, 0):
                    started = time.perf_counter()
                    outcomes = await issue_deadlines(sides[index].world.db, policy, NOW)
                    ticks[index].append(time.perf_counter() - started)
                    breaches = sum(1 for o in outcomes if o.kind.value == "response_breach")
                    assert breaches == due, f"expected {due} escalations, got {breaches}"
            results[f"escalation tick, {due} breaches due"] = [statistics.median(t) for t in ticks]
        finally:
            for side in sides:
                await side.world.db.dispose()
            if database == "postgresql":
                for url in urls:
                    await databases.drop_postgres_database(url)

    print()
    print(f"| {database} | 10,000 issues | 100,000 issues | growth |")
    print("|---|---|---|---|")
    for name, (at_small, at_large) in results.items():
        print(
            f"| {name} | {at_small * 1000:.1f} ms | {at_large * 1000:.1f} ms | "
            f"×{at_large / at_small:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--due", type=int, default=50, help="breaches due per tick")
    parser.add_argument("--rounds", type=int, default=5, help="ticks with breaches per database")
    parser.add_argument("--repeat", type=int, default=40, help="samples of each query")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.database, arguments.due, arguments.rounds, arguments.repeat))


if __name__ == "__main__":
    main()
