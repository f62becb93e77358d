"""Two ways to run SQLite under SQLAlchemy's asyncio layer, both looking like aiosqlite to it.

* **Inline** (the default for transactions): statements run right in the event loop's thread.
  A statement on a local WAL database takes tens of microseconds, far less than a round trip
  to a worker thread, and the bot holds one write transaction at a time anyway. What must not
  run inline is a long read (a report over 100,000 rows): use ``Database.reading()``.
* **Threaded** (for long reads): aiosqlite's worker thread, but one trip per statement.
  SQLAlchemy's aiosqlite adapter otherwise makes four to five trips (create the cursor, enter
  it, execute, fetch, close), each a thread switch plus an event-loop wake-up.

Results are fetched whole in both cases, as the non-streaming adapter does anyway.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import aiosqlite

Row = tuple[Any, ...]


class _Runner(Protocol):
    """What a cursor needs from its connection: the sqlite3 connection, and a way to run a
    function against it (in aiosqlite's thread, or right away)."""

    @property
    def _conn(self) -> sqlite3.Connection: ...

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


class OneTripCursor:
    """Executes and fetches in one call to the runner."""

    arraysize = 1

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner
        self._rows: deque[Row] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        database = self._runner._conn

        def run() -> tuple[Any, list[Row], int, int | None]:
            cursor = database.cursor()
            try:
                cursor.execute(sql, parameters if parameters is not None else ())
                description = cursor.description
                rows = cursor.fetchall() if description else []
                return description, rows, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        outcome = await self._runner._execute(run)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        database = self._runner._conn
        batch = list(parameters)

        def run() -> int:
            cursor = database.cursor()
            try:
                cursor.executemany(sql, batch)
                return cursor.rowcount
            finally:
                cursor.close()

        self.rowcount = await self._runner._execute(run)
        self.description = None
        self._rows = deque()
        return self

    async def fetchone(self) -> Row | None:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Row]:
        count = size or self.arraysize
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    async def fetchall(self) -> Sequence[Row]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class _NewCursor:
    """What ``connection.cursor()`` returns: the adapter enters it, at no cost."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner

    async def __aenter__(self) -> OneTripCursor:
        return OneTripCursor(self._runner)

    async def __aexit__(self, *exc: object) -> None:
        return None


class ThreadedConnection:
    """An aiosqlite connection whose cursors make one trip to its thread per statement."""

    def __init__(self, inner: aiosqlite.Connection) -> None:
        self._inner = inner

    def cursor(self) -> _NewCursor:
        return _NewCursor(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RunNow:
    """Stands in for aiosqlite's request queue (SQLAlchemy uses it to set the isolation
    level): the function runs at once and settles the future."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineConnection:
    """The aiosqlite surface SQLAlchemy uses, over a plain sqlite3 connection."""

    def __init__(self, path: str) -> None:
        self._connection: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        self._tx = _RunNow()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def cursor(self) -> _NewCursor:
        return _NewCursor(self)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def stop(self) -> None:
        return None


def inline_connector(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: statements run in the loop's thread."""

    async def connect() -> InlineConnection:
        return InlineConnection(path)

    return connect


def threaded_connector(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: statements run on aiosqlite's thread."""

    async def connect() -> ThreadedConnection:
        pending = aiosqlite.connect(path, check_same_thread=False)
        pending._thread.daemon = True
        return ThreadedConnection(await pending)

    return connect
