"""The `gridbot` command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bot.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

app = typer.Typer(
    help="gridbot: a chat bot for city neighbourhood grids.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
org_app = typer.Typer(
    help="The org tree (district > street > community > grid > building).", no_args_is_help=True
)
invite_app = typer.Typer(help="Invite links that grant a role on a unit.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
meeting_app = typer.Typer(help="Meeting series (councils, joint meetings).", no_args_is_help=True)
households_app = typer.Typer(
    help="Household files (一户一档) for door-knocking visits.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(invite_app, name="invite")
app.add_typer(demo_app, name="demo")
app.add_typer(meeting_app, name="meeting")
teams_app = typer.Typer(
    help="Teams: named groups of members, addressable by broadcasts.", no_args_is_help=True
)
app.add_typer(households_app, name="households")
app.add_typer(teams_app, name="teams")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as error:
        raise fail(str(error)) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return settings


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run async work; configuration and connection problems end in one line, not a traceback."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    async def main() -> T:
        return await factory()

    try:
        return asyncio.run(main())
    except SettingsError as error:
        raise fail(str(error)) from None
    except (OperationalError, DBAPIError, OSError) as error:
        raise fail(f"database: {str(error).splitlines()[0]}") from None


@app.command()
def run(
    runtime: Annotated[
        str, typer.Option(help="aiogram (default) or ptb (python-telegram-bot)")
    ] = "aiogram",
) -> None:
    """Run the bot (long polling, or a webhook when GRIDBOT_WEBHOOK_URL is set)."""
    from bot.instance import AlreadyRunning
    from bot.runtime.serve import run_bot

    if runtime not in ("aiogram", "ptb"):
        raise fail("--runtime must be aiogram or ptb")
    settings = settings_or_exit()
    try:
        settings.require_token()
        run_async(lambda: run_bot(settings, runtime))  # type: ignore[arg-type]
    except (SettingsError, AlreadyRunning) as error:
        raise fail(str(error)) from None


@app.command()
def check() -> None:
    """Check the settings, the database and the token, and say what is wrong."""
    from bot.checks import run_checks

    settings = settings_or_exit()
    ok = run_async(lambda: run_checks(settings, typer.echo))
    raise typer.Exit(0 if ok else 1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    from bot.migrate import upgrade

    settings = settings_or_exit()
    if settings.sqlite_path:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.database_url)
    except Exception as error:  # alembic or the driver: one line, not a traceback
        raise fail(f"migration failed: {error}") from None
    typer.echo("database is up to date")


@org_app.command("import")
def org_import(file: Annotated[Path, typer.Argument(help="YAML file with a 'units' list")]) -> None:
    """Create or update org units from YAML (idempotent; all or nothing)."""
    from services.org import OrgImportError, import_org

    settings = settings_or_exit()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"cannot read {file}: {error}") from None

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            return await import_org(session, text)

    try:
        report = run_async(work)
    except OrgImportError as error:
        for problem in error.report.problems:
            typer.echo(f"{file}:{problem}", err=True)
        raise fail(f"nothing imported: {len(error.report.problems)} problem(s)") from None
    typer.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}"
    )


@invite_app.command("create")
def invite_create(
    role: Annotated[
        str,
        typer.Option(
            help="resident, volunteer, grid_worker, grid_leader, coordinator, department or admin"
        ),
    ],
    unit: Annotated[str, typer.Option(help="unit code, e.g. G1")],
    uses: Annotated[int | None, typer.Option(help="how many people may join with it")] = None,
    expires: Annotated[int | None, typer.Option(help="days until it expires")] = None,
    qr: Annotated[Path | None, typer.Option(help="also write a QR code PNG here")] = None,
) -> None:
    """Create an invite and print its deep link."""
    from models.base import utcnow
    from services.access import Actor
    from services.errors import ServiceError
    from services.invites import create_invite, deep_link, qr_png

    settings = settings_or_exit()

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            return await create_invite(
                session,
                Actor.cli(),
                role=role,
                unit_code=unit,
                now=utcnow(),
                max_uses=uses,
                expires_days=expires,
            )

    try:
        view = run_async(work)
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    username = run_async(lambda: _bot_username(settings))
    link = deep_link(username, view.token) if username else f"/start {view.token}"
    typer.echo(link)
    if not username:
        typer.echo(
            "(set GRIDBOT_BOT_USERNAME or GRIDBOT_TELEGRAM_TOKEN to print a t.me link)", err=True
        )
    if qr is not None:
        qr.write_bytes(qr_png(link))
        typer.echo(f"QR code written to {qr}", err=True)


@invite_app.command("list")
def invite_list() -> None:
    """List live invites."""
    from models.base import utcnow
    from services.access import Actor
    from services.invites import list_invites

    settings = settings_or_exit()

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            return await list_invites(session, Actor.cli(), utcnow())

    for view in run_async(work):
        limit = "∞" if view.max_uses is None else view.max_uses
        expiry = view.expires_at.date().isoformat() if view.expires_at else "never"
        typer.echo(
            f"{view.token}\t{view.role}\t{view.unit.code}\tused {view.uses}/{limit}\t"
            f"expires {expiry}"
        )


@invite_app.command("revoke")
def invite_revoke(token: str) -> None:
    """Revoke an invite; people who joined with it keep their role."""
    from models.base import utcnow
    from services.access import Actor
    from services.errors import ServiceError
    from services.invites import revoke_invite

    settings = settings_or_exit()

    async def work() -> None:
        async with _database(settings) as db, db.transaction() as session:
            await revoke_invite(session, Actor.cli(), token, utcnow())

    try:
        run_async(work)
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    typer.echo("revoked")


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the demo org and one open invite per role (demo-resident, demo-coordinator, …)."""
    from models.base import utcnow
    from services.demo import seed_demo

    settings = settings_or_exit()

    async def work() -> None:
        async with _database(settings) as db, db.transaction() as session:
            await seed_demo(session, utcnow())

    run_async(work)
    typer.echo("demo data loaded")


