"""Teams: coordinators and grid leaders build them within their area, members of the unit join
them, members leave them; a team is an audience for broadcasts, checked like a unit."""

from __future__ import annotations

import pytest

from bot.db import Database
from services import audiences, teams
from services.access import Actor
from services.audiences import Audience
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.services.broadcast_fixtures import NOW, People, make_people


@pytest.fixture
async def people(demo_db: Database) -> People:
    return await make_people(demo_db)


async def make_team(people: People, who: str, unit: str, name: str, *members: str) -> int:
    actor = await people.actor(who)
    async with people.db.transaction() as session:
        team = await teams.create(session, actor, people.units[unit], name, NOW)
        for member in members:
            await teams.add_member(session, actor, team.id, people[member], NOW)
    return team.id


async def reach(people: People, who: str | Actor, audience: Audience) -> set[int]:
    actor = who if isinstance(who, Actor) else await people.actor(who)
    async with people.db.transaction() as session:
        found = await audiences.resolve(session, actor, audience)
        counted = await audiences.count(session, actor, audience)
    assert counted == len(found) == len(set(found))
    return set(found)


async def test_a_coordinator_builds_a_team_and_a_member_sees_and_leaves_it(
    people: People,
) -> None:
    team_id = await make_team(
        people, "coordinator", "C1", " 清洁  小分队 ", "volunteer", "resident"
    )
    volunteer = await people.actor("volunteer")
    coordinator = await people.actor("coordinator")
    async with people.db.transaction() as session:
        [view] = await teams.my_teams(session, volunteer)
        assert (view.name, view.members, view.unit.code) == ("清洁 小分队", 2, "C1")
        names = {p.name for p in await teams.members(session, coordinator, team_id)}
        assert names == {"volunteer", "resident"}
        assert await teams.leave(session, volunteer, team_id)
        assert not await teams.leave(session, volunteer, team_id), "leaving twice changes nothing"
        assert await teams.my_teams(session, volunteer) == []
        names = {p.name for p in await teams.members(session, coordinator, team_id)}
        assert names == {"resident"}


async def test_names_are_checked_and_unique_per_unit_among_active_teams(people: People) -> None:
    coordinator = await people.actor("coordinator")
    c1, g1 = people.units["C1"], people.units["G1"]
    async with people.db.transaction() as session:
        with pytest.raises(InvalidInput) as empty:
            await teams.create(session, coordinator, c1, "   ", NOW)
        assert empty.value.key == "teams.name_empty"
        with pytest.raises(InvalidInput) as long:
            await teams.create(session, coordinator, c1, "队" * (teams.NAME_MAX + 1), NOW)
        assert long.value.key == "teams.name_too_long"
        first = await teams.create(session, coordinator, c1, "Clean-up", NOW)
        with pytest.raises(Conflict) as taken:
            await teams.create(session, coordinator, c1, "  clean-UP ", NOW)
        assert taken.value.key == "teams.name_taken"
        await teams.create(session, coordinator, g1, "Clean-up", NOW)  # another unit: fine
        other = await teams.create(session, coordinator, c1, "Patrol", NOW)
        with pytest.raises(Conflict):
            await teams.rename(session, coordinator, other.id, "CLEAN-UP")
        await teams.archive(session, coordinator, first.id, NOW)
        again = await teams.create(session, coordinator, c1, "Clean-up", NOW)
        assert again.id != first.id, "an archived team's name is free again"
        renamed = await teams.rename(session, coordinator, other.id, "Night patrol")
        assert renamed.name == "Night patrol"


async def test_only_senders_within_their_scope_manage_teams(people: People) -> None:
    team_id = await make_team(people, "coordinator", "G1", "Medics", "volunteer")
    far = await people.actor("far_coordinator")
    resident = await people.actor("resident")
    leader = await people.actor("grid_leader")
    async with people.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await teams.create(session, far, people.units["C1"], "Mine", NOW)
        with pytest.raises(PermissionDenied):
            await teams.create(session, leader, people.units["C1"], "Above my grid", NOW)
        with pytest.raises(PermissionDenied):
            await teams.create(session, resident, people.units["B1"], "Residents", NOW)
        for forged in (far, resident):
            with pytest.raises(PermissionDenied):
                await teams.add_member(session, forged, team_id, people["resident"], NOW)
            with pytest.raises(PermissionDenied):
                await teams.remove_member(session, forged, team_id, people["volunteer"])
            with pytest.raises(PermissionDenied):
                await teams.rename(session, forged, team_id, "Taken over")
            with pytest.raises(PermissionDenied):
                await teams.archive(session, forged, team_id, NOW)
            with pytest.raises(PermissionDenied):
                await teams.members(session, forged, team_id)
        # The grid leader of G1 manages a team of G1.
        assert await teams.add_member(session, leader, team_id, people["resident"], NOW)
        assert [t.id for t in await teams.teams_in_scope(session, leader)] == [team_id]
        assert await teams.teams_in_scope(session, far) == []
        assert await teams.teams_in_scope(session, resident) == []


