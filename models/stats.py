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


class RequestKind(StrEnum):
    export = "export"
    """The Excel workbook, sent as a file."""
    report = "report"
    """The one-screen summary with its buttons (in place of the "working…" message) and the
    chart, for /stats and its buttons."""
    league = "league"
    """The department league table (its button), in place of the pressed message."""


class StatsExport(SQLModel, table=True):
    """One piece of statistics someone asked for in the chat, built by the statistics job off
    the person's update: a workbook or a chat report (``kind``). ``live_key`` is set while
    pending or running and cleared at the end: its unique constraint makes a second tap on the
    same button a no-op."""

    __tablename__ = "stats_exports"
    __table_args__ = (Index("ix_stats_exports_due", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", ondelete="CASCADE")
    unit_id: int = Field(foreign_key="units.id")
    period: str = Field(max_length=32)
    locale: str = Field(max_length=8)
    kind: RequestKind = Field(
        default=RequestKind.export,
        sa_type=String(16),
        sa_column_kwargs={"server_default": RequestKind.export.value},
    )
    status: ExportStatus = Field(default=ExportStatus.pending, sa_type=String(16))
    live_key: str | None = Field(default=None, max_length=80, unique=True)
    progress_outbox_id: int | None = None
    """The outbox row of the "preparing…" message that the job edits in place."""
    message_id: int | None = None
    """Or the chat message (a pressed button's) that the job edits in place."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=300)


# Report indexes on other domains' tables (declared here, created by this domain's migration).
Index("ix_issues_community_created", Issue.community_id, Issue.created_at)  # type: ignore[arg-type]
Index("ix_wishes_community_created", Wish.community_id, Wish.created_at)  # type: ignore[arg-type]
Index(
    "ix_points_ledger_place",
    LedgerEntry.community_id,  # type: ignore[arg-type]
    LedgerEntry.grid_id,  # type: ignore[arg-type]
    LedgerEntry.kind,
    LedgerEntry.at,  # type: ignore[arg-type]
    LedgerEntry.points,  # type: ignore[arg-type]
)
"""Covers the points section: the entries of one place (grid, else community), kind and period
are one range of the index, summed without sorting anything (a year of a street is 1,000,000
entries in the benchmark)."""
Index(
    "ix_points_ledger_awards",
    LedgerEntry.member_id,  # type: ignore[arg-type]
    LedgerEntry.kind,
    LedgerEntry.at,  # type: ignore[arg-type]
    LedgerEntry.community_id,  # type: ignore[arg-type]
)
"""Covers "was this volunteer awarded points in the period" (active volunteers): one seek."""

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
    IssueEvent.at,  # type: ignore[arg-type]
    IssueEvent.kind,
    IssueEvent.note,  # type: ignore[arg-type]
    sqlite_where=text(f"kind IN ({_REPORT_KINDS})"),
    postgresql_where=text(f"kind IN ({_REPORT_KINDS})"),
)
"""The events the statistics read, with everything they read from them: the report never
touches the table itself (the kinds are ``services.stats.REPORT_EVENT_KINDS``). The time comes
before the kind, so that an issue's events are one range (with the kind second, SQLite seeks
once per kind of the list for every issue)."""
