"""The org tree: district > street > community > grid > building."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, utcnow


class UnitKind(StrEnum):
    district = "district"
    street = "street"
    community = "community"
    grid = "grid"
    building = "building"

    @property
    def level(self) -> int:
        return list(UnitKind).index(self)


class Unit(SQLModel, table=True):
    __tablename__ = "units"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True, index=True)
    kind: UnitKind = Field(sa_type=String(16))
    name: str = Field(max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    parent_id: int | None = Field(default=None, foreign_key="units.id", index=True)
    path: str = Field(default="/", max_length=200, index=True)
    """Ids of the ancestors and the unit itself, e.g. ``/1/5/12/``: a subtree is a prefix."""
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
