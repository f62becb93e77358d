"""Ledger invariants as properties (hypothesis), on SQLite and on PostgreSQL.

Any sequence of awards (repeated sources, deductions, capped rules), store redemptions and
cancellations, corrections and service hours — some of them pressed twice at the same moment —
leaves the ledger so that:

* every balance is the sum of the member's entries, and never below zero;
* no source awarded one rule to one member twice;
* the ranking tallies are the sums of the award and correction entries of their period;
* stock is the sum of its movements, never below zero, and every piece is accounted for.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, func, select

from bot.db import Database
from models.points import (
    EntryKind,
    LedgerEntry,
    Redemption,
    RedemptionStatus,
    StockMovement,
    StoreItem,
)
from services import invites, points, store
from services.access import Actor, load_actor
from services.demo import seed_demo
from services.errors import ServiceError
from services.members import Person
from services.org import unit_by_code
from tests.services.world import NOW

MEMBERS = 3
RULES = ("wish_fulfilled", "task_completed", "visit_done", "complaint", "no_show")
SOURCES = ("wish", "visit", "task")
ITEMS = ((7, 3), (25, 1))
"""(cost, stock) of the two items each example puts on the shelf."""

member = st.integers(0, MEMBERS - 1)
award_op = st.tuples(
    st.just("award"), member, st.sampled_from(RULES), st.sampled_from(SOURCES), st.integers(0, 3)
)
race_op = st.tuples(
    st.just("race"), member, st.sampled_from(RULES), st.sampled_from(SOURCES), st.integers(0, 3)
)
redeem_op = st.tuples(st.just("redeem"), member, st.integers(0, len(ITEMS) - 1), st.booleans())
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 5), st.booleans())
reverse_op = st.tuples(st.just("reverse"), st.integers(0, 8))
hours_op = st.tuples(
    st.just("hours"), member, st.integers(0, 2), st.sampled_from(["0.5", "1", "2.5", "30"])
)
OPS = st.lists(
    st.one_of(award_op, race_op, redeem_op, cancel_op, reverse_op, hours_op), max_size=18
)


@dataclass
class Scene:
    people: list[Actor]
    items: list[int]
    coordinator: Actor
    redemptions: list[tuple[int, int]] = field(default_factory=list)
    """(redemption id, index of the person)"""
    awards: list[int] = field(default_factory=list)
    tokens: Counter[str] = field(default_factory=Counter)


async def seed(db: Database) -> None:
    async with db.transaction() as session:
        await seed_demo(session, NOW)


async def set_scene(db: Database, example: int) -> Scene:
    async with db.transaction() as session:
        people = []
        for n in range(MEMBERS):
            telegram_id = 700_000 + example * 10 + n
            joined = await invites.redeem(
                session, "demo-volunteer", Person(telegram_id, telegram_id, f"P{n}", "zh_CN"), NOW
            )
            people.append(await load_actor(session, joined.member.id))
        for person in people:
            for source_id in (1000, 1001, 1002):  # a starting balance of 30 to spend
                await points.award(
                    session,
                    member_id=person.member_id or 0,
                    rule_code="wish_fulfilled",
                    source="wish",
                    source_id=source_id,
                    now=NOW,
                )
        coordinator_id = 800_000 + example
        joined = await invites.redeem(
            session,
            "demo-coordinator",
            Person(coordinator_id, coordinator_id, "C", "zh_CN"),
            NOW,
        )
        coordinator = await load_actor(session, joined.member.id)
        c1 = await unit_by_code(session, "C1")
        items = [
            (
                await store.add_item(
                    session,
                    coordinator,
                    community_id=c1.id,
                    name=f"item{example}-{cost}",
                    cost=cost,
                    stock=stock,
                    now=NOW,
                )
            ).id
            for cost, stock in ITEMS
        ]
    return Scene(people, items, coordinator)


async def apply(db: Database, scene: Scene, op: tuple[object, ...], example: int) -> None:
    kind = op[0]

    async def attempt(work: object) -> None:
        try:
            async with db.transaction() as session:
                await work(session)  # type: ignore[operator]
        except ServiceError:
            pass  # a refusal: the transaction rolled back, which the invariants also check

    if kind in ("award", "race"):
        _, who, rule, source, source_id = op
        person = scene.people[int(str(who))]

        async def give(session: object) -> None:
            entry = await points.award(
                session,  # type: ignore[arg-type]
                member_id=person.member_id or 0,
                rule_code=str(rule),
                source=str(source),
                source_id=int(str(source_id)),
                now=NOW,
            )
            if entry is not None:
                scene.awards.append(entry.id)

        if kind == "race":
            await asyncio.gather(attempt(give), attempt(give))
        else:
            await attempt(give)
    elif kind == "redeem":
        _, who, item, twice = op
        person = scene.people[int(str(who))]
        token = f"{example}-{len(scene.tokens)}"
        scene.tokens[token] += 1

        async def buy(session: object) -> None:
            red = await store.redeem(
                session,  # type: ignore[arg-type]
                person,
                item_id=scene.items[int(str(item))],
                now=NOW,
                token=token,
            )
            scene.redemptions.append((red.id, int(str(who))))

        await attempt(buy)
        if twice:
            await attempt(buy)
    elif kind == "cancel":
        _, index, by_staff = op
        if not scene.redemptions:
            return
        redemption_id, who = scene.redemptions[int(str(index)) % len(scene.redemptions)]
        actor = scene.coordinator if by_staff else scene.people[who]
        await attempt(
            lambda s: store.cancel(s, actor, redemption_id=redemption_id, reason="因为", now=NOW)
        )
    elif kind == "reverse":
        _, index = op
        if not scene.awards:
            return
        entry_id = scene.awards[int(str(index)) % len(scene.awards)]
        await attempt(
            lambda s: points.reverse_entry(
                s, scene.coordinator, entry_id=entry_id, reason="更正", now=NOW
            )
        )
    elif kind == "hours":
        _, who, source_id, hours = op
        person = scene.people[int(str(who))]
        await attempt(
            lambda s: points.log_hours(
                s,
                member_id=person.member_id or 0,
                hours=Decimal(str(hours)),
                source="task",
                source_id=int(str(source_id)),
                now=NOW,
            )
        )


async def check_invariants(db: Database, scene: Scene) -> None:
    async with db.transaction() as session:
        for person in scene.people:
            member_id = person.member_id or 0
            total, running = await points.ledger_totals(session, member_id)
            assert total == running >= 0
            awards = (
                await session.execute(
                    select(LedgerEntry.source, LedgerEntry.source_id, LedgerEntry.rule_code)
                    .where(col(LedgerEntry.member_id) == member_id)
                    .where(col(LedgerEntry.kind) == EntryKind.award.value)
                )
            ).all()
            assert len(awards) == len(set(awards)), "a source awarded a rule twice"
            for period in ("2026", "2026-11"):
                ranked = (
                    await session.execute(
                        select(func.coalesce(func.sum(col(LedgerEntry.points)), 0))
                        .where(col(LedgerEntry.member_id) == member_id)
                        .where(
                            col(LedgerEntry.kind).in_(
                                [EntryKind.award.value, EntryKind.reversal.value]
                            )
                        )
                    )
                ).scalar_one()
                assert await points.tally(session, member_id, period) == ranked
            hours = await points.year_minutes(session, member_id, NOW)
            assert hours >= 0
        for (_, initial), item_id in zip(ITEMS, scene.items, strict=True):
            item = await session.get(StoreItem, item_id)
            assert item is not None
            moved = (
                await session.execute(
                    select(func.coalesce(func.sum(col(StockMovement.delta)), 0)).where(
                        col(StockMovement.item_id) == item_id
                    )
                )
            ).scalar_one()
            held = (
                await session.execute(
                    select(func.count())
                    .select_from(Redemption)
                    .where(col(Redemption.item_id) == item_id)
                    .where(col(Redemption.status) != RedemptionStatus.cancelled.value)
                )
            ).scalar_one()
            assert item.stock == moved >= 0
            assert item.stock + held == initial, "every piece is on the shelf or redeemed"
        for redemption_id, _ in scene.redemptions:
            kinds = (
                await session.execute(
                    select(LedgerEntry.kind).where(col(LedgerEntry.redemption_id) == redemption_id)
                )
            ).scalars()
            red = await session.get(Redemption, redemption_id)
            assert red is not None
            expected = ["redemption", "refund"] if red.status == "cancelled" else ["redemption"]
            assert sorted(kinds) == expected


def test_ledger_invariants_hold_for_any_sequence_of_actions(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    db = Database(database_url)
    examples = itertools.count()

    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(ops=OPS)
    def sequence(ops: list[tuple[object, ...]]) -> None:
        loop.run_until_complete(run(db, next(examples), ops))

    try:
        loop.run_until_complete(seed(db))
        sequence()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()


async def run(db: Database, example: int, ops: list[tuple[object, ...]]) -> None:
    scene = await set_scene(db, example)
    for op in ops:
        await apply(db, scene, op, example)
    await check_invariants(db, scene)
