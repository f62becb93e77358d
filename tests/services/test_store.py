"""The points store: redeeming, handing out, cancelling — never a negative balance or stock."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, func, select

from bot.db import Database
from models.points import EntryKind, LedgerEntry, RedemptionStatus, StockMovement, StoreItem
from services import invites, points, store
from services.access import Actor, load_actor
from services.errors import Conflict, PermissionDenied, ServiceError
from services.members import Person
from services.org import unit_by_code
from services.store import ItemView
from tests.services.world import NOW, World, buttons_of, make_world, sent_to, texts_to


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await make_world(demo_db)


async def refused(world: World, action: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        async with world.db.transaction() as session:
            await action(session)  # type: ignore[operator]
    return caught.value


async def item(world: World, *, cost: int = 30, stock: int = 2, community: str = "C1") -> ItemView:
    async with world.db.transaction() as session:
        unit = await unit_by_code(session, community)
        coordinator = world.coordinator if community == "C1" else world.far_coordinator
        return await store.add_item(
            session,
            coordinator,
            community_id=unit.id,
            name="洗衣液",
            cost=cost,
            stock=stock,
            now=NOW,
        )


async def give_points(world: World, actor: Actor, amount: int, source_id: int = 1) -> None:
    """Award ``amount`` points with a rule made for the purpose (a bonus of that size)."""
    async with world.db.transaction() as session:
        await points.set_rule(
            session,
            Actor.cli(),
            code=f"bonus_{amount}",
            now=NOW,
            name="奖励",
            name_en="Bonus",
            kind="bonus",
            points=amount,
        )
        await points.award(
            session,
            member_id=world.id(actor),
            rule_code=f"bonus_{amount}",
            source="task",
            source_id=source_id,
            now=NOW,
        )


async def stock(world: World, item_id: int) -> tuple[int, int]:
    """(the item's stock, the sum of its stock movements): always equal."""
    async with world.db.transaction() as session:
        row = await session.get(StoreItem, item_id)
        moved = (
            await session.execute(
                select(func.coalesce(func.sum(col(StockMovement.delta)), 0)).where(
                    col(StockMovement.item_id) == item_id
                )
            )
        ).scalar_one()
    assert row is not None
    return row.stock, int(moved)


async def balance(world: World, actor: Actor) -> int:
    async with world.db.transaction() as session:
        total, running = await points.ledger_totals(session, world.id(actor))
    assert total == running
    return running


async def test_redeeming_debits_the_points_and_reserves_a_piece_at_once(world: World) -> None:
    shelf_item = await item(world)
    await give_points(world, world.volunteer, 50)
    async with world.db.transaction() as session:
        redemption = await store.redeem(
            session, world.volunteer, item_id=shelf_item.id, now=NOW, token="n1"
        )
    assert (redemption.status, redemption.cost, redemption.member_name) == (
        RedemptionStatus.reserved,
        30,
        "李明",
    )
    assert await balance(world, world.volunteer) == 20
    assert await stock(world, shelf_item.id) == (1, 1)
    notice = (await sent_to(world.db, world.coordinator))[-1]
    assert f"李明 兑换了「洗衣液」（30 分），编号 #{redemption.id}" in notice["text"]
    assert buttons_of(notice) == [f"rd:give:{redemption.id}"]


async def test_too_few_points_or_no_stock_is_refused_and_nothing_changes(world: World) -> None:
    shelf_item = await item(world, stock=1)
    await give_points(world, world.volunteer, 20)
    poor = await refused(
        world, lambda s: store.redeem(s, world.volunteer, item_id=shelf_item.id, now=NOW, token="a")
    )
    assert (poor.key, poor.params) == ("points.not_enough_for", {"cost": 30, "balance": 20})
    await give_points(world, world.volunteer2, 100)
    async with world.db.transaction() as session:
        await store.redeem(session, world.volunteer2, item_id=shelf_item.id, now=NOW, token="b")
    await give_points(world, world.volunteer, 40, source_id=2)
    empty = await refused(
        world, lambda s: store.redeem(s, world.volunteer, item_id=shelf_item.id, now=NOW, token="c")
    )
    assert (empty.key, empty.params) == ("points.store_out_of_stock", {"item": "洗衣液"})
    assert await balance(world, world.volunteer) == 60
    assert await stock(world, shelf_item.id) == (0, 0)


async def test_pressing_redeem_twice_redeems_once(world: World) -> None:
    shelf_item = await item(world)
    await give_points(world, world.volunteer, 100)
    async with world.db.transaction() as session:
        await store.redeem(session, world.volunteer, item_id=shelf_item.id, now=NOW, token="same")
    twice = await refused(
        world,
        lambda s: store.redeem(s, world.volunteer, item_id=shelf_item.id, now=NOW, token="same"),
    )
    assert twice.key == "points.store_already_redeemed"
    assert await balance(world, world.volunteer) == 70
    assert await stock(world, shelf_item.id) == (1, 1)


async def test_an_item_of_another_community_cannot_be_seen_or_redeemed(world: World) -> None:
    far_item = await item(world, community="C2")
    await give_points(world, world.volunteer, 100)
    for action in (
        lambda s: store.get_item(s, world.volunteer, far_item.id),
        lambda s: store.redeem(s, world.volunteer, item_id=far_item.id, now=NOW, token="x"),
        lambda s: store.restock(s, world.coordinator, item_id=far_item.id, quantity=5, now=NOW),
    ):
        assert isinstance(await refused(world, action), PermissionDenied)
    assert await balance(world, world.volunteer) == 100


async def test_only_coordinators_manage_the_shelf_and_input_is_checked(world: World) -> None:
    async with world.db.transaction() as session:
        c1 = await unit_by_code(session, "C1")
    volunteer = await refused(
        world,
        lambda s: store.add_item(
            s, world.volunteer, community_id=c1.id, name="米", cost=5, stock=1, now=NOW
        ),
    )
    assert isinstance(volunteer, PermissionDenied)
    for name, cost, stock_, key in (
        ("米", "0", "1", "points.store_cost_invalid"),
        ("米", "abc", "1", "points.store_cost_invalid"),
        ("米", "5", "-1", "points.store_stock_invalid"),
        ("米" * 61, "5", "1", "points.store_name_too_long"),
        ("  ", "5", "1", "points.store_name_empty"),
    ):
        refusal = await refused(
            world,
            lambda s, n=name, c=cost, k=stock_: store.add_item(
                s, world.coordinator, community_id=c1.id, name=n, cost=c, stock=k, now=NOW
            ),
        )
        assert refusal.key == key
    shelf_item = await item(world, stock=0)
    async with world.db.transaction() as session:
        restocked = await store.restock(
            session, world.coordinator, item_id=shelf_item.id, quantity="5", now=NOW
        )
        await store.set_item_active(session, world.coordinator, item_id=shelf_item.id, active=False)
        shelf = await store.items(session, c1)
    assert restocked.stock == 5
    assert shelf_item.id not in [i.id for i in shelf], "a retired item leaves the shelf"
    gone = await refused(
        world, lambda s: store.redeem(s, world.volunteer, item_id=shelf_item.id, now=NOW, token="z")
    )
    assert gone.key == "points.store_item_unknown"


async def test_a_coordinator_hands_out_and_the_member_is_told(world: World) -> None:
    shelf_item = await item(world)
    await give_points(world, world.volunteer, 30)
    async with world.db.transaction() as session:
        redemption = await store.redeem(
            session, world.volunteer, item_id=shelf_item.id, now=NOW, token="n"
        )
    for outsider in (world.volunteer, world.far_coordinator, world.grid_leader):
        refusal = await refused(
            world,
            lambda s, a=outsider: store.hand_out(s, a, redemption_id=redemption.id, now=NOW),
        )
        assert isinstance(refusal, PermissionDenied)
    async with world.db.transaction() as session:
        done = await store.hand_out(
            session, world.coordinator, redemption_id=redemption.id, now=NOW
        )
    assert done.status == RedemptionStatus.handed_out
    twice = await refused(
        world, lambda s: store.hand_out(s, world.coordinator, redemption_id=redemption.id, now=NOW)
    )
    assert twice.key == "points.store_not_reserved"
    assert (await texts_to(world.db, world.volunteer))[-1] == "✅ 您兑换的「洗衣液」已领取。"
    late = await refused(
        world,
        lambda s: store.cancel(s, world.volunteer, redemption_id=redemption.id, reason="", now=NOW),
    )
    assert late.key == "points.store_not_reserved", "too late to cancel once handed out"


async def test_a_cancelled_redemption_refunds_with_a_reversing_entry(world: World) -> None:
    shelf_item = await item(world)
    await give_points(world, world.volunteer, 60)
    async with world.db.transaction() as session:
        mine = await store.redeem(
            session, world.volunteer, item_id=shelf_item.id, now=NOW, token="1"
        )
        other = await store.redeem(
            session, world.volunteer, item_id=shelf_item.id, now=NOW, token="2"
        )
    assert await balance(world, world.volunteer) == 0
    not_theirs = await refused(
        world,
        lambda s: store.cancel(s, world.volunteer2, redemption_id=mine.id, reason="", now=NOW),
    )
    assert isinstance(not_theirs, PermissionDenied)
    staff_without_reason = await refused(
        world,
        lambda s: store.cancel(s, world.coordinator, redemption_id=other.id, reason=" ", now=NOW),
    )
    assert staff_without_reason.key == "points.store_reason_needed"
    async with world.db.transaction() as session:
        await store.cancel(session, world.volunteer, redemption_id=mine.id, reason="", now=NOW)
        await store.cancel(
            session, world.coordinator, redemption_id=other.id, reason="商品过期", now=NOW
        )
        ledger = (
            (await session.execute(select(LedgerEntry).order_by(col(LedgerEntry.id))))
            .scalars()
            .all()
        )
    assert [(e.kind, e.points) for e in ledger] == [
        (EntryKind.award, 60),
        (EntryKind.redemption, -30),
        (EntryKind.redemption, -30),
        (EntryKind.refund, 30),
        (EntryKind.refund, 30),
    ]
    assert [e.reverses_id for e in ledger[3:]] == [ledger[1].id, ledger[2].id]
    assert await balance(world, world.volunteer) == 60
    assert await stock(world, shelf_item.id) == (2, 2)
    assert (
        "已被社区取消，30 分已退回。原因：商品过期"
        in (await texts_to(world.db, world.volunteer))[-1]
    )
    assert "李明 取消了「洗衣液」的兑换" in (await texts_to(world.db, world.coordinator))[-1]


async def test_fifty_people_redeeming_the_last_piece_at_once_exactly_one_gets_it(
    world: World,
) -> None:
    last = await item(world, cost=10, stock=1)
    async with world.db.transaction() as session:
        people: list[Actor] = []
        for n in range(50):
            joined = await invites.redeem(
                session, "demo-volunteer", Person(5000 + n, 5000 + n, f"V{n}", "zh_CN"), NOW
            )
            people.append(await load_actor(session, joined.member.id))
        for n, person in enumerate(people):
            assert person.member_id is not None
            await points.award(
                session,
                member_id=person.member_id,
                rule_code="wish_fulfilled",
                source="wish",
                source_id=n,
                now=NOW,
            )

    async def press(person: Actor) -> str:
        try:
            async with world.db.transaction() as session:
                await store.redeem(session, person, item_id=last.id, now=NOW, token="go")
        except Conflict as refusal:
            return refusal.key
        return "redeemed"

    outcomes = await asyncio.gather(*(press(person) for person in people))
    assert outcomes.count("redeemed") == 1
    assert outcomes.count("points.store_out_of_stock") == 49
    assert await stock(world, last.id) == (0, 0)
    async with world.db.transaction() as session:
        debits = (
            await session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(col(LedgerEntry.kind) == EntryKind.redemption.value)
            )
        ).scalar_one()
        balances = [(await points.ledger_totals(session, p.member_id or 0)) for p in people]
    assert debits == 1
    assert sorted(b for _, b in balances) == [0] + [10] * 49
    assert all(total == running for total, running in balances)
