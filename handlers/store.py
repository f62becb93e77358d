"""/store: the community's points store (积分兑换超市). Members browse and redeem (with a
confirmation), see and cancel their redemptions; coordinators add items, restock, retire them,
and hand redemptions out."""

from __future__ import annotations

from bot.i18n import N_
from handlers.context import Context
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from models.members import Role
from models.points import RedemptionStatus
from services import points, store
from services.access import UnitRef
from services.errors import InvalidInput
from services.messages import Button, Photo
from services.store import ItemView, RedemptionView

router = Router("store")

TOGGLE_LABELS = {
    "retire": N_("points.store_button_retire"),
    "unretire": N_("points.store_button_unretire"),
}
STATUS_NAMES = {
    RedemptionStatus.reserved: N_("points.store_status_reserved"),
    RedemptionStatus.handed_out: N_("points.store_status_handed_out"),
    RedemptionStatus.cancelled: N_("points.store_status_cancelled"),
}


def _item_line(ctx: Context, item: ItemView) -> str:
    line = ctx.t("points.store_item_line", name=item.name, cost=item.cost, stock=item.stock)
    if not item.active:
        line += " " + ctx.t("points.store_retired_mark")
    return line


def _redemption_line(ctx: Context, red: RedemptionView) -> str:
    return ctx.t(
        "points.store_redemption_line",
        id=red.id,
        item=red.item_name,
        cost=red.cost,
        status=ctx.t(STATUS_NAMES[red.status]),
        date=red.created_at.astimezone(ctx.app.settings.zone).strftime("%m-%d"),
    )


@router.command("store", description=N_("points.store_cmd_store"), roles=MEMBERS, order=33)
async def show_store(ctx: Context) -> None:
    await _shelf(ctx, new=True)


async def _shelf(ctx: Context, *, new: bool) -> None:
    community = await store.member_community(ctx.session, ctx.actor)
    shelf = await store.items(ctx.session, community)
    balance = await points.balance(ctx.session, ctx.member_id)
    lines = [
        ctx.t("points.store_title", community=community.label(ctx.t.locale), balance=balance),
        "",
    ]
    lines += [_item_line(ctx, item) for item in shelf] or [ctx.t("points.store_empty")]
    rows = [
        [Button(ctx.t("points.store_button_item", name=item.name), payload=f"st:item:{item.id}")]
        for item in shelf
    ]
    bottom = [Button(ctx.t("points.store_button_mine"), payload="st:mine:0")]
    if await store.managed_communities(ctx.session, ctx.actor):
        bottom.append(Button(ctx.t("points.store_button_manage"), payload="st:admin:0"))
    rows.append(bottom)
    if new:
        ctx.reply("\n".join(lines), rows)
    else:
        ctx.edit("\n".join(lines), rows)


@router.button("st")
async def store_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    if action == "item":
        await _item(ctx, ctx.int_arg(1))
    elif action == "shelf":
        await _shelf(ctx, new=False)
    elif action == "mine":
        await _mine(ctx)
    elif action == "admin":
        await _admin(ctx, ctx.int_arg(1))
    elif action == "open":
        await _open(ctx, ctx.int_arg(1))
    elif action == "add":
        await _start_add(ctx, ctx.int_arg(1))
    elif action == "restock":
        item = await store.get_item(ctx.session, ctx.actor, ctx.int_arg(1))
        await ctx.set_step("points.store_restock", {"item": str(item.id)})
        await ask_restock(ctx)
    elif action in ("retire", "unretire"):
        item = await store.set_item_active(
            ctx.session, ctx.actor, item_id=ctx.int_arg(1), active=action == "unretire"
        )
        ctx.answer(ctx.t("points.store_saved"))
        await _admin(ctx, item.community.id)
    else:
        raise InvalidInput("core.stale_button")


async def _item(ctx: Context, item_id: int) -> None:
    item = await store.get_item(ctx.session, ctx.actor, item_id)
    if not item.active:
        raise InvalidInput("points.store_item_unknown")
    balance = await points.balance(ctx.session, ctx.member_id)
    await ctx.set_step("points.store_redeem", {"item": str(item.id)})
    text = ctx.t("points.store_confirm_redeem", name=item.name, cost=item.cost, balance=balance)
    buttons = [
        [
            ctx.flow_button(ctx.t("points.store_button_redeem"), "st_ok", item.id),
            ctx.flow_button(ctx.t("points.store_button_cancel"), "st_no"),
        ]
    ]
    if item.photo_file_id:
        ctx.send(Photo(file_id=item.photo_file_id, caption=item.name))
    ctx.reply(text, buttons)


