"""The outbox: messages are rows written in the caller's transaction, delivered by the sender.

A row is ``pending`` until a sender leases it (``sending``); the lease expires if that sender
dies, so another one takes it over. Replies to the person who wrote are leased to the process
that handled the update at once, so it can deliver them right after its commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import Translator, translator
from models.members import Member
from models.outbox import Blob, OutboxKind, OutboxMessage, OutboxStatus, Priority
from services.messages import Message, Text, split_text, to_payload
from services.sql import dialect, insert_ignore

MAX_ATTEMPTS = 8
QUEUED_FLAG = "outbox_queued"
"""Set in ``session.info`` when a transaction queued rows for the sender (not replies)."""


_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE).returning(_TABLE.c.id)
_MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.sent,
        sent_at=bindparam("at"),
        telegram_message_id=bindparam("message_id"),
        lease_owner=None,
        lease_until=None,
        error=None,
        attempts=_TABLE.c.attempts + 1,
    )
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    chat_id: int
    member_id: int | None
    kind: str
    payload: dict[str, Any]
    attempts: int
    priority: int


def _row(message: OutboxMessage) -> OutboxRow:
    assert message.id is not None
    return OutboxRow(
        message.id,
        message.chat_id,
        message.member_id,
        message.kind,
        dict(message.payload),
        message.attempts,
        message.priority,
    )


def _expand(message: Message) -> list[Message]:
    """A text over Telegram's limit becomes several messages; the buttons go on the last."""
    if isinstance(message, Text) and len(message.text) > 4096:
        parts = split_text(message.text)
        last = Text(parts[-1], message.buttons, message.request, message.remove_keyboard)
        return [*(Text(part) for part in parts[:-1]), last]
    return [message]


async def enqueue(
    session: AsyncSession,
    chat_id: int,
    messages: Message | Sequence[Message],
    now: datetime,
    *,
    member_id: int | None = None,
    priority: int = Priority.normal,
    dedupe_key: str | None = None,
    source: str | None = None,
    not_before: datetime | None = None,
    lease_owner: str | None = None,
    lease_seconds: float = 30.0,
    blocked: bool = False,
) -> list[OutboxRow]:
    """Add messages for one chat. With ``dedupe_key`` a second enqueue of the same message is
    a no-op (returns []), which makes notifications from retried work idempotent."""
    if not isinstance(messages, Sequence):
        messages = [messages]
    expanded = [part for message in messages for part in _expand(message)]
    rows: list[OutboxRow] = []
    for index, message in enumerate(expanded):
        kind, payload = to_payload(message)
        status = OutboxStatus.pending
        if blocked:
            status = OutboxStatus.blocked
        elif lease_owner:
            status = OutboxStatus.sending
        values: dict[str, Any] = {
            "chat_id": chat_id,
            "member_id": member_id,
            "kind": kind,
            "payload": payload,
            "priority": priority,
            "status": status.value,
            "attempts": 0,
            "not_before": not_before or now,
            "created_at": now,
            "source": source,
            "lease_owner": lease_owner if status == OutboxStatus.sending else None,
            "lease_until": now + timedelta(seconds=lease_seconds)
            if status == OutboxStatus.sending
            else None,
            "dedupe_key": f"{dedupe_key}#{index}" if dedupe_key and index else dedupe_key,
        }
        if dedupe_key:
            new_id = await insert_ignore(
                session,
                OutboxMessage,
                values,
                conflict=["dedupe_key"],
                returning="id",
            )
            if new_id is None:
                continue
            row_id = int(new_id)
        else:
            inserted = await session.execute(_INSERT, values)
            row_id = int(inserted.scalar_one())
        rows.append(OutboxRow(row_id, chat_id, member_id, kind, payload, 0, priority))
        if status == OutboxStatus.pending:
            session.info[QUEUED_FLAG] = True
    return rows


@dataclass(frozen=True)
class Outgoing:
    """One message of a batch for :func:`enqueue_many`."""

    chat_id: int
    message: Message
    member_id: int | None = None
    dedupe_key: str | None = None
    blocked: bool = False


