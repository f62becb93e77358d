"""Broadcasts: one message to an audience, queued for every recipient in one transaction, with
acknowledgements, reminders for urgent ones, and a live delivery report for the sender.

Each recipient's copy is an outbox row with ``source = "bc:<id>"`` and a dedupe key
``bc:<id>:<member>``, so the report counts outbox outcomes (queued, sent, failed, blocked) and a
retried transaction can never queue a copy twice. The sender's report is one message
(``source = "bcr:<id>"``) that later edits replace.

A task's announcement (:mod:`services.tasks`) is a broadcast too (``Task.broadcast_id``): it
is recorded with :func:`record`, queued with :func:`deliver` (its copies carry the task's
"take" buttons, source ``task:<task id>``; an emergency call's widening steps deliver to more
people on the same broadcast) and reported with :func:`start_report`, the same functions
:func:`send` uses. It always asks for acknowledgement, and taking a slot is the
acknowledgement (:func:`record_ack`); it has no "I have read it" reminders: an emergency call
widens instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator, translator
from bot.settings import Settings
from models.broadcasts import Broadcast, BroadcastRecipient
from models.members import Member
from models.outbox import OutboxKind, OutboxMessage, OutboxStatus, Priority
from models.tasks import Task
from services import audiences, outbox
from services.access import Actor
from services.audiences import Audience
from services.errors import InvalidInput, NotFound, PermissionDenied
from services.messages import Button, Edit, Message, Photo, Text
from services.outbox import Outgoing
from services.sql import skip_locked

log = logging.getLogger(__name__)

TEXT_MAX = 4000
"""Telegram takes 4096 characters; the rest is room for the header each recipient sees."""
CAPTION_MAX = 960
"""Telegram takes 1024 characters under a photo; the rest is room for the header."""
LIST_LIMIT = 10
REPORT_PRIORITY = Priority.urgent + 1
"""The report and its edits go ahead of even an urgent broadcast's copies (one small message,
then one edit every few seconds): otherwise the sender would see it after the last copy."""
REASONS_SHOWN = 2
CHUNK = 1000


def source_of(broadcast_id: int) -> str:
    return f"bc:{broadcast_id}"


def report_source_of(broadcast_id: int) -> str:
    return f"bcr:{broadcast_id}"


def reminder_source_of(broadcast_id: int) -> str:
    return f"bcn:{broadcast_id}"


def task_source_of(task_id: int) -> str:
    """The outbox source of a task's announcements (the copies of its broadcast)."""
    return f"task:{task_id}"


def ack_payload(broadcast_id: int) -> str:
    return f"bc_ack:{broadcast_id}"


@dataclass(frozen=True)
class BroadcastPolicy:
    zone: ZoneInfo
    quiet_start: time
    quiet_end: time
    renotify_every: timedelta
    renotify_max: int
    report_every: timedelta

    @classmethod
    def of(cls, settings: Settings) -> BroadcastPolicy:
        start, end = settings.quiet_hours
        return cls(
            zone=settings.zone,
            quiet_start=start,
            quiet_end=end,
            renotify_every=timedelta(minutes=settings.broadcast_renotify_minutes),
            renotify_max=settings.broadcast_renotify_max,
            report_every=timedelta(seconds=settings.broadcast_report_seconds),
        )


@dataclass(frozen=True)
class Draft:
    text: str
    photo_file_id: str | None = None
    audience: Audience = field(default_factory=Audience)
    urgent: bool = False
    ask_ack: bool = False


@dataclass(frozen=True)
class Report:
    broadcast_id: int
    recipients: int
    queued: int
    sent: int
    failed: int
    blocked: int
    acknowledged: int
    ask_ack: bool
    urgent: bool
    created_at: datetime
    deliver_from: datetime
    reasons: tuple[tuple[str, int], ...] = ()
    task_title: str | None = None
    """The task the broadcast announced (its acknowledgements are the takes)."""

    @property
    def state(self) -> str:
        """What the report shows, to tell whether an edit would change anything."""
        reasons = ",".join(f"{r[:20]}={n}" for r, n in self.reasons)
        return (
            f"{self.queued}/{self.sent}/{self.failed}/{self.blocked}/{self.acknowledged}/{reasons}"
        )[:200]

    @property
    def settled(self) -> bool:
        return self.queued == 0


