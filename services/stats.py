"""Statistics for every level (统计一套表): one report definition for a unit and a period.

Every figure is defined once, in :data:`METRICS` (key, Chinese and English label, section,
unit, how it rolls up) and documented in ``docs/metrics.md``. The report is computed with
set-based SQL grouped by the unit's children (a street's communities, a community's grids):

* counts are summed from the children (the unit's own row holds what is attached to the unit
  itself, e.g. an issue placed only on the community), so the total equals the sum of the rows;
* shares are recomputed from the summed numerators and denominators, never averaged;
* medians and distinct-member counts are recomputed over the underlying rows of the whole unit.

Issues and wishes are counted by cohort: those that came in during the period, with what has
happened to them by the time of the report. Coverage is a snapshot at the end of the period.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CompoundSelect,
    Float,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.i18n import N_, Translator
from bot.settings import Settings as AppSettings
from models.households import Household, HouseholdInterval, HouseholdTag, HouseholdTagLink
from models.issues import OPEN_STATUSES, EventKind, Issue, IssueEvent, IssueStatus
from models.meetings import Meeting, MeetingAttendance, MeetingSeries, MeetingStatus
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from models.points import EntryKind, HoursEntry, LedgerEntry
from models.visits import Visit, VisitOutcome
from models.wishes import Wish, WishEvent, WishStatus
from services.access import Actor, UnitRef
from services.errors import InvalidInput, NotFound
from services.messages import Button
from services.sql import dialect

STATS_ROLES: frozenset[Role] = frozenset({Role.grid_leader, Role.coordinator, Role.admin})
"""Grid leaders and above see statistics, each for the units under their grants."""

TREND_PERIODS = 12

# ---------------------------------------------------------------------------------------------
# Periods


class PeriodKind(StrEnum):
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"
    custom = "custom"


MAX_CUSTOM_DAYS = 366 * 3


@dataclass(frozen=True)
class Period:
    """Local calendar days ``[first, end)`` of a week, month, quarter, year or custom range."""

    kind: PeriodKind
    first: date
    end: date

    @property
    def key(self) -> str:
        if self.kind == PeriodKind.week:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == PeriodKind.month:
            return f"{self.first.year}-{self.first.month:02d}"
        if self.kind == PeriodKind.quarter:
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        if self.kind == PeriodKind.year:
            return str(self.first.year)
        return f"{self.first.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as aware UTC moments ``[start, end)``."""
        return _local_midnight(self.first, zone), _local_midnight(self.end, zone)

    def previous(self) -> Period:
        if self.kind == PeriodKind.week:
            return Period(self.kind, self.first - timedelta(days=7), self.first)
        if self.kind == PeriodKind.custom:
            span = self.end - self.first
            return Period(self.kind, self.first - span, self.first)
        months = {PeriodKind.month: 1, PeriodKind.quarter: 3, PeriodKind.year: 12}[self.kind]
        return Period(self.kind, _add_months(self.first, -months), self.first)

    def next(self) -> Period:
        if self.kind == PeriodKind.week:
            return Period(self.kind, self.end, self.end + timedelta(days=7))
        if self.kind == PeriodKind.custom:
            return Period(self.kind, self.end, self.end + (self.end - self.first))
        months = {PeriodKind.month: 1, PeriodKind.quarter: 3, PeriodKind.year: 12}[self.kind]
        return Period(self.kind, self.end, _add_months(self.end, months))

    def trend(self, count: int = TREND_PERIODS) -> list[Period]:
        """This period and the ``count - 1`` before it, oldest first."""
        periods = [self]
        while len(periods) < count:
            periods.append(periods[-1].previous())
        return periods[::-1]


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def current_period(kind: PeriodKind, today: date) -> Period:
    """The week, month, quarter or year containing ``today``."""
    if kind == PeriodKind.week:
        first = today - timedelta(days=today.isoweekday() - 1)
        return Period(kind, first, first + timedelta(days=7))
    if kind == PeriodKind.month:
        first = today.replace(day=1)
        return Period(kind, first, _add_months(first, 1))
    if kind == PeriodKind.quarter:
        first = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return Period(kind, first, _add_months(first, 3))
    if kind == PeriodKind.year:
        return Period(kind, date(today.year, 1, 1), date(today.year + 1, 1, 1))
    raise InvalidInput(N_("stats.bad_period"))


_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(?:\.\.|~|to)\s*(\d{4}-\d{2}-\d{2})$")


def parse_period(text: str) -> Period:
    """``2026-W47``, ``2026-11``, ``2026-Q4``, ``2026`` or ``2026-11-01..2026-11-15``
    (both days included). Anything else is refused with the accepted forms."""
    value = text.strip()
    try:
        if match := _WEEK.match(value):
            first = date.fromisocalendar(int(match[1]), int(match[2]), 1)
            return Period(PeriodKind.week, first, first + timedelta(days=7))
        if match := _MONTH.match(value):
            first = date(int(match[1]), int(match[2]), 1)
            return Period(PeriodKind.month, first, _add_months(first, 1))
        if match := _QUARTER.match(value):
            first = date(int(match[1]), (int(match[2]) - 1) * 3 + 1, 1)
            return Period(PeriodKind.quarter, first, _add_months(first, 3))
        if match := _YEAR.match(value):
            year = int(match[1])
            return Period(PeriodKind.year, date(year, 1, 1), date(year + 1, 1, 1))
        if match := _RANGE.match(value):
            first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
            if last < first or (last - first).days >= MAX_CUSTOM_DAYS:
                raise ValueError("range")
            return Period(PeriodKind.custom, first, last + timedelta(days=1))
    except ValueError:
        pass
    raise InvalidInput(N_("stats.bad_period"))


# ---------------------------------------------------------------------------------------------
# Metric definitions: each figure once


class Section(StrEnum):
    issues = "issues"
    wishes = "wishes"
    visits = "visits"
    meetings = "meetings"
    members = "members"
    points = "points"


SECTION_LABELS: dict[Section, tuple[str, str]] = {
    Section.issues: ("民情问题", "Issues"),
    Section.wishes: ("微心愿", "Micro-wishes"),
    Section.visits: ("走访覆盖", "Visits"),
    Section.meetings: ("会议", "Meetings"),
    Section.members: ("志愿者", "Volunteers"),
    Section.points: ("积分", "Points"),
}


class MetricUnit(StrEnum):
    number = "number"
    share = "share"
    hours = "hours"
    days = "days"
    points = "points"


class Rollup(StrEnum):
    sum = "sum"
    """The unit's figure is the sum of its children's."""
    ratio = "ratio"
    """Recomputed from the summed numerator and denominator."""
    recount = "recount"
    """Recomputed over the whole unit's rows (medians, distinct members)."""


@dataclass(frozen=True)
class Metric:
    key: str
    zh: str
    en: str
    section: Section
    unit: MetricUnit
    rollup: Rollup
    ratio: tuple[str, str] | None = None
    """For shares: (numerator key, denominator key)."""

    def label(self, locale: str) -> str:
        return self.en if locale == "en" else self.zh


def _count(
    key: str, zh: str, en: str, section: Section, unit: MetricUnit = MetricUnit.number
) -> Metric:
    return Metric(key, zh, en, section, unit, Rollup.sum)


def _share(key: str, zh: str, en: str, section: Section, num: str, den: str) -> Metric:
    return Metric(key, zh, en, section, MetricUnit.share, Rollup.ratio, (num, den))


def _recount(key: str, zh: str, en: str, section: Section, unit: MetricUnit) -> Metric:
    return Metric(key, zh, en, section, unit, Rollup.recount)


