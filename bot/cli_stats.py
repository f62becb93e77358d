"""`gridbot report …`: the statistics workbook from the command line (as the system)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

report_app = typer.Typer(
    help="Statistics: the one-table report as an Excel workbook.", no_args_is_help=True
)


@report_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="where to write the workbook (.xlsx)")],
    unit: Annotated[str, typer.Option(help="unit code, e.g. S1 or C1")],
    period: Annotated[
        str,
        typer.Option(help="2026-W47, 2026-10, 2026-Q4, 2026 or 2026-10-01..2026-10-15"),
    ],
    lang: Annotated[str, typer.Option(help="zh_CN (default) or en headers")] = "zh_CN",
) -> None:
    """Write the unit's statistics for a period: a sheet per section, its children as rows."""
    from bot.cli import _database, _english, fail, run_async, settings_or_exit
    from bot.i18n import normalize_locale
    from models.base import utcnow
    from services import stats
    from services.errors import ServiceError
    from services.stats_export import build_export

    settings = settings_or_exit()
    policy = stats.StatsPolicy.from_settings(settings)

    async def work() -> Any:
        wanted = stats.parse_period(period)
        async with _database(settings) as db, db.reading() as session:
            found = await stats.unit_by_code(session, unit)
            return await build_export(
                session,
                found,
                wanted,
                utcnow(),
                policy,
                normalize_locale(lang),
                reading=db.reading,
            )

    started = time.perf_counter()
    try:
        data = run_async(work)
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    file.write_bytes(data)
    typer.echo(f"{file}: {len(data):,} bytes in {time.perf_counter() - started:.1f} s")
