"""Two grid workers press "accept" at the same moment, in two real transactions on two
connections: exactly one wins, the other is told, and there is one acceptance on record."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.db import Database
from models.issues import EventKind
from services import issues
from services.access import Actor
from services.errors import Conflict
from tests.issues_world import MONDAY_10AM, POLICY, World, build_world

NOW = MONDAY_10AM


async def accept(
    db: Database,
    actor: Actor,
    issue_id: int,
    inside: asyncio.Event | None = None,
    hold: asyncio.Event | None = None,
) -> str:
    try:
        async with db.transaction() as session:
            await issues.accept(session, actor, issue_id, NOW, POLICY)
            if inside is not None:
                inside.set()
            if hold is not None:
                await hold.wait()
    except Conflict as conflict:
        return conflict.key
    return "accepted"


async def waiting_on_a_lock(db: Database) -> bool:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        return bool(found.scalar_one())


async def until_waiting_on_a_lock(db: Database) -> None:
    for _ in range(1000):
        if await waiting_on_a_lock(db):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second transaction never waited for the first")


async def test_two_grid_workers_accept_at_once_and_exactly_one_wins(
    demo_db: Database, database_url: str
) -> None:
    world: World = await build_world(demo_db, ("resident", "worker", "worker2"))
    view = await world.report()
    first_db, second_db = Database(database_url), Database(database_url)
    try:
        inside, hold = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(accept(first_db, world["worker"], view.id, inside, hold))
        await inside.wait()
        second = asyncio.create_task(accept(second_db, world["worker2"], view.id))
        if database_url.startswith("postgresql"):
            await until_waiting_on_a_lock(demo_db)
        else:
            await asyncio.sleep(0.3)  # the second transaction waits for SQLite's write lock
        assert not second.done(), "the second accept waits for the first transaction"
        hold.set()
        outcomes = await asyncio.gather(first, second)
    finally:
        await first_db.dispose()
        await second_db.dispose()
    assert list(outcomes) == ["accepted", "issues.already_accepted"]
    accepted = [e for e in await world.events(view.id) if e.kind == EventKind.accepted]
    assert [e.actor_id for e in accepted] == [world.id("worker")]
    resident_told = await world.told("resident")
    assert sum("已受理" in text for text in resident_told) == 1


@pytest.mark.parametrize("rounds", [5])
async def test_many_simultaneous_accepts_leave_one_acceptance(
    demo_db: Database, database_url: str, rounds: int
) -> None:
    world = await build_world(demo_db, ("resident", "worker", "worker2", "leader"))
    databases = [Database(database_url) for _ in range(3)]
    try:
        for _ in range(rounds):
            view = await world.report()
            outcomes = await asyncio.gather(
                *(
                    accept(db, world[who], view.id)
                    for db, who in zip(databases, ("worker", "worker2", "leader"), strict=True)
                )
            )
            assert sorted(outcomes) == [
                "accepted",
                "issues.already_accepted",
                "issues.already_accepted",
            ]
    finally:
        for db in databases:
            await db.dispose()
