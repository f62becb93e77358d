"""Micro-wishes (微心愿): post, approve, claim, fulfil, confirm — and every way out.

Life cycle (docs/flows/wishes.md): ``submitted → approved → claimed → fulfilled → confirmed``,
plus ``rejected`` (with a reason), ``withdrawn`` and ``released`` (the claimer gave up or the
claim went stale; published again). Each change is a conditional UPDATE on the expected status
(two presses: the second finds nothing to change and is refused) plus a :class:`WishEvent`.
One live claim per wish is a unique constraint (``wish_claims.live_wish_id``), not a check.

Everyone involved hears of every step through the outbox, in their own language. The wisher's
contact and address go to the claimer only, and only after the claim. Confirmation awards the
claimer points (rule ``wish_fulfilled``) and logs the service hours they reported.

Other capabilities create wishes with :func:`create_wish` (e.g. a door-knocking visit that
found a need: ``source="visit", source_id=<visit id>, household_id=..., unit_id=<building>``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator
from models.members import Member, Role, RoleGrant
from models.org import Unit, UnitKind
from models.wishes import (
    OPEN_STATUSES,
    ClaimEnd,
    ClaimKind,
    MemberSkill,
    Skill,
    Wish,
    WishCategory,
    WishClaim,
    WishEvent,
    WishStatus,
)
from services import outbox, points
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound
from services.messages import Button, Keyboard, Message, Photo, Text
from services.org import unit_by_id, within
from services.sql import insert_ignore, skip_locked

log = logging.getLogger(__name__)

TEXT_MAX = 500
ADDRESS_MAX = 200
REASON_MAX = 300
NOTE_MAX = 1000
CONTACT_NAME_MAX = 64
PAGE_SIZE = 5
TITLE_PREVIEW = 40
REMIND_BEFORE = timedelta(days=1)
MAX_WISHED_BY_DAYS = 366
MAX_MINUTES = 24 * 60
FULFIL_RULE = "wish_fulfilled"

APPROVERS = frozenset({Role.grid_leader, Role.coordinator})
BROWSERS = frozenset({Role.volunteer, Role.grid_worker, Role.grid_leader, Role.coordinator})
CLAIMERS = frozenset({Role.volunteer})
STAFF_CREATORS = frozenset({Role.grid_worker, Role.grid_leader, Role.coordinator})
RESIDENT_UNIT_KINDS = frozenset({UnitKind.building, UnitKind.grid, UnitKind.community})

SKILL_CATEGORIES: dict[Skill, frozenset[WishCategory]] = {
    Skill.errands: frozenset({WishCategory.hardship, WishCategory.elderly}),
    Skill.elderly_care: frozenset({WishCategory.elderly}),
    Skill.tutoring: frozenset({WishCategory.tutoring}),
    Skill.repairs: frozenset({WishCategory.repairs}),
    Skill.medical: frozenset({WishCategory.health, WishCategory.elderly}),
    Skill.legal: frozenset({WishCategory.hardship}),
    Skill.counselling: frozenset({WishCategory.health, WishCategory.hardship}),
    Skill.digital: frozenset({WishCategory.elderly, WishCategory.tutoring}),
}
"""Which wishes a skill is good for; "other" wishes suit anyone who declared any skill."""

CATEGORY_NAMES = {
    WishCategory.hardship: N_("wishes.category_hardship"),
    WishCategory.elderly: N_("wishes.category_elderly"),
    WishCategory.tutoring: N_("wishes.category_tutoring"),
    WishCategory.repairs: N_("wishes.category_repairs"),
    WishCategory.health: N_("wishes.category_health"),
    WishCategory.other: N_("wishes.category_other"),
}
STATUS_NAMES = {
    WishStatus.submitted: N_("wishes.status_submitted"),
    WishStatus.approved: N_("wishes.status_approved"),
    WishStatus.claimed: N_("wishes.status_claimed"),
    WishStatus.fulfilled: N_("wishes.status_fulfilled"),
    WishStatus.confirmed: N_("wishes.status_confirmed"),
    WishStatus.rejected: N_("wishes.status_rejected"),
    WishStatus.withdrawn: N_("wishes.status_withdrawn"),
    WishStatus.released: N_("wishes.status_released"),
}
SKILL_NAMES = {
    Skill.errands: N_("wishes.skill_errands"),
    Skill.elderly_care: N_("wishes.skill_elderly_care"),
    Skill.tutoring: N_("wishes.skill_tutoring"),
    Skill.repairs: N_("wishes.skill_repairs"),
    Skill.medical: N_("wishes.skill_medical"),
    Skill.legal: N_("wishes.skill_legal"),
    Skill.counselling: N_("wishes.skill_counselling"),
    Skill.digital: N_("wishes.skill_digital"),
}


@dataclass(frozen=True)
class WishView:
    id: int
    status: WishStatus
    category: WishCategory
    text: str
    photo_file_id: str | None
    wished_by: date | None
    unit: UnitRef
    grid_id: int | None
    community_id: int | None
    wisher_id: int | None
    wisher_name: str | None
    created_by: int | None
    household_id: int | None
    source: str | None
    source_id: int | None
    claimer_id: int | None
    claimer_name: str | None
    claim_kind: ClaimKind | None
    claim_stale_at: datetime | None
    fulfil_note: str | None
    fulfil_photo_file_id: str | None
    fulfil_minutes: int | None
    confirm_due_at: datetime | None
    confirm_escalated: bool
    """The confirmation is overdue and went to the coordinators (who may now confirm)."""
    reject_reason: str | None
    created_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def involves(self, member_id: int | None) -> bool:
        return member_id is not None and member_id in (
            self.wisher_id,
            self.created_by,
            self.claimer_id,
        )


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str | None
    address: str


@dataclass(frozen=True)
class WishPage:
    wishes: tuple[WishView, ...]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Claimed:
    wish: WishView
    contact: Contact


@dataclass(frozen=True)
class Confirmed:
    wish: WishView
    points: int | None
    minutes: int | None


def title(t: Translator, wish: WishView) -> str:
    """``#12 「辅导功课」 text…`` in the reader's language."""
    text = " ".join(wish.text.split())
    preview = text if len(text) <= TITLE_PREVIEW else text[: TITLE_PREVIEW - 1] + "…"
    return t("wishes.title", id=wish.id, category=t(CATEGORY_NAMES[wish.category]), text=preview)


