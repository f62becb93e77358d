"""Roles are scoped to org units; a grant covers the unit's subtree and nothing beside it."""

from __future__ import annotations

from bot.db import Database
from models.members import Role
from services.access import Actor, Grant, UnitRef
from services.invites import roles_actor_may_invite
from services.org import unit_by_code


async def units(db: Database, *codes: str) -> list[UnitRef]:
    async with db.transaction() as session:
        return [await unit_by_code(session, code) for code in codes]


async def test_a_grant_covers_the_subtree_only(demo_db: Database) -> None:
    c1, g1, g2, b1, g3, s1 = await units(demo_db, "C1", "G1", "G2", "B1", "G3", "S1")
    coordinator = Actor(member_id=1, grants=(Grant(Role.coordinator, c1),))
    assert coordinator.can({Role.coordinator}, g1)
    assert coordinator.can({Role.coordinator}, b1)
    assert not coordinator.can({Role.coordinator}, g3), "another community"
    assert not coordinator.can({Role.coordinator}, s1), "the street above"
    worker = Actor(member_id=2, grants=(Grant(Role.grid_worker, g1),))
    assert worker.can({Role.grid_worker}, b1)
    assert not worker.can({Role.grid_worker}, g2)
    assert not worker.can({Role.coordinator}, g1), "the right unit but the wrong role"


async def test_admin_counts_for_every_role_below_it(demo_db: Database) -> None:
    d1, b4 = await units(demo_db, "D1", "B4")
    admin = Actor(member_id=1, grants=(Grant(Role.admin, d1),))
    assert admin.can({Role.grid_worker}, b4)
    assert roles_actor_may_invite(admin) == set(Role)


async def test_who_may_invite_whom(demo_db: Database) -> None:
    c1, g1, g2 = await units(demo_db, "C1", "G1", "G2")
    leader = Actor(member_id=1, grants=(Grant(Role.grid_leader, g1),))
    assert roles_actor_may_invite(leader, g1) == {Role.resident, Role.volunteer, Role.grid_worker}
    assert roles_actor_may_invite(leader, g2) == set(), "not outside their grid"
    resident = Actor(member_id=2, grants=(Grant(Role.resident, g1),))
    assert roles_actor_may_invite(resident) == set()
    coordinator = Actor(member_id=3, grants=(Grant(Role.coordinator, c1),))
    assert Role.admin not in roles_actor_may_invite(coordinator)
    assert Role.coordinator not in roles_actor_may_invite(coordinator)
