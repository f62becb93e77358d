"""Demo data for `make sandbox`: the demo org and one open invite per role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from models.invites import Invite
from models.members import Role
from services.access import Actor
from services.demo_households import seed_households
from services.demo_issues import seed_issues
from services.demo_meetings import seed_meetings
from services.demo_points import seed_points
from services.invites import create_invite
from services.org import ImportReport, import_org

DEMO_ORG = Path(__file__).resolve().parent.parent / "bot" / "demo" / "org.yaml"


@dataclass(frozen=True)
class DemoInvite:
    token: str
    role: Role
    unit: str


DEMO_INVITES: tuple[DemoInvite, ...] = (
    DemoInvite("demo-resident", Role.resident, "B1"),
    DemoInvite("demo-volunteer", Role.volunteer, "G1"),
    DemoInvite("demo-gridworker", Role.grid_worker, "G1"),
    DemoInvite("demo-gridleader", Role.grid_leader, "G1"),
    DemoInvite("demo-coordinator", Role.coordinator, "C1"),
    DemoInvite("demo-department", Role.department, "S1"),
    DemoInvite("demo-admin", Role.admin, "D1"),
)


async def seed_demo(session: AsyncSession, now: datetime) -> ImportReport:
    """Idempotent: a second run adds nothing."""
    report = await import_org(session, DEMO_ORG.read_text(encoding="utf-8"))
    existing = set((await session.execute(select(Invite.token))).scalars())
    for invite in DEMO_INVITES:
        if invite.token not in existing:
            await create_invite(
                session,
                Actor.cli(),
                role=invite.role,
                unit_code=invite.unit,
                now=now,
                token=invite.token,
            )
    await seed_meetings(session, now)
    await seed_issues(session, now)
    await seed_households(session, now)
    await seed_points(session, now)
    return report
