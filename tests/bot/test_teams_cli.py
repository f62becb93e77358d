"""`gridbot teams`: create a team and add members from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.db import Database
from models.base import utcnow
from services.demo import seed_demo
from tests import databases
from tests.services.broadcast_fixtures import make_people


async def _world(url: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            await seed_demo(session, utcnow())
        await make_people(db)
    finally:
        await db.dispose()


def test_an_admin_creates_a_team_and_adds_members_from_the_command_line(
    sqlite_template_path: Path, tmp_path: Path
) -> None:
    url = databases.sqlite_copy(sqlite_template_path, tmp_path)
    asyncio.run(_world(url))
    env = {"GRIDBOT_DATABASE_URL": url, "GRIDBOT_DEFAULT_LOCALE": "en"}
    runner = CliRunner()
    created = runner.invoke(
        app, ["teams", "create", "G1", "Night patrol", "tg:4005", "tg:4006"], env=env
    )
    assert created.exit_code == 0, created.output
    assert "Team #1 “Night patrol” (G1), members: 2." in created.output
    again = runner.invoke(app, ["teams", "create", "G1", "night PATROL"], env=env)
    assert again.exit_code == 2
    assert "G1 already has a team called “night PATROL”" in again.output
    outside = runner.invoke(app, ["teams", "add", "1", "tg:4007"], env=env)
    assert outside.exit_code == 2
    assert "is not a member of G1" in outside.output
    unknown = runner.invoke(app, ["teams", "add", "1", "#999"], env=env)
    assert unknown.exit_code == 2
    assert "#999" in unknown.output
    removed = runner.invoke(app, ["teams", "add", "1", "tg:4006", "--remove"], env=env)
    assert removed.exit_code == 0, removed.output
    assert "(G1), members: 1." in removed.output
    building = runner.invoke(app, ["teams", "create", "B1", "Stairs"], env=env)
    assert building.exit_code == 2
    assert "street, a community or a grid" in building.output