@meeting_app.command("create")
def meeting_create(
    unit: Annotated[str, typer.Option(help="unit code, e.g. G1")],
    title: Annotated[str, typer.Option(help="e.g. 新德第一网格月月谈")],
    start: Annotated[str, typer.Option(help="first meeting, local time: 2026-12-08 19:00")],
    venue: Annotated[str, typer.Option(help="where it takes place")],
    kind: Annotated[
        str, typer.Option(help="council, joint, branch, cobuilding or custom")
    ] = "council",
    rrule: Annotated[
        str | None, typer.Option(help="RFC 5545 rule, e.g. FREQ=MONTHLY;BYDAY=2TU; none: once")
    ] = None,
    roles: Annotated[
        str | None, typer.Option(help="invite these roles within the unit, e.g. resident,volunteer")
    ] = None,
    members: Annotated[
        str | None, typer.Option(help="invite these people only (Telegram ids, comma-separated)")
    ] = None,
    lat: Annotated[float | None, typer.Option(help="venue latitude (check-in by location)")] = None,
    lon: Annotated[float | None, typer.Option(help="venue longitude")] = None,
    duration: Annotated[int, typer.Option(help="minutes")] = 90,
    organiser: Annotated[
        int | None, typer.Option(help="Telegram id of the member who runs it")
    ] = None,
) -> None:
    """Create a meeting series (open to everyone in the unit unless --roles or --members)."""
    from models.base import utcnow
    from models.meetings import Audience, MeetingKind
    from services import meetings
    from services.access import Actor
    from services.errors import ServiceError
    from services.members import find_member

    settings = settings_or_exit()
    rules = meetings.MeetingRules.of(settings)
    if roles and members:
        raise fail("--roles and --members do not go together")
    try:
        meeting_kind = MeetingKind(kind)
    except ValueError:
        raise fail("--kind must be council, joint, branch, cobuilding or custom") from None

    async def work() -> Any:
        now = utcnow()
        async with _database(settings) as db, db.transaction() as session:

            async def member_id(telegram_id: int) -> int:
                found = await find_member(session, telegram_id)
                if found is None:
                    raise fail(f"no member with Telegram id {telegram_id}")
                return found.id

            member_ids = [await member_id(int(m)) for m in (members or "").split(",") if m.strip()]
            draft = meetings.SeriesDraft(
                kind=meeting_kind,
                title=title,
                unit_code=unit,
                first_start=meetings.parse_when(start, rules.zone, now),
                rrule=rrule,
                venue=venue,
                audience=Audience.members
                if member_ids
                else Audience.roles
                if roles
                else Audience.open,
                roles=[r.strip() for r in (roles or "").split(",") if r.strip()],  # type: ignore[misc]
                member_ids=member_ids,
                latitude=lat,
                longitude=lon,
                duration_minutes=duration,
                organiser_id=await member_id(organiser) if organiser is not None else None,
            )
            series, planned = await meetings.create_series(session, Actor.cli(), draft, now, rules)
            dates = await meetings.preview(series.first_start, series.rrule, rules.zone, 3)
            return series, planned, dates

    try:
        series, planned, dates = run_async(work)
    except ValueError as error:
        raise fail(f"--roles: {error}") from None
    except ServiceError as error:
        raise fail(_english(error.key, error.params)) from None
    typer.echo(f"created series {series.id}: {series.title} ({len(planned)} meeting(s) planned)")
    for moment in dates:
        typer.echo(f"  {moment.astimezone(rules.zone):%Y-%m-%d %a %H:%M}")


