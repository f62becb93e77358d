"""Tasks with slots and emergency mobilisation.

A task has one or more shifts; a plain task is one shift, an emergency call several (e.g. three
8-hour shifts a day), each with its own slots. A take is one member on one shift. The shift's
``taken`` counter is raised by a conditional UPDATE (``taken < slots``) in the same transaction
that inserts the take, and a CHECK constraint keeps it within ``0..slots``: never more takers
than slots, also under concurrency, on SQLite and PostgreSQL alike.

An emergency call widens its audience step by step (reserve → community volunteers → the
street) when slots stay empty; ``widen_step`` and ``widen_at`` persist where it stands, and
``task_calls`` remembers who was already called so nobody is called twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class TaskKind(StrEnum):
    task = "task"
    emergency = "emergency"


class TaskStatus(StrEnum):
    open = "open"
    cancelled = "cancelled"


class WidenStep(StrEnum):
    """Who an emergency call has reached so far, in the order it widens."""

    reserve = "reserve"
    volunteers = "volunteers"
    """Volunteers within the organiser's community."""
    street = "street"
    """Everyone in the organiser's street."""


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        Index("ix_tasks_widen", "status", "widen_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: TaskKind = Field(default=TaskKind.task, sa_type=String(16))
    title: str = Field(max_length=100)
    place: str = Field(max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    starts_at: datetime = Field(sa_type=UTCDateTime)
    """The first shift's start."""
    ends_at: datetime = Field(sa_type=UTCDateTime)
    """The last shift's end."""
    unit_id: int = Field(foreign_key="units.id", index=True)
    """The scope: the organiser's unit the task belongs to."""
    organiser_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    broadcast_id: int | None = Field(
        default=None, foreign_key="broadcasts.id", index=True, ondelete="SET NULL"
    )
    """The broadcast that announced it (set once broadcasts have landed)."""
    urgent: bool = False
    status: TaskStatus = Field(default=TaskStatus.open, sa_type=String(16))
    widen_step: WidenStep | None = Field(default=None, sa_type=String(16))
    """The audience an emergency call has reached (None for a plain task)."""
    widen_minutes: int | None = None
    widen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the call widens next if slots are still empty; None when it will not."""
    called: int = 0
    """How many people the task was announced to, over every step."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TaskShift(SQLModel, table=True):
    __tablename__ = "task_shifts"
    __table_args__ = (
        UniqueConstraint("task_id", "number"),
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        CheckConstraint("slots >= 1", name="slots_positive"),
        CheckConstraint("taken >= 0 AND taken <= slots", name="taken_within_slots"),
        Index("ix_task_shifts_remind", "reminded_at", "remind_at"),
        Index("ix_task_shifts_no_shows", "no_shows_at", "ends_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    number: int
    """1, 2, 3… in time order."""
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    slots: int
    taken: int = 0
    """The number of takes: raised only by ``UPDATE … WHERE taken < slots``."""
    remind_at: datetime = Field(sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when the reminder job handled the shift (sent, or skipped for a cancelled task)."""
    no_shows_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when the no-show job settled the shift (takers never checked in were marked)."""


class TaskTake(SQLModel, table=True):
    """A member on a shift. One per member and shift; given back = the row is deleted."""

    __tablename__ = "task_takes"
    __table_args__ = (UniqueConstraint("shift_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="task_shifts.id", index=True)
    member_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    taken_at: datetime = Field(sa_type=UTCDateTime)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    minutes: int | None = None
    """Service time logged at check-out."""
    no_show_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Marked as a no-show (never checked in) after the shift; cleared when the organiser
    undoes it."""


class TaskCall(SQLModel, table=True):
    """Who a task was announced to, and at which step: nobody is called twice."""

    __tablename__ = "task_calls"

    task_id: int = Field(foreign_key="tasks.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True, ondelete="CASCADE")
    step: str = Field(max_length=16)
    called_at: datetime = Field(sa_type=UTCDateTime)


class TaskEvent(SQLModel, table=True):
    """What happened to a task, by whom and when (created, widened, cancelled, checked in…)."""

    __tablename__ = "task_events"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    action: str = Field(max_length=32)
    member_id: int | None = Field(default=None, foreign_key="members.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
