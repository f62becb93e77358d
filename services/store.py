"""The points store (积分兑换超市): each community's items, redemptions and their hand-out.

A redemption debits the points at once (a ledger entry) and reserves one piece of stock (a
stock movement); a coordinator marks it handed out, or it is cancelled, which refunds the points
with a reversing entry and puts the piece back. Stock and balances move with conditional
UPDATEs guarded by CHECK constraints: of fifty people pressing "redeem" for the last piece,
exactly one gets it, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.i18n import N_, Translator
from models.members import Member, Role, RoleGrant
from models.org import UnitKind
from models.points import (
    Redemption,
    RedemptionEvent,
    RedemptionStatus,
    StockMovement,
    StoreItem,
)
from services import outbox, points
from services.access import Actor, UnitRef
from services.errors import Conflict, InvalidInput, NotFound
from services.messages import Button, Text
from services.org import subtree, unit_by_id
from services.sql import insert_ignore

ITEM_NAME_MAX = 60
MAX_COST = 100_000
MAX_STOCK = 10_000
REASON_MAX = 300


@dataclass(frozen=True)
class ItemView:
    id: int
    community: UnitRef
    name: str
    cost: int
    stock: int
    photo_file_id: str | None
    active: bool


@dataclass(frozen=True)
class RedemptionView:
    id: int
    item_id: int
    item_name: str
    community_id: int
    member_id: int
    member_name: str
    cost: int
    status: RedemptionStatus
    created_at: datetime
    closed_at: datetime | None
    note: str


def _item_view(item: StoreItem, community: UnitRef) -> ItemView:
    assert item.id is not None
    return ItemView(
        item.id, community, item.name, item.cost, item.stock, item.photo_file_id, item.active
    )


def belongs(actor: Actor, community: UnitRef) -> bool:
    """A member of the community: holds a role in it, or above it."""
    if actor.system:
        return True
    return any(g.unit.within(community) or community.within(g.unit) for g in actor.grants)


async def member_community(session: AsyncSession, actor: Actor) -> UnitRef:
    """The community whose store a member shops in (their home community)."""
    if actor.member_id is None:
        raise InvalidInput(N_("points.store_no_community"))
    home = await points.home_of(session, actor.member_id)
    if home.community is not None:
        return home.community
    managed = await managed_communities(session, actor)
    if managed:
        return managed[0]
    raise InvalidInput(N_("points.store_no_community"))


async def managed_communities(session: AsyncSession, actor: Actor) -> list[UnitRef]:
    """Communities whose store the actor manages (coordinators; a street covers its own)."""
    found: dict[int, UnitRef] = {}
    for scope in actor.scopes({Role.coordinator}):
        if scope.kind == UnitKind.community:
            found.setdefault(scope.id, scope)
        elif scope.kind.level < UnitKind.community.level:
            for unit in await subtree(session, scope, {UnitKind.community}):
                found.setdefault(unit.id, unit)
    return list(found.values())


async def items(
    session: AsyncSession, community: UnitRef, *, include_retired: bool = False
) -> list[ItemView]:
    query = select(StoreItem).where(col(StoreItem.community_id) == community.id)
    if not include_retired:
        query = query.where(col(StoreItem.active).is_(True))
    rows = (await session.execute(query.order_by(col(StoreItem.cost), col(StoreItem.id)))).scalars()
    return [_item_view(item, community) for item in rows]


async def get_item(session: AsyncSession, actor: Actor, item_id: int) -> ItemView:
    """An item the actor may see (a forged id from another community is refused)."""
    item = await session.get(StoreItem, item_id)
    if item is None:
        raise NotFound(N_("points.store_item_unknown"))
    community = await unit_by_id(session, item.community_id)
    if not belongs(actor, community):
        actor.refuse("see store item", community)
    return _item_view(item, community)


def _clean_name(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise InvalidInput(N_("points.store_name_empty"))
    if len(text) > ITEM_NAME_MAX:
        raise InvalidInput(N_("points.store_name_too_long"), limit=ITEM_NAME_MAX)
    return text


def parse_count(raw: str | int, *, minimum: int, maximum: int, key: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput(key, minimum=minimum, maximum=maximum) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(key, minimum=minimum, maximum=maximum)
    return value


async def add_item(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: int,
    name: str,
    cost: int | str,
    stock: int | str,
    now: datetime,
    photo_file_id: str | None = None,
) -> ItemView:
    community = await unit_by_id(session, community_id)
    if community.kind != UnitKind.community:
        raise InvalidInput(N_("points.store_not_a_community"))
    actor.require({Role.coordinator}, community, "add store item")
    item = StoreItem(
        community_id=community.id,
        name=_clean_name(name),
        cost=parse_count(cost, minimum=1, maximum=MAX_COST, key=N_("points.store_cost_invalid")),
        stock=0,
        photo_file_id=photo_file_id,
        created_by=actor.member_id,
        created_at=now,
    )
    quantity = parse_count(
        stock, minimum=0, maximum=MAX_STOCK, key=N_("points.store_stock_invalid")
    )
    session.add(item)
    await session.flush()
    assert item.id is not None
    if quantity:
        await _move_stock(session, item.id, quantity, "restock", now, actor.member_id)
        await session.refresh(item)
    return _item_view(item, community)


async def _managed_item(session: AsyncSession, actor: Actor, item_id: int) -> StoreItem:
    item = await session.get(StoreItem, item_id)
    if item is None:
        raise NotFound(N_("points.store_item_unknown"))
    community = await unit_by_id(session, item.community_id)
    actor.require({Role.coordinator}, community, "manage store item")
    return item


async def _move_stock(
    session: AsyncSession,
    item_id: int,
    delta: int,
    reason: str,
    now: datetime,
    actor_id: int | None,
    redemption_id: int | None = None,
) -> bool:
    """Move stock by ``delta`` unless it would go below zero (then False, nothing moved)."""
    moved = await session.execute(
        update(StoreItem)
        .where(col(StoreItem.id) == item_id)
        .where(col(StoreItem.stock) + delta >= 0)
        .values(stock=col(StoreItem.stock) + delta)
    )
    if not getattr(moved, "rowcount", 0):
        return False
    session.add(
        StockMovement(
            item_id=item_id,
            delta=delta,
            reason=reason,
            redemption_id=redemption_id,
            actor_id=actor_id,
            at=now,
        )
    )
    await session.flush()
    return True


async def restock(
    session: AsyncSession, actor: Actor, *, item_id: int, quantity: int | str, now: datetime
) -> ItemView:
    item = await _managed_item(session, actor, item_id)
    count = parse_count(
        quantity, minimum=1, maximum=MAX_STOCK, key=N_("points.store_stock_invalid")
    )
    if item.stock + count > MAX_STOCK:
        raise InvalidInput(
            N_("points.store_stock_invalid"), minimum=1, maximum=MAX_STOCK - item.stock
        )
    await _move_stock(session, item_id, count, "restock", now, actor.member_id)
    await session.refresh(item)
    return _item_view(item, await unit_by_id(session, item.community_id))


async def set_item_active(
    session: AsyncSession, actor: Actor, *, item_id: int, active: bool
) -> ItemView:
    """Retire an item from the shelf (or bring it back); open redemptions are not affected."""
    item = await _managed_item(session, actor, item_id)
    item.active = active
    await session.flush()
    return _item_view(item, await unit_by_id(session, item.community_id))


async def redeem(
    session: AsyncSession,
    actor: Actor,
    *,
    item_id: int,
    now: datetime,
    token: str,
    zone: tzinfo = points.DEFAULT_ZONE,
) -> RedemptionView:
    """Redeem one piece: points are debited and the piece reserved at once. ``token`` names
    this press of "redeem" (the flow's nonce): pressing twice redeems once."""
    if actor.member_id is None:
        raise InvalidInput(N_("points.store_no_community"))
    item = await session.get(StoreItem, item_id)
    if item is None or not item.active:
        raise NotFound(N_("points.store_item_unknown"))
    community = await unit_by_id(session, item.community_id)
    if not belongs(actor, community):
        actor.refuse("redeem", community)
    redemption_id = await insert_ignore(
        session,
        Redemption,
        {
            "item_id": item_id,
            "member_id": actor.member_id,
            "cost": item.cost,
            "status": RedemptionStatus.reserved.value,
            "dedupe_key": f"redeem:{actor.member_id}:{token[:40]}",
            "created_at": now,
            "note": "",
        },
        conflict=["dedupe_key"],
        returning="id",
    )
    if redemption_id is None:
        raise Conflict(N_("points.store_already_redeemed"))
    rid = int(redemption_id)
    await points.debit(
        session,
        member_id=actor.member_id,
        points=item.cost,
        redemption_id=rid,
        now=now,
        actor_id=actor.member_id,
        note=item.name,
        zone=zone,
    )
    if not await _move_stock(session, item_id, -1, "redeem", now, actor.member_id, rid):
        raise Conflict(N_("points.store_out_of_stock"), item=item.name)
    session.add(
        RedemptionEvent(redemption_id=rid, action="reserved", actor_id=actor.member_id, at=now)
    )
    view = await _redemption_view(session, rid)
    for coordinator in await _coordinators(session, community):
        await outbox.notify(
            session,
            coordinator,
            now,
            lambda t: Text(
                t(
                    "points.store_notice_new_redemption",
                    member=view.member_name,
                    item=view.item_name,
                    cost=view.cost,
                    id=view.id,
                ),
                ((Button(t("points.store_button_hand_out"), payload=f"rd:give:{view.id}"),),),
            ),
            dedupe_key=f"store.redeemed:{rid}:{coordinator}",
        )
    return view


async def _coordinators(session: AsyncSession, community: UnitRef) -> list[int]:
    """Coordinators on the community or above it (its street)."""
    ancestors = [int(p) for p in community.path.strip("/").split("/") if p]
    rows = (
        await session.execute(
            select(col(RoleGrant.member_id))
            .where(col(RoleGrant.role) == Role.coordinator.value)
            .where(col(RoleGrant.unit_id).in_(ancestors))
            .distinct()
            .order_by(col(RoleGrant.member_id))
        )
    ).scalars()
    return [int(member_id) for member_id in rows]


async def _redemption_view(session: AsyncSession, redemption_id: int) -> RedemptionView:
    row = (
        await session.execute(
            select(Redemption, StoreItem, col(Member.display_name))
            .join(StoreItem, col(StoreItem.id) == col(Redemption.item_id))
            .join(Member, col(Member.id) == col(Redemption.member_id))
            .where(col(Redemption.id) == redemption_id)
        )
    ).first()
    if row is None:
        raise NotFound(N_("points.store_redemption_unknown"))
    redemption, item, name = row
    return RedemptionView(
        redemption_id,
        redemption.item_id,
        item.name,
        item.community_id,
        redemption.member_id,
        str(name),
        redemption.cost,
        RedemptionStatus(redemption.status),
        redemption.created_at,
        redemption.closed_at,
        redemption.note,
    )


async def _close(
    session: AsyncSession,
    redemption_id: int,
    status: RedemptionStatus,
    actor: Actor,
    now: datetime,
    note: str,
) -> bool:
    closed = await session.execute(
        update(Redemption)
        .where(col(Redemption.id) == redemption_id)
        .where(col(Redemption.status) == RedemptionStatus.reserved.value)
        .values(status=status.value, closed_at=now, closed_by=actor.member_id, note=note)
    )
    if not getattr(closed, "rowcount", 0):
        return False
    session.add(
        RedemptionEvent(
            redemption_id=redemption_id,
            action=status.value,
            actor_id=actor.member_id,
            at=now,
            note=note,
        )
    )
    await session.flush()
    return True


async def hand_out(
    session: AsyncSession, actor: Actor, *, redemption_id: int, now: datetime
) -> RedemptionView:
    view = await _redemption_view(session, redemption_id)
    community = await unit_by_id(session, view.community_id)
    actor.require({Role.coordinator}, community, "hand out")
    if not await _close(session, redemption_id, RedemptionStatus.handed_out, actor, now, ""):
        raise Conflict(N_("points.store_not_reserved"))
    await outbox.notify(
        session,
        view.member_id,
        now,
        lambda t: Text(t("points.store_notice_handed_out", item=view.item_name)),
        dedupe_key=f"store.handed_out:{redemption_id}",
    )
    return await _redemption_view(session, redemption_id)


async def cancel(
    session: AsyncSession,
    actor: Actor,
    *,
    redemption_id: int,
    reason: str,
    now: datetime,
    zone: tzinfo = points.DEFAULT_ZONE,
) -> RedemptionView:
    """The member (their own, before hand-out) or a coordinator cancels: the points come back
    as a reversing entry and the piece goes back on the shelf."""
    view = await _redemption_view(session, redemption_id)
    community = await unit_by_id(session, view.community_id)
    own = actor.member_id == view.member_id
    if not own:
        actor.require({Role.coordinator}, community, "cancel redemption")
    note = " ".join(reason.split())
    if len(note) > REASON_MAX:
        raise InvalidInput(N_("points.store_reason_too_long"), limit=REASON_MAX)
    if not own and not note:
        raise InvalidInput(N_("points.store_reason_needed"))
    if not await _close(session, redemption_id, RedemptionStatus.cancelled, actor, now, note):
        raise Conflict(N_("points.store_not_reserved"))
    await points.refund(
        session,
        redemption_id=redemption_id,
        now=now,
        actor_id=actor.member_id,
        note=note or view.item_name,
        zone=zone,
    )
    await _move_stock(session, view.item_id, 1, "refund", now, actor.member_id, redemption_id)
    recipients = [view.member_id] if not own else await _coordinators(session, community)
    for recipient in recipients:

        def render(t: Translator) -> Text:
            key = (
                N_("points.store_notice_cancelled_by_staff")
                if not own
                else N_("points.store_notice_cancelled")
            )
            return Text(
                t(
                    key,
                    item=view.item_name,
                    cost=view.cost,
                    member=view.member_name,
                    reason=note or "—",
                )
            )

        await outbox.notify(
            session,
            recipient,
            now,
            render,
            dedupe_key=f"store.cancelled:{redemption_id}:{recipient}",
        )
    return await _redemption_view(session, redemption_id)


async def my_redemptions(
    session: AsyncSession, member_id: int, limit: int = 10
) -> list[RedemptionView]:
    ids = (
        await session.execute(
            select(col(Redemption.id))
            .where(col(Redemption.member_id) == member_id)
            .order_by(col(Redemption.id).desc())
            .limit(limit)
        )
    ).scalars()
    return [await _redemption_view(session, int(i or 0)) for i in ids]


async def open_redemptions(
    session: AsyncSession, actor: Actor, community: UnitRef, limit: int = 20
) -> list[RedemptionView]:
    """Reserved redemptions waiting to be handed out, oldest first."""
    actor.require({Role.coordinator}, community, "list redemptions")
    ids = (
        await session.execute(
            select(col(Redemption.id))
            .join(StoreItem, col(StoreItem.id) == col(Redemption.item_id))
            .where(col(StoreItem.community_id) == community.id)
            .where(col(Redemption.status) == RedemptionStatus.reserved.value)
            .order_by(col(Redemption.id))
            .limit(limit)
        )
    ).scalars()
    return [await _redemption_view(session, int(i or 0)) for i in ids]
