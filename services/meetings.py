"""Meetings: series with a recurrence, occurrences, reminders, RSVP, check-in, topics, minutes
and follow-up items. Every permission check for meetings lives here.

Who may do what:

* **organise** (create a series, move or cancel an occurrence, show the check-in code, see RSVPs,
  the agenda and attendance, post minutes, add follow-ups): the series' organiser, and holders
  of ``coordinator`` or ``grid_leader`` (or ``admin``) on a unit that covers the series' unit;
* **attend** (RSVP, check in, submit a topic, get the calendar file): the audience — everyone
  for an open meeting, holders of the chosen roles within the unit, or the named members — and
  the organisers;
* **close a follow-up**: its owner or an organiser.

Times are aware UTC everywhere; rules are expanded and dates typed in the installation's zone.
"""

from __future__ import annotations

import asyncio
import calendar
import re
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from dateutil.rrule import rrule, rrulestr
from sqlalchemy import ColumnElement, false, literal, or_, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.i18n import N_, Translator
from bot.settings import Settings
from models.issues import Issue, IssueSource, IssueStatus
from models.meetings import (
    Audience,
    CheckinMethod,
    FollowUpStatus,
    Meeting,
    MeetingAttendance,
    MeetingEvent,
    MeetingFollowUp,
    MeetingKind,
    MeetingReminder,
    MeetingRsvp,
    MeetingSeries,
    MeetingSeriesMember,
    MeetingStatus,
    MeetingTopic,
    ReminderKind,
    ReminderStatus,
    Rsvp,
)
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from services import issues, points
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.geo import distance_meters
from services.messages import Button, Message, Text
from services.org import subtree, unit_by_code, unit_by_id
from services.outbox import notify
from services.sql import insert_ignore, skip_locked

