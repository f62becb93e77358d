"""Household files: who may see and change them, tags and cadence, assignments and hub groups."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.db import Database
from models.households import Household, HubLink
from models.members import Role
from models.outbox import OutboxMessage
from services import households as hh
from services.access import Actor
from services.demo import seed_demo
from services.errors import Conflict, InvalidInput, PermissionDenied
from services.households import HouseholdDraft
from tests.households_world import NOW, POLICY, World


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await World(demo_db).load()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("138 0000 0001", "13800000001"),
        ("+86 138-0000-0001", "13800000001"),
        ("008613800000001", "13800000001"),
        ("021-55551234", "02155551234"),
        ("（021）5555 1234", "02155551234"),
        ("5555123", "5555123"),
        ("１３８０００００００１", "13800000001"),
    ],
)
def test_phone_numbers_as_people_write_them_are_accepted(raw: str, clean: str) -> None:
    assert hh.clean_phone(raw) == clean


@pytest.mark.parametrize("raw", ["12345", "1380000000", "23800000001", "138000000012", "tel"])
def test_numbers_that_cannot_be_dialled_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as refusal:
        hh.clean_phone(raw)
    assert refusal.value.key == "households.bad_phone"


def test_the_shortest_interval_of_a_households_tags_wins() -> None:
    special = hh.TagView(1, "special_needs", "特需对象", None, 7)
    elderly = hh.TagView(2, "elderly_alone", "独居老人", None, 14)
    rented = hh.TagView(3, "rented", "出租户", None, None)
    slow = hh.TagView(4, "t7", "长期空置", None, 365)
    assert hh.interval_of([elderly, special, rented], 90) == 7
    assert hh.interval_of([rented], 90) == 90
    assert hh.interval_of([], 90) == 90
    assert hh.interval_of([slow], 90) == 365, "a tag may ask for fewer visits"
    assert hh.interval_of([slow, rented], 90) == 90


async def test_grid_worker_adds_a_household_due_within_its_tags_interval(world: World) -> None:
    worker = await world.person(1, "张伟", (Role.grid_worker, "G1"))
    special = await world.tag_ids("special_needs", "low_income")
    async with world.db.transaction() as session:
        view = await hh.add_household(
            session,
            worker,
            world.units["B1"].id,
            HouseholdDraft("和平路88弄3号", "302室", special, "王秀英", "13900001111", 2),
            NOW,
            POLICY,
        )
    assert view.place("zh_CN") == "新德1号楼 和平路88弄3号 302室"
    assert view.interval_days == 7
    assert view.due_at == NOW + timedelta(days=7)
    assert view.phone == "13900001111"
    assert view.tag_labels("zh_CN") == "特需对象、低保户"
    assert view.tag_labels("en") == "Special needs, Low income"


async def test_the_same_address_written_differently_is_one_household(world: World) -> None:
    await world.household("B1", "和平路88弄3号", "302")
    worker = await world.person(1, "张伟", (Role.grid_worker, "G1"))
    with pytest.raises(Conflict):
        async with world.db.transaction() as session:
            await hh.add_household(
                session,
                worker,
                world.units["B1"].id,
                HouseholdDraft("和平路 88弄3号", "３０２"),
                NOW,
                POLICY,
            )
    async with world.db.transaction() as session:
        elsewhere = await hh.add_household(
            session,
            worker,
            world.units["B2"].id,
            HouseholdDraft("和平路88弄3号", "302"),
            NOW,
            POLICY,
        )
    assert elsewhere.building.code == "B2", "another building may have the same door"


@pytest.mark.parametrize(
    ("role", "unit"),
    [
        (Role.volunteer, "G3"),
        (Role.grid_worker, "G2"),
        (Role.resident, "B1"),
        (Role.department, "S1"),
    ],
)
async def test_people_outside_the_grid_cannot_open_a_household(
    world: World, role: Role, unit: str
) -> None:
    household = await world.household("B1", "和平路88弄3号", "302", phone="13900001111")
    outsider = await world.person(9, "路人", (role, unit))
    with pytest.raises(PermissionDenied) as refusal:
        async with world.db.transaction() as session:
            await hh.get_household(session, outsider, household.id)
    assert "13900001111" not in str(refusal.value.params)


@pytest.mark.parametrize(
    ("role", "unit"),
    [
        (Role.volunteer, "G1"),
        (Role.volunteer, "C1"),
        (Role.grid_worker, "G1"),
        (Role.grid_leader, "G1"),
        (Role.coordinator, "C1"),
        (Role.admin, "D1"),
    ],
)
async def test_members_of_the_grid_and_above_see_the_contact(
    world: World, role: Role, unit: str
) -> None:
    household = await world.household("B1", "和平路88弄3号", "302", phone="13900001111")
    insider = await world.person(9, "自己人", (role, unit))
    async with world.db.transaction() as session:
        view = await hh.get_household(session, insider, household.id)
    assert view.phone == "13900001111"


async def test_only_staff_of_the_grid_edit_and_nothing_changes_on_refusal(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "302", phone="13900001111")
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await hh.update_household(session, volunteer, household.id, "phone", "13700000000", NOW)
    async with world.db.transaction() as session:
        view = await hh.update_household(
            session, worker, household.id, "phone", "137 0000 0000", NOW
        )
        assert view.phone == "13700000000"
        view = await hh.update_household(session, worker, household.id, "phone", "-", NOW)
        assert view.phone is None
        view = await hh.update_household(session, worker, household.id, "size", "4", NOW)
        assert view.size == 4
    async with world.db.transaction() as session:
        await hh.update_household(session, worker, household.id, "door", "-", NOW)
    with pytest.raises(InvalidInput) as refusal:
        async with world.db.transaction() as session:
            await hh.update_household(session, worker, household.id, "address", "-", NOW)
    assert refusal.value.key == "households.address_empty"
    async with world.db.transaction() as session:
        view = await hh.get_household(session, worker, household.id)
    assert (view.address, view.door) == ("和平路88弄3号", ""), "nothing changed on refusal"


async def test_changing_a_tags_interval_moves_the_due_dates(world: World) -> None:
    elderly = await world.household("B1", "和平路88弄3号", "101", tags=["elderly_alone"])
    other = await world.household("B1", "和平路88弄3号", "102")
    coordinator = await world.person(4, "陈静", (Role.coordinator, "C1"))
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    (tag_id,) = await world.tag_ids("elderly_alone")
    later = NOW + timedelta(days=2)
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await hh.set_tag_interval(session, worker, tag_id, 3, POLICY, later)
    async with world.db.transaction() as session:
        tag, changed = await hh.set_tag_interval(session, coordinator, tag_id, 10, POLICY, later)
        assert (tag.interval_days, changed) == (10, 1)
        assert (await hh.get_household(session, worker, elderly.id)).due_at == NOW + timedelta(
            days=10
        )
        assert (await hh.get_household(session, worker, other.id)).interval_days == 90
    # The statistics of the days before still count the 14 days then in force.
    assert await world.cadences(elderly.id) == [(14, NOW), (10, later)]
    assert await world.cadences(other.id) == [(90, NOW)]


async def test_changing_a_households_tags_keeps_its_cadence_history(world: World) -> None:
    household = await world.household("B1", "和平路88弄3号", "101")
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    special, elderly, rented = await world.tag_ids("special_needs", "elderly_alone", "rented")
    day2, day3 = NOW + timedelta(days=2), NOW + timedelta(days=3)
    async with world.db.transaction() as session:
        view = await hh.set_household_tags(session, worker, household.id, [elderly], day2, POLICY)
        assert view.interval_days == 14
        # A second tag with a longer cadence: the interval stays 14, nothing new in force.
        await hh.set_household_tags(session, worker, household.id, [elderly, rented], day3, POLICY)
    async with world.db.transaction() as session:
        await hh.set_household_tags(session, worker, household.id, [special], day3, POLICY)
    assert await world.cadences(household.id) == [(90, NOW), (14, day2), (7, day3)]


async def test_coordinators_add_tags_with_their_own_interval(world: World) -> None:
    coordinator = await world.person(4, "陈静", (Role.coordinator, "C1"))
    async with world.db.transaction() as session:
        tag = await hh.add_tag(session, coordinator, " 重点关注 ", 30, NOW)
        assert tag.name == "重点关注"
        with pytest.raises(Conflict):
            await hh.add_tag(session, coordinator, "特需对象", None, NOW)
        with pytest.raises(InvalidInput):
            await hh.add_tag(session, coordinator, "a,b", None, NOW)
    assert hh.parse_interval("14") == 14
    assert hh.parse_interval("-") is None
    with pytest.raises(InvalidInput):
        hh.parse_interval("0")


async def test_search_finds_only_households_in_the_workers_grid(world: World) -> None:
    await world.household("B1", "和平路88弄3号", "302", contact="王秀英")
    await world.household("B3", "和平路90弄1号", "302", contact="王建国")
    await world.household("B4", "光明路1号", "302", contact="王芳")
    worker = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    coordinator = await world.person(4, "陈静", (Role.coordinator, "C1"))
    async with world.db.transaction() as session:
        found, total = await hh.search_households(session, worker, "王")
        assert [v.contact_name for v in found] == ["王秀英"]
        found, total = await hh.search_households(session, coordinator, "302")
        assert total == 2
        found, total = await hh.search_households(session, coordinator, "100%")
        assert total == 0, "wildcards are searched for literally"
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await hh.search_households(session, volunteer, "王")


async def test_grid_leader_assigns_a_building_and_the_member_is_told(world: World) -> None:
    for door in ("101", "102", "103"):
        await world.household("B1", "和平路88弄3号", door)
    await world.household("B2", "和平路88弄5号", "101")
    leader = await world.person(5, "刘队长", (Role.grid_leader, "G1"))
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    far_volunteer = await world.person(6, "赵六", (Role.volunteer, "G3"))
    assert volunteer.member_id is not None
    assert far_volunteer.member_id is not None
    async with world.db.transaction() as session:
        choices = await hh.assignable_members(session, leader, world.units["B1"].id)
        assert [c.name for c in choices] == ["刘队长", "李明"]
        result = await hh.assign_building(
            session, leader, world.units["B1"].id, volunteer.member_id, NOW
        )
        assert (result.assigned, result.kept) == (3, 0)
        again = await hh.assign_building(
            session, leader, world.units["B1"].id, volunteer.member_id, NOW
        )
        assert again.assigned == 0, "assigning again changes nothing"
        told = (
            await session.execute(
                select(OutboxMessage).where(col(OutboxMessage.member_id) == volunteer.member_id)
            )
        ).scalars()
        assert [m.payload["text"] for m in told] == [
            "您已负责走访 新德1号楼 的 3 户。发送 /myhouseholds 查看。"
        ]
        mine = await hh.my_households(session, volunteer)
        assert len(mine.households) == 3
    with pytest.raises(InvalidInput) as refusal:
        async with world.db.transaction() as session:
            await hh.assign_building(
                session, leader, world.units["B1"].id, far_volunteer.member_id, NOW
            )
    assert refusal.value.key == "households.member_cannot_visit"
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await hh.assign_building(
                session, volunteer, world.units["B2"].id, volunteer.member_id, NOW
            )


async def test_only_unassigned_households_can_be_filled_in(world: World) -> None:
    first = await world.household("B1", "和平路88弄3号", "101")
    await world.household("B1", "和平路88弄3号", "102")
    coordinator = await world.person(4, "陈静", (Role.coordinator, "C1"))
    a = await world.person(2, "李明", (Role.volunteer, "G1"))
    b = await world.person(3, "张伟", (Role.grid_worker, "G1"))
    assert a.member_id
    assert b.member_id
    async with world.db.transaction() as session:
        await session.execute(
            Household.__table__.update()  # type: ignore[attr-defined]
            .where(Household.__table__.c.id == first.id)  # type: ignore[attr-defined]
            .values(assignee_id=a.member_id)
        )
        result = await hh.assign_building(
            session, coordinator, world.units["B1"].id, b.member_id, NOW, only_unassigned=True
        )
    assert (result.assigned, result.kept) == (1, 1)


async def test_a_member_outside_their_roles_no_longer_sees_their_households(
    world: World,
) -> None:
    household = await world.household("B1", "和平路88弄3号", "101", phone="13900001111")
    volunteer = await world.person(2, "李明", (Role.volunteer, "G1"))
    async with world.db.transaction() as session:
        await session.execute(
            Household.__table__.update()  # type: ignore[attr-defined]
            .where(Household.__table__.c.id == household.id)  # type: ignore[attr-defined]
            .values(assignee_id=volunteer.member_id)
        )
    moved_away = Actor(volunteer.member_id, ())
    async with world.db.transaction() as session:
        mine = await hh.my_households(session, moved_away)
    assert (mine.households, mine.out_of_scope) == ([], 1)


async def test_hub_members_link_about_ten_members_one_hub_each(world: World) -> None:
    leader = await world.person(5, "刘队长", (Role.grid_leader, "G1"))
    hub = await world.person(10, "党员中心户", (Role.volunteer, "G1"))
    members = [await world.person(11 + i, f"党员{i}", (Role.volunteer, "G1")) for i in range(3)]
    other_hub = await world.person(20, "另一中心户", (Role.volunteer, "C1"))
    far = await world.person(30, "远方", (Role.volunteer, "G3"))
    assert hub.member_id
    assert other_hub.member_id
    assert far.member_id
    async with world.db.transaction() as session:
        for member in members:
            assert member.member_id
            group = await hh.set_hub_member(
                session, leader, hub.member_id, member.member_id, True, NOW
            )
        assert [m.name for m in group.members] == ["党员0", "党员1", "党员2"]
        moved = members[0].member_id
        assert moved
        group = await hh.set_hub_member(session, leader, other_hub.member_id, moved, True, NOW)
        assert [m.name for m in group.members] == ["党员0"], "a member has one hub"
        assert len((await hh.hub_group(session, leader, hub.member_id)).members) == 2
        with pytest.raises(InvalidInput):
            await hh.set_hub_member(session, leader, hub.member_id, hub.member_id, True, NOW)
        with pytest.raises(InvalidInput):
            await hh.set_hub_member(session, leader, hub.member_id, other_hub.member_id, True, NOW)
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await hh.set_hub_member(session, leader, hub.member_id, far.member_id, True, NOW)
    async with world.db.transaction() as session:
        links = (await session.execute(select(func.count()).select_from(HubLink))).scalar_one()
    assert links == 3


async def test_members_are_found_by_phone_or_telegram_id(world: World) -> None:
    await world.person(7001, "李明", (Role.volunteer, "G1"), phone="13800000002")
    async with world.db.transaction() as session:
        assert (await hh.member_by_ref(session, "138 0000 0002")).name == "李明"
        assert (await hh.member_by_ref(session, "tg:7001")).name == "李明"
        with pytest.raises(Exception, match="member_unknown_ref"):
            await hh.member_by_ref(session, "13999999999")


def test_cli_assigns_buildings_and_groups_members(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def setup() -> None:
        db = Database(database_url)
        async with db.transaction() as session:
            await seed_demo(session, NOW)
        world = await World(db).load()
        await world.person(7002, "李明", (Role.volunteer, "G1"), phone="13800000002")
        await world.person(7003, "王五", (Role.volunteer, "G1"), phone="13800000003")
        await world.person(7009, "赵六", (Role.volunteer, "G3"), phone="13800000009")
        for door in ("101", "102"):
            await world.household("B1", "和平路88弄3号", door)
        await world.household("B2", "和平路88弄5号", "101")
        await db.dispose()

    asyncio.run(setup())
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    both = ["--building", "B1", "--building", "B2"]
    done = runner.invoke(app, ["households", "assign", *both, "--member", "138 0000 0002"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "已将 B1 的 2 户交给 李明。",
        "已将 B2 的 1 户交给 李明。",
    ]
    refused = runner.invoke(
        app, ["households", "assign", "--building", "B1", "--member", "13800000009"]
    )
    assert refused.exit_code == 2
    assert "赵六 没有 新德1号楼 (B1) 的走访权限" in refused.stderr
    grouped = runner.invoke(app, ["households", "hub", "13800000002", "tg:7003"])
    assert grouped.exit_code == 0, grouped.output
    assert grouped.stdout.strip() == "李明 联系 1 人：王五"
    unknown = runner.invoke(app, ["households", "hub", "13800000002", "13999999999"])
    assert unknown.exit_code == 2
    assert "找不到成员“13999999999”" in unknown.stderr
    template = runner.invoke(app, ["households", "template", "t.xlsx"])
    assert template.exit_code == 0
    assert (tmp_path / "t.xlsx").read_bytes().startswith(b"PK")
