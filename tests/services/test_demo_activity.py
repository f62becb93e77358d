"""The sandbox's demo activity: a broadcast with its report and a task with one slot taken,
which a newcomer finds in /broadcasts and /tasks; loading it twice adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import func, select

from bot.db import Database
from models.broadcasts import Broadcast
from models.tasks import Task, TaskTake
from services import broadcasts, tasks
from services.access import load_actor
from services.demo_activity import DemoPerson, Seeded, seed_activity
from services.invites import redeem
from services.members import Person
from services.tasks import TaskRules
from tests.services.test_broadcasts import POLICY

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
RULES = TaskRules(zone=ZoneInfo("Asia/Shanghai"))
COORDINATOR = DemoPerson(1004, "陈静", "demo-coordinator")
VOLUNTEER = DemoPerson(1002, "李明", "demo-volunteer")


async def seed(db: Database) -> Seeded:
    async with db.transaction() as session:
        return await seed_activity(session, NOW, COORDINATOR, VOLUNTEER, RULES, POLICY)


async def count(db: Database, model: type) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_newcomer_finds_a_broadcast_and_a_task_and_a_second_load_adds_nothing(
    demo_db: Database,
) -> None:
    first = await seed(demo_db)
    assert first.task_id is not None
    assert first.broadcast_id is not None
    assert await seed(demo_db) == Seeded(None, None)
    assert (await count(demo_db, Task), await count(demo_db, Broadcast)) == (1, 2), (
        "one task; two broadcasts: the notice and the task's announcement"
    )
    assert await count(demo_db, TaskTake) == 1

    async with demo_db.transaction() as session:
        coordinator = await redeem(
            session, "demo-coordinator", Person(1004, 1004, "陈静", "zh_CN"), NOW
        )
        sent = await broadcasts.my_broadcasts(
            session, await load_actor(session, coordinator.member.id)
        )
        volunteer = await redeem(
            session, "demo-volunteer", Person(1002, 1002, "李明", "zh_CN"), NOW
        )
        mine = await tasks.listing(session, await load_actor(session, volunteer.member.id), NOW)
        newcomer = await redeem(
            session, "demo-resident", Person(1001, 1001, "王阿姨", "zh_CN"), NOW
        )
        listed = await tasks.listing(session, await load_actor(session, newcomer.member.id), NOW)
    assert coordinator.already, "the sandbox's coordinator is already in"
    assert len(sent) == 2, "the notice and the task's announcement are both in /broadcasts"
    report = next(r for r in sent if r.broadcast_id == first.broadcast_id)
    assert report.recipients >= 1
    assert report.ask_ack
    [(task, shift)] = mine.mine
    assert (task.id, shift.taken, shift.slots) == (first.task_id, 1, 5)
    assert task.starts_at.astimezone(RULES.zone).isoweekday() == 6, "a Saturday morning"
    assert task.starts_at - NOW > timedelta(days=1)
    assert [t.id for t in listed.open] == [first.task_id], "a resident who joins sees it"
