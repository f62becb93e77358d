"""A hand-made world for statistics tests: its own org tree (D > S > C1, C2 > G1, G2 | G3 >
B1, B2 | B3) and rows written straight into the tables, so that every expected figure can be
worked out by hand from this file (the comments say how)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, select

from bot.db import Database
from models.households import Household, HouseholdInterval, HouseholdTag, HouseholdTagLink
from models.issues import EventKind, Issue, IssueCategory, IssueEvent, IssueStatus
from models.meetings import (
    Audience,
    CheckinMethod,
    Meeting,
    MeetingAttendance,
    MeetingKind,
    MeetingSeries,
    MeetingStatus,
)
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from models.points import EntryKind, HoursEntry, LedgerEntry, Source
from models.visits import Visit, VisitOutcome
from models.wishes import Wish, WishCategory, WishEvent, WishStatus
from services.access import Actor, UnitRef, load_actor
from services.stats import Period, PeriodKind, StatsPolicy

NOW = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
OCTOBER = Period(PeriodKind.month, datetime(2026, 10, 1).date(), datetime(2026, 11, 1).date())
POLICY = StatsPolicy(target_hours=24, league_min_cases=2)


def oct_(day: int, hour: float = 0.0) -> datetime:
    """A moment in October 2026 (UTC), ``hour`` hours after midnight of ``day``."""
    return datetime(2026, 10, day, tzinfo=UTC) + timedelta(hours=hour)


@dataclass
class StatsWorld:
    db: Database
    units: dict[str, UnitRef] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    _seq: int = 0
    session: AsyncSession | None = None
    """While building: every row goes into this one transaction (fast set-up)."""

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        if self.session is not None:
            yield self.session
            return
        async with self.db.transaction() as session:
            yield session

    async def _add(self, row: SQLModel) -> Any:
        async with self._tx() as session:
            session.add(row)
            await session.flush()
            return row.id  # type: ignore[attr-defined]

    def _key(self) -> str:
        self._seq += 1
        return f"k{self._seq}"

    async def org(self) -> StatsWorld:
        tree = [
            ("XD", UnitKind.district, None),
            ("XS", UnitKind.street, "XD"),
            ("XC1", UnitKind.community, "XS"),
            ("XC2", UnitKind.community, "XS"),
            ("XG1", UnitKind.grid, "XC1"),
            ("XG2", UnitKind.grid, "XC1"),
            ("XG3", UnitKind.grid, "XC2"),
            ("XB1", UnitKind.building, "XG1"),
            ("XB2", UnitKind.building, "XG2"),
            ("XB3", UnitKind.building, "XG3"),
        ]
        async with self._tx() as session:
            for code, kind, parent in tree:
                parent_ref = self.units.get(parent) if parent else None
                unit = Unit(
                    code=code,
                    kind=kind,
                    name=f"{code}名",
                    name_en=f"{code} name",
                    parent_id=parent_ref.id if parent_ref else None,
                )
                session.add(unit)
                await session.flush()
                unit.path = f"{parent_ref.path if parent_ref else '/'}{unit.id}/"
                await session.flush()
                self.units[code] = UnitRef.of(unit)
            category = IssueCategory(code="x_other", name="其他")
            session.add(category)
            await session.flush()
            assert category.id is not None
            self.category = category.id
        return self

    async def existing(self) -> StatsWorld:
        """Work on the org already in the database (the demo org in flow tests)."""
        async with self._tx() as session:
            for unit in (await session.execute(select(Unit))).scalars():
                self.units[unit.code] = UnitRef.of(unit)
            category = IssueCategory(code="x_other", name="其他")
            session.add(category)
            await session.flush()
            assert category.id is not None
            self.category = category.id
        return self

    def id(self, code: str) -> int:
        return self.units[code].id

    async def person(self, name: str, *grants: tuple[Role, str]) -> int:
        async with self._tx() as session:
            member = Member(
                telegram_id=900_000 + len(self.members),
                chat_id=900_000 + len(self.members),
                display_name=name,
                locale="zh_CN",
            )
            session.add(member)
            await session.flush()
            assert member.id is not None
            for role, code in grants:
                session.add(RoleGrant(member_id=member.id, role=role, unit_id=self.id(code)))
            self.members[name] = member.id
            return member.id

    async def actor(self, name: str) -> Actor:
        async with self._tx() as session:
            return await load_actor(session, self.members[name])

    async def issue(
        self,
        place: str,
        created: datetime,
        status: IssueStatus,
        events: list[tuple[str, float, str | None]],
        *,
        due_at: datetime | None = None,
        resolved_after: float | None = None,
        department: int | None = None,
        reported_in_after: float | None = None,
    ) -> int:
        """An issue at a grid (or a community: ``grid_id`` None) and its events, each
        (kind, hours after ``created``, note)."""
        unit = self.units[place]
        community = unit if unit.kind == UnitKind.community else None
        if community is None:
            parent_id = int(unit.path.strip("/").split("/")[-2])
            community = next(u for u in self.units.values() if u.id == parent_id)
        self._seq += 1
        issue = Issue(
            number=f"X-{self._seq}",
            community_id=community.id,
            grid_id=unit.id if unit.kind == UnitKind.grid else None,
            category_id=self.category,
            status=status,
            description="d",
            due_at=due_at,
            resolved_at=created + timedelta(hours=resolved_after) if resolved_after else None,
            department_id=department,
            reported_in_at=(
                created + timedelta(hours=reported_in_after) if reported_in_after else None
            ),
            created_at=created,
            updated_at=created,
        )
        issue_id = await self._add(issue)
        async with self._tx() as session:
            session.add(IssueEvent(issue_id=issue_id, kind=EventKind.reported, at=created))
            for kind, hours, note in events:
                session.add(
                    IssueEvent(
                        issue_id=issue_id,
                        kind=EventKind(kind),
                        at=created + timedelta(hours=hours),
                        note=note,
                    )
                )
        return int(issue_id)

    async def wish(
        self, place: str, created: datetime, status: str, actions: list[tuple[str, float]]
    ) -> int:
        """A wish and its events, each (action, days after ``created``)."""
        unit = self.units[place]
        ids = [int(p) for p in unit.path.strip("/").split("/")]
        by_id = {u.id: u for u in self.units.values()}
        grid = next((by_id[i] for i in ids if by_id[i].kind == UnitKind.grid), None)
        community = next(by_id[i] for i in ids if by_id[i].kind == UnitKind.community)
        fulfilled = [days for action, days in actions if action == "fulfil"]
        wish_id = await self._add(
            Wish(
                status=WishStatus(status),
                category=WishCategory.other,
                text="w",
                unit_id=unit.id,
                grid_id=grid.id if grid else None,
                community_id=community.id,
                fulfilled_at=created + timedelta(days=fulfilled[-1]) if fulfilled else None,
                created_at=created,
                updated_at=created,
            )
        )
        async with self._tx() as session:
            session.add(
                WishEvent(
                    wish_id=wish_id, action="submit", to_status=WishStatus.submitted, at=created
                )
            )
            for action, days in actions:
                session.add(
                    WishEvent(
                        wish_id=wish_id,
                        action=action,
                        to_status=WishStatus(status),
                        at=created + timedelta(days=days),
                    )
                )
        return int(wish_id)

    async def tag(self, code: str, days: int) -> int:
        return int(await self._add(HouseholdTag(code=code, name=code, interval_days=days)))

    async def household(
        self,
        building: str,
        interval: int,
        created: datetime,
        visits: list[tuple[datetime, str]],
        *,
        tags: list[int] = [],  # noqa: B006
        archived: datetime | None = None,
        cadences: list[tuple[datetime, int]] = [],  # noqa: B006
    ) -> int:
        """A household; ``cadences``: its interval history (from, days), ending with
        ``interval`` (by default ``interval`` since ``created``)."""
        assert not cadences or cadences[-1][1] == interval
        unit = self.units[building]
        grid_id = int(unit.path.strip("/").split("/")[-2])
        self._seq += 1
        household_id = await self._add(
            Household(
                building_id=unit.id,
                grid_id=grid_id,
                address_key=f"h{self._seq}",
                interval_days=interval,
                due_at=created + timedelta(days=interval),
                archived_at=archived,
                created_at=created,
            )
        )
        async with self._tx() as session:
            for valid_from, days in cadences or [(created, interval)]:
                session.add(
                    HouseholdInterval(
                        household_id=household_id, interval_days=days, valid_from=valid_from
                    )
                )
            for tag_id in tags:
                session.add(HouseholdTagLink(household_id=household_id, tag_id=tag_id))
            for at, outcome in visits:
                session.add(
                    Visit(household_id=household_id, visited_at=at, outcome=VisitOutcome(outcome))
                )
        return int(household_id)

    async def meeting(
        self,
        place: str,
        starts: datetime,
        *,
        invited: int | None,
        checkins: int,
        cancelled: bool = False,
    ) -> int:
        series_id = await self._add(
            MeetingSeries(
                kind=MeetingKind.council,
                title="t",
                unit_id=self.id(place),
                audience=Audience.open,
                venue="v",
                radius_m=300,
                first_start=starts,
                duration_minutes=60,
            )
        )
        self._seq += 1
        meeting_id = await self._add(
            Meeting(
                series_id=series_id,
                original_start=starts,
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
                status=MeetingStatus.cancelled if cancelled else MeetingStatus.scheduled,
                checkin_code=f"c{self._seq}",
                invited_count=invited,
            )
        )
        async with self._tx() as session:
            for n in range(checkins):
                member = await self.person_in(session, f"attendee{n}")
                session.add(
                    MeetingAttendance(
                        meeting_id=meeting_id,
                        member_id=member,
                        method=CheckinMethod.code,
                        checked_in_at=starts,
                    )
                )
        return int(meeting_id)

    async def person_in(self, session: Any, name: str) -> int:
        if name in self.members:
            return self.members[name]
        member = Member(
            telegram_id=800_000 + len(self.members),
            chat_id=800_000 + len(self.members),
            display_name=name,
            locale="zh_CN",
        )
        session.add(member)
        await session.flush()
        assert member.id is not None
        self.members[name] = member.id
        return member.id

    async def hours(self, member: str, at: datetime, minutes: int) -> None:
        await self._add(
            HoursEntry(
                member_id=self.members[member],
                minutes=minutes,
                source=Source.manual,
                at=at,
                dedupe_key=self._key(),
            )
        )

    async def ledger(
        self, member: str, at: datetime, points: int, kind: EntryKind, place: str
    ) -> None:
        unit = self.units[place]
        if unit.kind == UnitKind.grid:
            grid_id: int | None = unit.id
            community_id = int(unit.path.strip("/").split("/")[-2])
        else:
            grid_id, community_id = None, unit.id
        await self._add(
            LedgerEntry(
                member_id=self.members[member],
                points=points,
                kind=kind,
                source=Source.manual,
                at=at,
                community_id=community_id,
                grid_id=grid_id,
                dedupe_key=self._key(),
            )
        )


async def build(db: Database) -> StatsWorld:
    """The data set every statistics test reads; the expected figures are worked out in
    ``tests/services/test_stats.py``."""
    async with db.transaction() as session:
        w = await StatsWorld(db, session=session).org()
        await _fill(w)
    w.session = None
    return w


async def _fill(w: StatsWorld) -> None:
    # People: v1 volunteers in XG1 and XG3 (two children of the street), v2 in XG2, v3 in XG3.
    await w.person("v1", (Role.volunteer, "XG1"), (Role.volunteer, "XG3"))
    await w.person("v2", (Role.volunteer, "XG2"))
    await w.person("v3", (Role.volunteer, "XG3"))
    await w.person("street", (Role.coordinator, "XS"))
    await w.person("c1", (Role.coordinator, "XC1"))
    await w.person("leader", (Role.grid_leader, "XG1"))
    await w.person("worker", (Role.grid_worker, "XG1"))
    dept = await w.person("dept", (Role.department, "XS"))
    w.members["dept_id"] = dept

    # Issues reported in October.
    # i1 XG1: accepted after 1 h, resolved after 20 h, rated satisfied.
    await w.issue(
        "XG1",
        oct_(5),
        IssueStatus.closed,
        [
            ("accepted", 1, None),
            ("resolved", 20, None),
            ("rated", 21, "satisfied"),
            ("closed", 21, None),
        ],
        resolved_after=20,
    )
    # i2 XG1: response deadline missed (escalated), accepted after 3 h, resolved after 50 h,
    # closed without an answer.
    await w.issue(
        "XG1",
        oct_(6),
        IssueStatus.closed,
        [
            ("escalated", 1, "response"),
            ("accepted", 3, None),
            ("resolved", 50, None),
            ("closed", 218, "no_answer"),
        ],
        resolved_after=50,
    )
    # i3 XG2: reopened twice (unsatisfied, unsatisfied, then basic), finally resolved at 40 h.
    await w.issue(
        "XG2",
        oct_(7),
        IssueStatus.closed,
        [
            ("accepted", 0.5, None),
            ("resolved", 10, None),
            ("rated", 11, "unsatisfied"),
            ("reopened", 11, None),
            ("resolved", 30, None),
            ("rated", 31, "unsatisfied"),
            ("reopened", 31, None),
            ("resolved", 40, None),
            ("rated", 41, "basic"),
            ("closed", 41, None),
        ],
        resolved_after=40,
    )
    # i4 on the community XC1 itself: still new, overdue now.
    await w.issue("XC1", oct_(8), IssueStatus.new, [], due_at=oct_(8, 1))
    # i5 XG3: rejected after 2 h (a response, not a case to handle).
    await w.issue("XG3", oct_(9), IssueStatus.rejected, [("rejected", 2, None)])
    # i6 XG3: whistled to the department, reported in late, handling deadline missed, resolved
    # after 90 h, waiting for the rating.
    await w.issue(
        "XG3", oct_(10), IssueStatus.resolved,
        [("accepted", 1, None), ("whistled", 2, None), ("overdue", 3, "report_in"),
         ("reported_in", 4, None), ("overdue", 80, "handling"), ("resolved", 90, None)],
        resolved_after=90, department=dept, reported_in_after=4,
    )  # fmt: skip
    # i7 XG3: whistled, reported in on time, resolved on time, then reopened (rework).
    await w.issue(
        "XG3", oct_(11), IssueStatus.reopened,
        [("accepted", 1, None), ("whistled", 1.5, None), ("reported_in", 2, None),
         ("resolved", 10, None), ("rated", 11, "unsatisfied"), ("reopened", 11, None)],
        department=dept, reported_in_after=2, due_at=NOW + timedelta(days=1),
    )  # fmt: skip
    # Outside October: reported 30 September at XG1, still open and overdue (counts in
    # "overdue now" only), and one reported in November.
    await w.issue(
        "XG1", oct_(1) - timedelta(hours=10), IssueStatus.assigned, [("accepted", 1, None)],
        due_at=oct_(3),
    )  # fmt: skip
    await w.issue("XG2", datetime(2026, 11, 1, 4, tzinfo=UTC), IssueStatus.new, [],
                  due_at=NOW + timedelta(hours=1))  # fmt: skip

    # Wishes submitted in October.
    # w1 XB1: approved, claimed, released, claimed again, fulfilled after 5 days, confirmed.
    await w.wish(
        "XB1", oct_(3), "confirmed",
        [("approve", 0.5, ), ("claim", 1), ("release", 2), ("claim", 3), ("fulfil", 5),
         ("confirm", 6)],
    )  # fmt: skip
    # w2 XG2: approved and claimed.
    await w.wish("XG2", oct_(4), "claimed", [("approve", 0.5), ("claim", 1)])
    # w3 XG3: rejected.
    await w.wish("XG3", oct_(5), "rejected", [("reject", 0.5)])
    # w4 XG3: approved, dispatched to a department, fulfilled after 1 day.
    await w.wish("XG3", oct_(6), "fulfilled", [("approve", 0.2), ("dispatch", 0.5), ("fulfil", 1)])
    # Submitted in September, fulfilled in October: not in October's cohort.
    await w.wish("XG1", oct_(1) - timedelta(days=30), "confirmed", [("fulfil", 35)])

    # Households; the report's snapshot is the end of October (1 Nov 00:00 Shanghai).
    special = await w.tag("x_special", 7)
    elderly = await w.tag("x_elderly", 30)
    start_of_year = datetime(2026, 1, 1, tzinfo=UTC)
    # h1 XB1: met on 20 Oct, visited every 30 days: covered.
    await w.household("XB1", 30, start_of_year, [(oct_(20), "met")])
    # h2 XB1: met on 10 Oct; its cadence changed from 90 to 7 days on 25 Oct (special needs):
    # at the end of October 21 days ago is too long, so it is overdue; in a period that ended
    # before 25 Oct it is measured by the 90 days then in force (tests/services/test_stats.py).
    await w.household(
        "XB1", 7, start_of_year, [(oct_(10), "met")], tags=[special],
        cadences=[(start_of_year, 90), (oct_(25), 7)],
    )  # fmt: skip
    # h3 XB2: only a closed door on 25 Oct (does not count): overdue.
    await w.household("XB2", 30, start_of_year, [(oct_(25), "not_home")], tags=[elderly])
    # h4 XB2: filed on 28 Oct, not yet visited, within its first 30 days: neither.
    await w.household("XB2", 30, oct_(28), [])
    # h5 XB3: moved away on 15 Oct: not counted.
    await w.household("XB3", 30, start_of_year, [], archived=oct_(15))
    # h6 XB3: met on 10 Aug, every 90 days: covered.
    await w.household("XB3", 90, start_of_year, [(datetime(2026, 8, 10, tzinfo=UTC), "met")])

    # Meetings in October: XC1 holds one with 10 invited and 6 check-ins, one cancelled, one
    # open meeting (nobody counted as invited) with 3 check-ins; XG3 one with 5 of 5.
    await w.meeting("XC1", oct_(10, 2), invited=10, checkins=6)
    await w.meeting("XC1", oct_(20, 2), invited=10, checkins=0, cancelled=True)
    await w.meeting("XC1", oct_(25, 2), invited=None, checkins=3)
    await w.meeting("XG3", oct_(12, 2), invited=5, checkins=5)

    # Service hours: v1 120 min in October and 1,400 min in March (1,520 min this year: at the
    # 24 h target); v2 60 min in October; v3 none but an award in October (active).
    await w.hours("v1", oct_(10), 120)
    await w.hours("v1", datetime(2026, 3, 1, tzinfo=UTC), 1400)
    await w.hours("v2", oct_(5), 60)
    # Points: +10 in XG1, +5 in XG3, a redemption of 8 and a refund of 3 on XC1, and an award in
    # September (outside).
    await w.ledger("v1", oct_(10), 10, EntryKind.award, "XG1")
    await w.ledger("v3", oct_(11), 5, EntryKind.award, "XG3")
    await w.ledger("v2", oct_(12), -8, EntryKind.redemption, "XC1")
    await w.ledger("v2", oct_(13), 3, EntryKind.refund, "XC1")
    await w.ledger("v1", oct_(1) - timedelta(days=3), 50, EntryKind.award, "XG1")
