"""Database engines and sessions: SQLite (WAL, busy timeout, BEGIN IMMEDIATE) or PostgreSQL.

With SQLite, transactions run inline in the event loop's thread (``bot/sqlite_driver.py``) and
take turns on an asyncio lock; long read-only work (reports, exports) uses
:meth:`Database.reading`, which runs on a worker thread and never blocks the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.sqlite_driver import inline_connector, threaded_connector

SQLITE_BUSY_TIMEOUT_MS = 30_000


def async_url(url: str) -> str:
    """Turn a user-facing URL (sqlite:///x, postgresql://...) into one for the async driver."""
    for prefix, driver in (
        ("sqlite+aiosqlite:", "sqlite+aiosqlite:"),
        ("sqlite:", "sqlite+aiosqlite:"),
        ("postgresql+asyncpg:", "postgresql+asyncpg:"),
        ("postgresql:", "postgresql+asyncpg:"),
        ("postgres:", "postgresql+asyncpg:"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1] if ":///" in url else ":memory:"


def create_engine(url: str, *, threaded: bool = False, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``; for SQLite, inline unless ``threaded`` (for long reads)."""
    if not is_sqlite(url):
        return create_async_engine(async_url(url), **kwargs)
    connector = threaded_connector if threaded else inline_connector
    engine = create_async_engine(
        async_url(url), async_creator=connector(sqlite_path(url)), **kwargs
    )
    _configure_sqlite(engine, write=not threaded)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, write: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # Inline connections must never wait inside SQLite: that would stop the event loop.
        # Database.transaction() retries a busy BEGIN IMMEDIATE with asyncio.sleep instead.
        cursor.execute(f"PRAGMA busy_timeout={0 if write else SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred BEGIN fails read-then-write transactions with "database is locked"
        # under concurrency; IMMEDIATE takes the write lock up front and waits for it.
        # The reading engine only reads: a deferred BEGIN gives it a snapshot (WAL) without
        # holding up writers.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """The engine plus a session factory; one transaction per unit of work."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._turn = asyncio.Lock() if is_sqlite(url) else None
        self._reader: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction. On SQLite, transactions of this process take turns on a lock, and
        when another process (or another Database on the same file) holds the write lock,
        the BEGIN is retried while the event loop carries on."""
        if self._turn is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._turn:
            session = await self._begin_sqlite()
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()
            finally:
                await session.close()

    async def _begin_sqlite(self) -> AsyncSession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = 0.002
        while True:
            session = self.sessions()
            try:
                await session.begin()
                await session.connection()  # runs BEGIN IMMEDIATE now, not at first use
                return session
            except OperationalError as error:
                await session.close()
                if "locked" not in str(error) or loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only session for long work (reports, exports): on SQLite it runs on a worker
        thread over its own snapshot, so the event loop and the writers carry on meanwhile.
        Never write through it."""
        if self._turn is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        if self._reader is None:
            self._reader = create_engine(self.url, threaded=True)
        async with AsyncSession(self._reader, expire_on_commit=False) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            await self._reader.dispose()
