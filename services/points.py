"""Volunteer points (积分) and service hours.

The ledger is append-only: every change of a member's points is a new :class:`LedgerEntry`
and a correction is a reversing entry that names the one it corrects. Each entry carries a
unique ``dedupe_key`` (one award per source, member and rule; one reversal per entry), so a
retried or doubled action never changes the ledger twice — the database decides, not a check.
The balance (``points_accounts``) and the ranking tallies (``points_tallies``) are running
sums written in the same transaction; a CHECK constraint keeps the balance at or above zero.

Public API for other capabilities (visits, meetings, broadcast tasks), stable:

* :func:`award` — points by a rule for one source event (``None`` when that source already
  awarded, or the rule is switched off or unknown);
* :func:`log_hours` — service hours for one source event (``False`` when already logged);
* :func:`revoke` and :func:`revoke_hours` — take them back when the event is undone or
  corrected (a reversing entry; ``renew=True`` on the next award gives them again).

Neither checks permissions: the calling service has already decided that the event happened
and who is responsible (``actor`` is recorded for the audit trail).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, String, and_, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator
from models.base import UTCDateTime
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from models.points import (
    EntryKind,
    HoursEntry,
    HoursNudge,
    LedgerEntry,
    PointsAccount,
    PointsRule,
    PointsTally,
    Redemption,
    RuleKind,
    Source,
    StoreItem,
)
from services import outbox
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.messages import Text
from services.org import within
from services.sql import dialect, insert_ignore, skip_locked

log = logging.getLogger(__name__)

DEFAULT_ZONE: tzinfo = ZoneInfo("Asia/Shanghai")
"""The settings' default zone; callers pass ``settings.zone``."""

NOTE_MAX = 300
NAME_MAX = 40
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_RULE_POINTS = 1000
MAX_HOURS = Decimal(24)
"""The most one entry may log; a longer service is several entries (shifts)."""
LAST_ENTRIES = 8
RANK_TOP = 10
NUDGE_HOUR = 10
"""Local hour at which the month's hours nudges become due (last quarter only)."""
NUDGE_MONTHS = (10, 11, 12)

RANKED_KINDS = (EntryKind.award, EntryKind.reversal)


@dataclass(frozen=True)
class DefaultRule:
    code: str
    name: str
    name_en: str
    kind: RuleKind
    points: int
    monthly_cap: int | None = None


DEFAULT_RULES: tuple[DefaultRule, ...] = (
    DefaultRule("wish_fulfilled", "完成微心愿", "Wish fulfilled", RuleKind.base, 10),
    DefaultRule("visit_done", "入户走访", "Door-knocking visit", RuleKind.base, 2, 60),
    DefaultRule("meeting_attended", "参加会议", "Meeting attended", RuleKind.base, 3),
    DefaultRule("task_completed", "完成志愿任务", "Volunteer task done", RuleKind.base, 5),
    DefaultRule("emergency_duty", "应急值守", "Emergency duty", RuleKind.bonus, 10),
    DefaultRule("commendation", "表扬奖励", "Commendation", RuleKind.bonus, 5),
    DefaultRule("no_show", "报名未到", "No-show after signing up", RuleKind.deduction, -5),
    DefaultRule("complaint", "服务被投诉属实", "Justified complaint", RuleKind.deduction, -10),
)
"""What a new installation starts with (seeded by migration 0020 and by the demo); the
codes ``wish_fulfilled``, ``visit_done``, ``meeting_attended`` and ``task_completed`` are the
ones the wish, visit, meeting and task capabilities award."""


# ---------------------------------------------------------------------------------------------
# Views


