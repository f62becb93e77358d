"""Meeting reminders through the scheduled job, with a frozen clock and a restart in between:
a fresh App, scheduler and database connection over the same database send nothing twice."""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from bot.db import Database
from bot.settings import Settings
from jobs.scheduler import build_scheduler
from tests.fakes import FakeTransport
from tests.harness import Clock
from tests.services.meeting_fixtures import FIRST, NOW, PEOPLE, call_meeting, hours, make_town


class Process:
    """One run of the bot: App (with its courier), scheduler and database connection."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.db = Database(settings.database_url)
        self.transport = FakeTransport()
        self.app = App(settings, self.db, self.transport, self.transport.identity, clock=clock)
        self.scheduler = build_scheduler(settings, self.db, clock)

    async def tick(self, job_id: str) -> None:
        job = self.scheduler.get_job(job_id)
        assert job is not None, f"{job_id} is registered"
        await job.func()
        while await self.app.courier.drain_once():
            pass

    def texts(self, person: str) -> list[str]:
        return [m.text.split("\n")[0] for m in self.transport.chats[PEOPLE[person][0]]]

    async def stop(self) -> None:
        await self.app.close()
        await self.db.dispose()


async def test_reminders_survive_a_restart_without_repeating(
    settings: Settings, demo_db: Database
) -> None:
    town = await make_town(demo_db)
    await call_meeting(town)
    clock = Clock(NOW)

    first = Process(settings, clock)
    await first.tick("meetings.reminders")
    assert first.texts("resident") == ["📅 会议邀请"]
    clock.now = FIRST - hours(24)
    await first.tick("meetings.reminders")
    assert first.texts("resident") == ["📅 会议邀请", "⏰ 会议提醒：1 天后开始"]
    await first.stop()

    second = Process(settings, clock)
    await second.tick("meetings.plan")
    await second.tick("meetings.reminders")
    clock.now += timedelta(minutes=5)
    await second.tick("meetings.reminders")
    assert second.texts("resident") == [], "nothing is sent again after the restart"
    clock.now = FIRST - hours(1)
    await second.tick("meetings.reminders")
    await second.tick("meetings.reminders")
    assert second.texts("resident") == ["⏰ 会议提醒：1 小时后开始"]
    assert second.texts("far_resident") == [], "not invited"
    await second.stop()
