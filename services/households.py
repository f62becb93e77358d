"""Household files (一户一档): tags and cadences, the registry, who may see what, assignments,
"1+10+N" hub groups, and the spreadsheet import.

Personal data — the contact's name, the phone number, the exact address (address line and door)
and the notes — is shown only to people who hold a visiting role on the household's building or
above it (``VISITING_ROLES``). Every function that returns a household checks that first; a
household outside the actor's scope is refused without a word about it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator
from bot.settings import Settings
from models.households import (
    Household,
    HouseholdInterval,
    HouseholdTag,
    HouseholdTagLink,
    HubLink,
)
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound
from services.messages import Text
from services.org import within
from services.outbox import notify
from services.sql import insert_ignore

VISITING_ROLES: frozenset[Role] = frozenset(
    {Role.volunteer, Role.grid_worker, Role.grid_leader, Role.coordinator}
)
"""May open a household's file (with its personal data) and log visits to it."""
EDITING_ROLES: frozenset[Role] = frozenset({Role.grid_worker, Role.grid_leader, Role.coordinator})
"""May add, edit and archive households and search the registry."""
ASSIGNING_ROLES: frozenset[Role] = frozenset({Role.grid_leader, Role.coordinator})
"""May assign households to members and group members under hub members."""
TAG_ROLES: frozenset[Role] = frozenset({Role.coordinator})
"""May add tags and change their visit intervals (admins may too)."""

ADDRESS_MAX = 200
DOOR_MAX = 32
CONTACT_MAX = 64
NOTES_MAX = 500
TAG_NAME_MAX = 16
SIZE_MAX = 50
INTERVAL_MAX = 3650
SEARCH_MAX = 64
CHUNK = 500
"""Ids per IN (...) list: well below every database's limit on bound parameters."""


@dataclass(frozen=True)
class VisitPolicy:
    """The installation's visiting rules: the interval for households whose tags carry none,
    and the zone that "today" is reckoned in."""

    default_days: int = 90
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    service_minutes: int = 30
    """Service hours logged for a visit that earns (see ``services.visits.EARNING``)."""

    @classmethod
    def of(cls, settings: Settings) -> VisitPolicy:
        return cls(
            settings.visit_default_interval_days, settings.zone, settings.visit_service_minutes
        )

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Tags and cadence


@dataclass(frozen=True)
class TagView:
    id: int
    code: str
    name: str
    name_en: str | None
    interval_days: int | None

    def label(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def days(self, default_days: int) -> int:
        return self.interval_days if self.interval_days is not None else default_days


BUILTIN_TAGS: tuple[tuple[str, str, str, int | None], ...] = (
    ("special_needs", "特需对象", "Special needs", 7),
    ("elderly_alone", "独居老人", "Elderly living alone", 14),
    ("disabled", "残疾人", "Disabled", None),
    ("low_income", "低保户", "Low income", None),
    ("vacant", "空置房", "Vacant", None),
    ("rented", "出租户", "Rented", None),
)
"""Tags every installation starts with (code, name, English name, interval in days; None:
the default interval). Coordinators add more and change intervals."""


def _tag_view(tag: HouseholdTag) -> TagView:
    assert tag.id is not None
    return TagView(tag.id, tag.code, tag.name, tag.name_en, tag.interval_days)


def _tag_order(tag: TagView) -> tuple[int, int]:
    return (tag.interval_days if tag.interval_days is not None else INTERVAL_MAX + 1, tag.id)


async def list_tags(session: AsyncSession) -> list[TagView]:
    """Every tag, shortest interval first; the built-in ones are created on first use."""
    tags = [_tag_view(t) for t in (await session.execute(select(HouseholdTag))).scalars()]
    codes = {t.code for t in tags}
    missing = [row for row in BUILTIN_TAGS if row[0] not in codes]
    if missing:
        for code, name, name_en, days in missing:
            await insert_ignore(
                session,
                HouseholdTag,
                {"code": code, "name": name, "name_en": name_en, "interval_days": days},
                conflict=["code"],
            )
        tags = [_tag_view(t) for t in (await session.execute(select(HouseholdTag))).scalars()]
    return sorted(tags, key=_tag_order)


def interval_of(tags: Iterable[TagView], default_days: int) -> int:
    """A household's interval is the shortest of its tags' (a tag without one, or no tag at
    all, stands for the default interval)."""
    days = [tag.days(default_days) for tag in tags]
    return min(days) if days else default_days


async def record_intervals(
    session: AsyncSession, intervals: Iterable[tuple[int, int]], now: datetime
) -> None:
    """Note (household id, interval) as in force from ``now`` in the interval history
    (``HouseholdInterval``), which the coverage of past periods reads. Call it wherever
    ``Household.interval_days`` is set to a new value."""
    rows = [
        {"household_id": household_id, "interval_days": days, "valid_from": now}
        for household_id, days in intervals
    ]
    for start in range(0, len(rows), 2000):
        await session.execute(insert(HouseholdInterval), rows[start : start + 2000])


def _clean_tag_name(raw: str) -> str:
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name:
        raise InvalidInput("households.tag_name_empty")
    if len(name) > TAG_NAME_MAX or re.search(r"[,，、;；/]", name):
        raise InvalidInput("households.tag_name_invalid", limit=TAG_NAME_MAX)
    return name


def parse_interval(raw: str | int | None) -> int | None:
    """Days between visits: a whole number from 1 to 3650, or "-" (the default interval)."""
    if raw is None:
        return None
    text = str(raw).strip()
    if text in ("-", "—", ""):
        return None
    if not text.isdigit() or not 1 <= int(text) <= INTERVAL_MAX:
        raise InvalidInput("households.bad_interval", limit=INTERVAL_MAX)
    return int(text)


async def add_tag(
    session: AsyncSession,
    actor: Actor,
    name: str,
    interval_days: int | None,
    now: datetime,
    name_en: str | None = None,
) -> TagView:
    _require_tag_manager(actor)
    clean = _clean_tag_name(name)
    clean_en = _clean_tag_name(name_en) if name_en else None
    tags = await list_tags(session)
    if any(t.name.casefold() == clean.casefold() or t.code == clean.casefold() for t in tags):
        raise Conflict("households.tag_exists", tag=clean)
    code = f"t{len(tags) + 1}"
    while any(t.code == code for t in tags):
        code += "x"
    tag = HouseholdTag(
        code=code,
        name=clean,
        name_en=clean_en,
        interval_days=interval_days,
        created_by=actor.member_id,
        created_at=now,
    )
    session.add(tag)
    await session.flush()
    return _tag_view(tag)


async def set_tag_interval(
    session: AsyncSession,
    actor: Actor,
    tag_id: int,
    interval_days: int | None,
    policy: VisitPolicy,
    now: datetime,
) -> tuple[TagView, int]:
    """Change a tag's interval; the households carrying it get their new due dates at once.
    Returns the tag and how many households changed."""
    _require_tag_manager(actor)
    tag = await session.get(HouseholdTag, tag_id)
    if tag is None:
        raise NotFound("households.tag_unknown")
    tag.interval_days = interval_days
    await session.flush()
    changed = await recompute_intervals(session, policy, now, tag_id=tag_id)
    return _tag_view(tag), changed


def _require_tag_manager(actor: Actor) -> None:
    if actor.system or any(g.role in TAG_ROLES | {Role.admin} for g in actor.grants):
        return
    actor.refuse("manage household tags")


async def recompute_intervals(
    session: AsyncSession, policy: VisitPolicy, now: datetime, *, tag_id: int | None = None
) -> int:
    """Bring every household's interval and due date in line with its tags and the default
    interval (after a tag's interval or the default changed); a new interval is in force from
    ``now``. Returns how many changed."""
    tags = {t.id: t for t in await list_tags(session)}
    query = select(
        col(Household.id),
        col(Household.interval_days),
        col(Household.last_visited_at),
        col(Household.created_at),
        col(Household.due_at),
    )
    if tag_id is not None:
        query = query.where(
            col(Household.id).in_(
                select(col(HouseholdTagLink.household_id)).where(
                    col(HouseholdTagLink.tag_id) == tag_id
                )
            )
        )
    rows = (await session.execute(query)).all()
    if not rows:
        return 0
    links_query = select(col(HouseholdTagLink.household_id), col(HouseholdTagLink.tag_id))
    if tag_id is not None:
        links_query = links_query.where(
            col(HouseholdTagLink.household_id).in_(
                select(col(HouseholdTagLink.household_id)).where(
                    col(HouseholdTagLink.tag_id) == tag_id
                )
            )
        )
    tag_ids: dict[int, list[int]] = defaultdict(list)
    for household_id, linked in (await session.execute(links_query)).all():
        tag_ids[household_id].append(linked)
    changes = []
    new_intervals: list[tuple[int, int]] = []
    for row_id, days, last, created, due in rows:
        household_id = int(row_id or 0)
        wanted = interval_of((tags[t] for t in tag_ids[household_id]), policy.default_days)
        new_due = (last or created) + timedelta(days=wanted)
        if wanted != days or new_due != due:
            changes.append({"row_id": household_id, "days": wanted, "due": new_due})
        if wanted != days:
            new_intervals.append((household_id, wanted))
    if changes:
        await session.execute(_SET_INTERVAL, changes)
        await record_intervals(session, new_intervals, now)
    return len(changes)


_HOUSEHOLDS = Household.__table__  # type: ignore[attr-defined]
_SET_INTERVAL = (
    update(_HOUSEHOLDS)
    .where(_HOUSEHOLDS.c.id == bindparam("row_id"))
    .values(interval_days=bindparam("days"), due_at=bindparam("due"))
)


# ---------------------------------------------------------------------------------------------
# Views and permissions


@dataclass(frozen=True)
class HouseholdView:
    """A household as its permitted viewer sees it (only ever built for one)."""

    id: int
    building: UnitRef
    grid_id: int
    address: str
    door: str
    size: int | None
    tags: tuple[TagView, ...]
    contact_name: str | None
    phone: str | None
    notes: str | None
    assignee_id: int | None
    assignee_name: str | None
    interval_days: int
    last_visited_at: datetime | None
    due_at: datetime
    archived: bool

    def place(self, locale: str) -> str:
        """Building, address line and door number: the exact address."""
        return " ".join(p for p in (self.building.label(locale), self.address, self.door) if p)

    def tag_labels(self, locale: str) -> str:
        return tag_list(self.tags, locale)


def tag_list(tags: Iterable[TagView], locale: str) -> str:
    return (", " if locale == "en" else "、").join(t.label(locale) for t in tags)


def may_see(actor: Actor, building: UnitRef) -> bool:
    """Whether the actor may see this building's household files, personal data included."""
    return actor.can(VISITING_ROLES, building)


def may_edit(actor: Actor, building: UnitRef) -> bool:
    """Whether the actor may change this building's household files."""
    return actor.can(EDITING_ROLES, building)


def address_key(address: str, door: str) -> str:
    """What makes two addresses the same: full-width and half-width, case and spaces ignored."""

    def norm(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).casefold().split())

    return f"{norm(address)}|{norm(door)}"[:240]


