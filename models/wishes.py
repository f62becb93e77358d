"""Micro-wishes (微心愿): what residents wish for, who claimed it, every step as an event, and the
skills volunteers declare so that they find the wishes they can fulfil."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class WishCategory(StrEnum):
    hardship = "hardship"
    elderly = "elderly"
    tutoring = "tutoring"
    repairs = "repairs"
    health = "health"
    other = "other"


class WishStatus(StrEnum):
    submitted = "submitted"
    """Waiting for a grid leader or coordinator to approve it."""
    approved = "approved"
    """Published: volunteers in scope can claim it."""
    claimed = "claimed"
    fulfilled = "fulfilled"
    """The claimer says it is done; waiting for the wisher (or a coordinator) to confirm."""
    confirmed = "confirmed"
    rejected = "rejected"
    withdrawn = "withdrawn"
    released = "released"
    """The claimer gave up or the claim went stale: published again, claimable like approved."""


OPEN_STATUSES: frozenset[WishStatus] = frozenset({WishStatus.approved, WishStatus.released})
"""A wish in one of these states can be claimed."""
FINAL_STATUSES: frozenset[WishStatus] = frozenset(
    {WishStatus.confirmed, WishStatus.rejected, WishStatus.withdrawn}
)


class ClaimKind(StrEnum):
    volunteer = "volunteer"
    """A volunteer claimed it themselves; confirmation earns them points and hours."""
    dispatch = "dispatch"
    """A coordinator dispatched it to a department or resident unit (分类派单); no points."""


class ClaimEnd(StrEnum):
    fulfilled = "fulfilled"
    given_up = "given_up"
    stale = "stale"
    withdrawn = "withdrawn"


class Skill(StrEnum):
    errands = "errands"
    elderly_care = "elderly_care"
    tutoring = "tutoring"
    repairs = "repairs"
    medical = "medical"
    legal = "legal"
    counselling = "counselling"
    digital = "digital"


class Wish(SQLModel, table=True):
    __tablename__ = "wishes"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_wishes_browse", "community_id", "status", "id"),
        Index("ix_wishes_confirm_due", "status", "confirm_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: WishStatus = Field(default=WishStatus.submitted, sa_type=String(16))
    category: WishCategory = Field(sa_type=String(16))
    text: str = Field(max_length=500)
    photo_file_id: str | None = Field(default=None, max_length=200)
    wished_by: date | None = Field(default=None, sa_type=Date)
    unit_id: int = Field(foreign_key="units.id", index=True)
    """Where the wish lives (a building or a grid): decides who sees and approves it."""
    grid_id: int | None = Field(default=None, foreign_key="units.id")
    community_id: int | None = Field(default=None, foreign_key="units.id")
    wisher_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    """The resident who wished it; None when staff entered it for a household."""
    created_by: int | None = Field(default=None, foreign_key="members.id")
    household_id: int | None = Field(default=None, index=True)
    """The household file it was entered for (door-knocking visits), when there is one."""
    source: str | None = Field(default=None, max_length=16)
    """What created it besides a resident's /wish, e.g. ``visit``; with ``source_id`` unique."""
    source_id: int | None = None
    contact_name: str = Field(default="", max_length=64)
    contact_phone: str | None = Field(default=None, max_length=32)
    address: str = Field(default="", max_length=200)
    """Personal data: shown to the claimer only, and only after the claim."""
    reject_reason: str | None = Field(default=None, max_length=300)
    fulfil_note: str | None = Field(default=None, max_length=1000)
    fulfil_photo_file_id: str | None = Field(default=None, max_length=200)
    fulfil_minutes: int | None = None
    """Service time the claimer reported; logged as service hours on confirmation."""
    fulfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirm_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """After this, a coordinator may confirm in the wisher's place (and is asked to)."""
    confirm_escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by: int | None = Field(default=None, foreign_key="members.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WishClaim(SQLModel, table=True):
    """Who took a wish on. ``live_wish_id`` equals ``wish_id`` while the claim is live and is
    NULL once it ended: its unique constraint allows one live claim per wish, whoever races."""

    __tablename__ = "wish_claims"
    __table_args__ = (Index("ix_wish_claims_stale", "live_wish_id", "stale_at"),)

    id: int | None = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wishes.id", index=True)
    live_wish_id: int | None = Field(default=None, foreign_key="wishes.id", unique=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    kind: ClaimKind = Field(default=ClaimKind.volunteer, sa_type=String(16))
    dispatched_by: int | None = Field(default=None, foreign_key="members.id")
    claimed_at: datetime = Field(sa_type=UTCDateTime)
    remind_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stale_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Released automatically at this time unless fulfilled first."""
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: ClaimEnd | None = Field(default=None, sa_type=String(16))


class WishEvent(SQLModel, table=True):
    """Every change of a wish, with who, when and why (过程留痕); the state can be rebuilt."""

    __tablename__ = "wish_events"

    id: int | None = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wishes.id", index=True)
    action: str = Field(max_length=16)
    from_status: WishStatus | None = Field(default=None, sa_type=String(16))
    to_status: WishStatus = Field(sa_type=String(16))
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    """None: the system (a job or the CLI)."""
    at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=1000)


class MemberSkill(SQLModel, table=True):
    __tablename__ = "member_skills"
    __table_args__ = (UniqueConstraint("member_id", "skill"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    skill: Skill = Field(sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