def describe(t: Translator, wish: WishView, zone: tzinfo) -> str:
    """The public description of a wish: no name, no contact, no address."""
    lines = [
        title(t, wish),
        t("wishes.line_status", status=t(STATUS_NAMES[wish.status])),
        t("wishes.line_where", unit=wish.unit.label(t.locale)),
        t("wishes.line_text", text=wish.text),
    ]
    if wish.wished_by:
        lines.append(t("wishes.line_wished_by", date=wish.wished_by.isoformat()))
    if wish.photo_file_id:
        lines.append(t("wishes.line_has_photo"))
    if wish.claimer_name and wish.status not in OPEN_STATUSES:
        lines.append(t("wishes.line_claimer", name=wish.claimer_name))
    if wish.fulfil_note and wish.status in (WishStatus.fulfilled, WishStatus.confirmed):
        lines.append(t("wishes.line_fulfil_note", note=wish.fulfil_note))
    if wish.reject_reason and wish.status == WishStatus.rejected:
        lines.append(t("wishes.line_reject_reason", reason=wish.reject_reason))
    if wish.status == WishStatus.claimed and wish.claim_stale_at:
        local = wish.claim_stale_at.astimezone(zone)
        lines.append(t("wishes.line_stale_at", date=local.strftime("%Y-%m-%d %H:%M")))
    return "\n".join(lines)


def contact_text(t: Translator, contact: Contact) -> str:
    return t(
        "wishes.contact",
        name=contact.name or "—",
        phone=contact.phone or t("wishes.no_phone"),
        address=contact.address or "—",
    )


# ---------------------------------------------------------------------------------------------
# Loading


async def _wish_row(session: AsyncSession, wish_id: int) -> Wish:
    wish = await session.get(Wish, wish_id)
    if wish is None:
        raise NotFound(N_("wishes.unknown"))
    return wish


async def _view(session: AsyncSession, wish: Wish) -> WishView:
    assert wish.id is not None
    unit = await unit_by_id(session, wish.unit_id)
    claims = select(WishClaim, col(Member.display_name)).join(
        Member, col(Member.id) == col(WishClaim.member_id)
    )
    if WishStatus(wish.status) == WishStatus.confirmed:
        claims = claims.where(
            col(WishClaim.wish_id) == wish.id,
            col(WishClaim.end_reason) == ClaimEnd.fulfilled.value,
        )
    else:
        claims = claims.where(col(WishClaim.live_wish_id) == wish.id)
    claim = (await session.execute(claims.order_by(col(WishClaim.id).desc()).limit(1))).first()
    wisher_name = None
    if wish.wisher_id is not None:
        wisher = await session.get(Member, wish.wisher_id)
        wisher_name = wisher.display_name if wisher else None
    claim_row, claimer_name = (claim[0], str(claim[1])) if claim else (None, None)
    return WishView(
        id=wish.id,
        status=WishStatus(wish.status),
        category=WishCategory(wish.category),
        text=wish.text,
        photo_file_id=wish.photo_file_id,
        wished_by=wish.wished_by,
        unit=unit,
        grid_id=wish.grid_id,
        community_id=wish.community_id,
        wisher_id=wish.wisher_id,
        wisher_name=wisher_name or (wish.contact_name or None),
        created_by=wish.created_by,
        household_id=wish.household_id,
        source=wish.source,
        source_id=wish.source_id,
        claimer_id=claim_row.member_id if claim_row else None,
        claimer_name=claimer_name,
        claim_kind=ClaimKind(claim_row.kind) if claim_row else None,
        claim_stale_at=claim_row.stale_at if claim_row else None,
        fulfil_note=wish.fulfil_note,
        fulfil_photo_file_id=wish.fulfil_photo_file_id,
        fulfil_minutes=wish.fulfil_minutes,
        confirm_due_at=wish.confirm_due_at,
        confirm_escalated=wish.confirm_escalated_at is not None,
        reject_reason=wish.reject_reason,
        created_at=wish.created_at,
    )


async def load(session: AsyncSession, wish_id: int) -> WishView:
    return await _view(session, await _wish_row(session, wish_id))


def may_see(actor: Actor, wish: WishView) -> bool:
    """The people involved, staff in scope, and volunteers in scope while it is open."""
    if actor.system or wish.involves(actor.member_id):
        return True
    if actor.can(STAFF_CREATORS, wish.unit):
        return True
    return wish.is_open and actor.can(CLAIMERS, wish.unit)


async def get_wish(session: AsyncSession, actor: Actor, wish_id: int) -> WishView:
    """A wish the actor may see; a forged id from elsewhere is refused, not shown."""
    wish = await load(session, wish_id)
    if not may_see(actor, wish):
        actor.refuse("see wish", wish.unit)
    return wish


async def contact_of(session: AsyncSession, actor: Actor, wish_id: int) -> Contact:
    """The wisher's contact: for the live claimer (and the wisher or creator) only."""
    wish = await _wish_row(session, wish_id)
    view = await _view(session, wish)
    allowed = actor.member_id is not None and actor.member_id in (
        view.claimer_id,
        view.wisher_id,
        view.created_by,
    )
    if not allowed:
        actor.refuse("see wish contact", view.unit)
    return Contact(wish.contact_name, wish.contact_phone, wish.address)


async def _ancestor_units(session: AsyncSession, unit: UnitRef) -> list[UnitRef]:
    ids = [int(p) for p in unit.path.strip("/").split("/") if p]
    return await points.units_by_id(session, ids)


async def _members_with(
    session: AsyncSession, roles: Iterable[Role], unit_ids: Sequence[int]
) -> list[int]:
    rows = (
        await session.execute(
            select(col(RoleGrant.member_id))
            .where(col(RoleGrant.role).in_([r.value for r in roles]))
            .where(col(RoleGrant.unit_id).in_(list(unit_ids)))
            .distinct()
            .order_by(col(RoleGrant.member_id))
        )
    ).scalars()
    return [int(m) for m in rows]


