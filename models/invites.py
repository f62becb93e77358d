"""Invites: a deep-link payload that grants one role on one unit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow
from models.members import Role


class Invite(SQLModel, table=True):
    __tablename__ = "invites"

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True, index=True)
    role: Role = Field(sa_type=String(16))
    unit_id: int = Field(foreign_key="units.id", index=True)
    max_uses: int | None = None
    uses: int = 0
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="members.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InviteUse(SQLModel, table=True):
    __tablename__ = "invite_uses"
    __table_args__ = (UniqueConstraint("invite_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    invite_id: int = Field(foreign_key="invites.id", index=True)
    member_id: int = Field(foreign_key="members.id", ondelete="CASCADE")
    used_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
