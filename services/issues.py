"""Issue reports as a closed loop (发现—解决—反馈): report, accept, assign, escalate, resolve,
rate, the public board, duplicates, deadlines and escalations.

Every permission check is here. Every change of an issue is an :class:`IssueEvent` written in
the same transaction, and every notification to somebody else goes through the outbox in that
transaction. Transitions lock the issue row first (``SELECT … FOR UPDATE`` on PostgreSQL; the
write lock of ``BEGIN IMMEDIATE`` on SQLite), so of two people pressing "accept" at once exactly
one wins and the other is told.

Deadlines are :class:`IssueTimer` rows (``<issue>:<seq>:<kind>`` unique). Planning new deadlines
bumps ``Issue.deadline_seq``; a timer of an older seq is obsolete when it comes due. The job
claims due timers with ``SKIP LOCKED`` and acts on each once (see :func:`fire_due_timers`).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.i18n import N_, Translator
from bot.settings import Settings
from models.issues import (
    HANDLING_STATUSES,
    OPEN_STATUSES,
    CloseReason,
    DueKind,
    EventKind,
    Issue,
    IssueCategory,
    IssueCounter,
    IssueDeadlineRule,
    IssueEvent,
    IssueFollower,
    IssuePhoto,
    IssuePriority,
    IssueSource,
    IssueStatus,
    IssueTimer,
    Rating,
    Tier,
    TimerKind,
    TimerStatus,
)
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound
from services.geo import distance_meters
from services.members import normalize_phone
from services.messages import Button, Keyboard, Message, Photo, Text
from services.outbox import notify
from services.sql import insert_ignore, skip_locked

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 1000
ADDRESS_MAX = 200
NOTE_MAX = 1000
REASON_MAX = 300
BEHALF_NOTE_MAX = 100
CATEGORY_NAME_MAX = 32
MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 10 * 1024 * 1024
QUEUE_LIMIT = 15
BOARD_LIMIT = 10
SUMMARY_CHARS = 60

GRID_STAFF = frozenset({Role.grid_worker, Role.grid_leader})
STAFF_ROLES = frozenset({Role.grid_worker, Role.grid_leader, Role.coordinator})
CATEGORY_MANAGERS = frozenset({Role.coordinator})

# Button payloads of notifications and cards (the handlers register these prefixes).
ISSUE_BUTTON = "iss"
RATE_BUTTON = "irt"
RATING_CODES = {"s": Rating.satisfied, "b": Rating.basic, "u": Rating.unsatisfied}


# ---------------------------------------------------------------------------------------------
# Policy: working time and deadlines


@dataclass(frozen=True)
class IssuePolicy:
    """Deadline settings, read once from :class:`Settings` and passed down."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    work_start: int = 8 * 60 + 30
    work_end: int = 17 * 60 + 30
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    response_minutes: int = 10
    handling_hours: int = 72
    urgent_handling_hours: int = 24
    report_in_minutes: int = 30
    reminder_percent: int = 80
    rating_days: int = 7
    duplicate_days: int = 14
    duplicate_meters: int = 150
    grid_radius_meters: int = 1500
    board_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> IssuePolicy:
        start, end = settings.working_window
        return cls(
            zone=settings.zone,
            work_start=start,
            work_end=end,
            weekdays=settings.weekdays,
            response_minutes=settings.issue_response_minutes,
            handling_hours=settings.issue_handling_hours,
            urgent_handling_hours=settings.issue_urgent_handling_hours,
            report_in_minutes=settings.issue_report_in_minutes,
            reminder_percent=settings.issue_reminder_percent,
            rating_days=settings.issue_rating_days,
            duplicate_days=settings.issue_duplicate_days,
            duplicate_meters=settings.issue_duplicate_meters,
            grid_radius_meters=settings.issue_grid_radius_meters,
            board_days=settings.issue_board_days,
        )

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment ``minutes`` of working time after ``start`` (in the installation's zone,
        on working days between the working hours). Holidays are not known."""
        local = start.astimezone(self.zone)
        day = local.date()
        cursor = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        remaining = max(minutes, 0.0)
        for _ in range(3700):
            if day.isoweekday() in self.weekdays:
                begin = max(cursor, float(self.work_start))
                if begin < self.work_end:
                    available = self.work_end - begin
                    if remaining <= available:
                        return _local_moment(day, begin + remaining, self.zone)
                    remaining -= available
            day += timedelta(days=1)
            cursor = 0.0
        raise ValueError("no working time within ten years")

    def in_working_hours(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in self.weekdays and self.work_start <= minute < self.work_end


def _local_moment(day: date, minute_of_day: float, zone: ZoneInfo) -> datetime:
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (midnight + timedelta(minutes=minute_of_day)).astimezone(UTC)


@dataclass(frozen=True)
class Deadlines:
    response_minutes: int
    handling_hours: int


async def deadlines_for(
    session: AsyncSession,
    policy: IssuePolicy,
    unit_path: str,
    category_id: int,
    priority: IssuePriority,
) -> Deadlines:
    """The rule on the nearest unit above the place wins; the settings are the fallback."""
    ancestors = _path_ids(unit_path)
    rules = (
        (
            await session.execute(
                select(IssueDeadlineRule)
                .where(col(IssueDeadlineRule.category_id) == category_id)
                .where(col(IssueDeadlineRule.priority) == priority.value)
                .where(col(IssueDeadlineRule.unit_id).in_(ancestors))
            )
        )
        .scalars()
        .all()
    )
    if rules:
        best = max(rules, key=lambda r: ancestors.index(r.unit_id))
        return Deadlines(best.response_minutes, best.handling_hours)
    hours = (
        policy.urgent_handling_hours if priority == IssuePriority.urgent else policy.handling_hours
    )
    return Deadlines(policy.response_minutes, hours)


# ---------------------------------------------------------------------------------------------
# Views (plain data; services never hand out ORM objects)


@dataclass(frozen=True)
class CategoryView:
    id: int
    code: str
    name: str
    name_en: str | None
    default_priority: IssuePriority
    unit_id: int | None
    active: bool

    def label(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str
    role: Role | None
    unit: UnitRef | None


@dataclass(frozen=True)
class IssueView:
    id: int
    number: str
    status: IssueStatus
    tier: Tier
    priority: IssuePriority
    category: CategoryView
    description: str
    address: str | None
    latitude: float | None
    longitude: float | None
    anonymous: bool
    community: UnitRef
    grid: UnitRef | None
    building: UnitRef | None
    reporter: PersonRef | None
    reporter_phone: str | None
    reported_by: PersonRef | None
    on_behalf_note: str | None
    assignee: PersonRef | None
    department: PersonRef | None
    reported_in_at: datetime | None
    duplicate_of: str | None
    due_at: datetime | None
    due_kind: DueKind | None
    cycle: int
    created_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    close_reason: CloseReason | None
    rating: Rating | None
    resolution_note: str | None
    reject_reason: str | None
    photos: tuple[str, ...]
    resolution_photos: tuple[str, ...]
    followers: int
    source: IssueSource | None
    source_id: int | None

    @property
    def place(self) -> UnitRef:
        return self.building or self.grid or self.community

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class IssueLine:
    """One line of a list (queue, my reports)."""

    id: int
    number: str
    status: IssueStatus
    tier: Tier
    priority: IssuePriority
    category: CategoryView
    description: str
    due_at: datetime | None
    due_kind: DueKind | None
    created_at: datetime


@dataclass(frozen=True)
class EventView:
    id: int
    kind: EventKind
    at: datetime
    actor: PersonRef | None
    target: PersonRef | None
    to_status: IssueStatus | None
    tier: Tier | None
    note: str | None


class Access:
    """How much of an issue a person may see."""

    staff = "staff"
    reporter = "reporter"
    follower = "follower"


@dataclass(frozen=True)
class IssueCard:
    issue: IssueView
    access: str
    actions: frozenset[str]


@dataclass(frozen=True)
class Place:
    community: UnitRef
    grid: UnitRef | None
    building: UnitRef | None

    @property
    def unit(self) -> UnitRef:
        return self.building or self.grid or self.community


@dataclass(frozen=True)
class NewReport:
    """Everything a report can carry. Visits and meetings create issues with the same call:
    ``create_report(session, actor, NewReport(..., source=IssueSource.visit, source_id=need.id),
    now, policy)``; a second call with the same ``source``/``source_id`` returns the issue
    already made instead of a new one."""

    category: str | int
    """Category code (``parking``…) or id."""
    description: str
    unit_id: int | None = None
    """Building, grid or community; None: the reporter's own grid, else found from the location."""
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    photos: Sequence[str] = ()
    """Telegram file ids (at most MAX_PHOTOS)."""
    anonymous: bool = False
    on_behalf_of: int | None = None
    """Member id of the resident reported for (staff only); they are answered back and rate."""
    on_behalf_note: str | None = None
    """Name or door of a resident who is not a member (staff only)."""
    source: IssueSource | str | None = None
    source_id: int | None = None
    priority: IssuePriority | None = None


@dataclass(frozen=True)
class BoardEntry:
    number: str
    category: CategoryView
    place: UnitRef
    created_at: datetime
    resolved_at: datetime
    rating: Rating | None


@dataclass(frozen=True)
class Board:
    unit: UnitRef
    days: int
    entries: tuple[BoardEntry, ...]


@dataclass(frozen=True)
class QueueCounts:
    new: int
    mine: int
    overdue: int


@dataclass(frozen=True)
class CategoryRow:
    category: CategoryView
    normal: Deadlines
    urgent: Deadlines
    editable: bool


# ---------------------------------------------------------------------------------------------
# Small helpers


def _path_ids(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def _ancestor_id(path: str, kind: UnitKind) -> int | None:
    ids = _path_ids(path)
    return ids[kind.level] if len(ids) > kind.level else None


_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1\d{2}[- ]?\d{4}[- ]?\d{4}(?!\d)|(?<!\d)\d{7,}(?!\d)")
_ROOM = re.compile(r"\d+\s*(室|户|房间|号房)")
_UNIT_ROOM = re.compile(r"(\d+)\s*(单元)\s*\d+")
_TRIPLE = re.compile(r"(?<!\d)(\d+)-(\d+)-(\d+)(?!\d)")
_DOOR_EN = re.compile(r"(?i)\b(room|rm|apt|flat|no\.?|#)\s*\d+\w*")
_DOOR_NUMBER = re.compile(r"(?<![\d号])\d{3,4}(?=\s*(?:门口|门前|家|$|[，,。.\s]))")


def redact(text: str) -> str:
    """For other residents (an offered similar report, a followed issue): phone numbers and
    exact doors go; buildings stay. Names cannot be recognised, so the public board shows no
    free text at all."""
    text = _PHONE.sub("***", text)
    text = _TRIPLE.sub(lambda m: f"{m[1]}-*-*", text)
    text = _UNIT_ROOM.sub(lambda m: f"{m[1]}{m[2]}**", text)
    text = _ROOM.sub(lambda m: f"**{m[1]}", text)
    text = _DOOR_EN.sub(lambda m: f"{m[1]} *", text)
    return _DOOR_NUMBER.sub("***", text)


def shorten(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_time(t: Translator, moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(zone).strftime(t("issues.datetime_format"))


def _category_view(category: IssueCategory) -> CategoryView:
    assert category.id is not None
    return CategoryView(
        category.id,
        category.code,
        category.name,
        category.name_en,
        IssuePriority(category.default_priority),
        category.unit_id,
        category.active,
    )


def _line(issue: Issue, category: IssueCategory) -> IssueLine:
    assert issue.id is not None
    return IssueLine(
        issue.id,
        issue.number,
        IssueStatus(issue.status),
        Tier(issue.tier),
        IssuePriority(issue.priority),
        _category_view(category),
        issue.description,
        issue.due_at,
        DueKind(issue.due_kind) if issue.due_kind else None,
        issue.created_at,
    )


async def _unit(session: AsyncSession, unit_id: int | None) -> UnitRef | None:
    if unit_id is None:
        return None
    unit = await session.get(Unit, unit_id)
    return UnitRef.of(unit) if unit else None


async def _units(session: AsyncSession, ids: Iterable[int]) -> dict[int, UnitRef]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await session.execute(select(Unit).where(col(Unit.id).in_(wanted)))).scalars()
    return {u.id: UnitRef.of(u) for u in rows if u.id is not None}


async def _member_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name)).where(col(Member.id).in_(wanted))
    )
    return {int(i): str(n) for i, n in rows.all() if i is not None}