@dataclass(frozen=True)
class Sent:
    broadcast_id: int
    recipients: int
    deliver_from: datetime
    report: Report


# ---------------------------------------------------------------------------------------------
# Checks


def check_text(text: str, photo_file_id: str | None) -> str:
    """The broadcast text, trimmed; refused when empty (without a photo) or over the limit."""
    cleaned = text.strip()
    limit = CAPTION_MAX if photo_file_id else TEXT_MAX
    if not cleaned and not photo_file_id:
        raise InvalidInput("broadcasts.text_empty")
    if len(cleaned) > limit:
        key = N_("broadcasts.caption_too_long") if photo_file_id else N_("broadcasts.text_too_long")
        raise InvalidInput(key, length=len(cleaned), limit=limit)
    return cleaned


def require_sender(actor: Actor) -> None:
    if not audiences.may_address(actor):
        actor.refuse("broadcast")


def quiet_until(now: datetime, policy: BroadcastPolicy) -> datetime | None:
    """The end of the quiet hours when ``now`` lies in them, else None."""
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return None
    local = now.astimezone(policy.zone)
    moment = local.time()
    if start < end:
        quiet = start <= moment < end
        day = local.date()
    else:
        quiet = moment >= start or moment < end
        day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not quiet:
        return None
    return datetime.combine(day, end, tzinfo=policy.zone).astimezone(now.tzinfo)


async def preview(session: AsyncSession, actor: Actor, draft: Draft) -> int:
    """How many people the draft would reach (refusals as in :func:`send`)."""
    require_sender(actor)
    check_text(draft.text, draft.photo_file_id)
    return await audiences.count(session, actor, draft.audience)


# ---------------------------------------------------------------------------------------------
# Sending


def _header(t: Translator, urgent: bool, sender: str) -> str:
    if urgent:
        return t("broadcasts.header_urgent", name=sender)
    return t("broadcasts.header", name=sender)


def render(
    t: Translator,
    broadcast_id: int,
    text: str,
    photo_file_id: str | None,
    *,
    urgent: bool,
    ask_ack: bool,
    sender: str,
) -> Message:
    """The copy one recipient gets, in their language."""
    body = f"{_header(t, urgent, sender)}\n\n{text}".rstrip()
    buttons = (
        [[Button(t("broadcasts.ack_button"), payload=ack_payload(broadcast_id))]] if ask_ack else []
    )
    if photo_file_id:
        return Photo(file_id=photo_file_id, caption=body, buttons=buttons)
    return Text(body, buttons)


async def _recipients(session: AsyncSession, member_ids: Sequence[int]) -> list[Member]:
    found: list[Member] = []
    for start in range(0, len(member_ids), CHUNK):
        chunk = list(member_ids[start : start + CHUNK])
        rows = await session.execute(select(Member).where(col(Member.id).in_(chunk)))
        found += list(rows.scalars())
    return found


async def record(
    session: AsyncSession,
    sender_id: int | None,
    *,
    text: str,
    audience: Audience,
    now: datetime,
    deliver_from: datetime,
    photo_file_id: str | None = None,
    urgent: bool = False,
    ask_ack: bool = False,
    renotify_at: datetime | None = None,
) -> int:
    """Record a broadcast with no recipients yet (:func:`deliver` adds them); returns its id.
    The caller checked the permissions and the text."""
    sender = await session.get(Member, sender_id) if sender_id else None
    broadcast = Broadcast(
        sender_id=sender_id,
        sender_chat_id=sender.chat_id if sender else None,
        text=text,
        photo_file_id=photo_file_id,
        audience=audience.to_json(),
        urgent=urgent,
        ask_ack=ask_ack,
        recipients=0,
        created_at=now,
        deliver_from=deliver_from,
        next_renotify_at=renotify_at,
    )
    session.add(broadcast)
    await session.flush()
    assert broadcast.id is not None
    return broadcast.id