ORGANISER_ROLES: frozenset[Role] = frozenset({Role.coordinator, Role.grid_leader})
SERIES_UNIT_KINDS: frozenset[UnitKind] = frozenset(
    {UnitKind.street, UnitKind.community, UnitKind.grid, UnitKind.building}
)
TITLE_MAX = 100
VENUE_MAX = 200
TOPIC_MAX = 500
TOPICS_PER_PERSON = 5
MINUTES_MAX = 3500
FOLLOWUP_MAX = 500
DURATION_RANGE = (15, 12 * 60)
MAX_AHEAD = timedelta(days=2 * 366)
"""A series must first meet, and a meeting may be moved, at most this far ahead."""
MAX_INTERVAL = 12
ALLOWED_FREQS = ("WEEKLY", "MONTHLY", "YEARLY")
ALLOWED_PARTS = frozenset(
    {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST"}
)
CODE_DIGITS = 6
ATTENDANCE_RULE = "meeting_attended"
FOLLOWUP_CATEGORY = "other"
"""Issue category a tracked follow-up starts in."""
REMINDER_BATCH = 50
UPCOMING_LIMIT = 8
LISTING_DAYS = 62

KIND_NAMES: dict[MeetingKind, str] = {
    MeetingKind.council: N_("meetings.kind_council"),
    MeetingKind.joint: N_("meetings.kind_joint"),
    MeetingKind.branch: N_("meetings.kind_branch"),
    MeetingKind.cobuilding: N_("meetings.kind_cobuilding"),
    MeetingKind.custom: N_("meetings.kind_custom"),
}
WEEKDAY_NAMES = (
    N_("meetings.weekday_0"),
    N_("meetings.weekday_1"),
    N_("meetings.weekday_2"),
    N_("meetings.weekday_3"),
    N_("meetings.weekday_4"),
    N_("meetings.weekday_5"),
    N_("meetings.weekday_6"),
)
NTH_NAMES = {
    1: N_("meetings.nth_1"),
    2: N_("meetings.nth_2"),
    3: N_("meetings.nth_3"),
    4: N_("meetings.nth_4"),
    -1: N_("meetings.nth_last"),
}
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class MeetingRules:
    """The installation's meeting settings (from :class:`bot.settings.Settings`)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    reminder_minutes: tuple[int, ...] = (1440, 60)
    radius_m: int = 300
    checkin_early: timedelta = timedelta(minutes=30)
    checkin_late: timedelta = timedelta(minutes=30)
    plan_ahead: timedelta = timedelta(days=14)

    @classmethod
    def of(cls, settings: Settings) -> MeetingRules:
        return cls(
            zone=settings.zone,
            reminder_minutes=settings.meeting_reminder_minutes,
            radius_m=settings.meeting_checkin_radius_meters,
            checkin_early=timedelta(minutes=settings.meeting_checkin_early_minutes),
            checkin_late=timedelta(minutes=settings.meeting_checkin_late_minutes),
            plan_ahead=timedelta(days=settings.meeting_plan_days),
        )


# ---------------------------------------------------------------------------------------------
# Dates typed by people, and how dates are shown


_WHEN = re.compile(
    r"^(?:(?P<y>\d{4})\s*[-/.年]\s*)?(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:\s*[T ]?\s*(?P<H>\d{1,2})\s*(?:[:点时]\s*(?P<M>\d{1,2})?\s*分?)?)?$"
)


def _normalise(text: str) -> str:
    """Full-width digits and colons (typed on Chinese keyboards) become ASCII."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _local_date(match: re.Match[str], now_local: datetime) -> date:
    month, day = int(match["m"]), int(match["d"])
    year = int(match["y"]) if match["y"] else now_local.year
    if not 1 <= month <= 12:
        raise InvalidInput("meetings.no_such_month", month=month)
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise InvalidInput("meetings.no_such_date", year=year, month=month, day=day, days=days)
    found = date(year, month, day)
    if not match["y"] and found < now_local.date():
        # "12-08" typed in late December means next year's 8 December.
        days_next = calendar.monthrange(year + 1, month)[1]
        if day > days_next:
            raise InvalidInput(
                "meetings.no_such_date", year=year + 1, month=month, day=day, days=days_next
            )
        found = date(year + 1, month, day)
    return found


def parse_when(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A date and time typed in the installation's zone (``2026-12-08 19:00``, ``12-8 19:00``,
    ``12月8日 19:00``) as aware UTC; it must lie in the future and at most two years ahead."""
    match = _WHEN.match(_normalise(text))
    if match is None or match["H"] is None:
        raise InvalidInput("meetings.bad_when")
    now_local = now.astimezone(zone)
    day = _local_date(match, now_local)
    hour, minute = int(match["H"]), int(match["M"] or 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise InvalidInput("meetings.bad_time")
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise InvalidInput("meetings.time_skipped")  # a clock change skips this hour
    if moment <= now:
        raise InvalidInput("meetings.in_past")
    if moment > now + MAX_AHEAD:
        raise InvalidInput("meetings.too_far")
    return moment


def parse_day(text: str, zone: ZoneInfo, now: datetime) -> date:
    """A date typed in the installation's zone (today or later, at most two years ahead)."""
    match = _WHEN.match(_normalise(text))
    if match is None or match["H"] is not None:
        raise InvalidInput("meetings.bad_day")
    now_local = now.astimezone(zone)
    day = _local_date(match, now_local)
    if day < now_local.date():
        raise InvalidInput("meetings.day_in_past")
    if day > (now + MAX_AHEAD).date():
        raise InvalidInput("meetings.too_far")
    return day


def format_when(t: Translator, moment: datetime, zone: ZoneInfo) -> str:
    """A moment in the reader's language and the installation's zone: ``12月8日 周二 19:00``."""
    return format_datetime(moment.astimezone(zone), t("meetings.when_pattern"), locale=t.locale)


def format_day(t: Translator, day: date) -> str:
    return format_datetime(
        datetime(day.year, day.month, day.day), t("meetings.day_pattern"), locale=t.locale
    )


def format_span(t: Translator, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return f"{format_when(t, start, zone)}–{end.astimezone(zone):%H:%M}"


# ---------------------------------------------------------------------------------------------
# Recurrence (python-dateutil's rrule, in the installation's zone)


@dataclass(frozen=True)
class Preset:
    """A common recurrence, derived from the first meeting's date."""

    code: str
    rrule: str | None


def presets(first_start: datetime, zone: ZoneInfo) -> list[Preset]:
    """Once; weekly; monthly and every two months on the same weekday of the month (2nd Tue, or
    the last one); monthly and every two months on the same day (the last day of shorter
    months when the day is the 29th, 30th or 31st)."""
    local = first_start.astimezone(zone)
    weekday = RRULE_DAYS[local.weekday()]
    nth = (local.day - 1) // 7 + 1
    if nth == 5:
        nth = -1
    by_weekday = f"BYDAY={nth:+d}{weekday}"
    if local.day <= 28:
        by_day = f"BYMONTHDAY={local.day}"
    else:
        by_day = "BYMONTHDAY=" + ",".join(str(d) for d in range(28, local.day + 1)) + ";BYSETPOS=-1"
    return [
        Preset("once", None),
        Preset("weekly", "FREQ=WEEKLY"),
        Preset("monthly_weekday", f"FREQ=MONTHLY;{by_weekday}"),
        Preset("monthly_day", f"FREQ=MONTHLY;{by_day}"),
        Preset("bimonthly_weekday", f"FREQ=MONTHLY;INTERVAL=2;{by_weekday}"),
        Preset("bimonthly_day", f"FREQ=MONTHLY;INTERVAL=2;{by_day}"),
    ]


def _parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not key or not value.strip():
            raise InvalidInput("meetings.bad_rule", detail=item.strip()[:40] or ";")
        if key in parts:
            raise InvalidInput("meetings.bad_rule", detail=key[:40])
        parts[key] = value.strip().upper()
    return parts


def normalise_rule(text: str) -> str:
    """Check an RRULE typed by a person (``FREQ=MONTHLY;BYDAY=2TU``, with or without the
    ``RRULE:`` prefix) against what meetings need; returns it in canonical form."""
    text = _normalise(text).removeprefix("RRULE:").removeprefix("rrule:").strip().rstrip(";")
    if not text or len(text) > 200:
        raise InvalidInput("meetings.bad_rule", detail=text[:40] or "-")
    parts = _parts(text)
    unknown = sorted(set(parts) - ALLOWED_PARTS)
    if unknown:
        raise InvalidInput("meetings.bad_rule", detail=", ".join(unknown)[:40])
    if parts.get("FREQ") not in ALLOWED_FREQS:
        raise InvalidInput("meetings.rule_freq")
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= MAX_INTERVAL:
        raise InvalidInput("meetings.rule_interval", limit=MAX_INTERVAL)
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidInput("meetings.bad_rule", detail="COUNT + UNTIL")
    if "UNTIL" in parts and not re.fullmatch(r"\d{8}(T\d{6}Z)?", parts["UNTIL"]):
        raise InvalidInput("meetings.bad_rule", detail="UNTIL")
    if "UNTIL" in parts and "T" not in parts["UNTIL"]:
        parts["UNTIL"] += "T235959Z"
    if "COUNT" in parts and not (parts["COUNT"].isdigit() and 1 <= int(parts["COUNT"]) <= 500):
        raise InvalidInput("meetings.bad_rule", detail="COUNT")
    ordered = ["FREQ", *sorted(k for k in parts if k != "FREQ")]
    canonical = ";".join(f"{k}={parts[k]}" for k in ordered)
    try:
        rrulestr(canonical, dtstart=datetime(2026, 1, 1, tzinfo=UTC))
    except (ValueError, TypeError) as error:
        raise InvalidInput("meetings.bad_rule", detail=str(error)[:60]) from None
    if _impossible_month_days(parts):
        raise InvalidInput("meetings.never_occurs")
    return canonical


def _impossible_month_days(parts: dict[str, str]) -> bool:
    """True when no month named in BYMONTH has any day named in BYMONTHDAY (31 February):
    answered at once instead of searching the calendar to the year 9999."""
    if "BYMONTH" not in parts or "BYMONTHDAY" not in parts:
        return False
    try:
        months = [int(m) for m in parts["BYMONTH"].split(",")]
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
    except ValueError:
        return False
    longest = {m: calendar.monthrange(2028, m)[1] for m in range(1, 13) if 1 <= m <= 12}
    return not any(m in longest and 1 <= abs(d) <= longest[m] for m in months for d in days)


def _rule(first_start: datetime, rule_text: str, zone: ZoneInfo) -> rrule:
    parsed = rrulestr(rule_text, dtstart=first_start.astimezone(zone))
    assert isinstance(parsed, rrule)
    return parsed


def occurrences(
    first_start: datetime,
    rule_text: str | None,
    zone: ZoneInfo,
    after: datetime,
    before: datetime,
) -> list[datetime]:
    """Starts (aware UTC) of the occurrences in ``[after, before]``. The rule is applied to the
    wall-clock time in ``zone``: "19:00 every second Tuesday" stays 19:00 local."""
    if rule_text is None:
        return [first_start] if after <= first_start <= before else []
    rule = _rule(first_start, rule_text, zone)
    found = rule.between(after.astimezone(zone), before.astimezone(zone), inc=True)
    return [moment.astimezone(UTC) for moment in found]


def next_occurrence(
    first_start: datetime, rule_text: str | None, zone: ZoneInfo, after: datetime
) -> datetime | None:
    """The first start at or after ``after``, or None when the rule has run out."""
    if rule_text is None:
        return first_start if first_start >= after else None
    found = _rule(first_start, rule_text, zone).after(after.astimezone(zone), inc=True)
    return found.astimezone(UTC) if found is not None else None


async def preview(
    first_start: datetime, rule_text: str | None, zone: ZoneInfo, count: int = 3
) -> list[datetime]:
    """The first ``count`` meetings of a rule. A rule that never occurs (31 February) or not
    within two years is refused with a clear answer. Unusual rules can take the calendar a
    second or two to rule out, so the search runs off the event loop."""

    def search() -> list[datetime]:
        if rule_text is None:
            return [first_start]
        rule = _rule(first_start, rule_text, zone)
        limit = first_start + MAX_AHEAD
        found: list[datetime] = []
        moment = rule.after(first_start.astimezone(zone), inc=True)
        while moment is not None and len(found) < count and moment <= limit:
            found.append(moment.astimezone(UTC))
            moment = rule.after(moment)
        return found

    found = await asyncio.to_thread(search)
    if not found:
        raise InvalidInput("meetings.never_occurs")
    return found


def describe_rule(
    t: Translator, rule_text: str | None, first_start: datetime, zone: ZoneInfo
) -> str:
    """The recurrence in words for the common shapes; the rule itself otherwise."""
    if rule_text is None:
        return t("meetings.rule_once")
    local = first_start.astimezone(zone)
    try:
        parts = _parts(rule_text)
    except InvalidInput:
        return rule_text
    interval = int(parts.pop("INTERVAL", "1"))
    freq = parts.pop("FREQ", "")
    time_of_day = f"{local:%H:%M}"
    if freq == "WEEKLY" and not parts:
        weekday = t(WEEKDAY_NAMES[local.weekday()])
        if interval == 1:
            return t("meetings.rule_weekly", weekday=weekday, time=time_of_day)
        return t("meetings.rule_weeks", n=interval, weekday=weekday, time=time_of_day)
    if freq == "MONTHLY" and set(parts) == {"BYDAY"}:
        found = re.fullmatch(r"([+-]?\d)(MO|TU|WE|TH|FR|SA|SU)", parts["BYDAY"])
        if found and int(found[1]) in NTH_NAMES:
            day = t(NTH_NAMES[int(found[1])]) + t(WEEKDAY_NAMES[RRULE_DAYS.index(found[2])])
            if interval == 1:
                return t("meetings.rule_monthly", day=day, time=time_of_day)
            return t("meetings.rule_months", n=interval, day=day, time=time_of_day)
    if freq == "MONTHLY" and "BYMONTHDAY" in parts and set(parts) <= {"BYMONTHDAY", "BYSETPOS"}:
        days = parts["BYMONTHDAY"].split(",")
        clamped = parts.get("BYSETPOS") == "-1" and len(days) > 1
        if (clamped or len(days) == 1) and all(d.isdigit() for d in days):
            day_text = t("meetings.day_n", day=int(days[-1]))
            if clamped:
                day_text = t("meetings.day_n_or_last", day=int(days[-1]))
            if interval == 1:
                return t("meetings.rule_monthly", day=day_text, time=time_of_day)
            return t("meetings.rule_months", n=interval, day=day_text, time=time_of_day)
    return t("meetings.rule_custom", rule=rule_text)


# ---------------------------------------------------------------------------------------------
# Views (plain data; never live ORM objects)


@dataclass(frozen=True)
class SeriesView:
    id: int
    kind: MeetingKind
    title: str
    unit: UnitRef
    organiser_id: int | None
    audience: Audience
    roles: tuple[Role, ...]
    venue: str
    latitude: float | None
    longitude: float | None
    radius_m: int
    first_start: datetime
    rrule: str | None
    duration_minutes: int
    ended: bool


@dataclass(frozen=True)
class MeetingView:
    id: int
    series: SeriesView
    starts_at: datetime
    ends_at: datetime
    status: MeetingStatus
    version: int
    minutes: str | None

    @property
    def title(self) -> str:
        return self.series.title

    @property
    def cancelled(self) -> bool:
        return self.status == MeetingStatus.cancelled


@dataclass(frozen=True)
class MeetingCard:
    """A meeting as one person sees it."""

    meeting: MeetingView
    my_rsvp: Rsvp | None
    checked_in: bool
    manage: bool
    attend: bool
    checkin_open: bool
    topics_open: bool
    counts: dict[Rsvp, int]
    attended: int
    topics: int
    followups: int


@dataclass(frozen=True)
class CheckinResult:
    meeting: MeetingView
    already: bool
    checked_in_at: datetime
    distance_m: int | None
    points: int = 0
    """Points this check-in earned (rule ``meeting_attended``; 0 when switched off or capped)."""
    minutes: int = 0
    """Service minutes logged for it (volunteers: the meeting's length)."""


@dataclass(frozen=True)
class RsvpSummary:
    meeting: MeetingView
    names: dict[Rsvp, list[str]]
    invited: int | None


@dataclass(frozen=True)
class TopicView:
    id: int
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class FollowUpView:
    id: int
    meeting_id: int
    text: str
    owner_id: int | None
    owner_name: str | None
    due_on: date | None
    status: FollowUpStatus
    issue_id: int | None = None
    issue_number: str | None = None
    issue_status: IssueStatus | None = None
    """The tracked issue made from the follow-up, and where it stands now."""


@dataclass(frozen=True)
class PersonRef:
    member_id: int
    name: str


@dataclass(frozen=True)
class AttendanceRow:
    meeting_id: int
    starts_at: datetime
    cancelled: bool
    invited: int | None
    coming: int
    attended: int


@dataclass(frozen=True)
class AttendanceReport:
    series: SeriesView
    rows: list[AttendanceRow]
    regulars: list[tuple[str, int]]
    """Members with how many of the listed meetings they attended, most first."""


@dataclass(frozen=True)
class SeriesDraft:
    kind: MeetingKind
    title: str
    unit_code: str
    first_start: datetime
    rrule: str | None
    venue: str
    audience: Audience = Audience.open
    roles: Sequence[Role] = ()
    member_ids: Sequence[int] = ()
    latitude: float | None = None
    longitude: float | None = None
    duration_minutes: int = 90
    radius_m: int | None = None
    organiser_id: int | None = None
    """The member who runs it (defaults to the person creating it)."""


def _series_view(series: MeetingSeries, unit: Unit) -> SeriesView:
    assert series.id is not None
    return SeriesView(
        id=series.id,
        kind=MeetingKind(series.kind),
        title=series.title,
        unit=UnitRef.of(unit),
        organiser_id=series.organiser_id,
        audience=Audience(series.audience),
        roles=tuple(Role(r) for r in series.roles),
        venue=series.venue,
        latitude=series.latitude,
        longitude=series.longitude,
        radius_m=series.radius_m,
        first_start=series.first_start,
        rrule=series.rrule,
        duration_minutes=series.duration_minutes,
        ended=series.ended_at is not None,
    )


def _meeting_view(meeting: Meeting, series: SeriesView) -> MeetingView:
    assert meeting.id is not None
    return MeetingView(
        id=meeting.id,
        series=series,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        status=MeetingStatus(meeting.status),
        version=meeting.version,
        minutes=meeting.minutes,
    )


# ---------------------------------------------------------------------------------------------
# Loading, permissions and the audience


@dataclass
class _Loaded:
    meeting: Meeting
    series: MeetingSeries
    view: MeetingView


async def _load(session: AsyncSession, meeting_id: int, *, lock: bool = False) -> _Loaded:
    query = (
        select(Meeting, MeetingSeries, Unit)
        .join(MeetingSeries, col(MeetingSeries.id) == col(Meeting.series_id))
        .join(Unit, col(Unit.id) == col(MeetingSeries.unit_id))
        .where(col(Meeting.id) == meeting_id)
    )
    if lock:
        query = query.with_for_update(of=Meeting)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("meetings.unknown")
    meeting, series, unit = row
    return _Loaded(meeting, series, _meeting_view(meeting, _series_view(series, unit)))


async def _load_series(session: AsyncSession, series_id: int) -> tuple[MeetingSeries, SeriesView]:
    row = (
        await session.execute(
            select(MeetingSeries, Unit)
            .join(Unit, col(Unit.id) == col(MeetingSeries.unit_id))
            .where(col(MeetingSeries.id) == series_id)
        )
    ).first()
    if row is None:
        raise NotFound("meetings.unknown_series")
    return row[0], _series_view(row[0], row[1])


def can_manage(actor: Actor, series: SeriesView) -> bool:
    if actor.system:
        return True
    if actor.member_id is not None and actor.member_id == series.organiser_id:
        return True
    return actor.can(ORGANISER_ROLES, series.unit)


def _require_manage(actor: Actor, series: SeriesView, action: str) -> None:
    if not can_manage(actor, series):
        actor.refuse(f"meetings: {action} (series {series.id})", series.unit)


async def _named(session: AsyncSession, member_id: int | None) -> set[int]:
    """Series that name this member in their audience."""
    if member_id is None:
        return set()
    rows = await session.execute(
        select(col(MeetingSeriesMember.series_id)).where(
            col(MeetingSeriesMember.member_id) == member_id
        )
    )
    return set(rows.scalars())


def _may_attend(actor: Actor, series: SeriesView, named: set[int]) -> bool:
    if can_manage(actor, series):
        return True
    if not actor.is_member:
        return False
    if series.audience == Audience.open:
        return True
    if series.audience == Audience.roles:
        return any(g.role in series.roles and g.unit.within(series.unit) for g in actor.grants)
    return series.id in named


async def may_attend(session: AsyncSession, actor: Actor, series: SeriesView) -> bool:
    return _may_attend(actor, series, await _named(session, actor.member_id))


async def _require_attend(session: AsyncSession, actor: Actor, series: SeriesView) -> None:
    if not await may_attend(session, actor, series):
        raise PermissionDenied("meetings.not_in_audience")


async def audience_member_ids(session: AsyncSession, series: SeriesView) -> list[int]:
    """Who is invited: members holding a (chosen) role within the unit, or the named ones;
    the organiser always."""
    if series.audience == Audience.members:
        query = select(col(MeetingSeriesMember.member_id)).where(
            col(MeetingSeriesMember.series_id) == series.id
        )
    else:
        query = (
            select(col(RoleGrant.member_id))
            .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
            .where(col(Unit.path).startswith(series.unit.path))
        )
        if series.audience == Audience.roles:
            query = query.where(col(RoleGrant.role).in_([r.value for r in series.roles]))
    ids = set((await session.execute(query.distinct())).scalars())
    if series.organiser_id is not None:
        ids.add(series.organiser_id)
    return sorted(ids)


async def _names(session: AsyncSession, member_ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(member_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name)).where(col(Member.id).in_(wanted))
    )
    return {int(member_id or 0): str(name) for member_id, name in rows.all()}


def _event(
    meeting_id: int, actor: Actor, action: str, now: datetime, **detail: Any
) -> MeetingEvent:
    return MeetingEvent(
        meeting_id=meeting_id, actor_id=actor.member_id, action=action, detail=detail, at=now
    )


# ---------------------------------------------------------------------------------------------
# Series: creation and planning


async def organiser_units(session: AsyncSession, actor: Actor) -> list[UnitRef]:
    """Units the actor may call meetings for."""
    found: dict[int, UnitRef] = {}
    for scope in actor.scopes(ORGANISER_ROLES):
        for unit in await subtree(session, scope, set(SERIES_UNIT_KINDS)):
            found[unit.id] = unit
    return sorted(found.values(), key=lambda u: (u.kind.level, u.code))


async def audience_candidates(session: AsyncSession, actor: Actor, unit_id: int) -> list[PersonRef]:
    """Members the actor may name as a meeting's audience: those holding a role within the
    unit, staff first, then by name."""
    unit = await unit_by_id(session, unit_id)
    actor.require(ORGANISER_ROLES, unit, "list meeting audience")
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name), col(RoleGrant.role))
        .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(col(Unit.path).startswith(unit.path))
    )
    staff_rank: dict[int, int] = {}
    names: dict[int, str] = {}
    order = list(Role)
    for found_id, name, role in rows.all():
        member_id = int(found_id or 0)
        rank = len(order) - order.index(Role(role))
        staff_rank[member_id] = max(staff_rank.get(member_id, 0), rank)
        names[member_id] = str(name)
    ranked = sorted(names, key=lambda m: (-staff_rank[m], names[m], m))
    return [PersonRef(m, names[m]) for m in ranked]