async def _category(session: AsyncSession, key: str | int) -> IssueCategory:
    query = select(IssueCategory)
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        query = query.where(col(IssueCategory.id) == int(key))
    else:
        query = query.where(col(IssueCategory.code) == str(key).strip().lower())
    category = (await session.execute(query)).scalar_one_or_none()
    if category is None:
        raise NotFound("issues.category_unknown")
    return category


async def _lock(session: AsyncSession, issue_id: int) -> Issue:
    """The issue row, locked until the end of the transaction, fresh from the database."""
    issue = (
        await session.execute(
            select(Issue)
            .where(col(Issue.id) == issue_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if issue is None:
        raise NotFound("issues.not_found")
    return issue


async def _issue_units(session: AsyncSession, issue: Issue) -> tuple[UnitRef, UnitRef | None]:
    units = await _units(session, [issue.community_id, *([issue.grid_id] if issue.grid_id else [])])
    return units[issue.community_id], units.get(issue.grid_id) if issue.grid_id else None


def _staff_role_on(actor: Actor, community: UnitRef, grid: UnitRef | None) -> set[str]:
    """What kind of staff the actor is for an issue at this place."""
    kinds: set[str] = set()
    if actor.system:
        return {"grid", "leader", "coordinator"}
    if grid is not None and actor.can(GRID_STAFF, grid):
        kinds.add("grid")
        if actor.can({Role.grid_leader}, grid):
            kinds.add("leader")
    if actor.can({Role.coordinator}, community):
        kinds.add("coordinator")
    if any(g.role == Role.department and community.within(g.unit) for g in actor.grants):
        kinds.add("department")
    return kinds


async def _event(
    session: AsyncSession,
    issue: Issue,
    kind: EventKind,
    actor_id: int | None,
    now: datetime,
    *,
    from_status: IssueStatus | None = None,
    note: str | None = None,
    target_id: int | None = None,
) -> IssueEvent:
    assert issue.id is not None
    event = IssueEvent(
        issue_id=issue.id,
        kind=kind,
        actor_id=actor_id,
        at=now,
        from_status=from_status,
        to_status=IssueStatus(issue.status),
        tier=Tier(issue.tier),
        target_id=target_id,
        note=note[:NOTE_MAX] if note else None,
    )
    session.add(event)
    await session.flush()
    issue.updated_at = now
    return event


# ---------------------------------------------------------------------------------------------
# Deadlines as rows


async def _plan(
    session: AsyncSession,
    issue: Issue,
    kind: DueKind | None,
    now: datetime,
    policy: IssuePolicy,
) -> None:
    """Start a new deadline for the issue (or none); earlier timers become obsolete."""
    assert issue.id is not None
    issue.deadline_seq += 1
    issue.due_kind = kind
    if kind is None:
        issue.due_at = None
        return
    due, timers = await _schedule(session, issue, kind, now, policy)
    issue.due_at = due
    for timer_kind, at in timers:
        await insert_ignore(
            session,
            IssueTimer,
            {
                "issue_id": issue.id,
                "kind": timer_kind.value,
                "seq": issue.deadline_seq,
                "due_at": at,
                "status": TimerStatus.pending.value,
                "key": f"{issue.id}:{issue.deadline_seq}:{timer_kind.value}",
            },
            conflict=["key"],
        )


async def _schedule(
    session: AsyncSession, issue: Issue, kind: DueKind, now: datetime, policy: IssuePolicy
) -> tuple[datetime, list[tuple[TimerKind, datetime]]]:
    """The deadline of a phase starting now, and its timers (reminder first)."""
    priority = IssuePriority(issue.priority)
    urgent = priority == IssuePriority.urgent
    share = policy.reminder_percent / 100
    if kind == DueKind.rating:
        due = now + timedelta(days=policy.rating_days)
        timers = [(TimerKind.rating_timeout, due)]
    elif kind == DueKind.report_in:
        minutes = policy.report_in_minutes
        due, remind = _working_or_clock(policy, now, minutes, share, urgent)
        timers = [(TimerKind.report_in_reminder, remind), (TimerKind.report_in_breach, due)]
    else:
        unit_id = issue.grid_id or issue.community_id
        unit = await session.get(Unit, unit_id)
        assert unit is not None
        rules = await deadlines_for(session, policy, unit.path, issue.category_id, priority)
        if kind == DueKind.response:
            due, remind = _working_or_clock(policy, now, rules.response_minutes, share, urgent)
            timers = [(TimerKind.response_reminder, remind), (TimerKind.response_breach, due)]
        else:
            span = timedelta(hours=rules.handling_hours)
            due, remind = now + span, now + span * share
            timers = [(TimerKind.handling_reminder, remind), (TimerKind.handling_breach, due)]
    return due, timers


def _working_or_clock(
    policy: IssuePolicy, now: datetime, minutes: int, share: float, urgent: bool
) -> tuple[datetime, datetime]:
    """Normal issues count working time; urgent ones count around the clock."""
    if urgent:
        return now + timedelta(minutes=minutes), now + timedelta(minutes=minutes * share)
    return (
        policy.add_working_minutes(now, minutes),
        policy.add_working_minutes(now, minutes * share),
    )


# ---------------------------------------------------------------------------------------------
# Who handles which tier


async def _grants(
    session: AsyncSession, roles: Iterable[Role], unit_ids: Iterable[int]
) -> list[int]:
    ids = sorted(set(unit_ids))
    if not ids:
        return []
    rows = await session.execute(
        select(col(RoleGrant.member_id))
        .where(col(RoleGrant.role).in_([r.value for r in roles]))
        .where(col(RoleGrant.unit_id).in_(ids))
        .order_by(col(RoleGrant.id))
    )
    seen: dict[int, None] = {}
    for member_id in rows.scalars():
        seen.setdefault(int(member_id), None)
    return list(seen)


async def _community_path(session: AsyncSession, issue: Issue) -> str:
    unit = await session.get(Unit, issue.community_id)
    assert unit is not None
    return unit.path


async def tier_people(session: AsyncSession, issue: Issue, tier: Tier) -> list[int]:
    """Who is told and expected to act at a tier; when nobody holds that tier, the next one
    up (so an escalation always reaches somebody)."""
    path = await _community_path(session, issue)
    street_id = _ancestor_id(path, UnitKind.street)
    current: Tier | None = tier
    while current is not None:
        if current == Tier.grid:
            people = await _grants(session, GRID_STAFF, [issue.grid_id]) if issue.grid_id else []
        elif current == Tier.community:
            people = await _grants(session, {Role.coordinator}, [issue.community_id])
        elif current == Tier.street:
            people = await _grants(session, {Role.coordinator}, [street_id] if street_id else [])
        else:
            people = (
                [issue.department_id]
                if issue.department_id
                else await _grants(session, {Role.department}, _path_ids(path))
            )
        if people:
            return people
        current = current.above
    return await _grants(session, {Role.admin}, _path_ids(path))


async def _department_people(session: AsyncSession, issue: Issue) -> list[int]:
    return await _grants(
        session, {Role.department}, _path_ids(await _community_path(session, issue))
    )


# ---------------------------------------------------------------------------------------------
# Reading


async def _view(session: AsyncSession, issue: Issue) -> IssueView:
    assert issue.id is not None
    units = await _units(
        session, [u for u in (issue.community_id, issue.grid_id, issue.building_id) if u]
    )
    category = await session.get(IssueCategory, issue.category_id)
    assert category is not None
    names = await _member_names(
        session, [issue.reporter_id, issue.reported_by, issue.assignee_id, issue.department_id]
    )
    photos = (
        await session.execute(
            select(col(IssuePhoto.file_id), col(IssuePhoto.resolution))
            .where(col(IssuePhoto.issue_id) == issue.id)
            .order_by(col(IssuePhoto.id))
        )
    ).all()
    followers = (
        await session.execute(
            select(func.count())
            .select_from(IssueFollower)
            .where(col(IssueFollower.issue_id) == issue.id)
        )
    ).scalar_one()
    duplicate_of = None
    if issue.duplicate_of_id:
        original = await session.get(Issue, issue.duplicate_of_id)
        duplicate_of = original.number if original else None
    phone = None
    if issue.reporter_id:
        reporter = await session.get(Member, issue.reporter_id)
        phone = reporter.phone if reporter else None
    community = units[issue.community_id]
    grid = units.get(issue.grid_id) if issue.grid_id else None

    people: dict[int, PersonRef] = {}

    async def person(member_id: int | None) -> PersonRef | None:
        if member_id is None or member_id not in names:
            return None
        if member_id not in people:
            role, unit = await _role_for(session, member_id, community, grid)
            people[member_id] = PersonRef(member_id, names[member_id], role, unit)
        return people[member_id]

    return IssueView(
        id=issue.id,
        number=issue.number,
        status=IssueStatus(issue.status),
        tier=Tier(issue.tier),
        priority=IssuePriority(issue.priority),
        category=_category_view(category),
        description=issue.description,
        address=issue.address,
        latitude=issue.latitude,
        longitude=issue.longitude,
        anonymous=issue.anonymous,
        community=community,
        grid=grid,
        building=units.get(issue.building_id) if issue.building_id else None,
        reporter=await person(issue.reporter_id),
        reporter_phone=phone,
        reported_by=await person(issue.reported_by),
        on_behalf_note=issue.on_behalf_note,
        assignee=await person(issue.assignee_id),
        department=await person(issue.department_id),
        reported_in_at=issue.reported_in_at,
        duplicate_of=duplicate_of,
        due_at=issue.due_at,
        due_kind=DueKind(issue.due_kind) if issue.due_kind else None,
        cycle=issue.cycle,
        created_at=issue.created_at,
        accepted_at=issue.accepted_at,
        resolved_at=issue.resolved_at,
        closed_at=issue.closed_at,
        close_reason=CloseReason(issue.close_reason) if issue.close_reason else None,
        rating=Rating(issue.rating) if issue.rating else None,
        resolution_note=issue.resolution_note,
        reject_reason=issue.reject_reason,
        photos=tuple(str(f) for f, resolution in photos if not resolution),
        resolution_photos=tuple(str(f) for f, resolution in photos if resolution),
        followers=int(followers),
        source=IssueSource(issue.source) if issue.source else None,
        source_id=issue.source_id,
    )


async def _role_for(
    session: AsyncSession, member_id: int, community: UnitRef, grid: UnitRef | None
) -> tuple[Role | None, UnitRef | None]:
    """The role (and unit) under which a handler works on an issue at this place, shown to the
    reporter instead of the person's name."""
    rows = (
        await session.execute(
            select(col(RoleGrant.role), Unit)
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(RoleGrant.member_id) == member_id)
            .order_by(col(RoleGrant.id))
        )
    ).all()
    place = grid or community
    preference = [Role.grid_leader, Role.grid_worker, Role.coordinator, Role.department, Role.admin]
    best: tuple[int, Role, UnitRef] | None = None
    for role_value, unit in rows:
        role, ref = Role(role_value), UnitRef.of(unit)
        if role in preference and place.within(ref):
            rank = preference.index(role)
            if best is None or rank < best[0]:
                best = (rank, role, ref)
    if best is None:
        return None, None
    return best[1], best[2]


def _access(actor: Actor, issue: Issue, community: UnitRef, grid: UnitRef | None) -> str | None:
    staff = _staff_role_on(actor, community, grid)
    if staff - {"department"}:
        return Access.staff
    if "department" in staff and (
        Tier(issue.tier) == Tier.department
        or issue.department_id == actor.member_id
        or issue.assignee_id == actor.member_id
    ):
        return Access.staff
    if actor.member_id is not None and actor.member_id in (
        issue.reporter_id,
        issue.reported_by,
        issue.assignee_id,
    ):
        return Access.staff if actor.member_id == issue.assignee_id else Access.reporter
    return None


async def _is_follower(session: AsyncSession, issue_id: int, member_id: int | None) -> bool:
    if member_id is None:
        return False
    found = await session.get(IssueFollower, (issue_id, member_id))
    return found is not None


async def issue_id_by_number(session: AsyncSession, number: str) -> int:
    cleaned = number.strip().lstrip("#").upper()
    if not cleaned or len(cleaned) > 32:
        raise NotFound("issues.not_found")
    found = (
        await session.execute(select(col(Issue.id)).where(col(Issue.number) == cleaned))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("issues.not_found")
    return int(found)


async def get_card(session: AsyncSession, actor: Actor, issue_id: int) -> IssueCard:
    """The issue as this person may see it, with the actions they may take now. Anyone
    else is refused (and it is logged): a typed number from another grid lands here."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("issues.not_found")
    await session.refresh(issue)
    community, grid = await _issue_units(session, issue)
    access = _access(actor, issue, community, grid)
    if access is None and await _is_follower(session, issue_id, actor.member_id):
        access = Access.follower
    if access is None:
        actor.refuse(f"view issue {issue.number}", grid or community)
    view = await _view(session, issue)
    if access != Access.staff:
        view = _public(view, access)
    return IssueCard(view, access, _actions(actor, issue, community, grid))


def _public(view: IssueView, access: str) -> IssueView:
    """What a reporter or a follower may see: handlers by role and unit only (no names), no
    phone; followers (other residents) also no address, no exact doors or phone numbers in
    the text, and the reporter's name only when they did not report anonymously."""

    def anonymous(person: PersonRef | None) -> PersonRef | None:
        return replace(person, name="") if person else None

    view = replace(
        view,
        reporter_phone=None,
        reported_by=None,
        on_behalf_note=None,
        assignee=anonymous(view.assignee),
        department=anonymous(view.department),
    )
    if access == Access.follower:
        view = replace(
            view,
            description=redact(view.description),
            address=None,
            latitude=None,
            longitude=None,
            reporter=None if view.anonymous else view.reporter,
        )
    return view


def _actions(
    actor: Actor, issue: Issue, community: UnitRef, grid: UnitRef | None
) -> frozenset[str]:
    staff = _staff_role_on(actor, community, grid)
    status = IssueStatus(issue.status)
    me = actor.member_id
    actions: set[str] = set()
    handlers = staff & {"grid", "coordinator"}
    if status in OPEN_STATUSES:
        if handlers:
            if status == IssueStatus.new:
                actions.add("acc")
            if issue.assignee_id != me or me is None:
                actions.add("take")
            actions |= {"rej", "dup", "pri"}
        if staff & {"leader", "coordinator"}:
            actions.add("asg")
        if "coordinator" in staff:
            actions.add("whs")
        if issue.assignee_id is not None and issue.assignee_id == me:
            if status in (IssueStatus.assigned, IssueStatus.reopened):
                actions.add("start")
            actions.add("res")
        elif status != IssueStatus.new and staff & {"leader", "coordinator"}:
            actions.add("res")
        if (
            "department" in staff
            and Tier(issue.tier) == Tier.department
            and issue.reported_in_at is None
            and issue.department_id in (None, me)
        ):
            actions.add("rin")
    if status == IssueStatus.resolved and me is not None and me == issue.reporter_id:
        actions.add("rate")
    return frozenset(actions)


async def timeline(
    session: AsyncSession, actor: Actor, issue_id: int
) -> tuple[IssueCard, list[EventView]]:
    """Every event for staff; the public steps (without handlers' names) for the reporter."""
    card = await get_card(session, actor, issue_id)
    rows = (
        (
            await session.execute(
                select(IssueEvent)
                .where(col(IssueEvent.issue_id) == issue_id)
                .order_by(col(IssueEvent.id))
            )
        )
        .scalars()
        .all()
    )
    staff = card.access == Access.staff
    names = await _member_names(session, [e.actor_id for e in rows] + [e.target_id for e in rows])
    events = []
    for event in rows:
        kind = EventKind(event.kind)
        if not staff and kind not in PUBLIC_EVENTS:
            continue
        assert event.id is not None
        events.append(
            EventView(
                event.id,
                kind,
                event.at,
                PersonRef(event.actor_id, names[event.actor_id], None, None)
                if staff and event.actor_id in names
                else None,
                PersonRef(event.target_id, names[event.target_id], None, None)
                if staff and event.target_id in names
                else None,
                IssueStatus(event.to_status) if event.to_status else None,
                Tier(event.tier) if event.tier else None,
                event.note if staff or kind in (EventKind.resolved, EventKind.rejected) else None,
            )
        )
    return card, events


PUBLIC_EVENTS = frozenset(
    {
        EventKind.reported,
        EventKind.accepted,
        EventKind.assigned,
        EventKind.started,
        EventKind.resolved,
        EventKind.rated,
        EventKind.reopened,
        EventKind.closed,
        EventKind.rejected,
        EventKind.duplicate,
        EventKind.escalated,
        EventKind.whistled,
        EventKind.reported_in,
    }
)


# ---------------------------------------------------------------------------------------------
# Categories

DEFAULT_CATEGORIES: tuple[tuple[str, str, str, IssuePriority], ...] = (
    ("parking", "停车管理", "Parking", IssuePriority.normal),
    ("dogs", "文明养犬", "Dogs", IssuePriority.normal),
    ("ebike_charging", "电动车充电", "E-bike charging", IssuePriority.normal),
    ("sanitation", "环境卫生", "Sanitation", IssuePriority.normal),
    ("safety_hazard", "安全隐患", "Safety hazard", IssuePriority.urgent),
    ("broken_facility", "设施损坏", "Broken facility", IssuePriority.normal),
    ("neighbour_dispute", "邻里纠纷", "Neighbour dispute", IssuePriority.normal),
    ("other", "其他", "Other", IssuePriority.normal),
)
"""The categories every installation starts with (migration 0010 inserts the same list)."""


async def ensure_default_categories(session: AsyncSession, now: datetime) -> int:
    """Insert missing default categories; returns how many were added."""
    added = 0
    for index, (code, name, name_en, priority) in enumerate(DEFAULT_CATEGORIES):
        inserted = await insert_ignore(
            session,
            IssueCategory,
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "default_priority": priority.value,
                "sort": (index + 1) * 10,
                "active": True,
                "created_at": now,
            },
            conflict=["code"],
        )
        added += 1 if inserted else 0
    return added


async def categories_for(session: AsyncSession, place: UnitRef | None) -> list[CategoryView]:
    """Active categories a reporter can choose at a place (everywhere ones and the place's)."""
    query = select(IssueCategory).where(col(IssueCategory.active).is_(True))
    rows = (
        (await session.execute(query.order_by(col(IssueCategory.sort), col(IssueCategory.id))))
        .scalars()
        .all()
    )
    allowed = set(_path_ids(place.path)) if place else set()
    return [
        _category_view(c) for c in rows if c.unit_id is None or (place and c.unit_id in allowed)
    ]


def _manager_scopes(actor: Actor) -> list[UnitRef]:
    return actor.scopes(CATEGORY_MANAGERS)


async def category_overview(
    session: AsyncSession, actor: Actor, policy: IssuePolicy
) -> tuple[UnitRef, list[CategoryRow]]:
    """Categories and their deadlines as they apply in the actor's own scope."""
    scopes = _manager_scopes(actor)
    if not scopes:
        actor.refuse("manage issue categories")
    scope = scopes[0]
    rows = (
        (
            await session.execute(
                select(IssueCategory).order_by(col(IssueCategory.sort), col(IssueCategory.id))
            )
        )
        .scalars()
        .all()
    )
    allowed = set(_path_ids(scope.path))
    result = []
    for category in rows:
        if category.unit_id is not None and category.unit_id not in allowed:
            unit = await session.get(Unit, category.unit_id)
            if unit is None or not UnitRef.of(unit).within(scope):
                continue
        assert category.id is not None
        normal = await deadlines_for(session, policy, scope.path, category.id, IssuePriority.normal)
        urgent = await deadlines_for(session, policy, scope.path, category.id, IssuePriority.urgent)
        editable = category.unit_id is None or category.unit_id in allowed or actor.system
        result.append(CategoryRow(_category_view(category), normal, urgent, editable))
    return scope, result


async def add_category(
    session: AsyncSession,
    actor: Actor,
    name: str,
    name_en: str | None,
    now: datetime,
    *,
    priority: IssuePriority = IssuePriority.normal,
) -> CategoryView:
    """A coordinator adds a category for their scope (an admin's covers everything)."""
    scopes = _manager_scopes(actor)
    if not scopes and not actor.system:
        actor.refuse("add an issue category")
    name = " ".join(name.split())
    name_en = " ".join(name_en.split()) if name_en else None
    if not name or len(name) > CATEGORY_NAME_MAX or (name_en and len(name_en) > CATEGORY_NAME_MAX):
        raise InvalidInput("issues.category_name_invalid", limit=CATEGORY_NAME_MAX)
    scope = scopes[0] if scopes else None
    unit_id = None if scope is None or scope.kind == UnitKind.district else scope.id
    existing = (await session.execute(select(IssueCategory))).scalars().all()
    for other in existing:
        same_place = other.unit_id is None or other.unit_id == unit_id
        if same_place and name.lower() in (other.name.lower(), (other.name_en or "").lower()):
            raise Conflict("issues.category_exists", name=name)
    category = IssueCategory(
        code=f"custom-{secrets.token_hex(6)}",
        name=name,
        name_en=name_en,
        unit_id=unit_id,
        default_priority=priority,
        sort=100 + len(existing),
        created_by=actor.member_id,
        created_at=now,
    )
    session.add(category)
    await session.flush()
    return _category_view(category)


async def _editable_category(
    session: AsyncSession, actor: Actor, category_id: int
) -> tuple[IssueCategory, UnitRef | None]:
    category = await session.get(IssueCategory, category_id)
    if category is None:
        raise NotFound("issues.category_unknown")
    scopes = _manager_scopes(actor)
    if actor.system:
        return category, None
    if not scopes:
        actor.refuse("change an issue category")
    scope = scopes[0]
    if category.unit_id is not None:
        unit = await session.get(Unit, category.unit_id)
        if unit is None or not UnitRef.of(unit).within(scope):
            actor.refuse("change an issue category", scope)
    return category, scope


async def set_category_active(
    session: AsyncSession, actor: Actor, category_id: int, active: bool
) -> CategoryView:
    """Hide or show a category. Categories for everywhere only an admin may hide."""
    category, scope = await _editable_category(session, actor, category_id)
    if category.unit_id is None and not (
        actor.system or (scope and actor.can({Role.admin}, scope))
    ):
        actor.refuse("hide a category used everywhere", scope)
    category.active = active
    await session.flush()
    return _category_view(category)


async def set_deadlines(
    session: AsyncSession,
    actor: Actor,
    category_id: int,
    priority: IssuePriority,
    response_minutes: int,
    handling_hours: int,
    now: datetime,
) -> Deadlines:
    """Deadlines for a category and priority in the actor's scope (community, street, or the
    admin's district); issues planned from now on use them."""
    category, scope = await _editable_category(session, actor, category_id)
    if scope is None:
        raise InvalidInput("issues.deadline_needs_scope")
    if not 1 <= response_minutes <= 10_080 or not 1 <= handling_hours <= 8_760:
        raise InvalidInput("issues.deadline_invalid")
    assert category.id is not None
    existing = (
        await session.execute(
            select(IssueDeadlineRule)
            .where(col(IssueDeadlineRule.unit_id) == scope.id)
            .where(col(IssueDeadlineRule.category_id) == category.id)
            .where(col(IssueDeadlineRule.priority) == priority.value)
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(
            IssueDeadlineRule(
                unit_id=scope.id,
                category_id=category.id,
                priority=priority,
                response_minutes=response_minutes,
                handling_hours=handling_hours,
                updated_by=actor.member_id,
                updated_at=now,
            )
        )
    else:
        existing.response_minutes = response_minutes
        existing.handling_hours = handling_hours
        existing.updated_by = actor.member_id
        existing.updated_at = now
    await session.flush()
    return Deadlines(response_minutes, handling_hours)


# ---------------------------------------------------------------------------------------------
# Reporting


def may_report_for_others(actor: Actor) -> bool:
    return actor.system or bool(actor.roles & (STAFF_ROLES | {Role.admin}))


async def home_place(session: AsyncSession, actor: Actor) -> Place | None:
    """The reporter's own grid (and building), from the most specific grant they hold."""
    best: UnitRef | None = None
    for grant in actor.grants:
        if grant.unit.kind in (UnitKind.grid, UnitKind.building) and (
            best is None or grant.unit.kind.level > best.kind.level
        ):
            best = grant.unit
    if best is None:
        return None
    return await place_of(session, best.id)


async def place_of(session: AsyncSession, unit_id: int) -> Place:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("issues.place_unknown")
    ref = UnitRef.of(unit)
    if ref.kind.level < UnitKind.community.level:
        raise InvalidInput("issues.place_too_wide")
    ids = {
        kind: _ancestor_id(ref.path, kind)
        for kind in (UnitKind.community, UnitKind.grid, UnitKind.building)
    }
    units = await _units(session, [i for i in ids.values() if i])
    community_id = ids[UnitKind.community]
    assert community_id is not None
    return Place(
        units[community_id],
        units.get(ids[UnitKind.grid] or -1),
        units.get(ids[UnitKind.building] or -1),
    )


async def nearest_grid(
    session: AsyncSession, latitude: float, longitude: float, policy: IssuePolicy
) -> Place | None:
    """The grid whose centre is nearest, if it is within the configured radius."""
    grids = (
        (
            await session.execute(
                select(Unit)
                .where(col(Unit.kind) == UnitKind.grid.value)
                .where(col(Unit.latitude).is_not(None))
            )
        )
        .scalars()
        .all()
    )
    best: tuple[float, Unit] | None = None
    for grid in grids:
        assert grid.latitude is not None
        assert grid.longitude is not None
        meters = distance_meters(latitude, longitude, grid.latitude, grid.longitude)
        if best is None or meters < best[0]:
            best = (meters, grid)
    if best is None or best[0] > policy.grid_radius_meters:
        return None
    assert best[1].id is not None
    return await place_of(session, best[1].id)


async def locate(
    session: AsyncSession,
    actor: Actor,
    policy: IssuePolicy,
    *,
    unit_id: int | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Place | None:
    """Where a report belongs: a unit given explicitly (within the reporter's scope, or any
    community when the place could not be found), the reporter's own grid, else the grid
    nearest to the location. None: the reporter has to pick the community."""
    if unit_id is not None:
        place = await place_of(session, unit_id)
        outside = not any(place.unit.within(g.unit) for g in actor.grants)
        if place.unit.kind != UnitKind.community and not actor.system and outside:
            actor.refuse("report for a unit outside one's grants", place.unit)
        return place
    home = await home_place(session, actor)
    if home is not None:
        return home
    if latitude is not None and longitude is not None:
        return await nearest_grid(session, latitude, longitude, policy)
    return None


async def communities(session: AsyncSession) -> list[UnitRef]:
    rows = (
        await session.execute(
            select(Unit).where(col(Unit.kind) == UnitKind.community.value).order_by(col(Unit.code))
        )
    ).scalars()
    return [UnitRef.of(u) for u in rows]


def _check_location(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise InvalidInput("issues.location_invalid")
    if (
        latitude is not None
        and longitude is not None
        and not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput("issues.location_invalid")


def clean_description(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("issues.description_empty")
    if len(cleaned) > DESCRIPTION_MAX:
        raise InvalidInput("issues.description_too_long", limit=DESCRIPTION_MAX)
    return cleaned


def clean_address(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidInput("issues.address_empty")
    if len(cleaned) > ADDRESS_MAX:
        raise InvalidInput("issues.address_too_long", limit=ADDRESS_MAX)
    return cleaned


async def similar_open_issues(
    session: AsyncSession,
    place: Place,
    category_id: int,
    now: datetime,
    policy: IssuePolicy,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    limit: int = 3,
) -> list[IssueLine]:
    """Open reports of the same category in the same grid, recent, and at the same building
    or close by: offered to the reporter as "this is the same as #…"."""
    if place.building is None and latitude is None:
        return []
    query = (
        select(Issue, IssueCategory)
        .join(IssueCategory, col(IssueCategory.id) == col(Issue.category_id))
        .where(col(Issue.category_id) == category_id)
        .where(col(Issue.status).in_([s.value for s in OPEN_STATUSES]))
        .where(col(Issue.created_at) >= now - timedelta(days=policy.duplicate_days))
        .order_by(col(Issue.created_at).desc())
        .limit(50)
    )
    if place.grid is not None:
        query = query.where(col(Issue.grid_id) == place.grid.id)
    else:
        query = query.where(col(Issue.community_id) == place.community.id).where(
            col(Issue.grid_id).is_(None)
        )
    found = []
    for issue, category in (await session.execute(query)).all():
        same_building = place.building is not None and issue.building_id == place.building.id
        near = (
            latitude is not None
            and longitude is not None
            and issue.latitude is not None
            and issue.longitude is not None
            and distance_meters(latitude, longitude, issue.latitude, issue.longitude)
            <= policy.duplicate_meters
        )
        if same_building or near:
            found.append(_line(issue, category))
        if len(found) >= limit:
            break
    return found


async def issue_lines(session: AsyncSession, ids: Sequence[int]) -> list[IssueLine]:
    """Lines for issues the caller already found (the similar ones offered to a reporter), with
    phone numbers and doors taken out of the description."""
    if not ids:
        return []
    rows = await session.execute(
        select(Issue, IssueCategory)
        .join(IssueCategory, col(IssueCategory.id) == col(Issue.category_id))
        .where(col(Issue.id).in_([int(i) for i in ids]))
        .order_by(col(Issue.id))
    )
    return [
        replace(_line(issue, category), description=redact(issue.description))
        for issue, category in rows.all()
    ]


async def resident_by_phone(session: AsyncSession, actor: Actor, raw: str) -> PersonRef | None:
    """A member with this phone number within the actor's staff scope (reporting for a
    resident met at the door); None when the text is not a phone or nobody matches."""
    try:
        phone = normalize_phone(raw)
    except InvalidInput:
        return None
    variants = {phone, phone.removeprefix("+86"), "+86" + phone.removeprefix("+86")}
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name), Unit)
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(col(Member.phone).in_(sorted(variants)))
        .order_by(col(RoleGrant.id))
    )
    scopes = actor.scopes(STAFF_ROLES)
    for member_id, name, unit in rows.all():
        ref = UnitRef.of(unit)
        if member_id is not None and (actor.system or any(ref.within(s) for s in scopes)):
            return PersonRef(int(member_id), str(name), None, ref)
    return None


async def _next_number(
    session: AsyncSession, community: UnitRef, now: datetime, policy: IssuePolicy
) -> str:
    year = now.astimezone(policy.zone).year
    await insert_ignore(
        session,
        IssueCounter,
        {"community_id": community.id, "year": year, "last": 0},
        conflict=["community_id", "year"],
    )
    result = await session.execute(
        update(IssueCounter)
        .where(col(IssueCounter.community_id) == community.id)
        .where(col(IssueCounter.year) == year)
        .values(last=col(IssueCounter.last) + 1)
        .returning(col(IssueCounter.last))
    )
    return f"{community.code.upper()}-{year}-{int(result.scalar_one()):04d}"


async def create_report(
    session: AsyncSession,
    actor: Actor,
    report: NewReport,
    now: datetime,
    policy: IssuePolicy,
) -> IssueView:
    """Record a report, give it its number, start the response deadline and tell the staff
    of its grid (or of its community when the grid is unknown)."""
    if not actor.is_member:
        actor.refuse("report an issue")
    description = clean_description(report.description)
    address = clean_address(report.address) if report.address else None
    _check_location(report.latitude, report.longitude)
    photos = [p for p in report.photos if p]
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput("issues.too_many_photos", limit=MAX_PHOTOS)
    if any(len(p) > 200 for p in photos):
        raise InvalidInput("issues.photo_invalid")
    source = IssueSource(report.source) if report.source else None
    if (source is None) != (report.source_id is None):
        raise InvalidInput("issues.source_invalid")
    on_behalf_note = " ".join(report.on_behalf_note.split()) if report.on_behalf_note else None
    if on_behalf_note and len(on_behalf_note) > BEHALF_NOTE_MAX:
        raise InvalidInput("issues.behalf_too_long", limit=BEHALF_NOTE_MAX)
    on_behalf = report.on_behalf_of is not None or bool(on_behalf_note)
    if on_behalf and source is None and not may_report_for_others(actor):
        # From /report only staff speak for somebody else; a visit or a meeting (whose service
        # checked that the actor may log it) may come from any member, e.g. a volunteer.
        actor.refuse("report on behalf of somebody")

    if source is not None:
        existing = (
            await session.execute(
                select(Issue)
                .where(col(Issue.source) == source.value)
                .where(col(Issue.source_id) == report.source_id)
            )
        ).scalar_one_or_none()
        if existing is not None:
            return await _view(session, existing)

    place = await locate(
        session,
        actor,
        policy,
        unit_id=report.unit_id,
        latitude=report.latitude,
        longitude=report.longitude,
    )
    if place is None:
        raise InvalidInput("issues.place_unknown")
    category = await _category(session, report.category)
    assert category.id is not None
    if not category.active or category.id not in {
        c.id for c in await categories_for(session, place.unit)
    }:
        raise InvalidInput("issues.category_unknown")
    reporter_id = actor.member_id
    if report.on_behalf_of is not None:
        if await session.get(Member, report.on_behalf_of) is None:
            raise NotFound("issues.behalf_unknown")
        reporter_id = report.on_behalf_of

    issue = Issue(
        number=await _next_number(session, place.community, now, policy),
        community_id=place.community.id,
        grid_id=place.grid.id if place.grid else None,
        building_id=place.building.id if place.building else None,
        category_id=category.id,
        priority=report.priority or IssuePriority(category.default_priority),
        status=IssueStatus.new,
        tier=Tier.grid if place.grid else Tier.community,
        description=description,
        address=address,
        latitude=report.latitude,
        longitude=report.longitude,
        anonymous=report.anonymous,
        reported_by=actor.member_id,
        reporter_id=reporter_id,
        on_behalf_note=on_behalf_note,
        source=source,
        source_id=report.source_id,
        created_at=now,
        updated_at=now,
    )
    session.add(issue)
    await session.flush()
    event = await _event(session, issue, EventKind.reported, actor.member_id, now)
    for file_id in photos:
        session.add(
            IssuePhoto(issue_id=event.issue_id, event_id=event.id, file_id=file_id, created_at=now)
        )
    await _plan(session, issue, DueKind.response, now, policy)
    await session.flush()
    view = await _view(session, issue)
    people = await tier_people(session, issue, Tier(issue.tier))
    await _tell(session, people, now, event, actor, lambda t: staff_new_report(t, view, policy))
    if reporter_id is not None and reporter_id != actor.member_id:
        await _tell(
            session, [reporter_id], now, event, actor, lambda t: reporter_reported_for(t, view)
        )
    return view


async def follow(session: AsyncSession, actor: Actor, issue_id: int, now: datetime) -> IssueView:
    """ "This is the same as #…": follow an open issue of one's own grid instead of reporting."""
    issue = await _lock(session, issue_id)
    community, grid = await _issue_units(session, issue)
    place = grid or community
    if actor.member_id is None or not any(
        place.within(g.unit) or g.unit.within(place) for g in actor.grants
    ):
        actor.refuse(f"follow issue {issue.number}", place)
    if IssueStatus(issue.status) not in OPEN_STATUSES:
        raise Conflict("issues.not_open", number=issue.number)
    added = await insert_ignore(
        session,
        IssueFollower,
        {"issue_id": issue.id, "member_id": actor.member_id, "created_at": now},
        conflict=["issue_id", "member_id"],
    )
    if added and actor.member_id not in (issue.reporter_id, issue.reported_by):
        await _event(session, issue, EventKind.followed, actor.member_id, now)
    return await _view(session, issue)


# ---------------------------------------------------------------------------------------------
# Handling


async def _staff_issue(
    session: AsyncSession, actor: Actor, issue_id: int, needs: set[str], action: str
) -> tuple[Issue, UnitRef, UnitRef | None, set[str]]:
    issue = await _lock(session, issue_id)
    community, grid = await _issue_units(session, issue)
    staff = _staff_role_on(actor, community, grid)
    if not staff & needs:
        actor.refuse(f"{action} issue {issue.number}", grid or community)
    return issue, community, grid, staff


def _require_open(issue: Issue) -> IssueStatus:
    status = IssueStatus(issue.status)
    if status not in OPEN_STATUSES:
        raise Conflict("issues.not_open", number=issue.number)
    return status


async def accept(
    session: AsyncSession, actor: Actor, issue_id: int, now: datetime, policy: IssuePolicy
) -> IssueView:
    """受理: the response deadline is met and the handling deadline starts."""
    issue, _, _, _ = await _staff_issue(session, actor, issue_id, {"grid", "coordinator"}, "accept")
    status = IssueStatus(issue.status)
    if status != IssueStatus.new:
        raise Conflict("issues.already_accepted", number=issue.number)
    issue.status = IssueStatus.accepted
    issue.accepted_at = now
    await _plan(session, issue, DueKind.handling, now, policy)
    event = await _event(
        session, issue, EventKind.accepted, actor.member_id, now, from_status=status
    )
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_accepted(t, view))
    return view


async def assignable_people(session: AsyncSession, actor: Actor, issue_id: int) -> list[PersonRef]:
    """Grid staff of the issue's grid and coordinators of its community and street."""
    _, community, grid, _ = await _staff_issue(
        session, actor, issue_id, {"leader", "coordinator"}, "list people to assign"
    )
    path = community.path
    candidates = await _grants(session, GRID_STAFF, [grid.id] if grid else [])
    candidates += await _grants(
        session, {Role.coordinator}, [i for i in _path_ids(path)[UnitKind.street.level :]]
    )
    names = await _member_names(session, candidates)
    people = []
    for member_id in dict.fromkeys(candidates):
        role, unit = await _role_for(session, member_id, community, grid)
        people.append(PersonRef(member_id, names.get(member_id, "?"), role, unit))
    return people


async def assign(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    assignee_id: int,
    now: datetime,
    policy: IssuePolicy,
) -> IssueView:
    """Hand the issue to a person: oneself (grid staff, coordinators) or somebody else of the
    grid or community (grid leader, coordinator). Accepts a new issue on the way."""
    issue, community, grid, staff = await _staff_issue(
        session, actor, issue_id, {"grid", "coordinator"}, "assign"
    )
    status = _require_open(issue)
    if assignee_id != actor.member_id:
        if not staff & {"leader", "coordinator"}:
            actor.refuse(f"assign issue {issue.number} to somebody else", grid or community)
        allowed = await _grants(session, GRID_STAFF, [grid.id] if grid else [])
        allowed += await _grants(
            session, {Role.coordinator}, _path_ids(community.path)[UnitKind.street.level :]
        )
        if assignee_id not in allowed:
            actor.refuse(f"assign issue {issue.number} to member {assignee_id}", grid or community)
    if issue.assignee_id == assignee_id and status != IssueStatus.new:
        raise Conflict("issues.already_assigned", number=issue.number)
    if status == IssueStatus.new:
        issue.status = IssueStatus.accepted
        issue.accepted_at = now
        await _plan(session, issue, DueKind.handling, now, policy)
        await _event(session, issue, EventKind.accepted, actor.member_id, now, from_status=status)
        status = IssueStatus.accepted
    issue.assignee_id = assignee_id
    if status != IssueStatus.in_progress:
        issue.status = IssueStatus.assigned
    event = await _event(
        session,
        issue,
        EventKind.assigned,
        actor.member_id,
        now,
        from_status=status,
        target_id=assignee_id,
    )
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_assigned(t, view))
    if assignee_id != actor.member_id:
        await _tell(
            session, [assignee_id], now, event, actor, lambda t: staff_assigned(t, view, policy)
        )
    return view


async def start(session: AsyncSession, actor: Actor, issue_id: int, now: datetime) -> IssueView:
    issue = await _lock(session, issue_id)
    if actor.member_id is None or issue.assignee_id != actor.member_id:
        community, grid = await _issue_units(session, issue)
        actor.refuse(f"start issue {issue.number}", grid or community)
    status = _require_open(issue)
    if status not in (IssueStatus.assigned, IssueStatus.reopened):
        raise Conflict("issues.already_started", number=issue.number)
    issue.status = IssueStatus.in_progress
    event = await _event(
        session, issue, EventKind.started, actor.member_id, now, from_status=status
    )
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_started(t, view))
    return view


async def resolve(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    note: str,
    now: datetime,
    policy: IssuePolicy,
    *,
    photo: str | None = None,
) -> IssueView:
    """办结: the handler (or their grid leader / coordinator) records what was done; the
    reporter gets the note and photo and is asked to rate."""
    issue = await _lock(session, issue_id)
    community, grid = await _issue_units(session, issue)
    staff = _staff_role_on(actor, community, grid)
    is_assignee = actor.member_id is not None and issue.assignee_id == actor.member_id
    if not is_assignee and not staff & {"leader", "coordinator"}:
        actor.refuse(f"resolve issue {issue.number}", grid or community)
    status = _require_open(issue)
    if status == IssueStatus.new:
        raise Conflict("issues.accept_first", number=issue.number)
    cleaned = note.strip()
    if not cleaned:
        raise InvalidInput("issues.note_empty")
    if len(cleaned) > NOTE_MAX:
        raise InvalidInput("issues.note_too_long", limit=NOTE_MAX)
    issue.status = IssueStatus.resolved
    issue.resolved_at = now
    issue.resolution_note = cleaned
    if issue.assignee_id is None:
        issue.assignee_id = actor.member_id
    await _plan(session, issue, DueKind.rating, now, policy)
    event = await _event(
        session, issue, EventKind.resolved, actor.member_id, now, from_status=status, note=cleaned
    )
    if photo:
        session.add(
            IssuePhoto(
                issue_id=event.issue_id,
                event_id=event.id,
                file_id=photo[:200],
                resolution=True,
                created_at=now,
            )
        )
        await session.flush()
    view = await _view(session, issue)
    if issue.reporter_id is not None:
        await _tell(
            session,
            [issue.reporter_id],
            now,
            event,
            actor,
            lambda t: reporter_resolved(t, view, photo, rate=True),
        )
    await _tell(
        session,
        await _followers(session, issue),
        now,
        event,
        actor,
        lambda t: reporter_resolved(t, view, photo, rate=False),
    )
    return view


async def reject(
    session: AsyncSession, actor: Actor, issue_id: int, reason: str, now: datetime
) -> IssueView:
    issue, _, _, _ = await _staff_issue(session, actor, issue_id, {"grid", "coordinator"}, "reject")
    status = _require_open(issue)
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InvalidInput("issues.reason_empty")
    if len(cleaned) > REASON_MAX:
        raise InvalidInput("issues.reason_too_long", limit=REASON_MAX)
    issue.status = IssueStatus.rejected
    issue.reject_reason = cleaned
    issue.closed_at = now
    issue.deadline_seq += 1
    issue.due_at, issue.due_kind = None, None
    event = await _event(
        session, issue, EventKind.rejected, actor.member_id, now, from_status=status, note=cleaned
    )
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_rejected(t, view))
    return view


async def mark_duplicate(
    session: AsyncSession, actor: Actor, issue_id: int, original_number: str, now: datetime
) -> IssueView:
    """Close a report as the same as an earlier one; its reporter and followers follow that one."""
    original_id = await issue_id_by_number(session, original_number)
    if original_id == issue_id:
        raise InvalidInput("issues.duplicate_of_itself")
    first, second = sorted((issue_id, original_id))
    await _lock(session, first)
    await _lock(session, second)
    issue, _, _, _ = await _staff_issue(
        session, actor, issue_id, {"grid", "coordinator"}, "mark duplicate"
    )
    original, _, _, _ = await _staff_issue(
        session, actor, original_id, {"grid", "coordinator"}, "link a duplicate to"
    )
    status = _require_open(issue)
    if IssueStatus(original.status) in (IssueStatus.rejected, IssueStatus.duplicate):
        raise InvalidInput("issues.duplicate_target_closed", number=original.number)
    if original.duplicate_of_id == issue.id:
        raise InvalidInput("issues.duplicate_of_itself")
    issue.status = IssueStatus.duplicate
    issue.duplicate_of_id = original.id
    issue.closed_at = now
    issue.deadline_seq += 1
    issue.due_at, issue.due_kind = None, None
    event = await _event(
        session,
        issue,
        EventKind.duplicate,
        actor.member_id,
        now,
        from_status=status,
        note=original.number,
    )
    movers = [m for m in [issue.reporter_id, *await _followers(session, issue)] if m is not None]
    for member_id in dict.fromkeys(movers):
        if member_id not in (original.reporter_id, original.reported_by):
            added = await insert_ignore(
                session,
                IssueFollower,
                {"issue_id": original.id, "member_id": member_id, "created_at": now},
                conflict=["issue_id", "member_id"],
            )
            if added:
                await _event(session, original, EventKind.followed, member_id, now)
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_duplicate(t, view))
    return view


async def departments_for(session: AsyncSession, actor: Actor, issue_id: int) -> list[PersonRef]:
    """Department liaisons whose scope covers the issue (whom a coordinator can whistle)."""
    issue, community, grid, _ = await _staff_issue(
        session, actor, issue_id, {"coordinator"}, "list departments for"
    )
    people = await _department_people(session, issue)
    names = await _member_names(session, people)
    result = []
    for member_id in people:
        role, unit = await _role_for(session, member_id, community, grid)
        result.append(PersonRef(member_id, names.get(member_id, "?"), role, unit))
    return result


async def whistle(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    department_member_id: int,
    now: datetime,
    policy: IssuePolicy,
) -> IssueView:
    """吹哨: a coordinator calls a department in; it must report in before its deadline."""
    issue, community, grid, _ = await _staff_issue(
        session, actor, issue_id, {"coordinator"}, "whistle"
    )
    status = _require_open(issue)
    if department_member_id not in await _department_people(session, issue):
        actor.refuse(f"whistle member {department_member_id}", grid or community)
    if issue.department_id == department_member_id and issue.reported_in_at is None:
        raise Conflict("issues.already_whistled", number=issue.number)
    issue.tier = Tier.department
    issue.department_id = department_member_id
    issue.whistled_by = actor.member_id
    issue.reported_in_at = None
    await _plan(session, issue, DueKind.report_in, now, policy)
    event = await _event(
        session,
        issue,
        EventKind.whistled,
        actor.member_id,
        now,
        from_status=status,
        target_id=department_member_id,
    )
    view = await _view(session, issue)
    await _tell(
        session,
        [department_member_id],
        now,
        event,
        actor,
        lambda t: staff_whistled(t, view, policy),
    )
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_whistled(t, view))
    return view