_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_CN_LANDLINE = re.compile(r"0\d{9,11}")
_LOCAL_LANDLINE = re.compile(r"[2-9]\d{6,7}")


def clean_phone(raw: str) -> str:
    """A mainland mobile (11 digits from 13…19), a landline with its area code (0…), or a
    local landline of 7–8 digits; +86 / 0086 and separators are dropped."""
    text = unicodedata.normalize("NFKC", raw)
    digits = re.sub(r"[\s\-()（）.]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if any(p.fullmatch(digits) for p in (_CN_MOBILE, _CN_LANDLINE, _LOCAL_LANDLINE)):
        return digits
    raise InvalidInput("households.bad_phone", phone=raw.strip()[:32])


def _text(raw: str | None, limit: int, key: str) -> str:
    cleaned = " ".join((raw or "").split())
    if len(cleaned) > limit:
        raise InvalidInput(key, limit=limit)
    return cleaned


def clean_size(raw: str | int) -> int:
    text = str(raw).strip()
    if not text.isdigit() or not 1 <= int(text) <= SIZE_MAX:
        raise InvalidInput("households.bad_size", limit=SIZE_MAX)
    return int(text)


async def _views(
    session: AsyncSession, households: Sequence[Household], units: dict[int, UnitRef]
) -> list[HouseholdView]:
    ids = [h.id for h in households if h.id is not None]
    tags = {t.id: t for t in await list_tags(session)}
    linked: dict[int, list[TagView]] = defaultdict(list)
    for chunk in _chunks(ids):
        for household_id, tag_id in (
            await session.execute(
                select(col(HouseholdTagLink.household_id), col(HouseholdTagLink.tag_id)).where(
                    col(HouseholdTagLink.household_id).in_(chunk)
                )
            )
        ).all():
            linked[household_id].append(tags[tag_id])
    names = await member_names(
        session, [h.assignee_id for h in households if h.assignee_id is not None]
    )
    views = []
    for h in households:
        assert h.id is not None
        views.append(
            HouseholdView(
                id=h.id,
                building=units[h.building_id],
                grid_id=h.grid_id,
                address=h.address,
                door=h.door,
                size=h.size,
                tags=tuple(sorted(linked[h.id], key=_tag_order)),
                contact_name=h.contact_name,
                phone=h.phone,
                notes=h.notes,
                assignee_id=h.assignee_id,
                assignee_name=names.get(h.assignee_id) if h.assignee_id else None,
                interval_days=h.interval_days,
                last_visited_at=h.last_visited_at,
                due_at=h.due_at,
                archived=h.archived_at is not None,
            )
        )
    return views


async def member_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """Display names of members (not personal data: what they chose to be called)."""
    names: dict[int, str] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = await session.execute(
            select(col(Member.id), col(Member.display_name)).where(col(Member.id).in_(chunk))
        )
        for member_id, name in rows.all():
            names[int(member_id or 0)] = name
    return names


def _chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


async def _units(session: AsyncSession, ids: Iterable[int]) -> dict[int, UnitRef]:
    found: dict[int, UnitRef] = {}
    wanted = sorted(set(ids))
    for chunk in _chunks(wanted):
        for unit in (await session.execute(select(Unit).where(col(Unit.id).in_(chunk)))).scalars():
            ref = UnitRef.of(unit)
            found[ref.id] = ref
    return found


async def load_household(
    session: AsyncSession, actor: Actor, household_id: int, roles: frozenset[Role]
) -> tuple[Household, UnitRef]:
    """The household row and its building, if the actor holds one of ``roles`` on it.
    Anything else — unknown id, another grid — is the same refusal."""
    household = await session.get(Household, household_id)
    if household is None:
        actor.refuse(f"household {household_id} (unknown)")
    building = (await _units(session, [household.building_id]))[household.building_id]
    actor.require(roles, building, f"household {household_id}")
    return household, building


async def get_household(session: AsyncSession, actor: Actor, household_id: int) -> HouseholdView:
    household, building = await load_household(session, actor, household_id, VISITING_ROLES)
    return (await _views(session, [household], {building.id: building}))[0]


async def buildings_for(
    session: AsyncSession, actor: Actor, roles: frozenset[Role]
) -> list[UnitRef]:
    """Buildings on which the actor holds one of ``roles``, in tree order."""
    scopes = actor.scopes(roles) if not actor.system else []
    query = select(Unit).where(col(Unit.kind) == UnitKind.building.value)
    if not actor.system:
        if not scopes:
            return []
        query = query.where(within(s.path for s in scopes))
    units = [UnitRef.of(u) for u in (await session.execute(query)).scalars()]
    return sorted(units, key=lambda u: (u.path.count("/"), u.path, u.code))


async def _building(session: AsyncSession, building_id: int) -> UnitRef:
    unit = await session.get(Unit, building_id)
    if unit is None or unit.kind != UnitKind.building:
        raise NotFound("households.building_unknown", building=str(building_id))
    return UnitRef.of(unit)


# ---------------------------------------------------------------------------------------------
# Adding and editing from the chat


@dataclass(frozen=True)
class HouseholdDraft:
    address: str
    door: str = ""
    tag_ids: tuple[int, ...] = ()
    contact_name: str | None = None
    phone: str | None = None
    size: int | None = None
    notes: str | None = None


def clean_draft(draft: HouseholdDraft) -> HouseholdDraft:
    address = _text(draft.address, ADDRESS_MAX, N_("households.address_too_long"))
    door = _text(draft.door, DOOR_MAX, N_("households.door_too_long"))
    if not address and not door:
        raise InvalidInput("households.address_empty")
    contact = _text(draft.contact_name, CONTACT_MAX, N_("households.contact_too_long")) or None
    notes = _text(draft.notes, NOTES_MAX, N_("households.notes_too_long")) or None
    phone = clean_phone(draft.phone) if draft.phone else None
    size = clean_size(draft.size) if draft.size is not None else None
    return HouseholdDraft(address, door, draft.tag_ids, contact, phone, size, notes)


async def _tags_by_id(session: AsyncSession, tag_ids: Iterable[int]) -> list[TagView]:
    tags = {t.id: t for t in await list_tags(session)}
    chosen = []
    for tag_id in dict.fromkeys(tag_ids):
        if tag_id not in tags:
            raise NotFound("households.tag_unknown")
        chosen.append(tags[tag_id])
    return chosen


async def add_household(
    session: AsyncSession,
    actor: Actor,
    building_id: int,
    draft: HouseholdDraft,
    now: datetime,
    policy: VisitPolicy,
) -> HouseholdView:
    building = await _building(session, building_id)
    actor.require(EDITING_ROLES, building, "add household")
    draft = clean_draft(draft)
    key = address_key(draft.address, draft.door)
    existing = (
        await session.execute(
            select(col(Household.id))
            .where(col(Household.building_id) == building.id)
            .where(col(Household.address_key) == key)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("households.duplicate_address")
    tags = await _tags_by_id(session, draft.tag_ids)
    days = interval_of(tags, policy.default_days)
    grid_id = await _grid_of(session, building)
    household = Household(
        building_id=building.id,
        grid_id=grid_id,
        address=draft.address,
        door=draft.door,
        address_key=key,
        size=draft.size,
        contact_name=draft.contact_name,
        phone=draft.phone,
        notes=draft.notes,
        interval_days=days,
        due_at=now + timedelta(days=days),
        created_by=actor.member_id,
        created_at=now,
        updated_at=now,
    )
    session.add(household)
    await session.flush()
    assert household.id is not None
    for tag in tags:
        session.add(HouseholdTagLink(household_id=household.id, tag_id=tag.id))
    await record_intervals(session, [(household.id, days)], now)
    await session.flush()
    return (await _views(session, [household], {building.id: building}))[0]


async def _grid_of(session: AsyncSession, building: UnitRef) -> int:
    unit = await session.get(Unit, building.id)
    assert unit is not None
    if unit.parent_id is None:
        raise InvalidInput("households.building_without_grid", building=building.code)
    return unit.parent_id


EDITABLE_FIELDS = ("address", "door", "size", "contact_name", "phone", "notes")


async def update_household(
    session: AsyncSession,
    actor: Actor,
    household_id: int,
    field_name: str,
    value: str | None,
    now: datetime,
) -> HouseholdView:
    """Change one field; ``value`` None (or "-") clears an optional one."""
    if field_name not in EDITABLE_FIELDS:
        raise InvalidInput("core.stale_button")
    household, building = await load_household(session, actor, household_id, EDITING_ROLES)
    raw = None if value is None or value.strip() in ("-", "—") else value
    current = HouseholdDraft(
        household.address,
        household.door,
        (),
        household.contact_name,
        household.phone,
        household.size,
        household.notes,
    )
    if field_name == "address":
        changed = replace(current, address=raw or "")
    elif field_name == "door":
        changed = replace(current, door=raw or "")
    elif field_name == "size":
        changed = replace(current, size=clean_size(raw) if raw is not None else None)
    elif field_name == "contact_name":
        changed = replace(current, contact_name=raw)
    elif field_name == "phone":
        changed = replace(current, phone=raw)
    else:
        changed = replace(current, notes=raw)
    draft = clean_draft(changed)
    key = address_key(draft.address, draft.door)
    if key != household.address_key:
        clash = (
            await session.execute(
                select(col(Household.id))
                .where(col(Household.building_id) == household.building_id)
                .where(col(Household.address_key) == key)
                .where(col(Household.id) != household_id)
            )
        ).scalar_one_or_none()
        if clash is not None:
            raise Conflict("households.duplicate_address")
    household.address, household.door, household.address_key = draft.address, draft.door, key
    household.size, household.contact_name = draft.size, draft.contact_name
    household.phone, household.notes = draft.phone, draft.notes
    household.updated_at = now
    await session.flush()
    return (await _views(session, [household], {building.id: building}))[0]


async def set_household_tags(
    session: AsyncSession,
    actor: Actor,
    household_id: int,
    tag_ids: Sequence[int],
    now: datetime,
    policy: VisitPolicy,
) -> HouseholdView:
    household, building = await load_household(session, actor, household_id, EDITING_ROLES)
    tags = await _tags_by_id(session, tag_ids)
    await session.execute(
        delete(HouseholdTagLink).where(col(HouseholdTagLink.household_id) == household_id)
    )
    for tag in tags:
        session.add(HouseholdTagLink(household_id=household_id, tag_id=tag.id))
    days = interval_of(tags, policy.default_days)
    if days != household.interval_days:
        await record_intervals(session, [(household_id, days)], now)
    household.interval_days = days
    household.due_at = (household.last_visited_at or household.created_at) + timedelta(
        days=household.interval_days
    )
    household.updated_at = now
    await session.flush()
    return (await _views(session, [household], {building.id: building}))[0]


async def set_archived(
    session: AsyncSession, actor: Actor, household_id: int, archived: bool, now: datetime
) -> HouseholdView:
    """Mark a household as moved away (no more visits, not counted) or bring it back."""
    household, building = await load_household(session, actor, household_id, EDITING_ROLES)
    household.archived_at = (household.archived_at or now) if archived else None
    household.updated_at = now
    await session.flush()
    return (await _views(session, [household], {building.id: building}))[0]


async def search_households(
    session: AsyncSession, actor: Actor, text: str, *, limit: int = 10
) -> tuple[list[HouseholdView], int]:
    """Households in the actor's editing scope whose address, door, contact or phone contains
    ``text``: the first ``limit`` and how many matched in all."""
    needle = " ".join(text.split())
    if not needle:
        raise InvalidInput("households.search_empty")
    if len(needle) > SEARCH_MAX:
        raise InvalidInput("households.search_too_long", limit=SEARCH_MAX)
    condition = or_(
        col(Household.address).contains(needle, autoescape=True),
        col(Household.door).contains(needle, autoescape=True),
        col(Household.contact_name).contains(needle, autoescape=True),
        col(Household.phone).contains(needle, autoescape=True),
    )
    base = select(Household).join(Unit, col(Unit.id) == col(Household.building_id)).where(condition)
    if not actor.system:
        scopes = actor.scopes(EDITING_ROLES)
        if not scopes:
            actor.refuse("search households")
        base = base.where(within(s.path for s in scopes))
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = list(
        (
            await session.execute(
                base.order_by(
                    col(Household.archived_at).is_not(None),
                    col(Unit.code),
                    col(Household.address),
                    col(Household.door),
                ).limit(limit)
            )
        ).scalars()
    )
    units = await _units(session, (h.building_id for h in rows))
    return await _views(session, rows, units), int(total)


@dataclass(frozen=True)
class MyHouseholds:
    households: list[HouseholdView]
    """Assigned to me and within my roles, the most overdue first."""
    out_of_scope: int
    """Assigned to me but outside every role I hold now (not shown: ask for reassignment)."""


async def my_households(session: AsyncSession, actor: Actor) -> MyHouseholds:
    if actor.member_id is None:
        return MyHouseholds([], 0)
    rows = list(
        (
            await session.execute(
                select(Household)
                .where(col(Household.assignee_id) == actor.member_id)
                .where(col(Household.archived_at).is_(None))
                .order_by(col(Household.due_at), col(Household.id))
            )
        ).scalars()
    )
    units = await _units(session, (h.building_id for h in rows))
    visible = [h for h in rows if may_see(actor, units[h.building_id])]
    return MyHouseholds(await _views(session, visible, units), len(rows) - len(visible))


# ---------------------------------------------------------------------------------------------
# Assignments and hub groups ("1+10+N")


@dataclass(frozen=True)
class MemberChoice:
    id: int
    name: str
    roles: tuple[Role, ...]


async def _visiting_grants(
    session: AsyncSession,
    member_ids: Sequence[int] | None = None,
    *,
    overlapping: Sequence[UnitRef] = (),
) -> dict[int, list[tuple[Role, str]]]:
    """(role, unit path) of every visiting role, per member: of the given members, or of
    those holding one on a unit that overlaps one of ``overlapping`` (inside it or above it)."""
    query = (
        select(col(RoleGrant.member_id), col(RoleGrant.role), col(Unit.path))
        .join(Unit, col(Unit.id) == col(RoleGrant.unit_id))
        .where(col(RoleGrant.role).in_([r.value for r in VISITING_ROLES | {Role.admin}]))
    )
    if overlapping:
        ancestors = {int(i) for unit in overlapping for i in unit.path.strip("/").split("/") if i}
        query = query.where(
            or_(
                col(Unit.id).in_(sorted(ancestors)),
                *(col(Unit.path).startswith(unit.path) for unit in overlapping),
            )
        )
    grants: dict[int, list[tuple[Role, str]]] = defaultdict(list)
    if member_ids is None:
        for member_id, role, path in (await session.execute(query)).all():
            grants[member_id].append((Role(role), path))
        return grants
    for chunk in _chunks(list(member_ids)):
        rows = await session.execute(query.where(col(RoleGrant.member_id).in_(chunk)))
        for member_id, role, path in rows.all():
            grants[member_id].append((Role(role), path))
    return grants


def _covers(grants: Iterable[tuple[Role, str]], path: str) -> bool:
    return any(path.startswith(grant_path) for _, grant_path in grants)


async def assignable_members(
    session: AsyncSession, actor: Actor, building_id: int
) -> list[MemberChoice]:
    """Members who may visit this building (a visiting role on it or above), by name."""
    building = await _building(session, building_id)
    actor.require(ASSIGNING_ROLES, building, "list members to assign")
    grants = await _visiting_grants(session, overlapping=[building])
    ids = [m for m, g in grants.items() if _covers(g, building.path)]
    return await _choices(session, ids, grants)


async def _choices(
    session: AsyncSession, ids: Sequence[int], grants: dict[int, list[tuple[Role, str]]]
) -> list[MemberChoice]:
    names = await member_names(session, ids)
    order = list(Role)
    return sorted(
        (
            MemberChoice(m, names[m], tuple(sorted({r for r, _ in grants[m]}, key=order.index)))
            for m in ids
            if m in names
        ),
        key=lambda c: (c.name, c.id),
    )


@dataclass(frozen=True)
class AssignResult:
    building: UnitRef
    member_id: int
    member_name: str
    assigned: int
    """Households now assigned to the member by this action."""
    kept: int
    """Households left with someone else (only unassigned ones were asked for)."""


async def assign_building(
    session: AsyncSession,
    actor: Actor,
    building_id: int,
    member_id: int,
    now: datetime,
    *,
    only_unassigned: bool = False,
) -> AssignResult:
    """Give a building's households to one member, who is told in their own language."""
    building = await _building(session, building_id)
    actor.require(ASSIGNING_ROLES, building, "assign households")
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound("households.member_unknown")
    if not _covers((await _visiting_grants(session, [member_id]))[member_id], building.path):
        raise InvalidInput(
            "households.member_cannot_visit",
            name=member.display_name,
            building=f"{building.name} ({building.code})",
        )
    active = and_(col(Household.building_id) == building.id, col(Household.archived_at).is_(None))
    target = active
    if only_unassigned:
        target = and_(active, col(Household.assignee_id).is_(None))
    else:
        target = and_(
            active,
            or_(col(Household.assignee_id).is_(None), col(Household.assignee_id) != member_id),
        )
    result = await session.execute(
        update(Household).where(target).values(assignee_id=member_id, updated_at=now)
    )
    assigned = int(getattr(result, "rowcount", 0))
    kept = 0
    if only_unassigned:
        kept = int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Household)
                    .where(active)
                    .where(col(Household.assignee_id) != member_id)
                )
            ).scalar_one()
        )
    if assigned and member_id != actor.member_id:
        await notify(
            session,
            member_id,
            now,
            lambda t: _assigned_message(t, building, assigned),
            source="households.assign",
        )
    return AssignResult(building, member_id, member.display_name, assigned, kept)


