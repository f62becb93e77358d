"""`gridbot points …`: the rule table and corrections from the command line (as the system)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

points_app = typer.Typer(
    help="Volunteer points: the rule table and corrections.", no_args_is_help=True
)


@points_app.command("rules")
def rules(
    unit: Annotated[
        str | None, typer.Option(help="show the rules as they apply in this unit (code)")
    ] = None,
) -> None:
    """List the rules (installation-wide, or as they apply in a unit)."""
    from bot.cli import _database, run_async, settings_or_exit
    from services import points
    from services.org import unit_by_code

    settings = settings_or_exit()

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            path: tuple[int, ...] = ()
            if unit:
                found = await unit_by_code(session, unit)
                path = tuple(int(p) for p in found.path.strip("/").split("/") if p)
            return await points.effective_rules(session, path)

    for rule in run_async(work):
        cap = f"cap {rule.monthly_cap}/month" if rule.monthly_cap else "no cap"
        where = "everywhere" if rule.scope_unit_id is None else f"unit #{rule.scope_unit_id}"
        state = "on" if rule.active else "OFF"
        typer.echo(
            f"{rule.code}\t{rule.kind}\t{points.signed(rule.points)}\t{cap}\t{state}\t"
            f"{where}\t{rule.name} / {rule.name_en}"
        )


@points_app.command("rule")
def rule(
    code: Annotated[str, typer.Argument(help="rule code, e.g. visit_done")],
    name: Annotated[str | None, typer.Option(help="Chinese name")] = None,
    name_en: Annotated[str | None, typer.Option(help="English name")] = None,
    kind: Annotated[str | None, typer.Option(help="base, bonus or deduction")] = None,
    points_: Annotated[
        int | None, typer.Option("--points", help="points (negative for a deduction)")
    ] = None,
    cap: Annotated[int | None, typer.Option(help="at most this many points a month")] = None,
    no_cap: Annotated[bool, typer.Option("--no-cap", help="remove the monthly cap")] = False,
    active: Annotated[bool | None, typer.Option("--on/--off", help="switch the rule")] = None,
    unit: Annotated[
        str | None, typer.Option(help="change it for this community or street only (code)")
    ] = None,
) -> None:
    """Create or change a rule (installation-wide unless --unit is given)."""
    from bot.cli import _database, _english, fail, run_async, settings_or_exit
    from models.base import utcnow
    from services import points
    from services.access import Actor
    from services.errors import ServiceError
    from services.org import unit_by_code

    settings = settings_or_exit()
    monthly_cap: int | bool | None = None if no_cap else (cap if cap is not None else False)

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            scope = await unit_by_code(session, unit) if unit else None
            return await points.set_rule(
                session,
                Actor.cli(),
                code=code,
                now=utcnow(),
                name=name,
                name_en=name_en,
                kind=kind,
                points=points_,
                monthly_cap=monthly_cap,
                active=active,
                unit=scope,
            )

    try:
        saved = run_async(work)
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    cap_text = f", cap {saved.monthly_cap}/month" if saved.monthly_cap else ""
    typer.echo(f"saved {saved.code}: {saved.kind} {points.signed(saved.points)}{cap_text}")


@points_app.command("reverse")
def reverse(
    entry: Annotated[int, typer.Argument(help="ledger entry id")],
    reason: Annotated[str, typer.Option(help="why (the member is told)")],
) -> None:
    """Correct an award with a reversing entry (the original stays)."""
    from bot.cli import _database, _english, fail, run_async, settings_or_exit
    from models.base import utcnow
    from services import points
    from services.access import Actor
    from services.errors import ServiceError

    settings = settings_or_exit()

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            return await points.reverse_entry(
                session,
                Actor.cli(),
                entry_id=entry,
                reason=reason,
                now=utcnow(),
                zone=settings.zone,
            )

    try:
        reversal = run_async(work)
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    typer.echo(f"entry {reversal.id}: {points.signed(reversal.points)} (reverses {entry})")