async def report_in(
    session: AsyncSession, actor: Actor, issue_id: int, now: datetime, policy: IssuePolicy
) -> IssueView:
    """报到: the department takes the issue over; of two liaisons the first one wins."""
    issue = await _lock(session, issue_id)
    community, grid = await _issue_units(session, issue)
    if "department" not in _staff_role_on(actor, community, grid) or issue.department_id not in (
        None,
        actor.member_id,
    ):
        actor.refuse(f"report in for issue {issue.number}", grid or community)
    status = _require_open(issue)
    if Tier(issue.tier) != Tier.department or issue.reported_in_at is not None:
        raise Conflict("issues.already_reported_in", number=issue.number)
    issue.reported_in_at = now
    issue.department_id = actor.member_id
    issue.assignee_id = actor.member_id
    if status == IssueStatus.new:
        issue.accepted_at = now
    issue.status = IssueStatus.assigned
    await _plan(session, issue, DueKind.handling, now, policy)
    event = await _event(
        session, issue, EventKind.reported_in, actor.member_id, now, from_status=status
    )
    view = await _view(session, issue)
    await _tell_public(session, issue, now, event, actor, lambda t: reporter_assigned(t, view))
    if issue.whistled_by is not None:
        await _tell(
            session, [issue.whistled_by], now, event, actor, lambda t: staff_reported_in(t, view)
        )
    return view