S = Section
METRICS: tuple[Metric, ...] = (
    _count("issues_reported", "上报数", "Reported", S.issues),
    _count("issues_dismissed", "驳回/重复", "Rejected or duplicate", S.issues),
    _count("issues_accepted_on_time", "按时受理", "Accepted on time", S.issues),
    _share(
        "issues_accepted_on_time_share",
        "按时受理率",
        "Accepted on time (share)",
        S.issues,
        "issues_accepted_on_time",
        "issues_reported",
    ),
    _count("issues_resolved", "已办结", "Resolved", S.issues),
    _count("issues_resolved_on_time", "按期办结", "Resolved on time", S.issues),
    _share(
        "issues_resolved_on_time_share",
        "按期办结率",
        "Resolved on time (share)",
        S.issues,
        "issues_resolved_on_time",
        "issues_to_handle",
    ),
    _count("issues_to_handle", "应办理", "To handle", S.issues),
    _count("issues_reopened", "重新办理", "Reopened", S.issues),
    _count("issues_overdue_now", "当前超期", "Overdue now", S.issues),
    _recount(
        "issues_median_hours_to_accept",
        "受理用时中位数(时)",
        "Median hours to accept",
        S.issues,
        MetricUnit.hours,
    ),
    _recount(
        "issues_median_hours_to_resolve",
        "办结用时中位数(时)",
        "Median hours to resolve",
        S.issues,
        MetricUnit.hours,
    ),
    _count("issues_rated_satisfied", "满意", "Satisfied", S.issues),
    _count("issues_rated_basic", "基本满意", "Basically satisfied", S.issues),
    _count("issues_rated_unsatisfied", "不满意", "Unsatisfied", S.issues),
    _count("issues_rated_none", "未评价", "No answer", S.issues),
    _count("issues_rating_asked", "邀评次数", "Ratings asked", S.issues),
    _share(
        "issues_satisfied_share",
        "满意率",
        "Satisfied (share)",
        S.issues,
        "issues_rated_satisfied",
        "issues_rating_asked",
    ),
    _share(
        "issues_basic_share",
        "基本满意率",
        "Basically satisfied (share)",
        S.issues,
        "issues_rated_basic",
        "issues_rating_asked",
    ),
    _share(
        "issues_unsatisfied_share",
        "不满意率",
        "Unsatisfied (share)",
        S.issues,
        "issues_rated_unsatisfied",
        "issues_rating_asked",
    ),
    _share(
        "issues_no_answer_share",
        "未评价率",
        "No answer (share)",
        S.issues,
        "issues_rated_none",
        "issues_rating_asked",
    ),
    _count("wishes_submitted", "提交", "Submitted", S.wishes),
    _count("wishes_approved", "已发布", "Approved", S.wishes),
    _count("wishes_claimed", "已认领", "Claimed", S.wishes),
    _count("wishes_fulfilled", "已完成", "Fulfilled", S.wishes),
    _count("wishes_confirmed", "已确认", "Confirmed", S.wishes),
    _recount(
        "wishes_median_days_to_fulfil",
        "完成用时中位数(天)",
        "Median days to fulfil",
        S.wishes,
        MetricUnit.days,
    ),
    _count("households", "在册户数", "Households", S.visits),
    _count("households_covered", "按期走访户数", "Visited within cadence", S.visits),
    _share(
        "households_covered_share",
        "走访覆盖率",
        "Coverage (share)",
        S.visits,
        "households_covered",
        "households",
    ),
    _count("households_overdue", "逾期未访户数", "Overdue", S.visits),
    _count("visits_logged", "走访次数", "Visits logged", S.visits),
    _count("meetings_held", "召开会议", "Meetings held", S.meetings),
    _count("meetings_invited", "应到人次", "Invited", S.meetings),
    _count("meetings_attended", "实到人次", "Checked in", S.meetings),
    _share(
        "meetings_attendance_share",
        "出席率",
        "Attendance (share)",
        S.meetings,
        "meetings_attended",
        "meetings_invited",
    ),
    _recount("volunteers", "志愿者人数", "Volunteers", S.members, MetricUnit.number),
    _recount("volunteers_active", "活跃人数", "Active", S.members, MetricUnit.number),
    _recount("service_hours", "服务时长(时)", "Service hours", S.members, MetricUnit.hours),
    _recount(
        "volunteers_at_target", "达到年度目标人数", "At yearly target", S.members, MetricUnit.number
    ),
    _share(
        "volunteers_at_target_share",
        "年度目标达标率",
        "At yearly target (share)",
        S.members,
        "volunteers_at_target",
        "volunteers",
    ),
    _count("points_awarded", "发放积分", "Points awarded", S.points, MetricUnit.points),
    _count("points_redeemed", "兑换积分", "Points redeemed", S.points, MetricUnit.points),
)
del S

METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

ACTIVITY_KEYS = (
    "issues_reported",
    "wishes_submitted",
    "visits_logged",
    "meetings_held",
    "service_hours",
    "points_awarded",
    "points_redeemed",
)
"""What makes a period "not empty" (coverage and overdue issues are snapshots, not activity)."""


def metrics_of(section: Section) -> list[Metric]:
    return [m for m in METRICS if m.section == section]


Values = dict[str, float | int | None]


def _finish(values: Mapping[str, float | int | None]) -> Values:
    """Fill in the shares from their numerators and denominators (None when nothing to divide)."""
    done: Values = {m.key: values.get(m.key) for m in METRICS if m.rollup != Rollup.ratio}
    for metric in METRICS:
        if metric.ratio is None:
            continue
        num, den = (done.get(k) or 0 for k in metric.ratio)
        done[metric.key] = (num / den) if den else None
    return done


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Row:
    unit: UnitRef
    values: Values
    overdue_by_tag: dict[str, int] = field(default_factory=dict)
    own: bool = False
    """The unit's own row: what is attached to the unit itself, not to a child."""


@dataclass(frozen=True)
class Tag:
    code: str
    name: str
    name_en: str | None

    def label(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name


@dataclass(frozen=True)
class Report:
    unit: UnitRef
    parent: UnitRef | None
    period: Period
    rows: tuple[Row, ...]
    """Children side by side (and the unit's own row when something is attached to it)."""
    total: Values
    overdue_by_tag: dict[str, int]
    tags: tuple[Tag, ...]
    generated_at: datetime

    @property
    def empty(self) -> bool:
        return not any(self.total.get(k) for k in ACTIVITY_KEYS)


@dataclass(frozen=True)
class Context:
    """What every section query needs: the unit, its children map and the period bounds."""

    unit: UnitRef
    start: datetime
    end: datetime
    now: datetime
    breakdown: bool
    dialect: str
    target_hours: int
    year_start: datetime
    community_id: int | None
    """For a grid: the community it lies in."""
    communities: tuple[int, ...] = ()
    """The communities whose rows may belong to the unit (see :func:`_communities`)."""

    @property
    def snapshot(self) -> datetime:
        """The moment snapshots are taken: the end of the period, or now if that is earlier."""
        return min(self.end, self.now)


def _unit_map(ctx: Context) -> Any:
    """Every unit of the subtree down to the grids, with the child it belongs to (the unit
    itself for itself). Facts are placed by their grid, else their community (buildings lie in
    a grid), so buildings are left out; the map is materialised once per statement, so that
    joining a fact to its child is one index lookup."""
    u = aliased(Unit)
    c = aliased(Unit)
    on = and_(col(c.parent_id) == ctx.unit.id, col(u.path).like(col(c.path) + "%"))
    if not ctx.breakdown:
        on = and_(on, literal(False))
    return (
        select(
            col(u.id).label("unit_id"),
            func.coalesce(col(c.id), ctx.unit.id).label("child_id"),
        )
        .select_from(u)
        .outerjoin(c, on)
        .where(col(u.path).like(ctx.unit.path + "%"), col(u.kind) != UnitKind.building.value)
        .cte("unit_map")
        .prefix_with("MATERIALIZED")
    )


def _communities(ctx: Context) -> Any:
    """The communities whose rows may belong to the unit: those of its subtree, or the one a
    grid lies in (issues, wishes and points carry their community; an index leads with it).
    Given as values, read once (:func:`_community_ids`): PostgreSQL then estimates the rows of
    a street's year right and joins them by hash instead of a hundred thousand index probes."""
    return list(ctx.communities)


async def _community_ids(
    session: AsyncSession, unit: UnitRef
) -> tuple[int | None, tuple[int, ...]]:
    """The community a unit lies in (if any) and the communities of :func:`_communities`."""
    community_id = await _ancestor(session, unit, UnitKind.community)
    if unit.kind.level > UnitKind.community.level:
        return community_id, (community_id,) if community_id is not None else ()
    found = await session.execute(
        select(col(Unit.id)).where(
            col(Unit.path).like(unit.path + "%"), col(Unit.kind) == UnitKind.community.value
        )
    )
    return community_id, tuple(int(i) for i in found.scalars() if i is not None)


def _subtree_ids(ctx: Context, kind: UnitKind | None = None) -> Any:
    query = select(col(Unit.id)).where(col(Unit.path).like(ctx.unit.path + "%"))
    if kind is not None:
        query = query.where(col(Unit.kind) == kind.value)
    return query.scalar_subquery()


REPORT_WORK_MEM = "64MB"
"""PostgreSQL's memory per sort or hash of the report's statements (a street's year needs
about 40 MB for the issue facts)."""


async def _custom_plans(session: AsyncSession) -> None:
    """PostgreSQL: plan the report's statements for their actual values. The driver prepares
    statements, and after five runs PostgreSQL may switch to a generic plan that does not know
    the period or the unit: for these one-off aggregates that plan can be thousands of times
    slower (seen in bench/stats_report.py). And no JIT compilation: the planner's row estimates
    for these statements are large enough to trigger it, and compiling costs more (about 0.3 s a
    statement in the benchmark) than it saves on a few hundred thousand rows. And enough
    memory for the sorts and hashes of a street's year (the default 4 MB spills the issue
    facts to disk in external merges). Applies to the current transaction only."""
    if dialect(session) == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))


