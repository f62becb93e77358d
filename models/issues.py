"""Issue reports (民情/问题上报): the issue, its timeline, photos, followers, due-time rows for
reminders and escalations, categories and the deadline rules coordinators set."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class IssueStatus(StrEnum):
    new = "new"
    accepted = "accepted"
    assigned = "assigned"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    rejected = "rejected"
    duplicate = "duplicate"
    reopened = "reopened"


OPEN_STATUSES: frozenset[IssueStatus] = frozenset(
    {
        IssueStatus.new,
        IssueStatus.accepted,
        IssueStatus.assigned,
        IssueStatus.in_progress,
        IssueStatus.reopened,
    }
)
"""Someone still has to act on the issue (the reporter's rating is not counted as work)."""

HANDLING_STATUSES: frozenset[IssueStatus] = OPEN_STATUSES - {IssueStatus.new}


class IssuePriority(StrEnum):
    normal = "normal"
    urgent = "urgent"


class Tier(StrEnum):
    """Tiered handling (分级处置): an overdue issue climbs one tier."""

    grid = "grid"
    community = "community"
    street = "street"
    department = "department"

    @property
    def above(self) -> Tier | None:
        order = list(Tier)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


class Rating(StrEnum):
    satisfied = "satisfied"
    basic = "basic"
    unsatisfied = "unsatisfied"


class CloseReason(StrEnum):
    rated = "rated"
    no_answer = "no_answer"


class DueKind(StrEnum):
    """What the issue's current deadline (``Issue.due_at``) is for."""

    response = "response"
    handling = "handling"
    report_in = "report_in"
    rating = "rating"


class TimerKind(StrEnum):
    response_reminder = "response_reminder"
    response_breach = "response_breach"
    handling_reminder = "handling_reminder"
    handling_breach = "handling_breach"
    report_in_reminder = "report_in_reminder"
    report_in_breach = "report_in_breach"
    rating_timeout = "rating_timeout"


class TimerStatus(StrEnum):
    pending = "pending"
    done = "done"
    obsolete = "obsolete"
    """The issue moved on before the timer came due; nothing was done."""
    failed = "failed"


class EventKind(StrEnum):
    reported = "reported"
    accepted = "accepted"
    assigned = "assigned"
    started = "started"
    resolved = "resolved"
    rated = "rated"
    reopened = "reopened"
    closed = "closed"
    rejected = "rejected"
    duplicate = "duplicate"
    escalated = "escalated"
    whistled = "whistled"
    reported_in = "reported_in"
    overdue = "overdue"
    reminded = "reminded"
    priority = "priority"
    followed = "followed"
    category = "category"


class IssueSource(StrEnum):
    """Where a report came from when not typed by its reporter."""

    visit = "visit"
    meeting = "meeting"


class IssueCategory(SQLModel, table=True):
    """A category reporters choose. ``unit_id`` None: everywhere; else that unit's subtree."""

    __tablename__ = "issue_categories"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=32)
    name_en: str | None = Field(default=None, max_length=32)
    unit_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    default_priority: IssuePriority = Field(default=IssuePriority.normal, sa_type=String(16))
    sort: int = 100
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IssueDeadlineRule(SQLModel, table=True):
    """Deadlines a coordinator set for a category and priority in their unit's subtree; the
    rule on the nearest unit above the issue wins, the settings are the fallback."""

    __tablename__ = "issue_deadline_rules"
    __table_args__ = (UniqueConstraint("unit_id", "category_id", "priority"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    category_id: int = Field(foreign_key="issue_categories.id", ondelete="CASCADE")
    priority: IssuePriority = Field(sa_type=String(16))
    response_minutes: int
    handling_hours: int
    updated_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IssueCounter(SQLModel, table=True):
    """The last number given to an issue per community and year (``C1-2026-0042``)."""

    __tablename__ = "issue_counters"

    community_id: int = Field(foreign_key="units.id", primary_key=True)
    year: int = Field(primary_key=True)
    last: int = 0


class Issue(SQLModel, table=True):
    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_issues_grid_queue", "grid_id", "status", "due_at"),
        Index("ix_issues_community_queue", "community_id", "status", "due_at"),
        Index("ix_issues_assignee", "assignee_id", "status"),
        Index("ix_issues_department", "department_id", "status"),
        Index("ix_issues_grid_resolved", "grid_id", "resolved_at"),
        Index("ix_issues_community_resolved", "community_id", "resolved_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    community_id: int = Field(foreign_key="units.id")
    grid_id: int | None = Field(default=None, foreign_key="units.id")
    """None when the place is known only to the community (handled by the community)."""
    building_id: int | None = Field(default=None, foreign_key="units.id")
    category_id: int = Field(foreign_key="issue_categories.id")
    priority: IssuePriority = Field(default=IssuePriority.normal, sa_type=String(16))
    status: IssueStatus = Field(default=IssueStatus.new, sa_type=String(16))
    tier: Tier = Field(default=Tier.grid, sa_type=String(16))

    description: str = Field(max_length=1000)
    address: str | None = Field(default=None, max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    anonymous: bool = False
    """Hidden from other residents (followers); staff of the scope still see who reported."""

    reported_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    """Who typed the report (a grid worker at the door, a visit, a meeting's secretary)."""
    reporter_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    """Who is answered back and rates: the member reported for, else ``reported_by``."""
    on_behalf_note: str | None = Field(default=None, max_length=100)
    """Name or door of a resident who is not a member (staff only)."""
    source: IssueSource | None = Field(default=None, sa_type=String(16))
    source_id: int | None = Field(default=None, sa_type=BigInteger)

    assignee_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    department_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    """The department liaison who was whistled (None at department tier: any in scope)."""
    whistled_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    reported_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duplicate_of_id: int | None = Field(default=None, foreign_key="issues.id")

    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_kind: DueKind | None = Field(default=None, sa_type=String(16))
    deadline_seq: int = 0
    """Bumped whenever deadlines are planned anew; a timer of an older seq is obsolete."""
    cycle: int = 0
    """How often the reporter reopened it."""

    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: CloseReason | None = Field(default=None, sa_type=String(16))
    rating: Rating | None = Field(default=None, sa_type=String(16))
    resolution_note: str | None = Field(default=None, max_length=1000)
    reject_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IssueEvent(SQLModel, table=True):
    """One row per change (过程留痕): who, when, what, from which state to which."""

    __tablename__ = "issue_events"
    __table_args__ = (Index("ix_issue_events_issue", "issue_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", ondelete="CASCADE")
    kind: EventKind = Field(sa_type=String(16))
    actor_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    """None: the system (a deadline job)."""
    at: datetime = Field(sa_type=UTCDateTime)
    from_status: IssueStatus | None = Field(default=None, sa_type=String(16))
    to_status: IssueStatus | None = Field(default=None, sa_type=String(16))
    tier: Tier | None = Field(default=None, sa_type=String(16))
    target_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    """The person assigned, whistled, or the follower."""
    note: str | None = Field(default=None, max_length=1000)


class IssuePhoto(SQLModel, table=True):
    __tablename__ = "issue_photos"

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", ondelete="CASCADE", index=True)
    event_id: int | None = Field(default=None, foreign_key="issue_events.id", ondelete="CASCADE")
    file_id: str = Field(max_length=200)
    resolution: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IssueFollower(SQLModel, table=True):
    """Residents who reported the same thing and chose to follow this issue instead."""

    __tablename__ = "issue_followers"

    issue_id: int = Field(foreign_key="issues.id", primary_key=True, ondelete="CASCADE")
    member_id: int = Field(foreign_key="members.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IssueTimer(SQLModel, table=True):
    """A reminder or deadline as a row: claimed once when due, acted on, marked done."""

    __tablename__ = "issue_timers"
    __table_args__ = (Index("ix_issue_timers_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", ondelete="CASCADE", index=True)
    kind: TimerKind = Field(sa_type=String(24))
    seq: int
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: TimerStatus = Field(default=TimerStatus.pending, sa_type=String(16))
    key: str = Field(max_length=64, unique=True)
    """``<issue>:<seq>:<kind>``: one row per deadline, so a breach is acted on once."""
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    """Failed tries so far; a timer that keeps failing is given up after MAX_TIMER_ATTEMPTS."""
    error: str | None = Field(default=None, max_length=300)