@households_app.command("import")
def households_import(
    file: Annotated[Path, typer.Argument(help=".xlsx or .csv; see docs/households/import.md")],
    partial: Annotated[bool, typer.Option(help="import the good rows, skip the bad")] = False,
    dry_run: Annotated[bool, typer.Option(help="check everything, write nothing")] = False,
    report: Annotated[Path | None, typer.Option(help="write every problem to this CSV")] = None,
) -> None:
    """Create or update households from a spreadsheet (idempotent by building and address;
    by default all or nothing)."""
    from bot.i18n import translator
    from models.base import utcnow
    from services import households as hh
    from services.access import Actor

    settings = settings_or_exit()
    t = translator(settings.default_locale)
    try:
        sheet = hh.read_household_file(file)
    except hh.HouseholdFileError as error:
        raise fail(error.problem.render(t)) from None

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            return await hh.import_households(
                session,
                Actor.cli(),
                sheet,
                utcnow(),
                hh.VisitPolicy.of(settings),
                partial=partial,
                dry_run=dry_run,
            )

    try:
        result = run_async(work)
    except hh.HouseholdImportError as error:
        _import_report(t, error.report, report)
        raise fail(t("households.cli_nothing", count=error.report.bad_rows), 1) from None
    _import_report(t, result, report)
    if dry_run:
        typer.echo(t("households.cli_dry_run"))


def _import_report(t: Any, result: Any, path: Path | None, shown: int = 50) -> None:
    for problem in result.problems[:shown]:
        typer.echo(problem.render(t), err=True)
    if len(result.problems) > shown:
        typer.echo(t("households.cli_more_problems", count=len(result.problems) - shown), err=True)
    if path is not None and result.problems:
        import csv

        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerows([(p.row, t(p.key, **p.params)) for p in result.problems])
        typer.echo(t("households.cli_report_written", path=path), err=True)
    if result.ignored_columns:
        typer.echo(t("households.cli_ignored", columns=", ".join(result.ignored_columns)), err=True)
    typer.echo(
        t(
            "households.cli_summary",
            rows=result.rows,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            skipped=result.skipped,
        )
    )


@households_app.command("template")
def households_template(
    file: Annotated[Path, typer.Argument(help="where to write the .xlsx")],
) -> None:
    """Write the import template (header, example rows and a sheet explaining each column)."""
    from bot.i18n import translator
    from services.households import template_workbook

    t = translator(settings_or_exit().default_locale)
    file.write_bytes(template_workbook())
    typer.echo(t("households.cli_template", path=file))


@households_app.command("assign")
def households_assign(
    building: Annotated[list[str], typer.Option(help="building code; repeat for several")],
    member: Annotated[str, typer.Option(help="the member's phone number, or tg:<Telegram id>")],
    only_unassigned: Annotated[bool, typer.Option(help="leave assigned households alone")] = False,
) -> None:
    """Give every household of the buildings to one member (who is told in the chat)."""
    from bot.i18n import translator
    from models.base import utcnow
    from services import households as hh
    from services.access import Actor
    from services.errors import ServiceError
    from services.org import unit_by_code

    settings = settings_or_exit()
    t = translator(settings.default_locale)

    async def work() -> list[Any]:
        async with _database(settings) as db, db.transaction() as session:
            who = await hh.member_by_ref(session, member)
            return [
                await hh.assign_building(
                    session,
                    Actor.cli(),
                    (await unit_by_code(session, code)).id,
                    who.id,
                    utcnow(),
                    only_unassigned=only_unassigned,
                )
                for code in building
            ]

    try:
        results = run_async(work)
    except ServiceError as error:
        raise fail(t(error.key, **error.params)) from None
    for result in results:
        typer.echo(
            t(
                "households.cli_assigned",
                building=result.building.code,
                count=result.assigned,
                name=result.member_name,
            )
        )


@households_app.command("hub")
def households_hub(
    hub: Annotated[str, typer.Argument(help="the hub member: phone number or tg:<id>")],
    members: Annotated[list[str], typer.Argument(help="members to link (phone or tg:<id>)")],
    remove: Annotated[bool, typer.Option(help="unlink them instead")] = False,
) -> None:
    """Link members to a hub member ("1+10+N"), or unlink them."""
    from bot.i18n import translator
    from models.base import utcnow
    from services import households as hh
    from services.access import Actor
    from services.errors import ServiceError

    settings = settings_or_exit()
    t = translator(settings.default_locale)

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            leader = await hh.member_by_ref(session, hub)
            group = await hh.hub_group(session, Actor.cli(), leader.id)
            for ref in members:
                linked = await hh.member_by_ref(session, ref)
                group = await hh.set_hub_member(
                    session, Actor.cli(), leader.id, linked.id, not remove, utcnow()
                )
            return group

    try:
        group = run_async(work)
    except ServiceError as error:
        raise fail(t(error.key, **error.params)) from None
    names = "、".join(m.name for m in group.members) or "—"
    typer.echo(t("households.cli_hub", hub=group.hub.name, count=len(group.members), names=names))


