"""Members: who a person is to the bot, their language, name and phone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from models.members import Member
from services.access import Actor, load_actor
from services.errors import InvalidInput, NotFound
from services.sql import insert_ignore

NAME_MAX = 64
PHONE_PATTERN = re.compile(r"^\+?[0-9]{6,15}$")


@dataclass(frozen=True)
class Person:
    """Who is writing, as the channel describes them."""

    telegram_id: int
    chat_id: int
    name: str
    locale: str


@dataclass(frozen=True)
class MemberView:
    id: int
    telegram_id: int
    chat_id: int
    display_name: str
    locale: str
    phone: str | None
    blocked: bool


def _view(member: Member) -> MemberView:
    assert member.id is not None
    return MemberView(
        member.id,
        member.telegram_id,
        member.chat_id,
        member.display_name,
        member.locale,
        member.phone,
        member.blocked_at is not None,
    )


def clean_name(name: str) -> str:
    name = " ".join(name.split())
    return name[:NAME_MAX] if name else "?"


async def find_member(session: AsyncSession, telegram_id: int) -> MemberView | None:
    member = (
        await session.execute(select(Member).where(Member.telegram_id == telegram_id))
    ).scalar_one_or_none()
    return _view(member) if member else None


async def get_member(session: AsyncSession, member_id: int) -> MemberView:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound()
    return _view(member)


async def ensure_member(session: AsyncSession, person: Person, now: datetime) -> MemberView:
    """The member row for a person, created on first contact (a race creates one row)."""
    existing = await find_member(session, person.telegram_id)
    if existing is not None:
        return existing
    await insert_ignore(
        session,
        Member,
        {
            "telegram_id": person.telegram_id,
            "chat_id": person.chat_id,
            "display_name": clean_name(person.name),
            "locale": person.locale,
            "created_at": now,
        },
        conflict=["telegram_id"],
    )
    created = await find_member(session, person.telegram_id)
    assert created is not None
    return created


async def mark_returned(session: AsyncSession, member_id: int) -> None:
    """A person who had blocked the bot writes again: deliver to them again."""
    member = await session.get(Member, member_id)
    if member is not None and member.blocked_at is not None:
        member.blocked_at = None


async def actor_for(session: AsyncSession, member_id: int) -> Actor:
    return await load_actor(session, member_id)


async def set_locale(session: AsyncSession, member_id: int, locale: str) -> None:
    if locale not in ("zh_CN", "en"):
        raise InvalidInput("language.unknown")
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound()
    member.locale = locale


async def set_name(session: AsyncSession, member_id: int, name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("profile.name_empty")
    if len(cleaned) > NAME_MAX:
        raise InvalidInput("profile.name_too_long", limit=NAME_MAX)
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound()
    member.display_name = cleaned
    return cleaned


def normalize_phone(raw: str) -> str:
    phone = re.sub(r"[\s()-]", "", raw)
    if not PHONE_PATTERN.match(phone):
        raise InvalidInput("profile.phone_invalid")
    return phone


async def set_phone(session: AsyncSession, member_id: int, phone: str | None) -> str | None:
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound()
    member.phone = normalize_phone(phone) if phone else None
    return member.phone
