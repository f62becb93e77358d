"""Small dialect-aware SQL helpers shared by services."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

SelectT = TypeVar("SelectT", bound=Select[Any])


def dialect(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


async def insert_ignore(
    session: AsyncSession,
    model: type[SQLModel],
    values: Mapping[str, Any],
    conflict: Sequence[str],
    returning: str | None = None,
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING. Returns the ``returning`` column (or True) when a row
    was inserted, None when it already existed; races end in one winner, never an error."""
    statement = _insert_ignore_statement(model, dialect(session), tuple(conflict), returning)
    if returning is not None:
        result = await session.execute(statement, dict(values))
        return result.scalar_one_or_none()
    outcome = await session.execute(statement, dict(values))
    return True if getattr(outcome, "rowcount", 0) else None


@functools.cache
def _insert_ignore_statement(
    model: type[SQLModel], dialect_name: str, conflict: tuple[str, ...], returning: str | None
) -> Any:
    """Built once per shape: SQLAlchemy then reuses the compiled statement."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(table.c[returning]) if returning is not None else statement


def skip_locked(session: AsyncSession, query: SelectT) -> SelectT:
    """Lock the selected rows on PostgreSQL, skipping rows another process holds, so that due
    work is claimed once; on SQLite the BEGIN IMMEDIATE write lock already serialises it."""
    if dialect(session) == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query
