"""Conversation state: which step of which flow a chat is in, kept in the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.conversations import ConversationState


@dataclass(frozen=True)
class State:
    step: str
    nonce: str
    data: dict[str, Any] = field(default_factory=dict)


async def get_state(
    session: AsyncSession, channel: str, chat_id: int, now: datetime
) -> State | None:
    found = (
        await session.execute(
            select(
                col(ConversationState.step),
                col(ConversationState.nonce),
                col(ConversationState.data),
                col(ConversationState.expires_at),
            )
            .where(col(ConversationState.channel) == channel)
            .where(col(ConversationState.chat_id) == chat_id)
        )
    ).first()
    if found is None:
        return None
    step, nonce, data, expires_at = found
    if expires_at <= now:
        await clear_state(session, channel, chat_id)
        return None
    return State(step, nonce, dict(data or {}))


async def set_state(
    session: AsyncSession,
    channel: str,
    chat_id: int,
    step: str,
    data: dict[str, Any],
    now: datetime,
    ttl: timedelta,
    nonce: str | None = None,
) -> State:
    """Enter ``step``; a new nonce (unless kept) makes buttons of earlier steps stale."""
    nonce = nonce or secrets.token_hex(3)
    row = await session.get(ConversationState, (channel, chat_id))
    if row is None:
        row = ConversationState(
            channel=channel,
            chat_id=chat_id,
            step=step,
            nonce=nonce,
            data=data,
            updated_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
    else:
        row.step, row.nonce, row.data = step, nonce, data
        row.updated_at, row.expires_at = now, now + ttl
    await session.flush()
    return State(step, nonce, data)


async def clear_state(session: AsyncSession, channel: str, chat_id: int) -> bool:
    result = await session.execute(
        delete(ConversationState)
        .where(col(ConversationState.channel) == channel)
        .where(col(ConversationState.chat_id) == chat_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def expire_states(session: AsyncSession, now: datetime) -> int:
    """Abandoned flows end quietly."""
    result = await session.execute(
        delete(ConversationState).where(col(ConversationState.expires_at) <= now)
    )
    return int(getattr(result, "rowcount", 0))
