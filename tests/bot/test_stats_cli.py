"""`gridbot report export`: the statistics workbook from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from bot.db import Database
from tests import databases
from tests.stats_world import build


async def _world(url: str) -> None:
    db = Database(url)
    try:
        await build(db)
    finally:
        await db.dispose()


def test_export_a_street_month_to_a_file(sqlite_template_path: Path, tmp_path: Path) -> None:
    url = databases.sqlite_copy(sqlite_template_path, tmp_path)
    asyncio.run(_world(url))
    env = {"GRIDBOT_DATABASE_URL": url}
    target = tmp_path / "october.xlsx"
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["report", "export", "--unit", "XS", "--period", "2026-10", "--lang", "en", str(target)],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert str(target) in done.output
    sheet = load_workbook(target)["Issues"]
    assert [c.value for c in sheet[5][:3]] == ["Total", "XS", 7]
    unknown = runner.invoke(
        app, ["report", "export", "--unit", "NOPE", "--period", "2026-10", str(target)], env=env
    )
    assert unknown.exit_code == 2
    assert "No unit has that code" in unknown.output
    bad = runner.invoke(
        app, ["report", "export", "--unit", "XS", "--period", "October", str(target)], env=env
    )
    assert bad.exit_code == 2
    assert "I don't understand that period" in bad.output