def _hours(ctx: Context, later: Any, earlier: Any) -> Any:
    """Hours from ``earlier`` to ``later``, as a float, on either database."""
    if ctx.dialect == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _sum(condition: Any, value: Any = 1) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _ids(values: Iterable[StrEnum]) -> list[str]:
    return [v.value for v in values]


RESPONSE_KINDS = (
    EventKind.accepted,
    EventKind.assigned,
    EventKind.rejected,
    EventKind.duplicate,
    EventKind.reported_in,
)
"""The first of these events ends the wait for a response."""
BREACH_KINDS = (EventKind.escalated, EventKind.overdue)
REPORT_EVENT_KINDS: tuple[str, ...] = tuple(
    k.value
    for k in (*RESPONSE_KINDS, *BREACH_KINDS, EventKind.reopened, EventKind.rated, EventKind.closed)
)
"""The events the report reads; ``models/stats.py`` indexes exactly these (a partial index),
so the list is rendered as literals for the planner to see that the index applies."""


def report_event_kinds() -> Any:
    return col(IssueEvent.kind).in_(
        bindparam(
            "report_event_kinds", list(REPORT_EVENT_KINDS), expanding=True, literal_execute=True
        )
    )


RESOLVED_STATUSES = (IssueStatus.resolved, IssueStatus.closed)
DISMISSED_STATUSES = (IssueStatus.rejected, IssueStatus.duplicate)


def _issue_facts(ctx: Context, unit_map: Any) -> Any:
    """One row per issue reported in the period: its child unit and what happened to it. The
    issues are joined to their events and grouped by issue in one pass: the events are read
    from ``ix_issue_events_report`` (issue id first, then the time, so that one seek per issue
    reads all its events) and no intermediate per-issue table is built and joined back. Grouped
    by the issue's key alone (its other columns depend on it; its child is the one row of the
    unit map), so that SQLite can read the issues in key order instead of sorting the events."""
    e = IssueEvent
    kind, note = col(e.kind), col(e.note)
    place = func.coalesce(col(Issue.grid_id), col(Issue.community_id))
    breach = kind.in_(_ids(BREACH_KINDS))
    issue_columns: tuple[Any, ...] = (
        col(Issue.id).label("issue_id"),
        col(Issue.status).label("status"),
        col(Issue.created_at).label("created_at"),
        col(Issue.resolved_at).label("resolved_at"),
    )
    return (
        select(
            func.min(unit_map.c.child_id).label("child_id"),
            *issue_columns,
            func.min(case((kind.in_(_ids(RESPONSE_KINDS)), col(e.at)))).label("responded_at"),
            func.max(case((and_(breach, note == "response"), 1), else_=0)).label("response_breach"),
            func.max(case((and_(breach, note == "handling"), 1), else_=0)).label("handling_breach"),
            _sum(kind == EventKind.reopened.value).label("reopens"),
            _sum(and_(kind == EventKind.rated.value, note == "satisfied")).label("satisfied"),
            _sum(and_(kind == EventKind.rated.value, note == "basic")).label("basic"),
            _sum(and_(kind == EventKind.rated.value, note == "unsatisfied")).label("unsatisfied"),
            _sum(and_(kind == EventKind.closed.value, note == "no_answer")).label("no_answer"),
        )
        .select_from(Issue)
        .join(unit_map, unit_map.c.unit_id == place)
        .outerjoin(e, and_(col(e.issue_id) == col(Issue.id), report_event_kinds()))
        .where(col(Issue.community_id).in_(_communities(ctx)))
        .where(col(Issue.created_at) >= ctx.start, col(Issue.created_at) < ctx.end)
        .group_by(col(Issue.id))
        .cte("issue_facts")
        .prefix_with("MATERIALIZED")
    )


ISSUE_COUNTS = (
    "issues_reported",
    "issues_dismissed",
    "issues_accepted_on_time",
    "issues_resolved",
    "issues_resolved_on_time",
    "issues_to_handle",
    "issues_reopened",
    "issues_rated_satisfied",
    "issues_rated_basic",
    "issues_rated_unsatisfied",
    "issues_rated_none",
)


