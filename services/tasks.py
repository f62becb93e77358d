"""Tasks with slots and emergency mobilisation. Every permission check for tasks lives here.

Who may do what:

* **organise** (create a task in a unit, see its takers, check them in and out, cancel it):
  holders of ``coordinator`` or ``grid_leader`` (or ``admin``) on a unit that covers the task's
  unit, and the task's organiser; an **emergency call** is for coordinators only;
* **take a slot / give it back**: members who were called (the announcement reached them) or
  who hold a role within the task's unit.

Never more takers than slots: the take row (unique per member and shift) and the conditional
``UPDATE task_shifts SET taken = taken + 1 WHERE taken < slots`` commit together or not at all;
a CHECK constraint backs the counter. Points and hours at check-out go through
:mod:`services.points` with source ``task`` and the shift's id, so each is awarded once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.i18n import N_, Translator, translator
from bot.settings import Settings
from models.members import Member, Role
from models.org import Unit, UnitKind
from models.outbox import Priority
from models.tasks import (
    Task,
    TaskCall,
    TaskEvent,
    TaskKind,
    TaskShift,
    TaskStatus,
    TaskTake,
    WidenStep,
)
from services import audiences, broadcasts, points
from services.access import Actor, UnitRef
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, quiet_until
from services.errors import Conflict, InvalidInput, NotFound
from services.meetings import format_when, parse_when
from services.messages import Button, Message, Text
from services.org import unit_by_id
from services.outbox import Outcomes, notify, outcomes
from services.sql import insert_ignore, skip_locked

ORGANISER_ROLES: frozenset[Role] = frozenset({Role.coordinator, Role.grid_leader})
EMERGENCY_ROLES: frozenset[Role] = frozenset({Role.coordinator})
TITLE_MAX = 100
PLACE_MAX = 200
SLOTS_RANGE = (1, 500)
SHIFTS_RANGE = (1, 12)
SHIFT_HOURS_RANGE = (1, 24)
WIDEN_RANGE = (5, 24 * 60)
MAX_SHIFT = timedelta(hours=24)
CHECKIN_EARLY = timedelta(minutes=60)
"""The organiser may check people in from this long before their shift starts."""
REMINDER_BATCH = 50
NO_SHOW_BATCH = 50
NO_SHOW_HORIZON = timedelta(days=7)
"""Shifts that ended longer ago than this (the bot was down, or they predate the no-show
rule) are settled without deductions."""
WIDEN_BATCH = 20
LIST_LIMIT = 10
WIDEN_ORDER: tuple[WidenStep, ...] = (WidenStep.reserve, WidenStep.volunteers, WidenStep.street)
STEP_NAMES: dict[WidenStep, str] = {
    WidenStep.reserve: N_("tasks.step_reserve"),
    WidenStep.volunteers: N_("tasks.step_volunteers"),
    WidenStep.street: N_("tasks.step_street"),
}


@dataclass(frozen=True)
class TaskRules:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    reminder: timedelta = timedelta(minutes=120)
    widen_minutes: int = 30
    no_show_grace: timedelta = timedelta(minutes=60)
    """After a shift ended this long, takers never checked in are marked no-shows."""
    quiet: BroadcastPolicy | None = None
    """Quiet hours: a plain task's announcement written during them waits until they end
    (emergency calls never wait). None: no quiet hours."""

    @classmethod
    def of(cls, settings: Settings) -> TaskRules:
        return cls(
            zone=settings.zone,
            reminder=timedelta(minutes=settings.task_reminder_minutes),
            widen_minutes=settings.task_widen_minutes,
            no_show_grace=timedelta(minutes=settings.task_no_show_grace_minutes),
            quiet=BroadcastPolicy.of(settings),
        )


# ---------------------------------------------------------------------------------------------
# Views


@dataclass(frozen=True)
class ShiftView:
    id: int
    number: int
    starts_at: datetime
    ends_at: datetime
    slots: int
    taken: int

    @property
    def full(self) -> bool:
        return self.taken >= self.slots


@dataclass(frozen=True)
class TaskView:
    id: int
    kind: TaskKind
    title: str
    place: str
    starts_at: datetime
    ends_at: datetime
    unit_id: int
    organiser_id: int | None
    urgent: bool
    status: TaskStatus
    widen_step: WidenStep | None
    widen_at: datetime | None
    called: int
    shifts: tuple[ShiftView, ...]

    @property
    def cancelled(self) -> bool:
        return self.status == TaskStatus.cancelled

    @property
    def slots(self) -> int:
        return sum(s.slots for s in self.shifts)

    @property
    def taken(self) -> int:
        return sum(s.taken for s in self.shifts)


def source_of(task_id: int) -> str:
    """The outbox source of a task's announcements, by which their delivery is counted."""
    return broadcasts.task_source_of(task_id)


@dataclass(frozen=True)
class TaskCard:
    """A task as one person sees it."""

    task: TaskView
    mine: frozenset[int]
    """The shifts this person has taken."""
    manage: bool
    delivery: Outcomes | None = None
    """How the announcements fared (organisers only)."""


@dataclass(frozen=True)
class Taker:
    take_id: int
    member_id: int
    name: str
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    minutes: int | None
    no_show_at: datetime | None = None


@dataclass(frozen=True)
class TakeResult:
    task: TaskView
    shift: ShiftView


@dataclass(frozen=True)
class CheckResult:
    task: TaskView
    shift: ShiftView
    taker: Taker
    points: int | None = None
    """Points awarded at check-out (None when the rule is off or already awarded)."""


@dataclass(frozen=True)
class TaskDraft:
    title: str
    place: str
    starts_at: datetime
    ends_at: datetime
    slots: int
    unit_id: int


@dataclass(frozen=True)
class EmergencyDraft:
    title: str
    place: str
    starts_at: datetime
    shifts: int
    shift_hours: int
    slots: int
    widen_minutes: int
    unit_id: int


