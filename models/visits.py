"""Door-knocking visits (敲门行动): the visit log and the runs of the daily nudge and the weekly
coverage summary."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class VisitOutcome(StrEnum):
    met = "met"
    not_home = "not_home"
    refused = "refused"
    moved = "moved"
    other = "other"

    @property
    def counts(self) -> bool:
        """Whether the visit resets the household's cadence. A closed door does not: the
        household stays due until someone has been there."""
        return self in (VisitOutcome.met, VisitOutcome.refused, VisitOutcome.other)


class Visit(SQLModel, table=True):
    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_household_at", "household_id", "visited_at"),
        Index("ix_visits_member_at", "member_id", "visited_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="households.id", ondelete="CASCADE")
    member_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    visited_at: datetime = Field(sa_type=UTCDateTime)
    outcome: VisitOutcome = Field(sa_type=String(16))
    note: str | None = Field(default=None, max_length=1000)
    photo_file_id: str | None = Field(default=None, max_length=256)
    needs: str | None = Field(default=None, max_length=1000)
    """Needs found at the door, in the visitor's words: the text an issue report or a wish is
    pre-filled with."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class VisitRunKind(StrEnum):
    nudge = "nudge"
    coverage = "coverage"


class VisitRun(SQLModel, table=True):
    """One run of a scheduled visit job for one period (a local day, an ISO week): planned
    with a unique key, claimed once, done once."""

    __tablename__ = "visit_runs"
    __table_args__ = (UniqueConstraint("kind", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: VisitRunKind = Field(sa_type=String(16))
    period: str = Field(max_length=16)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    messages: int = 0
