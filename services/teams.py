"""Teams: named groups of members within a unit, addressable by broadcasts.

Who may do what:

* **manage** (create, rename, archive, add and remove members): whoever may address the team's
  unit with a broadcast (:data:`services.audiences.SENDER_ROLES`: coordinators within their
  units, grid leaders within their grid; admins everywhere);
* **be added**: members holding any role within the team's unit (the unit's members);
* **see and leave**: a member sees the teams they are in and may leave one.

An archived team keeps its rows (broadcasts that addressed it still name it) but can no
longer be changed or addressed; its name becomes free again in the unit.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_
from models.members import Member, RoleGrant
from models.org import Unit
from models.teams import Team, TeamMember
from services import audiences
from services import households as hh
from services.access import Actor, UnitRef
from services.audiences import SENDER_ROLES
from services.errors import Conflict, InvalidInput, NotFound
from services.households import MemberChoice
from services.org import unit_by_id, within
from services.sql import insert_ignore

log = logging.getLogger(__name__)

NAME_MAX = 40
TEAM_SIZE_MAX = 500
LIST_LIMIT = 50


@dataclass(frozen=True)
class TeamView:
    id: int
    unit: UnitRef
    name: str
    members: int
    archived: bool


def clean_name(value: str) -> tuple[str, str]:
    """The name as shown (spaces collapsed) and the key names are compared by."""
    name = " ".join(unicodedata.normalize("NFKC", value).split())
    if not name:
        raise InvalidInput(N_("teams.name_empty"))
    if len(name) > NAME_MAX:
        raise InvalidInput(N_("teams.name_too_long"), limit=NAME_MAX, length=len(name))
    return name, name.casefold()


def may_manage(actor: Actor, unit: UnitRef) -> bool:
    return actor.can(SENDER_ROLES, unit)


async def _team(session: AsyncSession, team_id: int) -> tuple[Team, UnitRef]:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound(N_("teams.unknown"))
    return team, await unit_by_id(session, team.unit_id)


async def _manageable(
    session: AsyncSession, actor: Actor, team_id: int, action: str
) -> tuple[Team, UnitRef]:
    """The team, for someone who may manage it; an archived team cannot change."""
    team, unit = await _team(session, team_id)
    actor.require(SENDER_ROLES, unit, action)
    if team.archived_at is not None:
        raise Conflict(N_("teams.archived"), name=team.name)
    return team, unit


async def _size(session: AsyncSession, team_id: int) -> int:
    counted = await session.execute(
        select(func.count()).select_from(TeamMember).where(col(TeamMember.team_id) == team_id)
    )
    return int(counted.scalar_one())


async def _view(session: AsyncSession, team: Team, unit: UnitRef | None = None) -> TeamView:
    assert team.id is not None
    unit = unit or await unit_by_id(session, team.unit_id)
    return TeamView(
        team.id, unit, team.name, await _size(session, team.id), team.archived_at is not None
    )


async def _name_taken(
    session: AsyncSession, unit_id: int, key: str, except_id: int | None = None
) -> bool:
    query = (
        select(col(Team.id))
        .where(col(Team.unit_id) == unit_id)
        .where(col(Team.name_key) == key)
        .where(col(Team.archived_at).is_(None))
    )
    if except_id is not None:
        query = query.where(col(Team.id) != except_id)
    return (await session.execute(query.limit(1))).first() is not None


# ---------------------------------------------------------------------------------------------
# Managing


async def create(
    session: AsyncSession, actor: Actor, unit_id: int, name: str, now: datetime
) -> TeamView:
    unit = await unit_by_id(session, unit_id)
    actor.require(SENDER_ROLES, unit, "create team")
    if unit.kind not in audiences.CHOOSABLE_UNIT_KINDS:
        raise InvalidInput(N_("teams.unit_kind"))
    shown, key = clean_name(name)
    if await _name_taken(session, unit.id, key):
        raise Conflict(N_("teams.name_taken"), name=shown, unit=unit.code)
    team = Team(
        unit_id=unit.id, name=shown, name_key=key, created_by=actor.member_id, created_at=now
    )
    session.add(team)
    await session.flush()
    log.info("team %s %r created in %s by member %s", team.id, shown, unit.code, actor.member_id)
    return await _view(session, team, unit)


async def rename(session: AsyncSession, actor: Actor, team_id: int, name: str) -> TeamView:
    team, unit = await _manageable(session, actor, team_id, "rename team")
    shown, key = clean_name(name)
    if await _name_taken(session, unit.id, key, except_id=team.id):
        raise Conflict(N_("teams.name_taken"), name=shown, unit=unit.code)
    team.name, team.name_key = shown, key
    await session.flush()
    return await _view(session, team, unit)


async def archive(session: AsyncSession, actor: Actor, team_id: int, now: datetime) -> TeamView:
    team, unit = await _manageable(session, actor, team_id, "archive team")
    team.archived_at = now
    await session.flush()
    log.info("team %s archived by member %s", team.id, actor.member_id)
    return await _view(session, team, unit)


async def _in_unit(session: AsyncSession, unit: UnitRef, member_ids: Sequence[int]) -> set[int]:
    """Which of the members hold a role within the unit (the unit's members)."""
    found: set[int] = set()
    for start in range(0, len(member_ids), 1000):
        rows = await session.execute(
            select(col(RoleGrant.member_id))
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(Unit.path).startswith(unit.path))
            .where(col(RoleGrant.member_id).in_(list(member_ids[start : start + 1000])))
            .distinct()
        )
        found |= {int(m) for m in rows.scalars()}
    return found


