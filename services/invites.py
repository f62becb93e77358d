"""Invites: created by admins (CLI) or staff within their scope; redeemed with /start <token>."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.invites import Invite, InviteUse
from models.members import Role, RoleGrant
from models.org import Unit
from services.access import INVITABLE, ROLE_UNIT_KINDS, Actor, UnitRef
from services.errors import InvalidInput, NotFound
from services.members import MemberView, Person, ensure_member
from services.org import subtree, unit_by_code, unit_by_id
from services.sql import insert_ignore

MAX_USES_LIMIT = 100_000
MAX_EXPIRY_DAYS = 365
TOKEN_BYTES = 9  # 12 URL-safe characters: fits a deep link and is not guessable


@dataclass(frozen=True)
class InviteView:
    id: int
    token: str
    role: Role
    unit: UnitRef
    max_uses: int | None
    uses: int
    expires_at: datetime | None


@dataclass(frozen=True)
class JoinResult:
    member: MemberView
    role: Role
    unit: UnitRef
    already: bool


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={token}"


def roles_actor_may_invite(actor: Actor, unit: UnitRef | None = None) -> set[Role]:
    if actor.system:
        return set(Role)
    allowed: set[Role] = set()
    for grant in actor.grants:
        if unit is None or unit.within(grant.unit):
            allowed |= INVITABLE.get(grant.role, frozenset())
    return allowed


async def create_invite(
    session: AsyncSession,
    actor: Actor,
    *,
    role: Role | str,
    unit_code: str,
    now: datetime,
    max_uses: int | None = None,
    expires_days: int | None = None,
    token: str | None = None,
) -> InviteView:
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("invite.role_unknown", role=str(role)[:32]) from None
    unit = await unit_by_code(session, unit_code)
    if unit.kind not in ROLE_UNIT_KINDS[role]:
        kinds = ", ".join(sorted(k.value for k in ROLE_UNIT_KINDS[role]))
        raise InvalidInput(
            "invite.wrong_unit_kind", role=role.value, kind=unit.kind.value, kinds=kinds
        )
    if role not in roles_actor_may_invite(actor, unit):
        actor.refuse(f"invite {role.value}", unit)
    if max_uses is not None and not 1 <= max_uses <= MAX_USES_LIMIT:
        raise InvalidInput("invite.bad_uses", limit=MAX_USES_LIMIT)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput("invite.bad_expiry", limit=MAX_EXPIRY_DAYS)
    invite = Invite(
        token=token or secrets.token_urlsafe(TOKEN_BYTES),
        role=role,
        unit_id=unit.id,
        max_uses=max_uses,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
        created_by=actor.member_id,
        created_at=now,
    )
    session.add(invite)
    await session.flush()
    assert invite.id is not None
    return InviteView(invite.id, invite.token, role, unit, max_uses, 0, invite.expires_at)


async def redeem(session: AsyncSession, token: str, person: Person, now: datetime) -> JoinResult:
    """Join with an invite. Says precisely why an invite cannot be used; a second use by the
    same person changes nothing and uses up nothing."""
    token = token.strip()
    invite = None
    if 1 <= len(token) <= 64:
        invite = (
            await session.execute(select(Invite).where(Invite.token == token))
        ).scalar_one_or_none()
    if invite is None:
        raise NotFound("invite.unknown")
    assert invite.id is not None
    if invite.revoked_at is not None:
        raise InvalidInput("invite.revoked")
    if invite.expires_at is not None and invite.expires_at <= now:
        raise InvalidInput("invite.expired")
    unit = await unit_by_id(session, invite.unit_id)
    member = await ensure_member(session, person, now)
    role = Role(invite.role)

    granted = await insert_ignore(
        session,
        RoleGrant,
        {
            "member_id": member.id,
            "role": role.value,
            "unit_id": unit.id,
            "invite_id": invite.id,
            "granted_by": invite.created_by,
            "created_at": now,
        },
        conflict=["member_id", "role", "unit_id"],
    )
    if not granted:
        return JoinResult(member, role, unit, already=True)

    consumed = await session.execute(
        update(Invite)
        .where(col(Invite.id) == invite.id)
        .where(or_(col(Invite.max_uses).is_(None), col(Invite.uses) < col(Invite.max_uses)))
        .values(uses=col(Invite.uses) + 1)
    )
    if getattr(consumed, "rowcount", 0) != 1:
        raise InvalidInput("invite.used_up")
    session.add(InviteUse(invite_id=invite.id, member_id=member.id, used_at=now))
    await session.flush()
    return JoinResult(member, role, unit, already=False)


async def list_invites(session: AsyncSession, actor: Actor, now: datetime) -> list[InviteView]:
    """Live invites the actor may see: those on units within their inviting scopes."""
    query = (
        select(Invite, Unit)
        .join(Unit, col(Unit.id) == col(Invite.unit_id))
        .where(col(Invite.revoked_at).is_(None))
        .where(or_(col(Invite.expires_at).is_(None), col(Invite.expires_at) > now))
        .order_by(col(Invite.id).desc())
        .limit(50)
    )
    views = []
    for invite, unit in (await session.execute(query)).all():
        assert invite.id is not None
        ref = UnitRef.of(unit)
        if actor.system or Role(invite.role) in roles_actor_may_invite(actor, ref):
            views.append(
                InviteView(
                    invite.id,
                    invite.token,
                    Role(invite.role),
                    ref,
                    invite.max_uses,
                    invite.uses,
                    invite.expires_at,
                )
            )
    return views


async def revoke_invite(session: AsyncSession, actor: Actor, token: str, now: datetime) -> None:
    invite = (
        await session.execute(select(Invite).where(Invite.token == token))
    ).scalar_one_or_none()
    if invite is None:
        raise NotFound("invite.unknown")
    unit = await unit_by_id(session, invite.unit_id)
    if Role(invite.role) not in roles_actor_may_invite(actor, unit):
        actor.refuse("revoke invite", unit)
    invite.revoked_at = invite.revoked_at or now


def invitable_roles(actor: Actor) -> list[Role]:
    """Roles the actor can hand out somewhere, in the canonical order."""
    allowed = roles_actor_may_invite(actor)
    return [role for role in Role if role in allowed]


async def invite_targets(session: AsyncSession, actor: Actor, role: Role) -> list[UnitRef]:
    """Units where the actor may invite someone as ``role``: within their scopes, and of a
    kind that role can be held on."""
    if role not in roles_actor_may_invite(actor):
        actor.refuse(f"list units to invite {role.value}")
    scopes = [g.unit for g in actor.grants if role in INVITABLE.get(g.role, frozenset())]
    found: dict[int, UnitRef] = {}
    for scope in scopes:
        for unit in await subtree(session, scope, set(ROLE_UNIT_KINDS[role])):
            found[unit.id] = unit
    return sorted(found.values(), key=lambda u: (u.kind.level, u.code))


def qr_png(text: str) -> bytes:
    """A QR code for a notice board (PNG)."""
    import io

    import qrcode

    image = qrcode.make(text, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
