"""Door-knocking visits (敲门行动): the visit log, the daily nudge, and coverage.

A visit's outcome decides whether the household's cadence starts again (met, refused, other)
or not (not home); "moved away" archives the household. A second "log visit" tap for the same
household within ``REPEAT_WINDOW`` lands on the visit already logged: one visit, not two.

Needs found at the door are stored on the visit (``Visit.needs``); :func:`needs_to_issue` and
:func:`needs_to_wish` hand them on in one tap, pre-filled with the household: an issue report
(source ``visit``, placed on the household's building; the door, the contact and the phone stay
in the household file) or a wish on the household's behalf (its contact and address go to the
claimer only, by the wish rules). Each visit hands on at most one issue and one wish.

Points and service hours: a visit that reached someone (every outcome but "not home") earns
the visitor the ``visit_done`` rule's points and ``VisitPolicy.service_minutes`` of service,
once per visit (the ledger's unique keys). A closed door earns nothing: the household is
still due and the visit that finds someone earns. Correcting the outcome within the repeat
window to "not home" takes both back; correcting it back gives them again.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator
from models.households import Household, HouseholdTagLink, HubLink
from models.issues import Issue, IssueSource
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from models.visits import Visit, VisitOutcome
from models.wishes import Wish, WishCategory
from services import issues, points, wishes
from services.access import Actor, UnitRef
from services.errors import InvalidInput, NotFound
from services.households import (
    EDITING_ROLES,
    VISITING_ROLES,
    HouseholdView,
    TagView,
    VisitPolicy,
    get_household,
    list_tags,
    load_household,
    may_see,
    member_names,
)
from services.messages import Button, Text
from services.sql import dialect

REPEAT_WINDOW = timedelta(minutes=30)
"""A second tap for the same household within this time is the same visit."""
NOTE_MAX = 1000
NEEDS_MAX = 1000
COVERAGE_ROLES: frozenset[Role] = frozenset({Role.grid_worker, Role.grid_leader, Role.coordinator})
COUNTING = [o.value for o in VisitOutcome if o.counts]
EARNING: frozenset[VisitOutcome] = frozenset(VisitOutcome) - {VisitOutcome.not_home}
"""Outcomes that earn the visitor points and service hours: somebody was reached."""
VISIT_RULE = "visit_done"
HANDOFF_ISSUE_CATEGORY = "other"
"""Category a visit's issue report starts in (the visitor changes it with one more tap)."""


@dataclass(frozen=True)
class VisitView:
    id: int
    household_id: int
    member_id: int | None
    member_name: str | None
    visited_at: datetime
    outcome: VisitOutcome
    note: str | None
    photo_file_id: str | None
    needs: str | None
    issue_number: str | None = None
    """The issue the needs were handed on as, if any."""
    wish_id: int | None = None
    """The wish the needs were handed on as, if any."""


@dataclass(frozen=True)
class LogResult:
    visit: VisitView
    household: HouseholdView
    repeated: bool
    """The tap landed on a visit logged minutes before (nothing new was added)."""
    changed: bool
    """… and it changed that visit's outcome."""
    points: int = 0
    """Points this tap gave the visitor (negative: a correction took them back)."""
    minutes: int = 0
    """Service minutes this tap logged (negative: taken back)."""


def _outcome(value: VisitOutcome | str) -> VisitOutcome:
    try:
        return VisitOutcome(value)
    except ValueError:
        raise InvalidInput("core.stale_button") from None


async def _lock(session: AsyncSession, household_id: int) -> None:
    """Two taps at once for one household queue up here (SQLite's write lock does it there)."""
    if dialect(session) == "postgresql":
        await session.execute(
            select(col(Household.id)).where(col(Household.id) == household_id).with_for_update()
        )