async def enqueue_many(
    session: AsyncSession,
    items: Sequence[Outgoing],
    now: datetime,
    *,
    priority: int = Priority.normal,
    source: str | None = None,
    not_before: datetime | None = None,
) -> int:
    """Queue messages for many chats in a few statements (a job writing to thousands of
    members at once). The same rules as :func:`enqueue`; an item whose dedupe key is already
    queued is skipped. Returns how many rows were added."""
    values: list[dict[str, Any]] = []
    for item in items:
        status = OutboxStatus.blocked if item.blocked else OutboxStatus.pending
        for index, part in enumerate(_expand(item.message)):
            kind, payload = to_payload(part)
            key = item.dedupe_key
            values.append(
                {
                    "chat_id": item.chat_id,
                    "member_id": item.member_id,
                    "kind": kind,
                    "payload": payload,
                    "priority": priority,
                    "status": status.value,
                    "attempts": 0,
                    "not_before": not_before or now,
                    "created_at": now,
                    "source": source,
                    "lease_owner": None,
                    "lease_until": None,
                    "dedupe_key": f"{key}#{index}" if key and index else key,
                }
            )
    insert_rows = (pg_insert if dialect(session) == "postgresql" else sqlite_insert)(_TABLE)
    statement = insert_rows.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(
        _TABLE.c.id
    )
    added = 0
    for start in range(0, len(values), 500):
        result = await session.execute(statement, values[start : start + 500])
        added += len(result.all())
    if added:
        session.info[QUEUED_FLAG] = True
    return added


async def notify_member(
    session: AsyncSession,
    member_id: int,
    messages: Message | Sequence[Message],
    now: datetime,
    **options: Any,
) -> list[OutboxRow]:
    """Queue messages for a member's chat. A member who blocked the bot gets rows marked
    ``blocked`` straight away: the outcome is on record and nothing is sent."""
    member = await session.get(Member, member_id)
    if member is None:
        return []
    return await enqueue(
        session,
        member.chat_id,
        messages,
        now,
        member_id=member_id,
        blocked=member.blocked_at is not None,
        **options,
    )


async def notify(
    session: AsyncSession,
    member_id: int,
    now: datetime,
    render: Callable[[Translator], Message | Sequence[Message]],
    **options: Any,
) -> list[OutboxRow]:
    """Queue a notification written in the recipient's own language.

    ``render`` gets a translator for the member's locale and returns the message(s); use a
    ``dedupe_key`` for anything a job or a retried action could queue twice.
    """
    member = await session.get(Member, member_id)
    if member is None:
        return []
    messages = render(translator(member.locale))
    return await enqueue(
        session,
        member.chat_id,
        messages,
        now,
        member_id=member_id,
        blocked=member.blocked_at is not None,
        **options,
    )


async def store_blob(session: AsyncSession, data: bytes, filename: str, mime_type: str) -> int:
    blob = Blob(filename=filename, mime_type=mime_type, data=data)
    session.add(blob)
    await session.flush()
    assert blob.id is not None
    return blob.id


async def load_blob(session: AsyncSession, blob_id: int) -> Blob | None:
    return await session.get(Blob, blob_id)


async def claim(
    session: AsyncSession,
    owner: str,
    now: datetime,
    *,
    limit: int = 100,
    lease_seconds: float = 30.0,
    ids: Sequence[int] | None = None,
    min_priority: int | None = None,
    only_priority: int | None = None,
) -> list[OutboxRow]:
    """Lease due rows (pending and due, or leased by someone whose lease ran out).

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several senders claim side by side; on
    SQLite the write lock taken by BEGIN IMMEDIATE does the same job.
    """
    due = or_(
        and_(
            col(OutboxMessage.status) == OutboxStatus.pending, col(OutboxMessage.not_before) <= now
        ),
        and_(
            col(OutboxMessage.status) == OutboxStatus.sending, col(OutboxMessage.lease_until) < now
        ),
    )
    candidates = select(col(OutboxMessage.id)).where(due)
    if ids is not None:
        candidates = candidates.where(col(OutboxMessage.id).in_(list(ids)))
    if min_priority is not None:
        candidates = candidates.where(col(OutboxMessage.priority) >= min_priority)
    if only_priority is not None:
        candidates = candidates.where(col(OutboxMessage.priority) == only_priority)
    candidates = candidates.order_by(
        col(OutboxMessage.priority).desc(), col(OutboxMessage.id)
    ).limit(limit)
    if dialect(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    result = await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(candidates.scalar_subquery()))
        .values(
            status=OutboxStatus.sending,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    rows = [_row(message) for message in result.scalars()]
    return sorted(rows, key=lambda r: (-r.priority, r.id))


async def leased_to(session: AsyncSession, owner: str, ids: Sequence[int]) -> list[OutboxRow]:
    """Rows this process leased when it wrote them (replies to deliver right after commit)."""
    if not ids:
        return []
    result = await session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(ids)))
        .where(col(OutboxMessage.status) == OutboxStatus.sending)
        .where(col(OutboxMessage.lease_owner) == owner)
        .order_by(col(OutboxMessage.id))
    )
    return [_row(message) for message in result.scalars()]


async def lease_owners(session: AsyncSession) -> list[str]:
    result = await session.execute(
        select(col(OutboxMessage.lease_owner))
        .where(col(OutboxMessage.status) == OutboxStatus.sending)
        .distinct()
    )
    return [owner for owner in result.scalars() if owner]


