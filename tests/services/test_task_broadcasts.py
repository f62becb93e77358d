"""A task's announcement is a broadcast: the organiser's /broadcasts lists it with a live
delivery report, its copies carry the take buttons, taking a slot acknowledges it, and an
emergency call's widening steps add people to the same broadcast, each person once."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from bot.db import Database
from bot.i18n import translator
from models.broadcasts import Broadcast, BroadcastRecipient
from models.outbox import OutboxMessage, OutboxStatus, Priority
from models.tasks import Task
from services import audiences, broadcasts, tasks
from services.broadcasts import BroadcastPolicy, Report
from services.errors import PermissionDenied
from tests.services.meeting_fixtures import SHANGHAI, Town, make_town
from tests.services.test_tasks import NOW, calls, emergency, new_task, take, widen


@pytest.fixture
async def town(demo_db: Database) -> Town:
    return await make_town(demo_db)


async def broadcast_of(db: Database, task_id: int) -> int:
    async with db.transaction() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        assert task.broadcast_id is not None, "the announcement is recorded as a broadcast"
        return task.broadcast_id


async def report(db: Database, broadcast_id: int) -> Report:
    async with db.transaction() as session:
        return await broadcasts.report_of(session, broadcast_id)


async def mark_sent(db: Database, task_id: int) -> None:
    """What the sender job does once the copies went out."""
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.source) == tasks.source_of(task_id))
            .values(status=OutboxStatus.sent)
        )


async def copies(db: Database, task_id: int) -> list[OutboxMessage]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(OutboxMessage).where(col(OutboxMessage.source) == tasks.source_of(task_id))
        )
        return list(rows.scalars())


async def test_a_task_appears_in_the_organisers_broadcasts_with_its_report(town: Town) -> None:
    task = await new_task(town)
    broadcast_id = await broadcast_of(town.db, task.id)
    async with town.db.transaction() as session:
        [listed] = await broadcasts.my_broadcasts(session, town["coordinator"])
        live = (
            await session.execute(
                select(OutboxMessage).where(
                    col(OutboxMessage.source) == broadcasts.report_source_of(broadcast_id)
                )
            )
        ).scalar_one()
    assert listed.broadcast_id == broadcast_id
    assert listed.task_title == "清理3号楼垃圾"
    assert (listed.recipients, listed.queued, listed.sent) == (task.called, task.called, 0)
    assert listed.ask_ack
    assert live.member_id == town.member("coordinator"), "the organiser gets the live report"
    text = broadcasts.render_report(translator("zh_CN"), listed, SHANGHAI)
    assert "📋 任务：清理3号楼垃圾" in text
    assert "已确认（报名即确认）0" in text

    sent = await copies(town.db, task.id)
    assert len(sent) == task.called
    assert all("tk_take:" in str(row.payload) for row in sent), "the copies carry take buttons"
    assert all("bc_ack:" not in str(row.payload) for row in sent)
    assert {row.priority for row in sent} == {Priority.normal}
    await mark_sent(town.db, task.id)
    delivered = await report(town.db, broadcast_id)
    assert (delivered.queued, delivered.sent) == (0, task.called)
    assert delivered.settled
    async with town.db.transaction() as session:
        card = await tasks.task_card(session, town["coordinator"], task.id)
    assert card.delivery is not None
    assert card.delivery.sent == task.called, "the task card counts the same copies"


async def test_taking_a_slot_acknowledges_the_announcement_once(town: Town) -> None:
    task = await new_task(town)
    broadcast_id = await broadcast_of(town.db, task.id)
    await mark_sent(town.db, task.id)
    await take(town, town["volunteer"], task.shifts[0].id)
    acknowledged = await report(town.db, broadcast_id)
    assert acknowledged.acknowledged == 1
    async with town.db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert broadcast.settled_at is None, "the report job shows the new number"
        await tasks.give_back(session, town["volunteer"], task.shifts[0].id, NOW)
    await take(town, town["volunteer"], task.shifts[0].id)
    assert (await report(town.db, broadcast_id)).acknowledged == 1, "counted once"
    await take(town, town["coordinator"], task.shifts[0].id)
    assert (await report(town.db, broadcast_id)).acknowledged == 1, (
        "the organiser was not a recipient: nothing to acknowledge"
    )


async def test_a_recipient_who_cannot_come_still_acknowledges_and_a_stranger_cannot(
    town: Town,
) -> None:
    task = await new_task(town)
    broadcast_id = await broadcast_of(town.db, task.id)
    policy = BroadcastPolicy(
        zone=SHANGHAI,
        quiet_start=time(21, 0),
        quiet_end=time(8, 0),
        renotify_every=timedelta(minutes=30),
        renotify_max=3,
        report_every=timedelta(seconds=5),
    )
    async with town.db.transaction() as session:
        assert await broadcasts.acknowledge(session, town["resident"], broadcast_id, NOW, policy)
        with pytest.raises(PermissionDenied):
            await broadcasts.acknowledge(session, town["far_resident"], broadcast_id, NOW, policy)
    assert (await report(town.db, broadcast_id)).acknowledged == 1


async def test_emergency_widening_adds_people_to_the_same_broadcast_each_once(
    town: Town,
) -> None:
    async with town.db.transaction() as session:
        await audiences.join_reserve(session, town["grid_worker"], NOW)
    call = await emergency(town)
    broadcast_id = await broadcast_of(town.db, call.id)
    first = await report(town.db, broadcast_id)
    assert first.urgent
    assert first.recipients == 1
    at = NOW + timedelta(minutes=30)
    assert await widen(town.db, at) == 1
    assert await widen(town.db, at + timedelta(minutes=30)) == 1
    called = await calls(town.db, call.id)
    assert await broadcast_of(town.db, call.id) == broadcast_id, "one broadcast for the call"
    async with town.db.transaction() as session:
        recipients = list(
            (
                await session.execute(
                    select(col(BroadcastRecipient.member_id)).where(
                        col(BroadcastRecipient.broadcast_id) == broadcast_id
                    )
                )
            ).scalars()
        )
        broadcasts_made = (
            await session.execute(select(func.count()).select_from(Broadcast))
        ).scalar_one()
    assert sorted(recipients) == sorted(called), "every called person is a recipient, once"
    assert broadcasts_made == 1
    sent = await copies(town.db, call.id)
    members = [row.member_id for row in sent]
    assert len(members) == len(set(members)) == len(called), "one copy per person"
    assert {row.priority for row in sent} == {Priority.urgent}, "an emergency jumps the queue"
    widened = await report(town.db, broadcast_id)
    assert widened.recipients == len(called)
    assert widened.queued == len(called)
    assert town.member("coordinator") not in called
