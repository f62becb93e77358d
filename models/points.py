"""Volunteer points (积分): the rule table, the append-only ledger, service hours, and the points
store (积分兑换超市). Points, hours and stock change only by new rows; balances, yearly and
monthly tallies and the stock count are running sums kept in the same transaction, guarded by
CHECK constraints so that none of them can go below zero."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class RuleKind(StrEnum):
    base = "base"
    bonus = "bonus"
    deduction = "deduction"


class EntryKind(StrEnum):
    award = "award"
    """Points by a rule (base and bonus items add, deduction items subtract); counts in rankings."""
    reversal = "reversal"
    """A correction: the exact opposite of an earlier entry, which it names."""
    redemption = "redemption"
    """Points spent in the store; not in rankings."""
    refund = "refund"
    """A cancelled redemption given back; not in rankings."""


class Source(StrEnum):
    wish = "wish"
    visit = "visit"
    meeting = "meeting"
    task = "task"
    manual = "manual"
    store = "store"


class PointsRule(SQLModel, table=True):
    """One line of the published rule table. ``scope`` is empty for the installation-wide rule
    and ``u<unit id>`` for a community's (or street's) own version of the same code; the most
    specific one on a member's path applies."""

    __tablename__ = "points_rules"
    __table_args__ = (
        UniqueConstraint("code", "scope"),
        CheckConstraint("monthly_cap IS NULL OR monthly_cap > 0", name="cap_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, index=True)
    scope: str = Field(default="", max_length=16)
    unit_id: int | None = Field(default=None, foreign_key="units.id")
    name: str = Field(max_length=40)
    name_en: str = Field(max_length=40)
    kind: RuleKind = Field(sa_type=String(16))
    points: int
    """Signed: positive for base and bonus items, negative for deductions."""
    monthly_cap: int | None = None
    """At most this many points (in absolute value) per member per calendar month."""
    active: bool = True
    updated_by: int | None = Field(default=None, foreign_key="members.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """Append-only. ``dedupe_key`` is unique: one award per source, member and rule; one
    reversal per entry; one debit and one refund per redemption."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        Index("ix_points_ledger_member", "member_id", "id"),
        Index("ix_points_ledger_cap", "member_id", "rule_code", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    points: int
    kind: EntryKind = Field(sa_type=String(16))
    rule_id: int | None = Field(default=None, foreign_key="points_rules.id")
    rule_code: str | None = Field(default=None, max_length=32)
    source: Source = Field(sa_type=String(16))
    source_id: int | None = None
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    """Who caused it; None for the system."""
    at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=300)
    reverses_id: int | None = Field(default=None, foreign_key="points_ledger.id", index=True)
    redemption_id: int | None = Field(default=None, foreign_key="store_redemptions.id", index=True)
    community_id: int | None = Field(default=None, foreign_key="units.id")
    grid_id: int | None = Field(default=None, foreign_key="units.id")
    dedupe_key: str = Field(max_length=96, unique=True)


class PointsAccount(SQLModel, table=True):
    """The running balance: the sum of the member's ledger entries, never below zero."""

    __tablename__ = "points_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    member_id: int = Field(foreign_key="members.id", primary_key=True)
    balance: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PointsTally(SQLModel, table=True):
    """Ranking points per member and period (``2026`` or ``2026-11``, in the installation's
    time zone): the sum of award and reversal entries. ``reached_at`` is when the tally last
    changed, so of two members with equal points the one who got there first ranks higher."""

    __tablename__ = "points_tallies"
    __table_args__ = (
        Index("ix_points_tallies_community", "community_id", "period", "points", "reached_at"),
        Index("ix_points_tallies_grid", "grid_id", "period", "points", "reached_at"),
    )

    member_id: int = Field(foreign_key="members.id", primary_key=True)
    period: str = Field(max_length=7, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="units.id")
    grid_id: int | None = Field(default=None, foreign_key="units.id")
    points: int = 0
    reached_at: datetime = Field(sa_type=UTCDateTime)


class HoursEntry(SQLModel, table=True):
    """Service time, append-only, in minutes; a correction is a negative entry naming the one
    it reverses."""

    __tablename__ = "service_hours"
    __table_args__ = (Index("ix_service_hours_member", "member_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id")
    minutes: int
    source: Source = Field(sa_type=String(16))
    source_id: int | None = None
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=300)
    reverses_id: int | None = Field(default=None, foreign_key="service_hours.id", index=True)
    dedupe_key: str = Field(max_length=96, unique=True)


class HoursNudge(SQLModel, table=True):
    """A planned gentle reminder for a member under the yearly hours target (last quarter)."""

    __tablename__ = "hours_nudges"
    __table_args__ = (
        UniqueConstraint("member_id", "period"),
        Index("ix_hours_nudges_due", "done_at", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="members.id", ondelete="CASCADE")
    period: str = Field(max_length=7)
    due_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent: bool = False


class StoreItem(SQLModel, table=True):
    __tablename__ = "store_items"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("cost > 0", name="cost_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="units.id", index=True)
    name: str = Field(max_length=60)
    cost: int
    stock: int = 0
    """The sum of the item's stock movements."""
    photo_file_id: str | None = Field(default=None, max_length=200)
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="members.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RedemptionStatus(StrEnum):
    reserved = "reserved"
    handed_out = "handed_out"
    cancelled = "cancelled"


class Redemption(SQLModel, table=True):
    __tablename__ = "store_redemptions"
    __table_args__ = (
        Index("ix_store_redemptions_open", "status", "item_id"),
        Index("ix_store_redemptions_member", "member_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="store_items.id")
    member_id: int = Field(foreign_key="members.id")
    cost: int
    status: RedemptionStatus = Field(default=RedemptionStatus.reserved, sa_type=String(16))
    dedupe_key: str = Field(max_length=96, unique=True)
    """Makes a second press of "redeem" (or a resent one) a no-op."""
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: int | None = Field(default=None, foreign_key="members.id")
    note: str = Field(default="", max_length=300)


class StockMovement(SQLModel, table=True):
    __tablename__ = "store_stock_movements"

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="store_items.id", index=True)
    delta: int
    reason: str = Field(max_length=16)
    """``restock``, ``redeem`` or ``refund``."""
    redemption_id: int | None = Field(default=None, foreign_key="store_redemptions.id")
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    at: datetime = Field(sa_type=UTCDateTime)


class RedemptionEvent(SQLModel, table=True):
    __tablename__ = "store_redemption_events"

    id: int | None = Field(default=None, primary_key=True)
    redemption_id: int = Field(foreign_key="store_redemptions.id", index=True)
    action: str = Field(max_length=16)
    actor_id: int | None = Field(default=None, foreign_key="members.id")
    at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=300)