@teams_app.command("create")
def teams_create(
    unit: Annotated[str, typer.Argument(help="unit code (street, community or grid)")],
    name: Annotated[str, typer.Argument(help="the team's name")],
    members: Annotated[
        list[str] | None,
        typer.Argument(help="members to add: #<member id>, phone number or tg:<Telegram id>"),
    ] = None,
) -> None:
    """Create a team in a unit and add members (who must hold a role within the unit)."""
    from bot.i18n import translator
    from models.base import utcnow
    from services import teams
    from services.access import Actor
    from services.errors import ServiceError
    from services.org import unit_by_code

    settings = settings_or_exit()
    t = translator(settings.default_locale)

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            now = utcnow()
            target = await unit_by_code(session, unit)
            team = await teams.create(session, Actor.cli(), target.id, name, now)
            for ref in members or []:
                person = await teams.member_by_ref(session, ref)
                await teams.add_member(session, Actor.cli(), team.id, person.id, now)
            return await teams.team(session, Actor.cli(), team.id)

    try:
        team = run_async(work)
    except ServiceError as error:
        raise fail(t(error.key, **error.params)) from None
    typer.echo(
        t("teams.cli_created", id=team.id, name=team.name, unit=team.unit.code, count=team.members)
    )


@teams_app.command("add")
def teams_add(
    team_id: Annotated[int, typer.Argument(help="the team's number (see teams create)")],
    members: Annotated[
        list[str], typer.Argument(help="#<member id>, phone number or tg:<Telegram id>")
    ],
    remove: Annotated[bool, typer.Option(help="remove them instead")] = False,
) -> None:
    """Add members to a team, or remove them."""
    from bot.i18n import translator
    from models.base import utcnow
    from services import teams
    from services.access import Actor
    from services.errors import ServiceError

    settings = settings_or_exit()
    t = translator(settings.default_locale)

    async def work() -> Any:
        async with _database(settings) as db, db.transaction() as session:
            for ref in members:
                person = await teams.member_by_ref(session, ref)
                if remove:
                    await teams.remove_member(session, Actor.cli(), team_id, person.id)
                else:
                    await teams.add_member(session, Actor.cli(), team_id, person.id, utcnow())
            return await teams.team(session, Actor.cli(), team_id)

    try:
        team = run_async(work)
    except ServiceError as error:
        raise fail(t(error.key, **error.params)) from None
    typer.echo(
        t("teams.cli_created", id=team.id, name=team.name, unit=team.unit.code, count=team.members)
    )


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="port of the sandbox web page and Bot API")] = 8081,
    database: Annotated[
        str, typer.Option("--db", help="database URL for the demo")
    ] = "sqlite:///var/sandbox.sqlite3",
    runtime: Annotated[str, typer.Option(help="aiogram or ptb")] = "aiogram",
) -> None:
    """Run the bot locally against the sandbox Bot API with demo data (no token needed)."""
    from bot.instance import AlreadyRunning
    from bot.sandbox_app import run_sandbox

    settings = settings_or_exit(database_url=database)
    try:
        run_async(lambda: run_sandbox(settings, port=port, runtime=runtime))
    except (SettingsError, AlreadyRunning, OSError) as error:
        raise fail(str(error)) from None


def _english(key: str, params: dict[str, Any]) -> str:
    from bot.i18n import translator

    return translator("en")(key, **params)


class _database:
    """``async with _database(settings) as db``: a Database that is disposed afterwards."""

    def __init__(self, settings: Settings) -> None:
        from bot.db import Database

        self.db = Database(settings.database_url)

    async def __aenter__(self) -> Any:
        from bot.runtime.serve import check_schema

        await check_schema(self.db)
        return self.db

    async def __aexit__(self, *exc: object) -> None:
        await self.db.dispose()


async def _bot_username(settings: Settings) -> str | None:
    if settings.bot_username:
        return settings.bot_username
    if settings.telegram_token is None:
        return None
    from bot.runtime.aiogram_runtime import AiogramTransport, make_bot
    from jobs.transport import TransportError

    bot = make_bot(settings)
    try:
        return (await AiogramTransport(bot).get_me()).username
    except TransportError:
        return None
    finally:
        await bot.session.close()


from bot.cli_points import points_app  # noqa: E402  (its commands import from this module)

app.add_typer(points_app, name="points")

from bot.cli_stats import report_app  # noqa: E402  (its commands import from this module)

app.add_typer(report_app, name="report")


def main() -> None:  # pragma: no cover - console script entry
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
