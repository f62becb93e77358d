"""The issue loop in the services: numbers, deadlines, the closed loop, answer-back, duplicates,
the public board, categories and deadline rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.db import Database
from models.issues import (
    EventKind,
    IssuePriority,
    IssueSource,
    IssueStatus,
    IssueTimer,
    Rating,
    Tier,
)
from services import issues
from services.errors import Conflict, InvalidInput, PermissionDenied
from tests.issues_world import MONDAY_10AM, POLICY, World, build_world

NOW = MONDAY_10AM


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await build_world(demo_db)


async def test_a_report_gets_a_number_and_the_grid_staff_are_told(world: World) -> None:
    first = await world.report()
    second = await world.report(description="又堵住了")
    assert first.number == "C1-2026-0001"
    assert second.number == "C1-2026-0002"
    assert first.grid is not None
    assert first.grid.code == "G1"
    assert first.building is not None
    assert first.building.code == "B1"
    assert first.status == IssueStatus.new
    assert first.due_at == NOW + timedelta(minutes=10), "10 working minutes to respond"
    for staff in ("worker", "worker2", "leader"):
        told = await world.told(staff)
        assert "🆕 新的问题上报：C1-2026-0001 · 停车管理" in told[0]
        assert "楼下消防通道被车堵住了" in told[0]
    assert await world.told("other_worker") == [], "another grid's staff hear nothing"
    assert await world.told("coordinator") == []


async def test_numbers_count_per_community(world: World) -> None:
    await world.report()
    other = await world.report("far_resident")
    assert other.number == "C2-2026-0001"


async def test_a_report_after_hours_is_due_early_the_next_working_day(world: World) -> None:
    friday_evening = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    view = await world.report(now=friday_evening)
    assert view.due_at == datetime(2026, 11, 30, 0, 40, tzinfo=UTC), "Monday 08:40"


async def test_an_urgent_report_counts_around_the_clock(world: World) -> None:
    saturday_night = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    view = await world.report(category="safety_hazard", now=saturday_night)
    assert view.priority == IssuePriority.urgent
    assert view.due_at == saturday_night + timedelta(minutes=10)


def test_working_minutes_skip_nights_and_weekends() -> None:
    policy = POLICY
    friday_1720 = datetime(2026, 11, 27, 9, 20, tzinfo=UTC)
    assert policy.add_working_minutes(friday_1720, 30) == datetime(
        2026, 11, 30, 0, 50, tzinfo=UTC
    ), "10 minutes on Friday, 20 on Monday from 08:30"
    assert policy.in_working_hours(NOW)
    assert not policy.in_working_hours(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))


async def test_a_coordinators_deadline_applies_in_their_community_only(world: World) -> None:
    async with world.db.transaction() as session:
        parking = next(c for c in await issues.categories_for(session, None) if c.code == "parking")
        await issues.set_deadlines(
            session, world["coordinator"], parking.id, IssuePriority.normal, 30, 48, NOW
        )
    ours = await world.report()
    theirs = await world.report("far_resident")
    assert ours.due_at == NOW + timedelta(minutes=30)
    assert theirs.due_at == NOW + timedelta(minutes=10)


async def test_the_grid_comes_from_the_location_when_the_reporter_has_none(world: World) -> None:
    near_g2 = await world.report("community_resident", latitude=31.2311, longitude=121.4746)
    assert near_g2.grid is not None
    assert near_g2.grid.code == "G2"
    assert near_g2.tier == Tier.grid
    with pytest.raises(InvalidInput) as refused:
        await world.report("community_resident", latitude=39.9, longitude=116.4)
    assert refused.value.key == "issues.place_unknown"


async def test_a_report_placed_on_a_community_goes_to_its_coordinators(world: World) -> None:
    async with world.db.transaction() as session:
        c1 = (await issues.communities(session))[0]
    view = await world.report("community_resident", unit_id=c1.id, latitude=39.9, longitude=116.4)
    assert view.grid is None
    assert view.tier == Tier.community
    assert "新的问题上报" in (await world.told("coordinator"))[0]
    assert await world.told("worker") == []


async def test_a_grid_worker_reports_for_a_resident_who_is_answered_back(world: World) -> None:
    async with world.db.transaction() as session:
        found = await issues.resident_by_phone(
            session, world["worker"], f"138 0000 {3000 + list(world.ids).index('resident'):04d}"
        )
    assert found is not None
    assert found.id == world.id("resident")
    view = await world.report("worker", on_behalf_of=found.id)
    assert view.reporter is not None
    assert view.reporter.id == world.id("resident")
    assert view.reported_by is not None
    assert view.reported_by.id == world.id("worker")
    assert "网格工作人员已代您上报问题 C1-2026-0001" in (await world.told("resident"))[0]
    async with world.db.transaction() as session:
        outside = await issues.resident_by_phone(
            session,
            world["other_worker"],
            f"1380000{3000 + list(world.ids).index('resident'):04d}",
        )
    assert outside is None, "a phone number outside one's scope finds nobody"


async def test_only_staff_report_for_others_unless_it_comes_from_a_visit(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.report("resident", on_behalf_note="3号楼李大爷")
    with pytest.raises(PermissionDenied):
        await world.report("volunteer", on_behalf_of=world.id("resident"))
    async with world.db.transaction() as session:
        b1 = await issues.home_place(session, world["resident"])
    assert b1 is not None
    found = await world.report(
        "volunteer",
        unit_id=b1.unit.id,
        on_behalf_note="2号楼 独居老人李大爷",
        source=IssueSource.visit,
        source_id=41,
    )
    assert found.building is not None
    assert found.building.code == "B1"
    assert found.reporter is not None
    assert found.reporter.id == world.id("volunteer"), "answered back: the visiting volunteer"
    with pytest.raises(PermissionDenied):
        await world.report(
            "far_resident", unit_id=b1.unit.id, source=IssueSource.visit, source_id=9
        )


async def test_the_same_visit_need_makes_one_issue(world: World) -> None:
    first = await world.report("worker", source=IssueSource.visit, source_id=7)
    again = await world.report("worker", source=IssueSource.visit, source_id=7)
    meeting = await world.report(
        "coordinator",
        unit_id=first.grid.id if first.grid else None,
        source=IssueSource.meeting,
        source_id=7,
    )
    assert again.id == first.id
    assert first.source == IssueSource.visit
    assert first.source_id == 7
    assert meeting.id != first.id


async def test_bad_reports_are_refused_with_a_reason(world: World) -> None:
    for fields, key in (
        ({"description": "   "}, "issues.description_empty"),
        ({"description": "x" * 1001}, "issues.description_too_long"),
        ({"photos": [f"p{i}" for i in range(6)]}, "issues.too_many_photos"),
        ({"latitude": 91.0, "longitude": 0.0}, "issues.location_invalid"),
        ({"category": "no-such"}, "issues.category_unknown"),
        ({"address": "x" * 201}, "issues.address_too_long"),
    ):
        with pytest.raises((InvalidInput, Exception)) as refused:
            await world.report(**fields)
        assert getattr(refused.value, "key", None) == key, fields
    assert await world.outbox_count() == 0


async def test_the_closed_loop_with_an_unsatisfied_rating(world: World) -> None:
    view = await world.report(photos=["photo-1"], latitude=31.23, longitude=121.473)
    async with world.db.transaction() as session:
        accepted = await issues.accept(session, world["worker"], view.id, NOW, POLICY)
    assert accepted.status == IssueStatus.accepted
    assert accepted.due_at == NOW + timedelta(hours=72)
    async with world.db.transaction() as session:
        await issues.assign(session, world["coordinator"], view.id, world.id("worker"), NOW, POLICY)
        await issues.start(session, world["worker"], view.id, NOW)
        resolved = await issues.resolve(
            session, world["worker"], view.id, "已联系车主挪车", NOW, POLICY, photo="after-1"
        )
    assert resolved.status == IssueStatus.resolved
    assert resolved.resolution_photos == ("after-1",)
    told = await world.told("resident")
    assert told[0] == "您反映的问题 C1-2026-0001 已受理（新德第一网格）。"
    assert told[1] == "C1-2026-0001 已交由新德第一网格 网格员处理。"
    assert "张伟" not in "".join(told), "the reporter never learns the handler's name"
    assert "已联系车主挪车" in told[-1]

    async with world.db.transaction() as session:
        reopened = await issues.rate(
            session, world["resident"], view.id, 0, Rating.unsatisfied, NOW, POLICY
        )
    assert reopened.status == IssueStatus.reopened
    assert reopened.cycle == 1
    assert "不满意" in (await world.told("worker"))[-1]
    assert "不满意" in (await world.told("coordinator"))[-1], "the tier above is told"
    with pytest.raises(Conflict):
        async with world.db.transaction() as session:
            await issues.rate(session, world["resident"], view.id, 0, Rating.satisfied, NOW, POLICY)

    async with world.db.transaction() as session:
        await issues.resolve(session, world["worker"], view.id, "已安装隔离桩", NOW, POLICY)
        closed = await issues.rate(
            session, world["resident"], view.id, 1, Rating.satisfied, NOW, POLICY
        )
    assert closed.status == IssueStatus.closed
    kinds = [e.kind for e in await world.events(view.id)]
    assert kinds == [
        EventKind.reported,
        EventKind.accepted,
        EventKind.assigned,
        EventKind.started,
        EventKind.resolved,
        EventKind.rated,
        EventKind.reopened,
        EventKind.resolved,
        EventKind.rated,
        EventKind.closed,
    ]
    assert "居民评价：满意" in (await world.told("worker"))[-1]


async def test_the_second_accept_is_told_it_was_already_accepted(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.accept(session, world["worker"], view.id, NOW, POLICY)
    with pytest.raises(Conflict) as conflict:
        async with world.db.transaction() as session:
            await issues.accept(session, world["worker2"], view.id, NOW, POLICY)
    assert conflict.value.key == "issues.already_accepted"
    accepted = [e for e in await world.events(view.id) if e.kind == EventKind.accepted]
    assert [e.actor_id for e in accepted] == [world.id("worker")]


async def test_reject_tells_the_reporter_the_reason(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        rejected = await issues.reject(session, world["leader"], view.id, "不属于本网格", NOW)
    assert rejected.status == IssueStatus.rejected
    assert (await world.told("resident"))[-1] == "很抱歉，C1-2026-0001 不予受理：不属于本网格"
    with pytest.raises(Conflict):
        async with world.db.transaction() as session:
            await issues.accept(session, world["worker"], view.id, NOW, POLICY)


async def test_a_duplicate_moves_its_reporter_to_the_original(world: World) -> None:
    original = await world.report()
    copy = await world.report("neighbour", description="车堵了通道")
    async with world.db.transaction() as session:
        marked = await issues.mark_duplicate(
            session, world["worker"], copy.id, original.number.lower(), NOW
        )
    assert marked.status == IssueStatus.duplicate
    assert marked.duplicate_of == original.number
    assert "与 C1-2026-0001 是同一问题" in (await world.told("neighbour"))[-1]
    async with world.db.transaction() as session:
        await issues.accept(session, world["worker"], original.id, NOW, POLICY)
    assert "C1-2026-0001 已受理" in (await world.told("neighbour"))[-1], "now follows the original"
    async with world.db.transaction() as session:
        card = await issues.get_card(session, world["neighbour"], original.id)
    assert card.access == issues.Access.follower


async def test_similar_open_reports_are_offered_to_the_reporter(world: World) -> None:
    existing = await world.report(latitude=31.2300, longitude=121.4730)
    await world.report(category="dogs")
    async with world.db.transaction() as session:
        place = await issues.home_place(session, world["neighbour"])
        assert place is not None
        same = await issues.similar_open_issues(session, place, existing.category.id, NOW, POLICY)
        later = await issues.similar_open_issues(
            session, place, existing.category.id, NOW + timedelta(days=15), POLICY
        )
        far_place = await issues.home_place(session, world["far_resident"])
        assert far_place is not None
        elsewhere = await issues.similar_open_issues(
            session, far_place, existing.category.id, NOW, POLICY
        )
        g1 = await issues.place_of(session, place.grid.id if place.grid else 0)
        near = await issues.similar_open_issues(
            session, g1, existing.category.id, NOW, POLICY, latitude=31.2305, longitude=121.4731
        )
        away = await issues.similar_open_issues(
            session, g1, existing.category.id, NOW, POLICY, latitude=31.2400, longitude=121.4731
        )
    assert [line.number for line in same] == [existing.number], "same building, same category"
    assert later == [], "only recent ones"
    assert elsewhere == []
    assert [line.number for line in near] == [existing.number], "within 150 m"
    assert away == []


async def test_a_neighbour_follows_instead_of_reporting_again(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.follow(session, world["neighbour"], view.id, NOW)
        await issues.follow(session, world["neighbour"], view.id, NOW)
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await issues.follow(session, world["far_resident"], view.id, NOW)
    async with world.db.transaction() as session:
        await issues.accept(session, world["worker"], view.id, NOW, POLICY)
        card = await issues.get_card(session, world["worker"], view.id)
    assert card.issue.followers == 1
    assert "已受理" in (await world.told("neighbour"))[-1]


async def test_whistle_and_report_in(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        people = await issues.departments_for(session, world["coordinator"], view.id)
        assert [p.id for p in people] == [world.id("department")]
        whistled = await issues.whistle(
            session, world["coordinator"], view.id, world.id("department"), NOW, POLICY
        )
    assert whistled.tier == Tier.department
    assert whistled.due_at == NOW + timedelta(minutes=30)
    assert "吹哨报到：请就 C1-2026-0001 · 停车管理 报到" in (await world.told("department"))[-1]
    assert "已「吹哨」" in (await world.told("resident"))[-1]
    async with world.db.transaction() as session:
        reported = await issues.report_in(session, world["department"], view.id, NOW, POLICY)
    assert reported.status == IssueStatus.assigned
    assert reported.assignee is not None
    assert reported.assignee.id == world.id("department")
    assert "部门已就" in (await world.told("coordinator"))[-1]
    assert (await world.told("resident"))[-1] == "C1-2026-0001 已交由和平街道 部门联络员处理。"
    with pytest.raises(Conflict):
        async with world.db.transaction() as session:
            await issues.report_in(session, world["department"], view.id, NOW, POLICY)


async def test_urgent_shortens_a_running_deadline_but_never_lengthens_it(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        await issues.accept(session, world["worker"], view.id, NOW, POLICY)
        urgent = await issues.set_priority(
            session, world["worker"], view.id, IssuePriority.urgent, NOW, POLICY
        )
        normal = await issues.set_priority(
            session, world["worker"], view.id, IssuePriority.normal, NOW, POLICY
        )
    assert urgent.due_at == NOW + timedelta(hours=24)
    assert normal.due_at == urgent.due_at


async def test_the_board_lists_resolved_issues_of_ones_grid(world: World) -> None:
    view = await world.report(
        description="张三 13812345678 在3号楼2单元501室门口堆放杂物，Room 1203 也有",
        address="和平路8号3号楼501室",
    )
    other_grid = await world.report("far_resident")
    still_open = await world.report(category="dogs")
    for issue_id, who in ((view.id, "worker"), (other_grid.id, "other_worker")):
        async with world.db.transaction() as session:
            await issues.assign(session, world[who], issue_id, world.id(who), NOW, POLICY)
            await issues.resolve(session, world[who], issue_id, "已清理", NOW, POLICY)
    async with world.db.transaction() as session:
        await issues.rate(session, world["resident"], view.id, 0, Rating.satisfied, NOW, POLICY)
        board = await issues.board(session, world["neighbour"], NOW + timedelta(days=1), POLICY)
        old = await issues.board(session, world["neighbour"], NOW + timedelta(days=31), POLICY)
    assert board.unit.code == "G1"
    assert [e.number for e in board.entries] == [view.number], "own grid, resolved only"
    assert board.entries[0].place.code == "B1", "the building, not the door"
    assert board.entries[0].rating == Rating.satisfied
    assert old.entries == ()
    assert still_open.number not in [e.number for e in board.entries]


async def test_neighbours_see_descriptions_without_phones_or_doors(world: World) -> None:
    view = await world.report(description="王五 13812345678 把电动车停在3号楼2单元501室门口")
    async with world.db.transaction() as session:
        offered = await issues.issue_lines(session, [view.id])
        await issues.follow(session, world["neighbour"], view.id, NOW)
        staff = await issues.get_card(session, world["worker"], view.id)
        follower = await issues.get_card(session, world["neighbour"], view.id)
    assert offered[0].description == "王五 *** 把电动车停在3号楼2单元**室门口"
    assert "13812345678" in staff.issue.description, "staff see it as written"
    assert "13812345678" not in follower.issue.description


def test_redaction_hides_phones_and_doors() -> None:
    assert issues.redact("电话13800001111") == "电话***"
    assert issues.redact("5栋2单元302") == "5栋2单元**"
    assert issues.redact("3-2-501门口") == "3-*-*门口"
    assert issues.redact("1202室") == "**室"
    assert issues.redact("flat 12B, room 7") == "flat *, room *"
    assert issues.redact("3号楼") == "3号楼"


async def test_coordinators_add_categories_for_their_community(world: World) -> None:
    async with world.db.transaction() as session:
        added = await issues.add_category(
            session, world["coordinator"], "高空抛物", "Things thrown from windows", NOW
        )
        with pytest.raises(Conflict):
            await issues.add_category(session, world["coordinator"], "高空抛物", None, NOW)
    async with world.db.transaction() as session:
        ours = await issues.home_place(session, world["resident"])
        theirs = await issues.home_place(session, world["far_resident"])
        assert ours is not None
        assert theirs is not None
        in_c1 = [c.name for c in await issues.categories_for(session, ours.unit)]
        in_c2 = [c.name for c in await issues.categories_for(session, theirs.unit)]
    assert in_c1[-1] == "高空抛物"
    assert "高空抛物" not in in_c2
    view = await world.report(category=added.id)
    assert view.category.name == "高空抛物"
    with pytest.raises(InvalidInput):
        await world.report("far_resident", category=added.id)
    with pytest.raises(PermissionDenied):
        async with world.db.transaction() as session:
            await issues.add_category(session, world["worker"], "随便", None, NOW)
    async with world.db.transaction() as session:
        hidden = await issues.set_category_active(session, world["coordinator"], added.id, False)
        assert not hidden.active
        parking = (await issues.categories_for(session, None))[0]
        with pytest.raises(PermissionDenied):
            await issues.set_category_active(session, world["coordinator"], parking.id, False)


async def test_deadline_rows_are_planned_once_per_deadline(world: World) -> None:
    view = await world.report()
    async with world.db.transaction() as session:
        timers = (
            (
                await session.execute(
                    select(IssueTimer)
                    .where(col(IssueTimer.issue_id) == view.id)
                    .order_by(col(IssueTimer.id))
                )
            )
            .scalars()
            .all()
        )
    assert [(t.kind, t.due_at) for t in timers] == [
        ("response_reminder", NOW + timedelta(minutes=8)),
        ("response_breach", NOW + timedelta(minutes=10)),
    ]