def _assigned_message(t: Translator, building: UnitRef, count: int) -> Text:
    return Text(t("households.assigned_to_you", count=count, building=building.label(t.locale)))


async def hub_candidates(session: AsyncSession, actor: Actor) -> list[MemberChoice]:
    """Members the actor may group: a visiting role overlapping one of the actor's
    assigning scopes (on a unit inside it, or above it)."""
    if actor.system:
        grants = await _visiting_grants(session)
        return await _choices(session, list(grants), grants)
    scopes = actor.scopes(ASSIGNING_ROLES)
    if not scopes:
        actor.refuse("group members")
    grants = await _visiting_grants(session, overlapping=scopes)
    ids = [
        m
        for m, held in grants.items()
        if any(p.startswith(s.path) or s.path.startswith(p) for _, p in held for s in scopes)
    ]
    return await _choices(session, ids, grants)


@dataclass(frozen=True)
class HubGroup:
    hub: MemberChoice
    members: list[MemberChoice]


async def hub_group(session: AsyncSession, actor: Actor, hub_id: int) -> HubGroup:
    candidates = {c.id: c for c in await hub_candidates(session, actor)}
    if hub_id not in candidates:
        actor.refuse(f"hub {hub_id}")
    linked = (
        await session.execute(select(col(HubLink.member_id)).where(col(HubLink.hub_id) == hub_id))
    ).scalars()
    members = [candidates[m] for m in linked if m in candidates]
    return HubGroup(candidates[hub_id], sorted(members, key=lambda c: (c.name, c.id)))