async def set_priority(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    priority: IssuePriority,
    now: datetime,
    policy: IssuePolicy,
) -> IssueView:
    """Mark urgent (or back to normal). Urgent deadlines apply from now where they are sooner;
    a running deadline is never moved later."""
    issue, _, _, _ = await _staff_issue(
        session, actor, issue_id, {"grid", "coordinator"}, "change priority"
    )
    status = _require_open(issue)
    if IssuePriority(issue.priority) == priority:
        raise Conflict("issues.priority_unchanged")
    issue.priority = priority
    if priority == IssuePriority.urgent and issue.due_kind in (
        DueKind.response.value,
        DueKind.handling.value,
    ):
        kind = DueKind(issue.due_kind)
        sooner, _ = await _schedule(session, issue, kind, now, policy)
        if issue.due_at is None or sooner < issue.due_at:
            await _plan(session, issue, kind, now, policy)
    await _event(
        session,
        issue,
        EventKind.priority,
        actor.member_id,
        now,
        from_status=status,
        note=priority.value,
    )
    return await _view(session, issue)


async def change_category(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    category: str | int,
    now: datetime,
) -> IssueView:
    """Put an open issue in another category (the deadlines already running stay): staff of
    its grid or community, or whoever entered it while it is still new — e.g. a visitor who
    handed on the needs found at a door and now picks the right category."""
    issue = await _lock(session, issue_id)
    community, grid = await _issue_units(session, issue)
    staff = _staff_role_on(actor, community, grid) & {"grid", "coordinator"}
    status = _require_open(issue)
    entered = actor.member_id is not None and actor.member_id == issue.reported_by
    if not staff and not (entered and status == IssueStatus.new):
        actor.refuse(f"change category of issue {issue.number}", grid or community)
    found = await _category(session, category)
    assert found.id is not None
    building = await _unit(session, issue.building_id)
    if not found.active or found.id not in {
        c.id for c in await categories_for(session, building or grid or community)
    }:
        raise InvalidInput("issues.category_unknown")
    if found.id != issue.category_id:
        issue.category_id = found.id
        await _event(
            session,
            issue,
            EventKind.category,
            actor.member_id,
            now,
            from_status=status,
            note=found.code,
        )
    return await _view(session, issue)


