"""People and the roles they hold on org units."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class Role(StrEnum):
    resident = "resident"
    volunteer = "volunteer"
    grid_worker = "grid_worker"
    grid_leader = "grid_leader"
    coordinator = "coordinator"
    department = "department"
    admin = "admin"


class Member(SQLModel, table=True):
    __tablename__ = "members"

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=BigInteger, unique=True, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    display_name: str = Field(max_length=64)
    locale: str = Field(max_length=8)
    phone: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    blocked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when the person blocked the bot; cleared when they write again."""


class RoleGrant(SQLModel, table=True):
    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("member_id", "role", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    role: Role = Field(sa_type=String(16))
    unit_id: int = Field(foreign_key="units.id", index=True)
    granted_by: int | None = Field(default=None, foreign_key="members.id")
    invite_id: int | None = Field(default=None, foreign_key="invites.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