HUB_SIZE_MAX = 30


async def set_hub_member(
    session: AsyncSession,
    actor: Actor,
    hub_id: int,
    member_id: int,
    linked: bool,
    now: datetime,
) -> HubGroup:
    """Link a member to a hub member (moving them from any other hub), or unlink them."""
    candidates = {c.id: c for c in await hub_candidates(session, actor)}
    if hub_id not in candidates or member_id not in candidates:
        actor.refuse(f"hub link {hub_id} <- {member_id}")
    if hub_id == member_id:
        raise InvalidInput("households.hub_self")
    if linked:
        if (await session.get(HubLink, hub_id)) is not None:
            raise InvalidInput("households.hub_is_member", name=candidates[hub_id].name)
        leads = (
            await session.execute(
                select(func.count()).select_from(HubLink).where(col(HubLink.hub_id) == member_id)
            )
        ).scalar_one()
        if leads:
            raise InvalidInput("households.member_is_hub", name=candidates[member_id].name)
        size = (
            await session.execute(
                select(func.count()).select_from(HubLink).where(col(HubLink.hub_id) == hub_id)
            )
        ).scalar_one()
        row = await session.get(HubLink, member_id)
        if row is None:
            if size >= HUB_SIZE_MAX:
                raise InvalidInput("households.hub_full", limit=HUB_SIZE_MAX)
            session.add(
                HubLink(
                    member_id=member_id, hub_id=hub_id, created_by=actor.member_id, created_at=now
                )
            )
        elif row.hub_id != hub_id:
            if size >= HUB_SIZE_MAX:
                raise InvalidInput("households.hub_full", limit=HUB_SIZE_MAX)
            row.hub_id, row.created_by, row.created_at = hub_id, actor.member_id, now
    else:
        await session.execute(
            delete(HubLink)
            .where(col(HubLink.member_id) == member_id)
            .where(col(HubLink.hub_id) == hub_id)
        )
    await session.flush()
    return await hub_group(session, actor, hub_id)