async def _task_of(session: AsyncSession, broadcast_id: int) -> tuple[int, str] | None:
    found = await session.execute(
        select(col(Task.id), col(Task.title)).where(col(Task.broadcast_id) == broadcast_id)
    )
    row = found.first()
    return (int(row[0] or 0), str(row[1])) if row else None


async def _copies_source(session: AsyncSession, broadcast_id: int) -> str:
    task = await _task_of(session, broadcast_id)
    return task_source_of(task[0]) if task else source_of(broadcast_id)


async def deliver(
    session: AsyncSession,
    broadcast_id: int,
    member_ids: Sequence[int],
    now: datetime,
    copy: Callable[[Translator], Message],
    *,
    dedupe_key: Callable[[int], str] | None = None,
) -> int:
    """Make the members recipients of the broadcast and queue one copy each (``copy`` renders
    it in a language), skipping those who already are; returns how many were added. Urgent
    broadcasts go ahead of the queue; others wait until ``deliver_from``."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound("broadcasts.unknown")
    wanted = list(dict.fromkeys(member_ids))
    known: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(col(BroadcastRecipient.member_id))
            .where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
            .where(col(BroadcastRecipient.member_id).in_(wanted[start : start + CHUNK]))
        )
        known |= {int(m) for m in rows.scalars()}
    fresh = [m for m in wanted if m not in known]
    if not fresh:
        return 0
    rows_to_add = [{"broadcast_id": broadcast_id, "member_id": m} for m in fresh]
    for start in range(0, len(rows_to_add), 500):
        await session.execute(insert(BroadcastRecipient), rows_to_add[start : start + 500])

    copies: dict[str, Message] = {}

    def copy_for(locale: str) -> Message:
        if locale not in copies:
            copies[locale] = copy(translator(locale))
        return copies[locale]

    def key(member_id: int) -> str:
        return dedupe_key(member_id) if dedupe_key else f"bc:{broadcast_id}:{member_id}"

    items = [
        Outgoing(
            chat_id=member.chat_id,
            message=copy_for(member.locale),
            member_id=member.id,
            dedupe_key=key(member.id or 0),
            blocked=member.blocked_at is not None,
        )
        for member in await _recipients(session, fresh)
    ]
    await outbox.enqueue_many(
        session,
        items,
        now,
        priority=Priority.urgent if broadcast.urgent else Priority.normal,
        source=await _copies_source(session, broadcast_id),
        not_before=max(broadcast.deliver_from, now),
    )
    broadcast.recipients += len(fresh)
    broadcast.settled_at = None
    return len(fresh)


async def start_report(
    session: AsyncSession, broadcast_id: int, now: datetime, zone: ZoneInfo
) -> Report:
    """Queue the sender's live report (once per broadcast); later edits replace it."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound("broadcasts.unknown")
    report = await report_of(session, broadcast_id)
    sender = await session.get(Member, broadcast.sender_id) if broadcast.sender_id else None
    if sender is not None:
        rows_queued = await outbox.enqueue(
            session,
            sender.chat_id,
            Text(render_report(translator(sender.locale), report, zone)),
            now,
            member_id=sender.id,
            priority=REPORT_PRIORITY,
            source=report_source_of(broadcast_id),
            dedupe_key=f"bcr:{broadcast_id}",
        )
        broadcast.report_outbox_id = rows_queued[0].id if rows_queued else None
        broadcast.report_state = report.state
        broadcast.report_edited_at = now
    return report


