"""Household files (一户一档): the registry, tags with their visit cadence, and the "1+10+N"
groups of members under a hub member."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class HouseholdTag(SQLModel, table=True):
    """A kind of household (elderly living alone, special needs …) and how often it is visited.

    ``interval_days`` None means the installation's default interval. Tags are shared by the
    whole installation, so that every community counts the same things.
    """

    __tablename__ = "household_tags"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=32, unique=True)
    name_en: str | None = Field(default=None, max_length=32)
    interval_days: int | None = None
    created_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Household(SQLModel, table=True):
    """One household file. ``due_at`` (next visit) follows from the last visit and the shortest
    interval of the household's tags; both are kept on the row so that the daily nudge and the
    coverage report read one table."""

    __tablename__ = "households"
    __table_args__ = (
        UniqueConstraint("building_id", "address_key"),
        Index("ix_households_assignee_due", "assignee_id", "due_at"),
        Index("ix_households_grid_due", "grid_id", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    building_id: int = Field(foreign_key="units.id")
    grid_id: int = Field(foreign_key="units.id")
    """The building's grid, kept here so that a grid's or community's households are one
    range of an index."""
    address: str = Field(default="", max_length=200)
    door: str = Field(default="", max_length=32)
    address_key: str = Field(max_length=240)
    """Address and door number normalised (width, case, spaces): what makes an import
    idempotent."""
    size: int | None = None
    contact_name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    notes: str | None = Field(default=None, max_length=500)
    assignee_id: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    interval_days: int
    last_visited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when the household moved away: no more nudges, not counted in coverage."""
    created_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class HouseholdInterval(SQLModel, table=True):
    """The history of a household's visit interval: each row holds from ``valid_from`` until
    the household's next row (the last one is ``Household.interval_days``). Written whenever
    the interval changes (filed, tags changed, a tag's or the default cadence changed), so that
    the coverage of a past period is measured by the cadence in force then."""

    __tablename__ = "household_intervals"
    __table_args__ = (
        Index("ix_household_intervals_household", "household_id", "valid_from", "interval_days"),
        Index("ix_household_intervals_valid_from", "valid_from", "household_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="households.id", ondelete="CASCADE")
    interval_days: int
    valid_from: datetime = Field(sa_type=UTCDateTime)


class HouseholdTagLink(SQLModel, table=True):
    __tablename__ = "household_tag_links"

    household_id: int = Field(foreign_key="households.id", primary_key=True, ondelete="CASCADE")
    tag_id: int = Field(foreign_key="household_tags.id", primary_key=True, index=True)


class HubLink(SQLModel, table=True):
    """ "1+10+N": a member linked to their hub member (党员中心户); one hub per member."""

    __tablename__ = "hub_links"

    member_id: int = Field(foreign_key="members.id", primary_key=True, ondelete="CASCADE")
    hub_id: int = Field(foreign_key="members.id", index=True, ondelete="CASCADE")
    created_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