def _ref_keys(ref: str) -> tuple[int | None, tuple[str, ...]]:
    """``tg:<id>`` → (Telegram id, ()); anything else → (None, phone spellings to look for)."""
    text = unicodedata.normalize("NFKC", ref).strip()
    if text.lower().startswith("tg:") and text[3:].strip().isdigit():
        return int(text[3:].strip()), ()
    digits = re.sub(r"[\s\-()]", "", text).removeprefix("+86")
    return None, (digits, "+86" + digits)


async def members_by_refs(session: AsyncSession, refs: Iterable[str]) -> dict[str, int]:
    """Members named by ``tg:<Telegram id>`` or by the phone number they shared with the bot,
    looked up together; a reference that matches nobody, or two people, is left out."""
    wanted = {ref: _ref_keys(ref) for ref in set(refs)}
    telegram_ids = sorted({tg for tg, _ in wanted.values() if tg is not None})
    phones = sorted({p for tg, spellings in wanted.values() if tg is None for p in spellings})
    by_telegram: dict[int, int] = {}
    by_phone: dict[str, list[int]] = defaultdict(list)
    for chunk in _chunks(telegram_ids):
        rows = await session.execute(
            select(col(Member.telegram_id), col(Member.id)).where(
                col(Member.telegram_id).in_(chunk)
            )
        )
        by_telegram.update((int(tg), int(member_id or 0)) for tg, member_id in rows.all())
    for start in range(0, len(phones), CHUNK):
        rows = await session.execute(
            select(col(Member.phone), col(Member.id)).where(
                col(Member.phone).in_(phones[start : start + CHUNK])
            )
        )
        for phone, member_id in rows.all():
            by_phone[str(phone).removeprefix("+86")].append(int(member_id or 0))
    found: dict[str, int] = {}
    for ref, (tg, spellings) in wanted.items():
        if tg is not None:
            if tg in by_telegram:
                found[ref] = by_telegram[tg]
            continue
        matches = sorted(set(by_phone.get(spellings[0], [])))
        if len(matches) == 1:
            found[ref] = matches[0]
    return found


async def member_by_ref(session: AsyncSession, ref: str) -> MemberChoice:
    """A member named on the command line: ``tg:<Telegram id>`` or their phone number."""
    found = await members_by_refs(session, [ref])
    if ref not in found:
        raise NotFound("households.member_unknown_ref", ref=ref.strip()[:32])
    names = await member_names(session, [found[ref]])
    return MemberChoice(found[ref], names.get(found[ref], "?"), ())