@router.step("points.store_redeem", accepts={Kind.text}, prompt=None)
async def waiting_for_redeem(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_press_redeem"))


@router.button("st_no", flow=True)
async def cancel_redeem(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("points.store_not_redeemed"))


@router.button("st_ok", flow=True)
async def confirm_redeem(ctx: Context) -> None:
    if ctx.state is None:
        raise InvalidInput("core.stale_button")
    redemption = await store.redeem(
        ctx.session,
        ctx.actor,
        item_id=ctx.int_arg(0),
        now=ctx.now,
        token=ctx.state.nonce,
        zone=ctx.app.settings.zone,
    )
    await ctx.clear_step()
    balance = await points.balance(ctx.session, ctx.member_id)
    text = ctx.t(
        "points.store_redeemed",
        item=redemption.item_name,
        cost=redemption.cost,
        id=redemption.id,
        balance=balance,
    )
    ctx.edit(text)
    ctx.answer(ctx.t("points.store_redeemed_short"))


async def _mine(ctx: Context) -> None:
    mine = await store.my_redemptions(ctx.session, ctx.member_id)
    lines = [ctx.t("points.store_mine_title"), ""]
    lines += [_redemption_line(ctx, r) for r in mine] or [ctx.t("points.store_mine_empty")]
    rows = [
        [
            Button(
                ctx.t("points.store_button_cancel_redemption", id=r.id), payload=f"rd:cancel:{r.id}"
            )
        ]
        for r in mine
        if r.status == RedemptionStatus.reserved
    ]
    rows.append([Button(ctx.t("points.store_button_back"), payload="st:shelf:0")])
    ctx.edit("\n".join(lines), rows)


# -- redemptions: hand out, cancel --------------------------------------------------------------


@router.button("rd")
async def redemption_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    redemption_id = ctx.int_arg(1)
    if action == "give":
        red = await store.hand_out(ctx.session, ctx.actor, redemption_id=redemption_id, now=ctx.now)
        ctx.answer(ctx.t("points.store_handed_out_short"))
        ctx.edit(
            ctx.t("points.store_handed_out", id=red.id, item=red.item_name, member=red.member_name)
        )
    elif action == "cancel":
        ctx.reply(
            ctx.t("points.store_confirm_cancel", id=redemption_id),
            [
                [
                    Button(
                        ctx.t("points.store_button_cancel_sure"),
                        payload=f"rd:cancel2:{redemption_id}",
                    )
                ]
            ],
        )
    elif action == "cancel2":
        red = await store.cancel(
            ctx.session,
            ctx.actor,
            redemption_id=redemption_id,
            reason="",
            now=ctx.now,
            zone=ctx.app.settings.zone,
        )
        ctx.answer(ctx.t("points.store_cancelled_short"))
        ctx.edit(ctx.t("points.store_cancelled", item=red.item_name, cost=red.cost))
    elif action == "void":
        await ctx.set_step("points.store_void_reason", {"redemption": str(redemption_id)})
        await ask_void_reason(ctx)
    else:
        raise InvalidInput("core.stale_button")


async def ask_void_reason(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_ask_void_reason", limit=store.REASON_MAX))


@router.step("points.store_void_reason", accepts={Kind.text}, prompt=ask_void_reason)
async def receive_void_reason(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    red = await store.cancel(
        ctx.session,
        ctx.actor,
        redemption_id=int(data.get("redemption", "0")),
        reason=ctx.incoming.text,
        now=ctx.now,
        zone=ctx.app.settings.zone,
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.store_voided", id=red.id, item=red.item_name, member=red.member_name))


# -- managing the shelf (coordinators) ---------------------------------------------------------


async def _community(ctx: Context, community_id: int) -> UnitRef:
    managed = await store.managed_communities(ctx.session, ctx.actor)
    if not managed:
        ctx.actor.refuse("manage store")
    chosen = next((c for c in managed if c.id == community_id), None)
    return chosen or managed[0]


async def _admin(ctx: Context, community_id: int) -> None:
    managed = await store.managed_communities(ctx.session, ctx.actor)
    community = await _community(ctx, community_id)
    shelf = await store.items(ctx.session, community, include_retired=True)
    waiting = await store.open_redemptions(ctx.session, ctx.actor, community)
    lines = [ctx.t("points.store_admin_title", community=community.label(ctx.t.locale)), ""]
    lines += [_item_line(ctx, item) for item in shelf] or [ctx.t("points.store_empty")]
    rows: list[list[Button]] = []
    for item in shelf:
        toggle = "unretire" if not item.active else "retire"
        rows.append(
            [
                Button(
                    ctx.t("points.store_button_restock", name=item.name),
                    payload=f"st:restock:{item.id}",
                ),
                Button(
                    ctx.t(TOGGLE_LABELS[toggle]),
                    payload=f"st:{toggle}:{item.id}",
                ),
            ]
        )
    rows.append(
        [
            Button(ctx.t("points.store_button_add"), payload=f"st:add:{community.id}"),
            Button(
                ctx.t("points.store_button_open", count=len(waiting)),
                payload=f"st:open:{community.id}",
            ),
        ]
    )
    if len(managed) > 1:
        rows.append(
            [
                Button(c.label(ctx.t.locale), payload=f"st:admin:{c.id}")
                for c in managed[:4]
                if c.id != community.id
            ]
        )
    ctx.edit("\n".join(lines), rows)


async def _open(ctx: Context, community_id: int) -> None:
    community = await _community(ctx, community_id)
    waiting = await store.open_redemptions(ctx.session, ctx.actor, community)
    lines = [ctx.t("points.store_open_title", community=community.label(ctx.t.locale)), ""]
    lines += [
        ctx.t("points.store_open_line", id=r.id, member=r.member_name, item=r.item_name)
        for r in waiting
    ] or [ctx.t("points.store_open_empty")]
    rows = [
        [
            Button(ctx.t("points.store_button_hand_out_id", id=r.id), payload=f"rd:give:{r.id}"),
            Button(ctx.t("points.store_button_void", id=r.id), payload=f"rd:void:{r.id}"),
        ]
        for r in waiting
    ]
    rows.append([Button(ctx.t("points.store_button_back"), payload=f"st:admin:{community.id}")])
    ctx.edit("\n".join(lines), rows)


async def _start_add(ctx: Context, community_id: int) -> None:
    community = await _community(ctx, community_id)
    ctx.actor.require({Role.coordinator}, community, "add store item")
    await ctx.set_step("points.store_add_name", {"community": str(community.id)})
    await ask_name(ctx)


async def ask_name(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_ask_name", limit=store.ITEM_NAME_MAX))


def _state(ctx: Context) -> dict[str, str]:
    return dict(ctx.state.data) if ctx.state else {}


@router.step("points.store_add_name", accepts={Kind.text}, prompt=ask_name)
async def receive_name(ctx: Context) -> None:
    name = " ".join(ctx.incoming.text.split())
    if len(name) > store.ITEM_NAME_MAX:
        raise InvalidInput("points.store_name_too_long", limit=store.ITEM_NAME_MAX)
    await ctx.set_step("points.store_add_cost", _state(ctx) | {"name": name}, keep_nonce=True)
    await ask_cost(ctx)


async def ask_cost(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_ask_cost", maximum=store.MAX_COST))


@router.step("points.store_add_cost", accepts={Kind.text}, prompt=ask_cost)
async def receive_cost(ctx: Context) -> None:
    cost = store.parse_count(
        ctx.incoming.text, minimum=1, maximum=store.MAX_COST, key="points.store_cost_invalid"
    )
    await ctx.set_step("points.store_add_stock", _state(ctx) | {"cost": str(cost)}, keep_nonce=True)
    await ask_stock(ctx)


async def ask_stock(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_ask_stock", maximum=store.MAX_STOCK))


@router.step("points.store_add_stock", accepts={Kind.text}, prompt=ask_stock)
async def receive_stock(ctx: Context) -> None:
    stock = store.parse_count(
        ctx.incoming.text, minimum=0, maximum=store.MAX_STOCK, key="points.store_stock_invalid"
    )
    await ctx.set_step(
        "points.store_add_photo", _state(ctx) | {"stock": str(stock)}, keep_nonce=True
    )
    await ask_item_photo(ctx)


async def ask_item_photo(ctx: Context) -> None:
    ctx.reply(
        ctx.t("points.store_ask_photo"),
        [[ctx.flow_button(ctx.t("points.store_button_no_photo"), "st_nophoto")]],
    )


@router.step("points.store_add_photo", accepts={Kind.photo}, prompt=ask_item_photo)
async def receive_item_photo(ctx: Context) -> None:
    await _add(ctx, ctx.incoming.photo.file_id if ctx.incoming.photo else None)


@router.button("st_nophoto", flow=True)
async def skip_item_photo(ctx: Context) -> None:
    await _add(ctx, None)


async def _add(ctx: Context, photo: str | None) -> None:
    data = _state(ctx)
    if ctx.state is None or ctx.state.step != "points.store_add_photo":
        raise InvalidInput("core.stale_button")
    item = await store.add_item(
        ctx.session,
        ctx.actor,
        community_id=int(data.get("community", "0")),
        name=data.get("name", ""),
        cost=data.get("cost", "0"),
        stock=data.get("stock", "0"),
        now=ctx.now,
        photo_file_id=photo,
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.store_added", name=item.name, cost=item.cost, stock=item.stock))


async def ask_restock(ctx: Context) -> None:
    ctx.reply(ctx.t("points.store_ask_restock", maximum=store.MAX_STOCK))


@router.step("points.store_restock", accepts={Kind.text}, prompt=ask_restock)
async def receive_restock(ctx: Context) -> None:
    item = await store.restock(
        ctx.session,
        ctx.actor,
        item_id=int(_state(ctx).get("item", "0")),
        quantity=ctx.incoming.text,
        now=ctx.now,
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.store_restocked", name=item.name, stock=item.stock))
