"""What the runtime must remember between updates: processed update ids and conversation steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class ProcessedUpdate(SQLModel, table=True):
    __tablename__ = "processed_updates"

    channel: str = Field(max_length=16, primary_key=True)
    update_id: int = Field(sa_type=BigInteger, primary_key=True)
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ConversationState(SQLModel, table=True):
    __tablename__ = "conversation_states"

    channel: str = Field(max_length=16, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, primary_key=True)
    step: str = Field(max_length=64)
    nonce: str = Field(max_length=8)
    """Embedded in the flow's buttons, so a button from an earlier flow is recognised as stale."""
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
