"""The SQLite set-up: WAL and foreign keys on every connection, long reads off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from bot.db import Database


@pytest.fixture
def sqlite_db(tmp_path: object) -> Database:
    return Database(f"sqlite:///{tmp_path}/pragmas.sqlite3")


async def test_every_sqlite_connection_has_wal_and_foreign_keys(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as session:
        journal = (await session.execute(text("PRAGMA journal_mode"))).scalar()
        keys = (await session.execute(text("PRAGMA foreign_keys"))).scalar()
        busy = (await session.execute(text("PRAGMA busy_timeout"))).scalar()
    async with sqlite_db.reading() as session:
        reader_busy = (await session.execute(text("PRAGMA busy_timeout"))).scalar()
    await sqlite_db.dispose()
    assert (journal, keys) == ("wal", 1)
    assert busy == 0, "inline connections never wait inside SQLite"
    assert reader_busy == 30_000


async def test_waiting_for_another_writer_does_not_stop_the_event_loop(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/two.sqlite3"
    first, second = Database(url), Database(url)
    async with first.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with first.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            await release.wait()

    async def write_after() -> None:
        async with second.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))

    holder = asyncio.create_task(hold_the_write_lock())
    await held.wait()
    waiter = asyncio.create_task(write_after())
    await asyncio.sleep(0.2)  # the loop runs on while the second writer waits its turn
    assert not waiter.done(), "the second writer waits for the first"
    release.set()
    await asyncio.gather(holder, waiter)
    async with second.reading() as session:
        rows = (await session.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
    await first.dispose()
    await second.dispose()
    assert list(rows) == [1, 2]


async def test_long_reads_run_off_the_event_loop_thread(sqlite_db: Database) -> None:
    seen: list[str] = []

    def where(_: object) -> int:
        seen.append(threading.current_thread().name)
        return 1

    async with sqlite_db.reading() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        await raw.driver_connection.create_function("where_am_i", 1, where)
        await session.execute(text("SELECT where_am_i(1)"))
    async with sqlite_db.transaction() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        await raw.driver_connection.create_function("where_am_i", 1, where)
        await session.execute(text("SELECT where_am_i(1)"))
    await sqlite_db.dispose()
    main = threading.current_thread().name
    assert seen[0] != main, "the reading session ran on aiosqlite's worker thread"
    assert seen[1] == main, "write transactions run inline"


async def test_transactions_of_one_process_take_turns(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as session:
        await session.execute(text("CREATE TABLE counter (n INTEGER)"))
        await session.execute(text("INSERT INTO counter VALUES (0)"))

    async def bump() -> None:
        async with sqlite_db.transaction() as session:
            value = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
            await asyncio.sleep(0)
            await session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})

    await asyncio.gather(*(bump() for _ in range(50)))
    async with sqlite_db.reading() as session:
        final = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
    await sqlite_db.dispose()
    assert final == 50, "read-then-write transactions never lose an update"
