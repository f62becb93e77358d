"""Who wrote and where they are: the member, every role they hold and their conversation step,
read in one query at the start of every update (the hot path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.conversations import ConversationState
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from services import conversations
from services.access import Actor, Grant, UnitRef
from services.conversations import State
from services.members import MemberView


@dataclass(frozen=True)
class Visitor:
    member: MemberView | None
    actor: Actor
    state: State | None


_VISITOR = (
    select(
        col(Member.id),
        col(Member.telegram_id),
        col(Member.chat_id),
        col(Member.display_name),
        col(Member.locale),
        col(Member.phone),
        col(Member.blocked_at),
        col(RoleGrant.role),
        col(Unit.id),
        col(Unit.code),
        col(Unit.kind),
        col(Unit.name),
        col(Unit.name_en),
        col(Unit.path),
        col(ConversationState.step),
        col(ConversationState.nonce),
        col(ConversationState.data),
        col(ConversationState.expires_at),
    )
    .outerjoin(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
    .outerjoin(Unit, col(Unit.id) == col(RoleGrant.unit_id))
    .outerjoin(
        ConversationState,
        and_(
            col(ConversationState.channel) == bindparam("channel"),
            col(ConversationState.chat_id) == bindparam("chat_id"),
        ),
    )
    .where(col(Member.telegram_id) == bindparam("telegram_id"))
    .order_by(col(RoleGrant.id))
)
"""Built once, so each update only binds values to an already compiled statement."""


async def load_visitor(
    session: AsyncSession, channel: str, telegram_id: int, chat_id: int, now: datetime
) -> Visitor:
    params = {"channel": channel, "chat_id": chat_id, "telegram_id": telegram_id}
    rows = (await session.execute(_VISITOR, params)).all()
    if not rows:
        state = await conversations.get_state(session, channel, chat_id, now)
        return Visitor(None, Actor(member_id=None), state)
    first: Any = rows[0]
    member = MemberView(
        first[0], first[1], first[2], first[3], first[4], first[5], first[6] is not None
    )
    grants = tuple(
        Grant(Role(row[7]), UnitRef(row[8], row[9], UnitKind(row[10]), row[11], row[12], row[13]))
        for row in cast(list[Any], rows)
        if row[7] is not None
    )
    state = None
    if first[14] is not None:
        if first[17] > now:
            state = State(first[14], first[15], dict(first[16] or {}))
        else:
            await conversations.clear_state(session, channel, chat_id)
    return Visitor(member, Actor(member_id=member.id, grants=grants), state)
