"""Demo data for issues: the default categories (the migration inserts them in a real
installation; tests that empty every table get them back from here)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.issues import ensure_default_categories


async def seed_issues(session: AsyncSession, now: datetime) -> None:
    """Idempotent: a second run adds nothing."""
    await ensure_default_categories(session, now)