async def approvers_of(session: AsyncSession, wish: WishView) -> list[int]:
    """Grid leaders and coordinators on the wish's unit or above it."""
    ids = [int(p) for p in wish.unit.path.strip("/").split("/") if p]
    return await _members_with(session, APPROVERS, ids)


async def coordinators_of(session: AsyncSession, wish: WishView) -> list[int]:
    ids = [int(p) for p in wish.unit.path.strip("/").split("/") if p]
    return await _members_with(session, {Role.coordinator}, ids)


# ---------------------------------------------------------------------------------------------
# Notifications


def _wish_button(t: Translator, key: str, action: str, wish_id: int) -> Button:
    return Button(t(key), payload=f"wish:{action}:{wish_id}")


async def _tell(
    session: AsyncSession,
    member_ids: Iterable[int | None],
    now: datetime,
    wish: WishView,
    key: str,
    cause: str,
    *,
    buttons: tuple[tuple[str, str], ...] = (),
    skip: Iterable[int | None] = (),
    photo: str | None = None,
    **params: object,
) -> None:
    """Queue ``key`` (with the wish's title) to each member, once per ``cause`` (the event
    token): a retried transaction or a job run twice sends nothing twice."""
    skipped = {m for m in skip if m is not None}
    seen: set[int] = set()
    for member_id in member_ids:
        if member_id is None or member_id in skipped or member_id in seen:
            continue
        seen.add(member_id)

        def render(t: Translator) -> list[Message]:
            text = t(key, wish=title(t, wish), unit=wish.unit.label(t.locale), **params)
            keyboard: Keyboard = (
                (tuple(_wish_button(t, label, action, wish.id) for label, action in buttons),)
                if buttons
                else ()
            )
            messages: list[Message] = []
            if photo:
                messages.append(Photo(file_id=photo, caption=title(t, wish)))
            messages.append(Text(text, keyboard))
            return messages

        await outbox.notify(
            session, member_id, now, render, dedupe_key=f"wishes.{cause}:{member_id}"
        )


async def _event(
    session: AsyncSession,
    wish_id: int,
    action: str,
    before: WishStatus | None,
    after: WishStatus,
    actor: Actor | None,
    now: datetime,
    note: str = "",
) -> str:
    """Record the step; returns a token naming it, which keys the notifications it causes."""
    event = WishEvent(
        wish_id=wish_id,
        action=action,
        from_status=before,
        to_status=after,
        actor_id=actor.member_id if actor else None,
        at=now,
        note=note[:NOTE_MAX],
    )
    session.add(event)
    await session.flush()
    return f"e{event.id}"


