"""Meetings: recurring series, their occurrences, reminders, RSVPs, attendance, topics,
minutes and follow-up items.

A series holds the rule (RFC 5545 RRULE text, expanded in the installation's time zone) and the
audience; each occurrence is a row of its own, keyed by the rule's original start, so that a
moved or cancelled occurrence is never planned again. Reminders are rows with a due time and a
unique dedupe key; the reminder job claims due rows and marks them in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class MeetingKind(StrEnum):
    council = "council"
    """月月谈: the monthly party–resident council."""
    joint = "joint"
    """多方联席会: grid branch, property company and owners' committee."""
    branch = "branch"
    """三会一课: party branch meetings."""
    cobuilding = "cobuilding"
    """共建联席会: co-building joint meeting with resident units."""
    custom = "custom"


class Audience(StrEnum):
    open = "open"
    """Everyone in the unit is invited; any member may come, RSVP and check in."""
    roles = "roles"
    """Holders of the chosen roles within the unit."""
    members = "members"
    """The named members only."""


class MeetingStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class Rsvp(StrEnum):
    yes = "yes"
    no = "no"
    maybe = "maybe"


class CheckinMethod(StrEnum):
    code = "code"
    location = "location"


class ReminderKind(StrEnum):
    invitation = "invitation"
    before = "before"


class ReminderStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    skipped = "skipped"
    """Due while nothing could be done with it (the meeting had already begun)."""
    cancelled = "cancelled"
    """The occurrence was cancelled or moved before the reminder was due."""


class FollowUpStatus(StrEnum):
    open = "open"
    done = "done"
    dropped = "dropped"


class MeetingSeries(SQLModel, table=True):
    __tablename__ = "meeting_series"

    id: int | None = Field(default=None, primary_key=True)
    kind: MeetingKind = Field(sa_type=String(16))
    title: str = Field(max_length=100)
    unit_id: int = Field(foreign_key="units.id", index=True)
    organiser_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    audience: Audience = Field(sa_type=String(16))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """For ``audience=roles``: the role codes invited."""
    venue: str = Field(max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    radius_m: int
    """Check-in by location: how far from the venue counts as being there."""
    first_start: datetime = Field(sa_type=UTCDateTime)
    rrule: str | None = Field(default=None, max_length=300)
    """RFC 5545 RRULE without DTSTART (expanded from ``first_start`` in the installation's
    zone); None for a one-off meeting."""
    duration_minutes: int
    created_by: int | None = Field(default=None, foreign_key="members.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    planned_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Occurrences starting up to here exist as rows."""
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    """No more occurrences are planned (the rule ran out or the series was ended)."""


class MeetingSeriesMember(SQLModel, table=True):
    """The named members of a series with ``audience=members``."""

    __tablename__ = "meeting_series_members"

    series_id: int = Field(foreign_key="meeting_series.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True, ondelete="CASCADE")


class Meeting(SQLModel, table=True):
    """One occurrence of a series."""

    __tablename__ = "meetings"
    __table_args__ = (
        UniqueConstraint("series_id", "original_start"),
        Index("ix_meetings_starts", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    series_id: int = Field(foreign_key="meeting_series.id", index=True)
    original_start: datetime = Field(sa_type=UTCDateTime)
    """The start the rule gave it: moving keeps this, so the occurrence is never planned twice."""
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: MeetingStatus = Field(default=MeetingStatus.scheduled, sa_type=String(16))
    version: int = 1
    """Raised on every move; reminders and calendar files carry it."""
    checkin_code: str = Field(max_length=8, unique=True)
    invited_count: int | None = None
    """How many people the invitation went to (for attendance rates)."""
    minutes: str | None = Field(default=None, sa_type=Text)
    minutes_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    minutes_by: int | None = Field(default=None, foreign_key="members.id")
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MeetingEvent(SQLModel, table=True):
    """What happened to an occurrence, by whom and when (created, moved, cancelled, minutes…)."""

    __tablename__ = "meeting_events"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    action: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MeetingReminder(SQLModel, table=True):
    __tablename__ = "meeting_reminders"
    __table_args__ = (Index("ix_meeting_reminders_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    kind: ReminderKind = Field(sa_type=String(16))
    minutes_before: int = 0
    version: int
    """The meeting's version it was planned for; a move cancels it and plans new ones."""
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: ReminderStatus = Field(default=ReminderStatus.pending, sa_type=String(16))
    dedupe_key: str = Field(max_length=80, unique=True)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recipients: int | None = None


class MeetingRsvp(SQLModel, table=True):
    __tablename__ = "meeting_rsvps"

    meeting_id: int = Field(foreign_key="meetings.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True, ondelete="CASCADE")
    answer: Rsvp = Field(sa_type=String(8))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MeetingAttendance(SQLModel, table=True):
    """A check-in. One per person and meeting: the unique key makes a second one a no-op.
    Points for attendance are awarded from here (source ``meeting``) once that work lands."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    member_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    method: CheckinMethod = Field(sa_type=String(16))
    distance_m: int | None = None
    checked_in_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MeetingTopic(SQLModel, table=True):
    """A topic a resident submitted for the agenda."""

    __tablename__ = "meeting_topics"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    member_id: int = Field(foreign_key="members.id", ondelete="CASCADE")
    text: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MeetingFollowUp(SQLModel, table=True):
    """A decision to carry out; an organiser can make it a tracked issue (source ``meeting``,
    source id the follow-up's), whose number and state then show on the follow-up."""

    __tablename__ = "meeting_followups"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    text: str = Field(max_length=500)
    owner_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    due_on: date | None = Field(default=None, sa_type=Date)
    status: FollowUpStatus = Field(default=FollowUpStatus.open, sa_type=String(16))
    created_by: int | None = Field(default=None, foreign_key="members.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: int | None = Field(default=None, foreign_key="members.id")
    issue_id: int | None = Field(default=None, foreign_key="issues.id", unique=True)
    """The tracked issue made from it, if any."""