async def _issues(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    """The issue counts per child and the two medians, in one statement over the cohort's
    facts (computed once): count rows and median rows come back as one union."""
    facts = _issue_facts(ctx, unit_map)
    f = facts.c
    resolved = f.status.in_(_ids(RESOLVED_STATUSES))
    dismissed = f.status.in_(_ids(DISMISSED_STATUSES))
    counts = (
        func.count(),
        _sum(dismissed),
        _sum(and_(f.responded_at.is_not(None), f.response_breach == 0)),
        _sum(resolved),
        _sum(and_(resolved, f.handling_breach == 0)),
        _sum(~dismissed),
        _sum(f.reopens > 0),
        func.coalesce(func.sum(f.satisfied), 0),
        func.coalesce(func.sum(f.basic), 0),
        func.coalesce(func.sum(f.unsatisfied), 0),
        func.coalesce(func.sum(f.no_answer), 0),
    )
    count_rows = select(
        literal("count").label("part"),
        f.child_id.label("k"),
        cast(null(), String).label("metric"),
        cast(null(), String).label("value_list"),
        *(c.label(key) for c, key in zip(counts, ISSUE_COUNTS, strict=True)),
    ).group_by(f.child_id)
    durations = _median_values(
        ctx.dialect,
        [
            (
                "issues_median_hours_to_accept",
                select(f.child_id, _hours(ctx, f.responded_at, f.created_at).label("value")).where(
                    f.responded_at.is_not(None)
                ),
            ),
            (
                "issues_median_hours_to_resolve",
                select(f.child_id, _hours(ctx, f.resolved_at, f.created_at).label("value")).where(
                    f.resolved_at.is_not(None), resolved
                ),
            ),
        ],
    ).subquery("durations")
    value_rows = select(
        literal("median").label("part"),
        durations.c.k,
        durations.c.metric,
        durations.c.value_list,
        *(cast(null(), Integer).label(key) for key in ISSUE_COUNTS),
    )
    out: dict[int, Values] = {}
    medians = _Medians()
    for row in (await session.execute(union_all(count_rows, value_rows))).all():
        if row[0] == "median":
            medians.add(row[2], row[1], row[3])
            continue
        values = out.setdefault(int(row[1]), {})
        counted = {key: int(n or 0) for key, n in zip(ISSUE_COUNTS, row[4:], strict=True)}
        values.update(counted)
        values["issues_rating_asked"] = sum(
            counted[key]
            for key in (
                "issues_rated_satisfied",
                "issues_rated_basic",
                "issues_rated_unsatisfied",
                "issues_rated_none",
            )
        )
    _merge(out, medians.values())
    return out


async def _overdue_now(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    place = func.coalesce(col(Issue.grid_id), col(Issue.community_id))
    rows = await session.execute(
        select(unit_map.c.child_id, func.count())
        .select_from(Issue)
        .join(unit_map, unit_map.c.unit_id == place)
        .where(col(Issue.community_id).in_(_communities(ctx)))
        .where(col(Issue.status).in_(_ids(OPEN_STATUSES)), col(Issue.due_at) < ctx.now)
        .group_by(unit_map.c.child_id)
    )
    return {int(child): {"issues_overdue_now": int(n)} for child, n in rows.all()}


SectionQuery = Callable[[AsyncSession, "Context", Any], Awaitable[dict[int, "Values"]]]
"""A section of the report: its figures per child (and under :data:`TOTAL`, recounts)."""

TOTAL = -1
"""The key under which medians and recounts of the whole unit are returned."""


async def _medians(
    session: AsyncSession, parts: Sequence[tuple[str, Select[Any]]]
) -> dict[int, Values]:
    medians = _Medians()
    for metric, k, value_list in (
        await session.execute(_median_values(dialect(session), parts))
    ).all():
        medians.add(metric, k, value_list)
    return medians.values()


@dataclass
class _Medians:
    """Collects the (metric, child, values) rows of :func:`_median_values` and computes each
    child's median and — over all the rows of the metric — the whole unit's: the middle value,
    or the mean of the two middle ones, rounded to hundredths. Sorting a few hundred thousand
    numbers here is much cheaper than the window sorts the databases would do for it."""

    rows: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def add(self, metric: Any, k: Any, value_list: str | None) -> None:
        if value_list:
            values = list(map(float, value_list.split(",")))
            self.rows.setdefault((str(metric), int(k)), []).extend(values)

    def values(self) -> dict[int, Values]:
        out: dict[int, Values] = {}
        every: dict[str, list[float]] = {}
        for (metric, k), values in self.rows.items():
            out.setdefault(int(k), {})[metric] = _median(values)
            every.setdefault(metric, []).extend(values)
        for metric, values in every.items():
            out.setdefault(TOTAL, {})[metric] = _median(values)
        return out


def _median(values: list[float]) -> float:
    values.sort()
    middle = len(values) // 2
    found = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return round(found, 2)


def _median_values(
    dialect_name: str, parts: Sequence[tuple[str, Select[Any]]]
) -> CompoundSelect[Any]:
    """The values the medians are taken over, one row per (metric, child) with the values
    joined into one text (each part is a select of ``child_id`` and ``value``): a few rows
    instead of one per issue, which the drivers turn into Python objects much more cheaply.
    Every value is written with all its digits, so it is read back exactly."""

    def joined(value: Any) -> Any:
        if dialect_name == "postgresql":
            return func.string_agg(cast(cast(value, Float), String), literal(","))
        return func.group_concat(func.printf("%.17g", value), literal(","))

    return union_all(
        *(
            select(
                literal(metric).label("metric"),
                sub.c.child_id.label("k"),
                joined(sub.c.value).label("value_list"),
            ).group_by(sub.c.child_id)
            for metric, query in parts
            for sub in (query.subquery(),)
        )
    )


def _merge(into: dict[int, Values], more: Mapping[int, Values]) -> None:
    for key, values in more.items():
        into.setdefault(key, {}).update(values)


async def _wishes(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    e = WishEvent
    action = col(e.action)
    cohort = and_(
        col(Wish.community_id).in_(_communities(ctx)),
        col(Wish.created_at) >= ctx.start,
        col(Wish.created_at) < ctx.end,
    )
    reached = (
        select(
            col(e.wish_id).label("wish_id"),
            func.max(case((action == "approve", 1), else_=0)).label("approved"),
            func.max(case((action.in_(("claim", "dispatch")), 1), else_=0)).label("claimed"),
            func.max(case((action == "fulfil", 1), else_=0)).label("fulfilled"),
            func.min(case((action == "fulfil", col(e.at)))).label("first_fulfilled_at"),
        )
        .join(Wish, col(Wish.id) == col(e.wish_id))
        .where(cohort)
        .group_by(col(e.wish_id))
        .subquery("wish_events_agg")
    )
    facts = (
        select(
            unit_map.c.child_id,
            col(Wish.status).label("status"),
            col(Wish.created_at).label("created_at"),
            func.coalesce(reached.c.approved, 0).label("approved"),
            func.coalesce(reached.c.claimed, 0).label("claimed"),
            func.coalesce(reached.c.fulfilled, 0).label("fulfilled"),
            reached.c.first_fulfilled_at,
        )
        .select_from(Wish)
        .join(
            unit_map,
            unit_map.c.unit_id
            == func.coalesce(col(Wish.grid_id), col(Wish.community_id), col(Wish.unit_id)),
        )
        .outerjoin(reached, reached.c.wish_id == col(Wish.id))
        .where(cohort)
        .cte("wish_facts")
    )
    f = facts.c
    rows = await session.execute(
        select(
            f.child_id,
            func.count().label("wishes_submitted"),
            _sum(f.approved == 1).label("wishes_approved"),
            _sum(f.claimed == 1).label("wishes_claimed"),
            _sum(f.fulfilled == 1).label("wishes_fulfilled"),
            _sum(f.status == WishStatus.confirmed.value).label("wishes_confirmed"),
        ).group_by(f.child_id)
    )
    out: dict[int, Values] = {
        int(row["child_id"]): {k: int(v or 0) for k, v in row.items() if k != "child_id"}
        for row in rows.mappings()
    }
    medians = await _medians(
        session,
        [
            (
                "wishes_median_days_to_fulfil",
                select(
                    f.child_id,
                    (_hours(ctx, f.first_fulfilled_at, f.created_at) / 24.0).label("value"),
                ).where(f.first_fulfilled_at.is_not(None)),
            )
        ],
    )
    _merge(out, medians)
    return out


COUNTING_OUTCOMES = [o.value for o in VisitOutcome if o.counts]


async def _visits(
    session: AsyncSession, ctx: Context, unit_map: Any
) -> tuple[dict[int, Values], dict[int, dict[str, int]]]:
    """Coverage at the snapshot in one pass over the households: each household's flags
    (covered, overdue) are computed once, summed per grid (and, for the overdue ones, per tag
    through the tag links), then the grids per child."""
    at = ctx.snapshot
    grids = _subtree_ids(ctx, UnitKind.grid)
    tags = list((await session.execute(select(col(HouseholdTag.id), col(HouseholdTag.code)))).all())
    last = (
        select(
            col(Visit.household_id).label("household_id"),
            func.max(col(Visit.visited_at)).label("last_at"),
        )
        .join(Household, col(Household.id) == col(Visit.household_id))
        .where(col(Household.grid_id).in_(grids))
        .where(col(Visit.outcome).in_(COUNTING_OUTCOMES), col(Visit.visited_at) < at)
        .group_by(col(Visit.household_id))
        .subquery("last_visits")
    )
    then = _intervals_then(grids, at)
    window = func.coalesce(then.c.days, col(Household.interval_days)) * 24.0
    covered = and_(last.c.last_at.is_not(None), _hours(ctx, literal(at), last.c.last_at) <= window)
    overdue = and_(~covered, _hours(ctx, literal(at), col(Household.created_at)) > window)
    flags = (
        select(
            col(Household.id).label("household_id"),
            col(Household.grid_id).label("grid_id"),
            case((covered, 1), else_=0).label("covered"),
            case((overdue, 1), else_=0).label("overdue"),
        )
        .select_from(Household)
        .outerjoin(last, last.c.household_id == col(Household.id))
        .outerjoin(then, then.c.household_id == col(Household.id))
        .where(col(Household.grid_id).in_(grids))
        .where(col(Household.created_at) < at)
        .where(or_(col(Household.archived_at).is_(None), col(Household.archived_at) >= at))
        .cte("household_flags")
        .prefix_with("MATERIALIZED")
    )
    h = flags.c
    per_grid = (
        select(
            h.grid_id,
            cast(null(), Integer).label("tag_id"),
            func.count().label("households"),
            func.sum(h.covered).label("covered"),
            func.sum(h.overdue).label("overdue"),
        )
        .group_by(h.grid_id)
        .subquery("per_grid")
    )
    link = HouseholdTagLink
    per_grid_tag = (
        select(
            h.grid_id,
            col(link.tag_id).label("tag_id"),
            func.count().label("households"),
            literal(0).label("covered"),
            literal(0).label("overdue"),
        )
        .join(link, col(link.household_id) == h.household_id)
        .where(h.overdue == 1)
        .group_by(h.grid_id, col(link.tag_id))
        .subquery("per_grid_tag")
    )

    def per_child(grouped: Any) -> Any:
        g = grouped.c
        return (
            select(
                unit_map.c.child_id,
                g.tag_id,
                func.sum(g.households),
                func.sum(g.covered),
                func.sum(g.overdue),
            )
            .select_from(grouped)
            .join(unit_map, unit_map.c.unit_id == g.grid_id)
            .group_by(unit_map.c.child_id, g.tag_id)
        )

    out: dict[int, Values] = {}
    by_tag: dict[int, dict[str, int]] = {}
    codes = {int(tag_id): str(code) for tag_id, code in tags if tag_id is not None}
    rows = await session.execute(union_all(per_child(per_grid), per_child(per_grid_tag)))
    for child, tag_id, n, covered_n, overdue_n in rows.all():
        if tag_id is None:
            out[int(child)] = {
                "households": int(n or 0),
                "households_covered": int(covered_n or 0),
                "households_overdue": int(overdue_n or 0),
            }
        elif n and int(tag_id) in codes:
            by_tag.setdefault(int(child), {})[codes[int(tag_id)]] = int(n)
    logged_here = (
        select(func.count())
        .where(col(Visit.household_id) == col(Household.id))
        .where(col(Visit.visited_at) >= ctx.start, col(Visit.visited_at) < ctx.end)
        .scalar_subquery()
    )
    per_household = (
        select(col(Household.grid_id).label("grid_id"), logged_here.label("n"))
        .where(col(Household.grid_id).in_(grids))
        .subquery("logged_per_household")
    )
    logged_per_grid = (
        select(per_household.c.grid_id, func.sum(per_household.c.n).label("n"))
        .group_by(per_household.c.grid_id)
        .subquery("logged_per_grid")
    )
    """Visits of the period counted per household (a range of ``ix_visits_household_at`` for
    each), then per grid: cheaper than looking up the household of every visit."""
    logged = await session.execute(
        select(unit_map.c.child_id, func.sum(logged_per_grid.c.n))
        .select_from(logged_per_grid)
        .join(unit_map, unit_map.c.unit_id == logged_per_grid.c.grid_id)
        .group_by(unit_map.c.child_id)
    )
    for child, n in logged.all():
        out.setdefault(int(child), {})["visits_logged"] = int(n or 0)
    return out, by_tag


def _intervals_then(grids: Any, at: datetime) -> Any:
    """The interval in force at ``at`` of the households whose interval changed after it (from
    the interval history); every other household is still on ``Household.interval_days``. Only
    the history rows after ``at`` are scanned first (none for a period that ends now), so the
    cost follows the changes since the snapshot, not the registry's size. The row in force is
    the last one recorded up to ``at`` (the highest id: rows are written as changes happen, so
    of two at the same moment the later wins); grouping rather than a window function lets
    SQLite index this small set for the join instead of scanning it per household."""
    hi = HouseholdInterval
    changed = (
        select(col(hi.household_id))
        .join(Household, col(Household.id) == col(hi.household_id))
        .where(col(hi.valid_from) > at)
        .where(col(Household.grid_id).in_(grids), col(Household.created_at) < at)
    )
    latest = (
        select(func.max(col(hi.id)).label("id"))
        .where(col(hi.household_id).in_(changed), col(hi.valid_from) <= at)
        .group_by(col(hi.household_id))
        .subquery("intervals_latest")
    )
    return (
        select(col(hi.household_id).label("household_id"), col(hi.interval_days).label("days"))
        .join(latest, latest.c.id == col(hi.id))
        .subquery("intervals_then")
    )


async def _meetings(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    checkins = (
        select(col(MeetingAttendance.meeting_id), func.count().label("n"))
        .group_by(col(MeetingAttendance.meeting_id))
        .subquery("checkins")
    )
    known = col(Meeting.invited_count).is_not(None)
    rows = await session.execute(
        select(
            unit_map.c.child_id,
            func.count(),
            _sum(known, col(Meeting.invited_count)),
            _sum(known, func.coalesce(checkins.c.n, 0)),
        )
        .select_from(Meeting)
        .join(MeetingSeries, col(MeetingSeries.id) == col(Meeting.series_id))
        .join(unit_map, unit_map.c.unit_id == col(MeetingSeries.unit_id))
        .outerjoin(checkins, checkins.c.meeting_id == col(Meeting.id))
        .where(col(Meeting.status) == MeetingStatus.scheduled.value)
        .where(col(Meeting.starts_at) >= ctx.start, col(Meeting.starts_at) < ctx.end)
        .where(col(Meeting.ends_at) <= ctx.now)
        .group_by(unit_map.c.child_id)
    )
    return {
        int(child): {
            "meetings_held": int(n),
            "meetings_invited": int(invited or 0),
            "meetings_attended": int(attended or 0),
        }
        for child, n, invited, attended in rows.all()
    }


async def _members(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    """Volunteers (the volunteer role on a unit of the subtree), per child and — recounted,
    so that someone who volunteers in two grids counts once — for the whole unit."""
    volunteers = (
        select(col(RoleGrant.member_id).label("member_id"), unit_map.c.child_id)
        .select_from(RoleGrant)
        .join(unit_map, unit_map.c.unit_id == col(RoleGrant.unit_id))
        .where(col(RoleGrant.role) == Role.volunteer.value)
        .distinct()
        .subquery("volunteers")
    )
    hours = (
        select(
            col(HoursEntry.member_id).label("member_id"),
            func.sum(
                case(
                    (
                        and_(col(HoursEntry.at) >= ctx.start, col(HoursEntry.at) < ctx.end),
                        col(HoursEntry.minutes),
                    ),
                    else_=0,
                )
            ).label("period_minutes"),
            func.sum(
                case(
                    (
                        and_(
                            col(HoursEntry.at) >= ctx.year_start, col(HoursEntry.at) < ctx.snapshot
                        ),
                        col(HoursEntry.minutes),
                    ),
                    else_=0,
                )
            ).label("year_minutes"),
        )
        .where(col(HoursEntry.at) >= min(ctx.year_start, ctx.start))
        .where(col(HoursEntry.at) < max(ctx.end, ctx.snapshot))
        .group_by(col(HoursEntry.member_id))
        .subquery("member_hours")
    )
    awarded = (
        select(literal(1))
        .where(col(LedgerEntry.member_id) == volunteers.c.member_id)
        .where(col(LedgerEntry.kind) == EntryKind.award.value)
        .where(col(LedgerEntry.at) >= ctx.start, col(LedgerEntry.at) < ctx.end)
        .where(col(LedgerEntry.community_id).in_(_communities(ctx)))
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )
    """Awarded points in the period: one probe of ``ix_points_ledger_awards`` per volunteer
    instead of reading every award of the period (a year of a street is nearly a million). A
    scalar subquery rather than EXISTS, which PostgreSQL would turn into a hash of them all."""
    target = ctx.target_hours * 60
    facts = (
        select(
            volunteers.c.member_id,
            volunteers.c.child_id,
            func.coalesce(hours.c.period_minutes, 0).label("minutes"),
            case(
                (
                    or_(
                        func.coalesce(hours.c.period_minutes, 0) > 0,
                        awarded,
                    ),
                    1,
                ),
                else_=0,
            ).label("active"),
            case((func.coalesce(hours.c.year_minutes, 0) >= target, 1), else_=0).label("at_target"),
        )
        .select_from(volunteers)
        .outerjoin(hours, hours.c.member_id == volunteers.c.member_id)
        .cte("member_facts")
        .prefix_with("MATERIALIZED")
    )
    f = facts.c
    per_member = (
        select(
            f.member_id,
            func.max(f.minutes).label("minutes"),
            func.max(f.active).label("active"),
            func.max(f.at_target).label("at_target"),
        )
        .group_by(f.member_id)
        .subquery("per_member")
    )
    m = per_member.c
    both = union_all(
        select(
            f.child_id, func.count(), func.sum(f.active), func.sum(f.minutes), func.sum(f.at_target)
        ).group_by(f.child_id),
        select(
            literal(TOTAL),
            func.count(),
            func.sum(m.active),
            func.sum(m.minutes),
            func.sum(m.at_target),
        ).select_from(per_member),
    )
    out: dict[int, Values] = {}
    for child, n, active_n, minutes, at_target in (await session.execute(both)).all():
        if child == TOTAL and not n:
            continue
        out[int(child)] = {
            "volunteers": int(n),
            "volunteers_active": int(active_n or 0),
            "service_hours": round(int(minutes or 0) / 60, 2),
            "volunteers_at_target": int(at_target or 0),
        }
    return out


async def _points(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
    """Ledger entries of the period summed per place (grid, else community) and then per
    child. Each place's sums are ranges of ``ix_points_ledger_place`` read by a correlated
    subquery per unit of the map: no sort or hash of the period's entries (a year of a street
    is a million of them)."""
    ledger = LedgerEntry
    communities = _communities(ctx)

    def total(kinds: tuple[EntryKind, ...], place: Any, sign: int = 1) -> Any:
        return (
            select(func.coalesce(func.sum(col(ledger.points)), 0) * sign)
            .where(col(ledger.community_id).in_(communities), place)
            .where(col(ledger.kind).in_(_ids(kinds)))
            .where(col(ledger.at) >= ctx.start, col(ledger.at) < ctx.end)
            .scalar_subquery()
        )

    awards = (EntryKind.award, EntryKind.reversal)
    redemptions = (EntryKind.redemption, EntryKind.refund)
    in_grid = col(ledger.grid_id) == unit_map.c.unit_id
    on_community = and_(
        col(ledger.grid_id).is_(None), col(ledger.community_id) == unit_map.c.unit_id
    )
    per_place = select(
        unit_map.c.child_id,
        (total(awards, in_grid) + total(awards, on_community)).label("awarded"),
        (total(redemptions, in_grid, -1) + total(redemptions, on_community, -1)).label("redeemed"),
    ).subquery("points_per_place")
    p = per_place.c
    rows = await session.execute(
        select(p.child_id, func.sum(p.awarded), func.sum(p.redeemed)).group_by(p.child_id)
    )
    return {
        int(child): {"points_awarded": int(awarded or 0), "points_redeemed": int(redeemed or 0)}
        for child, awarded, redeemed in rows.all()
        if awarded or redeemed
    }


# ---------------------------------------------------------------------------------------------
# Scope and entry points


@dataclass(frozen=True)
class StatsPolicy:
    """The few settings a report needs (read once from :class:`bot.settings.Settings`)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    target_hours: int = 24
    league_min_cases: int = 5

    @classmethod
    def from_settings(cls, settings: AppSettings) -> StatsPolicy:
        return cls(
            zone=settings.zone,
            target_hours=settings.service_hours_target,
            league_min_cases=settings.stats_league_min_cases,
        )


async def _unit(session: AsyncSession, unit_id: int) -> UnitRef:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(N_("stats.unit_unknown"))
    return UnitRef.of(unit)


async def unit_by_code(session: AsyncSession, code: str) -> UnitRef:
    unit = (
        await session.execute(select(Unit).where(col(Unit.code) == code.strip()))
    ).scalar_one_or_none()
    if unit is None:
        raise NotFound(N_("stats.unit_unknown"))
    return UnitRef.of(unit)


def may_see_stats(actor: Actor) -> bool:
    return actor.system or bool(actor.scopes(STATS_ROLES))


def stats_scopes(actor: Actor) -> list[UnitRef]:
    """The top units the actor may see statistics of (a unit below one of them is also fine)."""
    scopes = actor.scopes(STATS_ROLES)
    return [u for u in scopes if not any(o != u and u.within(o) for o in scopes)]


async def require_unit(session: AsyncSession, actor: Actor, unit_id: int) -> UnitRef:
    """The unit, if the actor may see its statistics; a forged or typed id outside is refused."""
    unit = await _unit(session, unit_id)
    if unit.kind == UnitKind.building:
        raise InvalidInput(N_("stats.unit_too_small"))
    actor.require(STATS_ROLES, unit, "stats")
    return unit


async def children(session: AsyncSession, unit: UnitRef) -> list[UnitRef]:
    if unit.kind == UnitKind.grid:
        return []
    rows = (
        await session.execute(
            select(Unit).where(col(Unit.parent_id) == unit.id).order_by(col(Unit.code))
        )
    ).scalars()
    return [UnitRef.of(u) for u in rows]


async def parent_in_scope(session: AsyncSession, actor: Actor, unit: UnitRef) -> UnitRef | None:
    """The unit's parent when the actor may see it too."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    if len(ids) < 2:
        return None
    parent = await _unit(session, ids[-2])
    return parent if actor.can(STATS_ROLES, parent) else None


async def report(
    session: AsyncSession,
    actor: Actor,
    unit_id: int,
    period: Period,
    now: datetime,
    policy: StatsPolicy,
) -> Report:
    unit = await require_unit(session, actor, unit_id)
    result = await build_report(session, unit, period, now, policy)
    return replace(result, parent=await parent_in_scope(session, actor, unit))


async def build_report(
    session: AsyncSession,
    unit: UnitRef,
    period: Period,
    now: datetime,
    policy: StatsPolicy,
    *,
    progress: Callable[[int, int], Awaitable[None]] | None = None,
    reading: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None,
) -> Report:
    """The report without a permission check (jobs, the CLI and :func:`report`).

    With ``reading`` (``Database.reading``) on PostgreSQL, the sections run side by side, each
    on a read-only connection of its own (the issues, the largest, then take no longer than
    all the others together). Each statement there reads what is committed when it starts
    (READ COMMITTED), as the sections did one after the other in one transaction, so the
    figures mean the same. On SQLite the sections run in ``session``, one after the other:
    they would only compete for the one snapshot a transaction has there."""
    await _custom_plans(session)
    start, end = period.bounds(policy.zone)
    snapshot_day = min(end, now).astimezone(policy.zone).date()
    if min(end, now) == end:
        snapshot_day = period.last
    year_start = _local_midnight(date(snapshot_day.year, 1, 1), policy.zone)
    community_id, communities = await _community_ids(session, unit)
    ctx = Context(
        unit=unit,
        start=start,
        end=end,
        now=now,
        breakdown=unit.kind != UnitKind.grid,
        dialect=dialect(session),
        target_hours=policy.target_hours,
        year_start=year_start,
        community_id=community_id,
        communities=communities,
    )
    unit_map = _unit_map(ctx)
    per_child: dict[int, Values] = {}
    by_tag: dict[int, dict[str, int]] = {}

    async def visits(session: AsyncSession, ctx: Context, unit_map: Any) -> dict[int, Values]:
        values, tags = await _visits(session, ctx, unit_map)
        by_tag.update(tags)
        return values

    sections = (_issues, _overdue_now, _wishes, visits, _meetings, _members, _points)
    steps = len(sections) + 1
    if reading is None or ctx.dialect != "postgresql":
        for step, section in enumerate(sections, start=1):
            _merge(per_child, await section(session, ctx, unit_map))
            if progress is not None:
                await progress(step, steps)
    else:
        finished = 0

        async def apart(section: SectionQuery) -> dict[int, Values]:
            nonlocal finished
            assert reading is not None
            async with reading() as own:
                await _custom_plans(own)
                values = await section(own, ctx, unit_map)
            finished += 1
            if progress is not None:
                await progress(finished, steps)
            return values

        for values in await asyncio.gather(*(apart(section) for section in sections)):
            _merge(per_child, values)
    whole = per_child.pop(TOTAL, {})

    kids = await children(session, unit)
    rows: list[Row] = []
    for child in kids:
        rows.append(Row(child, _row_values(per_child.get(child.id, {})), by_tag.get(child.id, {})))
    own = per_child.get(unit.id)
    if own is not None and kids:
        rows.append(Row(unit, _row_values(own), by_tag.get(unit.id, {}), own=True))

    total: dict[str, float | int | None] = {}
    for metric in METRICS:
        if metric.rollup == Rollup.sum:
            total[metric.key] = sum(int(v.get(metric.key) or 0) for v in per_child.values())
        elif metric.rollup == Rollup.recount:
            total[metric.key] = whole.get(metric.key, _empty(metric))
    tag_total: dict[str, int] = {}
    for counts in by_tag.values():
        for code, n in counts.items():
            tag_total[code] = tag_total.get(code, 0) + n
    tags = tuple(
        Tag(t.code, t.name, t.name_en)
        for t in (
            await session.execute(select(HouseholdTag).order_by(col(HouseholdTag.id)))
        ).scalars()
    )
    return Report(unit, None, period, tuple(rows), _finish(total), tag_total, tags, now)


async def _ancestor(session: AsyncSession, unit: UnitRef, kind: UnitKind) -> int | None:
    """The id of the unit's ancestor (or the unit itself) of ``kind``."""
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    found = await session.execute(
        select(col(Unit.id)).where(col(Unit.id).in_(ids), col(Unit.kind) == kind.value)
    )
    value = found.scalars().first()
    return int(value) if value is not None else None


def _empty(metric: Metric) -> float | int | None:
    """A figure with no rows: zero for counts and sums, None (shown "—") for a median."""
    return None if "median" in metric.key else 0


def _row_values(values: Mapping[str, float | int | None]) -> Values:
    filled: dict[str, float | int | None] = {
        m.key: values.get(m.key, _empty(m)) for m in METRICS if m.rollup != Rollup.ratio
    }
    return _finish(filled)


# ---------------------------------------------------------------------------------------------
# Department league table (吹哨报到)


@dataclass(frozen=True)
class LeagueRow:
    department_id: int
    name: str
    cases: int
    """Issues of the period's cohort in the unit that this department was called to."""
    reported_in_on_time: int
    reported_in: int
    resolved_on_time: int
    rework: int
    """Reopened after the department resolved it."""
    rank: int | None
    """None: fewer cases than the minimum, listed but not ranked."""

    @property
    def report_in_share(self) -> float | None:
        return self.reported_in_on_time / self.cases if self.cases else None

    @property
    def resolved_share(self) -> float | None:
        return self.resolved_on_time / self.reported_in if self.reported_in else None

    @property
    def rework_share(self) -> float | None:
        return self.rework / self.reported_in if self.reported_in else None


LEAGUE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cases", "受理件数", "Cases"),
    ("report_in_share", "按时报到率", "On-time report-in"),
    ("resolved_share", "按期办结率", "On-time resolution"),
    ("rework_share", "返工率", "Rework"),
)


async def league(
    session: AsyncSession, unit: UnitRef, period: Period, policy: StatsPolicy
) -> list[LeagueRow]:
    """Departments called to the unit's issues reported in the period (no permission check:
    callers check the unit). Ranked by on-time report-in, then on-time resolution, then less
    rework; a department with fewer than ``policy.league_min_cases`` cases is listed unranked."""
    await _custom_plans(session)
    start, end = period.bounds(policy.zone)
    ctx_community = await _ancestor(session, unit, UnitKind.community)
    communities: Any = (
        [ctx_community]
        if unit.kind.level > UnitKind.community.level
        else select(col(Unit.id))
        .where(col(Unit.path).like(unit.path + "%"), col(Unit.kind) == UnitKind.community.value)
        .scalar_subquery()
    )
    e = IssueEvent
    kind, note = col(e.kind), col(e.note)
    after_report_in = and_(
        col(Issue.reported_in_at).is_not(None), col(e.at) >= col(Issue.reported_in_at)
    )
    events = (
        select(
            col(e.issue_id).label("issue_id"),
            func.max(
                case((and_(kind == EventKind.overdue.value, note == "report_in"), 1), else_=0)
            ).label("late_report_in"),
            func.max(
                case(
                    (and_(kind.in_(_ids(BREACH_KINDS)), note == "handling", after_report_in), 1),
                    else_=0,
                )
            ).label("late_handling"),
            func.max(
                case((and_(kind == EventKind.reopened.value, after_report_in), 1), else_=0)
            ).label("reopened"),
        )
        .join(Issue, col(Issue.id) == col(e.issue_id))
        .where(col(Issue.department_id).is_not(None))
        .where(col(Issue.community_id).in_(communities))
        .where(col(Issue.created_at) >= start, col(Issue.created_at) < end)
        .group_by(col(e.issue_id))
        .subquery("department_events")
    )
    grid_filter = col(Issue.grid_id) == unit.id if unit.kind == UnitKind.grid else literal(True)
    reported_in = col(Issue.reported_in_at).is_not(None)
    resolved = col(Issue.status).in_(_ids(RESOLVED_STATUSES))
    rows = await session.execute(
        select(
            col(Issue.department_id),
            col(Member.display_name),
            func.count(),
            _sum(and_(reported_in, func.coalesce(events.c.late_report_in, 0) == 0)),
            _sum(reported_in),
            _sum(and_(reported_in, resolved, func.coalesce(events.c.late_handling, 0) == 0)),
            _sum(func.coalesce(events.c.reopened, 0) == 1),
        )
        .select_from(Issue)
        .join(Member, col(Member.id) == col(Issue.department_id))
        .outerjoin(events, events.c.issue_id == col(Issue.id))
        .where(col(Issue.community_id).in_(communities), grid_filter)
        .where(col(Issue.created_at) >= start, col(Issue.created_at) < end)
        .group_by(col(Issue.department_id), col(Member.display_name))
    )
    table = [
        LeagueRow(
            int(d), str(name), int(n), int(a or 0), int(b or 0), int(c or 0), int(r or 0), None
        )
        for d, name, n, a, b, c, r in rows.all()
    ]

    def order(row: LeagueRow) -> tuple[float, float, float, str]:
        return (
            -(row.report_in_share or 0.0),
            -(row.resolved_share or 0.0),
            row.rework_share or 0.0,
            row.name,
        )

    ranked = sorted((r for r in table if r.cases >= policy.league_min_cases), key=order)
    unranked = sorted((r for r in table if r.cases < policy.league_min_cases), key=order)
    return [
        LeagueRow(**{**r.__dict__, "rank": place}) for place, r in enumerate(ranked, start=1)
    ] + unranked


async def league_for(
    session: AsyncSession, actor: Actor, unit_id: int, period: Period, policy: StatsPolicy
) -> tuple[UnitRef, list[LeagueRow]]:
    unit = await require_unit(session, actor, unit_id)
    return unit, await league(session, unit, period, policy)


# ---------------------------------------------------------------------------------------------
# Trend: the issue figures of the last periods, in one pass


@dataclass(frozen=True)
class TrendPoint:
    period: Period
    reported: int
    resolved_on_time_share: float | None
    satisfied_share: float | None


async def trend(
    session: AsyncSession,
    unit: UnitRef,
    period: Period,
    now: datetime,
    policy: StatsPolicy,
    count: int = TREND_PERIODS,
) -> list[TrendPoint]:
    """Issues reported, resolved on time and satisfaction for ``count`` periods ending with
    ``period`` (same definitions as the report; one statement, bucketed by period)."""
    await _custom_plans(session)
    periods = period.trend(count)
    bounds = [p.bounds(policy.zone) for p in periods]
    community_id, communities = await _community_ids(session, unit)
    ctx = Context(
        unit=unit,
        start=bounds[0][0],
        end=bounds[-1][1],
        now=now,
        breakdown=False,
        dialect=dialect(session),
        target_hours=policy.target_hours,
        year_start=bounds[0][0],
        community_id=community_id,
        communities=communities,
    )
    facts = _issue_facts(ctx, _unit_map(ctx))
    f = facts.c
    bucket = case(
        *((f.created_at < end, index) for index, (_, end) in enumerate(bounds)),
        else_=len(bounds) - 1,
    ).label("bucket")
    resolved = f.status.in_(_ids(RESOLVED_STATUSES))
    dismissed = f.status.in_(_ids(DISMISSED_STATUSES))
    rows = await session.execute(
        select(
            bucket,
            func.count(),
            _sum(and_(resolved, f.handling_breach == 0)),
            _sum(~dismissed),
            func.coalesce(func.sum(f.satisfied), 0),
            func.coalesce(func.sum(f.satisfied + f.basic + f.unsatisfied + f.no_answer), 0),
        ).group_by(bucket)
    )
    found = {
        int(b): (int(n), int(ok), int(den), int(sat), int(asked))
        for b, n, ok, den, sat, asked in rows.all()
    }
    points = []
    for index, p in enumerate(periods):
        n, ok, den, sat, asked = found.get(index, (0, 0, 0, 0, 0))
        points.append(TrendPoint(p, n, ok / den if den else None, sat / asked if asked else None))
    return points


# ---------------------------------------------------------------------------------------------
# The one-screen summary (chat and weekly digest)

CHILD_LINES = 12


def fmt_share(value: float | int | None) -> str:
    return "—" if value is None else f"{float(value):.0%}"


def fmt_number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value))


def period_label(t: Translator, period: Period) -> str:
    return t(
        PERIOD_KEYS[period.kind],
        key=period.key,
        first=period.first.isoformat(),
        last=period.last.isoformat(),
    )


PERIOD_KEYS: dict[PeriodKind, str] = {
    PeriodKind.week: N_("stats.period_week"),
    PeriodKind.month: N_("stats.period_month"),
    PeriodKind.quarter: N_("stats.period_quarter"),
    PeriodKind.year: N_("stats.period_year"),
    PeriodKind.custom: N_("stats.period_custom"),
}


def summary_text(t: Translator, report: Report) -> str:
    """The report as one message: the unit's figures by section, then one line per child."""
    v = report.total
    unit = f"{report.unit.label(t.locale)} ({report.unit.code})"
    lines = [t("stats.title", unit=unit, period=period_label(t, report.period))]
    if report.empty:
        lines.append(t("stats.nothing"))
    else:
        n, s = fmt_number, fmt_share
        lines += [
            t(
                "stats.issues",
                reported=n(v["issues_reported"]),
                accepted=s(v["issues_accepted_on_time_share"]),
                resolved=s(v["issues_resolved_on_time_share"]),
                reopened=n(v["issues_reopened"]),
            ),
            t(
                "stats.issue_times",
                accept=n(v["issues_median_hours_to_accept"]),
                resolve=n(v["issues_median_hours_to_resolve"]),
            ),
            t(
                "stats.satisfaction",
                satisfied=s(v["issues_satisfied_share"]),
                basic=s(v["issues_basic_share"]),
                unsatisfied=s(v["issues_unsatisfied_share"]),
                none=s(v["issues_no_answer_share"]),
            ),
            t(
                "stats.wishes",
                submitted=n(v["wishes_submitted"]),
                approved=n(v["wishes_approved"]),
                claimed=n(v["wishes_claimed"]),
                fulfilled=n(v["wishes_fulfilled"]),
                confirmed=n(v["wishes_confirmed"]),
                days=n(v["wishes_median_days_to_fulfil"]),
            ),
            t(
                "stats.meetings",
                held=n(v["meetings_held"]),
                attendance=s(v["meetings_attendance_share"]),
            ),
            t(
                "stats.members",
                volunteers=n(v["volunteers"]),
                active=n(v["volunteers_active"]),
                hours=n(v["service_hours"]),
                target=s(v["volunteers_at_target_share"]),
            ),
            t(
                "stats.points",
                awarded=n(v["points_awarded"]),
                redeemed=n(v["points_redeemed"]),
            ),
        ]
    lines.append(
        t(
            "stats.visits",
            covered=fmt_number(v["households_covered"]),
            households=fmt_number(v["households"]),
            share=fmt_share(v["households_covered_share"]),
            overdue=fmt_number(v["households_overdue"]),
        )
    )
    if report.overdue_by_tag:
        names = {tag.code: tag.label(t.locale) for tag in report.tags}
        tags = " · ".join(
            f"{names.get(code, code)} {count}"
            for code, count in sorted(report.overdue_by_tag.items(), key=lambda kv: -kv[1])
        )
        lines.append(t("stats.overdue_by_tag", tags=tags))
    lines.append(t("stats.overdue_now", count=fmt_number(v["issues_overdue_now"])))
    children = [row for row in report.rows if not row.own]
    if children:
        lines += ["", t("stats.children")]
        for row in children[:CHILD_LINES]:
            lines.append(
                t(
                    "stats.child",
                    unit=row.unit.label(t.locale),
                    reported=fmt_number(row.values["issues_reported"]),
                    resolved=fmt_share(row.values["issues_resolved_on_time_share"]),
                    coverage=fmt_share(row.values["households_covered_share"]),
                    hours=fmt_number(row.values["service_hours"]),
                )
            )
        if len(children) > CHILD_LINES:
            lines.append(t("stats.more_children", count=len(children) - CHILD_LINES))
    return "\n".join(lines)


def league_text(
    t: Translator, unit: UnitRef, period: Period, table: Sequence[LeagueRow], minimum: int
) -> str:
    lines = [
        t(
            "stats.league_title",
            unit=f"{unit.label(t.locale)} ({unit.code})",
            period=period_label(t, period),
        )
    ]
    if not table:
        lines.append(t("stats.league_empty"))
        return "\n".join(lines)
    for row in table:
        lines.append(
            t(
                "stats.league_row",
                rank=str(row.rank) if row.rank is not None else "–",
                name=row.name,
                cases=row.cases,
                report_in=fmt_share(row.report_in_share),
                resolved=fmt_share(row.resolved_share),
                rework=fmt_share(row.rework_share),
            )
        )
    if any(row.rank is None for row in table):
        lines.append(t("stats.league_unranked", minimum=minimum))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The summary's buttons (chat): down to a child, up to the parent, other periods, league, export

CHILD_BUTTONS = 8
KIND_LABELS: dict[PeriodKind, str] = {
    PeriodKind.week: N_("stats.kind_week"),
    PeriodKind.month: N_("stats.kind_month"),
    PeriodKind.quarter: N_("stats.kind_quarter"),
    PeriodKind.year: N_("stats.kind_year"),
}


def unit_button_label(t: Translator, unit: UnitRef) -> str:
    return f"{unit.label(t.locale)} ({unit.code})"[:60]


def summary_buttons(t: Translator, report: Report, today: date) -> list[list[Button]]:
    """``today`` is the local date: no button leads to a period that has not begun."""
    key = report.period.key
    rows: list[list[Button]] = []
    kids = [row.unit for row in report.rows if not row.own][:CHILD_BUTTONS]
    for index in range(0, len(kids), 2):
        rows.append(
            [
                Button(unit_button_label(t, u), payload=f"sx:{u.id}:{key}")
                for u in kids[index : index + 2]
            ]
        )
    if report.parent is not None:
        rows.append(
            [
                Button(
                    t("stats.up", unit=report.parent.label(t.locale)),
                    payload=f"sx:{report.parent.id}:{key}",
                )
            ]
        )
    unit_id = report.unit.id
    navigation = [
        Button(t("stats.previous"), payload=f"sx:{unit_id}:{report.period.previous().key}")
    ]
    this_month = current_period(PeriodKind.month, today)
    for kind, label in KIND_LABELS.items():
        if kind != report.period.kind:
            other = current_period(kind, min(report.period.last, this_month.last))
            navigation.append(Button(t(label), payload=f"sx:{unit_id}:{other.key}"))
    following = report.period.next()
    if following.first <= today:
        navigation.append(Button(t("stats.next"), payload=f"sx:{unit_id}:{following.key}"))
    rows.append(navigation)
    rows.append(
        [
            Button(t("stats.league"), payload=f"sxl:{unit_id}:{key}"),
            Button(t("stats.export"), payload=f"sxe:{unit_id}:{key}"),
        ]
    )
    return rows