async def test_only_members_of_the_unit_can_be_added(people: People) -> None:
    team_id = await make_team(people, "coordinator", "G1", "Medics")
    coordinator = await people.actor("coordinator")
    async with people.db.transaction() as session:
        with pytest.raises(InvalidInput) as outside:
            await teams.add_member(session, coordinator, team_id, people["g2_volunteer"], NOW)
        assert outside.value.key == "teams.member_outside"
        with pytest.raises(NotFound):
            await teams.add_member(session, coordinator, team_id, 999_999, NOW)
        assert await teams.add_member(session, coordinator, team_id, people["volunteer"], NOW)
        assert not await teams.add_member(session, coordinator, team_id, people["volunteer"], NOW)
        offered = {c.id for c in await teams.candidates(session, coordinator, team_id)}
        assert offered == {
            people["grid_leader"],
            people["resident"],
            people["blocked"],
        }, "the unit's members not yet in the team"
        assert (await teams.member_by_ref(session, f"#{people['resident']}")).name == "resident"
        assert (await teams.member_by_ref(session, "tg:4006")).id == people["resident"]
        with pytest.raises(NotFound):
            await teams.member_by_ref(session, "#999999")


async def test_a_team_is_an_audience_and_a_person_in_team_and_unit_is_reached_once(
    people: People,
) -> None:
    team_id = await make_team(people, "coordinator", "C1", "Helpers", "volunteer", "g2_volunteer")
    g1 = people.units["G1"]
    assert await reach(people, "coordinator", Audience(team_ids=(team_id,))) == {
        people["volunteer"],
        people["g2_volunteer"],
    }
    both = Audience(unit_ids=(g1,), team_ids=(team_id,))
    assert await reach(people, "coordinator", both) == {
        people["grid_leader"],
        people["volunteer"],
        people["resident"],
        people["blocked"],
        people["g2_volunteer"],
    }, "the G1 volunteer is in the team and in G1: once"
    narrowed = Audience(unit_ids=(g1,), roles=("resident",), team_ids=(team_id,))
    assert await reach(people, "coordinator", narrowed) == {
        people["volunteer"],  # resident of B1 (in G1) and in the team
        people["resident"],
        people["blocked"],
        people["g2_volunteer"],
    }, "roles narrow the units, not the team"
    audience = Audience.from_json(both.to_json())
    assert audience == both
    assert audience.toggled("team_ids", team_id).team_ids == ()
    assert Audience().toggled("team_ids", 3).team_ids == (3,)


async def test_a_team_outside_the_scope_or_archived_is_refused_even_by_a_forged_id(
    people: People,
) -> None:
    team_id = await make_team(people, "coordinator", "G1", "Medics", "volunteer")
    far_team = await make_team(people, "far_coordinator", "C2", "Far away", "far_resident")
    with pytest.raises(PermissionDenied):
        await reach(people, "far_coordinator", Audience(team_ids=(team_id,)))
    with pytest.raises(PermissionDenied):
        await reach(people, "coordinator", Audience(team_ids=(team_id, far_team)))
    with pytest.raises(NotFound):
        await reach(people, "coordinator", Audience(team_ids=(123_456,)))
    assert await reach(people, Actor.cli(), Audience(team_ids=(far_team,))) == {
        people["far_resident"]
    }
    coordinator = await people.actor("coordinator")
    volunteer = await people.actor("volunteer")
    async with people.db.transaction() as session:
        await teams.archive(session, coordinator, team_id, NOW)
        with pytest.raises(Conflict):
            await teams.add_member(session, coordinator, team_id, people["resident"], NOW)
        assert await teams.teams_in_scope(session, coordinator) == []
        assert await teams.my_teams(session, volunteer) == []
    with pytest.raises(InvalidInput) as archived:
        await reach(people, "coordinator", Audience(team_ids=(team_id,)))
    assert archived.value.key == "audiences.team_archived"


async def test_a_member_who_left_the_unit_is_no_longer_reached_through_the_team(
    people: People,
) -> None:
    from sqlalchemy import delete
    from sqlmodel import col

    from models.members import RoleGrant

    team_id = await make_team(people, "coordinator", "G1", "Medics", "resident", "volunteer")
    async with people.db.transaction() as session:
        await session.execute(
            delete(RoleGrant).where(col(RoleGrant.member_id) == people["resident"])
        )
    assert await reach(people, "coordinator", Audience(team_ids=(team_id,))) == {
        people["volunteer"]
    }
