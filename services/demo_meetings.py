"""Demo meetings for the sandbox: the monthly council of grid G1 and the bimonthly joint
meeting of community C1, planned quietly (no invitations: nobody has joined yet)."""

from __future__ import annotations

from datetime import UTC, datetime

from dateutil.rrule import rrulestr
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from models.meetings import Audience, MeetingKind, MeetingSeries
from models.members import Role
from services.access import Actor
from services.meetings import MeetingRules, SeriesDraft, create_series

DEMO_SERIES = (
    SeriesDraft(
        kind=MeetingKind.council,
        title="新德第一网格月月谈",
        unit_code="G1",
        first_start=datetime.min.replace(tzinfo=UTC),
        rrule="FREQ=MONTHLY;BYDAY=+2TU",
        venue="新德社区党群服务站一楼议事厅",
        audience=Audience.open,
        latitude=31.2304,
        longitude=121.4737,
    ),
    SeriesDraft(
        kind=MeetingKind.joint,
        title="新德社区多方联席会",
        unit_code="C1",
        first_start=datetime.min.replace(tzinfo=UTC),
        rrule="FREQ=MONTHLY;INTERVAL=2;BYDAY=+3TH",
        venue="新德社区居委会会议室",
        audience=Audience.roles,
        roles=(Role.grid_leader, Role.grid_worker, Role.coordinator),
        duration_minutes=120,
    ),
)
START_TIMES = {"新德第一网格月月谈": (19, 0), "新德社区多方联席会": (14, 30)}


async def seed_meetings(session: AsyncSession, now: datetime) -> None:
    """Idempotent: series already there (by title) are left alone."""
    rules = MeetingRules()
    existing = set((await session.execute(select(col(MeetingSeries.title)))).scalars())
    for draft in DEMO_SERIES:
        if draft.title in existing or draft.rrule is None:
            continue
        hour, minute = START_TIMES[draft.title]
        local = now.astimezone(rules.zone)
        anchor = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        first = rrulestr(draft.rrule, dtstart=anchor).after(local)
        assert first is not None
        seeded = SeriesDraft(**{**draft.__dict__, "first_start": first.astimezone(UTC)})
        await create_series(session, Actor.cli(), seeded, now, rules, quiet=True)
