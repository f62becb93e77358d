"""Who a message goes to: the one audience resolver of the product (broadcasts, tasks, calls).

An audience names units (each with its whole subtree), and optionally narrows them to members
holding one of some roles there, declaring one of some skills, or standing in the emergency
reserve; ``member_ids`` adds named people. Without units the actor's own scope is meant.
``team_ids`` add the members of teams (:mod:`services.teams`) in the actor's scope, like named
people: roles, skills and the reserve do not narrow them. A person reached through two chosen
scopes (or through a team and a unit) is counted and addressed once. Members who blocked the
bot are included: delivery records them as blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.broadcasts import ReserveMember
from models.members import Role, RoleGrant
from models.org import Unit, UnitKind
from models.teams import Team, TeamMember
from models.wishes import MemberSkill, Skill
from services.access import Actor, UnitRef
from services.errors import InvalidInput, NotFound, PermissionDenied
from services.org import subtree, unit_by_id, within
from services.sql import insert_ignore

log = logging.getLogger(__name__)

SENDER_ROLES: frozenset[Role] = frozenset({Role.coordinator, Role.grid_leader})
"""Who may address an audience: coordinators within their units, grid leaders within their
grid (a grid leader's grant is always on a grid); admins everywhere."""

CHOOSABLE_ROLES: tuple[Role, ...] = (
    Role.resident,
    Role.volunteer,
    Role.grid_worker,
    Role.grid_leader,
    Role.coordinator,
)
CHOOSABLE_UNIT_KINDS: frozenset[UnitKind] = frozenset(
    {UnitKind.street, UnitKind.community, UnitKind.grid}
)
"""The units offered as buttons (buildings are reached through their grid)."""

MAX_UNITS = 50
MAX_TEAMS = 20
MAX_MEMBER_IDS = 10_000


@dataclass(frozen=True)
class Audience:
    unit_ids: tuple[int, ...] = ()
    roles: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    reserve: bool = False
    member_ids: tuple[int, ...] = ()
    team_ids: tuple[int, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.unit_ids
            or self.roles
            or self.skills
            or self.reserve
            or self.member_ids
            or self.team_ids
        )

    @property
    def selects(self) -> bool:
        """True when units, roles, skills or the reserve select members (not only names or
        teams)."""
        return bool(self.unit_ids or self.roles or self.skills or self.reserve)

    def to_json(self) -> dict[str, Any]:
        return {
            "unit_ids": list(self.unit_ids),
            "roles": list(self.roles),
            "skills": list(self.skills),
            "reserve": self.reserve,
            "member_ids": list(self.member_ids),
            "team_ids": list(self.team_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Audience:
        data = data or {}
        return cls(
            unit_ids=tuple(int(u) for u in data.get("unit_ids") or ()),
            roles=tuple(str(r) for r in data.get("roles") or ()),
            skills=tuple(str(s) for s in data.get("skills") or ()),
            reserve=bool(data.get("reserve")),
            member_ids=tuple(int(m) for m in data.get("member_ids") or ()),
            team_ids=tuple(int(t) for t in data.get("team_ids") or ()),
        )

    def toggled(self, field: str, value: Any) -> Audience:
        """A copy with ``value`` added to or removed from a tuple field (or the reserve flipped)."""
        if field == "reserve":
            return replace(self, reserve=not self.reserve)
        current: tuple[Any, ...] = getattr(self, field)
        changed = tuple(v for v in current if v != value) if value in current else (*current, value)
        changes: dict[str, Any] = {field: changed}
        return replace(self, **changes)


@dataclass(frozen=True)
class _Checked:
    paths: list[str] | None
    """Subtrees to select from; None: the whole organisation (system actor, no units)."""
    roles: list[str]
    skills: list[str]
    reserve: bool
    member_ids: list[int]
    scope_paths: list[str] | None
    teams: list[tuple[int, str]]
    """(team id, its unit's path) of the chosen teams."""


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


async def _check(
    session: AsyncSession, actor: Actor, audience: Audience, senders: Iterable[Role]
) -> _Checked:
    senders = frozenset(senders)
    if audience.is_empty:
        raise InvalidInput("audiences.empty")
    if len(audience.unit_ids) > MAX_UNITS:
        raise InvalidInput("audiences.too_many_units", limit=MAX_UNITS)
    if len(audience.team_ids) > MAX_TEAMS:
        raise InvalidInput("audiences.too_many_teams", limit=MAX_TEAMS)
    if len(audience.member_ids) > MAX_MEMBER_IDS:
        raise InvalidInput("audiences.too_many_members", limit=MAX_MEMBER_IDS)
    roles = _unique(audience.roles)
    for role in roles:
        if role not in Role.__members__:
            raise InvalidInput("audiences.role_unknown", role=str(role)[:32])
    skills = _unique(audience.skills)
    for skill in skills:
        if skill not in Skill.__members__:
            raise InvalidInput("audiences.skill_unknown", skill=str(skill)[:32])

    scopes: list[UnitRef] | None = None if actor.system else actor.scopes(senders)
    if scopes is not None and not scopes:
        actor.refuse("address an audience")
    units = [await unit_by_id(session, unit_id) for unit_id in _unique(audience.unit_ids)]
    for unit in units:
        if not actor.can(senders, unit):
            log.warning("refused audience unit %s for member %s", unit.code, actor.member_id)
            raise PermissionDenied("audiences.unit_outside", unit=unit.code)
    teams: list[tuple[int, str]] = []
    for team_id in _unique(audience.team_ids):
        team = await session.get(Team, team_id)
        if team is None:
            raise NotFound("audiences.team_unknown")
        unit = await unit_by_id(session, team.unit_id)
        if not actor.can(senders, unit):
            log.warning("refused team %s for member %s", team_id, actor.member_id)
            raise PermissionDenied("audiences.team_outside")
        if team.archived_at is not None:
            raise InvalidInput("audiences.team_archived", name=team.name)
        teams.append((team_id, unit.path))
    scope_paths = None if scopes is None else _outermost(u.path for u in scopes)
    paths = _outermost(u.path for u in units) if units else scope_paths
    return _Checked(
        paths, roles, skills, audience.reserve, _unique(audience.member_ids), scope_paths, teams
    )


def _outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths that lie inside another one (a subtree chosen twice selects once)."""
    ordered = sorted(set(paths), key=len)
    kept: list[str] = []
    for path in ordered:
        if not any(path.startswith(outer) for outer in kept):
            kept.append(path)
    return kept


def _selection(checked: _Checked) -> Select[Any]:
    query = select(col(RoleGrant.member_id)).join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
    if checked.paths is not None:
        query = query.where(within(checked.paths))
    if checked.roles:
        query = query.where(col(RoleGrant.role).in_(checked.roles))
    if checked.skills:
        query = query.where(
            col(RoleGrant.member_id).in_(
                select(col(MemberSkill.member_id)).where(col(MemberSkill.skill).in_(checked.skills))
            )
        )
    if checked.reserve:
        query = query.where(col(RoleGrant.member_id).in_(select(col(ReserveMember.member_id))))
    return query.distinct()


async def _named(session: AsyncSession, actor: Actor, checked: _Checked) -> set[int]:
    """The named members, each of whom must hold a role within the actor's scope."""
    wanted = checked.member_ids
    found: set[int] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = (
            select(col(RoleGrant.member_id))
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(RoleGrant.member_id).in_(chunk))
        )
        if checked.scope_paths is not None:
            query = query.where(within(checked.scope_paths))
        found |= {int(m) for m in (await session.execute(query.distinct())).scalars()}
    missing = [m for m in wanted if m not in found]
    if missing:
        log.warning(
            "refused members %s outside the scope of member %s", missing[:5], actor.member_id
        )
        raise PermissionDenied("audiences.member_outside")
    return found


async def _team_members(session: AsyncSession, checked: _Checked) -> set[int]:
    """The members of the chosen teams who still hold a role within the team's unit."""
    found: set[int] = set()
    for team_id, path in checked.teams:
        rows = await session.execute(
            select(col(TeamMember.member_id))
            .join(RoleGrant, col(RoleGrant.member_id) == col(TeamMember.member_id))
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(TeamMember.team_id) == team_id)
            .where(col(Unit.path).startswith(path))
            .distinct()
        )
        found |= {int(m) for m in rows.scalars()}
    return found


async def resolve(
    session: AsyncSession,
    actor: Actor,
    audience: Audience,
    *,
    senders: Iterable[Role] = SENDER_ROLES,
) -> list[int]:
    """The member ids the audience reaches, each once, in id order.

    Refuses (translated ``ServiceError``) an empty audience, unknown roles or skills, an
    unknown or archived team, and a unit, a team or a named member outside the actor's scope.
    A valid audience may reach nobody: the caller decides whether that is an error."""
    checked = await _check(session, actor, audience, senders)
    found: set[int] = set()
    if audience.selects:
        found = {int(m) for m in (await session.execute(_selection(checked))).scalars()}
    if checked.member_ids:
        found |= await _named(session, actor, checked)
    if checked.teams:
        found |= await _team_members(session, checked)
    return sorted(found)


async def count(
    session: AsyncSession,
    actor: Actor,
    audience: Audience,
    *,
    senders: Iterable[Role] = SENDER_ROLES,
) -> int:
    """How many members :func:`resolve` returns (counted in the database when no one is named
    and no team is chosen)."""
    if audience.member_ids or audience.team_ids:
        return len(await resolve(session, actor, audience, senders=senders))
    checked = await _check(session, actor, audience, senders)
    counted = select(func.count()).select_from(_selection(checked).subquery())
    return int((await session.execute(counted)).scalar_one())


async def choosable_units(
    session: AsyncSession, actor: Actor, *, senders: Iterable[Role] = SENDER_ROLES
) -> list[UnitRef]:
    """Units the actor may address, outermost first (streets, communities, grids)."""
    found: dict[int, UnitRef] = {}
    for scope in actor.scopes(senders):
        for unit in await subtree(session, scope, set(CHOOSABLE_UNIT_KINDS)):
            found[unit.id] = unit
        found.setdefault(scope.id, scope)
    return sorted(found.values(), key=lambda u: (u.kind.level, u.code))


def may_address(actor: Actor, *, senders: Iterable[Role] = SENDER_ROLES) -> bool:
    return actor.system or bool(actor.scopes(senders))


# ---------------------------------------------------------------------------------------------
# The emergency reserve


async def in_reserve(session: AsyncSession, member_id: int) -> bool:
    found = await session.execute(
        select(col(ReserveMember.id)).where(col(ReserveMember.member_id) == member_id)
    )
    return found.scalar_one_or_none() is not None


async def join_reserve(session: AsyncSession, actor: Actor, now: datetime) -> bool:
    """Volunteer for the emergency reserve; False when already in it (nothing changes)."""
    if actor.member_id is None or not actor.is_member:
        actor.refuse("join the reserve")
    added = await insert_ignore(
        session,
        ReserveMember,
        {"member_id": actor.member_id, "joined_at": now},
        conflict=["member_id"],
    )
    return added is not None


async def leave_reserve(session: AsyncSession, actor: Actor) -> bool:
    """Leave the emergency reserve; False when not in it."""
    if actor.member_id is None:
        actor.refuse("leave the reserve")
    result = await session.execute(
        delete(ReserveMember).where(col(ReserveMember.member_id) == actor.member_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def reserve_size(session: AsyncSession) -> int:
    counted = select(func.count()).select_from(ReserveMember)
    return int((await session.execute(counted)).scalar_one())
