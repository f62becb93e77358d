"""Broadcasts to many members, their recipients and acknowledgements, and the emergency reserve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class ReserveMember(SQLModel, table=True):
    """A member who volunteered for the emergency reserve (``/reserve``)."""

    __tablename__ = "reserve_members"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", unique=True, ondelete="CASCADE")
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Broadcast(SQLModel, table=True):
    """One message to an audience; each recipient gets one outbox row (source ``bc:<id>``)."""

    __tablename__ = "broadcasts"

    id: int | None = Field(default=None, primary_key=True)
    sender_id: int | None = Field(
        default=None, foreign_key="members.id", index=True, ondelete="SET NULL"
    )
    sender_chat_id: int | None = Field(default=None, sa_type=BigInteger)
    text: str = Field(max_length=4096)
    photo_file_id: str | None = Field(default=None, max_length=200)
    audience: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    urgent: bool = False
    ask_ack: bool = False
    recipients: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deliver_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    """When delivery starts: now, or the end of quiet hours for a non-urgent broadcast."""
    report_outbox_id: int | None = None
    """The outbox row of the sender's live report message, which later edits replace."""
    report_state: str | None = Field(default=None, max_length=200)
    report_edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    """Set once nothing is queued any more; the report job then leaves the broadcast alone."""
    renotified: int = 0
    next_renotify_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class BroadcastRecipient(SQLModel, table=True):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (UniqueConstraint("broadcast_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcasts.id", index=True, ondelete="CASCADE")
    member_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