@dataclass(frozen=True)
class RuleView:
    id: int
    code: str
    scope_unit_id: int | None
    name: str
    name_en: str
    kind: RuleKind
    points: int
    monthly_cap: int | None
    active: bool

    def label(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name


@dataclass(frozen=True)
class LedgerEntryView:
    id: int
    member_id: int
    points: int
    kind: EntryKind
    rule_code: str | None
    source: Source
    source_id: int | None
    actor_id: int | None
    at: datetime
    note: str
    reverses_id: int | None = None
    capped: bool = False
    """The rule's monthly cap (or, for a deduction, the balance) made it smaller than the rule."""


@dataclass(frozen=True)
class EntryLine:
    """One ledger line for display: with the rule's or the store item's name."""

    id: int
    points: int
    kind: EntryKind
    source: Source
    at: datetime
    note: str
    rule_name: str | None
    rule_name_en: str | None
    item_name: str | None
    reversed: bool

    def label(self, locale: str) -> str | None:
        if self.item_name:
            return self.item_name
        return self.rule_name_en if locale == "en" else self.rule_name


@dataclass(frozen=True)
class Home:
    """Where a member counts in rankings and which community's rules and store apply."""

    grid: UnitRef | None
    community: UnitRef | None
    path_ids: tuple[int, ...]


@dataclass(frozen=True)
class RankRow:
    place: int
    member_id: int
    name: str
    points: int


@dataclass(frozen=True)
class Ranking:
    unit: UnitRef
    period: str
    top: tuple[RankRow, ...]
    mine: RankRow | None
    ranked: int


@dataclass(frozen=True)
class PointsSummary:
    balance: int
    year: str
    year_points: int
    month_points: int
    entries: tuple[EntryLine, ...]
    grid_place: RankRow | None
    grid_ranked: int
    community_place: RankRow | None
    community_ranked: int
    home: Home


@dataclass(frozen=True)
class HoursLine:
    id: int
    minutes: int
    source: Source
    at: datetime
    note: str


@dataclass(frozen=True)
class HoursSummary:
    year: str
    minutes: int
    target_minutes: int
    entries: tuple[HoursLine, ...]

    @property
    def missing_minutes(self) -> int:
        return max(self.target_minutes - self.minutes, 0)


@dataclass(frozen=True)
class MemberRef:
    id: int
    name: str


def format_hours(minutes: int) -> str:
    """Hours with at most one decimal: 90 → "1.5", 120 → "2"."""
    value = (Decimal(minutes) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{value:f}".removesuffix(".0")


def signed(points: int) -> str:
    return f"+{points}" if points > 0 else str(points)


# ---------------------------------------------------------------------------------------------
# Periods (in the installation's zone)


def periods(moment: datetime, zone: tzinfo) -> tuple[str, str]:
    """The year and month keys of ``moment``, e.g. ``("2026", "2026-11")``."""
    local = moment.astimezone(zone)
    return f"{local.year}", f"{local.year}-{local.month:02d}"


def month_start(moment: datetime, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def year_start(moment: datetime, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Where a member belongs


async def home_of(session: AsyncSession, member_id: int) -> Home:
    """The member's grid and community: from their first grant at grid level or below, else
    their first grant on a community. Staff at street level and above have no home."""
    rows = (
        await session.execute(
            select(col(Unit.path), col(Unit.kind))
            .join(RoleGrant, col(RoleGrant.unit_id) == col(Unit.id))
            .where(col(RoleGrant.member_id) == member_id)
            .order_by(col(RoleGrant.id))
        )
    ).all()
    best: str | None = None
    for path, kind in rows:
        if UnitKind(kind).level >= UnitKind.grid.level:
            best = path
            break
        if best is None and UnitKind(kind) == UnitKind.community:
            best = path
    if best is None:
        return Home(None, None, ())
    ids = tuple(int(part) for part in best.strip("/").split("/") if part)
    units = await units_by_id(session, ids)
    grid = next((u for u in units if u.kind == UnitKind.grid), None)
    community = next((u for u in units if u.kind == UnitKind.community), None)
    return Home(grid, community, ids)


async def units_by_id(session: AsyncSession, ids: Iterable[int]) -> list[UnitRef]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = (await session.execute(select(Unit).where(col(Unit.id).in_(wanted)))).scalars()
    return [UnitRef.of(unit) for unit in rows]


async def member_units(session: AsyncSession, member_id: int) -> list[UnitRef]:
    """Every unit on which the member holds a role."""
    rows = (
        await session.execute(
            select(Unit)
            .join(RoleGrant, col(RoleGrant.unit_id) == col(Unit.id))
            .where(col(RoleGrant.member_id) == member_id)
            .order_by(col(RoleGrant.id))
        )
    ).scalars()
    return [UnitRef.of(unit) for unit in rows]


async def require_staff_over(
    session: AsyncSession, actor: Actor, member_id: int, action: str
) -> None:
    """Coordinators (and admins) manage the points of members who hold a role in their scope."""
    if actor.system:
        return
    units = await member_units(session, member_id)
    if not any(actor.can({Role.coordinator}, unit) for unit in units):
        actor.refuse(action, units[0] if units else None)


async def member_name(session: AsyncSession, member_id: int) -> str:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound()
    return member.display_name


# ---------------------------------------------------------------------------------------------
# Rules


def _rule_view(rule: PointsRule) -> RuleView:
    assert rule.id is not None
    return RuleView(
        rule.id,
        rule.code,
        rule.unit_id,
        rule.name,
        rule.name_en,
        RuleKind(rule.kind),
        rule.points,
        rule.monthly_cap,
        rule.active,
    )


def _scope_key(unit_id: int | None) -> str:
    return "" if unit_id is None else f"u{unit_id}"


async def ensure_default_rules(session: AsyncSession, now: datetime) -> int:
    """Add the installation-wide default rules that are missing; returns how many were added."""
    added = 0
    for rule in DEFAULT_RULES:
        inserted = await insert_ignore(
            session,
            PointsRule,
            {
                "code": rule.code,
                "scope": "",
                "unit_id": None,
                "name": rule.name,
                "name_en": rule.name_en,
                "kind": rule.kind.value,
                "points": rule.points,
                "monthly_cap": rule.monthly_cap,
                "active": True,
                "updated_at": now,
            },
            conflict=["code", "scope"],
        )
        added += 1 if inserted else 0
    return added


async def effective_rules(session: AsyncSession, path_ids: Sequence[int]) -> list[RuleView]:
    """Every rule code with its most specific version along ``path_ids`` (root first)."""
    scopes = ["", *(_scope_key(i) for i in path_ids)]
    rows = (
        await session.execute(select(PointsRule).where(col(PointsRule.scope).in_(scopes)))
    ).scalars()
    depth = {scope: index for index, scope in enumerate(scopes)}
    best: dict[str, PointsRule] = {}
    for rule in rows:
        current = best.get(rule.code)
        if current is None or depth[rule.scope] > depth[current.scope]:
            best[rule.code] = rule
    order = {RuleKind.base: 0, RuleKind.bonus: 1, RuleKind.deduction: 2}
    return sorted(
        (_rule_view(rule) for rule in best.values()),
        key=lambda r: (order[r.kind], r.code),
    )


async def resolve_rule(
    session: AsyncSession, code: str, path_ids: Sequence[int]
) -> RuleView | None:
    scopes = ["", *(_scope_key(i) for i in path_ids)]
    rows = (
        await session.execute(
            select(PointsRule)
            .where(col(PointsRule.code) == code)
            .where(col(PointsRule.scope).in_(scopes))
        )
    ).scalars()
    depth = {scope: index for index, scope in enumerate(scopes)}
    found = sorted(rows, key=lambda r: depth[r.scope])
    return _rule_view(found[-1]) if found else None


def rule_scope(actor: Actor) -> UnitRef | None:
    """Where the actor edits rules: their first coordinator unit; None (installation-wide) for
    an admin or the CLI."""
    if actor.system:
        return None
    coordinator = [g.unit for g in actor.grants if g.role == Role.coordinator]
    if coordinator:
        return coordinator[0]
    if Role.admin in actor.roles:
        return None
    raise PermissionDenied()


async def rules_for(session: AsyncSession, actor: Actor) -> tuple[UnitRef | None, list[RuleView]]:
    scope = rule_scope(actor)
    path = _path_ids(scope) if scope else ()
    return scope, await effective_rules(session, path)


def _path_ids(unit: UnitRef) -> tuple[int, ...]:
    return tuple(int(part) for part in unit.path.strip("/").split("/") if part)


def clean_text(value: str, limit: int, key: str, *, required: bool = True) -> str:
    text = " ".join(value.split())
    if required and not text:
        raise InvalidInput(N_("points.text_empty"))
    if len(text) > limit:
        raise InvalidInput(key, limit=limit)
    return text


async def set_rule(
    session: AsyncSession,
    actor: Actor,
    *,
    code: str,
    now: datetime,
    name: str | None = None,
    name_en: str | None = None,
    kind: RuleKind | str | None = None,
    points: int | None = None,
    monthly_cap: int | bool | None = False,
    active: bool | None = None,
    unit: UnitRef | None = None,
) -> RuleView:
    """Create or change a rule at ``unit`` (None: installation-wide, admins and the CLI only).

    Fields left out keep the rule's current value (or the value inherited from above when the
    unit gets its own version); ``monthly_cap=None`` removes a cap, ``False`` keeps it."""
    if unit is None:
        if not actor.system and Role.admin not in actor.roles:
            actor.refuse("set global rule")
    else:
        actor.require({Role.coordinator}, unit, "set rule")
    code = code.strip().lower()
    if not CODE_PATTERN.match(code):
        raise InvalidInput(N_("points.rule_code_invalid"))
    path = _path_ids(unit) if unit else ()
    inherited = await resolve_rule(session, code, path)
    scope = _scope_key(unit.id if unit else None)
    row = (
        await session.execute(
            select(PointsRule).where(col(PointsRule.code) == code, col(PointsRule.scope) == scope)
        )
    ).scalar_one_or_none()
    base = row or (
        PointsRule(
            code=code,
            scope=scope,
            unit_id=unit.id if unit else None,
            name=inherited.name,
            name_en=inherited.name_en,
            kind=inherited.kind,
            points=inherited.points,
            monthly_cap=inherited.monthly_cap,
            active=inherited.active,
        )
        if inherited
        else None
    )
    if base is None:
        if name is None or name_en is None or kind is None or points is None:
            raise InvalidInput(N_("points.rule_incomplete"))
        base = PointsRule(
            code=code,
            scope=scope,
            unit_id=unit.id if unit else None,
            name="",
            name_en="",
            kind=RuleKind.base,
            points=0,
        )
    if name is not None:
        base.name = clean_text(name, NAME_MAX, N_("points.rule_name_too_long"))
    if name_en is not None:
        base.name_en = clean_text(name_en, NAME_MAX, N_("points.rule_name_too_long"))
    if kind is not None:
        try:
            base.kind = RuleKind(kind)
        except ValueError:
            raise InvalidInput(N_("points.rule_kind_invalid")) from None
    if points is not None:
        base.points = points
    if monthly_cap is not False:
        base.monthly_cap = monthly_cap if isinstance(monthly_cap, int) else None
    if active is not None:
        base.active = active
    _validate_rule(base)
    base.updated_by = actor.member_id
    base.updated_at = now
    if row is None:
        session.add(base)
    await session.flush()
    return _rule_view(base)


def _validate_rule(rule: PointsRule) -> None:
    kind = RuleKind(rule.kind)
    if not 0 < abs(rule.points) <= MAX_RULE_POINTS:
        raise InvalidInput(N_("points.rule_points_invalid"), limit=MAX_RULE_POINTS)
    if (kind == RuleKind.deduction) != (rule.points < 0):
        raise InvalidInput(N_("points.rule_sign_invalid"))
    if rule.monthly_cap is not None and not 0 < rule.monthly_cap <= 100 * MAX_RULE_POINTS:
        raise InvalidInput(N_("points.rule_cap_invalid"))


# ---------------------------------------------------------------------------------------------
# The ledger


async def _lock_account(session: AsyncSession, member_id: int, now: datetime) -> int:
    """The member's balance, with their account row locked (PostgreSQL) until commit, so that
    caps and balance checks of concurrent entries for one member see each other."""
    await insert_ignore(
        session,
        PointsAccount,
        {"member_id": member_id, "balance": 0, "updated_at": now},
        conflict=["member_id"],
    )
    query = select(col(PointsAccount.balance)).where(col(PointsAccount.member_id) == member_id)
    if dialect(session) == "postgresql":
        query = query.with_for_update()
    return int((await session.execute(query)).scalar_one())


async def _upsert_tally(
    session: AsyncSession, member_id: int, period: str, delta: int, home: Home, now: datetime
) -> None:
    table = PointsTally.__table__  # type: ignore[attr-defined]
    make = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    grid_id = home.grid.id if home.grid else None
    community_id = home.community.id if home.community else None
    statement = (
        make(table)
        .values(
            member_id=member_id,
            period=period,
            community_id=community_id,
            grid_id=grid_id,
            points=delta,
            reached_at=now,
        )
        .on_conflict_do_update(
            index_elements=["member_id", "period"],
            set_={
                "points": table.c.points + delta,
                "reached_at": now,
                "community_id": community_id,
                "grid_id": grid_id,
            },
        )
    )
    await session.execute(statement)


async def _append(
    session: AsyncSession,
    *,
    member_id: int,
    points: int,
    kind: EntryKind,
    source: Source,
    source_id: int | None,
    now: datetime,
    zone: tzinfo,
    dedupe_key: str,
    home: Home,
    actor_id: int | None = None,
    note: str = "",
    rule: RuleView | None = None,
    rule_code: str | None = None,
    reverses_id: int | None = None,
    redemption_id: int | None = None,
    tally_at: datetime | None = None,
    capped: bool = False,
) -> LedgerEntryView | None:
    """Write one entry and move the balance and tallies with it; None if the key exists.

    The balance moves with a conditional UPDATE, so a debit larger than the balance is refused
    (and the whole transaction with it) even if two processes race."""
    code = rule.code if rule else rule_code
    note = note[:NOTE_MAX]
    values: dict[str, object] = {
        "member_id": member_id,
        "points": points,
        "kind": kind.value,
        "rule_id": rule.id if rule else None,
        "rule_code": code,
        "source": source.value,
        "source_id": source_id,
        "actor_id": actor_id,
        "at": now,
        "note": note,
        "reverses_id": reverses_id,
        "redemption_id": redemption_id,
        "community_id": home.community.id if home.community else None,
        "grid_id": home.grid.id if home.grid else None,
        "dedupe_key": dedupe_key,
    }
    entry_id = await insert_ignore(
        session, LedgerEntry, values, conflict=["dedupe_key"], returning="id"
    )
    if entry_id is None:
        return None
    if points:
        moved = await session.execute(
            update(PointsAccount)
            .where(col(PointsAccount.member_id) == member_id)
            .where(col(PointsAccount.balance) + points >= 0)
            .values(balance=col(PointsAccount.balance) + points, updated_at=now)
        )
        if not getattr(moved, "rowcount", 0):
            raise Conflict(N_("points.not_enough"))
    if points and kind in RANKED_KINDS:
        for period in periods(tally_at or now, zone):
            await _upsert_tally(session, member_id, period, points, home, now)
    return LedgerEntryView(
        int(entry_id),
        member_id,
        points,
        kind,
        code,
        source,
        source_id,
        actor_id,
        now,
        note,
        reverses_id,
        capped,
    )


async def _entry_exists(session: AsyncSession, dedupe_key: str) -> bool:
    found = await session.execute(
        select(col(LedgerEntry.id)).where(col(LedgerEntry.dedupe_key) == dedupe_key)
    )
    return found.first() is not None


async def _used_this_month(
    session: AsyncSession, member_id: int, code: str, now: datetime, zone: tzinfo
) -> int:
    used = await session.execute(
        select(func.coalesce(func.sum(col(LedgerEntry.points)), 0))
        .where(col(LedgerEntry.member_id) == member_id)
        .where(col(LedgerEntry.rule_code) == code)
        .where(col(LedgerEntry.kind).in_([k.value for k in RANKED_KINDS]))
        .where(col(LedgerEntry.at) >= month_start(now, zone))
    )
    return int(used.scalar_one())


async def _award(
    session: AsyncSession,
    *,
    member_id: int,
    rule_code: str,
    source: Source,
    source_id: int | None,
    dedupe_key: str,
    now: datetime,
    actor_id: int | None,
    note: str,
    zone: tzinfo,
    rule_required: bool,
) -> LedgerEntryView | None:
    if await _entry_exists(session, dedupe_key):
        return None
    balance = await _lock_account(session, member_id, now)
    home = await home_of(session, member_id)
    rule = await resolve_rule(session, rule_code, home.path_ids)
    if rule is None or not rule.active:
        if rule_required:
            raise InvalidInput(N_("points.rule_unknown"), code=rule_code[:32])
        log.warning("no active points rule %r: nothing awarded to member %s", rule_code, member_id)
        return None
    points, capped = rule.points, False
    if rule.monthly_cap is not None:
        used = await _used_this_month(session, member_id, rule.code, now, zone)
        room = max(rule.monthly_cap - abs(used), 0)
        if abs(points) > room:
            points, capped = (room if points > 0 else -room), True
    if points < 0 and -points > balance:
        points, capped = -balance, True
    return await _append(
        session,
        member_id=member_id,
        points=points,
        kind=EntryKind.award,
        source=source,
        source_id=source_id,
        now=now,
        zone=zone,
        dedupe_key=dedupe_key,
        home=home,
        actor_id=actor_id,
        note=note,
        rule=rule,
        capped=capped,
    )


async def award(
    session: AsyncSession,
    *,
    member_id: int,
    rule_code: str,
    source: str,
    source_id: int,
    now: datetime,
    actor: Actor | None = None,
    note: str = "",
    zone: tzinfo = DEFAULT_ZONE,
    renew: bool = False,
) -> LedgerEntryView | None:
    """Award points by ``rule_code`` for one source event (``source`` is ``wish``, ``visit``,
    ``meeting`` or ``task``; ``source_id`` that event's id).

    The rule is the most specific version for the member's community; its monthly cap and, for
    a deduction, the member's balance may make the entry smaller (``capped``). Returns None
    when this source already awarded this rule to this member (a unique key in the ledger, so
    also under races), or when the rule is switched off or unknown (logged). Sends nothing;
    pass ``zone=settings.zone`` so months and years follow the installation's calendar.

    ``renew=True``: when every earlier award of this source was taken back with :func:`revoke`
    (an outcome corrected back and forth), award it again — still at most one live award."""
    kind = Source(source)
    base = _award_key(kind, source_id, member_id, rule_code)
    return await _award(
        session,
        member_id=member_id,
        rule_code=rule_code,
        source=kind,
        source_id=source_id,
        dedupe_key=await _next_generation(session, base, member_id) if renew else base,
        now=now,
        actor_id=actor.member_id if actor else None,
        note=note,
        zone=zone,
        rule_required=False,
    )


def _award_key(source: Source, source_id: int, member_id: int, rule_code: str) -> str:
    return f"award:{source.value}:{source_id}:{member_id}:{rule_code}"


def _hours_key(source: Source, source_id: int, member_id: int) -> str:
    return f"hours:{source.value}:{source_id}:{member_id}"


async def _family(
    session: AsyncSession, model: Any, base: str, member_id: int
) -> list[tuple[Any, bool]]:
    """The entries written under ``base`` and its later generations (``base:1``, ``base:2``…),
    oldest first, each with whether it has been reversed."""
    reversal = model.__table__.alias("reversal")
    pattern = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    rows = await session.execute(
        select(model, reversal.c.id)
        .outerjoin(reversal, reversal.c.reverses_id == model.id)
        .where(model.member_id == member_id)
        .where(or_(model.dedupe_key == base, model.dedupe_key.like(pattern, escape="\\")))
        .order_by(model.id)
    )
    return [(entry, reversed_id is not None) for entry, reversed_id in rows.all()]


async def _next_generation(
    session: AsyncSession, base: str, member_id: int, model: Any = LedgerEntry
) -> str:
    """The key for one more award of a source whose earlier awards were all revoked: the
    same key while one of them is live (so the insert is a no-op), a new one otherwise."""
    family = await _family(session, model, base, member_id)
    if not family or any(not gone for _entry, gone in family):
        return base
    return f"{base}:{len(family)}"


async def revoke(
    session: AsyncSession,
    *,
    member_id: int,
    rule_code: str,
    source: str,
    source_id: int,
    now: datetime,
    actor: Actor | None = None,
    note: str = "",
    zone: tzinfo = DEFAULT_ZONE,
) -> LedgerEntryView | None:
    """Take back the live award of ``rule_code`` for one source event with a reversing entry
    (the source event was undone or corrected, e.g. a visit outcome changed to "not home").
    None when there is nothing live to take back, or when the member already spent the points
    (the balance never goes below zero: a coordinator corrects that by hand). No permission
    check, like :func:`award`."""
    kind = Source(source)
    base = _award_key(kind, source_id, member_id, rule_code)
    family = await _family(session, LedgerEntry, base, member_id)
    live = [entry for entry, gone in family if not gone]
    if not live:
        return None
    entry = live[-1]
    assert entry.id is not None
    balance = await _lock_account(session, member_id, now)
    if entry.points > balance:
        log.warning("award %s already spent: not revoked", entry.id)
        return None
    return await _append(
        session,
        member_id=member_id,
        points=-entry.points,
        kind=EntryKind.reversal,
        source=kind,
        source_id=source_id,
        now=now,
        zone=zone,
        dedupe_key=f"reverse:{entry.id}",
        home=await home_of(session, member_id),
        actor_id=actor.member_id if actor else None,
        note=note,
        rule_code=entry.rule_code,
        reverses_id=entry.id,
        tally_at=entry.at,
    )


async def award_manual(
    session: AsyncSession,
    actor: Actor,
    *,
    member_id: int,
    rule_code: str,
    now: datetime,
    token: str,
    note: str = "",
    zone: tzinfo = DEFAULT_ZONE,
) -> LedgerEntryView:
    """A coordinator applies a rule by hand (a bonus, a deduction). ``token`` identifies the
    action (the flow's nonce), so pressing "confirm" twice awards once."""
    await require_staff_over(session, actor, member_id, "award points")
    note = clean_text(note, NOTE_MAX, N_("points.note_too_long"), required=False)
    entry = await _award(
        session,
        member_id=member_id,
        rule_code=rule_code,
        source=Source.manual,
        source_id=None,
        dedupe_key=f"manual:{token[:40]}:{member_id}:{rule_code}",
        now=now,
        actor_id=actor.member_id,
        note=note,
        zone=zone,
        rule_required=True,
    )
    if entry is None:
        raise Conflict(N_("points.already_done"))
    await _notify_entry(session, entry, now)
    return entry


async def reverse_entry(
    session: AsyncSession,
    actor: Actor,
    *,
    entry_id: int,
    reason: str,
    now: datetime,
    zone: tzinfo = DEFAULT_ZONE,
) -> LedgerEntryView:
    """Correct an award with its exact opposite (never an edit). The tallies of the original
    entry's month and year are corrected. Refused when the member has already spent the
    points (the balance would go below zero) and when the entry was already reversed."""
    entry = await session.get(LedgerEntry, entry_id)
    if entry is None:
        raise NotFound(N_("points.entry_unknown"))
    await require_staff_over(session, actor, entry.member_id, "reverse entry")
    if EntryKind(entry.kind) != EntryKind.award:
        raise InvalidInput(N_("points.cannot_reverse"))
    reason = clean_text(reason, NOTE_MAX, N_("points.note_too_long"))
    if await _entry_exists(session, f"reverse:{entry_id}"):
        raise Conflict(N_("points.already_reversed"))
    balance = await _lock_account(session, entry.member_id, now)
    if entry.points > balance:
        raise Conflict(N_("points.reverse_spent"), points=entry.points, balance=balance)
    home = await home_of(session, entry.member_id)
    reversal = await _append(
        session,
        member_id=entry.member_id,
        points=-entry.points,
        kind=EntryKind.reversal,
        source=Source(entry.source),
        source_id=entry.source_id,
        now=now,
        zone=zone,
        dedupe_key=f"reverse:{entry_id}",
        home=home,
        actor_id=actor.member_id,
        note=reason,
        rule_code=entry.rule_code,
        reverses_id=entry_id,
        tally_at=entry.at,
    )
    if reversal is None:
        raise Conflict(N_("points.already_reversed"))
    await _notify_entry(session, reversal, now)
    return reversal


async def _notify_entry(session: AsyncSession, entry: LedgerEntryView, now: datetime) -> None:
    rule_names = await _rule_names(session, entry.rule_code)

    def render(t: Translator) -> Text:
        name = rule_names.get(t.locale) or entry.rule_code or ""
        key = N_("points.notice_reversal") if entry.reverses_id else N_("points.notice_award")
        return Text(t(key, points=signed(entry.points), rule=name, note=entry.note or "—"))

    await outbox.notify(
        session, entry.member_id, now, render, dedupe_key=f"points.entry:{entry.id}"
    )


async def _rule_names(session: AsyncSession, code: str | None) -> dict[str, str]:
    if code is None:
        return {}
    rule = (
        (
            await session.execute(
                select(PointsRule).where(col(PointsRule.code) == code).order_by(col(PointsRule.id))
            )
        )
        .scalars()
        .first()
    )
    return {"zh_CN": rule.name, "en": rule.name_en} if rule else {}


async def debit(
    session: AsyncSession,
    *,
    member_id: int,
    points: int,
    redemption_id: int,
    now: datetime,
    actor_id: int | None,
    note: str,
    zone: tzinfo = DEFAULT_ZONE,
) -> LedgerEntryView:
    """Spend points in the store (refused with a clear reason when the balance is short)."""
    balance = await _lock_account(session, member_id, now)
    if balance < points:
        raise Conflict(N_("points.not_enough_for"), cost=points, balance=balance)
    entry = await _append(
        session,
        member_id=member_id,
        points=-points,
        kind=EntryKind.redemption,
        source=Source.store,
        source_id=redemption_id,
        now=now,
        zone=zone,
        dedupe_key=f"redeem:{redemption_id}",
        home=await home_of(session, member_id),
        actor_id=actor_id,
        note=note,
        redemption_id=redemption_id,
    )
    if entry is None:
        raise Conflict(N_("points.already_done"))
    return entry


async def refund(
    session: AsyncSession,
    *,
    redemption_id: int,
    now: datetime,
    actor_id: int | None,
    note: str,
    zone: tzinfo = DEFAULT_ZONE,
) -> LedgerEntryView | None:
    """Give back what a redemption debited, as the reversing entry of that debit."""
    debit_entry = (
        await session.execute(
            select(LedgerEntry).where(col(LedgerEntry.dedupe_key) == f"redeem:{redemption_id}")
        )
    ).scalar_one_or_none()
    if debit_entry is None:
        return None
    assert debit_entry.id is not None
    await _lock_account(session, debit_entry.member_id, now)
    return await _append(
        session,
        member_id=debit_entry.member_id,
        points=-debit_entry.points,
        kind=EntryKind.refund,
        source=Source.store,
        source_id=redemption_id,
        now=now,
        zone=zone,
        dedupe_key=f"refund:{redemption_id}",
        home=await home_of(session, debit_entry.member_id),
        actor_id=actor_id,
        note=note,
        reverses_id=debit_entry.id,
        redemption_id=redemption_id,
    )


# ---------------------------------------------------------------------------------------------
# Reading the ledger


async def balance(session: AsyncSession, member_id: int) -> int:
    found = await session.execute(
        select(col(PointsAccount.balance)).where(col(PointsAccount.member_id) == member_id)
    )
    return int(found.scalar_one_or_none() or 0)


async def last_entries(
    session: AsyncSession, member_id: int, limit: int = LAST_ENTRIES, *, awards_only: bool = False
) -> list[EntryLine]:
    reversal = LedgerEntry.__table__.alias("reversal")  # type: ignore[attr-defined]
    query = (
        select(
            LedgerEntry,
            col(PointsRule.name),
            col(PointsRule.name_en),
            col(StoreItem.name),
            reversal.c.id,
        )
        .outerjoin(PointsRule, col(PointsRule.id) == col(LedgerEntry.rule_id))
        .outerjoin(Redemption, col(Redemption.id) == col(LedgerEntry.redemption_id))
        .outerjoin(StoreItem, col(StoreItem.id) == col(Redemption.item_id))
        .outerjoin(reversal, reversal.c.reverses_id == col(LedgerEntry.id))
        .where(col(LedgerEntry.member_id) == member_id)
    )
    if awards_only:
        query = query.where(col(LedgerEntry.kind) == EntryKind.award.value)
    rows = (await session.execute(query.order_by(col(LedgerEntry.id).desc()).limit(limit))).all()
    lines = []
    for entry, rule_name, rule_name_en, item_name, reversed_by in rows:
        assert entry.id is not None
        rule_zh, rule_en = rule_name, rule_name_en
        if rule_zh is None and entry.rule_code:
            names = await _rule_names(session, entry.rule_code)
            rule_zh, rule_en = names.get("zh_CN"), names.get("en")
        lines.append(
            EntryLine(
                entry.id,
                entry.points,
                EntryKind(entry.kind),
                Source(entry.source),
                entry.at,
                entry.note,
                rule_zh,
                rule_en,
                item_name,
                reversed_by is not None,
            )
        )
    return lines


async def tally(session: AsyncSession, member_id: int, period: str) -> int:
    found = await session.execute(
        select(col(PointsTally.points)).where(
            col(PointsTally.member_id) == member_id, col(PointsTally.period) == period
        )
    )
    return int(found.scalar_one_or_none() or 0)


def _unit_column(unit: UnitRef) -> Any:
    if unit.kind == UnitKind.grid:
        return col(PointsTally.grid_id)
    if unit.kind == UnitKind.community:
        return col(PointsTally.community_id)
    raise InvalidInput(N_("points.rank_unit_invalid"))


async def ranking(
    session: AsyncSession, *, unit: UnitRef, period: str, member_id: int, limit: int = RANK_TOP
) -> Ranking:
    """Top ``limit`` of a grid or community for a period, and the member's own place.

    Order: points (high first), then who reached their points first, then who joined first —
    the same on every run."""
    column = _unit_column(unit)
    base = and_(column == unit.id, col(PointsTally.period) == period)
    rows = (
        []
        if limit <= 0
        else (
            await session.execute(
                select(
                    col(PointsTally.member_id), col(PointsTally.points), col(Member.display_name)
                )
                .join(Member, col(Member.id) == col(PointsTally.member_id))
                .where(base)
                .order_by(
                    col(PointsTally.points).desc(),
                    col(PointsTally.reached_at),
                    col(PointsTally.member_id),
                )
                .limit(limit)
            )
        ).all()
    )
    top = tuple(
        RankRow(place, int(mid), str(name), int(points))
        for place, (mid, points, name) in enumerate(rows, start=1)
    )
    mine, ranked = await _place(session, unit, period, member_id)
    if mine is None:
        counted = await session.execute(select(func.count()).select_from(PointsTally).where(base))
        ranked = int(counted.scalar_one())
    return Ranking(unit, period, top, mine, ranked)


async def _place(
    session: AsyncSession, unit: UnitRef, period: str, member_id: int
) -> tuple[RankRow | None, int]:
    """The member's place and how many are ranked, in one statement: (None, 0) when the
    member has no points in the period."""
    tally_table = PointsTally.__table__  # type: ignore[attr-defined]
    other = tally_table.alias("other")
    grid = unit.kind == UnitKind.grid
    own_unit = tally_table.c.grid_id if grid else tally_table.c.community_id
    other_unit = other.c.grid_id if grid else other.c.community_id
    same = and_(other_unit == unit.id, other.c.period == period)
    ranked = select(func.count()).select_from(other).where(same).scalar_subquery()
    ahead = (
        select(func.count())
        .select_from(other)
        .where(same)
        .where(
            or_(
                other.c.points > tally_table.c.points,
                and_(
                    other.c.points == tally_table.c.points,
                    other.c.reached_at < tally_table.c.reached_at,
                ),
                and_(
                    other.c.points == tally_table.c.points,
                    other.c.reached_at == tally_table.c.reached_at,
                    other.c.member_id < tally_table.c.member_id,
                ),
            )
        )
        .scalar_subquery()
    )
    own = (
        await session.execute(
            select(tally_table.c.points, col(Member.display_name), ranked, ahead)
            .join(Member, col(Member.id) == tally_table.c.member_id)
            .where(tally_table.c.member_id == member_id)
            .where(tally_table.c.period == period)
            .where(own_unit == unit.id)
        )
    ).first()
    if own is None:
        return None, 0
    points, name, count, before = own
    return RankRow(int(before) + 1, member_id, str(name), int(points)), int(count)


async def summary(
    session: AsyncSession, member_id: int, now: datetime, zone: tzinfo = DEFAULT_ZONE
) -> PointsSummary:
    """What /points shows: balance, this year's and month's points, the last entries and the
    member's place in their grid and community this year."""
    year, month = periods(now, zone)
    home = await home_of(session, member_id)
    grid_rank = (
        await ranking(session, unit=home.grid, period=year, member_id=member_id, limit=0)
        if home.grid
        else None
    )
    community_rank = (
        await ranking(session, unit=home.community, period=year, member_id=member_id, limit=0)
        if home.community
        else None
    )
    found = await session.execute(
        select(col(PointsTally.period), col(PointsTally.points))
        .where(col(PointsTally.member_id) == member_id)
        .where(col(PointsTally.period).in_([year, month]))
    )
    sums = {str(period): int(points) for period, points in found.all()}
    return PointsSummary(
        balance=await balance(session, member_id),
        year=year,
        year_points=sums.get(year, 0),
        month_points=sums.get(month, 0),
        entries=tuple(await last_entries(session, member_id)),
        grid_place=grid_rank.mine if grid_rank else None,
        grid_ranked=grid_rank.ranked if grid_rank else 0,
        community_place=community_rank.mine if community_rank else None,
        community_ranked=community_rank.ranked if community_rank else 0,
        home=home,
    )


async def find_members(
    session: AsyncSession, actor: Actor, query: str, limit: int = 8
) -> list[MemberRef]:
    """Members in the coordinator's scope whose name contains ``query``."""
    scopes = actor.scopes({Role.coordinator})
    if not scopes and not actor.system:
        raise PermissionDenied()
    text = " ".join(query.split())[:32]
    if not text:
        raise InvalidInput(N_("points.text_empty"))
    statement = (
        select(col(Member.id), col(Member.display_name))
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(func.lower(col(Member.display_name)).contains(text.lower()))
        .distinct()
        .order_by(col(Member.display_name), col(Member.id))
        .limit(limit)
    )
    if not actor.system:
        statement = statement.where(within(s.path for s in scopes))
    rows = (await session.execute(statement)).all()
    return [MemberRef(int(mid or 0), str(name)) for mid, name in rows]


# ---------------------------------------------------------------------------------------------
# Service hours


def to_minutes(hours: Decimal | int | str) -> int:
    try:
        value = Decimal(str(hours).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise InvalidInput(N_("points.hours_invalid"), limit=MAX_HOURS) from None
    if not value.is_finite() or not Decimal(0) < value <= MAX_HOURS:
        raise InvalidInput(N_("points.hours_invalid"), limit=MAX_HOURS)
    minutes = int((value * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if minutes < 1:
        raise InvalidInput(N_("points.hours_invalid"), limit=MAX_HOURS)
    return minutes


async def _log_minutes(
    session: AsyncSession,
    *,
    member_id: int,
    minutes: int,
    source: Source,
    source_id: int | None,
    now: datetime,
    actor_id: int | None,
    note: str,
    dedupe_key: str,
    reverses_id: int | None = None,
) -> int | None:
    entry_id = await insert_ignore(
        session,
        HoursEntry,
        {
            "member_id": member_id,
            "minutes": minutes,
            "source": source.value,
            "source_id": source_id,
            "actor_id": actor_id,
            "at": now,
            "note": note[:NOTE_MAX],
            "reverses_id": reverses_id,
            "dedupe_key": dedupe_key,
        },
        conflict=["dedupe_key"],
        returning="id",
    )
    return int(entry_id) if entry_id is not None else None


async def log_hours(
    session: AsyncSession,
    *,
    member_id: int,
    hours: Decimal,
    source: str,
    source_id: int,
    now: datetime,
    actor: Actor | None = None,
    note: str = "",
    renew: bool = False,
) -> bool:
    """Log service hours for one source event (``wish``, ``visit``, ``meeting``, ``task``).

    ``hours`` is more than 0 and at most 24 (rounded to whole minutes), else InvalidInput.
    Returns False when this source already logged hours for this member (a unique key, so
    also under races). ``renew=True``: log again when the earlier entries were all taken back
    with :func:`revoke_hours`."""
    kind = Source(source)
    minutes = to_minutes(hours)
    base = _hours_key(kind, source_id, member_id)
    logged = await _log_minutes(
        session,
        member_id=member_id,
        minutes=minutes,
        source=kind,
        source_id=source_id,
        now=now,
        actor_id=actor.member_id if actor else None,
        note=note,
        dedupe_key=await _next_generation(session, base, member_id, HoursEntry) if renew else base,
    )
    return logged is not None


async def revoke_hours(
    session: AsyncSession,
    *,
    member_id: int,
    source: str,
    source_id: int,
    now: datetime,
    actor: Actor | None = None,
    note: str = "",
) -> int:
    """Take back the live hours logged for one source event with a negative entry; returns
    the minutes taken back (0 when nothing was live)."""
    kind = Source(source)
    base = _hours_key(kind, source_id, member_id)
    family = await _family(session, HoursEntry, base, member_id)
    live = [entry for entry, gone in family if not gone]
    if not live:
        return 0
    entry = live[-1]
    logged = await _log_minutes(
        session,
        member_id=member_id,
        minutes=-entry.minutes,
        source=kind,
        source_id=source_id,
        now=now,
        actor_id=actor.member_id if actor else None,
        note=note,
        dedupe_key=f"hours:reverse:{entry.id}",
        reverses_id=entry.id,
    )
    return entry.minutes if logged is not None else 0


async def log_hours_manual(
    session: AsyncSession,
    actor: Actor,
    *,
    member_id: int,
    hours: Decimal | str,
    now: datetime,
    token: str,
    note: str = "",
) -> int:
    """A coordinator logs hours by hand; returns the minutes logged. ``token`` makes a second
    press of "confirm" a no-op refusal."""
    await require_staff_over(session, actor, member_id, "log hours")
    minutes = to_minutes(hours)
    note = clean_text(note, NOTE_MAX, N_("points.note_too_long"), required=False)
    logged = await _log_minutes(
        session,
        member_id=member_id,
        minutes=minutes,
        source=Source.manual,
        source_id=None,
        now=now,
        actor_id=actor.member_id,
        note=note,
        dedupe_key=f"hours:manual:{token[:40]}:{member_id}",
    )
    if logged is None:
        raise Conflict(N_("points.already_done"))

    def render(t: Translator) -> Text:
        return Text(t("points.notice_hours", hours=format_hours(minutes), note=note or "—"))

    await outbox.notify(session, member_id, now, render, dedupe_key=f"points.hours:{logged}")
    return minutes


async def reverse_hours(
    session: AsyncSession, actor: Actor, *, entry_id: int, reason: str, now: datetime
) -> int:
    """Correct logged hours with a negative entry naming the original; once per entry."""
    entry = await session.get(HoursEntry, entry_id)
    if entry is None or entry.reverses_id is not None or entry.minutes <= 0:
        raise NotFound(N_("points.entry_unknown"))
    await require_staff_over(session, actor, entry.member_id, "reverse hours")
    reason = clean_text(reason, NOTE_MAX, N_("points.note_too_long"))
    logged = await _log_minutes(
        session,
        member_id=entry.member_id,
        minutes=-entry.minutes,
        source=Source(entry.source),
        source_id=entry.source_id,
        now=now,
        actor_id=actor.member_id,
        note=reason,
        dedupe_key=f"hours:reverse:{entry_id}",
        reverses_id=entry_id,
    )
    if logged is None:
        raise Conflict(N_("points.already_reversed"))
    return -entry.minutes


async def year_minutes(
    session: AsyncSession, member_id: int, now: datetime, zone: tzinfo = DEFAULT_ZONE
) -> int:
    found = await session.execute(
        select(func.coalesce(func.sum(col(HoursEntry.minutes)), 0))
        .where(col(HoursEntry.member_id) == member_id)
        .where(col(HoursEntry.at) >= year_start(now, zone))
    )
    return int(found.scalar_one())


async def hours_summary(
    session: AsyncSession,
    member_id: int,
    now: datetime,
    *,
    target_hours: int,
    zone: tzinfo = DEFAULT_ZONE,
    limit: int = 5,
) -> HoursSummary:
    year, _ = periods(now, zone)
    rows = (
        await session.execute(
            select(HoursEntry)
            .where(col(HoursEntry.member_id) == member_id)
            .where(col(HoursEntry.at) >= year_start(now, zone))
            .order_by(col(HoursEntry.id).desc())
            .limit(limit)
        )
    ).scalars()
    lines = []
    for entry in rows:
        assert entry.id is not None
        lines.append(HoursLine(entry.id, entry.minutes, Source(entry.source), entry.at, entry.note))
    return HoursSummary(
        year, await year_minutes(session, member_id, now, zone), target_hours * 60, tuple(lines)
    )


async def recent_hours(session: AsyncSession, member_id: int, limit: int = 8) -> list[HoursLine]:
    """Positive, not yet reversed hours entries (for a coordinator's correction)."""
    reversal = HoursEntry.__table__.alias("reversal")  # type: ignore[attr-defined]
    rows = (
        await session.execute(
            select(HoursEntry)
            .outerjoin(reversal, reversal.c.reverses_id == col(HoursEntry.id))
            .where(col(HoursEntry.member_id) == member_id)
            .where(col(HoursEntry.minutes) > 0)
            .where(reversal.c.id.is_(None))
            .order_by(col(HoursEntry.id).desc())
            .limit(limit)
        )
    ).scalars()
    return [HoursLine(e.id or 0, e.minutes, Source(e.source), e.at, e.note) for e in rows]


async def plan_hours_nudges(session: AsyncSession, now: datetime, zone: tzinfo) -> int:
    """In the last quarter, plan one nudge per volunteer per month (due at 10:00 local on the
    first of the month). Idempotent: one statement that adds only what is missing."""
    local = now.astimezone(zone)
    if local.month not in NUDGE_MONTHS:
        return 0
    _, period = periods(now, zone)
    due = local.replace(day=1, hour=NUDGE_HOUR, minute=0, second=0, microsecond=0)
    nudges = HoursNudge.__table__  # type: ignore[attr-defined]
    missing = (
        select(
            col(RoleGrant.member_id),
            literal(period, String(7)),
            literal(due.astimezone(UTC), UTCDateTime()),
            literal(False, Boolean()),
        )
        .where(col(RoleGrant.role) == Role.volunteer.value)
        .where(
            ~select(nudges.c.id)
            .where(nudges.c.member_id == col(RoleGrant.member_id))
            .where(nudges.c.period == period)
            .exists()
        )
        .distinct()
    )
    make = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    statement = (
        make(nudges)
        .from_select(["member_id", "period", "due_at", "sent"], missing)
        .on_conflict_do_nothing(index_elements=["member_id", "period"])
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


async def send_hours_nudges(
    session: AsyncSession,
    now: datetime,
    *,
    zone: tzinfo,
    target_hours: int,
    limit: int = 200,
) -> int:
    """Claim due nudges, tell members under target how far they are, mark them done (in the
    caller's transaction). Returns how many were claimed (0: nothing left)."""
    due = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(HoursNudge)
                    .where(col(HoursNudge.done_at).is_(None))
                    .where(col(HoursNudge.due_at) <= now)
                    .order_by(col(HoursNudge.due_at), col(HoursNudge.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    year, _ = periods(now, zone)
    for nudge in due:
        minutes = await year_minutes(session, nudge.member_id, now, zone)
        if minutes < target_hours * 60:
            done = format_hours(minutes)
            missing = format_hours(target_hours * 60 - minutes)

            def render(t: Translator, done: str = done, missing: str = missing) -> Text:
                return Text(
                    t(
                        "points.hours_nudge",
                        year=year,
                        done=done,
                        target=target_hours,
                        missing=missing,
                    )
                )

            await outbox.notify(
                session,
                nudge.member_id,
                now,
                render,
                dedupe_key=f"points.hours_nudge:{nudge.member_id}:{nudge.period}",
            )
            nudge.sent = True
        nudge.done_at = now
    await session.flush()
    return len(due)


async def ledger_totals(session: AsyncSession, member_id: int) -> tuple[int, int]:
    """(sum of the member's ledger entries, their balance): equal, always (tests, audits)."""
    total = await session.execute(
        select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
            col(LedgerEntry.member_id) == member_id
        )
    )
    return int(total.scalar_one()), await balance(session, member_id)
