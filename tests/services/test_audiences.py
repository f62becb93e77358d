"""The audience resolver: subtrees, role/skill/reserve filters, each person once, scope checks,
and the emergency reserve a member joins and leaves."""

from __future__ import annotations

import pytest

from bot.db import Database
from models.members import Role
from services import audiences
from services.access import Actor
from services.audiences import Audience
from services.errors import InvalidInput, NotFound, PermissionDenied
from tests.services.broadcast_fixtures import NOW, People, make_people


@pytest.fixture
async def people(demo_db: Database) -> People:
    return await make_people(demo_db)


async def resolved(people: People, who: str | Actor, audience: Audience) -> set[int]:
    actor = who if isinstance(who, Actor) else await people.actor(who)
    async with people.db.transaction() as session:
        ids = await audiences.resolve(session, actor, audience)
        counted = await audiences.count(session, actor, audience)
    assert counted == len(ids), "the preview count is the number of recipients"
    assert len(ids) == len(set(ids))
    return set(ids)


def names(people: People, *who: str) -> set[int]:
    return {people[name] for name in who}


async def test_a_unit_reaches_its_whole_subtree_and_a_person_in_two_scopes_counts_once(
    people: People,
) -> None:
    c1 = people.units["C1"]
    g1 = people.units["G1"]
    b1 = people.units["B1"]
    everyone_in_c1 = names(
        people,
        "coordinator",
        "grid_leader",
        "volunteer",
        "resident",
        "g2_volunteer",
        "g2_resident",
        "blocked",
    )
    assert await resolved(people, "coordinator", Audience(unit_ids=(c1,))) == everyone_in_c1
    # The volunteer holds roles on G1 and on B1: chosen twice, reached once.
    assert await resolved(people, "coordinator", Audience(unit_ids=(g1, b1, c1, g1))) == (
        everyone_in_c1
    )


async def test_roles_skills_and_the_reserve_narrow_the_units(people: People) -> None:
    c1 = people.units["C1"]
    volunteers = Audience(unit_ids=(c1,), roles=(Role.volunteer.value,))
    assert await resolved(people, "coordinator", volunteers) == names(
        people, "volunteer", "g2_volunteer"
    )
    medical_or_repairs = Audience(unit_ids=(c1,), skills=("medical", "repairs"))
    assert await resolved(people, "coordinator", medical_or_repairs) == names(
        people, "volunteer", "g2_volunteer"
    )
    assert await resolved(people, "coordinator", Audience(skills=("repairs",))) == names(
        people, "g2_volunteer"
    )
    reserve = Audience(reserve=True)
    assert await resolved(people, "coordinator", reserve) == names(
        people, "volunteer", "g2_resident"
    ), "without units the reserve is the one within the coordinator's own area"
    assert await resolved(people, "far_coordinator", reserve) == names(people, "far_resident")
    assert await resolved(people, Actor.cli(), reserve) == names(
        people, "volunteer", "g2_resident", "far_resident"
    )


async def test_without_units_the_audience_is_the_actors_own_area(people: People) -> None:
    residents = Audience(roles=(Role.resident.value,))
    assert await resolved(people, "coordinator", residents) == names(
        people, "volunteer", "resident", "g2_resident", "blocked"
    )
    assert await resolved(people, "grid_leader", residents) == names(
        people, "volunteer", "resident", "blocked"
    )
    assert await resolved(people, "far_coordinator", residents) == names(people, "far_resident")


async def test_members_who_blocked_the_bot_are_still_counted(people: People) -> None:
    b2 = people.units["B2"]
    assert await resolved(people, "grid_leader", Audience(unit_ids=(b2,))) == names(
        people, "blocked"
    )


async def test_named_members_join_the_selection_once(people: People) -> None:
    g2 = people.units["G2"]
    audience = Audience(unit_ids=(g2,), member_ids=(people["resident"], people["g2_volunteer"]))
    assert await resolved(people, "coordinator", audience) == names(
        people, "resident", "g2_volunteer", "g2_resident"
    )
    only_named = Audience(member_ids=(people["resident"],))
    assert await resolved(people, "grid_leader", only_named) == names(people, "resident")


@pytest.mark.parametrize(
    ("who", "unit"),
    [
        ("grid_leader", "G2"),
        ("grid_leader", "C1"),
        ("coordinator", "C2"),
        ("coordinator", "G3"),
        ("coordinator", "S1"),
        ("far_coordinator", "B1"),
    ],
)
async def test_a_unit_outside_the_actors_scope_is_refused(
    people: People, who: str, unit: str
) -> None:
    actor = await people.actor(who)
    audience = Audience(unit_ids=(people.units[unit],), roles=(Role.volunteer.value,))
    async with people.db.transaction() as session:
        with pytest.raises(PermissionDenied) as refused:
            await audiences.resolve(session, actor, audience)
        assert refused.value.key == "audiences.unit_outside"
        assert refused.value.params == {"unit": unit}
        with pytest.raises(PermissionDenied):
            await audiences.count(session, actor, audience)


