"""Messages held while a person had blocked the bot, released when they come back.

A 403 marks the person as having blocked the bot (:func:`services.outbox.mark_blocked`), and
everything queued for them from then on is written as ``blocked``: nothing is sent. When they
write again (``/start``, any message or button), :func:`release` judges each held row:

* still relevant: back to ``pending``; the sender delivers it at its normal pace (one chat at a
  time, a message a second), and a broadcast's live report moves it from "blocked" to "sent";
* stale: ``expired``, with the reason in ``error``. Reports keep counting it as blocked: it
  never reached the person.

Stale means older than ``held_max_hours`` (a setting), or out of date by its own kind:

==========================  ==============================================================
reply to an old update      always (the conversation it answered is gone)
edit of a message           all but the newest edit of the same message
``task-call``               the task was cancelled or ended, or no shift ahead has room
                            (a call still open is delivered with today's counts and buttons)
``task-rem``                the shift started, the task was cancelled, or the slot was given
                            back
``task-*`` (other)          the task ended
``bc`` (broadcast copy)     the recipient has acknowledged it
``bcn`` (its reminders)     acknowledged, the held copy itself goes out, or an older round
                            than another held one
``mtg-rem``                 the meeting began, was cancelled or moved
daily nudges                queued on an earlier day (today's nudge says it again)
==========================  ==============================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.i18n import translator
from bot.settings import Settings
from models.broadcasts import Broadcast, BroadcastRecipient
from models.meetings import Meeting, MeetingReminder, MeetingStatus
from models.members import Member
from models.outbox import OutboxKind, OutboxMessage, OutboxStatus, Priority
from models.tasks import Task, TaskShift, TaskStatus, TaskTake
from services import outbox, tasks
from services.messages import Text, to_payload

log = logging.getLogger(__name__)

DAILY_PREFIXES = ("visits.nudge:", "visits.coverage:", "points.hours_nudge:")


@dataclass(frozen=True)
class HeldPolicy:
    max_age: timedelta
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> HeldPolicy:
        return cls(max_age=timedelta(hours=settings.held_max_hours), zone=settings.zone)


@dataclass(frozen=True)
class Released:
    delivered: int
    """Held rows put back in the queue."""
    dropped: int
    """Held rows recorded as expired."""


@dataclass(frozen=True)
class _Keep:
    payload: dict[str, Any] | None = None
    """A fresh payload that replaces the one written when the row was queued."""


@dataclass(frozen=True)
class _Drop:
    reason: str


_Verdict = _Keep | _Drop


def _key(row: OutboxMessage) -> tuple[str, list[str]]:
    """The dedupe key's prefix and its parts (``task-call:7:12#1`` → ``task-call``, [7, 12])."""
    if not row.dedupe_key:
        return "", []
    head, *parts = row.dedupe_key.split("#", 1)[0].split(":")
    return head, parts


def _int(parts: list[str], index: int) -> int | None:
    try:
        return int(parts[index])
    except (IndexError, ValueError):
        return None


async def release(
    session: AsyncSession, member_id: int, now: datetime, policy: HeldPolicy
) -> Released:
    """Judge every message held for the member's chat: deliver what still matters, expire the
    rest. In the caller's transaction (the update that shows the person is back)."""
    member = await session.get(Member, member_id)
    if member is None:
        return Released(0, 0)
    held = list(
        (
            await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.chat_id) == member.chat_id)
                .where(col(OutboxMessage.status) == OutboxStatus.blocked)
                .order_by(col(OutboxMessage.id))
            )
        ).scalars()
    )
    if not held:
        return Released(0, 0)
    verdicts: dict[int, _Verdict] = {}
    newest_edit: dict[str, int] = {}
    newest_round: dict[int, tuple[int, int]] = {}
    copies: set[int] = set()
    for row in held:
        assert row.id is not None
        verdict = await _judge(session, row, member, now, policy)
        verdicts[row.id] = verdict
        if isinstance(verdict, _Drop):
            continue
        if row.kind == OutboxKind.edit:
            target = f"{row.payload.get('outbox_id')}/{row.payload.get('message_id')}"
            newest_edit[target] = row.id
        head, parts = _key(row)
        broadcast_id, round_number = _int(parts, 0), _int(parts, 1)
        if head == "bc" and broadcast_id is not None:
            copies.add(broadcast_id)
        if head == "bcn" and broadcast_id is not None and round_number is not None:
            best = newest_round.get(broadcast_id)
            if best is None or round_number >= best[0]:
                newest_round[broadcast_id] = (round_number, row.id)
    for row in held:
        assert row.id is not None
        if isinstance(verdicts[row.id], _Drop):
            continue
        head, parts = _key(row)
        if row.kind == OutboxKind.edit:
            target = f"{row.payload.get('outbox_id')}/{row.payload.get('message_id')}"
            if newest_edit[target] != row.id:
                verdicts[row.id] = _Drop("superseded by a newer edit")
        elif head == "bcn" and _int(parts, 0) in copies:
            verdicts[row.id] = _Drop("the broadcast itself goes out")
        elif head == "bcn" and newest_round.get(_int(parts, 0) or 0, (0, row.id))[1] != row.id:
            verdicts[row.id] = _Drop("superseded by a newer reminder")

    delivered = dropped = 0
    broadcasts: set[int] = set()
    for row in held:
        assert row.id is not None
        verdict = verdicts[row.id]
        row.lease_owner = None
        row.lease_until = None
        if isinstance(verdict, _Drop):
            row.status = OutboxStatus.expired
            row.error = f"held while blocked; {verdict.reason}"[:300]
            dropped += 1
            continue
        row.status = OutboxStatus.pending
        row.error = None
        row.not_before = now
        if verdict.payload is not None:
            row.payload = verdict.payload
        delivered += 1
        head, parts = _key(row)
        if head == "bc" and (broadcast_id := _int(parts, 0)) is not None:
            broadcasts.add(broadcast_id)
    if broadcasts:
        # Their reports show the copy as queued, then sent: the report job looks again.
        await session.execute(
            update(Broadcast).where(col(Broadcast.id).in_(broadcasts)).values(settled_at=None)
        )
    if delivered:
        session.info[outbox.QUEUED_FLAG] = True
    await session.flush()
    log.info(
        "member %s is back: %s held messages released, %s expired", member_id, delivered, dropped
    )
    return Released(delivered, dropped)


