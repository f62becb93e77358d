"""Task jobs through the scheduler's job table, with a frozen clock and a restart in between:
a fresh App, scheduler and database connection send no reminder and no widening twice."""

from __future__ import annotations

from datetime import timedelta

from bot.db import Database
from bot.settings import Settings
from services import audiences, tasks
from tests.harness import Clock
from tests.jobs.test_meeting_reminders import Process
from tests.services.meeting_fixtures import PEOPLE, make_town
from tests.services.test_tasks import NOW, RULES, START, emergency, new_task, take


def texts(process: Process, person: str, part: str) -> list[str]:
    return [m.text for m in process.transport.chats[PEOPLE[person][0]] if part in m.text]


async def test_reminder_and_widening_survive_a_restart(
    settings: Settings, demo_db: Database
) -> None:
    town = await make_town(demo_db)
    async with town.db.transaction() as session:
        await audiences.join_reserve(session, town["grid_worker"], NOW)
    task = await new_task(town)
    call = await emergency(town, slots=1, shifts=1)
    await take(town, town["volunteer"], task.shifts[0].id)
    clock = Clock(NOW)

    first = Process(settings, clock)
    await first.tick("tasks.widen")
    assert texts(first, "coordinator", "已扩大到") == [], "not due yet"
    clock.now = NOW + timedelta(minutes=RULES.widen_minutes)
    await first.tick("tasks.widen")
    assert len(texts(first, "coordinator", "已扩大到社区志愿者")) == 1
    clock.now = START - timedelta(hours=2)
    await first.tick("tasks.reminders")
    assert len(texts(first, "volunteer", "⏰ 提醒")) == 1
    await first.stop()

    second = Process(settings, clock)
    await second.tick("tasks.reminders")
    await second.tick("tasks.widen")
    assert texts(second, "volunteer", "⏰ 提醒") == [], "nothing is sent again after the restart"
    assert texts(second, "coordinator", "社区志愿者") == []
    clock.now += timedelta(minutes=5)
    await second.tick("tasks.reminders")
    assert texts(second, "volunteer", "⏰ 提醒") == []
    await second.stop()
    async with town.db.transaction() as session:
        view = await tasks.task_view(session, call.id)
    assert view.widen_step is not None
    assert view.widen_step.value == "street", "the second widening ran at the later tick"