async def send(
    session: AsyncSession,
    actor: Actor,
    draft: Draft,
    now: datetime,
    policy: BroadcastPolicy,
) -> Sent:
    """Record the broadcast and queue one copy per recipient, all in the caller's transaction:
    a refusal or a crash leaves nothing queued."""
    require_sender(actor)
    text = check_text(draft.text, draft.photo_file_id)
    member_ids = await audiences.resolve(session, actor, draft.audience)
    if not member_ids:
        raise InvalidInput("broadcasts.nobody")
    sender = await session.get(Member, actor.member_id) if actor.member_id else None
    sender_name = sender.display_name if sender else "gridbot"
    deliver_from = now if draft.urgent else (quiet_until(now, policy) or now)
    broadcast_id = await record(
        session,
        actor.member_id,
        text=text,
        photo_file_id=draft.photo_file_id,
        audience=draft.audience,
        urgent=draft.urgent,
        ask_ack=draft.ask_ack,
        now=now,
        deliver_from=deliver_from,
        renotify_at=(
            deliver_from + policy.renotify_every
            if draft.urgent and draft.ask_ack and policy.renotify_max > 0
            else None
        ),
    )

    def copy(t: Translator) -> Message:
        return render(
            t,
            broadcast_id,
            text,
            draft.photo_file_id,
            urgent=draft.urgent,
            ask_ack=draft.ask_ack,
            sender=sender_name,
        )

    await deliver(session, broadcast_id, member_ids, now, copy)
    report = await start_report(session, broadcast_id, now, policy.zone)
    log.info(
        "broadcast %s by member %s: %s recipients, urgent=%s, from %s",
        broadcast_id,
        actor.member_id,
        len(member_ids),
        draft.urgent,
        deliver_from.isoformat(),
    )
    return Sent(broadcast_id, len(member_ids), deliver_from, report)


# ---------------------------------------------------------------------------------------------
# The delivery report


async def report_of(session: AsyncSession, broadcast_id: int) -> Report:
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound("broadcasts.unknown")
    task = await _task_of(session, broadcast_id)
    source = task_source_of(task[0]) if task else source_of(broadcast_id)
    delivered = await outbox.outcomes(session, source)
    reasons = await session.execute(
        select(col(OutboxMessage.error), func.count())
        .where(col(OutboxMessage.source) == source)
        .where(col(OutboxMessage.status) == OutboxStatus.failed)
        .group_by(col(OutboxMessage.error))
        .order_by(func.count().desc())
        .limit(REASONS_SHOWN)
    )
    acknowledged = await session.execute(
        select(func.count())
        .select_from(BroadcastRecipient)
        .where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
        .where(col(BroadcastRecipient.acknowledged_at).is_not(None))
    )
    return Report(
        broadcast_id=broadcast_id,
        recipients=broadcast.recipients,
        queued=delivered.queued,
        sent=delivered.sent,
        failed=delivered.failed + delivered.cancelled,
        blocked=delivered.blocked,
        acknowledged=int(acknowledged.scalar_one()),
        ask_ack=broadcast.ask_ack,
        urgent=broadcast.urgent,
        created_at=broadcast.created_at,
        deliver_from=broadcast.deliver_from,
        reasons=tuple((str(error or "?")[:80], int(n)) for error, n in reasons.all()),
        task_title=task[1] if task else None,
    )


def render_report(t: Translator, report: Report, zone: ZoneInfo) -> str:
    lines = [
        t(
            "broadcasts.report_title",
            id=report.broadcast_id,
            when=report.created_at.astimezone(zone).strftime("%m-%d %H:%M"),
            recipients=report.recipients,
        ),
    ]
    if report.task_title is not None:
        lines.append(t("broadcasts.report_task", title=report.task_title))
    lines += [
        t(
            "broadcasts.report_counts",
            queued=report.queued,
            sent=report.sent,
            failed=report.failed,
            blocked=report.blocked,
        ),
    ]
    if report.ask_ack:
        key = (
            N_("broadcasts.report_takes")
            if report.task_title is not None
            else N_("broadcasts.report_acks")
        )
        lines.append(t(key, acknowledged=report.acknowledged))
    if report.queued and report.deliver_from > report.created_at:
        lines.append(
            t(
                "broadcasts.report_waits",
                time=report.deliver_from.astimezone(zone).strftime("%H:%M"),
            )
        )
    for reason, number in report.reasons:
        lines.append(t("broadcasts.report_reason", reason=reason, count=number))
    if report.settled:
        lines.append(t("broadcasts.report_done"))
    return "\n".join(lines)