async def rate(
    session: AsyncSession,
    actor: Actor,
    issue_id: int,
    cycle: int,
    rating: Rating,
    now: datetime,
    policy: IssuePolicy,
) -> IssueView:
    """满意 / 基本满意 close the issue; 不满意 reopens it and tells the tier above the handler."""
    issue = await _lock(session, issue_id)
    if actor.member_id is None or actor.member_id != issue.reporter_id:
        community, grid = await _issue_units(session, issue)
        actor.refuse(f"rate issue {issue.number}", grid or community)
    status = IssueStatus(issue.status)
    if status != IssueStatus.resolved or cycle != issue.cycle:
        raise Conflict("issues.already_rated", number=issue.number)
    issue.rating = rating
    rated = await _event(
        session, issue, EventKind.rated, actor.member_id, now, from_status=status, note=rating.value
    )
    if rating == Rating.unsatisfied:
        issue.status = IssueStatus.reopened
        issue.cycle += 1
        issue.resolved_at = None
        await _plan(session, issue, DueKind.handling, now, policy)
        event = await _event(
            session, issue, EventKind.reopened, actor.member_id, now, from_status=status
        )
        view = await _view(session, issue)
        superior = Tier(issue.tier).above or Tier.street
        people = [issue.assignee_id] if issue.assignee_id else []
        people += await tier_people(session, issue, superior)
        await _tell(session, people, now, event, actor, lambda t: staff_reopened(t, view, policy))
        await _tell(
            session,
            await _followers(session, issue),
            now,
            event,
            actor,
            lambda t: reporter_reopened(t, view),
        )
        return view
    issue.status = IssueStatus.closed
    issue.closed_at = now
    issue.close_reason = CloseReason.rated
    await _plan(session, issue, None, now, policy)
    event = await _event(session, issue, EventKind.closed, actor.member_id, now, from_status=status)
    view = await _view(session, issue)
    if issue.assignee_id:
        await _tell(session, [issue.assignee_id], now, rated, actor, lambda t: staff_rated(t, view))
    await _tell(
        session,
        await _followers(session, issue),
        now,
        event,
        actor,
        lambda t: reporter_closed(t, view),
    )
    return view