async def _judge(
    session: AsyncSession,
    row: OutboxMessage,
    member: Member,
    now: datetime,
    policy: HeldPolicy,
) -> _Verdict:
    if now - row.created_at > policy.max_age:
        hours = int(policy.max_age.total_seconds() // 3600)
        return _Drop(f"older than {hours} h")
    if row.priority == Priority.reply:
        return _Drop("a reply to an old message")
    head, parts = _key(row)
    if row.dedupe_key and row.dedupe_key.startswith(DAILY_PREFIXES):
        day = row.created_at.astimezone(policy.zone).date()
        if day != now.astimezone(policy.zone).date():
            return _Drop("a nudge of an earlier day")
        return _Keep()
    match head:
        case "task-call":
            return await _task_call(session, _int(parts, 0), member, now, policy)
        case "task-rem":
            return await _task_reminder(session, _int(parts, 0), member, now)
        case "task-cancel" | "task-widen":
            return await _task_not_over(session, _int(parts, 0), now)
        case "task-full":
            shift = await session.get(TaskShift, _int(parts, 0) or 0)
            return await _task_not_over(session, shift.task_id if shift else None, now)
        case "bc" | "bcn":
            return await _broadcast(session, _int(parts, 0), member)
        case "mtg-rem":
            return await _meeting_reminder(session, _int(parts, 0), now)
    return _Keep()


async def _task_call(
    session: AsyncSession,
    task_id: int | None,
    member: Member,
    now: datetime,
    policy: HeldPolicy,
) -> _Verdict:
    task = await session.get(Task, task_id or 0)
    if task is None or task.status == TaskStatus.cancelled or now >= task.ends_at:
        return _Drop("the task is over")
    assert task.id is not None
    assert member.id is not None
    view = await tasks.task_view(session, task.id)
    mine = await tasks.my_shifts(session, member.id, task.id)
    if not any(s.starts_at > now and (not s.full or s.id in mine) for s in view.shifts):
        return _Drop("no shift ahead has room")
    t = translator(member.locale)
    _, payload = to_payload(
        Text(tasks.task_text(t, view, policy.zone), tasks.take_buttons(t, view, now, mine))
    )
    return _Keep(payload)


async def _task_reminder(
    session: AsyncSession, shift_id: int | None, member: Member, now: datetime
) -> _Verdict:
    shift = await session.get(TaskShift, shift_id or 0)
    if shift is None or now >= shift.starts_at:
        return _Drop("the shift has started")
    task = await session.get(Task, shift.task_id)
    if task is None or task.status == TaskStatus.cancelled:
        return _Drop("the task was cancelled")
    take = await session.execute(
        select(col(TaskTake.id))
        .where(col(TaskTake.shift_id) == shift.id)
        .where(col(TaskTake.member_id) == member.id)
    )
    if take.first() is None:
        return _Drop("the slot was given back")
    return _Keep()


async def _task_not_over(session: AsyncSession, task_id: int | None, now: datetime) -> _Verdict:
    task = await session.get(Task, task_id or 0)
    if task is None or now >= task.ends_at:
        return _Drop("the task is over")
    return _Keep()


async def _broadcast(session: AsyncSession, broadcast_id: int | None, member: Member) -> _Verdict:
    broadcast = await session.get(Broadcast, broadcast_id or 0)
    if broadcast is None:
        return _Drop("the broadcast is gone")
    if broadcast.ask_ack:
        acknowledged = await session.execute(
            select(col(BroadcastRecipient.acknowledged_at))
            .where(col(BroadcastRecipient.broadcast_id) == broadcast.id)
            .where(col(BroadcastRecipient.member_id) == member.id)
        )
        if acknowledged.scalar_one_or_none() is not None:
            return _Drop("already acknowledged")
    return _Keep()


async def _meeting_reminder(
    session: AsyncSession, reminder_id: int | None, now: datetime
) -> _Verdict:
    reminder = await session.get(MeetingReminder, reminder_id or 0)
    meeting = await session.get(Meeting, reminder.meeting_id) if reminder else None
    if reminder is None or meeting is None or now >= meeting.starts_at:
        return _Drop("the meeting has begun")
    if meeting.status == MeetingStatus.cancelled or meeting.version != reminder.version:
        return _Drop("the meeting was cancelled or moved")
    return _Keep()