async def release_leases(session: AsyncSession, owner: str | None = None) -> int:
    """Put leased rows back to pending (all of them at start-up of the only process)."""
    statement = update(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.sending)
    if owner is not None:
        statement = statement.where(col(OutboxMessage.lease_owner) == owner)
    result = await session.execute(
        statement.values(status=OutboxStatus.pending, lease_owner=None, lease_until=None)
    )
    return int(getattr(result, "rowcount", 0))


async def mark_sent(
    session: AsyncSession, row_id: int, now: datetime, message_id: int | None
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == row_id)
        .values(
            status=OutboxStatus.sent,
            sent_at=now,
            telegram_message_id=message_id,
            lease_owner=None,
            lease_until=None,
            error=None,
            attempts=col(OutboxMessage.attempts) + 1,
        )
    )


async def mark_sent_many(
    session: AsyncSession, sent: Sequence[tuple[int, datetime, int | None]]
) -> None:
    """Record many deliveries in one statement: (row id, sent at, Telegram message id)."""
    if not sent:
        return
    await session.execute(
        _MARK_SENT,
        [{"row_id": row_id, "at": at, "message_id": message_id} for row_id, at, message_id in sent],
    )


async def mark_retry(
    session: AsyncSession, row_id: int, not_before: datetime, error: str, *, count: bool = True
) -> None:
    """Try again later; after MAX_ATTEMPTS counted failures the row is given up as failed."""
    row = await session.get(OutboxMessage, row_id)
    if row is None:
        return
    attempts = row.attempts + (1 if count else 0)
    row.attempts = attempts
    row.error = error[:300]
    row.lease_owner = None
    row.lease_until = None
    if attempts >= MAX_ATTEMPTS:
        row.status = OutboxStatus.failed
    else:
        row.status = OutboxStatus.pending
        row.not_before = not_before


async def mark_failed(session: AsyncSession, row_id: int, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == row_id)
        .values(
            status=OutboxStatus.failed,
            error=error[:300],
            lease_owner=None,
            lease_until=None,
            attempts=col(OutboxMessage.attempts) + 1,
        )
    )


async def mark_blocked(session: AsyncSession, row_id: int, chat_id: int, now: datetime) -> None:
    """The person blocked the bot: record it, and hold back everything else queued for them."""
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == row_id)
        .values(
            status=OutboxStatus.blocked,
            error="blocked by the user",
            lease_owner=None,
            lease_until=None,
            attempts=col(OutboxMessage.attempts) + 1,
        )
    )
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == chat_id)
        .where(col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.sending]))
        .values(
            status=OutboxStatus.blocked,
            error="blocked by the user",
            lease_owner=None,
            lease_until=None,
        )
    )
    await session.execute(
        update(Member)
        .where(col(Member.chat_id) == chat_id)
        .where(col(Member.blocked_at).is_(None))
        .values(blocked_at=now)
    )


async def message_id_of(session: AsyncSession, row_id: int) -> tuple[str, int | None]:
    """Status and delivered message id of an outbox row (for edits that target it)."""
    row = await session.get(OutboxMessage, row_id)
    if row is None:
        return OutboxStatus.failed, None
    return row.status, row.telegram_message_id


def is_kind(row: OutboxRow, kind: OutboxKind) -> bool:
    return row.kind == kind.value


async def release_ids(session: AsyncSession, ids: Sequence[int]) -> None:
    """Hand leased rows back untouched (the sender took more than it will send now)."""
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(ids)))
        .where(col(OutboxMessage.status) == OutboxStatus.sending)
        .values(status=OutboxStatus.pending, lease_owner=None, lease_until=None)
    )


@dataclass(frozen=True)
class Outcomes:
    """What became of the messages queued under one ``source`` (a broadcast, a task)."""

    queued: int
    sent: int
    failed: int
    blocked: int
    """Did not reach the person because they had blocked the bot (held, or expired)."""
    cancelled: int
    expired: int = 0
    """Of ``blocked``: held until the person came back, then dropped as out of date."""


async def outcomes(session: AsyncSession, source: str) -> Outcomes:
    rows = await session.execute(
        select(col(OutboxMessage.status), func.count())
        .where(col(OutboxMessage.source) == source)
        .group_by(col(OutboxMessage.status))
    )
    counts = {str(status): int(n) for status, n in rows.all()}
    return Outcomes(
        queued=counts.get(OutboxStatus.pending, 0) + counts.get(OutboxStatus.sending, 0),
        sent=counts.get(OutboxStatus.sent, 0),
        failed=counts.get(OutboxStatus.failed, 0),
        blocked=counts.get(OutboxStatus.blocked, 0) + counts.get(OutboxStatus.expired, 0),
        cancelled=counts.get(OutboxStatus.cancelled, 0),
        expired=counts.get(OutboxStatus.expired, 0),
    )