# ---------------------------------------------------------------------------------------------
# Lists: queue, my reports, board


def _staff_scope(actor: Actor) -> tuple[list[int], list[UnitRef]]:
    grids = [
        g.unit.id for g in actor.grants if g.role in GRID_STAFF and g.unit.kind == UnitKind.grid
    ]
    wide = [
        g.unit
        for g in actor.grants
        if g.role in (Role.coordinator, Role.admin) and g.unit.kind.level <= UnitKind.grid.level
    ]
    return grids, wide


async def _scope_clause(
    session: AsyncSession, actor: Actor
) -> tuple[Any | None, list[int], list[int]]:
    grids, wide = _staff_scope(actor)
    communities_in: list[int] = []
    for unit in wide:
        if unit.kind == UnitKind.grid:
            grids.append(unit.id)
        elif unit.kind == UnitKind.community:
            communities_in.append(unit.id)
        else:
            rows = await session.execute(
                select(col(Unit.id))
                .where(col(Unit.kind) == UnitKind.community.value)
                .where(col(Unit.path).startswith(unit.path))
            )
            communities_in += [int(i) for i in rows.scalars() if i is not None]
    department_communities: list[int] = []
    for grant in actor.grants:
        if grant.role == Role.department:
            rows = await session.execute(
                select(col(Unit.id))
                .where(col(Unit.kind) == UnitKind.community.value)
                .where(col(Unit.path).startswith(grant.unit.path))
            )
            department_communities += [int(i) for i in rows.scalars() if i is not None]
    clauses = []
    if grids:
        clauses.append(col(Issue.grid_id).in_(sorted(set(grids))))
    if communities_in:
        clauses.append(col(Issue.community_id).in_(sorted(set(communities_in))))
    return (
        (or_(*clauses) if clauses else None),
        sorted(set(communities_in)),
        sorted(set(department_communities)),
    )


def may_see_queue(actor: Actor) -> bool:
    return actor.system or bool(actor.roles & (STAFF_ROLES | {Role.department, Role.admin}))


