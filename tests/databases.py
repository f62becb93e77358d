"""Test databases: a migrated SQLite template copied per test, and a throw-away PostgreSQL
database per test run (tables truncated between tests) wherever a server is reachable."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import text

from bot.db import Database
from bot.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "GRIDBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / f"db-{uuid.uuid4().hex[:8]}.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


async def postgres_unreachable_reason() -> str | None:
    try:
        connection = await asyncio.wait_for(asyncpg.connect(POSTGRES_ADMIN_URL), timeout=3)
    except Exception as error:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}"
    await connection.close()
    return None


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_postgres_database() -> str:
    name = f"gridbot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = _with_database(POSTGRES_ADMIN_URL, name)
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def truncate_all(url: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            tables = (
                await session.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            names = ", ".join(f'"{t}"' for t in tables)
            if names:
                await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()
