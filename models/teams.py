"""Teams: named groups of members within a unit (a street, community or grid), an audience
for broadcasts. A team is archived, never deleted; its name is unique among the unit's
active teams."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    __table_args__ = (
        Index(
            "uq_teams_active_name",
            "unit_id",
            "name_key",
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="units.id", index=True)
    name: str = Field(max_length=40)
    name_key: str = Field(max_length=40)
    """The name folded (NFKC, case, spaces) to compare names: "Clean-up" equals "clean-up"."""
    created_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"

    team_id: int = Field(foreign_key="teams.id", primary_key=True)
    member_id: int = Field(
        foreign_key="members.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    added_by: int | None = Field(default=None, foreign_key="members.id", ondelete="SET NULL")
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
