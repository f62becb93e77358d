"""`gridbot points`: the rule table from the command line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests import databases


def test_an_admin_changes_the_rule_table_from_the_command_line(
    sqlite_template_path: Path, tmp_path: Path
) -> None:
    env = {"GRIDBOT_DATABASE_URL": databases.sqlite_copy(sqlite_template_path, tmp_path)}
    runner = CliRunner()
    changed = runner.invoke(
        app, ["points", "rule", "visit_done", "--points", "3", "--no-cap"], env=env
    )
    assert changed.exit_code == 0, changed.output
    assert "saved visit_done: base +3" in changed.output
    wrong = runner.invoke(app, ["points", "rule", "visit_done", "--kind", "deduction"], env=env)
    assert wrong.exit_code == 2
    assert "Deductions take points away" in wrong.output
    listed = runner.invoke(app, ["points", "rules"], env=env)
    assert (
        "visit_done\tbase\t+3\tno cap\ton\teverywhere\t入户走访 / Door-knocking visit"
        in listed.output
    )