async def _queue_query(session: AsyncSession, actor: Actor, tab: str, now: datetime) -> Any | None:
    scope, _, department_communities = await _scope_clause(session, actor)
    open_values = [s.value for s in OPEN_STATUSES]
    me = actor.member_id
    department_new = None
    if department_communities:
        department_new = and_(
            col(Issue.community_id).in_(department_communities),
            col(Issue.status).in_(open_values),
            col(Issue.tier) == Tier.department.value,
            col(Issue.reported_in_at).is_(None),
            or_(col(Issue.department_id).is_(None), col(Issue.department_id) == me),
        )
    if tab == "new":
        parts = []
        if scope is not None:
            parts.append(and_(scope, col(Issue.status) == IssueStatus.new.value))
        if department_new is not None:
            parts.append(department_new)
        return or_(*parts) if parts else None
    if tab == "mine":
        if me is None:
            return None
        return and_(col(Issue.assignee_id) == me, col(Issue.status).in_(open_values))
    if tab == "overdue":
        parts = []
        if scope is not None:
            parts.append(scope)
        if me is not None:
            parts.append(col(Issue.assignee_id) == me)
            parts.append(col(Issue.department_id) == me)
        if department_new is not None:
            parts.append(department_new)
        if not parts:
            return None
        return and_(
            or_(*parts),
            col(Issue.status).in_(open_values),
            col(Issue.due_at) < now,
        )
    raise InvalidInput("core.stale_button")


QUEUE_TABS = ("new", "mine", "overdue")


async def queue(
    session: AsyncSession, actor: Actor, tab: str, now: datetime, *, limit: int = QUEUE_LIMIT
) -> tuple[list[IssueLine], QueueCounts]:
    """A handler's queue: new (to accept / report in), mine (assigned to me), overdue."""
    if not may_see_queue(actor):
        actor.refuse("see the issue queue")
    counts = []
    lines: list[IssueLine] = []
    for name in QUEUE_TABS:
        clause = await _queue_query(session, actor, name, now)
        if clause is None:
            counts.append(0)
            continue
        counts.append(
            int(
                (
                    await session.execute(select(func.count()).select_from(Issue).where(clause))
                ).scalar_one()
            )
        )
        if name == tab:
            rows = await session.execute(
                select(Issue, IssueCategory)
                .join(IssueCategory, col(IssueCategory.id) == col(Issue.category_id))
                .where(clause)
                .order_by(col(Issue.due_at).is_(None), col(Issue.due_at), col(Issue.id))
                .limit(limit)
            )
            lines = [_line(issue, category) for issue, category in rows.all()]
    if tab not in QUEUE_TABS:
        raise InvalidInput("core.stale_button")
    return lines, QueueCounts(*counts)


async def my_reports(session: AsyncSession, actor: Actor, *, limit: int = 10) -> list[IssueLine]:
    """The person's own recent reports and the ones they follow."""
    me = actor.member_id
    if me is None:
        return []
    followed = select(col(IssueFollower.issue_id)).where(col(IssueFollower.member_id) == me)
    rows = await session.execute(
        select(Issue, IssueCategory)
        .join(IssueCategory, col(IssueCategory.id) == col(Issue.category_id))
        .where(
            or_(
                col(Issue.reporter_id) == me,
                col(Issue.reported_by) == me,
                col(Issue.id).in_(followed),
            )
        )
        .order_by(col(Issue.id).desc())
        .limit(limit)
    )
    return [_line(issue, category) for issue, category in rows.all()]


async def board_unit(session: AsyncSession, actor: Actor) -> UnitRef | None:
    """The grid (or community…) whose board a person sees: their most specific place, a
    building counting as its grid."""
    best: UnitRef | None = None
    for grant in actor.grants:
        if best is None or grant.unit.kind.level > best.kind.level:
            best = grant.unit
    if best is not None and best.kind == UnitKind.building:
        return await _unit(session, _ancestor_id(best.path, UnitKind.grid))
    return best


async def board(session: AsyncSession, actor: Actor, now: datetime, policy: IssuePolicy) -> Board:
    """公示反馈: recently resolved issues of one's grid: category, building, dates, rating.
    No free text: a description or a note may name a neighbour, which no filter can catch."""
    unit = await board_unit(session, actor)
    if unit is None:
        raise InvalidInput("issues.board_no_grid")
    since = now - timedelta(days=policy.board_days)
    query = (
        select(Issue, IssueCategory)
        .join(IssueCategory, col(IssueCategory.id) == col(Issue.category_id))
        .where(col(Issue.resolved_at) >= since)
        .where(col(Issue.status).in_([IssueStatus.resolved.value, IssueStatus.closed.value]))
        .order_by(col(Issue.resolved_at).desc())
        .limit(BOARD_LIMIT)
    )
    if unit.kind == UnitKind.grid:
        query = query.where(col(Issue.grid_id) == unit.id)
    elif unit.kind == UnitKind.community:
        query = query.where(col(Issue.community_id) == unit.id)
    else:
        rows = await session.execute(
            select(col(Unit.id))
            .where(col(Unit.kind) == UnitKind.community.value)
            .where(col(Unit.path).startswith(unit.path))
        )
        query = query.where(
            col(Issue.community_id).in_([int(i) for i in rows.scalars() if i is not None])
        )
    found = (await session.execute(query)).all()
    places = await _units(session, [i.building_id or i.grid_id or i.community_id for i, _ in found])
    entries = []
    for issue, category in found:
        assert issue.resolved_at is not None
        entries.append(
            BoardEntry(
                issue.number,
                _category_view(category),
                places[issue.building_id or issue.grid_id or issue.community_id],
                issue.created_at,
                issue.resolved_at,
                Rating(issue.rating)
                if issue.rating and issue.status == IssueStatus.closed
                else None,
            )
        )
    return Board(unit, policy.board_days, tuple(entries))


# ---------------------------------------------------------------------------------------------
# Due timers (called by jobs/issues.py)


MAX_TIMER_ATTEMPTS = 5
TIMER_RETRY = timedelta(minutes=1)
"""A timer whose action failed is tried again a minute later, five times at most."""


@dataclass(frozen=True)
class TimerOutcome:
    timer_id: int
    issue_id: int
    kind: TimerKind
    status: TimerStatus


