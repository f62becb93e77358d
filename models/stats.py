"""Statistics: Excel exports asked for in the chat (built by a job, with progress), and the
indexes the period reports read by (the unit's community and a time, so that a month of one
street is a range of an index however large the tables grow)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, text
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow
from models.issues import EventKind, Issue, IssueEvent
from models.points import LedgerEntry
from models.wishes import Wish


class ExportStatus(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class StatsExport(SQLModel, table=True):
    """One workbook someone asked for. ``live_key`` is set while pending or running and
    cleared at the end: its unique constraint makes a second tap on "export" a no-op."""

    __tablename__ = "stats_exports"
    __table_args__ = (Index("ix_stats_exports_due", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", ondelete="CASCADE")
    unit_id: int = Field(foreign_key="units.id")
    period: str = Field(max_length=32)
    locale: str = Field(max_length=8)
    status: ExportStatus = Field(default=ExportStatus.pending, sa_type=String(16))
    live_key: str | None = Field(default=None, max_length=80, unique=True)
    progress_outbox_id: int | None = None
    """The outbox row of the "preparing…" message that the job edits in place."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=300)


# Report indexes on other domains' tables (declared here, created by this domain's migration).
Index("ix_issues_community_created", Issue.community_id, Issue.created_at)  # type: ignore[arg-type]
Index("ix_wishes_community_created", Wish.community_id, Wish.created_at)  # type: ignore[arg-type]
Index(
    "ix_points_ledger_community_at",
    LedgerEntry.community_id,  # type: ignore[arg-type]
    LedgerEntry.at,  # type: ignore[arg-type]
    LedgerEntry.grid_id,  # type: ignore[arg-type]
    LedgerEntry.kind,
    LedgerEntry.points,  # type: ignore[arg-type]
)
"""Covers the points section: a month of a street is read from the index alone."""

_REPORT_KINDS = ", ".join(
    f"'{kind.value}'"
    for kind in (
        EventKind.accepted,
        EventKind.assigned,
        EventKind.rejected,
        EventKind.duplicate,
        EventKind.reported_in,
        EventKind.escalated,
        EventKind.overdue,
        EventKind.reopened,
        EventKind.rated,
        EventKind.closed,
    )
)
Index(
    "ix_issue_events_report",
    IssueEvent.issue_id,  # type: ignore[arg-type]
    IssueEvent.kind,
    IssueEvent.at,  # type: ignore[arg-type]
    IssueEvent.note,  # type: ignore[arg-type]
    sqlite_where=text(f"kind IN ({_REPORT_KINDS})"),
    postgresql_where=text(f"kind IN ({_REPORT_KINDS})"),
)
"""The events the statistics read, with everything they read from them: the report never
touches the table itself (the kinds are ``services.stats.REPORT_EVENT_KINDS``)."""