def _shift_view(shift: TaskShift) -> ShiftView:
    assert shift.id is not None
    return ShiftView(
        shift.id, shift.number, shift.starts_at, shift.ends_at, shift.slots, shift.taken
    )


def _task_view(task: Task, shifts: Sequence[TaskShift]) -> TaskView:
    assert task.id is not None
    return TaskView(
        task.id,
        TaskKind(task.kind),
        task.title,
        task.place,
        task.starts_at,
        task.ends_at,
        task.unit_id,
        task.organiser_id,
        task.urgent,
        TaskStatus(task.status),
        WidenStep(task.widen_step) if task.widen_step else None,
        task.widen_at,
        task.called,
        tuple(_shift_view(s) for s in sorted(shifts, key=lambda s: s.number)),
    )


async def _load(session: AsyncSession, task_id: int) -> tuple[Task, list[TaskShift]]:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(N_("tasks.unknown"))
    shifts = list(
        (
            await session.execute(
                select(TaskShift)
                .where(col(TaskShift.task_id) == task_id)
                .order_by(col(TaskShift.number))
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    return task, shifts


async def task_view(session: AsyncSession, task_id: int) -> TaskView:
    task, shifts = await _load(session, task_id)
    return _task_view(task, shifts)


async def _shift(session: AsyncSession, shift_id: int) -> tuple[Task, TaskShift]:
    shift = await session.get(TaskShift, shift_id, populate_existing=True)
    if shift is None:
        raise NotFound(N_("tasks.unknown"))
    task = await session.get(Task, shift.task_id)
    assert task is not None
    return task, shift


# ---------------------------------------------------------------------------------------------
# Typed input


def _clean(value: str, limit: int, empty_key: str, long_key: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not text:
        raise InvalidInput(empty_key)
    if len(text) > limit:
        raise InvalidInput(long_key, limit=limit)
    return text


def clean_title(value: str) -> str:
    return _clean(value, TITLE_MAX, N_("tasks.title_empty"), N_("tasks.title_too_long"))


def clean_place(value: str) -> str:
    return _clean(value, PLACE_MAX, N_("tasks.place_empty"), N_("tasks.place_too_long"))


def _number(text: str, bounds: tuple[int, int], key: str) -> int:
    value = unicodedata.normalize("NFKC", text).strip()
    if not value.isdigit() or not bounds[0] <= int(value) <= bounds[1]:
        raise InvalidInput(key, low=bounds[0], high=bounds[1])
    return int(value)


def parse_slots(text: str) -> int:
    return _number(text, SLOTS_RANGE, N_("tasks.bad_slots"))


def parse_shifts(text: str) -> tuple[int, int]:
    """``3x8`` (three 8-hour shifts; ``×``, ``*`` and spaces also work) or ``1``."""
    value = unicodedata.normalize("NFKC", text).strip().lower().replace("×", "x").replace("*", "x")
    count, sep, length = value.partition("x")
    if not sep:
        raise InvalidInput(N_("tasks.bad_shifts"))
    shifts = _number(count, SHIFTS_RANGE, N_("tasks.bad_shifts"))
    hours = _number(
        length.strip().removesuffix("h").strip(), SHIFT_HOURS_RANGE, N_("tasks.bad_shifts")
    )
    return shifts, hours


def parse_widen(text: str) -> int:
    return _number(text, WIDEN_RANGE, N_("tasks.bad_widen"))


def parse_start(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A start typed in the installation's zone (``2026-12-08 09:00``); in the future."""
    return parse_when(text, zone, now)


def parse_end(text: str, start: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """An end typed as a full date and time, or as ``HH:MM``: on the start's day, or the next
    day when that time is earlier than the start (``22:00``–``06:00`` is an overnight shift).
    After the start, at most 24 hours later; an end equal to the start is refused."""
    value = unicodedata.normalize("NFKC", text).strip().replace("：", ":")
    hour, sep, minute = value.partition(":")
    if sep and hour.isdigit() and minute.isdigit() and len(value) <= 5:
        if not (0 <= int(hour) <= 23 and 0 <= int(minute) <= 59):
            raise InvalidInput("meetings.bad_time")
        local = start.astimezone(zone).replace(hour=int(hour), minute=int(minute))
        if local < start:
            local += timedelta(days=1)
        end = local.astimezone(UTC)
    else:
        try:
            end = parse_when(text, zone, now)
        except InvalidInput as error:
            if error.key == "meetings.in_past":
                raise InvalidInput(N_("tasks.end_before_start")) from None
            raise
    if end <= start:
        raise InvalidInput(N_("tasks.end_before_start"))
    if end - start > MAX_SHIFT:
        raise InvalidInput(N_("tasks.too_long"), hours=int(MAX_SHIFT.total_seconds() // 3600))
    return end


def format_span(t: Translator, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    tail = f"{local_end:%H:%M}"
    if local_end.date() != local_start.date():
        tail = format_when(t, end, zone)
    return f"{format_when(t, start, zone)}–{tail}"


# ---------------------------------------------------------------------------------------------
# Permissions


def organiser_units(actor: Actor, emergency: bool = False) -> list[UnitRef]:
    """Where the actor may organise tasks (emergency calls: coordinators only)."""
    roles = EMERGENCY_ROLES if emergency else ORGANISER_ROLES
    return [u for u in actor.scopes(roles) if u.kind != UnitKind.building]


async def _unit(session: AsyncSession, unit_id: int) -> UnitRef:
    return await unit_by_id(session, unit_id)


async def _may_manage(session: AsyncSession, actor: Actor, task: Task) -> bool:
    if actor.system:
        return True
    if actor.member_id is not None and task.organiser_id == actor.member_id:
        return True
    unit = await _unit(session, task.unit_id)
    return actor.can(ORGANISER_ROLES, unit)


async def _require_manage(session: AsyncSession, actor: Actor, task: Task, action: str) -> None:
    if not await _may_manage(session, actor, task):
        actor.refuse(action)


async def _may_take(session: AsyncSession, actor: Actor, task: Task) -> bool:
    """Called by the announcement, or holding a role within the task's unit."""
    if actor.member_id is None:
        return False
    if await _may_manage(session, actor, task):
        return True
    called = await session.get(TaskCall, (task.id, actor.member_id))
    if called is not None:
        return True
    unit = await _unit(session, task.unit_id)
    return any(g.unit.within(unit) for g in actor.grants)


# ---------------------------------------------------------------------------------------------
# Audiences (who an announcement reaches)


async def _ancestor(session: AsyncSession, unit: UnitRef, kind: UnitKind) -> UnitRef | None:
    ids = [int(part) for part in unit.path.strip("/").split("/") if part]
    rows = (await session.execute(select(Unit).where(col(Unit.id).in_(ids)))).scalars()
    found = [UnitRef.of(u) for u in rows if UnitKind(u.kind) == kind]
    return found[0] if found else None


async def step_audience(session: AsyncSession, unit: UnitRef, step: WidenStep | None) -> Audience:
    """Who an announcement at ``step`` reaches: a plain task everyone in its unit; an emergency
    call the emergency reserve within the unit, then the volunteers of the organiser's
    community, then everyone in the street."""
    if step is None:
        return Audience(unit_ids=(unit.id,))
    if step == WidenStep.reserve:
        return Audience(unit_ids=(unit.id,), reserve=True)
    if step == WidenStep.volunteers:
        community = await _ancestor(session, unit, UnitKind.community) or unit
        return Audience(unit_ids=(community.id,), roles=(Role.volunteer.value,))
    street = await _ancestor(session, unit, UnitKind.street) or unit
    return Audience(unit_ids=(street.id,))


async def audience_for(session: AsyncSession, task: Task, step: WidenStep | None) -> list[int]:
    """The members the step reaches. The organiser's permission was checked when the task was
    created; the widening steps are the system's decision (the street lies above a community
    coordinator's scope), so the resolver runs as the system."""
    unit = await _unit(session, task.unit_id)
    audience = await step_audience(session, unit, step)
    return await audiences.resolve(session, Actor.cli(), audience)


# ---------------------------------------------------------------------------------------------
# Announcing


def task_text(t: Translator, task: TaskView, zone: ZoneInfo) -> str:
    head = N_("tasks.card_urgent") if task.urgent else N_("tasks.card_head")
    lines = [t(head, title=task.title)]
    lines.append(t("tasks.card_place", place=task.place))
    if len(task.shifts) == 1:
        shift = task.shifts[0]
        lines.append(
            t("tasks.card_when", when=format_span(t, shift.starts_at, shift.ends_at, zone))
        )
        lines.append(t("tasks.card_slots", taken=shift.taken, slots=shift.slots))
    else:
        for shift in task.shifts:
            lines.append(
                t(
                    "tasks.card_shift",
                    n=shift.number,
                    when=format_span(t, shift.starts_at, shift.ends_at, zone),
                    taken=shift.taken,
                    slots=shift.slots,
                )
            )
    if task.cancelled:
        lines.append(t("tasks.card_cancelled"))
    return "\n".join(lines)


def take_buttons(
    t: Translator, task: TaskView, now: datetime, mine: frozenset[int] = frozenset()
) -> list[list[Button]]:
    """One row per shift still ahead: "take" with the count, or "give back" when mine."""
    if task.cancelled:
        return []
    rows: list[list[Button]] = []
    single = len(task.shifts) == 1
    for shift in task.shifts:
        if now >= shift.starts_at:
            continue
        count = f"{shift.taken}/{shift.slots}"
        if shift.id in mine:
            key = N_("tasks.give_back") if single else N_("tasks.give_back_shift")
            rows.append(
                [Button(t(key, n=shift.number, count=count), payload=f"tk_back:{shift.id}")]
            )
        else:
            key = N_("tasks.take") if single else N_("tasks.take_shift")
            rows.append(
                [Button(t(key, n=shift.number, count=count), payload=f"tk_take:{shift.id}")]
            )
    return rows


async def _call(
    session: AsyncSession,
    task: Task,
    step: WidenStep | None,
    now: datetime,
    rules: TaskRules,
) -> int:
    """Announce the task to the step's audience, skipping everyone already called and the
    organiser; returns how many people were newly called. The announcement is a broadcast
    (recorded at the first call, the same one at each widening step) whose copies carry the
    take buttons, so the organiser gets its live report and sees it in /broadcasts."""
    assert task.id is not None
    task_id = task.id
    wanted = [m for m in await audience_for(session, task, step) if m != task.organiser_id]
    if not wanted:
        return 0
    already = set(
        (
            await session.execute(
                select(col(TaskCall.member_id)).where(col(TaskCall.task_id) == task.id)
            )
        ).scalars()
    )
    fresh = [m for m in wanted if m not in already]
    if not fresh:
        return 0
    step_code = step.value if step else "unit"
    for member_id in fresh:
        await insert_ignore(
            session,
            TaskCall,
            {"task_id": task.id, "member_id": member_id, "step": step_code, "called_at": now},
            conflict=["task_id", "member_id"],
        )
    view = await task_view(session, task.id)

    def render(t: Translator) -> Message:
        return Text(task_text(t, view, rules.zone), take_buttons(t, view, now))

    first = task.broadcast_id is None
    if task.broadcast_id is None:
        organiser = await session.get(Member, task.organiser_id) if task.organiser_id else None
        locale = organiser.locale if organiser else "zh_CN"
        waits = quiet_until(now, rules.quiet) if rules.quiet and not task.urgent else None
        unit = await _unit(session, task.unit_id)
        task.broadcast_id = await broadcasts.record(
            session,
            task.organiser_id,
            text=task_text(translator(locale), view, rules.zone),
            audience=await step_audience(session, unit, step),
            now=now,
            deliver_from=waits or now,
            urgent=task.urgent,
            ask_ack=True,
        )
    await broadcasts.deliver(
        session,
        task.broadcast_id,
        fresh,
        now,
        render,
        dedupe_key=lambda member_id: f"task-call:{task_id}:{member_id}",
    )
    if first:
        await broadcasts.start_report(session, task.broadcast_id, now, rules.zone)
    task.called += len(fresh)
    return len(fresh)


# ---------------------------------------------------------------------------------------------
# Creating


def _check_window(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise InvalidInput("meetings.in_past")
    if ends_at <= starts_at:
        raise InvalidInput(N_("tasks.end_before_start"))


async def _organiser_unit(
    session: AsyncSession, actor: Actor, unit_id: int, emergency: bool
) -> UnitRef:
    unit = await _unit(session, unit_id)
    roles = EMERGENCY_ROLES if emergency else ORGANISER_ROLES
    actor.require(roles, unit, "create emergency call" if emergency else "create task")
    if unit.kind == UnitKind.building:
        raise InvalidInput(N_("tasks.unit_too_small"))
    return unit


async def create_task(
    session: AsyncSession, actor: Actor, draft: TaskDraft, now: datetime, rules: TaskRules
) -> TaskView:
    """A task with one shift, announced to everyone in its unit."""
    await _organiser_unit(session, actor, draft.unit_id, emergency=False)
    title, place = clean_title(draft.title), clean_place(draft.place)
    if not SLOTS_RANGE[0] <= draft.slots <= SLOTS_RANGE[1]:
        raise InvalidInput(N_("tasks.bad_slots"), low=SLOTS_RANGE[0], high=SLOTS_RANGE[1])
    _check_window(draft.starts_at, draft.ends_at, now)
    if draft.ends_at - draft.starts_at > MAX_SHIFT:
        raise InvalidInput(N_("tasks.too_long"), hours=int(MAX_SHIFT.total_seconds() // 3600))
    task = Task(
        kind=TaskKind.task,
        title=title,
        place=place,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        unit_id=draft.unit_id,
        organiser_id=actor.member_id,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    assert task.id is not None
    session.add(
        TaskShift(
            task_id=task.id,
            number=1,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            slots=draft.slots,
            remind_at=draft.starts_at - rules.reminder,
        )
    )
    session.add(TaskEvent(task_id=task.id, actor_id=actor.member_id, action="created", at=now))
    await session.flush()
    if not await _call(session, task, None, now, rules):
        raise InvalidInput(N_("tasks.nobody"))
    return await task_view(session, task.id)


async def create_emergency(
    session: AsyncSession, actor: Actor, draft: EmergencyDraft, now: datetime, rules: TaskRules
) -> TaskView:
    """An urgent call with shifts back to back, to the emergency reserve first; it widens when
    slots stay empty for ``widen_minutes``."""
    await _organiser_unit(session, actor, draft.unit_id, emergency=True)
    title, place = clean_title(draft.title), clean_place(draft.place)
    if not SLOTS_RANGE[0] <= draft.slots <= SLOTS_RANGE[1]:
        raise InvalidInput(N_("tasks.bad_slots"), low=SLOTS_RANGE[0], high=SLOTS_RANGE[1])
    if not (
        SHIFTS_RANGE[0] <= draft.shifts <= SHIFTS_RANGE[1]
        and SHIFT_HOURS_RANGE[0] <= draft.shift_hours <= SHIFT_HOURS_RANGE[1]
    ):
        raise InvalidInput(N_("tasks.bad_shifts"))
    if not WIDEN_RANGE[0] <= draft.widen_minutes <= WIDEN_RANGE[1]:
        raise InvalidInput(N_("tasks.bad_widen"), low=WIDEN_RANGE[0], high=WIDEN_RANGE[1])
    length = timedelta(hours=draft.shift_hours)
    ends_at = draft.starts_at + length * draft.shifts
    _check_window(draft.starts_at, ends_at, now)
    task = Task(
        kind=TaskKind.emergency,
        title=title,
        place=place,
        starts_at=draft.starts_at,
        ends_at=ends_at,
        unit_id=draft.unit_id,
        organiser_id=actor.member_id,
        urgent=True,
        widen_step=WidenStep.reserve,
        widen_minutes=draft.widen_minutes,
        widen_at=now + timedelta(minutes=draft.widen_minutes),
        created_at=now,
    )
    session.add(task)
    await session.flush()
    assert task.id is not None
    for number in range(1, draft.shifts + 1):
        start = draft.starts_at + length * (number - 1)
        session.add(
            TaskShift(
                task_id=task.id,
                number=number,
                starts_at=start,
                ends_at=start + length,
                slots=draft.slots,
                remind_at=start - rules.reminder,
            )
        )
    session.add(TaskEvent(task_id=task.id, actor_id=actor.member_id, action="created", at=now))
    await session.flush()
    await _call(session, task, WidenStep.reserve, now, rules)
    return await task_view(session, task.id)


async def preview_count(session: AsyncSession, actor: Actor, unit_id: int, emergency: bool) -> int:
    """How many people the first announcement would reach (for the preview)."""
    unit = await _organiser_unit(session, actor, unit_id, emergency)
    audience = await step_audience(session, unit, WidenStep.reserve if emergency else None)
    found = await audiences.resolve(session, Actor.cli(), audience)
    return len([m for m in found if m != actor.member_id])


# ---------------------------------------------------------------------------------------------
# Taking and giving back


async def take(
    session: AsyncSession,
    actor: Actor,
    shift_id: int,
    now: datetime,
    rules: TaskRules | None = None,
) -> TakeResult:
    """Take a slot. A second take of the same shift, a full shift, a started shift and a
    cancelled task are refused with a clear reason (and nothing changes). Someone who takes a
    slot after the shift's reminder went out gets that reminder at once."""
    task, shift = await _shift(session, shift_id)
    if not await _may_take(session, actor, task):
        actor.refuse("take task slot")
    assert actor.member_id is not None
    assert shift.id is not None
    assert task.id is not None
    if task.status == TaskStatus.cancelled:
        raise Conflict(N_("tasks.cancelled"))
    if now >= shift.starts_at:
        raise Conflict(N_("tasks.started"))
    inserted = await insert_ignore(
        session,
        TaskTake,
        {"shift_id": shift.id, "member_id": actor.member_id, "taken_at": now},
        conflict=["shift_id", "member_id"],
    )
    if inserted is None:
        raise Conflict(N_("tasks.already_taken"))
    raised = await session.execute(
        update(TaskShift)
        .where(col(TaskShift.id) == shift.id)
        .where(col(TaskShift.taken) < col(TaskShift.slots))
        .values(taken=col(TaskShift.taken) + 1)
    )
    if getattr(raised, "rowcount", 0) != 1:
        raise Conflict(N_("tasks.full"))
    if task.broadcast_id is not None:
        # Taking a slot answers the announcement: it counts as the acknowledgement.
        await broadcasts.record_ack(session, task.broadcast_id, actor.member_id, now)
    session.add(
        TaskEvent(
            task_id=task.id,
            actor_id=actor.member_id,
            action="taken",
            member_id=actor.member_id,
            at=now,
        )
    )
    view = await task_view(session, task.id)
    current = next(s for s in view.shifts if s.id == shift.id)
    if current.full and task.organiser_id is not None:
        await _tell_organiser_full(session, view, current, now)
    if shift.reminded_at is not None:
        await _remind(session, view, current, actor.member_id, now, rules or TaskRules())
    return TakeResult(view, current)


async def _tell_organiser_full(
    session: AsyncSession, task: TaskView, shift: ShiftView, now: datetime
) -> None:
    assert task.organiser_id is not None

    def render(t: Translator) -> Message:
        return Text(
            t("tasks.notice_full", title=task.title, n=shift.number, slots=shift.slots),
            [[Button(t("tasks.takers_button"), payload=f"tk_takers:{shift.id}")]],
        )

    await notify(
        session, task.organiser_id, now, render, dedupe_key=f"task-full:{shift.id}:{shift.taken}"
    )


async def give_back(
    session: AsyncSession, actor: Actor, shift_id: int, now: datetime
) -> TakeResult:
    """Give a slot back before the shift starts (not after being checked in)."""
    task, shift = await _shift(session, shift_id)
    if actor.member_id is None:
        actor.refuse("give back slot")
    assert shift.id is not None
    assert task.id is not None
    if now >= shift.starts_at:
        raise Conflict(N_("tasks.started_keep"))
    mine = (
        await session.execute(
            select(TaskTake)
            .where(col(TaskTake.shift_id) == shift.id)
            .where(col(TaskTake.member_id) == actor.member_id)
        )
    ).scalar_one_or_none()
    if mine is None:
        raise Conflict(N_("tasks.not_taken"))
    if mine.checked_in_at is not None:
        raise Conflict(N_("tasks.started_keep"))
    removed = await session.execute(delete(TaskTake).where(col(TaskTake.id) == mine.id))
    if getattr(removed, "rowcount", 0) != 1:
        raise Conflict(N_("tasks.not_taken"))
    await session.execute(
        update(TaskShift)
        .where(col(TaskShift.id) == shift.id)
        .where(col(TaskShift.taken) > 0)
        .values(taken=col(TaskShift.taken) - 1)
    )
    session.add(
        TaskEvent(
            task_id=task.id,
            actor_id=actor.member_id,
            action="given_back",
            member_id=actor.member_id,
            at=now,
        )
    )
    session.expunge(mine)
    view = await task_view(session, task.id)
    return TakeResult(view, next(s for s in view.shifts if s.id == shift.id))


# ---------------------------------------------------------------------------------------------
# Reading


async def my_shifts(session: AsyncSession, member_id: int, task_id: int) -> frozenset[int]:
    rows = await session.execute(
        select(col(TaskTake.shift_id))
        .join(TaskShift, col(TaskShift.id) == col(TaskTake.shift_id))
        .where(col(TaskShift.task_id) == task_id)
        .where(col(TaskTake.member_id) == member_id)
    )
    return frozenset(int(s) for s in rows.scalars())


async def task_card(session: AsyncSession, actor: Actor, task_id: int) -> TaskCard:
    task, shifts = await _load(session, task_id)
    manage = await _may_manage(session, actor, task)
    if not manage and not await _may_take(session, actor, task):
        actor.refuse("see task")
    mine = await my_shifts(session, actor.member_id, task_id) if actor.member_id else frozenset()
    delivery = await outcomes(session, source_of(task_id)) if manage else None
    return TaskCard(_task_view(task, shifts), mine, manage, delivery)


@dataclass(frozen=True)
class TaskListing:
    open: tuple[TaskView, ...]
    mine: tuple[tuple[TaskView, ShiftView], ...]
    """My taken shifts that have not ended, with their task."""


async def listing(session: AsyncSession, actor: Actor, now: datetime) -> TaskListing:
    """Open tasks in my scope (in a unit above or at one of mine, or that called me) that
    have not ended, and the shifts I have taken."""
    if actor.member_id is None:
        return TaskListing((), ())
    paths = [g.unit.path for g in actor.grants]
    unit_ids: set[int] = set()
    for path in paths:
        unit_ids.update(int(p) for p in path.strip("/").split("/") if p)
    called = select(col(TaskCall.task_id)).where(col(TaskCall.member_id) == actor.member_id)
    query = (
        select(Task)
        .where(col(Task.status) == TaskStatus.open)
        .where(col(Task.ends_at) > now)
        .where(
            or_(
                col(Task.unit_id).in_(unit_ids),
                col(Task.id).in_(called),
                col(Task.organiser_id) == actor.member_id,
            )
        )
        .order_by(col(Task.starts_at), col(Task.id))
        .limit(LIST_LIMIT)
    )
    tasks = list((await session.execute(query)).scalars())
    views = [await task_view(session, t.id) for t in tasks if t.id is not None]
    taken = await session.execute(
        select(TaskShift.task_id, TaskShift.id)
        .join(TaskTake, col(TaskTake.shift_id) == col(TaskShift.id))
        .where(col(TaskTake.member_id) == actor.member_id)
        .where(col(TaskShift.ends_at) > now)
        .order_by(col(TaskShift.starts_at))
        .limit(LIST_LIMIT)
    )
    mine: list[tuple[TaskView, ShiftView]] = []
    for task_id, shift_id in taken.all():
        view = await task_view(session, int(task_id))
        if view.cancelled:
            continue
        mine.append((view, next(s for s in view.shifts if s.id == shift_id)))
    return TaskListing(tuple(views), tuple(mine))


async def _taker(session: AsyncSession, take: TaskTake) -> Taker:
    assert take.id is not None
    member = await session.get(Member, take.member_id)
    name = member.display_name if member else "?"
    return Taker(
        take.id,
        take.member_id,
        name,
        take.checked_in_at,
        take.checked_out_at,
        take.minutes,
        take.no_show_at,
    )


async def takers(
    session: AsyncSession, actor: Actor, shift_id: int
) -> tuple[TaskView, ShiftView, list[Taker]]:
    """Who took the shift (organisers only)."""
    task, _ = await _shift(session, shift_id)
    await _require_manage(session, actor, task, "see takers")
    assert task.id is not None
    rows = (
        await session.execute(
            select(TaskTake)
            .where(col(TaskTake.shift_id) == shift_id)
            .order_by(col(TaskTake.taken_at), col(TaskTake.id))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    found = [await _taker(session, take) for take in rows]
    view = await task_view(session, task.id)
    return view, next(s for s in view.shifts if s.id == shift_id), found


# ---------------------------------------------------------------------------------------------
# Check-in and check-out


async def _take_for_organiser(
    session: AsyncSession, actor: Actor, take_id: int, action: str
) -> tuple[Task, TaskShift, TaskTake]:
    take = await session.get(TaskTake, take_id, populate_existing=True)
    if take is None:
        raise NotFound(N_("tasks.take_unknown"))
    task, shift = await _shift(session, take.shift_id)
    await _require_manage(session, actor, task, action)
    if task.status == TaskStatus.cancelled:
        raise Conflict(N_("tasks.cancelled"))
    return task, shift, take


async def check_in(
    session: AsyncSession, actor: Actor, take_id: int, now: datetime
) -> tuple[CheckResult, bool]:
    """The organiser checks a taker in (from an hour before the shift until its end). Returns
    the result and whether this press did it (False: already checked in)."""
    task, shift, take = await _take_for_organiser(session, actor, take_id, "check in")
    if now < shift.starts_at - CHECKIN_EARLY:
        raise Conflict(N_("tasks.checkin_too_early"))
    if now >= shift.ends_at:
        raise Conflict(N_("tasks.checkin_too_late"))
    done = await session.execute(
        update(TaskTake)
        .where(col(TaskTake.id) == take_id)
        .where(col(TaskTake.checked_in_at).is_(None))
        .values(checked_in_at=now)
    )
    fresh = getattr(done, "rowcount", 0) == 1
    if fresh:
        assert task.id is not None
        session.add(
            TaskEvent(
                task_id=task.id,
                actor_id=actor.member_id,
                action="checked_in",
                member_id=take.member_id,
                at=now,
            )
        )
    await session.refresh(take)
    view = _task_view(task, [shift])
    return CheckResult(view, _shift_view(shift), await _taker(session, take)), fresh


async def check_out(
    session: AsyncSession, actor: Actor, take_id: int, now: datetime, rules: TaskRules
) -> tuple[CheckResult, bool]:
    """The organiser checks a taker out: the time on duty (within the shift) is logged as
    service hours and the task's points are awarded, once per member and shift."""
    task, shift, take = await _take_for_organiser(session, actor, take_id, "check out")
    if take.checked_in_at is None:
        raise Conflict(N_("tasks.not_checked_in"))
    assert task.id is not None
    assert shift.id is not None
    began = max(take.checked_in_at, shift.starts_at)
    ended = min(now, shift.ends_at)
    minutes = max(int((ended - began).total_seconds() // 60), 0)
    done = await session.execute(
        update(TaskTake)
        .where(col(TaskTake.id) == take_id)
        .where(col(TaskTake.checked_out_at).is_(None))
        .values(checked_out_at=now, minutes=minutes)
    )
    fresh = getattr(done, "rowcount", 0) == 1
    awarded: int | None = None
    if fresh:
        session.add(
            TaskEvent(
                task_id=task.id,
                actor_id=actor.member_id,
                action="checked_out",
                member_id=take.member_id,
                at=now,
            )
        )
        if minutes >= 1:
            await points.log_hours(
                session,
                member_id=take.member_id,
                hours=Decimal(minutes) / 60,
                source="task",
                source_id=shift.id,
                now=now,
                actor=actor,
                note=task.title[:100],
            )
        rule = "emergency_duty" if task.kind == TaskKind.emergency else "task_completed"
        entry = await points.award(
            session,
            member_id=take.member_id,
            rule_code=rule,
            source="task",
            source_id=shift.id,
            now=now,
            actor=actor,
            note=task.title[:100],
            zone=rules.zone,
        )
        awarded = entry.points if entry else None
        title = task.title

        def render(t: Translator) -> Message:
            return Text(
                t(
                    "tasks.notice_checked_out",
                    title=title,
                    hours=points.format_hours(minutes),
                    points=points.signed(awarded) if awarded is not None else "0",
                )
            )

        await notify(session, take.member_id, now, render, dedupe_key=f"task-out:{take.id}")
    await session.refresh(take)
    view = _task_view(task, [shift])
    return CheckResult(view, _shift_view(shift), await _taker(session, take), awarded), fresh


# ---------------------------------------------------------------------------------------------
# Cancelling


async def cancel(session: AsyncSession, actor: Actor, task_id: int, now: datetime) -> TaskView:
    """Cancel a task that has not ended; its takers are told, no reminder goes out after."""
    task, shifts = await _load(session, task_id)
    await _require_manage(session, actor, task, "cancel task")
    if task.status == TaskStatus.cancelled:
        raise Conflict(N_("tasks.cancelled"))
    if now >= task.ends_at:
        raise Conflict(N_("tasks.ended"))
    task.status = TaskStatus.cancelled
    task.cancelled_at = now
    task.widen_at = None
    session.add(TaskEvent(task_id=task_id, actor_id=actor.member_id, action="cancelled", at=now))
    view = _task_view(task, shifts)
    takers_ids = (
        await session.execute(
            select(col(TaskTake.member_id))
            .join(TaskShift, col(TaskShift.id) == col(TaskTake.shift_id))
            .where(col(TaskShift.task_id) == task_id)
            .distinct()
        )
    ).scalars()

    def render(t: Translator) -> Message:
        return Text(t("tasks.notice_cancelled", title=view.title))

    for member_id in takers_ids:
        await notify(
            session, member_id, now, render, dedupe_key=f"task-cancel:{task_id}:{member_id}"
        )
    await session.flush()
    return view


# ---------------------------------------------------------------------------------------------
# Jobs: reminders and widening


async def send_due_reminders(
    session: AsyncSession, now: datetime, rules: TaskRules, limit: int = REMINDER_BATCH
) -> int:
    """Claim shifts whose reminder is due, remind their takers, mark them, in the caller's
    transaction. Nothing for a cancelled task or a shift that has already started (the bot
    was down). Returns how many shifts were reminded."""
    query = skip_locked(
        session,
        select(TaskShift)
        .where(col(TaskShift.reminded_at).is_(None))
        .where(col(TaskShift.remind_at) <= now)
        .order_by(col(TaskShift.remind_at), col(TaskShift.id))
        .limit(limit),
    )
    due = list((await session.execute(query)).scalars())
    sent = 0
    for shift in due:
        shift.reminded_at = now
        task = await session.get(Task, shift.task_id)
        assert task is not None
        assert shift.id is not None
        if task.status == TaskStatus.cancelled or now >= shift.starts_at:
            continue
        view = await task_view(session, shift.task_id)
        current = next(s for s in view.shifts if s.id == shift.id)
        members = (
            await session.execute(
                select(col(TaskTake.member_id)).where(col(TaskTake.shift_id) == shift.id)
            )
        ).scalars()

        for member_id in members:
            await _remind(session, view, current, member_id, now, rules)
        sent += 1
    await session.flush()
    return sent


async def _remind(
    session: AsyncSession,
    view: TaskView,
    shift: ShiftView,
    member_id: int,
    now: datetime,
    rules: TaskRules,
) -> None:
    """Remind one taker of their shift (once per member and shift: the dedupe key)."""

    def render(t: Translator) -> Message:
        return Text(
            t(
                "tasks.reminder",
                title=view.title,
                when=format_span(t, shift.starts_at, shift.ends_at, rules.zone),
                place=view.place,
            ),
            [
                [
                    Button(
                        t("tasks.give_back", count=f"{shift.taken}/{shift.slots}", n=shift.number),
                        payload=f"tk_back:{shift.id}",
                    )
                ]
            ],
        )

    await notify(session, member_id, now, render, dedupe_key=f"task-rem:{shift.id}:{member_id}")


async def reminders_due(session: AsyncSession, now: datetime) -> bool:
    found = await session.execute(
        select(col(TaskShift.id))
        .where(col(TaskShift.reminded_at).is_(None))
        .where(col(TaskShift.remind_at) <= now)
        .limit(1)
    )
    return found.first() is not None


def _next_step(step: WidenStep | None) -> WidenStep | None:
    if step is None or step == WIDEN_ORDER[-1]:
        return None
    return WIDEN_ORDER[WIDEN_ORDER.index(step) + 1]


async def widen_due(
    session: AsyncSession, now: datetime, rules: TaskRules, limit: int = WIDEN_BATCH
) -> int:
    """Claim emergency calls whose widening is due. A call whose shifts ahead are all full
    (or all started) stops widening; otherwise it reaches the next audience (people already
    called are skipped), the organiser is told, and the next widening is planned. Each step
    happens once: the step is persisted with the claim, and messages carry dedupe keys."""
    query = skip_locked(
        session,
        select(Task)
        .where(col(Task.status) == TaskStatus.open)
        .where(col(Task.widen_at).is_not(None))
        .where(col(Task.widen_at) <= now)
        .order_by(col(Task.widen_at), col(Task.id))
        .limit(limit),
    )
    due = list((await session.execute(query)).scalars())
    widened = 0
    for task in due:
        assert task.id is not None
        view = await task_view(session, task.id)
        empty = [s for s in view.shifts if s.starts_at > now and not s.full]
        step = _next_step(WidenStep(task.widen_step) if task.widen_step else None)
        if not empty or step is None:
            task.widen_at = None
            continue
        task.widen_step = step
        later = _next_step(step)
        task.widen_at = (
            now + timedelta(minutes=task.widen_minutes or rules.widen_minutes) if later else None
        )
        called = await _call(session, task, step, now, rules)
        session.add(TaskEvent(task_id=task.id, action=f"widened_{step.value}", at=now))
        missing = sum(s.slots - s.taken for s in empty)
        if task.organiser_id is not None:

            def render(
                t: Translator,
                step: WidenStep = step,
                called: int = called,
                missing: int = missing,
                view: TaskView = view,
            ) -> Message:
                return Text(
                    t(
                        "tasks.notice_widened",
                        title=view.title,
                        step=t(STEP_NAMES[step]),
                        called=called,
                        missing=missing,
                    )
                )

            await notify(
                session,
                task.organiser_id,
                now,
                render,
                dedupe_key=f"task-widen:{task.id}:{step.value}",
                priority=Priority.urgent,
            )
        widened += 1
    await session.flush()
    return widened


async def widening_due(session: AsyncSession, now: datetime) -> bool:
    found = await session.execute(
        select(func.count())
        .select_from(Task)
        .where(col(Task.status) == TaskStatus.open)
        .where(col(Task.widen_at).is_not(None))
        .where(col(Task.widen_at) <= now)
    )
    return int(found.scalar_one()) > 0


# ---------------------------------------------------------------------------------------------
# No-shows: a taker never checked in by the end of the shift


async def settle_no_shows(
    session: AsyncSession, now: datetime, rules: TaskRules, limit: int = NO_SHOW_BATCH
) -> int:
    """Claim shifts that ended ``no_show_grace`` ago and are not settled yet; every taker never
    checked in is marked a no-show, loses the ``no_show`` points once (the ledger key is per
    shift and member) and is told; the organiser gets the list with a way to undo. A shift
    given back before its start has no take, so it is never a no-show. Returns how many
    takers were marked."""
    query = skip_locked(
        session,
        select(TaskShift)
        .where(col(TaskShift.no_shows_at).is_(None))
        .where(col(TaskShift.ends_at) <= now - rules.no_show_grace)
        .order_by(col(TaskShift.ends_at), col(TaskShift.id))
        .limit(limit),
    )
    marked = 0
    for shift in list((await session.execute(query)).scalars()):
        assert shift.id is not None
        shift.no_shows_at = now
        task = await session.get(Task, shift.task_id)
        assert task is not None
        assert task.id is not None
        if task.status == TaskStatus.cancelled or now - shift.ends_at > NO_SHOW_HORIZON:
            continue
        absent = list(
            (
                await session.execute(
                    select(TaskTake)
                    .where(col(TaskTake.shift_id) == shift.id)
                    .where(col(TaskTake.checked_in_at).is_(None))
                    .where(col(TaskTake.no_show_at).is_(None))
                    .order_by(col(TaskTake.taken_at), col(TaskTake.id))
                )
            ).scalars()
        )
        names: list[str] = []
        for take in absent:
            assert take.id is not None
            take.no_show_at = now
            session.add(
                TaskEvent(task_id=task.id, action="no_show", member_id=take.member_id, at=now)
            )
            entry = await points.award(
                session,
                member_id=take.member_id,
                rule_code="no_show",
                source="task",
                source_id=shift.id,
                now=now,
                note=task.title[:100],
                zone=rules.zone,
            )
            await _tell_no_show(
                session, task, shift, take, entry.points if entry else 0, now, rules
            )
            names.append((await _taker(session, take)).name)
            marked += 1
        if names and task.organiser_id is not None:

            def render(
                t: Translator,
                names: list[str] = names,
                title: str = task.title,
                number: int = shift.number,
                shift_id: int = shift.id,
            ) -> Message:
                return Text(
                    t(
                        "tasks.notice_no_shows",
                        title=title,
                        n=number,
                        names=(", " if t.locale == "en" else "、").join(names),
                    ),
                    [[Button(t("tasks.takers_button"), payload=f"tk_takers:{shift_id}")]],
                )

            await notify(
                session, task.organiser_id, now, render, dedupe_key=f"task-noshows:{shift.id}"
            )
    await session.flush()
    return marked


async def _tell_no_show(
    session: AsyncSession,
    task: Task,
    shift: TaskShift,
    take: TaskTake,
    deducted: int,
    now: datetime,
    rules: TaskRules,
) -> None:
    title, start, end = task.title, shift.starts_at, shift.ends_at

    def render(t: Translator) -> Message:
        return Text(
            t(
                "tasks.notice_no_show",
                title=title,
                when=format_span(t, start, end, rules.zone),
                points=points.signed(deducted),
            )
        )

    await notify(session, take.member_id, now, render, dedupe_key=f"task-noshow:{take.id}")


async def no_shows_due(session: AsyncSession, now: datetime, rules: TaskRules) -> bool:
    found = await session.execute(
        select(col(TaskShift.id))
        .where(col(TaskShift.no_shows_at).is_(None))
        .where(col(TaskShift.ends_at) <= now - rules.no_show_grace)
        .limit(1)
    )
    return found.first() is not None


async def undo_no_show(
    session: AsyncSession, actor: Actor, take_id: int, now: datetime, rules: TaskRules
) -> tuple[CheckResult, bool]:
    """The organiser takes back a mistaken no-show: the mark is cleared and the deduction
    reversed (a new ledger row that references it). Returns the result and whether this press
    did it (False: it was not, or no longer, a no-show)."""
    take = await session.get(TaskTake, take_id, populate_existing=True)
    if take is None:
        raise NotFound(N_("tasks.take_unknown"))
    task, shift = await _shift(session, take.shift_id)
    await _require_manage(session, actor, task, "undo no-show")
    assert task.id is not None
    assert shift.id is not None
    done = await session.execute(
        update(TaskTake)
        .where(col(TaskTake.id) == take_id)
        .where(col(TaskTake.no_show_at).is_not(None))
        .values(no_show_at=None)
    )
    fresh = getattr(done, "rowcount", 0) == 1
    returned: int | None = None
    if fresh:
        session.add(
            TaskEvent(
                task_id=task.id,
                actor_id=actor.member_id,
                action="no_show_undone",
                member_id=take.member_id,
                at=now,
            )
        )
        entry = await points.revoke(
            session,
            member_id=take.member_id,
            rule_code="no_show",
            source="task",
            source_id=shift.id,
            now=now,
            actor=actor,
            note=task.title[:100],
            zone=rules.zone,
        )
        returned = entry.points if entry else 0
        title, back = task.title, returned

        def render(t: Translator) -> Message:
            return Text(t("tasks.notice_no_show_undone", title=title, points=points.signed(back)))

        await notify(session, take.member_id, now, render, dedupe_key=f"task-noshow-undo:{take.id}")
    await session.refresh(take)
    view = _task_view(task, [shift])
    return CheckResult(view, _shift_view(shift), await _taker(session, take), returned), fresh
