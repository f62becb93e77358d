"""The outbox: every message the bot sends is a row first, written in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class OutboxKind(StrEnum):
    text = "text"
    photo = "photo"
    document = "document"
    edit = "edit"
    commands = "commands"


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    blocked = "blocked"
    cancelled = "cancelled"
    expired = "expired"
    """Held while the person had blocked the bot and out of date when they came back."""


class Priority:
    normal = 0
    reply = 5
    urgent = 10


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "not_before", "id"),
        Index("ix_outbox_chat", "chat_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    member_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    kind: OutboxKind = Field(sa_type=String(16))
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    priority: int = Priority.normal
    status: OutboxStatus = Field(default=OutboxStatus.pending, sa_type=String(16))
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, max_length=64)
    dedupe_key: str | None = Field(default=None, max_length=160, unique=True)
    source: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    telegram_message_id: int | None = Field(default=None, sa_type=BigInteger)
    error: str | None = Field(default=None, max_length=300)


class Blob(SQLModel, table=True):
    """Bytes the bot sends (QR codes, charts, spreadsheets), referenced from outbox payloads."""

    __tablename__ = "blobs"

    id: int | None = Field(default=None, primary_key=True)
    filename: str = Field(max_length=200)
    mime_type: str = Field(max_length=100)
    data: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