async def test_grid_leader_reaches_the_own_grid_and_the_admin_everything(people: People) -> None:
    g1 = people.units["G1"]
    assert await resolved(people, "grid_leader", Audience(unit_ids=(g1,))) == names(
        people, "grid_leader", "volunteer", "resident", "blocked"
    )
    d1 = people.units["D1"]
    everyone = set(people.ids.values())
    assert await resolved(people, "admin", Audience(unit_ids=(d1,))) == everyone


@pytest.mark.parametrize(
    ("audience", "error", "key"),
    [
        (Audience(), InvalidInput, "audiences.empty"),
        (Audience(roles=("king",)), InvalidInput, "audiences.role_unknown"),
        (Audience(skills=("juggling",)), InvalidInput, "audiences.skill_unknown"),
        (Audience(unit_ids=(999_999,)), NotFound, "org.unit_unknown"),
        (Audience(unit_ids=tuple(range(1, 60))), InvalidInput, "audiences.too_many_units"),
        (Audience(member_ids=(999_999,)), PermissionDenied, "audiences.member_outside"),
    ],
)
async def test_bad_audiences_get_a_clear_refusal(
    people: People, audience: Audience, error: type[Exception], key: str
) -> None:
    actor = await people.actor("coordinator")
    async with people.db.transaction() as session:
        with pytest.raises(error) as refused:
            await audiences.resolve(session, actor, audience)
    assert getattr(refused.value, "key", None) == key


async def test_named_member_outside_the_area_is_refused(people: People) -> None:
    actor = await people.actor("grid_leader")
    async with people.db.transaction() as session:
        with pytest.raises(PermissionDenied) as refused:
            await audiences.resolve(session, actor, Audience(member_ids=(people["g2_resident"],)))
    assert refused.value.key == "audiences.member_outside"


@pytest.mark.parametrize("who", ["resident", "volunteer"])
async def test_members_without_a_sending_role_address_nobody(people: People, who: str) -> None:
    actor = await people.actor(who)
    async with people.db.transaction() as session:
        assert not audiences.may_address(actor)
        with pytest.raises(PermissionDenied):
            await audiences.resolve(session, actor, Audience(roles=(Role.resident.value,)))
        with pytest.raises(PermissionDenied):
            await audiences.resolve(session, actor, Audience(unit_ids=(people.units["B1"],)))


async def test_choosable_units_are_the_streets_communities_and_grids_in_scope(
    people: People,
) -> None:
    coordinator = await people.actor("coordinator")
    grid_leader = await people.actor("grid_leader")
    async with people.db.transaction() as session:
        assert [u.code for u in await audiences.choosable_units(session, coordinator)] == [
            "C1",
            "G1",
            "G2",
        ]
        assert [u.code for u in await audiences.choosable_units(session, grid_leader)] == ["G1"]


async def test_a_member_joins_and_leaves_the_reserve_once(people: People) -> None:
    resident = await people.actor("resident")
    async with people.db.transaction() as session:
        assert not await audiences.in_reserve(session, people["resident"])
        assert await audiences.join_reserve(session, resident, NOW)
        assert not await audiences.join_reserve(session, resident, NOW), "already in it"
        assert await audiences.in_reserve(session, people["resident"])
    assert people["resident"] in await resolved(people, "grid_leader", Audience(reserve=True))
    async with people.db.transaction() as session:
        assert await audiences.leave_reserve(session, resident)
        assert not await audiences.leave_reserve(session, resident)
        assert await audiences.reserve_size(session) == 3
    assert people["resident"] not in await resolved(people, "grid_leader", Audience(reserve=True))


async def test_a_stranger_cannot_join_the_reserve(people: People) -> None:
    async with people.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await audiences.join_reserve(session, Actor(member_id=None), NOW)


def test_audience_round_trips_and_toggles() -> None:
    audience = Audience(unit_ids=(1, 2), roles=("volunteer",), reserve=True, member_ids=(7,))
    assert Audience.from_json(audience.to_json()) == audience
    assert audience.toggled("unit_ids", 2).unit_ids == (1,)
    assert audience.toggled("unit_ids", 3).unit_ids == (1, 2, 3)
    assert not audience.toggled("reserve", None).reserve
    assert Audience().is_empty
    assert not Audience(reserve=True).is_empty