# ---------------------------------------------------------------------------------------------
# Spreadsheet import


COLUMNS: dict[str, tuple[str, ...]] = {
    "building": ("楼栋", "楼栋号", "楼号", "楼栋编号", "楼宇", "building"),
    "address": ("地址", "住址", "详细地址", "门牌地址", "address"),
    "door": ("门牌号", "房号", "门牌", "室号", "户号", "door", "room"),
    "size": ("人数", "家庭人口", "家庭人数", "户人数", "人口", "size", "people"),
    "tags": ("标签", "类别", "人员类别", "户类别", "特殊类别", "tags"),
    "contact_name": ("联系人", "户主", "户主姓名", "姓名", "contact", "name"),
    "phone": ("电话", "联系电话", "手机", "手机号", "手机号码", "phone"),
    "notes": ("备注", "notes", "note"),
    "assignee": ("负责人", "联系党员", "责任人", "负责人电话", "assignee"),
    "last_visit": ("上次走访", "上次走访日期", "最近走访", "lastvisit", "last_visit"),
}
"""Accepted column headers per field (compared without spaces, case or a trailing "*")."""
REQUIRED = ("building",)
MAX_ROWS = 100_000
HEADER_SEARCH_ROWS = 10
TAG_SEPARATORS = re.compile(r"[,，、;；/\s]+")

Cell = str | int | float | datetime | date | None


def _header_key(text: str) -> str:
    cleaned = unicodedata.normalize("NFKC", text).casefold()
    cleaned = re.sub(r"[(\[].*?[)\]]", "", cleaned)
    return "".join(cleaned.split()).strip("*")


_ALIASES = {_header_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases}


@dataclass(frozen=True)
class ImportProblem:
    row: int
    """The spreadsheet's row number (as Excel shows it); 0 for the file as a whole."""
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, t: Translator) -> str:
        reason = t(self.key, **self.params)
        return reason if self.row == 0 else t("households.import_row", row=self.row, reason=reason)


class HouseholdFileError(Exception):
    """The file cannot be used at all: nothing is imported."""

    def __init__(self, key: str, **params: Any) -> None:
        self.problem = ImportProblem(0, key, params)
        super().__init__(key)


@dataclass(frozen=True)
class SheetRow:
    number: int
    cells: dict[str, Cell]


@dataclass(frozen=True)
class Sheet:
    rows: list[SheetRow]
    columns: dict[str, str]
    """Field → the header as written in the file."""
    ignored: list[str]


def read_household_file(path: Path) -> Sheet:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HouseholdFileError(
            N_("households.file_unreadable"), reason=error.strerror or str(error)
        ) from None
    return read_household_bytes(data, path.name)


def read_household_bytes(data: bytes, filename: str) -> Sheet:
    """Rows of an .xlsx or .csv registry (UTF-8 or GB18030, as Excel and WPS save them)."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xls":
        raise HouseholdFileError(N_("households.file_old_xls"))
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(data)
    elif suffix in (".csv", ".txt"):
        rows = _csv_rows(data)
    else:
        raise HouseholdFileError(N_("households.file_format"), suffix=suffix or filename[:32])
    return _sheet(rows)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise HouseholdFileError(
            N_("households.file_unreadable"), reason=type(error).__name__
        ) from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        raise HouseholdFileError(N_("households.file_empty"))

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells: list[Cell] = [v if isinstance(v, Cell) else None for v in values]
                yield number, cells
        finally:
            book.close()

    return rows()


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes every byte string
        raise HouseholdFileError(N_("households.file_unreadable"), reason="encoding")
    if "\x00" in text:
        raise HouseholdFileError(N_("households.file_unreadable"), reason="binary")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, values in enumerate(reader, start=1):
                yield number, list(values)
        except csv.Error as error:
            raise HouseholdFileError(N_("households.file_unreadable"), reason=str(error)) from None

    return rows()


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _sheet(rows: Iterator[tuple[int, list[Cell]]]) -> Sheet:
    header: list[Cell] | None = None
    columns: dict[str, int] = {}
    seen = 0
    for _number, values in rows:
        if all(_blank(v) for v in values):
            continue
        seen += 1
        keys = [_ALIASES.get(_header_key(str(v))) if not _blank(v) else None for v in values]
        if "building" in keys:
            header = values
            break
        if seen >= HEADER_SEARCH_ROWS:
            break
    if header is None:
        if seen == 0:
            raise HouseholdFileError(N_("households.file_empty"))
        raise HouseholdFileError(
            N_("households.file_missing_columns"), columns=_column_names(REQUIRED)
        )
    ignored = []
    for index, value in enumerate(header):
        if _blank(value):
            continue
        name = _ALIASES.get(_header_key(str(value)))
        if name is None:
            ignored.append(str(value).strip())
        elif name in columns:
            raise HouseholdFileError(N_("households.file_duplicate_column"), column=str(value))
        else:
            columns[name] = index
    if "address" not in columns and "door" not in columns:
        raise HouseholdFileError(
            N_("households.file_missing_columns"), columns=_column_names(("address", "door"))
        )
    data: list[SheetRow] = []
    for number, values in rows:
        if all(_blank(v) for v in values):
            continue
        if len(data) >= MAX_ROWS:
            raise HouseholdFileError(N_("households.file_too_many_rows"), limit=MAX_ROWS)
        cells = {
            name: (values[index] if index < len(values) else None)
            for name, index in columns.items()
        }
        data.append(SheetRow(number, cells))
    labels = {name: str(header[index]).strip() for name, index in columns.items()}
    return Sheet(data, labels, ignored)


def _column_names(fields: Iterable[str]) -> str:
    return " / ".join(f"{COLUMNS[f][0]} ({COLUMNS[f][-1]})" for f in fields)


def _cell_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).split())


_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _cell_date(value: Cell) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = _DATE.match(_cell_text(value))
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def bad_rows(self) -> int:
        return len({p.row for p in self.problems if p.row})


class HouseholdImportError(Exception):
    """Bad rows (or an unusable file) and nothing was written."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(f"{len(report.problems)} problem(s)")


@dataclass
class _Planned:
    row: int
    building: UnitRef
    grid_id: int
    key: str
    values: dict[str, Any]
    tag_ids: list[int] | None
    assignee_id: int | None
    last_visit: datetime | None


class _Lookups:
    def __init__(
        self,
        buildings: list[tuple[UnitRef, int | None]],
        tags: list[TagView],
    ) -> None:
        self.by_code: dict[str, tuple[UnitRef, int | None]] = {}
        self.by_name: dict[str, list[tuple[UnitRef, int | None]]] = defaultdict(list)
        for unit, parent in buildings:
            self.by_code[unit.code.casefold()] = (unit, parent)
            self.by_name[_header_key(unit.name)].append((unit, parent))
            if unit.name_en and _header_key(unit.name_en) != _header_key(unit.name):
                self.by_name[_header_key(unit.name_en)].append((unit, parent))
        self.tags: dict[str, TagView] = {}
        for tag in tags:
            for label in (tag.code, tag.name, tag.name_en):
                if label:
                    self.tags[label.casefold()] = tag
        self.tag_names = "、".join(t.name for t in tags)


