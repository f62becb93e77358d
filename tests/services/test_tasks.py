"""Tasks with slots, service by service: creating with bad input, taking (also 100 people at
once on 5 slots), giving back, check-in and check-out with points and hours, reminders with a
frozen clock across a restart, emergency widening step by step, and forged requests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import col, func, select

from bot.db import Database
from models.outbox import OutboxMessage
from models.points import HoursEntry, LedgerEntry
from models.tasks import Task, TaskCall, TaskShift, TaskTake, WidenStep
from services import audiences, points, tasks
from services.access import Actor, load_actor
from services.broadcasts import BroadcastPolicy
from services.errors import Conflict, InvalidInput, PermissionDenied, ServiceError
from services.invites import redeem
from services.members import Person
from services.org import unit_by_code
from services.tasks import EmergencyDraft, TaskDraft, TaskRules, TaskView
from tests.services.meeting_fixtures import SHANGHAI, Town, make_town

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
START = datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)
"""Saturday 28 November 2026, 09:00 in Shanghai."""
RULES = TaskRules(zone=SHANGHAI, reminder=timedelta(hours=2), widen_minutes=30)


@pytest.fixture
async def town(demo_db: Database) -> Town:
    return await make_town(demo_db)


async def unit_id(db: Database, code: str) -> int:
    async with db.transaction() as session:
        return (await unit_by_code(session, code)).id


async def new_task(
    town: Town, who: str = "coordinator", slots: int = 5, unit: str = "C1", **kw: object
) -> TaskView:
    draft = TaskDraft(
        title=str(kw.get("title", "清理3号楼垃圾")),
        place=str(kw.get("place", "3号楼门口")),
        starts_at=kw.get("starts_at", START),  # type: ignore[arg-type]
        ends_at=kw.get("ends_at", START + timedelta(hours=2)),  # type: ignore[arg-type]
        slots=slots,
        unit_id=await unit_id(town.db, unit),
    )
    async with town.db.transaction() as session:
        return await tasks.create_task(session, town[who], draft, NOW, RULES)


async def take(town: Town, actor: Actor, shift_id: int, now: datetime = NOW) -> tasks.TakeResult:
    async with town.db.transaction() as session:
        return await tasks.take(session, actor, shift_id, now)


async def volunteers(town: Town, count: int) -> list[Actor]:
    """``count`` more volunteers in grid G1."""
    found = []
    async with town.db.transaction() as session:
        for n in range(count):
            joined = await redeem(
                session,
                "demo-volunteer",
                Person(50_000 + n, 50_000 + n, f"志愿者{n}", "zh_CN"),
                NOW,
            )
            found.append(await load_actor(session, joined.member.id))
    return found


async def takes_of(db: Database, shift_id: int) -> int:
    async with db.transaction() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(TaskTake)
                    .where(col(TaskTake.shift_id) == shift_id)
                )
            ).scalar_one()
        )


async def outbox_keys(db: Database, prefix: str) -> list[str]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(col(OutboxMessage.dedupe_key)).where(
                col(OutboxMessage.dedupe_key).startswith(prefix)
            )
        )
        return sorted(str(k) for k in rows.scalars())


# -- creating ---------------------------------------------------------------------------------


async def test_a_coordinator_posts_a_task_and_the_community_is_called(town: Town) -> None:
    task = await new_task(town)
    assert task.slots == 5
    assert task.taken == 0
    assert len(task.shifts) == 1
    assert task.called > 0
    keys = await outbox_keys(town.db, f"task-call:{task.id}:")
    assert f"task-call:{task.id}:{town.member('volunteer')}" in keys
    assert f"task-call:{task.id}:{town.member('coordinator')}" not in keys, "not the organiser"
    assert f"task-call:{task.id}:{town.member('far_resident')}" not in keys, "C2 is not called"


BAD_TASKS: list[tuple[dict[str, object], str]] = [
    ({"slots": 0}, "tasks.bad_slots"),
    ({"slots": 501}, "tasks.bad_slots"),
    ({"ends_at": START - timedelta(hours=1)}, "tasks.end_before_start"),
    ({"ends_at": START}, "tasks.end_before_start"),
    ({"starts_at": NOW - timedelta(hours=1)}, "meetings.in_past"),
    ({"title": "  "}, "tasks.title_empty"),
    ({"ends_at": START + timedelta(hours=30)}, "tasks.too_long"),
]


async def test_bad_tasks_are_refused_with_a_reason_and_nothing_is_saved(town: Town) -> None:
    for changes, key in BAD_TASKS:
        with pytest.raises(InvalidInput) as refused:
            await new_task(town, **changes)  # type: ignore[arg-type]
        assert refused.value.key == key, changes
    with pytest.raises(InvalidInput) as nobody:
        await new_task(town, who="admin", unit="G2")
    assert nobody.value.key == "tasks.nobody", "nobody in G2 to tell"
    async with town.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Task))).scalar_one() == 0


def test_typed_times_and_numbers() -> None:
    start = tasks.parse_start("2026-11-28 09:00", SHANGHAI, NOW)
    assert start == START
    assert tasks.parse_end("11:00", start, SHANGHAI, NOW) == START + timedelta(hours=2)
    assert tasks.parse_end("2026-11-28 17:30", start, SHANGHAI, NOW) == START + timedelta(hours=8.5)
    with pytest.raises(InvalidInput) as refused:
        tasks.parse_end("09:00", start, SHANGHAI, NOW)
    assert refused.value.key == "tasks.end_before_start"
    with pytest.raises(InvalidInput) as refused:
        tasks.parse_start("2026-11-01 09:00", SHANGHAI, NOW)
    assert refused.value.key == "meetings.in_past"
    assert tasks.parse_shifts("3×8") == (3, 8)
    assert tasks.parse_shifts("3 x 8h") == (3, 8)
    for bad in ("0x8", "3x25", "three"):
        with pytest.raises(InvalidInput):
            tasks.parse_shifts(bad)
    for bad in ("0", "501", "五"):
        with pytest.raises(InvalidInput):
            tasks.parse_slots(bad)
    assert tasks.parse_slots("５") == 5


async def test_only_organisers_in_their_scope_create_tasks(town: Town) -> None:
    for who, unit in (("volunteer", "G1"), ("resident", "B1"), ("far_coordinator", "C1")):
        with pytest.raises(PermissionDenied):
            await new_task(town, who=who, unit=unit)
    task = await new_task(town, who="grid_leader", unit="G1")
    assert task.unit_id == await unit_id(town.db, "G1")


# -- taking -----------------------------------------------------------------------------------


async def test_hundred_members_press_take_on_five_slots_at_once(town: Town) -> None:
    task = await new_task(town, slots=5)
    shift_id = task.shifts[0].id
    people = await volunteers(town, 100)

    async def press(actor: Actor) -> str:
        try:
            await take(town, actor, shift_id)
        except ServiceError as refused:
            return refused.key
        return "taken"

    outcomes = await asyncio.gather(*(press(actor) for actor in people))
    assert outcomes.count("taken") == 5
    assert set(outcomes) == {"taken", "tasks.full"}
    assert await takes_of(town.db, shift_id) == 5
    async with town.db.transaction() as session:
        shift = await session.get(TaskShift, shift_id)
        assert shift is not None
        assert shift.taken == 5


async def test_taking_twice_and_after_full_get_clear_answers(town: Town) -> None:
    task = await new_task(town, slots=1)
    shift_id = task.shifts[0].id
    taken = await take(town, town["volunteer"], shift_id)
    assert (taken.shift.taken, taken.shift.slots) == (1, 1)
    with pytest.raises(Conflict) as twice:
        await take(town, town["volunteer"], shift_id)
    assert twice.value.key == "tasks.already_taken"
    with pytest.raises(Conflict) as full:
        await take(town, town["grid_worker"], shift_id)
    assert full.value.key == "tasks.full"
    assert await takes_of(town.db, shift_id) == 1
    assert await outbox_keys(town.db, f"task-full:{shift_id}:") == [f"task-full:{shift_id}:1"]


async def test_give_back_frees_the_slot_before_the_start_only(town: Town) -> None:
    task = await new_task(town, slots=1)
    shift_id = task.shifts[0].id
    await take(town, town["volunteer"], shift_id)
    async with town.db.transaction() as session:
        back = await tasks.give_back(session, town["volunteer"], shift_id, NOW)
    assert back.shift.taken == 0
    async with town.db.transaction() as session:
        with pytest.raises(Conflict) as again:
            await tasks.give_back(session, town["volunteer"], shift_id, NOW)
    assert again.value.key == "tasks.not_taken"
    await take(town, town["grid_worker"], shift_id)
    async with town.db.transaction() as session:
        with pytest.raises(Conflict) as late:
            await tasks.give_back(session, town["grid_worker"], shift_id, START)
    assert late.value.key == "tasks.started_keep"
    with pytest.raises(Conflict) as started:
        await take(town, town["volunteer"], shift_id, now=START)
    assert started.value.key == "tasks.started"


async def test_a_forged_take_outside_the_audience_is_refused(town: Town) -> None:
    task = await new_task(town, unit="G1", who="grid_leader")
    with pytest.raises(PermissionDenied):
        await take(town, town["far_resident"], task.shifts[0].id)
    assert await takes_of(town.db, task.shifts[0].id) == 0


# -- check-in and check-out -------------------------------------------------------------------


async def test_check_in_and_out_award_points_and_hours_once(town: Town) -> None:
    task = await new_task(town, slots=2)
    shift_id = task.shifts[0].id
    await take(town, town["volunteer"], shift_id)
    async with town.db.transaction() as session:
        _, _, found = await tasks.takers(session, town["coordinator"], shift_id)
    take_id = found[0].take_id
    async with town.db.transaction() as session:
        with pytest.raises(Conflict) as not_in:
            await tasks.check_out(session, town["coordinator"], take_id, START, RULES)
    assert not_in.value.key == "tasks.not_checked_in"
    async with town.db.transaction() as session:
        _, fresh = await tasks.check_in(session, town["coordinator"], take_id, START)
    assert fresh
    async with town.db.transaction() as session:
        _, fresh = await tasks.check_in(session, town["coordinator"], take_id, START)
    assert not fresh
    out_at = START + timedelta(hours=3)  # after the end: only the shift's two hours count
    async with town.db.transaction() as session:
        result, fresh = await tasks.check_out(session, town["coordinator"], take_id, out_at, RULES)
    assert fresh
    assert result.taker.minutes == 120
    assert result.points == 5
    async with town.db.transaction() as session:
        again, fresh = await tasks.check_out(session, town["coordinator"], take_id, out_at, RULES)
    assert not fresh
    assert again.points is None
    volunteer = town.member("volunteer")
    async with town.db.transaction() as session:
        ledger = (
            (
                await session.execute(
                    select(LedgerEntry)
                    .where(col(LedgerEntry.member_id) == volunteer)
                    .where(col(LedgerEntry.source) == "task")
                )
            )
            .scalars()
            .all()
        )
        hours = (
            (
                await session.execute(
                    select(HoursEntry)
                    .where(col(HoursEntry.member_id) == volunteer)
                    .where(col(HoursEntry.source) == "task")
                )
            )
            .scalars()
            .all()
        )
    assert [(e.points, e.rule_code, e.source_id) for e in ledger] == [
        (5, "task_completed", shift_id)
    ]
    assert [h.minutes for h in hours] == [120]


async def test_only_the_organiser_checks_people_in(town: Town) -> None:
    task = await new_task(town, slots=2)
    shift_id = task.shifts[0].id
    await take(town, town["volunteer"], shift_id)
    await take(town, town["grid_worker"], shift_id)
    async with town.db.transaction() as session:
        _, _, found = await tasks.takers(session, town["coordinator"], shift_id)
    for who in ("volunteer", "grid_worker", "far_coordinator"):
        async with town.db.transaction() as session:
            with pytest.raises(PermissionDenied):
                await tasks.check_in(session, town[who], found[0].take_id, START)
        async with town.db.transaction() as session:
            with pytest.raises(PermissionDenied):
                await tasks.takers(session, town[who], shift_id)


# -- reminders --------------------------------------------------------------------------------


async def run_reminders(db: Database, now: datetime) -> int:
    async with db.transaction() as session:
        return await tasks.send_due_reminders(session, now, RULES)


async def test_reminder_goes_once_across_a_restart_and_never_for_a_cancelled_task(
    town: Town,
) -> None:
    task = await new_task(town)
    other = await new_task(town, title="另一个任务")
    await take(town, town["volunteer"], task.shifts[0].id)
    await take(town, town["volunteer"], other.shifts[0].id)
    async with town.db.transaction() as session:
        await tasks.cancel(session, town["coordinator"], other.id, NOW)
    assert await run_reminders(town.db, START - timedelta(hours=3)) == 0, "not due yet"
    due = START - timedelta(hours=2)
    assert await run_reminders(town.db, due) == 1
    # A restart: the job runs again with the same frozen clock, and later.
    assert await run_reminders(town.db, due) == 0
    assert await run_reminders(town.db, due + timedelta(minutes=5)) == 0
    volunteer = town.member("volunteer")
    assert await outbox_keys(town.db, "task-rem:") == [f"task-rem:{task.shifts[0].id}:{volunteer}"]


async def test_someone_who_takes_a_slot_after_the_reminder_is_reminded_at_once(
    town: Town,
) -> None:
    task = await new_task(town)
    shift_id = task.shifts[0].id
    early, late = await volunteers(town, 2)
    await take(town, early, shift_id)
    due = START - timedelta(hours=2)
    assert await run_reminders(town.db, due) == 1
    await take(town, late, shift_id, due + timedelta(minutes=30))
    assert await run_reminders(town.db, due + timedelta(minutes=31)) == 0
    assert await outbox_keys(town.db, "task-rem:") == sorted(
        f"task-rem:{shift_id}:{a.member_id}" for a in (early, late)
    )
    async with town.db.transaction() as session:
        reminder = (
            await session.execute(
                select(OutboxMessage).where(
                    col(OutboxMessage.dedupe_key) == f"task-rem:{shift_id}:{late.member_id}"
                )
            )
        ).scalar_one()
    assert "11月28日" in reminder.payload["text"]
    assert "3号楼门口" in reminder.payload["text"]
    assert reminder.payload["buttons"][0][0]["payload"] == f"tk_back:{shift_id}"


# -- emergency mobilisation -------------------------------------------------------------------


async def emergency(town: Town, slots: int = 2, shifts: int = 3) -> TaskView:
    draft = EmergencyDraft(
        title="防汛值守",
        place="河堤",
        starts_at=START,
        shifts=shifts,
        shift_hours=8,
        slots=slots,
        widen_minutes=30,
        unit_id=await unit_id(town.db, "C1"),
    )
    async with town.db.transaction() as session:
        return await tasks.create_emergency(session, town["coordinator"], draft, NOW, RULES)


async def widen(db: Database, now: datetime) -> int:
    async with db.transaction() as session:
        return await tasks.widen_due(session, now, RULES)


async def calls(db: Database, task_id: int) -> dict[int, str]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(TaskCall.member_id, TaskCall.step).where(col(TaskCall.task_id) == task_id)
        )
        return {int(m): str(s) for m, s in rows.all()}


async def test_emergency_call_has_shifts_and_widens_once_per_step(town: Town) -> None:
    async with town.db.transaction() as session:
        await audiences.join_reserve(session, town["grid_worker"], NOW)
        await audiences.join_reserve(session, town["far_resident"], NOW)
    call = await emergency(town)
    assert [s.number for s in call.shifts] == [1, 2, 3]
    assert call.shifts[1].starts_at == START + timedelta(hours=8)
    assert call.urgent
    assert call.widen_step == WidenStep.reserve
    first = await calls(town.db, call.id)
    assert first == {town.member("grid_worker"): "reserve"}, "the reserve within C1 first"
    assert await widen(town.db, NOW + timedelta(minutes=29)) == 0
    at = NOW + timedelta(minutes=30)
    assert await widen(town.db, at) == 1
    assert await widen(town.db, at) == 0, "the same step never runs twice"
    second = await calls(town.db, call.id)
    assert second[town.member("volunteer")] == "volunteers"
    assert town.member("far_resident") not in second
    assert set(first) <= set(second)
    assert all(second[m] == first[m] for m in first), "nobody is called again"
    assert await widen(town.db, at + timedelta(minutes=30)) == 1
    assert await widen(town.db, at + timedelta(hours=5)) == 0, "the street is the last step"
    third = await calls(town.db, call.id)
    assert town.member("far_resident") in third, "the street reaches C2"
    assert third[town.member("far_resident")] == "street"
    organiser = town.member("coordinator")
    assert await outbox_keys(town.db, f"task-widen:{call.id}:") == [
        f"task-widen:{call.id}:street",
        f"task-widen:{call.id}:volunteers",
    ]
    async with town.db.transaction() as session:
        view = await tasks.task_view(session, call.id)
    assert view.widen_step == WidenStep.street
    assert view.widen_at is None
    assert organiser not in third


async def test_a_full_emergency_call_does_not_widen(town: Town) -> None:
    call = await emergency(town, slots=1, shifts=1)
    await take(town, town["volunteer"], call.shifts[0].id)
    assert await widen(town.db, NOW + timedelta(hours=1)) == 0
    async with town.db.transaction() as session:
        view = await tasks.task_view(session, call.id)
    assert view.widen_step == WidenStep.reserve
    assert view.widen_at is None


async def test_only_coordinators_call_an_emergency(town: Town) -> None:
    draft = EmergencyDraft("x", "y", START, 1, 8, 1, 30, await unit_id(town.db, "G1"))
    async with town.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await tasks.create_emergency(session, town["grid_leader"], draft, NOW, RULES)


async def test_emergency_checkout_awards_emergency_duty(town: Town) -> None:
    call = await emergency(town, slots=1, shifts=1)
    shift_id = call.shifts[0].id
    await take(town, town["volunteer"], shift_id)
    async with town.db.transaction() as session:
        _, _, found = await tasks.takers(session, town["coordinator"], shift_id)
        await tasks.check_in(session, town["coordinator"], found[0].take_id, START)
    async with town.db.transaction() as session:
        result, _ = await tasks.check_out(
            session, town["coordinator"], found[0].take_id, START + timedelta(hours=8), RULES
        )
    assert result.points == 10
    assert result.taker.minutes == 480


async def test_a_task_posted_at_night_is_announced_after_quiet_hours(town: Town) -> None:
    quiet = BroadcastPolicy(
        zone=SHANGHAI,
        quiet_start=time(21, 0),
        quiet_end=time(8, 0),
        renotify_every=timedelta(minutes=30),
        renotify_max=3,
        report_every=timedelta(seconds=5),
    )
    night = datetime(2026, 11, 23, 22, 30, tzinfo=SHANGHAI).astimezone(UTC)
    c1 = await unit_id(town.db, "C1")
    draft = TaskDraft("清理3号楼垃圾", "3号楼门口", START, START + timedelta(hours=2), 5, c1)
    async with town.db.transaction() as session:
        task = await tasks.create_task(
            session, town["coordinator"], draft, night, replace(RULES, quiet=quiet)
        )
        rows = (
            (
                await session.execute(
                    select(OutboxMessage).where(col(OutboxMessage.source) == f"task:{task.id}")
                )
            )
            .scalars()
            .all()
        )
    morning = datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert rows
    assert {row.not_before for row in rows} == {morning}


# -- no-shows ---------------------------------------------------------------------------------


async def test_a_taker_never_checked_in_loses_points_once_and_the_organiser_can_undo(
    town: Town,
) -> None:
    task = await new_task(town, slots=3)
    shift_id = task.shifts[0].id
    came, absent, gave_back = await volunteers(town, 3)
    for actor in (came, absent, gave_back):
        await take(town, actor, shift_id)
    async with town.db.transaction() as session:
        await tasks.give_back(session, gave_back, shift_id, START - timedelta(hours=1))
        await points.award(
            session,
            member_id=absent.member_id or 0,
            rule_code="wish_fulfilled",
            source="wish",
            source_id=1,
            now=NOW,
        )
        _, _, found = await tasks.takers(session, town["coordinator"], shift_id)
        present = next(t for t in found if t.member_id == came.member_id)
        await tasks.check_in(session, town["coordinator"], present.take_id, START)

    async def settle(at: datetime) -> int:
        async with town.db.transaction() as session:
            return await tasks.settle_no_shows(session, at, RULES)

    async def balance(actor: Actor) -> int:
        async with town.db.transaction() as session:
            return await points.balance(session, actor.member_id or 0)

    end = START + timedelta(hours=2)
    assert await settle(end + timedelta(minutes=30)) == 0, "within the grace period"
    assert await balance(absent) == 10
    assert await settle(end + timedelta(hours=1)) == 1
    assert await settle(end + timedelta(hours=2)) == 0, "a rerun deducts nothing more"
    assert await balance(absent) == 5
    assert await balance(came) == 0
    assert await balance(gave_back) == 0, "giving back before the start is not a no-show"
    absent_take = next(t.take_id for t in found if t.member_id == absent.member_id)
    assert await outbox_keys(town.db, "task-noshow:") == [f"task-noshow:{absent_take}"]
    async with town.db.transaction() as session:
        told = (
            await session.execute(
                select(OutboxMessage).where(
                    col(OutboxMessage.dedupe_key) == f"task-noshows:{shift_id}"
                )
            )
        ).scalar_one()
        _, _, listed = await tasks.takers(session, town["coordinator"], shift_id)
    assert told.member_id == town.member("coordinator")
    assert "志愿者1" in told.payload["text"]
    assert "志愿者0" not in told.payload["text"]
    marked = next(t for t in listed if t.member_id == absent.member_id)
    assert marked.no_show_at is not None

    async with town.db.transaction() as session:
        with pytest.raises(PermissionDenied):
            await tasks.undo_no_show(session, came, marked.take_id, NOW, RULES)
    async with town.db.transaction() as session:
        undone, fresh = await tasks.undo_no_show(
            session, town["coordinator"], marked.take_id, end + timedelta(hours=3), RULES
        )
    assert fresh
    assert undone.points == 5
    assert undone.taker.no_show_at is None
    async with town.db.transaction() as session:
        _, again = await tasks.undo_no_show(
            session, town["coordinator"], marked.take_id, end + timedelta(hours=3), RULES
        )
    assert not again
    assert await settle(end + timedelta(hours=4)) == 0
    assert await balance(absent) == 10


def test_an_end_time_before_the_start_is_the_next_morning() -> None:
    night = tasks.parse_start("2026-11-28 22:00", SHANGHAI, NOW)
    end = tasks.parse_end("06:00", night, SHANGHAI, NOW)
    assert end - night == timedelta(hours=8)
    assert end.astimezone(SHANGHAI).day == 29
    assert tasks.parse_end("23:30", night, SHANGHAI, NOW) - night == timedelta(minutes=90)
    for same in ("22:00", "2026-11-28 22:00", "2026-11-28 21:00"):
        with pytest.raises(InvalidInput) as refused:
            tasks.parse_end(same, night, SHANGHAI, NOW)
        assert refused.value.key == "tasks.end_before_start", same
    with pytest.raises(InvalidInput) as too_long:
        tasks.parse_end("2026-11-30 06:00", night, SHANGHAI, NOW)
    assert too_long.value.key == "tasks.too_long"