async def _move(
    session: AsyncSession,
    wish_id: int,
    allowed: Iterable[WishStatus],
    to: WishStatus,
    now: datetime,
    **values: object,
) -> bool:
    """Change the status only if it is still one of ``allowed`` (the second press loses)."""
    moved = await session.execute(
        update(Wish)
        .where(col(Wish.id) == wish_id)
        .where(col(Wish.status).in_([s.value for s in allowed]))
        .values(status=to.value, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(moved, "rowcount", 0))


def _refuse_state(wish: WishView) -> Conflict:
    if wish.status == WishStatus.claimed:
        return Conflict(N_("wishes.already_claimed"))
    if wish.status == WishStatus.confirmed:
        return Conflict(N_("wishes.already_confirmed"))
    return Conflict(N_("wishes.wrong_status"), status=wish.status.value)


def _clean(value: str, limit: int, too_long: str, *, required: bool = True) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidInput(N_("wishes.text_empty"))
    if len(text) > limit:
        raise InvalidInput(too_long, limit=limit)
    return text


# ---------------------------------------------------------------------------------------------
# Creating


async def create_wish(
    session: AsyncSession,
    actor: Actor,
    *,
    now: datetime,
    category: WishCategory | str,
    text: str,
    address: str = "",
    unit_id: int | None = None,
    household_id: int | None = None,
    contact_name: str | None = None,
    contact_phone: str | None = None,
    photo_file_id: str | None = None,
    wished_by: date | None = None,
    source: str | None = None,
    source_id: int | None = None,
    zone: tzinfo = points.DEFAULT_ZONE,
    vouched: bool = False,
) -> WishView:
    """Create a wish (status ``submitted``) and ask the approvers.

    * A resident's own wish: leave ``household_id`` and ``source`` out. The wish lives on the
      resident's own unit (``unit_id`` may choose among the units they belong to); the contact
      is their name and phone (``contact_phone`` overrides the profile's), ``address`` is
      required.
    * For a household, by staff (e.g. a door-knocking visit hand-off): pass ``unit_id`` (the
      household's building or grid), ``household_id``, ``contact_name``/``contact_phone``/
      ``address`` from the household file, and ``source="visit", source_id=<visit id>``.
      Requires a grid worker, grid leader or coordinator role over ``unit_id``; the wish has no
      wisher member, so its creator confirms the fulfilment. ``vouched=True``: the calling
      service has already checked that the actor may speak for the household (a visitor's own
      visit, ``services.visits.needs_to_wish``), so no staff role is required.

    With ``source``/``source_id`` the call is idempotent: a second call returns the wish the
    first one created (a unique constraint, also under races)."""
    if actor.member_id is None and not actor.system:
        raise InvalidInput(N_("wishes.join_first"))
    try:
        kind = WishCategory(category)
    except ValueError:
        raise InvalidInput(N_("wishes.category_invalid")) from None
    body = _clean(text, TEXT_MAX, N_("wishes.text_too_long"))
    on_behalf = household_id is not None or source is not None
    if (source is None) != (source_id is None):
        raise InvalidInput(N_("wishes.source_incomplete"))
    if source is not None:
        existing = (
            await session.execute(
                select(Wish).where(col(Wish.source) == source, col(Wish.source_id) == source_id)
            )
        ).scalar_one_or_none()
        if existing is not None:
            return await _view(session, existing)
    if wished_by is not None:
        today = now.astimezone(zone).date()
        if not today <= wished_by <= today + timedelta(days=MAX_WISHED_BY_DAYS):
            raise InvalidInput(N_("wishes.date_invalid"), days=MAX_WISHED_BY_DAYS)
    address = _clean(address, ADDRESS_MAX, N_("wishes.address_too_long"), required=not on_behalf)
    if on_behalf:
        if unit_id is None:
            raise InvalidInput(N_("wishes.no_unit"))
        unit = await unit_by_id(session, unit_id)
        if not vouched:
            actor.require(STAFF_CREATORS, unit, "create wish for a household")
        wisher_id = None
        name = _clean(
            contact_name or "", CONTACT_NAME_MAX, N_("wishes.name_too_long"), required=False
        )
        phone = contact_phone
    else:
        unit = resident_unit(actor, unit_id)
        wisher_id = actor.member_id
        member = await session.get(Member, actor.member_id) if actor.member_id else None
        name = member.display_name if member else ""
        phone = contact_phone or (member.phone if member else None)
    if phone is not None and len(phone) > 32:
        raise InvalidInput(N_("wishes.phone_invalid"))
    ancestors = await _ancestor_units(session, unit)
    grid = next((u for u in ancestors if u.kind == UnitKind.grid), None)
    community = next((u for u in ancestors if u.kind == UnitKind.community), None)
    new_id = await insert_ignore(
        session,
        Wish,
        {
            "status": WishStatus.submitted.value,
            "category": kind.value,
            "text": body,
            "photo_file_id": photo_file_id,
            "wished_by": wished_by,
            "unit_id": unit.id,
            "grid_id": grid.id if grid else None,
            "community_id": community.id if community else None,
            "wisher_id": wisher_id,
            "created_by": actor.member_id,
            "household_id": household_id,
            "source": source,
            "source_id": source_id,
            "contact_name": name,
            "contact_phone": phone,
            "address": address,
            "created_at": now,
            "updated_at": now,
        },
        conflict=["source", "source_id"],
        returning="id",
    )
    if new_id is None:  # a concurrent hand-off from the same source won
        existing = (
            await session.execute(
                select(Wish).where(col(Wish.source) == source, col(Wish.source_id) == source_id)
            )
        ).scalar_one()
        return await _view(session, existing)
    ev = await _event(session, int(new_id), "submit", None, WishStatus.submitted, actor, now)
    view = await load(session, int(new_id))
    await _tell(
        session,
        await approvers_of(session, view),
        now,
        view,
        N_("wishes.notice_submitted"),
        ev,
        buttons=((N_("wishes.button_approve"), "ok"), (N_("wishes.button_reject"), "no")),
        skip=[actor.member_id, view.wisher_id],
        photo=photo_file_id,
    )
    return view


async def set_category(
    session: AsyncSession,
    actor: Actor,
    wish_id: int,
    category: WishCategory | str,
    now: datetime,
) -> WishView:
    """Change the category of a wish that is not yet approved: its creator (e.g. the visitor
    who posted it for a household) or an approver over it."""
    try:
        kind = WishCategory(category)
    except ValueError:
        raise InvalidInput(N_("wishes.category_invalid")) from None
    wish = await load(session, wish_id)
    own = actor.member_id is not None and actor.member_id in (wish.created_by, wish.wisher_id)
    if not own:
        actor.require(APPROVERS, wish.unit, "change wish category")
    if wish.status != WishStatus.submitted:
        raise _refuse_state(wish)
    if wish.category != kind:
        row = await _wish_row(session, wish_id)
        row.category = kind
        row.updated_at = now
        await session.flush()
    return await load(session, wish_id)


def resident_unit(actor: Actor, unit_id: int | None = None) -> UnitRef:
    """The unit a member's own wish lives on: the deepest unit they belong to."""
    candidates = [g.unit for g in actor.grants if g.unit.kind in RESIDENT_UNIT_KINDS]
    if unit_id is not None:
        candidates = [u for u in candidates if u.id == unit_id]
    if not candidates:
        raise InvalidInput(N_("wishes.no_unit"))
    deepest = max(candidates, key=lambda u: u.kind.level)
    return deepest


# ---------------------------------------------------------------------------------------------
# Approving


def _not_own(actor: Actor, wish: WishView, key: str) -> None:
    if actor.member_id is not None and actor.member_id in (wish.wisher_id, wish.created_by):
        raise InvalidInput(key)


async def approve_wish(
    session: AsyncSession, actor: Actor, wish_id: int, now: datetime
) -> WishView:
    wish = await load(session, wish_id)
    actor.require(APPROVERS, wish.unit, "approve wish")
    _not_own(actor, wish, N_("wishes.own_wish_approve"))
    if not await _move(session, wish_id, {WishStatus.submitted}, WishStatus.approved, now):
        if wish.status in (WishStatus.approved, WishStatus.released):
            raise Conflict(N_("wishes.already_approved"))
        raise _refuse_state(wish)
    ev = await _event(session, wish_id, "approve", wish.status, WishStatus.approved, actor, now)
    view = await load(session, wish_id)
    await _tell(
        session,
        [view.wisher_id, view.created_by],
        now,
        view,
        N_("wishes.notice_approved"),
        ev,
        skip=[actor.member_id],
    )
    return view


async def reject_wish(
    session: AsyncSession, actor: Actor, wish_id: int, reason: str, now: datetime
) -> WishView:
    """Refuse a submitted wish, or take down a published one that nobody claimed."""
    wish = await load(session, wish_id)
    actor.require(APPROVERS, wish.unit, "reject wish")
    _not_own(actor, wish, N_("wishes.own_wish_approve"))
    reason = _clean(reason, REASON_MAX, N_("wishes.reason_too_long"))
    allowed = {WishStatus.submitted, *OPEN_STATUSES}
    if not await _move(session, wish_id, allowed, WishStatus.rejected, now, reject_reason=reason):
        raise _refuse_state(wish)
    ev = await _event(
        session, wish_id, "reject", wish.status, WishStatus.rejected, actor, now, reason
    )
    view = await load(session, wish_id)
    await _tell(
        session,
        [view.wisher_id, view.created_by],
        now,
        view,
        N_("wishes.notice_rejected"),
        ev,
        skip=[actor.member_id],
        reason=reason,
    )
    return view


async def pending_wishes(
    session: AsyncSession, actor: Actor, *, page: int = 0, per_page: int = PAGE_SIZE
) -> WishPage:
    """Submitted wishes the actor may approve (not their own), oldest first."""
    scopes = actor.scopes(APPROVERS)
    if not scopes:
        actor.refuse("list pending wishes")
    query = (
        select(Wish)
        .join(Unit, col(Unit.id) == col(Wish.unit_id))
        .where(col(Wish.status) == WishStatus.submitted.value)
        .where(within(s.path for s in scopes))
    )
    if actor.member_id is not None:
        query = query.where(
            or_(col(Wish.wisher_id).is_(None), col(Wish.wisher_id) != actor.member_id)
        ).where(or_(col(Wish.created_by).is_(None), col(Wish.created_by) != actor.member_id))
    return await _page(session, query, page, per_page)


async def _page(session: AsyncSession, query: object, page: int, per_page: int) -> WishPage:
    subquery = query.subquery()  # type: ignore[attr-defined]
    total = int((await session.execute(select(func.count()).select_from(subquery))).scalar_one())
    pages = max((total + per_page - 1) // per_page, 1)
    page = max(0, min(page, pages - 1))
    rows = (
        await session.execute(
            query.order_by(col(Wish.id)).offset(page * per_page).limit(per_page)  # type: ignore[attr-defined]
        )
    ).scalars()
    return WishPage(tuple([await _view(session, w) for w in rows]), page, pages, total)


# ---------------------------------------------------------------------------------------------
# Browsing and skills


async def my_skills(session: AsyncSession, member_id: int) -> set[Skill]:
    rows = (
        await session.execute(
            select(col(MemberSkill.skill)).where(col(MemberSkill.member_id) == member_id)
        )
    ).scalars()
    return {Skill(s) for s in rows}


async def toggle_skill(
    session: AsyncSession, actor: Actor, skill: Skill | str, now: datetime
) -> set[Skill]:
    if actor.member_id is None:
        raise InvalidInput(N_("wishes.join_first"))
    try:
        chosen = Skill(skill)
    except ValueError:
        raise InvalidInput(N_("wishes.skill_invalid")) from None
    current = await my_skills(session, actor.member_id)
    if chosen in current:
        row = (
            await session.execute(
                select(MemberSkill).where(
                    col(MemberSkill.member_id) == actor.member_id,
                    col(MemberSkill.skill) == chosen.value,
                )
            )
        ).scalar_one()
        await session.delete(row)
        await session.flush()
    else:
        await insert_ignore(
            session,
            MemberSkill,
            {"member_id": actor.member_id, "skill": chosen.value, "created_at": now},
            conflict=["member_id", "skill"],
        )
    return await my_skills(session, actor.member_id)


def categories_for(skills: Iterable[Skill]) -> set[WishCategory]:
    found: set[WishCategory] = set()
    for skill in skills:
        found |= SKILL_CATEGORIES[skill]
    if found:
        found.add(WishCategory.other)
    return found


async def open_wishes(
    session: AsyncSession,
    actor: Actor,
    *,
    category: WishCategory | None = None,
    by_skills: bool = False,
    page: int = 0,
    per_page: int = PAGE_SIZE,
) -> WishPage:
    """Published wishes in the actor's scope, optionally of one category and/or matching
    the skills they declared; oldest first (they have waited longest). No personal data."""
    scopes = actor.scopes(BROWSERS)
    if not scopes:
        actor.refuse("browse wishes")
    query = (
        select(Wish)
        .join(Unit, col(Unit.id) == col(Wish.unit_id))
        .where(col(Wish.status).in_([s.value for s in OPEN_STATUSES]))
        .where(within(s.path for s in scopes))
    )
    if category is not None:
        query = query.where(col(Wish.category) == category.value)
    if by_skills and actor.member_id is not None:
        wanted = categories_for(await my_skills(session, actor.member_id))
        query = query.where(col(Wish.category).in_([c.value for c in wanted]))
    return await _page(session, query, page, per_page)


async def my_wishes(
    session: AsyncSession, actor: Actor, limit: int = 10
) -> tuple[list[WishView], list[WishView]]:
    """(wishes I posted or entered, most recent first; wishes I have claimed now)."""
    if actor.member_id is None:
        raise InvalidInput(N_("wishes.join_first"))
    me = actor.member_id
    posted = (
        await session.execute(
            select(Wish)
            .where(or_(col(Wish.wisher_id) == me, col(Wish.created_by) == me))
            .order_by(col(Wish.id).desc())
            .limit(limit)
        )
    ).scalars()
    claimed = (
        await session.execute(
            select(Wish)
            .join(WishClaim, col(WishClaim.live_wish_id) == col(Wish.id))
            .where(col(WishClaim.member_id) == me)
            .order_by(col(Wish.id))
            .limit(limit)
        )
    ).scalars()
    return [await _view(session, w) for w in posted], [await _view(session, w) for w in claimed]


# ---------------------------------------------------------------------------------------------
# Claiming


async def _live_claim(session: AsyncSession, wish_id: int) -> WishClaim | None:
    return (
        await session.execute(select(WishClaim).where(col(WishClaim.live_wish_id) == wish_id))
    ).scalar_one_or_none()


async def _end_claim(session: AsyncSession, wish_id: int, reason: ClaimEnd, now: datetime) -> None:
    await session.execute(
        update(WishClaim)
        .where(col(WishClaim.live_wish_id) == wish_id)
        .values(live_wish_id=None, ended_at=now, end_reason=reason.value)
        .execution_options(synchronize_session=False)
    )


async def _start_claim(
    session: AsyncSession,
    wish: WishView,
    member_id: int,
    kind: ClaimKind,
    now: datetime,
    claim_days: int,
    dispatched_by: int | None = None,
) -> None:
    due = now + timedelta(days=claim_days)
    dispatched = kind == ClaimKind.dispatch
    claim_id = await insert_ignore(
        session,
        WishClaim,
        {
            "wish_id": wish.id,
            "live_wish_id": wish.id,
            "member_id": member_id,
            "kind": kind.value,
            "dispatched_by": dispatched_by,
            "claimed_at": now,
            # A volunteer's claim runs out (reminded a day before); a unit chosen by a
            # coordinator is only reminded, never released behind the coordinator's back.
            "remind_at": due if dispatched else max(due - REMIND_BEFORE, now),
            "reminded_at": None,
            "stale_at": None if dispatched else due,
        },
        conflict=["live_wish_id"],
        returning="id",
    )
    if claim_id is None:
        raise Conflict(N_("wishes.already_claimed"))


async def claim_wish(
    session: AsyncSession, actor: Actor, wish_id: int, now: datetime, *, claim_days: int
) -> Claimed:
    """A volunteer in scope takes a published wish on and gets the wisher's contact."""
    wish = await load(session, wish_id)
    if not actor.can(CLAIMERS, wish.unit):
        actor.refuse("claim wish", wish.unit)
    _not_own(actor, wish, N_("wishes.own_wish_claim"))
    if not wish.is_open:
        raise _refuse_state(wish)
    assert actor.member_id is not None
    await _start_claim(session, wish, actor.member_id, ClaimKind.volunteer, now, claim_days)
    if not await _move(session, wish_id, OPEN_STATUSES, WishStatus.claimed, now):
        raise Conflict(N_("wishes.already_claimed"))
    ev = await _event(session, wish_id, "claim", wish.status, WishStatus.claimed, actor, now)
    view = await load(session, wish_id)
    await _tell(
        session,
        [view.wisher_id, view.created_by],
        now,
        view,
        N_("wishes.notice_claimed"),
        ev,
        skip=[actor.member_id],
        name=view.claimer_name or "",
    )
    return Claimed(view, await contact_of(session, actor, wish_id))


async def release_claim(
    session: AsyncSession, actor: Actor, wish_id: int, now: datetime
) -> WishView:
    """The claimer gives the wish back (or a coordinator takes it back): published again."""
    wish = await load(session, wish_id)
    by_claimer = actor.member_id is not None and actor.member_id == wish.claimer_id
    if not by_claimer:
        actor.require({Role.coordinator}, wish.unit, "release claim")
    if wish.status != WishStatus.claimed:
        raise _refuse_state(wish)
    await _end_claim(session, wish_id, ClaimEnd.given_up, now)
    if not await _move(session, wish_id, {WishStatus.claimed}, WishStatus.released, now):
        raise _refuse_state(wish)
    ev = await _event(session, wish_id, "release", wish.status, WishStatus.released, actor, now)
    view = await load(session, wish_id)
    await _tell(
        session,
        [wish.wisher_id, wish.created_by, wish.claimer_id],
        now,
        view,
        N_("wishes.notice_released"),
        ev,
        skip=[actor.member_id],
        name=wish.claimer_name or "",
    )
    return view


async def department_liaisons(
    session: AsyncSession, actor: Actor, wish_id: int
) -> list[points.MemberRef]:
    """Department and resident-unit liaisons whose unit covers the wish (for 分类派单)."""
    wish = await load(session, wish_id)
    actor.require({Role.coordinator}, wish.unit, "dispatch wish")
    ids = [int(p) for p in wish.unit.path.strip("/").split("/") if p]
    rows = (
        await session.execute(
            select(col(Member.id), col(Member.display_name))
            .join(RoleGrant, col(RoleGrant.member_id) == col(Member.id))
            .where(col(RoleGrant.role) == Role.department.value)
            .where(col(RoleGrant.unit_id).in_(ids))
            .distinct()
            .order_by(col(Member.display_name), col(Member.id))
        )
    ).all()
    return [points.MemberRef(int(mid or 0), str(name)) for mid, name in rows]


async def dispatch_wish(
    session: AsyncSession,
    actor: Actor,
    wish_id: int,
    liaison_id: int,
    now: datetime,
    *,
    claim_days: int,
    zone: tzinfo = points.DEFAULT_ZONE,
) -> WishView:
    """A coordinator hands a (large) wish to a department or resident unit instead of a
    volunteer; a submitted wish is approved by the same act. No points for units."""
    wish = await load(session, wish_id)
    actor.require({Role.coordinator}, wish.unit, "dispatch wish")
    _not_own(actor, wish, N_("wishes.own_wish_approve"))
    if liaison_id not in {m.id for m in await department_liaisons(session, actor, wish_id)}:
        actor.refuse("dispatch to unknown liaison", wish.unit)
    if wish.status not in {WishStatus.submitted, *OPEN_STATUSES}:
        raise _refuse_state(wish)
    await _start_claim(
        session, wish, liaison_id, ClaimKind.dispatch, now, claim_days, actor.member_id
    )
    allowed = {WishStatus.submitted, *OPEN_STATUSES}
    if not await _move(session, wish_id, allowed, WishStatus.claimed, now):
        raise Conflict(N_("wishes.already_claimed"))
    ev = await _event(session, wish_id, "dispatch", wish.status, WishStatus.claimed, actor, now)
    view = await load(session, wish_id)
    wish_row = await _wish_row(session, wish_id)
    contact = Contact(wish_row.contact_name, wish_row.contact_phone, wish_row.address)

    def render(t: Translator) -> Text:
        return Text(
            t("wishes.notice_dispatched", wish=describe(t, view, zone))
            + "\n\n"
            + contact_text(t, contact),
            (
                (
                    _wish_button(t, "wishes.button_fulfil", "done", wish_id),
                    _wish_button(t, "wishes.button_give_back", "give", wish_id),
                ),
            ),
        )

    await outbox.notify(
        session,
        liaison_id,
        now,
        render,
        dedupe_key=f"wishes.{ev}:{liaison_id}",
    )
    await _tell(
        session,
        [view.wisher_id, view.created_by],
        now,
        view,
        N_("wishes.notice_dispatched_wisher"),
        ev,
        skip=[actor.member_id],
        name=view.claimer_name or "",
    )
    return view


# ---------------------------------------------------------------------------------------------
# Fulfilling and confirming


def may_confirm_for_wisher(wish: WishView, now: datetime) -> bool:
    """A coordinator may confirm in the wisher's place once the confirmation is overdue (or
    when nobody else could confirm)."""
    if confirmers(wish) == [None] or wish.confirm_escalated:
        return True
    return wish.confirm_due_at is not None and now >= wish.confirm_due_at


def confirmers(wish: WishView) -> list[int | None]:
    """Who is asked to confirm: the wisher; for a household's wish, the staff who entered it."""
    if wish.wisher_id is not None:
        return [wish.wisher_id]
    return [wish.created_by]


async def fulfil_wish(
    session: AsyncSession,
    actor: Actor,
    wish_id: int,
    *,
    note: str,
    now: datetime,
    confirm_days: int,
    photo_file_id: str | None = None,
    hours: Decimal | str | None = None,
) -> WishView:
    """The claimer reports it done, with a note (and a photo, and their hours): the wisher is
    asked to confirm; after ``confirm_days`` a coordinator may confirm instead."""
    wish = await load(session, wish_id)
    if actor.member_id is None or actor.member_id != wish.claimer_id:
        actor.refuse("fulfil wish", wish.unit)
    if wish.status != WishStatus.claimed:
        if wish.status == WishStatus.fulfilled:
            raise Conflict(N_("wishes.already_fulfilled"))
        raise _refuse_state(wish)
    text = _clean(note, NOTE_MAX, N_("wishes.note_too_long"))
    minutes = points.to_minutes(hours) if hours is not None else None
    if not await _move(
        session,
        wish_id,
        {WishStatus.claimed},
        WishStatus.fulfilled,
        now,
        fulfil_note=text,
        fulfil_photo_file_id=photo_file_id,
        fulfil_minutes=minutes,
        fulfilled_at=now,
        confirm_due_at=now + timedelta(days=confirm_days),
        confirm_escalated_at=None,
    ):
        raise _refuse_state(wish)
    ev = await _event(
        session, wish_id, "fulfil", wish.status, WishStatus.fulfilled, actor, now, text
    )
    view = await load(session, wish_id)
    asked = confirmers(view)
    if asked == [None]:
        asked = list(await coordinators_of(session, view))
    await _tell(
        session,
        asked,
        now,
        view,
        N_("wishes.notice_fulfilled"),
        ev,
        buttons=((N_("wishes.button_confirm"), "conf"), (N_("wishes.button_dispute"), "disp")),
        skip=[actor.member_id],
        photo=photo_file_id,
        name=view.claimer_name or "",
        note=text,
    )
    return view


async def confirm_wish(
    session: AsyncSession,
    actor: Actor,
    wish_id: int,
    now: datetime,
    *,
    zone: tzinfo = points.DEFAULT_ZONE,
) -> Confirmed:
    """The wisher (or, for a household's wish, its creator) confirms; a coordinator may once
    the confirmation is overdue. The claimer gets points and service hours, once."""
    wish = await load(session, wish_id)
    me = actor.member_id
    if me is not None and me == wish.claimer_id:
        raise InvalidInput(N_("wishes.claimer_cannot_confirm"))
    personal = me is not None and me in confirmers(wish)
    if not personal:
        actor.require({Role.coordinator}, wish.unit, "confirm wish")
        if wish.status == WishStatus.fulfilled and not may_confirm_for_wisher(wish, now):
            due = wish.confirm_due_at or now
            local = due.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            raise InvalidInput(N_("wishes.confirm_not_yet"), date=local)
    if wish.status != WishStatus.fulfilled:
        raise _refuse_state(wish)
    if not await _move(
        session,
        wish_id,
        {WishStatus.fulfilled},
        WishStatus.confirmed,
        now,
        confirmed_at=now,
        confirmed_by=me,
    ):
        raise Conflict(N_("wishes.already_confirmed"))
    await _end_claim(session, wish_id, ClaimEnd.fulfilled, now)
    ev = await _event(session, wish_id, "confirm", wish.status, WishStatus.confirmed, actor, now)
    awarded: int | None = None
    minutes: int | None = None
    claimer = wish.claimer_id
    if claimer is not None and wish.claim_kind == ClaimKind.volunteer:
        entry = await points.award(
            session,
            member_id=claimer,
            rule_code=FULFIL_RULE,
            source="wish",
            source_id=wish_id,
            now=now,
            actor=actor,
            note=wish.text[:80],
            zone=zone,
        )
        awarded = entry.points if entry else None
        if wish.fulfil_minutes:
            logged = await points.log_hours(
                session,
                member_id=claimer,
                hours=Decimal(wish.fulfil_minutes) / 60,
                source="wish",
                source_id=wish_id,
                now=now,
                actor=actor,
                note=wish.text[:80],
            )
            minutes = wish.fulfil_minutes if logged else None
    view = await load(session, wish_id)
    if awarded is not None or minutes is not None:
        key = N_("wishes.notice_confirmed_points")
    else:
        key = N_("wishes.notice_confirmed")
    await _tell(
        session,
        [claimer],
        now,
        view,
        key,
        ev,
        skip=[me],
        points=points.signed(awarded or 0),
        hours=points.format_hours(minutes or 0),
    )
    if not personal:
        await _tell(
            session,
            [wish.wisher_id, wish.created_by],
            now,
            view,
            N_("wishes.notice_confirmed_by_staff"),
            f"{ev}:staff",
            skip=[me],
        )
    return Confirmed(view, awarded, minutes)


async def dispute_wish(
    session: AsyncSession,
    actor: Actor,
    wish_id: int,
    reason: str,
    now: datetime,
    *,
    claim_days: int,
) -> WishView:
    """The wisher says it is not done yet: back to the claimer, with the reason."""
    wish = await load(session, wish_id)
    if actor.member_id is None or actor.member_id not in confirmers(wish):
        actor.require({Role.coordinator}, wish.unit, "dispute wish")
    reason = _clean(reason, REASON_MAX, N_("wishes.reason_too_long"))
    if not await _move(
        session,
        wish_id,
        {WishStatus.fulfilled},
        WishStatus.claimed,
        now,
        confirm_due_at=None,
        confirm_escalated_at=None,
    ):
        raise _refuse_state(wish)
    claim = await _live_claim(session, wish_id)
    if claim is not None:
        due = now + timedelta(days=claim_days)
        dispatched = ClaimKind(claim.kind) == ClaimKind.dispatch
        claim.stale_at = None if dispatched else due
        claim.remind_at = due if dispatched else due - REMIND_BEFORE
        claim.reminded_at = None
        await session.flush()
    ev = await _event(
        session, wish_id, "dispute", wish.status, WishStatus.claimed, actor, now, reason
    )
    view = await load(session, wish_id)
    await _tell(
        session,
        [view.claimer_id],
        now,
        view,
        N_("wishes.notice_disputed"),
        ev,
        buttons=((N_("wishes.button_fulfil"), "done"),),
        skip=[actor.member_id],
        reason=reason,
    )
    return view


async def withdraw_wish(
    session: AsyncSession, actor: Actor, wish_id: int, now: datetime
) -> WishView:
    """The wisher (or whoever entered it) takes it back before it is fulfilled."""
    wish = await load(session, wish_id)
    if actor.member_id is None or actor.member_id not in (wish.wisher_id, wish.created_by):
        actor.refuse("withdraw wish", wish.unit)
    allowed = {WishStatus.submitted, WishStatus.claimed, *OPEN_STATUSES}
    if not await _move(session, wish_id, allowed, WishStatus.withdrawn, now):
        raise _refuse_state(wish)
    await _end_claim(session, wish_id, ClaimEnd.withdrawn, now)
    ev = await _event(session, wish_id, "withdraw", wish.status, WishStatus.withdrawn, actor, now)
    view = await load(session, wish_id)
    await _tell(
        session,
        [wish.claimer_id],
        now,
        view,
        N_("wishes.notice_withdrawn"),
        ev,
        skip=[actor.member_id],
    )
    return view


# ---------------------------------------------------------------------------------------------
# Jobs: each claims due rows (SKIP LOCKED on PostgreSQL), acts and marks them, in the caller's
# transaction; a second process or a re-run finds nothing left to do.


async def remind_claims(
    session: AsyncSession, now: datetime, *, zone: tzinfo = points.DEFAULT_ZONE, limit: int = 100
) -> int:
    """A day before a claim goes stale, remind the claimer (once per claim period); a unit
    a wish was dispatched to is reminded when the claim period is over."""
    claims = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(WishClaim)
                    .join(Wish, col(Wish.id) == col(WishClaim.live_wish_id))
                    .where(col(Wish.status) == WishStatus.claimed.value)
                    .where(col(WishClaim.reminded_at).is_(None))
                    .where(col(WishClaim.remind_at) <= now)
                    .order_by(col(WishClaim.remind_at), col(WishClaim.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    for claim in claims:
        claim.reminded_at = now
        view = await load(session, claim.wish_id)
        stale_at = claim.stale_at or now
        key = (
            N_("wishes.notice_claim_reminder")
            if claim.stale_at is not None
            else N_("wishes.notice_dispatch_reminder")
        )
        remind_at = claim.remind_at or now
        await _tell(
            session,
            [claim.member_id],
            now,
            view,
            key,
            f"remind{claim.id}:{remind_at.isoformat()}",
            buttons=(
                (N_("wishes.button_fulfil"), "done"),
                (N_("wishes.button_give_back"), "give"),
            ),
            date=stale_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        )
    await session.flush()
    return len(claims)


async def release_stale_claims(session: AsyncSession, now: datetime, limit: int = 100) -> int:
    """Claims not fulfilled in time are released and the wish is published again."""
    claims = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(WishClaim)
                    .join(Wish, col(Wish.id) == col(WishClaim.live_wish_id))
                    .where(col(Wish.status) == WishStatus.claimed.value)
                    .where(col(WishClaim.stale_at) <= now)
                    .order_by(col(WishClaim.stale_at), col(WishClaim.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    for claim in claims:
        before = await load(session, claim.wish_id)
        claim.live_wish_id = None
        claim.ended_at = now
        claim.end_reason = ClaimEnd.stale
        await session.flush()
        if not await _move(session, claim.wish_id, {WishStatus.claimed}, WishStatus.released, now):
            continue
        ev = await _event(
            session, claim.wish_id, "expire", WishStatus.claimed, WishStatus.released, None, now
        )
        view = await load(session, claim.wish_id)
        await _tell(
            session,
            [claim.member_id],
            now,
            view,
            N_("wishes.notice_claim_expired"),
            ev,
        )
        await _tell(
            session,
            [before.wisher_id, before.created_by],
            now,
            view,
            N_("wishes.notice_released"),
            f"{ev}:wisher",
            skip=[claim.member_id],
            name=before.claimer_name or "",
        )
    return len(claims)


async def escalate_unconfirmed(session: AsyncSession, now: datetime, limit: int = 100) -> int:
    """Fulfilled wishes the wisher did not confirm in time go to the coordinators, who may
    now confirm in the wisher's place (the wisher still can, too)."""
    wishes = (
        (
            await session.execute(
                skip_locked(
                    session,
                    select(Wish)
                    .where(col(Wish.status) == WishStatus.fulfilled.value)
                    .where(col(Wish.confirm_escalated_at).is_(None))
                    .where(col(Wish.confirm_due_at) <= now)
                    .order_by(col(Wish.confirm_due_at), col(Wish.id))
                    .limit(limit),
                )
            )
        )
        .scalars()
        .all()
    )
    for wish in wishes:
        wish.confirm_escalated_at = now
        await session.flush()
        assert wish.id is not None
        ev = await _event(
            session, wish.id, "escalate", WishStatus.fulfilled, WishStatus.fulfilled, None, now
        )
        view = await _view(session, wish)
        await _tell(
            session,
            await coordinators_of(session, view),
            now,
            view,
            N_("wishes.notice_confirm_overdue"),
            ev,
            buttons=((N_("wishes.button_confirm"), "conf"),),
            name=view.claimer_name or "",
            note=view.fulfil_note or "",
        )
    return len(wishes)


async def events_of(session: AsyncSession, wish_id: int) -> list[WishEvent]:
    rows = (
        await session.execute(
            select(WishEvent).where(col(WishEvent.wish_id) == wish_id).order_by(col(WishEvent.id))
        )
    ).scalars()
    return list(rows)