async def add_member(
    session: AsyncSession, actor: Actor, team_id: int, member_id: int, now: datetime
) -> bool:
    """Add a member of the team's unit; False when already in the team."""
    team, unit = await _manageable(session, actor, team_id, "add team member")
    if not await _in_unit(session, unit, [member_id]):
        member = await session.get(Member, member_id)
        if member is None:
            raise NotFound(N_("teams.member_unknown"))
        raise InvalidInput(N_("teams.member_outside"), name=member.display_name, unit=unit.code)
    assert team.id is not None
    if await _size(session, team.id) >= TEAM_SIZE_MAX:
        raise InvalidInput(N_("teams.full"), limit=TEAM_SIZE_MAX)
    added = await insert_ignore(
        session,
        TeamMember,
        {"team_id": team.id, "member_id": member_id, "added_by": actor.member_id, "added_at": now},
        conflict=["team_id", "member_id"],
    )
    return added is not None


async def remove_member(session: AsyncSession, actor: Actor, team_id: int, member_id: int) -> bool:
    """Take a member out of the team; False when they were not in it."""
    await _manageable(session, actor, team_id, "remove team member")
    return await _delete_membership(session, team_id, member_id)


async def leave(session: AsyncSession, actor: Actor, team_id: int) -> bool:
    """A member leaves a team they are in; False when they were not in it."""
    if actor.member_id is None:
        actor.refuse("leave team")
    await _team(session, team_id)
    return await _delete_membership(session, team_id, actor.member_id)


async def _delete_membership(session: AsyncSession, team_id: int, member_id: int) -> bool:
    result = await session.execute(
        delete(TeamMember)
        .where(col(TeamMember.team_id) == team_id)
        .where(col(TeamMember.member_id) == member_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def member_by_ref(session: AsyncSession, ref: str) -> MemberChoice:
    """A member named by ``#<member id>``, ``tg:<Telegram id>`` or the phone they shared."""
    text = unicodedata.normalize("NFKC", ref).strip()
    if text.startswith("#") and text[1:].isdigit():
        member = await session.get(Member, int(text[1:]))
        if member is None or member.id is None:
            raise NotFound("households.member_unknown_ref", ref=text[:32])
        return MemberChoice(member.id, member.display_name, ())
    return await hh.member_by_ref(session, text)


# ---------------------------------------------------------------------------------------------
# Reading


async def _views(session: AsyncSession, teams: Iterable[Team]) -> list[TeamView]:
    units: dict[int, UnitRef] = {}
    found: list[TeamView] = []
    for team in teams:
        if team.unit_id not in units:
            units[team.unit_id] = await unit_by_id(session, team.unit_id)
        found.append(await _view(session, team, units[team.unit_id]))
    return found


async def teams_in_scope(
    session: AsyncSession, actor: Actor, *, limit: int = LIST_LIMIT
) -> list[TeamView]:
    """Active teams the actor may manage (and address), by unit and name."""
    query = (
        select(Team)
        .join(Unit, col(Unit.id) == col(Team.unit_id))
        .where(col(Team.archived_at).is_(None))
    )
    if not actor.system:
        scopes = actor.scopes(SENDER_ROLES)
        if not scopes:
            return []
        query = query.where(within([u.path for u in scopes]))
    rows = await session.execute(
        query.order_by(col(Unit.path), col(Team.name_key), col(Team.id)).limit(limit)
    )
    return await _views(session, rows.scalars())


async def my_teams(session: AsyncSession, actor: Actor) -> list[TeamView]:
    """The active teams the actor is in."""
    if actor.member_id is None:
        return []
    rows = await session.execute(
        select(Team)
        .join(TeamMember, col(TeamMember.team_id) == col(Team.id))
        .where(col(TeamMember.member_id) == actor.member_id)
        .where(col(Team.archived_at).is_(None))
        .order_by(col(Team.name_key), col(Team.id))
        .limit(LIST_LIMIT)
    )
    return await _views(session, rows.scalars())


async def team(session: AsyncSession, actor: Actor, team_id: int) -> TeamView:
    """A team, for someone who manages it or is in it."""
    found, unit = await _team(session, team_id)
    if not may_manage(actor, unit):
        membership = (
            await session.get(TeamMember, (team_id, actor.member_id))
            if actor.member_id is not None
            else None
        )
        if membership is None:
            actor.refuse("see team", unit)
    return await _view(session, found, unit)


async def _choices(session: AsyncSession, member_ids: Sequence[int]) -> list[MemberChoice]:
    names = await hh.member_names(session, member_ids)
    return sorted(
        (MemberChoice(m, names[m], ()) for m in member_ids if m in names),
        key=lambda c: (c.name, c.id),
    )


async def members(session: AsyncSession, actor: Actor, team_id: int) -> list[MemberChoice]:
    """Who is in the team (managers only), by name."""
    _, unit = await _team(session, team_id)
    actor.require(SENDER_ROLES, unit, "see team members")
    rows = await session.execute(
        select(col(TeamMember.member_id)).where(col(TeamMember.team_id) == team_id)
    )
    return await _choices(session, [int(m) for m in rows.scalars()])


async def candidates(session: AsyncSession, actor: Actor, team_id: int) -> list[MemberChoice]:
    """Members of the team's unit who are not in the team yet (managers only), by name."""
    _, unit = await _manageable(session, actor, team_id, "list team candidates")
    inside = select(col(TeamMember.member_id)).where(col(TeamMember.team_id) == team_id)
    rows = await session.execute(
        select(col(RoleGrant.member_id))
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(col(Unit.path).startswith(unit.path))
        .where(col(RoleGrant.member_id).not_in(inside))
        .distinct()
    )
    return await _choices(session, [int(m) for m in rows.scalars()])