async def refresh_report(
    session: AsyncSession,
    broadcast_id: int,
    now: datetime,
    policy: BroadcastPolicy,
) -> bool:
    """Edit the sender's report when its numbers changed and the last edit is old enough;
    returns True when an edit was queued. A broadcast whose report shows its final numbers is
    marked settled, so the report job leaves it alone."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.report_outbox_id is None or broadcast.sender_id is None:
        return False
    if (
        broadcast.report_edited_at is not None
        and now - broadcast.report_edited_at < policy.report_every
    ):
        # Too soon (e.g. many acknowledgements at once): the report job catches up.
        broadcast.settled_at = None
        return False
    report = await report_of(session, broadcast_id)
    if report.state == broadcast.report_state:
        if report.settled and broadcast.settled_at is None:
            broadcast.settled_at = now
        return False
    sender = await session.get(Member, broadcast.sender_id)
    if sender is None:
        return False
    # Only the newest state matters: edits still waiting in the queue are dropped.
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.source) == report_source_of(broadcast_id))
        .where(col(OutboxMessage.kind) == OutboxKind.edit)
        .where(col(OutboxMessage.status) == OutboxStatus.pending)
        .values(status=OutboxStatus.cancelled, error="superseded")
    )
    await outbox.enqueue(
        session,
        sender.chat_id,
        Edit(
            render_report(translator(sender.locale), report, policy.zone),
            outbox_id=broadcast.report_outbox_id,
        ),
        now,
        member_id=sender.id,
        priority=REPORT_PRIORITY,
        source=report_source_of(broadcast_id),
        blocked=sender.blocked_at is not None,
    )
    broadcast.report_state = report.state
    broadcast.report_edited_at = now
    broadcast.settled_at = now if report.settled else None
    return True


async def refresh_reports(
    session: AsyncSession, now: datetime, policy: BroadcastPolicy, *, limit: int = 50
) -> int:
    """Refresh every report not yet settled (the report job)."""
    due = await session.execute(
        skip_locked(
            session,
            select(col(Broadcast.id))
            .where(col(Broadcast.settled_at).is_(None))
            .where(col(Broadcast.created_at) > now - timedelta(days=7))
            .order_by(col(Broadcast.id))
            .limit(limit),
        )
    )
    edited = 0
    for broadcast_id in list(due.scalars()):
        edited += int(await refresh_report(session, int(broadcast_id or 0), now, policy))
    return edited


async def my_broadcasts(
    session: AsyncSession, actor: Actor, *, limit: int = LIST_LIMIT
) -> list[Report]:
    if actor.member_id is None:
        return []
    ids = await session.execute(
        select(col(Broadcast.id))
        .where(col(Broadcast.sender_id) == actor.member_id)
        .order_by(col(Broadcast.id).desc())
        .limit(limit)
    )
    return [await report_of(session, int(b or 0)) for b in list(ids.scalars())]


# ---------------------------------------------------------------------------------------------
# Acknowledgements and reminders


async def acknowledge(
    session: AsyncSession,
    actor: Actor,
    broadcast_id: int,
    now: datetime,
    policy: BroadcastPolicy,
) -> bool:
    """Record that a recipient read the broadcast; False when already recorded. Only a
    recipient of a broadcast that asks for it may acknowledge."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound("broadcasts.unknown")
    if actor.member_id is None:
        raise PermissionDenied("broadcasts.not_recipient")
    if not broadcast.ask_ack:
        raise InvalidInput("broadcasts.no_ack")
    if not await record_ack(session, broadcast_id, actor.member_id, now):
        known = await session.execute(
            select(col(BroadcastRecipient.id))
            .where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
            .where(col(BroadcastRecipient.member_id) == actor.member_id)
        )
        if known.scalar_one_or_none() is None:
            log.warning("member %s acknowledged broadcast %s", actor.member_id, broadcast_id)
            raise PermissionDenied("broadcasts.not_recipient")
        return False
    await refresh_report(session, broadcast_id, now, policy)
    return True


