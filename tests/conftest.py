"""Shared fixtures. Every database test runs on SQLite and on PostgreSQL; the PostgreSQL run is
skipped, with the reason printed in the summary, where no server is reachable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import App
from bot.db import Database
from bot.settings import Settings
from models.base import utcnow
from services.demo import seed_demo
from tests import databases
from tests.fakes import FakeTransport
from tests.harness import Clock, Harness, User


@pytest.fixture(scope="session")
def sqlite_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """The URL of a fresh, migrated PostgreSQL database for this run, or None."""
    reason = asyncio.run(databases.postgres_unreachable_reason())
    if reason is not None:
        pytest.postgres_skip_reason = reason  # type: ignore[attr-defined]
        yield None
        return
    url = asyncio.run(databases.create_postgres_database())
    yield url
    asyncio.run(databases.drop_postgres_database(url))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template_path: Path) -> str:
    if request.param == "sqlite":
        return databases.sqlite_copy(sqlite_template_path, tmp_path)
    url: str | None = request.getfixturevalue("postgres_server")
    if url is None:
        pytest.skip(getattr(pytest, "postgres_skip_reason", "PostgreSQL not reachable"))
    asyncio.run(databases.truncate_all(url))
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def demo_db(db: Database) -> Database:
    """The demo org (D1 > S1 > C1, C2 > G1, G2, G3 > B1…B4) and one open invite per role."""
    async with db.transaction() as session:
        await seed_demo(session, utcnow())
    return db


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
async def harness(
    settings: Settings, demo_db: Database, transport: FakeTransport, clock: Clock
) -> Harness:
    app = App(settings, demo_db, transport, transport.identity, clock=clock)
    return Harness(app, transport, clock)


RESIDENT = User(2001, "王阿姨")
VOLUNTEER = User(2002, "李明")
GRID_WORKER = User(2003, "张伟")
COORDINATOR = User(2004, "陈静")
ALICE = User(2005, "Alice", language_code="en")
STRANGER = User(2099, "路人")


@pytest.fixture
def users() -> dict[str, User]:
    return {
        "resident": RESIDENT,
        "volunteer": VOLUNTEER,
        "grid_worker": GRID_WORKER,
        "coordinator": COORDINATOR,
        "alice": ALICE,
        "stranger": STRANGER,
    }