async def log_visit(
    session: AsyncSession,
    actor: Actor,
    household_id: int,
    outcome: VisitOutcome | str,
    now: datetime,
    policy: VisitPolicy | None = None,
) -> LogResult:
    policy = policy or VisitPolicy()
    outcome = _outcome(outcome)
    await _lock(session, household_id)
    household, _building = await load_household(session, actor, household_id, VISITING_ROLES)
    recent = (
        await session.execute(
            select(Visit)
            .where(col(Visit.household_id) == household_id)
            .where(col(Visit.visited_at) > now - REPEAT_WINDOW)
            .order_by(col(Visit.visited_at).desc(), col(Visit.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if household.archived_at is not None and outcome != VisitOutcome.moved and recent is None:
        raise InvalidInput("visits.household_archived")
    repeated = changed = False
    if recent is not None:
        repeated = True
        if recent.outcome != outcome:
            changed = True
            if recent.outcome == VisitOutcome.moved:
                household.archived_at = None
            recent.outcome = outcome
            recent.updated_at = now
        visit = recent
    else:
        visit = Visit(
            household_id=household_id,
            member_id=actor.member_id,
            visited_at=now,
            outcome=outcome,
            created_at=now,
            updated_at=now,
        )
        session.add(visit)
    if outcome == VisitOutcome.moved:
        household.archived_at = household.archived_at or now
    await session.flush()
    await _refresh(session, household, now)
    earned, minutes = await _credit(session, actor, visit, now, policy)
    return LogResult(
        (await _visit_views(session, [visit]))[0],
        await get_household(session, actor, household_id),
        repeated,
        changed,
        earned,
        minutes,
    )


async def _credit(
    session: AsyncSession, actor: Actor, visit: Visit, now: datetime, policy: VisitPolicy
) -> tuple[int, int]:
    """Points and hours for the visitor as the visit's outcome now stands (idempotent)."""
    member_id = visit.member_id
    assert visit.id is not None
    if member_id is None:
        return 0, 0
    common: dict[str, Any] = {
        "member_id": member_id,
        "source": "visit",
        "source_id": visit.id,
        "now": now,
        "actor": actor,
    }
    if VisitOutcome(visit.outcome) in EARNING:
        entry = await points.award(
            session, rule_code=VISIT_RULE, zone=policy.zone, renew=True, **common
        )
        logged = await points.log_hours(
            session, hours=Decimal(policy.service_minutes) / 60, renew=True, **common
        )
        return (entry.points if entry else 0), (policy.service_minutes if logged else 0)
    taken = await points.revoke(
        session, rule_code=VISIT_RULE, zone=policy.zone, note="not_home", **common
    )
    minutes = await points.revoke_hours(session, note="not_home", **common)
    return (taken.points if taken else 0), -minutes


async def _refresh(session: AsyncSession, household: Household, now: datetime) -> None:
    """The household's last visit and next due date, from the visit log."""
    last = (
        await session.execute(
            select(func.max(col(Visit.visited_at)))
            .where(col(Visit.household_id) == household.id)
            .where(col(Visit.outcome).in_(COUNTING))
        )
    ).scalar_one_or_none()
    household.last_visited_at = last
    household.due_at = (last or household.created_at) + timedelta(days=household.interval_days)
    household.updated_at = now
    await session.flush()


async def _visit_views(session: AsyncSession, visits: Sequence[Visit]) -> list[VisitView]:
    names = await member_names(session, (v.member_id for v in visits if v.member_id))
    handed = [v.id for v in visits if v.needs and v.id is not None]
    issue_of: dict[int, str] = {}
    wish_of: dict[int, int] = {}
    if handed:
        issue_rows = await session.execute(
            select(col(Issue.source_id), col(Issue.number))
            .where(col(Issue.source) == IssueSource.visit.value)
            .where(col(Issue.source_id).in_(handed))
        )
        issue_of = {int(i): str(n) for i, n in issue_rows.all() if i is not None}
        wish_rows = await session.execute(
            select(col(Wish.source_id), col(Wish.id))
            .where(col(Wish.source) == "visit")
            .where(col(Wish.source_id).in_(handed))
        )
        wish_of = {int(i): int(w) for i, w in wish_rows.all() if i is not None and w is not None}
    views = []
    for visit in visits:
        assert visit.id is not None
        views.append(
            VisitView(
                visit.id,
                visit.household_id,
                visit.member_id,
                names.get(visit.member_id) if visit.member_id else None,
                visit.visited_at,
                VisitOutcome(visit.outcome),
                visit.note,
                visit.photo_file_id,
                visit.needs,
                issue_of.get(visit.id),
                wish_of.get(visit.id),
            )
        )
    return views


async def _own_visit(session: AsyncSession, actor: Actor, visit_id: int) -> Visit:
    """A visit the actor may add to: their own, or any in a household they may edit."""
    visit = await session.get(Visit, visit_id)
    if visit is None:
        actor.refuse(f"visit {visit_id} (unknown)")
    _household, building = await load_household(session, actor, visit.household_id, VISITING_ROLES)
    if visit.member_id != actor.member_id and not actor.can(EDITING_ROLES, building):
        actor.refuse(f"visit {visit_id} of someone else", building)
    return visit


def _detail(text: str, limit: int, empty: str, too_long: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(empty)
    if len(cleaned) > limit:
        raise InvalidInput(too_long, limit=limit)
    return cleaned


async def set_note(
    session: AsyncSession, actor: Actor, visit_id: int, text: str, now: datetime
) -> VisitView:
    visit = await _own_visit(session, actor, visit_id)
    visit.note = _detail(text, NOTE_MAX, N_("visits.note_empty"), N_("visits.note_too_long"))
    visit.updated_at = now
    await session.flush()
    return (await _visit_views(session, [visit]))[0]


async def set_needs(
    session: AsyncSession, actor: Actor, visit_id: int, text: str, now: datetime
) -> VisitView:
    visit = await _own_visit(session, actor, visit_id)
    visit.needs = _detail(text, NEEDS_MAX, N_("visits.needs_empty"), N_("visits.needs_too_long"))
    visit.updated_at = now
    await session.flush()
    return (await _visit_views(session, [visit]))[0]


async def set_photo(
    session: AsyncSession, actor: Actor, visit_id: int, file_id: str, now: datetime
) -> VisitView:
    visit = await _own_visit(session, actor, visit_id)
    if not file_id or len(file_id) > 256:
        raise InvalidInput("visits.photo_invalid")
    visit.photo_file_id = file_id
    visit.updated_at = now
    await session.flush()
    return (await _visit_views(session, [visit]))[0]


async def get_visit(session: AsyncSession, actor: Actor, visit_id: int) -> VisitView:
    visit = await session.get(Visit, visit_id)
    if visit is None:
        actor.refuse(f"visit {visit_id} (unknown)")
    await load_household(session, actor, visit.household_id, VISITING_ROLES)
    return (await _visit_views(session, [visit]))[0]


async def recent_visits(
    session: AsyncSession, actor: Actor, household_id: int, limit: int = 5
) -> list[VisitView]:
    await load_household(session, actor, household_id, VISITING_ROLES)
    visits = (
        await session.execute(
            select(Visit)
            .where(col(Visit.household_id) == household_id)
            .order_by(col(Visit.visited_at).desc(), col(Visit.id).desc())
            .limit(limit)
        )
    ).scalars()
    return await _visit_views(session, list(visits))


@dataclass(frozen=True)
class VisitNeeds:
    """What an issue report or a wish made from a visit is pre-filled with."""

    visit_id: int
    household: HouseholdView
    needs: str
    visited_at: datetime
    visitor_id: int | None


async def visit_needs(session: AsyncSession, actor: Actor, visit_id: int) -> VisitNeeds:
    """The needs found on a visit, with the household, for the person handing them on."""
    visit = await session.get(Visit, visit_id)
    if visit is None:
        actor.refuse(f"visit {visit_id} (unknown)")
    household = await get_household(session, actor, visit.household_id)
    if not visit.needs:
        raise NotFound("visits.no_needs")
    assert visit.id is not None
    return VisitNeeds(visit.id, household, visit.needs, visit.visited_at, visit.member_id)


# ---------------------------------------------------------------------------------------------
# Hand-offs: needs found → an issue report or a wish


async def household_of_visit(session: AsyncSession, actor: Actor, visit_id: int) -> int | None:
    """The household a visit went to, if the actor may open its file; None otherwise (no
    refusal: an issue card asks this for everyone who sees the issue, e.g. a department)."""
    visit = await session.get(Visit, visit_id)
    if visit is None:
        return None
    household = await session.get(Household, visit.household_id)
    building = await session.get(Unit, household.building_id) if household else None
    if household is None or building is None:
        return None
    return household.id if may_see(actor, UnitRef.of(building)) else None


async def _handoff_visit(session: AsyncSession, actor: Actor, visit_id: int) -> Visit:
    """The visit, locked (two taps at once hand on once), if the actor may add to it and it
    has needs recorded."""
    query = select(Visit).where(col(Visit.id) == visit_id)
    if dialect(session) == "postgresql":
        query = query.with_for_update()
    if (await session.execute(query)).scalar_one_or_none() is None:
        actor.refuse(f"visit {visit_id} (unknown)")
    visit = await _own_visit(session, actor, visit_id)
    if not visit.needs:
        raise NotFound("visits.no_needs")
    return visit


async def needs_to_issue(
    session: AsyncSession,
    actor: Actor,
    visit_id: int,
    now: datetime,
    policy: issues.IssuePolicy,
) -> tuple[issues.IssueView, bool]:
    """Report the needs found on a visit as an issue (the visitor, or a grid worker over the
    household). Returns the issue and whether this call created it: a second tap returns the
    one already made."""
    visit = await _handoff_visit(session, actor, visit_id)
    assert visit.id is not None
    assert visit.needs is not None
    existing = (
        await session.execute(
            select(col(Issue.id))
            .where(col(Issue.source) == IssueSource.visit.value)
            .where(col(Issue.source_id) == visit.id)
        )
    ).scalar_one_or_none()
    household = await get_household(session, actor, visit.household_id)
    categories = await issues.categories_for(session, household.building)
    if not categories:
        raise InvalidInput("issues.category_unknown")
    category = next((c for c in categories if c.code == HANDOFF_ISSUE_CATEGORY), categories[-1])
    view = await issues.create_report(
        session,
        actor,
        issues.NewReport(
            category=category.id,
            description=visit.needs,
            unit_id=household.building.id,
            source=IssueSource.visit,
            source_id=visit.id,
        ),
        now,
        policy,
    )
    return view, existing is None


async def needs_to_wish(
    session: AsyncSession,
    actor: Actor,
    visit_id: int,
    now: datetime,
    policy: VisitPolicy,
) -> tuple[wishes.WishView, bool]:
    """Post the needs found on a visit as a wish on the household's behalf, with its contact
    and address from the household file (shown to the claimer only, after the claim). The
    visitor may do it for a household they visited; the wish waits for approval like any
    other. Returns the wish and whether this call created it."""
    visit = await _handoff_visit(session, actor, visit_id)
    assert visit.id is not None
    assert visit.needs is not None
    existing = (
        await session.execute(
            select(col(Wish.id)).where(col(Wish.source) == "visit", col(Wish.source_id) == visit.id)
        )
    ).scalar_one_or_none()
    household = await get_household(session, actor, visit.household_id)
    address = " ".join(p for p in (household.address, household.door) if p)
    if len(address) > wishes.ADDRESS_MAX:
        address = household.address[: wishes.ADDRESS_MAX]
    view = await wishes.create_wish(
        session,
        actor,
        now=now,
        category=WishCategory.other,
        text=visit.needs,
        address=address,
        unit_id=household.building.id,
        household_id=household.id,
        contact_name=household.contact_name,
        contact_phone=household.phone,
        source="visit",
        source_id=visit.id,
        zone=policy.zone,
        vouched=True,
    )
    return view, existing is None


# ---------------------------------------------------------------------------------------------
# Due dates


def overdue_days(due_at: datetime, today: date, policy: VisitPolicy) -> int:
    """Whole days past the due date in local time: 0 when due today, negative when ahead."""
    return (today - policy.local_date(due_at)).days


# ---------------------------------------------------------------------------------------------
# The daily nudge


NUDGE_ITEMS = 20
"""Households listed (each with a "log visit" button) in one nudge; the rest are counted."""


@dataclass(frozen=True)
class DueItem:
    household_id: int
    building: UnitRef
    address: str
    door: str
    tag_ids: tuple[int, ...]
    overdue_days: int

    def place(self, locale: str) -> str:
        return " ".join(p for p in (self.building.label(locale), self.address, self.door) if p)


@dataclass
class Nudge:
    member_id: int
    chat_id: int
    locale: str
    blocked: bool
    items: list[DueItem] = field(default_factory=list)
    due: int = 0
    """Households due today or overdue (all of them, also those beyond the list)."""
    overdue: int = 0
    group_members: int = 0
    group_overdue: int = 0
    """For a hub member: overdue households of the members linked to them."""


async def daily_nudges(
    session: AsyncSession, now: datetime, policy: VisitPolicy, *, limit: int = NUDGE_ITEMS
) -> list[Nudge]:
    """Who gets a nudge today and what it lists: for each member the households assigned to
    them that are due today or overdue, most overdue first, and for hub members their group's
    overdue count. Members with nothing due (and no overdue group) are not in the list.

    A household is only listed for an assignee who may still see it (a visiting role on its
    building or above); the rest are not mentioned at all.
    """
    today = policy.local_date(now)
    horizon = policy.start_of(today + timedelta(days=1))
    due_now = (
        col(Household.assignee_id).is_not(None),
        col(Household.archived_at).is_(None),
        col(Household.due_at) < horizon,
    )
    rows = (
        await session.execute(
            select(
                col(Household.assignee_id),
                col(Household.id),
                col(Household.building_id),
                col(Household.address),
                col(Household.door),
                col(Household.due_at),
            )
            .where(*due_now)
            .order_by(col(Household.assignee_id), col(Household.due_at), col(Household.id))
        )
    ).all()
    tags_of: dict[int, list[int]] = defaultdict(list)
    for household_id, tag_id in (
        await session.execute(
            select(col(HouseholdTagLink.household_id), col(HouseholdTagLink.tag_id))
            .join(Household, col(Household.id) == col(HouseholdTagLink.household_id))
            .where(*due_now)
        )
    ).all():
        tags_of[household_id].append(tag_id)
    units = {
        u.id: UnitRef.of(u)
        for u in (
            await session.execute(select(Unit).where(col(Unit.kind) == UnitKind.building.value))
        ).scalars()
        if u.id is not None
    }
    paths: dict[int, list[str]] = defaultdict(list)
    for member_id, path in (
        await session.execute(
            select(col(RoleGrant.member_id), col(Unit.path))
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(RoleGrant.role).in_([r.value for r in VISITING_ROLES | {Role.admin}]))
        )
    ).all():
        paths[member_id].append(path)

    # Local midnights of the last year, oldest first: a due time's local day is one bisect away
    # (exact in zones with daylight saving too); older ones are converted one by one.
    days_back = 400
    starts = [policy.start_of(today - timedelta(days=n)) for n in range(days_back, -1, -1)]
    due: dict[int, list[DueItem]] = defaultdict(list)
    overdue: dict[int, int] = defaultdict(int)
    count: dict[int, int] = defaultdict(int)
    may_visit: dict[tuple[int, int], bool] = {}
    for row in rows:
        assignee, household_id, building_id, address, door, due_at = cast(
            tuple[int, int, int, str, str, datetime], row
        )
        pair = (assignee, building_id)
        allowed = may_visit.get(pair)
        if allowed is None:
            building = units.get(building_id)
            allowed = building is not None and any(
                building.path.startswith(p) for p in paths[assignee]
            )
            may_visit[pair] = allowed
        if not allowed:
            continue
        index = bisect_right(starts, due_at)
        late = days_back + 1 - index if index else (today - policy.local_date(due_at)).days
        count[assignee] += 1
        if late > 0:
            overdue[assignee] += 1
        listed = due[assignee]
        if len(listed) < limit:
            listed.append(
                DueItem(
                    household_id,
                    units[building_id],
                    address,
                    door,
                    tuple(tags_of.get(household_id, ())),
                    max(late, 0),
                )
            )

    groups: dict[int, list[int]] = defaultdict(list)
    for member_id, hub_id in (
        await session.execute(select(col(HubLink.member_id), col(HubLink.hub_id)))
    ).all():
        groups[hub_id].append(member_id)
    group_overdue = {hub: sum(overdue[m] for m in linked) for hub, linked in groups.items()}

    wanted = set(count) | {hub for hub, n in group_overdue.items() if n}
    members = {
        row[0]: row
        for row in (
            await session.execute(
                select(
                    col(Member.id), col(Member.chat_id), col(Member.locale), col(Member.blocked_at)
                )
            )
        ).all()
        if row[0] in wanted
    }
    nudges = []
    for member_id in sorted(wanted):
        if member_id not in members:
            continue
        _, chat_id, locale, blocked_at = members[member_id]
        nudges.append(
            Nudge(
                member_id,
                chat_id,
                locale,
                blocked_at is not None,
                due[member_id],
                count[member_id],
                overdue[member_id],
                len(groups.get(member_id, [])),
                group_overdue.get(member_id, 0),
            )
        )
    return nudges


async def group_overdue(
    session: AsyncSession, hub_id: int, now: datetime, policy: VisitPolicy
) -> tuple[int, int] | None:
    """For a hub member: how many members are linked to them and how many of those members'
    households are overdue (a count only, no household named). None for anyone else."""
    linked = select(col(HubLink.member_id)).where(col(HubLink.hub_id) == hub_id)
    members = (
        await session.execute(
            select(func.count()).select_from(HubLink).where(col(HubLink.hub_id) == hub_id)
        )
    ).scalar_one()
    if not members:
        return None
    start = policy.start_of(policy.local_date(now))
    overdue = (
        await session.execute(
            select(func.count())
            .select_from(Household)
            .where(col(Household.assignee_id).in_(linked.scalar_subquery()))
            .where(col(Household.archived_at).is_(None))
            .where(col(Household.due_at) < start)
        )
    ).scalar_one()
    return int(members), int(overdue)


# ---------------------------------------------------------------------------------------------
# Coverage


@dataclass(frozen=True)
class CoverageCounts:
    total: int = 0
    covered: int = 0
    """Visited, and the last visit is within the household's interval."""
    overdue: int = 0
    never: int = 0
    unassigned: int = 0

    @property
    def share(self) -> float:
        return self.covered / self.total if self.total else 0.0

    def __add__(self, other: CoverageCounts) -> CoverageCounts:
        return CoverageCounts(
            self.total + other.total,
            self.covered + other.covered,
            self.overdue + other.overdue,
            self.never + other.never,
            self.unassigned + other.unassigned,
        )


@dataclass(frozen=True)
class MemberCoverage:
    member_id: int
    name: str
    counts: CoverageCounts


@dataclass(frozen=True)
class CoverageReport:
    unit: UnitRef
    counts: CoverageCounts
    children: list[tuple[UnitRef, CoverageCounts]]
    """One level down: grids of a community, buildings of a grid …"""
    overdue_by_tag: list[tuple[TagView, int]]
    members: list[MemberCoverage]
    """Most overdue first."""
    visits_week: int
    needs_week: int


def coverage_scopes(actor: Actor) -> list[UnitRef]:
    """Units the actor may see the coverage of (their staff scopes)."""
    if actor.system:
        return []
    return actor.scopes(COVERAGE_ROLES)


async def coverage(
    session: AsyncSession, actor: Actor, unit_id: int, now: datetime, policy: VisitPolicy
) -> CoverageReport:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("visits.unit_unknown")
    ref = UnitRef.of(unit)
    actor.require(COVERAGE_ROLES, ref, "coverage")
    return await coverage_of(session, ref, now, policy)


async def coverage_of(
    session: AsyncSession, unit: UnitRef, now: datetime, policy: VisitPolicy
) -> CoverageReport:
    """Coverage of every active household in the unit (no permission check: for jobs)."""
    start = policy.start_of(policy.local_date(now))
    if unit.kind == UnitKind.building:
        scope: Any = col(Household.building_id) == unit.id
    elif unit.kind == UnitKind.grid:
        scope = col(Household.grid_id) == unit.id
    else:
        grids = select(col(Unit.id)).where(
            col(Unit.kind) == UnitKind.grid.value, col(Unit.path).startswith(unit.path)
        )
        scope = col(Household.grid_id).in_(grids.scalar_subquery())
    active = [scope, col(Household.archived_at).is_(None)]

    def total(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0)).cast(Integer)

    covered = total(
        (col(Household.last_visited_at).is_not(None)) & (col(Household.due_at) >= start)
    )
    late = total(col(Household.due_at) < start)
    never = total(col(Household.last_visited_at).is_(None))
    unassigned = total(col(Household.assignee_id).is_(None))

    by_building = (
        await session.execute(
            select(col(Household.building_id), func.count(), covered, late, never, unassigned)
            .where(*active)
            .group_by(col(Household.building_id))
        )
    ).all()
    buildings = {
        u.id: u
        for u in (
            await session.execute(
                select(Unit).where(
                    col(Unit.kind) == UnitKind.building.value, col(Unit.path).startswith(unit.path)
                )
            )
        ).scalars()
    }
    depth = unit.path.strip("/").count("/") + 1
    child_ids: dict[int, CoverageCounts] = defaultdict(CoverageCounts)
    overall = CoverageCounts()
    for building_id, *numbers in by_building:
        counts = CoverageCounts(*(int(n or 0) for n in numbers))
        overall = overall + counts
        building = buildings.get(building_id)
        if building is None:
            continue
        ids = building.path.strip("/").split("/")
        if len(ids) > depth:
            child_ids[int(ids[depth])] += counts
    children_units = {
        u.id: UnitRef.of(u)
        for u in (
            await session.execute(select(Unit).where(col(Unit.id).in_(list(child_ids) or [0])))
        ).scalars()
        if u.id is not None
    }
    children = sorted(
        ((children_units[i], c) for i, c in child_ids.items() if i in children_units),
        key=lambda pair: pair[0].code,
    )

    tags = {t.id: t for t in await list_tags(session)}
    by_tag = (
        await session.execute(
            select(col(HouseholdTagLink.tag_id), func.count())
            .join(Household, col(Household.id) == col(HouseholdTagLink.household_id))
            .where(*active)
            .where(col(Household.due_at) < start)
            .group_by(col(HouseholdTagLink.tag_id))
        )
    ).all()
    overdue_by_tag = sorted(
        ((tags[tag_id], int(n)) for tag_id, n in by_tag if tag_id in tags),
        key=lambda pair: (-pair[1], pair[0].id),
    )

    per_member = (
        await session.execute(
            select(col(Household.assignee_id), func.count(), covered, late, never)
            .where(*active)
            .where(col(Household.assignee_id).is_not(None))
            .group_by(col(Household.assignee_id))
        )
    ).all()
    names = await member_names(session, (int(row[0]) for row in per_member))
    members = sorted(
        (
            MemberCoverage(
                member_id,
                names.get(member_id, "?"),
                CoverageCounts(int(n), int(c or 0), int(o or 0), int(v or 0)),
            )
            for member_id, n, c, o, v in per_member
        ),
        key=lambda m: (-m.counts.overdue, m.counts.share, m.name, m.member_id),
    )

    week_ago = now - timedelta(days=7)
    visits_week, needs_week = (
        await session.execute(
            select(func.count(), func.count(col(Visit.needs)))
            .join(Household, col(Household.id) == col(Visit.household_id))
            .where(scope)
            .where(col(Visit.visited_at) >= week_ago)
        )
    ).one()
    return CoverageReport(
        unit,
        overall,
        children,
        overdue_by_tag,
        members,
        int(visits_week),
        int(needs_week),
    )


async def coordinator_scopes(session: AsyncSession) -> list[tuple[int, UnitRef]]:
    """(member, unit) for every coordinator grant: who gets the weekly coverage summary."""
    rows = await session.execute(
        select(col(RoleGrant.member_id), Unit)
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(col(RoleGrant.role) == Role.coordinator.value)
        .order_by(col(RoleGrant.member_id), col(Unit.code))
    )
    return [(member_id, UnitRef.of(unit)) for member_id, unit in rows.all()]


# ---------------------------------------------------------------------------------------------
# Texts sent by jobs and shown in the chat


MEMBERS_SHOWN = 10


def _share(value: float) -> str:
    return f"{value:.1%}"


def coverage_text(t: Translator, report: CoverageReport, *, members: int = MEMBERS_SHOWN) -> str:
    """The coverage report as one message (no personal data: counts and member names)."""
    counts = report.counts
    unit = f"{report.unit.label(t.locale)} ({report.unit.code})"
    lines = [t("visits.coverage_title", unit=unit)]
    if not counts.total:
        lines.append(t("visits.coverage_empty"))
        return "\n".join(lines)
    lines.append(
        t(
            "visits.coverage_totals",
            total=counts.total,
            covered=counts.covered,
            share=_share(counts.share),
        )
    )
    lines.append(
        t(
            "visits.coverage_gaps",
            overdue=counts.overdue,
            never=counts.never,
            unassigned=counts.unassigned,
        )
    )
    lines.append(t("visits.coverage_week", visits=report.visits_week, needs=report.needs_week))
    if report.overdue_by_tag:
        tags = " · ".join(f"{tag.label(t.locale)} {n}" for tag, n in report.overdue_by_tag)
        lines.append(t("visits.coverage_by_tag", tags=tags))
    if report.children:
        lines += ["", t("visits.coverage_children")]
        for child, child_counts in report.children:
            lines.append(
                t(
                    "visits.coverage_child",
                    unit=f"{child.label(t.locale)} ({child.code})",
                    share=_share(child_counts.share),
                    total=child_counts.total,
                    overdue=child_counts.overdue,
                )
            )
    if report.members:
        lines += ["", t("visits.coverage_members", count=min(members, len(report.members)))]
        for member in report.members[:members]:
            lines.append(
                t(
                    "visits.coverage_member",
                    name=member.name,
                    total=member.counts.total,
                    share=_share(member.counts.share),
                    overdue=member.counts.overdue,
                )
            )
        if len(report.members) > members:
            lines.append(t("visits.coverage_members_more", count=len(report.members) - members))
    return "\n".join(lines)


def nudge_message(
    t: Translator, nudge: Nudge, tags: dict[int, TagView], policy: VisitPolicy, today: date
) -> Text:
    """One member's morning message: what is due, most overdue first, a button each."""
    lines = []
    if nudge.due:
        lines.append(t("visits.nudge_title", due=nudge.due, overdue=nudge.overdue))
    else:
        lines.append(t("visits.nudge_group_title"))
    buttons = []
    for number, item in enumerate(nudge.items, start=1):
        labels = [tags[i].label(t.locale) for i in item.tag_ids if i in tags]
        when = (
            t("households.overdue_days", days=item.overdue_days)
            if item.overdue_days > 0
            else t("households.due_today")
        )
        lines.append(
            t(
                "visits.nudge_line",
                n=number,
                place=item.place(t.locale),
                tags=f" · {'、'.join(labels) if t.locale != 'en' else ', '.join(labels)}"
                if labels
                else "",
                when=when,
            )
        )
        label = t("visits.nudge_button", n=number, place=item.place(t.locale))
        buttons.append([Button(label[:60], payload=f"visit:{item.household_id}")])
    if nudge.due > len(nudge.items):
        lines.append(t("visits.nudge_more", count=nudge.due - len(nudge.items)))
    if nudge.group_overdue:
        lines.append(
            t("visits.nudge_group", members=nudge.group_members, overdue=nudge.group_overdue)
        )
    return Text("\n".join(lines), buttons)


def summary_message(t: Translator, *, report: CoverageReport) -> Text:
    return Text(t("visits.summary_title") + "\n" + coverage_text(t, report))