async def import_households(
    session: AsyncSession,
    actor: Actor,
    sheet: Sheet,
    now: datetime,
    policy: VisitPolicy,
    *,
    partial: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Create or update households from a registry sheet, keyed by building and address.

    Every bad row is reported with its row number and reason. By default one bad row means
    nothing is written (:class:`HouseholdImportError`); with ``partial`` the good rows are
    written and the bad ones skipped whole. An empty cell never erases what is stored.
    """
    report = ImportReport(rows=len(sheet.rows), ignored_columns=list(sheet.ignored))
    units = (
        await session.execute(
            select(Unit).where(col(Unit.kind) == UnitKind.building.value).order_by(col(Unit.code))
        )
    ).scalars()
    lookups = _Lookups([(UnitRef.of(u), u.parent_id) for u in units], await list_tags(session))
    refs = {_cell_text(row.cells.get("assignee")) for row in sheet.rows} - {""}
    members = await members_by_refs(session, refs)
    grants = await _visiting_grants(session, sorted(set(members.values())))
    planned: list[_Planned] = []
    first_row: dict[tuple[int, str], int] = {}
    for row in sheet.rows:
        try:
            plan = _plan_row(actor, row, sheet, lookups, members, grants, policy, now)
        except _RowProblem as problem:
            report.problems.append(ImportProblem(row.number, problem.key, problem.params))
            continue
        where = (plan.building.id, plan.key)
        if where in first_row:
            report.problems.append(
                ImportProblem(
                    row.number, N_("households.import_duplicate"), {"first": first_row[where]}
                )
            )
            continue
        first_row[where] = row.number
        planned.append(plan)
    report.skipped = report.bad_rows
    if report.problems and not partial:
        raise HouseholdImportError(report)
    await _apply(session, actor, planned, sheet, report, now, policy, dry_run)
    return report


class _RowProblem(Exception):
    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(key)


def _plan_row(
    actor: Actor,
    row: SheetRow,
    sheet: Sheet,
    lookups: _Lookups,
    members: dict[str, int],
    grants: dict[int, list[tuple[Role, str]]],
    policy: VisitPolicy,
    now: datetime,
) -> _Planned:
    cells = row.cells
    text = {name: _cell_text(value) for name, value in cells.items()}
    building_text = text.get("building", "")
    if not building_text:
        raise _RowProblem(N_("households.import_no_building"))
    found = lookups.by_code.get(building_text.casefold())
    if found is None:
        named = lookups.by_name.get(_header_key(building_text), [])
        if len(named) > 1:
            codes = ", ".join(u.code for u, _ in named)
            raise _RowProblem(
                N_("households.import_ambiguous_building"), building=building_text, codes=codes
            )
        found = named[0] if named else None
    if found is None:
        raise _RowProblem(N_("households.import_unknown_building"), building=building_text[:40])
    building, grid_id = found
    if grid_id is None:
        raise _RowProblem(N_("households.building_without_grid"), building=building.code)
    if not actor.can(EDITING_ROLES, building):
        raise _RowProblem(N_("households.import_building_not_yours"), building=building.code)
    address, door = text.get("address", ""), text.get("door", "")
    if not address and not door:
        raise _RowProblem(N_("households.import_no_address"))
    values: dict[str, Any] = {"address": address, "door": door}
    for name, limit in (
        ("address", ADDRESS_MAX),
        ("door", DOOR_MAX),
        ("contact_name", CONTACT_MAX),
        ("notes", NOTES_MAX),
    ):
        value = text.get(name, "")
        if len(value) > limit:
            raise _RowProblem(
                N_("households.import_too_long"), column=sheet.columns[name], limit=limit
            )
        if value and name in ("contact_name", "notes"):
            values[name] = value
    if text.get("size"):
        try:
            values["size"] = clean_size(text["size"])
        except InvalidInput:
            raise _RowProblem(
                N_("households.import_bad_size"), value=text["size"][:20], limit=SIZE_MAX
            ) from None
    if text.get("phone"):
        try:
            values["phone"] = clean_phone(text["phone"])
        except InvalidInput:
            raise _RowProblem(N_("households.import_bad_phone"), value=text["phone"][:32]) from None
    tag_ids: list[int] | None = None
    if text.get("tags"):
        tag_ids = []
        for label in TAG_SEPARATORS.split(text["tags"]):
            if not label:
                continue
            tag = lookups.tags.get(unicodedata.normalize("NFKC", label).casefold())
            if tag is None:
                raise _RowProblem(
                    N_("households.import_unknown_tag"), tag=label[:20], known=lookups.tag_names
                )
            if tag.id not in tag_ids:
                tag_ids.append(tag.id)
    assignee_id = None
    if text.get("assignee"):
        ref = text["assignee"]
        if ref not in members:
            raise _RowProblem(N_("households.import_unknown_member"), value=ref[:32])
        found_member = members[ref]
        if not _covers(grants[found_member], building.path):
            raise _RowProblem(
                N_("households.import_member_cannot_visit"), value=ref[:32], building=building.code
            )
        assignee_id = found_member
    last_visit = None
    if not _blank(cells.get("last_visit")):
        day = _cell_date(cells.get("last_visit"))
        if day is None:
            raise _RowProblem(
                N_("households.import_bad_date"), value=_cell_text(cells.get("last_visit"))[:20]
            )
        if day > policy.local_date(now):
            raise _RowProblem(N_("households.import_future_date"), value=day.isoformat())
        last_visit = datetime.combine(day, time(12), policy.zone).astimezone(UTC)
    return _Planned(
        row.number,
        building,
        grid_id,
        address_key(address, door),
        values,
        tag_ids,
        assignee_id,
        last_visit,
    )


_UPDATE_FIELDS = (
    "address",
    "door",
    "size",
    "contact_name",
    "phone",
    "notes",
    "assignee_id",
    "interval_days",
    "last_visited_at",
    "due_at",
)


async def _apply(
    session: AsyncSession,
    actor: Actor,
    planned: list[_Planned],
    sheet: Sheet,
    report: ImportReport,
    now: datetime,
    policy: VisitPolicy,
    dry_run: bool,
) -> None:
    tags = {t.id: t for t in await list_tags(session)}
    buildings = sorted({p.building.id for p in planned})
    existing: dict[tuple[int, str], Household] = {}
    for chunk in _chunks(buildings, 200):
        for household in (
            await session.execute(select(Household).where(col(Household.building_id).in_(chunk)))
        ).scalars():
            existing[(household.building_id, household.address_key)] = household
    linked: dict[int, set[int]] = defaultdict(set)
    ids = sorted(h.id for h in existing.values() if h.id is not None)
    for chunk in _chunks(ids):
        for household_id, tag_id in (
            await session.execute(
                select(col(HouseholdTagLink.household_id), col(HouseholdTagLink.tag_id)).where(
                    col(HouseholdTagLink.household_id).in_(chunk)
                )
            )
        ).all():
            linked[household_id].add(tag_id)

    inserts: list[dict[str, Any]] = []
    insert_tags: list[list[int]] = []
    updates: list[dict[str, Any]] = []
    relink: dict[int, list[int]] = {}
    recadenced: set[int] = set()
    for plan in planned:
        current = existing.get((plan.building.id, plan.key))
        if current is None:
            tag_ids = plan.tag_ids or []
            days = interval_of((tags[t] for t in tag_ids), policy.default_days)
            inserts.append(
                {
                    "building_id": plan.building.id,
                    "grid_id": plan.grid_id,
                    "address_key": plan.key,
                    "address": plan.values["address"],
                    "door": plan.values["door"],
                    "size": plan.values.get("size"),
                    "contact_name": plan.values.get("contact_name"),
                    "phone": plan.values.get("phone"),
                    "notes": plan.values.get("notes"),
                    "assignee_id": plan.assignee_id,
                    "interval_days": days,
                    "last_visited_at": plan.last_visit,
                    "due_at": (plan.last_visit or now) + timedelta(days=days),
                    "created_by": actor.member_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            insert_tags.append(tag_ids)
            continue
        assert current.id is not None
        before = {name: getattr(current, name) for name in _UPDATE_FIELDS}
        after = dict(before)
        after.update(plan.values)
        if plan.assignee_id is not None:
            after["assignee_id"] = plan.assignee_id
        if plan.last_visit is not None and (
            current.last_visited_at is None or plan.last_visit > current.last_visited_at
        ):
            after["last_visited_at"] = plan.last_visit
        tag_ids = sorted(linked[current.id]) if plan.tag_ids is None else sorted(plan.tag_ids)
        if plan.tag_ids is not None and set(plan.tag_ids) != linked[current.id]:
            relink[current.id] = tag_ids
        after["interval_days"] = interval_of((tags[t] for t in tag_ids), policy.default_days)
        after["due_at"] = (after["last_visited_at"] or current.created_at) + timedelta(
            days=after["interval_days"]
        )
        if after == before and current.id not in relink:
            report.unchanged += 1
            continue
        if after["interval_days"] != before["interval_days"]:
            recadenced.add(current.id)
        updates.append({"row_id": current.id, **after, "updated_at": now})
    report.created = len(inserts)
    report.updated = len(updates)
    if dry_run:
        return
    table = _HOUSEHOLDS
    links = HouseholdTagLink.__table__  # type: ignore[attr-defined]
    for start in range(0, len(inserts), 2000):
        await session.execute(insert(table), inserts[start : start + 2000])
    inserted = {
        (row["building_id"], row["address_key"]): (row["interval_days"], tag_ids)
        for row, tag_ids in zip(inserts, insert_tags, strict=True)
    }
    new_links = []
    intervals: list[tuple[int, int]] = []
    for chunk in _chunks(sorted({key[0] for key in inserted}), 200):
        found = await session.execute(
            select(table.c.id, table.c.building_id, table.c.address_key).where(
                table.c.building_id.in_(chunk)
            )
        )
        for household_id, building_id, key in found.all():
            if (building_id, key) not in inserted:
                continue
            days, tag_ids = inserted[(building_id, key)]
            intervals.append((household_id, days))
            for tag_id in tag_ids:
                new_links.append({"household_id": household_id, "tag_id": tag_id})
    for start in range(0, len(new_links), 2000):
        await session.execute(insert(links), new_links[start : start + 2000])
    if updates:
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in (*_UPDATE_FIELDS, "updated_at")})
        )
        for start in range(0, len(updates), CHUNK):
            await session.execute(statement, updates[start : start + CHUNK])
    intervals += [(u["row_id"], u["interval_days"]) for u in updates if u["row_id"] in recadenced]
    await record_intervals(session, intervals, now)
    relinked = sorted(relink)
    for chunk in _chunks(relinked):
        await session.execute(delete(links).where(links.c.household_id.in_(chunk)))
    rows = [{"household_id": h, "tag_id": t} for h in relinked for t in relink[h]]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(links), rows[start : start + CHUNK])
    report.written = bool(inserts or updates)


TEMPLATE_HEADER = (
    "楼栋",
    "地址",
    "门牌号",
    "人数",
    "标签",
    "联系人",
    "电话",
    "备注",
    "负责人",
    "上次走访",
)
TEMPLATE_EXAMPLE: tuple[tuple[object, ...], ...] = (
    (
        "B1",
        "和平路88弄3号",
        "101",
        1,
        "独居老人",
        "王秀英",
        "13900001101",
        "腿脚不便",
        "",
        "2026-10-20",
    ),
    ("B1", "和平路88弄3号", "102", 3, "", "李建国", "021-55551102", "", "", ""),
    (
        "B1",
        "和平路88弄3号",
        "201",
        2,
        "特需对象、低保户",
        "赵桂兰",
        "13900001201",
        "需要定期送药",
        "",
        "",
    ),
    ("新德2号楼", "和平路88弄5号", "301", 4, "出租户", "孙磊", "13900001301", "", "", ""),
    (
        "B3",
        "和平路90弄1号",
        "502",
        1,
        "独居老人、残疾人",
        "周淑珍",
        "",
        "听力不好，请敲门大声",
        "",
        "2026-11-02",
    ),
)
"""The documented template's header and example rows (the demo org's buildings)."""


def template_workbook() -> bytes:
    """The import template as an Excel workbook: a sheet with the header and example rows,
    and a sheet explaining each column."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "住户台账"
    sheet.append(list(TEMPLATE_HEADER))
    for row in TEMPLATE_EXAMPLE:
        sheet.append(list(row))
    for column, width in zip("ABCDEFGHIJ", (10, 18, 8, 6, 18, 10, 14, 20, 14, 12), strict=True):
        sheet.column_dimensions[column].width = width
    notes = book.create_sheet("说明")
    notes.append(["列", "必填", "说明"])
    for name, required, text in TEMPLATE_NOTES:
        notes.append([name, required, text])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


TEMPLATE_NOTES = (
    ("楼栋", "是", "楼栋编号（如 B1）或楼栋名称（重名时必须用编号）"),
    ("地址", "与门牌号至少填一项", "如 和平路88弄3号；同一楼栋内“地址+门牌号”相同即视为同一户"),
    ("门牌号", "与地址至少填一项", "如 302 或 302室"),
    ("人数", "否", "1–50 的整数"),
    ("标签", "否", "用顿号或逗号分隔，如 独居老人、特需对象；必须是已有标签"),
    ("联系人", "否", "户主或联系人姓名（个人信息，仅本网格及以上可见）"),
    ("电话", "否", "11 位手机号或带区号的座机号"),
    ("备注", "否", "最多 500 字"),
    ("负责人", "否", "负责走访的成员：其在机器人中登记的手机号，或 tg:Telegram 编号"),
    ("上次走访", "否", "日期，如 2026-10-05；用于计算下次走访时间"),
)
