"""Something already going on in the sandbox: the demo coordinator has sent a broadcast (with its
live report) and posted a volunteer task for next Saturday, and the demo volunteer has taken a
slot. So whoever opens `make sandbox` finds them in /broadcasts and /tasks (and in the chats of
the two demo people) instead of empty lists.

Only for the sandbox: the two people are the sandbox page's demo users, joined through the
ordinary demo invites. Idempotent: a second run adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.broadcasts import Broadcast
from models.tasks import Task
from services import broadcasts, tasks
from services.access import load_actor
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, Draft
from services.invites import redeem
from services.members import Person
from services.org import unit_by_code
from services.tasks import TaskDraft, TaskRules

TASK_TITLE = "清理3号楼楼道杂物"
TASK_PLACE = "新德社区3号楼门口"
BROADCAST_TEXT = (
    "本周六上午九点，新德社区3号楼门口集合清理楼道杂物，请有空的志愿者在 /tasks 里报名。"
    "消防通道请勿堆放电动车和杂物，谢谢配合！"
)


@dataclass(frozen=True)
class DemoPerson:
    telegram_id: int
    name: str
    invite: str
    locale: str = "zh_CN"


@dataclass(frozen=True)
class Seeded:
    task_id: int | None
    broadcast_id: int | None


def next_saturday_morning(now: datetime, rules: TaskRules) -> datetime:
    """09:00 local on the next Saturday at least a day away."""
    local = now.astimezone(rules.zone)
    day = local.date() + timedelta(days=1)
    while day.isoweekday() != 6:
        day += timedelta(days=1)
    return datetime.combine(day, time(9, 0), tzinfo=rules.zone).astimezone(UTC)


async def seed_activity(
    session: AsyncSession,
    now: datetime,
    coordinator: DemoPerson,
    volunteer: DemoPerson,
    rules: TaskRules,
    policy: BroadcastPolicy,
) -> Seeded:
    """Join the two demo people, then (once) the task with one slot taken and the broadcast."""
    joined = {}
    for person in (coordinator, volunteer):
        result = await redeem(
            session,
            person.invite,
            Person(person.telegram_id, person.telegram_id, person.name, person.locale),
            now,
        )
        joined[person.invite] = result.member.id
    organiser = await load_actor(session, joined[coordinator.invite])
    taker = await load_actor(session, joined[volunteer.invite])
    community = await unit_by_code(session, "C1")

    task_id: int | None = None
    existing = await session.execute(select(col(Task.id)).where(col(Task.title) == TASK_TITLE))
    if existing.first() is None:
        start = next_saturday_morning(now, rules)
        task = await tasks.create_task(
            session,
            organiser,
            TaskDraft(TASK_TITLE, TASK_PLACE, start, start + timedelta(hours=2), 5, community.id),
            now,
            rules,
        )
        await tasks.take(session, taker, task.shifts[0].id, now, rules)
        task_id = task.id

    broadcast_id: int | None = None
    sent_before = await session.execute(
        select(col(Broadcast.id)).where(col(Broadcast.text) == BROADCAST_TEXT)
    )
    if sent_before.first() is None:
        draft = Draft(BROADCAST_TEXT, audience=Audience(unit_ids=(community.id,)), ask_ack=True)
        broadcast_id = (await broadcasts.send(session, organiser, draft, now, policy)).broadcast_id
    return Seeded(task_id, broadcast_id)