def _check_text(value: str, limit: int, empty_key: str, long_key: str) -> str:
    value = " ".join(value.split()) if "\n" not in value else value.strip()
    if not value:
        raise InvalidInput(empty_key)
    if len(value) > limit:
        raise InvalidInput(long_key, limit=limit)
    return value


def _check_location(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise InvalidInput("meetings.bad_location")
    if (
        latitude is not None
        and longitude is not None
        and not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput("meetings.bad_location")


async def create_series(
    session: AsyncSession,
    actor: Actor,
    draft: SeriesDraft,
    now: datetime,
    rules: MeetingRules,
    *,
    quiet: bool = False,
) -> tuple[SeriesView, list[MeetingView]]:
    """Create a series and plan its first occurrences (with their invitations and reminders;
    ``quiet`` plans without them, for demo data)."""
    unit = await unit_by_code(session, draft.unit_code)
    actor.require(ORGANISER_ROLES, unit, "create a meeting series")
    if unit.kind not in SERIES_UNIT_KINDS:
        raise InvalidInput("meetings.bad_unit_kind", kind=unit.kind.value)
    title = _check_text(
        draft.title, TITLE_MAX, N_("meetings.title_empty"), N_("meetings.title_too_long")
    )
    venue = _check_text(
        draft.venue, VENUE_MAX, N_("meetings.venue_empty"), N_("meetings.venue_too_long")
    )
    _check_location(draft.latitude, draft.longitude)
    if not DURATION_RANGE[0] <= draft.duration_minutes <= DURATION_RANGE[1]:
        raise InvalidInput("meetings.bad_duration", low=DURATION_RANGE[0], high=DURATION_RANGE[1])
    radius = draft.radius_m if draft.radius_m is not None else rules.radius_m
    if not 10 <= radius <= 5000:
        raise InvalidInput("meetings.bad_radius")
    if draft.first_start <= now:
        raise InvalidInput("meetings.in_past")
    if draft.first_start > now + MAX_AHEAD:
        raise InvalidInput("meetings.too_far")
    rule_text = normalise_rule(draft.rrule) if draft.rrule else None
    await preview(draft.first_start, rule_text, rules.zone, count=1)
    roles = sorted({Role(r) for r in draft.roles}, key=list(Role).index)
    if draft.audience == Audience.roles and not roles:
        raise InvalidInput("meetings.no_roles")
    member_ids = sorted(set(draft.member_ids))
    if draft.audience == Audience.members:
        if not member_ids:
            raise InvalidInput("meetings.no_members")
        known = await _names(session, member_ids)
        if len(known) != len(member_ids):
            raise NotFound("meetings.member_unknown")
    organiser_id = draft.organiser_id if draft.organiser_id is not None else actor.member_id
    if organiser_id is not None and not await _names(session, [organiser_id]):
        raise NotFound("meetings.member_unknown")

    series = MeetingSeries(
        kind=draft.kind,
        title=title,
        unit_id=unit.id,
        organiser_id=organiser_id,
        audience=draft.audience,
        roles=[r.value for r in roles] if draft.audience == Audience.roles else [],
        venue=venue,
        latitude=draft.latitude,
        longitude=draft.longitude,
        radius_m=radius,
        first_start=draft.first_start,
        rrule=rule_text,
        duration_minutes=draft.duration_minutes,
        created_by=actor.member_id,
        created_at=now,
    )
    session.add(series)
    await session.flush()
    assert series.id is not None
    if draft.audience == Audience.members:
        for member_id in member_ids:
            session.add(MeetingSeriesMember(series_id=series.id, member_id=member_id))
        await session.flush()
    meetings = await plan_series(session, series, now, rules, quiet=quiet)
    _, view = await _load_series(session, series.id)
    return view, meetings


async def _new_code(session: AsyncSession) -> str:
    for _ in range(20):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        taken = (
            await session.execute(select(col(Meeting.id)).where(col(Meeting.checkin_code) == code))
        ).first()
        if taken is None:
            return code
    raise Conflict()


def _reminders_for(
    meeting_id: int, version: int, starts_at: datetime, now: datetime, rules: MeetingRules
) -> list[dict[str, Any]]:
    rows = []
    for minutes in rules.reminder_minutes:
        due = starts_at - timedelta(minutes=minutes)
        if due > now:
            rows.append(
                {
                    "meeting_id": meeting_id,
                    "kind": ReminderKind.before.value,
                    "minutes_before": minutes,
                    "version": version,
                    "due_at": due,
                    "status": ReminderStatus.pending.value,
                    "dedupe_key": f"m{meeting_id}:v{version}:b{minutes}",
                }
            )
    return rows


async def _add_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:
        await insert_ignore(session, MeetingReminder, row, conflict=["dedupe_key"])


async def plan_series(
    session: AsyncSession,
    series: MeetingSeries,
    now: datetime,
    rules: MeetingRules,
    *,
    quiet: bool = False,
) -> list[MeetingView]:
    """Create the occurrences that start within the planning window (and always the next one),
    each with an invitation due now and reminders before it. Idempotent: an occurrence is keyed
    by its original start, so a moved or cancelled one is never created again. ``quiet`` plans
    without invitations or reminders (demo data)."""
    assert series.id is not None
    if series.ended_at is not None:
        return []
    zone = rules.zone
    upcoming = next_occurrence(series.first_start, series.rrule, zone, now)
    if upcoming is None:
        series.ended_at = now
        return []
    target = max(now + rules.plan_ahead, upcoming)
    start_after = (
        max(now, series.planned_until + timedelta(seconds=1)) if series.planned_until else now
    )
    starts = occurrences(series.first_start, series.rrule, zone, start_after, target)
    unit = await session.get(Unit, series.unit_id)
    assert unit is not None
    view = _series_view(series, unit)
    created: list[MeetingView] = []
    for start in starts:
        values = {
            "series_id": series.id,
            "original_start": start,
            "starts_at": start,
            "ends_at": start + timedelta(minutes=series.duration_minutes),
            "status": MeetingStatus.scheduled.value,
            "version": 1,
            "checkin_code": await _new_code(session),
            "created_at": now,
        }
        meeting_id = await insert_ignore(
            session, Meeting, values, conflict=["series_id", "original_start"], returning="id"
        )
        if meeting_id is None:
            continue
        meeting_id = int(meeting_id)
        session.add(
            MeetingEvent(meeting_id=meeting_id, actor_id=None, action="planned", detail={}, at=now)
        )
        if not quiet:
            await _add_reminders(
                session,
                [
                    {
                        "meeting_id": meeting_id,
                        "kind": ReminderKind.invitation.value,
                        "minutes_before": 0,
                        "version": 1,
                        "due_at": now,
                        "status": ReminderStatus.pending.value,
                        "dedupe_key": f"m{meeting_id}:v1:inv",
                    },
                    *_reminders_for(meeting_id, 1, start, now, rules),
                ],
            )
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None
        created.append(_meeting_view(meeting, view))
    series.planned_until = target
    if series.rrule is None:
        series.ended_at = now  # a one-off is planned once
    await session.flush()
    return created


async def plan_all(session: AsyncSession, now: datetime, rules: MeetingRules) -> int:
    """Plan every live series (the planning job); returns how many occurrences were created."""
    query = skip_locked(
        session,
        select(MeetingSeries)
        .where(col(MeetingSeries.ended_at).is_(None))
        .order_by(col(MeetingSeries.id)),
    )
    created = 0
    for series in list((await session.execute(query)).scalars()):
        created += len(await plan_series(session, series, now, rules))
    return created


def _managed_filter(actor: Actor) -> ColumnElement[bool]:
    """SQL for "the actor may organise this series" (narrows; :func:`can_manage` decides)."""
    conditions: list[ColumnElement[bool]] = [
        col(Unit.path).startswith(scope.path) for scope in actor.scopes(ORGANISER_ROLES)
    ]
    if actor.member_id is not None:
        conditions.append(col(MeetingSeries.organiser_id) == actor.member_id)
    return or_(false(), *conditions)


def _listed_filter(actor: Actor, named: set[int]) -> ColumnElement[bool]:
    """SQL for "the actor is invited to or organises this series": the series' unit covers
    one of the actor's units, or the actor is named, or organises it."""
    if actor.system:
        return true()
    covering = [literal(grant.unit.path).startswith(col(Unit.path)) for grant in actor.grants]
    conditions = [*covering, _managed_filter(actor)]
    if named:
        conditions.append(col(MeetingSeries.id).in_(sorted(named)))
    return or_(*conditions)


async def managed_series(session: AsyncSession, actor: Actor) -> list[SeriesView]:
    """Series the actor runs or may organise, newest first."""
    query = (
        select(MeetingSeries, Unit)
        .join(Unit, col(Unit.id) == col(MeetingSeries.unit_id))
        .order_by(col(MeetingSeries.id).desc())
        .limit(200)
    )
    if not actor.system:
        query = query.where(_managed_filter(actor))
    rows = await session.execute(query)
    views = [_series_view(series, unit) for series, unit in rows.all()]
    return [view for view in views if can_manage(actor, view)]


async def managed_series_view(session: AsyncSession, actor: Actor, series_id: int) -> SeriesView:
    _, view = await _load_series(session, series_id)
    _require_manage(actor, view, "look after series")
    return view


async def end_series(
    session: AsyncSession, actor: Actor, series_id: int, now: datetime
) -> SeriesView:
    """No more occurrences are planned; those already planned stay (cancel them one by one)."""
    series, view = await _load_series(session, series_id)
    _require_manage(actor, view, "end series")
    if series.ended_at is None:
        series.ended_at = now
    _, view = await _load_series(session, series_id)
    return view


# ---------------------------------------------------------------------------------------------
# Listing and the meeting card


def _checkin_window(meeting: MeetingView, rules: MeetingRules) -> tuple[datetime, datetime]:
    return meeting.starts_at - rules.checkin_early, meeting.ends_at + rules.checkin_late


async def upcoming_for(
    session: AsyncSession,
    actor: Actor,
    now: datetime,
    rules: MeetingRules,
    limit: int = UPCOMING_LIMIT,
) -> list[tuple[MeetingView, Rsvp | None]]:
    """My meetings that have not ended yet (those I am invited to or organise), soonest first,
    with my answer."""
    named = await _named(session, actor.member_id)
    rows = await session.execute(
        select(Meeting, MeetingSeries, Unit)
        .join(MeetingSeries, col(MeetingSeries.id) == col(Meeting.series_id))
        .join(Unit, col(Unit.id) == col(MeetingSeries.unit_id))
        .where(col(Meeting.status) == MeetingStatus.scheduled)
        .where(col(Meeting.ends_at) >= now - rules.checkin_late)
        .where(col(Meeting.starts_at) <= now + timedelta(days=LISTING_DAYS))
        .where(_listed_filter(actor, named))
        .order_by(col(Meeting.starts_at), col(Meeting.id))
        .limit(200)
    )
    found: list[MeetingView] = []
    for meeting, series, unit in rows.all():
        view = _series_view(series, unit)
        if _audience_invites(actor, view, named):
            found.append(_meeting_view(meeting, view))
            if len(found) >= limit:
                break
    answers = await _my_answers(session, actor, [m.id for m in found])
    return [(m, answers.get(m.id)) for m in found]


def _audience_invites(actor: Actor, series: SeriesView, named: set[int]) -> bool:
    """Listed under /meetings: invited (open meetings: within the unit) or organising."""
    if can_manage(actor, series):
        return True
    if series.audience == Audience.open:
        return any(g.unit.within(series.unit) for g in actor.grants)
    return _may_attend(actor, series, named)


async def _my_answers(
    session: AsyncSession, actor: Actor, meeting_ids: Sequence[int]
) -> dict[int, Rsvp]:
    if actor.member_id is None or not meeting_ids:
        return {}
    rows = await session.execute(
        select(col(MeetingRsvp.meeting_id), col(MeetingRsvp.answer))
        .where(col(MeetingRsvp.member_id) == actor.member_id)
        .where(col(MeetingRsvp.meeting_id).in_(list(meeting_ids)))
    )
    return {int(m): Rsvp(a) for m, a in rows.all()}


async def _counts(session: AsyncSession, model: Any, meeting_id: int) -> int:
    from sqlalchemy import func

    return int(
        (
            await session.execute(
                select(func.count()).select_from(model).where(model.meeting_id == meeting_id)
            )
        ).scalar_one()
    )


async def meeting_card(
    session: AsyncSession, actor: Actor, meeting_id: int, now: datetime, rules: MeetingRules
) -> MeetingCard:
    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    manage = can_manage(actor, meeting.series)
    attend = await may_attend(session, actor, meeting.series)
    if not (manage or attend):
        raise PermissionDenied("meetings.not_in_audience")
    answers = await _my_answers(session, actor, [meeting_id])
    counts: Counter[Rsvp] = Counter()
    for (answer,) in (
        await session.execute(
            select(col(MeetingRsvp.answer)).where(col(MeetingRsvp.meeting_id) == meeting_id)
        )
    ).all():
        counts[Rsvp(answer)] += 1
    checked_in = False
    if actor.member_id is not None:
        checked_in = (
            await session.execute(
                select(col(MeetingAttendance.id))
                .where(col(MeetingAttendance.meeting_id) == meeting_id)
                .where(col(MeetingAttendance.member_id) == actor.member_id)
            )
        ).first() is not None
    opens, closes = _checkin_window(meeting, rules)
    live = not meeting.cancelled
    return MeetingCard(
        meeting=meeting,
        my_rsvp=answers.get(meeting_id),
        checked_in=checked_in,
        manage=manage,
        attend=attend,
        checkin_open=live and opens <= now <= closes,
        topics_open=live and now < meeting.starts_at,
        counts={answer: counts.get(answer, 0) for answer in Rsvp},
        attended=await _counts(session, MeetingAttendance, meeting_id),
        topics=await _counts(session, MeetingTopic, meeting_id),
        followups=await _counts(session, MeetingFollowUp, meeting_id),
    )


# ---------------------------------------------------------------------------------------------
# RSVP


async def rsvp(
    session: AsyncSession, actor: Actor, meeting_id: int, answer: Rsvp | str, now: datetime
) -> MeetingView:
    """Answer coming / not coming / maybe; answering again changes the answer."""
    try:
        answer = Rsvp(answer)
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    await _require_attend(session, actor, meeting.series)
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    if now >= meeting.ends_at:
        raise InvalidInput("meetings.is_over")
    assert actor.member_id is not None
    values = {
        "meeting_id": meeting_id,
        "member_id": actor.member_id,
        "answer": answer.value,
        "updated_at": now,
    }
    if not await insert_ignore(session, MeetingRsvp, values, conflict=["meeting_id", "member_id"]):
        await session.execute(
            update(MeetingRsvp)
            .where(col(MeetingRsvp.meeting_id) == meeting_id)
            .where(col(MeetingRsvp.member_id) == actor.member_id)
            .values(answer=answer.value, updated_at=now)
        )
    return meeting


async def rsvp_summary(session: AsyncSession, actor: Actor, meeting_id: int) -> RsvpSummary:
    """Counts and names per answer (organisers)."""
    loaded = await _load(session, meeting_id)
    _require_manage(actor, loaded.view.series, "see RSVPs")
    rows = await session.execute(
        select(col(MeetingRsvp.answer), col(Member.display_name))
        .join(Member, col(Member.id) == col(MeetingRsvp.member_id))
        .where(col(MeetingRsvp.meeting_id) == meeting_id)
        .order_by(col(MeetingRsvp.updated_at), col(Member.id))
    )
    names: dict[Rsvp, list[str]] = {answer: [] for answer in Rsvp}
    for answer, name in rows.all():
        names[Rsvp(answer)].append(str(name))
    return RsvpSummary(loaded.view, names, loaded.meeting.invited_count)


# ---------------------------------------------------------------------------------------------
# Check-in


async def checkin_code(
    session: AsyncSession, actor: Actor, meeting_id: int, now: datetime, rules: MeetingRules
) -> tuple[MeetingView, str, datetime, datetime]:
    """The code to show in the room, with the window in which it works (organisers)."""
    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    _require_manage(actor, meeting.series, "show check-in code")
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    opens, closes = _checkin_window(meeting, rules)
    return meeting, loaded.meeting.checkin_code, opens, closes


def _check_window(meeting: MeetingView, now: datetime, rules: MeetingRules, key: str) -> None:
    opens, closes = _checkin_window(meeting, rules)
    if now < opens:
        raise InvalidInput(
            "meetings.checkin_not_yet", opens=f"{opens.astimezone(rules.zone):%m-%d %H:%M}"
        )
    if now > closes:
        raise InvalidInput(key, closed=f"{closes.astimezone(rules.zone):%m-%d %H:%M}")


async def _record_checkin(
    session: AsyncSession,
    actor: Actor,
    meeting: MeetingView,
    method: CheckinMethod,
    now: datetime,
    distance: int | None,
    rules: MeetingRules,
) -> CheckinResult:
    assert actor.member_id is not None
    inserted = await insert_ignore(
        session,
        MeetingAttendance,
        {
            "meeting_id": meeting.id,
            "member_id": actor.member_id,
            "method": method.value,
            "distance_m": distance,
            "checked_in_at": now,
        },
        conflict=["meeting_id", "member_id"],
        returning="id",
    )
    if inserted is None:
        first = (
            await session.execute(
                select(col(MeetingAttendance.checked_in_at))
                .where(col(MeetingAttendance.meeting_id) == meeting.id)
                .where(col(MeetingAttendance.member_id) == actor.member_id)
            )
        ).scalar_one()
        return CheckinResult(meeting, True, first, distance)
    earned, minutes = await _credit_attendance(session, actor, meeting, now, rules)
    return CheckinResult(meeting, False, now, distance, earned, minutes)


async def _credit_attendance(
    session: AsyncSession, actor: Actor, meeting: MeetingView, now: datetime, rules: MeetingRules
) -> tuple[int, int]:
    """Attendance earns the ``meeting_attended`` points, once per attendee and meeting (the
    ledger's unique key). Volunteers, who owe service hours, also log the meeting's length
    (at most a day); staff attend as part of their work and residents owe none."""
    assert actor.member_id is not None
    entry = await points.award(
        session,
        member_id=actor.member_id,
        rule_code=ATTENDANCE_RULE,
        source="meeting",
        source_id=meeting.id,
        now=now,
        actor=actor,
        zone=rules.zone,
    )
    minutes = 0
    if Role.volunteer in actor.roles:
        length = int((meeting.ends_at - meeting.starts_at).total_seconds() // 60)
        length = max(1, min(length, 24 * 60))
        logged = await points.log_hours(
            session,
            member_id=actor.member_id,
            hours=Decimal(length) / 60,
            source="meeting",
            source_id=meeting.id,
            now=now,
            actor=actor,
            note=meeting.title[:100],
        )
        minutes = length if logged else 0
    return (entry.points if entry else 0), minutes


def normalise_code(text: str) -> str:
    return re.sub(r"[\s-]", "", _normalise(text))


async def check_in_with_code(
    session: AsyncSession,
    actor: Actor,
    code: str,
    now: datetime,
    rules: MeetingRules,
    meeting_id: int | None = None,
) -> CheckinResult:
    """Check in with the code shown in the room. ``meeting_id`` binds the check-in to one
    meeting (pressed on its card): a code of another meeting is refused."""
    code = normalise_code(code)
    if not re.fullmatch(rf"\d{{{CODE_DIGITS}}}", code):
        raise InvalidInput("meetings.code_shape", digits=CODE_DIGITS)
    found = (
        await session.execute(select(col(Meeting.id)).where(col(Meeting.checkin_code) == code))
    ).scalar_one_or_none()
    if found is None:
        raise InvalidInput("meetings.code_unknown")
    if meeting_id is not None and found != meeting_id:
        raise InvalidInput("meetings.code_other_meeting")
    meeting = (await _load(session, found)).view
    await _require_attend(session, actor, meeting.series)
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    _check_window(meeting, now, rules, N_("meetings.code_expired"))
    return await _record_checkin(session, actor, meeting, CheckinMethod.code, now, None, rules)


async def open_for_checkin(
    session: AsyncSession, actor: Actor, now: datetime, rules: MeetingRules
) -> list[MeetingView]:
    """Meetings whose check-in window is open now and that the actor may attend."""
    rows = await session.execute(
        select(Meeting, MeetingSeries, Unit)
        .join(MeetingSeries, col(MeetingSeries.id) == col(Meeting.series_id))
        .join(Unit, col(Unit.id) == col(MeetingSeries.unit_id))
        .where(col(Meeting.status) == MeetingStatus.scheduled)
        .where(col(Meeting.starts_at) <= now + rules.checkin_early)
        .where(col(Meeting.ends_at) >= now - rules.checkin_late)
        .order_by(col(Meeting.starts_at))
    )
    named = await _named(session, actor.member_id)
    found = []
    for meeting, series, unit in rows.all():
        view = _series_view(series, unit)
        if _may_attend(actor, view, named):
            found.append(_meeting_view(meeting, view))
    return found


async def check_in_with_location(
    session: AsyncSession,
    actor: Actor,
    latitude: float,
    longitude: float,
    now: datetime,
    rules: MeetingRules,
    meeting_id: int | None = None,
) -> CheckinResult:
    """Check in by sharing one's location within the venue's radius. Without ``meeting_id``
    the nearest meeting open for check-in that the person may attend is used."""
    _check_location(latitude, longitude)
    if meeting_id is not None:
        meeting = (await _load(session, meeting_id)).view
        await _require_attend(session, actor, meeting.series)
        if meeting.cancelled:
            raise InvalidInput("meetings.is_cancelled", title=meeting.title)
        _check_window(meeting, now, rules, N_("meetings.checkin_closed"))
        candidates = [meeting]
    else:
        candidates = await open_for_checkin(session, actor, now, rules)
        if not candidates:
            raise InvalidInput("meetings.nothing_open")
    located = [
        (
            distance_meters(latitude, longitude, m.series.latitude, m.series.longitude),
            m,
        )
        for m in candidates
        if m.series.latitude is not None and m.series.longitude is not None
    ]
    if not located:
        raise InvalidInput("meetings.no_venue_location")
    distance, meeting = min(located, key=lambda pair: pair[0])
    if distance > meeting.series.radius_m:
        raise InvalidInput(
            "meetings.too_far_away",
            distance=_round_distance(distance),
            radius=meeting.series.radius_m,
        )
    return await _record_checkin(
        session, actor, meeting, CheckinMethod.location, now, round(distance), rules
    )


def _round_distance(metres: float) -> str:
    if metres >= 10_000:
        return f"{metres / 1000:.0f} km"
    if metres >= 1000:
        return f"{metres / 1000:.1f} km"
    return f"{metres:.0f} m"


async def attendees(session: AsyncSession, actor: Actor, meeting_id: int) -> list[PersonRef]:
    loaded = await _load(session, meeting_id)
    _require_manage(actor, loaded.view.series, "see attendance")
    rows = await session.execute(
        select(col(Member.id), col(Member.display_name))
        .join(MeetingAttendance, col(MeetingAttendance.member_id) == col(Member.id))
        .where(col(MeetingAttendance.meeting_id) == meeting_id)
        .order_by(col(MeetingAttendance.checked_in_at), col(Member.id))
    )
    return [PersonRef(int(m or 0), str(n)) for m, n in rows.all()]


# ---------------------------------------------------------------------------------------------
# Topics (the agenda)


async def topic_meetings(
    session: AsyncSession, actor: Actor, now: datetime, rules: MeetingRules
) -> list[MeetingView]:
    """Upcoming meetings the actor may submit topics for."""
    listed = await upcoming_for(session, actor, now, rules, limit=UPCOMING_LIMIT)
    named = await _named(session, actor.member_id)
    return [m for m, _ in listed if m.starts_at > now and _may_attend(actor, m.series, named)]


async def submit_topic(
    session: AsyncSession, actor: Actor, meeting_id: int, text: str, now: datetime
) -> MeetingView:
    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    await _require_attend(session, actor, meeting.series)
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    if now >= meeting.starts_at:
        raise InvalidInput("meetings.topics_closed")
    text = _check_text(text, TOPIC_MAX, N_("meetings.topic_empty"), N_("meetings.topic_too_long"))
    assert actor.member_id is not None
    mine = (
        await session.execute(
            select(col(MeetingTopic.id))
            .where(col(MeetingTopic.meeting_id) == meeting_id)
            .where(col(MeetingTopic.member_id) == actor.member_id)
        )
    ).all()
    if len(mine) >= TOPICS_PER_PERSON:
        raise InvalidInput("meetings.topic_limit", limit=TOPICS_PER_PERSON)
    session.add(
        MeetingTopic(meeting_id=meeting_id, member_id=actor.member_id, text=text, created_at=now)
    )
    await session.flush()
    return meeting


async def agenda(
    session: AsyncSession, actor: Actor, meeting_id: int
) -> tuple[MeetingView, list[TopicView]]:
    loaded = await _load(session, meeting_id)
    _require_manage(actor, loaded.view.series, "see the agenda")
    rows = await session.execute(
        select(MeetingTopic, col(Member.display_name))
        .join(Member, col(Member.id) == col(MeetingTopic.member_id))
        .where(col(MeetingTopic.meeting_id) == meeting_id)
        .order_by(col(MeetingTopic.created_at), col(MeetingTopic.id))
    )
    topics = []
    for topic, name in rows.all():
        assert topic.id is not None
        topics.append(TopicView(topic.id, str(name), topic.text, topic.created_at))
    return loaded.view, topics


# ---------------------------------------------------------------------------------------------
# Moving and cancelling an occurrence


def meeting_buttons(t: Translator, meeting_id: int) -> list[list[Button]]:
    """RSVP buttons and the calendar file, under every invitation and reminder."""
    return [
        [
            Button(t("meetings.rsvp_yes"), payload=f"mtg_rsvp:{meeting_id}:yes"),
            Button(t("meetings.rsvp_no"), payload=f"mtg_rsvp:{meeting_id}:no"),
            Button(t("meetings.rsvp_maybe"), payload=f"mtg_rsvp:{meeting_id}:maybe"),
        ],
        [
            Button(t("meetings.ics_button"), payload=f"mtg_ics:{meeting_id}"),
            Button(t("meetings.details_button"), payload=f"mtg_card:{meeting_id}"),
        ],
    ]


def meeting_summary(t: Translator, meeting: MeetingView, zone: ZoneInfo) -> str:
    """Title, kind, time and venue: the head of every meeting message."""
    series = meeting.series
    lines = [
        t("meetings.summary_title", title=series.title, kind=t(KIND_NAMES[series.kind])),
        t("meetings.summary_when", when=format_span(t, meeting.starts_at, meeting.ends_at, zone)),
        t("meetings.summary_venue", venue=series.venue),
    ]
    return "\n".join(lines)


Render = Callable[[Translator], Message]


def per_language(render: Render) -> Render:
    """Render a message once per language, not once per recipient (a council can invite
    thousands)."""
    cache: dict[str, Message] = {}

    def cached(t: Translator) -> Message:
        if t.locale not in cache:
            cache[t.locale] = render(t)
        return cache[t.locale]

    return cached


async def _tell_audience(
    session: AsyncSession,
    meeting: MeetingView,
    now: datetime,
    key: str,
    render: Render,
) -> int:
    recipients = await audience_member_ids(session, meeting.series)
    render = per_language(render)
    loaded_members = await _preload_members(session, recipients)
    for member_id in recipients:
        await notify(session, member_id, now, render, dedupe_key=f"{key}:{member_id}")
    del loaded_members
    return len(recipients)


async def _preload_members(session: AsyncSession, member_ids: Sequence[int]) -> list[Member]:
    """Load the recipients in a few queries, so that each notification finds its member in the
    session instead of asking the database again (keep the list while notifying)."""
    loaded: list[Member] = []
    for start in range(0, len(member_ids), 1000):
        chunk = list(member_ids[start : start + 1000])
        rows = await session.execute(select(Member).where(col(Member.id).in_(chunk)))
        loaded += list(rows.scalars())
    return loaded


async def move_meeting(
    session: AsyncSession,
    actor: Actor,
    meeting_id: int,
    new_start: datetime,
    now: datetime,
    rules: MeetingRules,
) -> MeetingView:
    """Move one occurrence: its pending reminders are cancelled and planned anew for the new
    time, and everyone invited is told (with the RSVP buttons again)."""
    loaded = await _load(session, meeting_id, lock=True)
    old = loaded.view
    _require_manage(actor, old.series, "move meeting")
    if old.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=old.title)
    if now >= old.starts_at:
        raise InvalidInput("meetings.already_started")
    if new_start <= now:
        raise InvalidInput("meetings.in_past")
    if new_start > now + MAX_AHEAD:
        raise InvalidInput("meetings.too_far")
    if new_start == old.starts_at:
        raise InvalidInput("meetings.same_time")
    meeting = loaded.meeting
    duration = meeting.ends_at - meeting.starts_at
    meeting.version += 1
    meeting.starts_at = new_start
    meeting.ends_at = new_start + duration
    await _cancel_reminders(session, meeting_id, now)
    await _add_reminders(
        session, _reminders_for(meeting_id, meeting.version, new_start, now, rules)
    )
    session.add(
        _event(
            meeting_id,
            actor,
            "moved",
            now,
            old=old.starts_at.isoformat(),
            new=new_start.isoformat(),
            version=meeting.version,
        )
    )
    await session.flush()
    moved = _meeting_view(meeting, old.series)

    def render(t: Translator) -> Message:
        text = "\n".join(
            [
                t("meetings.moved_notice", old=format_when(t, old.starts_at, rules.zone)),
                meeting_summary(t, moved, rules.zone),
                t("meetings.please_answer_again"),
            ]
        )
        return Text(text, meeting_buttons(t, meeting_id))

    await _tell_audience(session, moved, now, f"mtg-moved:{meeting_id}:v{meeting.version}", render)
    return moved


async def _cancel_reminders(session: AsyncSession, meeting_id: int, now: datetime) -> None:
    await session.execute(
        update(MeetingReminder)
        .where(col(MeetingReminder.meeting_id) == meeting_id)
        .where(col(MeetingReminder.status) == ReminderStatus.pending)
        .values(status=ReminderStatus.cancelled, done_at=now)
    )


async def cancel_meeting(
    session: AsyncSession, actor: Actor, meeting_id: int, now: datetime, rules: MeetingRules
) -> MeetingView:
    """Cancel one occurrence: nothing more is sent for it, and everyone invited is told."""
    loaded = await _load(session, meeting_id, lock=True)
    meeting = loaded.view
    _require_manage(actor, meeting.series, "cancel meeting")
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    if now >= meeting.ends_at:
        raise InvalidInput("meetings.is_over")
    loaded.meeting.status = MeetingStatus.cancelled
    loaded.meeting.cancelled_at = now
    await _cancel_reminders(session, meeting_id, now)
    session.add(_event(meeting_id, actor, "cancelled", now))
    await session.flush()
    cancelled = _meeting_view(loaded.meeting, meeting.series)

    def render(t: Translator) -> Message:
        return Text(
            t(
                "meetings.cancelled_notice",
                title=meeting.title,
                when=format_when(t, meeting.starts_at, rules.zone),
            )
        )

    await _tell_audience(session, cancelled, now, f"mtg-cancelled:{meeting_id}", render)
    return cancelled


# ---------------------------------------------------------------------------------------------
# Minutes and follow-up items


async def save_minutes(
    session: AsyncSession,
    actor: Actor,
    meeting_id: int,
    text: str,
    now: datetime,
    rules: MeetingRules,
) -> MeetingView:
    """Post (or correct) the minutes once the meeting has begun; those who checked in get them
    the first time they are posted."""
    loaded = await _load(session, meeting_id, lock=True)
    meeting = loaded.view
    _require_manage(actor, meeting.series, "post minutes")
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    if now < meeting.starts_at:
        raise InvalidInput("meetings.not_started")
    text = _check_text(
        text, MINUTES_MAX, N_("meetings.minutes_empty"), N_("meetings.minutes_too_long")
    )
    first = loaded.meeting.minutes is None
    loaded.meeting.minutes = text
    loaded.meeting.minutes_at = now
    loaded.meeting.minutes_by = actor.member_id
    session.add(_event(meeting_id, actor, "minutes", now, first=first))
    await session.flush()
    view = _meeting_view(loaded.meeting, meeting.series)
    if first:
        present = await session.execute(
            select(col(MeetingAttendance.member_id)).where(
                col(MeetingAttendance.meeting_id) == meeting_id
            )
        )

        def render(t: Translator) -> Message:
            head = t(
                "meetings.minutes_notice",
                title=meeting.title,
                when=format_when(t, meeting.starts_at, rules.zone),
            )
            return Text(f"{head}\n\n{text}")

        for member_id in present.scalars():
            if member_id != actor.member_id:
                await notify(
                    session,
                    member_id,
                    now,
                    render,
                    dedupe_key=f"mtg-minutes:{meeting_id}:{member_id}",
                )
    return view


async def owner_choices(session: AsyncSession, actor: Actor, meeting_id: int) -> list[PersonRef]:
    """Who a follow-up can be given to: the organiser, the person adding it, and those who
    checked in."""
    loaded = await _load(session, meeting_id)
    series = loaded.view.series
    _require_manage(actor, series, "list follow-up owners")
    ids = [m for m in (series.organiser_id, actor.member_id) if m is not None]
    present = await session.execute(
        select(col(MeetingAttendance.member_id))
        .where(col(MeetingAttendance.meeting_id) == meeting_id)
        .order_by(col(MeetingAttendance.checked_in_at))
    )
    ids += list(present.scalars())
    names = await _names(session, ids)
    seen: list[int] = []
    for member_id in ids:
        if member_id not in seen and member_id in names:
            seen.append(member_id)
    return [PersonRef(m, names[m]) for m in seen]


def _followup_view(
    item: MeetingFollowUp,
    names: dict[int, str],
    tracked: dict[int, tuple[str, IssueStatus]] | None = None,
) -> FollowUpView:
    assert item.id is not None
    number, state = (tracked or {}).get(item.issue_id or 0, (None, None))
    return FollowUpView(
        id=item.id,
        meeting_id=item.meeting_id,
        text=item.text,
        owner_id=item.owner_id,
        owner_name=names.get(item.owner_id) if item.owner_id is not None else None,
        due_on=item.due_on,
        status=FollowUpStatus(item.status),
        issue_id=item.issue_id,
        issue_number=number,
        issue_status=state,
    )


async def _tracked(
    session: AsyncSession, items: Iterable[MeetingFollowUp]
) -> dict[int, tuple[str, IssueStatus]]:
    """Number and status of the issues made from these follow-ups."""
    ids = [i.issue_id for i in items if i.issue_id is not None]
    if not ids:
        return {}
    rows = await session.execute(
        select(col(Issue.id), col(Issue.number), col(Issue.status)).where(col(Issue.id).in_(ids))
    )
    return {int(i): (str(n), IssueStatus(s)) for i, n, s in rows.all() if i is not None}


async def add_followup(
    session: AsyncSession,
    actor: Actor,
    meeting_id: int,
    text: str,
    owner_id: int | None,
    due_on: date | None,
    now: datetime,
    rules: MeetingRules,
) -> FollowUpView:
    """Turn a decision into a follow-up item with an owner and a due date; the owner is told.
    An organiser can then make it a tracked issue (:func:`track_followup`)."""
    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    _require_manage(actor, meeting.series, "add follow-up")
    if meeting.cancelled:
        raise InvalidInput("meetings.is_cancelled", title=meeting.title)
    if now < meeting.starts_at:
        raise InvalidInput("meetings.not_started")
    text = _check_text(
        text, FOLLOWUP_MAX, N_("meetings.followup_empty"), N_("meetings.followup_too_long")
    )
    if owner_id is not None and owner_id not in {
        p.member_id for p in await owner_choices(session, actor, meeting_id)
    }:
        raise PermissionDenied()
    if due_on is not None and due_on < now.astimezone(rules.zone).date():
        raise InvalidInput("meetings.day_in_past")
    item = MeetingFollowUp(
        meeting_id=meeting_id,
        text=text,
        owner_id=owner_id,
        due_on=due_on,
        status=FollowUpStatus.open,
        created_by=actor.member_id,
        created_at=now,
    )
    session.add(item)
    await session.flush()
    assert item.id is not None
    session.add(_event(meeting_id, actor, "followup", now, followup=item.id))
    names = await _names(session, [owner_id] if owner_id is not None else [])
    view = _followup_view(item, names)
    if owner_id is not None and owner_id != actor.member_id:
        item_id = item.id

        def render(t: Translator) -> Message:
            due = format_day(t, due_on) if due_on else t("meetings.no_due")
            return Text(
                t("meetings.followup_assigned", title=meeting.title, text=text, due=due),
                [[Button(t("meetings.followup_done_button"), payload=f"mtg_fu:{item_id}:done")]],
            )

        await notify(session, owner_id, now, render, dedupe_key=f"mtg-fu:{item.id}")
    return view


async def followups(
    session: AsyncSession, actor: Actor, meeting_id: int
) -> tuple[MeetingView, list[FollowUpView]]:
    loaded = await _load(session, meeting_id)
    _require_manage(actor, loaded.view.series, "list follow-ups")
    items = list(
        (
            await session.execute(
                select(MeetingFollowUp)
                .where(col(MeetingFollowUp.meeting_id) == meeting_id)
                .order_by(col(MeetingFollowUp.id))
            )
        ).scalars()
    )
    names = await _names(session, [i.owner_id for i in items if i.owner_id is not None])
    tracked = await _tracked(session, items)
    return loaded.view, [_followup_view(i, names, tracked) for i in items]


async def track_followup(
    session: AsyncSession,
    actor: Actor,
    followup_id: int,
    now: datetime,
    policy: issues.IssuePolicy,
) -> tuple[FollowUpView, issues.IssueView, bool]:
    """Make an open follow-up a tracked issue (organisers): reported at the series' unit with
    the meeting as its source (``meeting``, source id the follow-up's), in category "other"
    until someone picks a better one; the grid (or community) staff are told as for any
    report. The follow-up keeps the link and shows the issue's number and state. A second
    press returns the issue already made. Returns the follow-up, the issue and whether this
    call made it."""
    query = select(MeetingFollowUp).where(col(MeetingFollowUp.id) == followup_id)
    item = (await session.execute(query.with_for_update())).scalar_one_or_none()
    if item is None:
        raise NotFound("meetings.followup_unknown")
    assert item.id is not None
    meeting = (await _load(session, item.meeting_id)).view
    _require_manage(actor, meeting.series, "track follow-up")
    created = item.issue_id is None
    if created and FollowUpStatus(item.status) != FollowUpStatus.open:
        raise InvalidInput("meetings.followup_not_open")
    place = meeting.series.unit
    categories = await issues.categories_for(session, place)
    if not categories:
        raise InvalidInput("issues.category_unknown")
    category = next((c for c in categories if c.code == FOLLOWUP_CATEGORY), categories[-1])
    view = await issues.create_report(
        session,
        actor,
        issues.NewReport(
            category=category.id,
            description=f"{meeting.title}: {item.text}",
            unit_id=place.id,
            source=IssueSource.meeting,
            source_id=item.id,
        ),
        now,
        policy,
    )
    if created:
        item.issue_id = view.id
        session.add(
            _event(item.meeting_id, actor, "followup_issue", now, followup=item.id, issue=view.id)
        )
        await session.flush()
    names = await _names(session, [item.owner_id] if item.owner_id is not None else [])
    tracked = {view.id: (view.number, view.status)}
    return _followup_view(item, names, tracked), view, created


async def close_followup(
    session: AsyncSession,
    actor: Actor,
    followup_id: int,
    status: FollowUpStatus | str,
    now: datetime,
) -> tuple[FollowUpView, bool]:
    """Mark a follow-up done (or dropped): its owner or an organiser. Returns the item and
    whether this call changed it (a second press changes nothing)."""
    try:
        status = FollowUpStatus(status)
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    if status == FollowUpStatus.open:
        raise InvalidInput("core.stale_button")
    item = await session.get(MeetingFollowUp, followup_id)
    if item is None:
        raise NotFound("meetings.followup_unknown")
    loaded = await _load(session, item.meeting_id)
    if not (
        can_manage(actor, loaded.view.series)
        or (actor.member_id is not None and actor.member_id == item.owner_id)
    ):
        actor.refuse("close follow-up", loaded.view.series.unit)
    changed = item.status == FollowUpStatus.open
    if changed:
        item.status = status
        item.closed_at = now
        item.closed_by = actor.member_id
        session.add(
            _event(
                item.meeting_id,
                actor,
                "followup_closed",
                now,
                followup=followup_id,
                status=status.value,
            )
        )
        await session.flush()
    names = await _names(session, [item.owner_id] if item.owner_id is not None else [])
    return _followup_view(item, names, await _tracked(session, [item])), changed


# ---------------------------------------------------------------------------------------------
# Attendance over time


async def attendance_report(
    session: AsyncSession, actor: Actor, series_id: int, now: datetime, last: int = 12
) -> AttendanceReport:
    _, view = await _load_series(session, series_id)
    _require_manage(actor, view, "attendance report")
    meetings = list(
        reversed(
            (
                await session.execute(
                    select(Meeting)
                    .where(col(Meeting.series_id) == series_id)
                    .where(col(Meeting.starts_at) <= now)
                    .order_by(col(Meeting.starts_at).desc())
                    .limit(last)
                )
            )
            .scalars()
            .all()
        )
    )
    ids = [m.id for m in meetings if m.id is not None]
    attended: Counter[int] = Counter()
    per_member: Counter[int] = Counter()
    coming: Counter[int] = Counter()
    if ids:
        for meeting_id, member_id in (
            await session.execute(
                select(col(MeetingAttendance.meeting_id), col(MeetingAttendance.member_id)).where(
                    col(MeetingAttendance.meeting_id).in_(ids)
                )
            )
        ).all():
            attended[meeting_id] += 1
            per_member[member_id] += 1
        for (meeting_id,) in (
            await session.execute(
                select(col(MeetingRsvp.meeting_id))
                .where(col(MeetingRsvp.meeting_id).in_(ids))
                .where(col(MeetingRsvp.answer) == Rsvp.yes)
            )
        ).all():
            coming[meeting_id] += 1
    rows = [
        AttendanceRow(
            meeting_id=m.id,
            starts_at=m.starts_at,
            cancelled=m.status == MeetingStatus.cancelled,
            invited=m.invited_count,
            coming=coming[m.id],
            attended=attended[m.id],
        )
        for m in meetings
        if m.id is not None
    ]
    names = await _names(session, per_member)
    regulars = sorted(
        ((names.get(m, "?"), n) for m, n in per_member.items()), key=lambda p: (-p[1], p[0])
    )
    return AttendanceReport(view, rows, regulars)


# ---------------------------------------------------------------------------------------------
# Calendar file


async def meeting_ics(
    session: AsyncSession, actor: Actor, meeting_id: int, now: datetime, t: Translator
) -> tuple[MeetingView, bytes, str]:
    """An iCalendar file for one meeting (anyone who may attend it). The UID stays the same
    and SEQUENCE follows the moves, so a calendar updates the event instead of adding one."""
    from icalendar import Calendar, Event, vGeo

    loaded = await _load(session, meeting_id)
    meeting = loaded.view
    await _require_attend(session, actor, meeting.series)
    calendar_ = Calendar()
    calendar_.add("prodid", "-//gridbot//meetings//EN")
    calendar_.add("version", "2.0")
    calendar_.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"meeting-{meeting.id}@gridbot")
    event.add("dtstamp", now)
    event.add("dtstart", meeting.starts_at)
    event.add("dtend", meeting.ends_at)
    event.add("sequence", meeting.version - 1)
    event.add("summary", meeting.title)
    event.add("location", meeting.series.venue)
    event.add("description", t(KIND_NAMES[meeting.series.kind]))
    event.add("status", "CANCELLED" if meeting.cancelled else "CONFIRMED")
    if meeting.series.latitude is not None and meeting.series.longitude is not None:
        event.add("geo", vGeo((meeting.series.latitude, meeting.series.longitude)))
    calendar_.add_component(event)
    return meeting, calendar_.to_ical(), f"meeting-{meeting.id}.ics"


# ---------------------------------------------------------------------------------------------
# Reminders (the reminder job)


def _lead(t: Translator, minutes: int) -> str:
    if minutes % 1440 == 0:
        return t("meetings.lead_days", n=minutes // 1440)
    if minutes % 60 == 0:
        return t("meetings.lead_hours", n=minutes // 60)
    return t("meetings.lead_minutes", n=minutes)


async def send_due_reminders(
    session: AsyncSession, now: datetime, rules: MeetingRules, limit: int = REMINDER_BATCH
) -> int:
    """Claim due reminders, queue them for everyone invited and mark them, in the caller's
    transaction. A reminder for a cancelled or since-moved occurrence, or one that comes due
    only after the meeting began (the bot was down), is marked and not sent; of several
    reminders due at once for one meeting only the latest goes out. Returns how many were
    sent."""
    query = skip_locked(
        session,
        select(MeetingReminder)
        .where(col(MeetingReminder.status) == ReminderStatus.pending)
        .where(col(MeetingReminder.due_at) <= now)
        .order_by(col(MeetingReminder.due_at), col(MeetingReminder.id))
        .limit(limit),
    )
    due = list((await session.execute(query)).scalars())
    latest: dict[int, MeetingReminder] = {}
    for reminder in due:
        if reminder.kind == ReminderKind.before:
            latest[reminder.meeting_id] = reminder
    sent = 0
    for reminder in due:
        assert reminder.id is not None
        reminder.done_at = now
        loaded = await _load(session, reminder.meeting_id)
        meeting = loaded.view
        if meeting.cancelled or reminder.version != meeting.version:
            reminder.status = ReminderStatus.cancelled
            continue
        if now >= meeting.starts_at or (
            reminder.kind == ReminderKind.before and latest[reminder.meeting_id] is not reminder
        ):
            reminder.status = ReminderStatus.skipped
            continue
        render = _reminder_render(reminder, meeting, rules)
        recipients = await audience_member_ids(session, meeting.series)
        loaded_members = await _preload_members(session, recipients)
        for member_id in recipients:
            await notify(
                session, member_id, now, render, dedupe_key=f"mtg-rem:{reminder.id}:{member_id}"
            )
        del loaded_members
        reminder.status = ReminderStatus.sent
        reminder.recipients = len(recipients)
        if reminder.kind == ReminderKind.invitation:
            loaded.meeting.invited_count = len(recipients)
        sent += 1
    await session.flush()
    return sent


async def reminders_due(session: AsyncSession, now: datetime) -> bool:
    """Whether any reminder is still due (another batch is needed)."""
    found = await session.execute(
        select(col(MeetingReminder.id))
        .where(col(MeetingReminder.status) == ReminderStatus.pending)
        .where(col(MeetingReminder.due_at) <= now)
        .limit(1)
    )
    return found.first() is not None


def _reminder_render(
    reminder: MeetingReminder, meeting: MeetingView, rules: MeetingRules
) -> Render:
    minutes = reminder.minutes_before
    invitation = reminder.kind == ReminderKind.invitation

    def render(t: Translator) -> Message:
        if invitation:
            head = t("meetings.invitation_head")
            rule = describe_rule(t, meeting.series.rrule, meeting.series.first_start, rules.zone)
            body = [
                head,
                meeting_summary(t, meeting, rules.zone),
                t("meetings.summary_rule", rule=rule),
            ]
        else:
            body = [
                t("meetings.reminder_head", lead=_lead(t, minutes)),
                meeting_summary(t, meeting, rules.zone),
            ]
        body.append(t("meetings.reply_hint"))
        return Text("\n".join(body), meeting_buttons(t, meeting.id))

    return per_language(render)