async def fire_due_timers(
    session: AsyncSession, now: datetime, policy: IssuePolicy, *, limit: int = 100
) -> list[TimerOutcome]:
    """Claim due timers (``SKIP LOCKED``: another process takes others), act on each and mark
    it done, all in the caller's transaction. Issues are locked in id order, so two processes
    never wait on each other in a circle."""
    claimed = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(IssueTimer)
                    .where(col(IssueTimer.status) == TimerStatus.pending.value)
                    .where(col(IssueTimer.due_at) <= now)
                    .order_by(col(IssueTimer.due_at), col(IssueTimer.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    outcomes = []
    for timer in sorted(claimed, key=lambda t: (t.issue_id, t.due_at, t.id)):
        assert timer.id is not None
        try:
            async with session.begin_nested():
                status = await _fire(session, timer, now, policy)
        except Exception as error:
            log.exception("issue timer %s (%s) failed", timer.id, timer.kind)
            timer.attempts += 1
            timer.error = str(error)[:300]
            if timer.attempts < MAX_TIMER_ATTEMPTS:
                timer.due_at = now + TIMER_RETRY
                outcomes.append(
                    TimerOutcome(
                        timer.id, timer.issue_id, TimerKind(timer.kind), TimerStatus.pending
                    )
                )
                continue
            status = TimerStatus.failed
        timer.status = status
        timer.done_at = now
        outcomes.append(TimerOutcome(timer.id, timer.issue_id, TimerKind(timer.kind), status))
    await session.flush()
    return outcomes


_SYSTEM = Actor.cli()


async def _fire(
    session: AsyncSession, timer: IssueTimer, now: datetime, policy: IssuePolicy
) -> TimerStatus:
    issue = await _lock(session, timer.issue_id)
    status = IssueStatus(issue.status)
    kind = TimerKind(timer.kind)
    if timer.seq != issue.deadline_seq:
        return TimerStatus.obsolete
    expected = {
        TimerKind.response_reminder: {IssueStatus.new},
        TimerKind.response_breach: {IssueStatus.new},
        TimerKind.handling_reminder: HANDLING_STATUSES,
        TimerKind.handling_breach: HANDLING_STATUSES,
        TimerKind.report_in_reminder: OPEN_STATUSES,
        TimerKind.report_in_breach: OPEN_STATUSES,
        TimerKind.rating_timeout: {IssueStatus.resolved},
    }[kind]
    if status not in expected:
        return TimerStatus.obsolete
    if kind in (TimerKind.report_in_reminder, TimerKind.report_in_breach) and (
        issue.reported_in_at is not None or Tier(issue.tier) != Tier.department
    ):
        return TimerStatus.obsolete
    if kind in (
        TimerKind.response_reminder,
        TimerKind.handling_reminder,
        TimerKind.report_in_reminder,
    ):
        if issue.due_at is None or issue.due_at <= now:
            return TimerStatus.obsolete
        await _remind(session, issue, kind, now, policy)
    elif kind == TimerKind.rating_timeout:
        await _close_unanswered(session, issue, now, policy)
    elif kind == TimerKind.report_in_breach:
        await _overdue_at_top(session, issue, now, DueKind.report_in)
    else:
        await _climb(session, issue, now, policy)
    return TimerStatus.done


async def _remind(
    session: AsyncSession, issue: Issue, kind: TimerKind, now: datetime, policy: IssuePolicy
) -> None:
    if kind == TimerKind.handling_reminder and issue.assignee_id:
        people = [issue.assignee_id]
    else:
        people = await tier_people(session, issue, Tier(issue.tier))
    event = await _event(session, issue, EventKind.reminded, None, now, note=kind.value)
    view = await _view(session, issue)
    await _tell(
        session, people, now, event, _SYSTEM, lambda t: staff_reminder(t, view, policy, now)
    )


async def _climb(session: AsyncSession, issue: Issue, now: datetime, policy: IssuePolicy) -> None:
    """A deadline passed: the issue climbs one tier and the new tier is told."""
    phase = DueKind(issue.due_kind) if issue.due_kind else DueKind.handling
    current = Tier(issue.tier)
    target = current.above
    if target is None:
        await _overdue_at_top(session, issue, now, phase)
        return
    if target == Tier.department:
        if not await _department_people(session, issue):
            await _overdue_at_top(session, issue, now, phase)
            return
        issue.tier = Tier.department
        issue.department_id = None
        issue.reported_in_at = None
        await _plan(session, issue, DueKind.report_in, now, policy)
    else:
        issue.tier = target
        await _plan(session, issue, phase, now, policy)
    event = await _event(
        session,
        issue,
        EventKind.escalated,
        None,
        now,
        from_status=IssueStatus(issue.status),
        note=phase.value,
    )
    view = await _view(session, issue)
    people = await tier_people(session, issue, Tier(issue.tier))
    await _tell(
        session, people, now, event, _SYSTEM, lambda t: staff_escalated(t, view, phase, policy)
    )


async def _overdue_at_top(
    session: AsyncSession, issue: Issue, now: datetime, phase: DueKind
) -> None:
    """Nowhere left to climb (or no department in scope): the street and whoever whistled
    are told that the issue is overdue; the issue stays where it is."""
    event = await _event(session, issue, EventKind.overdue, None, now, note=phase.value)
    view = await _view(session, issue)
    people = await tier_people(session, issue, Tier.street)
    if issue.whistled_by:
        people.append(issue.whistled_by)
    await _tell(session, people, now, event, _SYSTEM, lambda t: staff_overdue(t, view, phase))


async def _close_unanswered(
    session: AsyncSession, issue: Issue, now: datetime, policy: IssuePolicy
) -> None:
    status = IssueStatus(issue.status)
    issue.status = IssueStatus.closed
    issue.closed_at = now
    issue.close_reason = CloseReason.no_answer
    await _plan(session, issue, None, now, policy)
    event = await _event(
        session, issue, EventKind.closed, None, now, from_status=status, note="no_answer"
    )
    view = await _view(session, issue)
    await _tell_public(
        session, issue, now, event, _SYSTEM, lambda t: reporter_closed_unrated(t, view)
    )


# ---------------------------------------------------------------------------------------------
# Notifications (written in the recipient's language, through the outbox)


Render = Callable[[Translator], Message | Sequence[Message]]


async def _followers(session: AsyncSession, issue: Issue) -> list[int]:
    rows = await session.execute(
        select(col(IssueFollower.member_id))
        .where(col(IssueFollower.issue_id) == issue.id)
        .order_by(col(IssueFollower.created_at))
    )
    return [int(m) for m in rows.scalars()]


async def _tell(
    session: AsyncSession,
    members: Iterable[int | None],
    now: datetime,
    event: IssueEvent,
    actor: Actor,
    render: Render,
) -> None:
    """Queue ``render(t)`` for each member once per event (never to the actor themselves)."""
    for member_id in dict.fromkeys(m for m in members if m is not None):
        if member_id == actor.member_id:
            continue
        await notify(
            session,
            member_id,
            now,
            render,
            dedupe_key=f"issue-event:{event.id}:{member_id}",
            source=f"issue:{event.issue_id}",
        )


async def _tell_public(
    session: AsyncSession,
    issue: Issue,
    now: datetime,
    event: IssueEvent,
    actor: Actor,
    render: Render,
) -> None:
    """A public step: the reporter and everyone following the issue are told."""
    people = [issue.reporter_id, *await _followers(session, issue)]
    await _tell(session, people, now, event, actor, render)


def category_label(t: Translator, category: CategoryView) -> str:
    return category.label(t.locale)


def place_label(t: Translator, view: IssueView) -> str:
    parts = [view.community.label(t.locale)]
    if view.grid:
        parts.append(view.grid.label(t.locale))
    if view.building:
        parts.append(view.building.label(t.locale))
    return " · ".join(parts)


def open_button(t: Translator, issue_id: int) -> Button:
    return Button(t("issues.button_open"), payload=f"{ISSUE_BUTTON}:open:{issue_id}")


def rating_buttons(t: Translator, view: IssueView) -> Keyboard:
    base = f"{RATE_BUTTON}:{view.id}:{view.cycle}"
    return (
        (
            Button(t("issues.rating_satisfied"), payload=f"{base}:s"),
            Button(t("issues.rating_basic"), payload=f"{base}:b"),
            Button(t("issues.rating_unsatisfied"), payload=f"{base}:u"),
        ),
    )


def handler_label(t: Translator, person: PersonRef | None) -> str:
    """How the reporter learns who handles it: the role and unit, never the name."""
    if person is None or person.role is None:
        return t("issues.handler_staff")
    role = t(ROLE_KEYS[person.role])
    return f"{person.unit.label(t.locale)} {role}" if person.unit else role


ROLE_KEYS = {
    Role.resident: N_("role.resident"),
    Role.volunteer: N_("role.volunteer"),
    Role.grid_worker: N_("role.grid_worker"),
    Role.grid_leader: N_("role.grid_leader"),
    Role.coordinator: N_("role.coordinator"),
    Role.department: N_("role.department"),
    Role.admin: N_("role.admin"),
}

TIER_KEYS = {
    Tier.grid: N_("issues.tier_grid"),
    Tier.community: N_("issues.tier_community"),
    Tier.street: N_("issues.tier_street"),
    Tier.department: N_("issues.tier_department"),
}

STATUS_KEYS = {
    IssueStatus.new: N_("issues.status_new"),
    IssueStatus.accepted: N_("issues.status_accepted"),
    IssueStatus.assigned: N_("issues.status_assigned"),
    IssueStatus.in_progress: N_("issues.status_in_progress"),
    IssueStatus.resolved: N_("issues.status_resolved"),
    IssueStatus.closed: N_("issues.status_closed"),
    IssueStatus.rejected: N_("issues.status_rejected"),
    IssueStatus.duplicate: N_("issues.status_duplicate"),
    IssueStatus.reopened: N_("issues.status_reopened"),
}

RATING_KEYS = {
    Rating.satisfied: N_("issues.rating_satisfied"),
    Rating.basic: N_("issues.rating_basic"),
    Rating.unsatisfied: N_("issues.rating_unsatisfied"),
}

DUE_KEYS = {
    DueKind.response: N_("issues.due_response"),
    DueKind.handling: N_("issues.due_handling"),
    DueKind.report_in: N_("issues.due_report_in"),
    DueKind.rating: N_("issues.due_rating"),
}


def _headline(t: Translator, view: IssueView) -> str:
    urgent = t("issues.urgent_mark") if view.priority == IssuePriority.urgent else ""
    return f"{urgent}{view.number} · {category_label(t, view.category)}"


def staff_new_report(t: Translator, view: IssueView, policy: IssuePolicy) -> Message:
    lines = [
        t("issues.notify_new", headline=_headline(t, view)),
        place_label(t, view),
        shorten(view.description, 300),
    ]
    if view.photos:
        lines.append(t("issues.photo_count", count=len(view.photos)))
    lines.append(t("issues.respond_by", time=fmt_time(t, view.due_at, policy.zone)))
    return Text(
        "\n".join(lines),
        (
            (
                Button(t("issues.button_accept"), payload=f"{ISSUE_BUTTON}:acc:{view.id}"),
                open_button(t, view.id),
            ),
        ),
    )


def staff_assigned(t: Translator, view: IssueView, policy: IssuePolicy) -> Message:
    return Text(
        "\n".join(
            [
                t("issues.notify_assigned", headline=_headline(t, view)),
                place_label(t, view),
                shorten(view.description, 300),
                t("issues.handle_by", time=fmt_time(t, view.due_at, policy.zone)),
            ]
        ),
        (
            (
                Button(t("issues.button_start"), payload=f"{ISSUE_BUTTON}:start:{view.id}"),
                Button(t("issues.button_resolve"), payload=f"{ISSUE_BUTTON}:res:{view.id}"),
                open_button(t, view.id),
            ),
        ),
    )


def staff_whistled(t: Translator, view: IssueView, policy: IssuePolicy) -> Message:
    return Text(
        "\n".join(
            [
                t("issues.notify_whistled", headline=_headline(t, view)),
                place_label(t, view),
                shorten(view.description, 300),
                t("issues.report_in_by", time=fmt_time(t, view.due_at, policy.zone)),
            ]
        ),
        (
            (
                Button(t("issues.button_report_in"), payload=f"{ISSUE_BUTTON}:rin:{view.id}"),
                open_button(t, view.id),
            ),
        ),
    )


def staff_reported_in(t: Translator, view: IssueView) -> Message:
    return Text(
        t("issues.notify_reported_in", headline=_headline(t, view)),
        ((open_button(t, view.id),),),
    )


def staff_reminder(t: Translator, view: IssueView, policy: IssuePolicy, now: datetime) -> Message:
    minutes = max(1, int(((view.due_at or now) - now).total_seconds() // 60))
    what = t(DUE_KEYS[view.due_kind or DueKind.handling])
    return Text(
        t(
            "issues.notify_reminder",
            headline=_headline(t, view),
            what=what,
            time=fmt_time(t, view.due_at, policy.zone),
            minutes=minutes,
        ),
        ((open_button(t, view.id),),),
    )


def staff_escalated(t: Translator, view: IssueView, phase: DueKind, policy: IssuePolicy) -> Message:
    buttons: list[Button] = []
    if view.tier == Tier.department:
        buttons.append(
            Button(t("issues.button_report_in"), payload=f"{ISSUE_BUTTON}:rin:{view.id}")
        )
    elif view.status == IssueStatus.new:
        buttons.append(Button(t("issues.button_accept"), payload=f"{ISSUE_BUTTON}:acc:{view.id}"))
    buttons.append(open_button(t, view.id))
    return Text(
        "\n".join(
            [
                t(
                    "issues.notify_escalated",
                    headline=_headline(t, view),
                    what=t(DUE_KEYS[phase]),
                    tier=t(TIER_KEYS[view.tier]),
                ),
                place_label(t, view),
                shorten(view.description, 300),
                t(
                    "issues.next_deadline",
                    what=t(DUE_KEYS[view.due_kind or phase]),
                    time=fmt_time(t, view.due_at, policy.zone),
                ),
            ]
        ),
        (tuple(buttons),),
    )


def staff_overdue(t: Translator, view: IssueView, phase: DueKind) -> Message:
    return Text(
        t(
            "issues.notify_overdue",
            headline=_headline(t, view),
            what=t(DUE_KEYS[phase]),
            tier=t(TIER_KEYS[view.tier]),
        ),
        ((open_button(t, view.id),),),
    )


def staff_reopened(t: Translator, view: IssueView, policy: IssuePolicy) -> Message:
    return Text(
        "\n".join(
            [
                t("issues.notify_reopened", headline=_headline(t, view)),
                t("issues.handle_by", time=fmt_time(t, view.due_at, policy.zone)),
            ]
        ),
        ((open_button(t, view.id),),),
    )


def staff_rated(t: Translator, view: IssueView) -> Message:
    rating = t(RATING_KEYS[view.rating]) if view.rating else "—"
    return Text(t("issues.notify_rated", headline=_headline(t, view), rating=rating))


def reporter_reported_for(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_reported_for", number=view.number), ((open_button(t, view.id),),))


def reporter_accepted(t: Translator, view: IssueView) -> Message:
    return Text(
        t(
            "issues.told_accepted",
            number=view.number,
            unit=(view.grid or view.community).label(t.locale),
        )
    )


def reporter_assigned(t: Translator, view: IssueView) -> Message:
    return Text(
        t("issues.told_assigned", number=view.number, handler=handler_label(t, view.assignee))
    )


def reporter_started(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_started", number=view.number))


def reporter_resolved(
    t: Translator, view: IssueView, photo: str | None, *, rate: bool
) -> Message | list[Message]:
    text = t(
        "issues.told_resolved",
        number=view.number,
        note=shorten(view.resolution_note or "", 700),
    )
    if rate:
        text += "\n\n" + t("issues.ask_rating")
    buttons = rating_buttons(t, view) if rate else ()
    if photo:
        return Photo(file_id=photo, caption=text, buttons=buttons)
    return Text(text, buttons)


def reporter_reopened(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_reopened", number=view.number))


def reporter_closed(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_closed", number=view.number))


def reporter_closed_unrated(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_closed_unrated", number=view.number))


def reporter_rejected(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_rejected", number=view.number, reason=view.reject_reason or ""))


def reporter_duplicate(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_duplicate", number=view.number, original=view.duplicate_of or "?"))


def reporter_whistled(t: Translator, view: IssueView) -> Message:
    return Text(t("issues.told_whistled", number=view.number))
