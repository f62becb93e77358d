"""Who may do what where: roles scoped to org units; a grant covers the unit's whole subtree."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.members import Role, RoleGrant
from models.org import Unit, UnitKind
from services.errors import PermissionDenied

log = logging.getLogger(__name__)

MEMBER_ROLES: frozenset[Role] = frozenset(Role)
STAFF_ROLES: frozenset[Role] = frozenset(
    {Role.grid_worker, Role.grid_leader, Role.coordinator, Role.admin}
)

ROLE_UNIT_KINDS: dict[Role, frozenset[UnitKind]] = {
    Role.resident: frozenset({UnitKind.community, UnitKind.grid, UnitKind.building}),
    Role.volunteer: frozenset({UnitKind.community, UnitKind.grid}),
    Role.grid_worker: frozenset({UnitKind.grid}),
    Role.grid_leader: frozenset({UnitKind.grid}),
    Role.coordinator: frozenset({UnitKind.community, UnitKind.street}),
    Role.department: frozenset({UnitKind.community, UnitKind.street, UnitKind.district}),
    Role.admin: frozenset(UnitKind),
}
"""On which kinds of unit each role can be held."""

INVITABLE: dict[Role, frozenset[Role]] = {
    Role.admin: frozenset(Role),
    Role.coordinator: frozenset(
        {Role.resident, Role.volunteer, Role.grid_worker, Role.grid_leader, Role.department}
    ),
    Role.grid_leader: frozenset({Role.resident, Role.volunteer, Role.grid_worker}),
    Role.grid_worker: frozenset({Role.resident}),
}
"""Which roles a holder of a role may hand out by invite, within their own scope."""


@dataclass(frozen=True)
class UnitRef:
    id: int
    code: str
    kind: UnitKind
    name: str
    name_en: str | None
    path: str

    @classmethod
    def of(cls, unit: Unit) -> UnitRef:
        assert unit.id is not None
        return cls(unit.id, unit.code, UnitKind(unit.kind), unit.name, unit.name_en, unit.path)

    def label(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def within(self, other: UnitRef) -> bool:
        """True when this unit is ``other`` or lies below it."""
        return self.path.startswith(other.path)


@dataclass(frozen=True)
class Grant:
    role: Role
    unit: UnitRef


@dataclass(frozen=True)
class Actor:
    """The person acting, with every grant they hold; ``system`` is the CLI / a job."""

    member_id: int | None
    grants: tuple[Grant, ...] = ()
    system: bool = False

    @classmethod
    def cli(cls) -> Actor:
        return cls(member_id=None, system=True)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.grants)

    @property
    def is_member(self) -> bool:
        return self.system or bool(self.grants)

    def can(self, roles: Iterable[Role], unit: UnitRef) -> bool:
        if self.system:
            return True
        wanted = set(roles) | {Role.admin}
        return any(g.role in wanted and unit.within(g.unit) for g in self.grants)

    def require(self, roles: Iterable[Role], unit: UnitRef, action: str) -> None:
        if not self.can(roles, unit):
            self.refuse(action, unit)

    def refuse(self, action: str, unit: UnitRef | None = None) -> NoReturn:
        log.warning(
            "refused %s on unit %s for member %s",
            action,
            unit.code if unit else "-",
            self.member_id,
        )
        raise PermissionDenied()

    def scopes(self, roles: Iterable[Role]) -> list[UnitRef]:
        """The units on which the actor holds one of ``roles`` (admin counts for every role)."""
        wanted = set(roles) | {Role.admin}
        return [g.unit for g in self.grants if g.role in wanted]


async def load_actor(session: AsyncSession, member_id: int) -> Actor:
    rows = await session.execute(
        select(RoleGrant.role, Unit)
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(RoleGrant.member_id == member_id)
        .order_by(col(RoleGrant.id))
    )
    grants = tuple(Grant(Role(role), UnitRef.of(unit)) for role, unit in rows.all())
    return Actor(member_id=member_id, grants=grants)