async def record_ack(
    session: AsyncSession, broadcast_id: int, member_id: int, now: datetime
) -> bool:
    """Record a recipient's acknowledgement (no permission check: the caller decided, e.g. a
    take of the task the broadcast announced); False when not a recipient or already
    recorded. The report job shows it on the sender's report."""
    result = await session.execute(
        update(BroadcastRecipient)
        .where(col(BroadcastRecipient.broadcast_id) == broadcast_id)
        .where(col(BroadcastRecipient.member_id) == member_id)
        .where(col(BroadcastRecipient.acknowledged_at).is_(None))
        .values(acknowledged_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return False
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is not None:
        broadcast.settled_at = None
    return True


def render_reminder(
    t: Translator, broadcast: Broadcast, round_number: int, rounds: int, sender: str
) -> Text:
    assert broadcast.id is not None
    text = broadcast.text or t("broadcasts.reminder_photo")
    body = t("broadcasts.reminder", round=round_number, rounds=rounds, name=sender)
    return Text(
        f"{body}\n\n{text}",
        [[Button(t("broadcasts.ack_button"), payload=ack_payload(broadcast.id))]],
    )


async def send_reminders(session: AsyncSession, now: datetime, policy: BroadcastPolicy) -> int:
    """Remind recipients of urgent broadcasts who got the message but did not acknowledge it,
    at most ``renotify_max`` times. Claimed with a row lock and dedupe keys per round, so a
    restart or a second process never reminds twice."""
    due = await session.execute(
        skip_locked(
            session,
            select(Broadcast)
            .where(col(Broadcast.next_renotify_at) <= now)
            .order_by(col(Broadcast.next_renotify_at))
            .limit(20),
        )
    )
    queued = 0
    for broadcast in list(due.scalars()):
        assert broadcast.id is not None
        round_number = broadcast.renotified + 1
        if round_number > policy.renotify_max:
            broadcast.next_renotify_at = None
            continue
        delivered = select(col(OutboxMessage.member_id)).where(
            col(OutboxMessage.source) == await _copies_source(session, broadcast.id),
            col(OutboxMessage.status) == OutboxStatus.sent,
        )
        silent = await session.execute(
            select(col(BroadcastRecipient.member_id))
            .where(col(BroadcastRecipient.broadcast_id) == broadcast.id)
            .where(col(BroadcastRecipient.acknowledged_at).is_(None))
            .where(col(BroadcastRecipient.member_id).in_(delivered))
        )
        member_ids = [int(m) for m in silent.scalars()]
        sender = await session.get(Member, broadcast.sender_id) if broadcast.sender_id else None
        sender_name = sender.display_name if sender else "gridbot"
        copies: dict[str, Text] = {}
        items: list[Outgoing] = []
        for member in await _recipients(session, member_ids):
            if member.locale not in copies:
                copies[member.locale] = render_reminder(
                    translator(member.locale),
                    broadcast,
                    round_number,
                    policy.renotify_max,
                    sender_name,
                )
            items.append(
                Outgoing(
                    chat_id=member.chat_id,
                    message=copies[member.locale],
                    member_id=member.id,
                    dedupe_key=f"bcn:{broadcast.id}:{round_number}:{member.id}",
                    blocked=member.blocked_at is not None,
                )
            )
        queued += await outbox.enqueue_many(
            session,
            items,
            now,
            priority=Priority.urgent,
            source=reminder_source_of(broadcast.id),
        )
        broadcast.renotified = round_number
        broadcast.next_renotify_at = (
            now + policy.renotify_every if round_number < policy.renotify_max else None
        )
    return queued
