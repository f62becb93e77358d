"""The points ledger, rules, service hours and rankings, as volunteers and staff see them."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from bot.db import Database
from models.points import EntryKind, HoursNudge, LedgerEntry, RuleKind, Source
from services import points, store
from services.access import Actor
from services.errors import PermissionDenied, ServiceError
from services.org import unit_by_code
from tests.services.world import NOW, World, make_world, texts_to

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await make_world(demo_db)


async def award(
    world: World,
    actor: Actor,
    rule: str = "wish_fulfilled",
    source_id: int = 1,
    *,
    source: str = "wish",
    now: datetime = NOW,
) -> points.LedgerEntryView | None:
    async with world.db.transaction() as session:
        return await points.award(
            session,
            member_id=world.id(actor),
            rule_code=rule,
            source=source,
            source_id=source_id,
            now=now,
        )


async def balance(world: World, actor: Actor) -> int:
    async with world.db.transaction() as session:
        total, running = await points.ledger_totals(session, world.id(actor))
    assert total == running, "the balance is the sum of the entries"
    return running


async def refused(world: World, action: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        async with world.db.transaction() as session:
            await action(session)  # type: ignore[operator]
    return caught.value


async def entries(world: World) -> list[LedgerEntry]:
    async with world.db.transaction() as session:
        return list(
            (await session.execute(select(LedgerEntry).order_by(col(LedgerEntry.id)))).scalars()
        )


# -- awarding ---------------------------------------------------------------------------------


async def test_a_source_awards_once_when_retried_and_when_raced(world: World) -> None:
    first = await award(world, world.volunteer, "visit_done", 7, source="visit")
    assert first is not None
    assert (first.points, first.kind, first.rule_code) == (2, EntryKind.award, "visit_done")
    assert await award(world, world.volunteer, "visit_done", 7, source="visit") is None
    raced = await asyncio.gather(
        *(award(world, world.volunteer, "meeting_attended", 3, source="meeting") for _ in range(5))
    )
    assert sum(1 for r in raced if r is not None) == 1
    assert await balance(world, world.volunteer) == 2 + 3


async def test_the_database_itself_refuses_a_second_award_for_one_source(world: World) -> None:
    entry = await award(world, world.volunteer)
    assert entry is not None
    with pytest.raises(IntegrityError):
        async with world.db.transaction() as session:
            session.add(
                LedgerEntry(
                    member_id=world.id(world.volunteer),
                    points=10,
                    kind=EntryKind.award,
                    source=Source.wish,
                    source_id=1,
                    at=NOW,
                    dedupe_key=f"award:wish:1:{world.id(world.volunteer)}:wish_fulfilled",
                )
            )
    assert await balance(world, world.volunteer) == 10


async def test_a_monthly_cap_limits_points_from_one_rule(world: World) -> None:
    async with world.db.transaction() as session:
        given = [
            await points.award(
                session,
                member_id=world.id(world.volunteer),
                rule_code="visit_done",
                source="visit",
                source_id=i,
                now=NOW,
            )
            for i in range(31)
        ]
    assert [g.points for g in given if g] == [2] * 30 + [0]
    assert given[-1] is not None
    assert given[-1].capped
    december = await award(
        world, world.volunteer, "visit_done", 100, source="visit", now=NOW + timedelta(days=10)
    )
    assert december is not None
    assert december.points == 2, "a new month, a new cap"
    assert await balance(world, world.volunteer) == 62


async def test_a_deduction_never_takes_the_balance_below_zero(world: World) -> None:
    await award(world, world.volunteer, "meeting_attended", 1, source="meeting")
    deducted = await award(world, world.volunteer, "complaint", 2, source="task")
    assert deducted is not None
    assert (deducted.points, deducted.capped) == (-3, True)
    assert await balance(world, world.volunteer) == 0


async def test_a_switched_off_or_unknown_rule_awards_nothing(world: World) -> None:
    async with world.db.transaction() as session:
        await points.set_rule(session, Actor.cli(), code="task_completed", now=NOW, active=False)
    assert await award(world, world.volunteer, "task_completed", 1, source="task") is None
    assert await award(world, world.volunteer, "no_such_rule", 1, source="task") is None
    assert await entries(world) == []


async def test_a_community_changes_a_rule_for_itself_only(world: World) -> None:
    async with world.db.transaction() as session:
        c1 = await unit_by_code(session, "C1")
        changed = await points.set_rule(
            session, world.coordinator, code="visit_done", now=NOW, points=4, unit=c1
        )
        _, c1_rules = await points.rules_for(session, world.coordinator)
        _, c2_rules = await points.rules_for(session, world.far_coordinator)
    assert (changed.points, changed.monthly_cap, changed.name) == (4, 60, "入户走访")
    assert next(r for r in c1_rules if r.code == "visit_done").points == 4
    assert next(r for r in c2_rules if r.code == "visit_done").points == 2
    mine = await award(world, world.volunteer, "visit_done", 1, source="visit")
    far = await award(world, world.far_volunteer, "visit_done", 1, source="visit")
    assert (mine and mine.points, far and far.points) == (4, 2)


async def test_who_may_change_rules_and_what_a_rule_may_be(world: World) -> None:
    async def set_for(actor: Actor, unit_code: str | None, **changes: object) -> ServiceError:
        async def action(session: object) -> None:
            unit = await unit_by_code(session, unit_code) if unit_code else None  # type: ignore[arg-type]
            await points.set_rule(session, actor, code="clean_up", now=NOW, unit=unit, **changes)  # type: ignore[arg-type]

        return await refused(world, action)

    new = {"name": "清洁家园", "name_en": "Clean-up", "kind": "bonus", "points": 3}
    assert isinstance(await set_for(world.volunteer, "C1", **new), PermissionDenied)
    assert isinstance(await set_for(world.far_coordinator, "C1", **new), PermissionDenied)
    assert isinstance(await set_for(world.coordinator, None, **new), PermissionDenied)
    wrong_sign = await set_for(world.coordinator, "C1", **(new | {"kind": "deduction"}))
    assert wrong_sign.key == "points.rule_sign_invalid"
    incomplete = await set_for(world.coordinator, "C1", points=3)
    assert incomplete.key == "points.rule_incomplete"
    too_big = await set_for(world.coordinator, "C1", **(new | {"points": 5000}))
    assert too_big.params == {"limit": 1000}
    bad = await refused(
        world,
        lambda s: points.set_rule(s, Actor.cli(), code="Clean Up!", now=NOW, **new),  # type: ignore[arg-type]
    )
    assert bad.key == "points.rule_code_invalid"
    async with world.db.transaction() as session:
        created = await points.set_rule(session, Actor.cli(), code="clean_up", now=NOW, **new)  # type: ignore[arg-type]
    assert (created.kind, created.points, created.scope_unit_id) == (RuleKind.bonus, 3, None)


async def test_the_default_rules_are_those_the_migration_seeds(world: World) -> None:
    path = ROOT / "migrations" / "versions" / "0020_wishes_and_points.py"
    spec = importlib.util.spec_from_file_location("migration_0020", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    expected = [
        (r.code, r.name, r.name_en, r.kind.value, r.points, r.monthly_cap)
        for r in points.DEFAULT_RULES
    ]
    assert list(migration.DEFAULT_RULES) == expected
    codes = {r.code for r in points.DEFAULT_RULES}
    assert {"wish_fulfilled", "visit_done", "meeting_attended", "task_completed"} <= codes


# -- corrections ----------------------------------------------------------------------------------


async def test_a_correction_is_a_reversing_entry_and_happens_once(world: World) -> None:
    original = await award(world, world.volunteer)
    assert original is not None
    for outsider in (world.volunteer2, world.far_coordinator, world.grid_leader):
        refusal = await refused(
            world,
            lambda s, a=outsider: points.reverse_entry(
                s, a, entry_id=original.id, reason="录错了", now=NOW
            ),
        )
        assert isinstance(refusal, PermissionDenied)
    no_reason = await refused(
        world,
        lambda s: points.reverse_entry(
            s, world.coordinator, entry_id=original.id, reason="", now=NOW
        ),
    )
    assert no_reason.key == "points.text_empty"
    async with world.db.transaction() as session:
        reversal = await points.reverse_entry(
            session, world.coordinator, entry_id=original.id, reason="录错了人", now=NOW
        )
        summary = await points.summary(session, world.id(world.volunteer), NOW)
    assert (reversal.points, reversal.kind, reversal.reverses_id) == (
        -10,
        EntryKind.reversal,
        original.id,
    )
    assert (summary.balance, summary.year_points) == (0, 0)
    assert [e.points for e in await entries(world)] == [10, -10], "the original stays as it was"
    twice = await refused(
        world,
        lambda s: points.reverse_entry(
            s, world.coordinator, entry_id=original.id, reason="again", now=NOW
        ),
    )
    assert twice.key == "points.already_reversed"
    of_reversal = await refused(
        world,
        lambda s: points.reverse_entry(
            s, world.coordinator, entry_id=reversal.id, reason="again", now=NOW
        ),
    )
    assert of_reversal.key == "points.cannot_reverse"
    assert "积分更正 -10：完成微心愿\n原因：录错了人" in await texts_to(world.db, world.volunteer)


async def test_a_correction_cannot_take_back_points_already_spent(world: World) -> None:
    original = await award(world, world.volunteer)
    assert original is not None
    async with world.db.transaction() as session:
        c1 = await unit_by_code(session, "C1")
        item = await store.add_item(
            session, world.coordinator, community_id=c1.id, name="毛巾", cost=8, stock=3, now=NOW
        )
        await store.redeem(session, world.volunteer, item_id=item.id, now=NOW, token="t1")
    spent = await refused(
        world,
        lambda s: points.reverse_entry(
            s, world.coordinator, entry_id=original.id, reason="录错了", now=NOW
        ),
    )
    assert (spent.key, spent.params) == ("points.reverse_spent", {"points": 10, "balance": 2})
    assert await balance(world, world.volunteer) == 2


async def test_a_manual_award_confirmed_twice_awards_once(world: World) -> None:
    async def manual(session: object) -> object:
        return await points.award_manual(
            session,  # type: ignore[arg-type]
            world.coordinator,
            member_id=world.id(world.volunteer),
            rule_code="commendation",
            now=NOW,
            token="abc123",
            note="帮忙组织活动",
        )

    async with world.db.transaction() as session:
        await manual(session)
    twice = await refused(world, manual)
    assert twice.key == "points.already_done"
    volunteer = await refused(
        world,
        lambda s: points.award_manual(
            s,
            world.volunteer,
            member_id=world.id(world.volunteer2),
            rule_code="commendation",
            now=NOW,
            token="x",
        ),
    )
    assert isinstance(volunteer, PermissionDenied)
    unknown = await refused(
        world,
        lambda s: points.award_manual(
            s,
            world.coordinator,
            member_id=world.id(world.volunteer),
            rule_code="nope",
            now=NOW,
            token="y",
        ),
    )
    assert unknown.key == "points.rule_unknown"
    assert await balance(world, world.volunteer) == 5


# -- service hours -----------------------------------------------------------------------------


async def test_service_hours_are_logged_once_per_source_and_corrected_by_reversal(
    world: World,
) -> None:
    member = world.id(world.volunteer)
    async with world.db.transaction() as session:
        assert await points.log_hours(
            session, member_id=member, hours=Decimal("2.5"), source="task", source_id=1, now=NOW
        )
        assert not await points.log_hours(
            session, member_id=member, hours=Decimal("2.5"), source="task", source_id=1, now=NOW
        )
        minutes = await points.log_hours_manual(
            session, world.coordinator, member_id=member, hours="1", now=NOW, token="n1"
        )
        summary = await points.hours_summary(session, member, NOW, target_hours=24)
    assert minutes == 60
    assert (summary.minutes, summary.missing_minutes) == (210, 24 * 60 - 210)
    for bad in ("0", "25", "abc", "-1", "NaN"):
        refusal = await refused(
            world,
            lambda s, b=bad: points.log_hours(
                s,
                member_id=member,
                hours=b,
                source="task",
                source_id=2,
                now=NOW,
            ),
        )
        assert refusal.key == "points.hours_invalid"
    logged = summary.entries[0]
    async with world.db.transaction() as session:
        await points.reverse_hours(
            session, world.coordinator, entry_id=logged.id, reason="重复登记", now=NOW
        )
        after = await points.hours_summary(session, member, NOW, target_hours=24)
    assert after.minutes == 150
    twice = await refused(
        world,
        lambda s: points.reverse_hours(
            s, world.coordinator, entry_id=logged.id, reason="again", now=NOW
        ),
    )
    assert twice.key == "points.already_reversed"


# -- rankings --------------------------------------------------------------------------------------


async def test_rankings_break_ties_the_same_way_on_every_run(world: World) -> None:
    early, late = NOW - timedelta(hours=2), NOW
    await award(world, world.volunteer, source_id=1, now=late)
    await award(world, world.volunteer2, source_id=2, now=early)
    await award(world, world.resident, "task_completed", 3, source="task", now=late)
    await award(world, world.far_volunteer, source_id=4, now=early)
    async with world.db.transaction() as session:
        g1 = await unit_by_code(session, "G1")
        runs = [
            await points.ranking(
                session, unit=g1, period="2026", member_id=world.id(world.resident)
            )
            for _ in range(3)
        ]
        short = await points.ranking(
            session, unit=g1, period="2026", member_id=world.id(world.resident), limit=1
        )
    names = [[(r.place, r.name, r.points) for r in run.top] for run in runs]
    assert names[0] == [(1, "周丽", 10), (2, "李明", 10), (3, "王阿姨", 5)]
    assert names[1] == names[0] == names[2]
    assert runs[0].ranked == 3, "only members of the grid"
    assert [r.name for r in short.top] == ["周丽"]
    assert short.mine is not None
    assert (short.mine.place, short.mine.points) == (3, 5)


async def test_same_points_at_the_same_moment_rank_by_who_joined_first(world: World) -> None:
    await award(world, world.volunteer2, source_id=1)
    await award(world, world.volunteer, source_id=2)
    async with world.db.transaction() as session:
        g1 = await unit_by_code(session, "G1")
        ranking = await points.ranking(
            session, unit=g1, period="2026-11", member_id=world.id(world.volunteer2)
        )
    assert [r.name for r in ranking.top] == ["李明", "周丽"]
    assert ranking.mine is not None
    assert ranking.mine.place == 2


async def test_month_and_year_rankings_for_grid_and_community(world: World) -> None:
    october = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
    await award(world, world.volunteer, source_id=1, now=october)
    await award(world, world.coordinator, "task_completed", 2, source="task")
    async with world.db.transaction() as session:
        g1 = await unit_by_code(session, "G1")
        c1 = await unit_by_code(session, "C1")
        me = world.id(world.volunteer)
        year_grid = await points.ranking(session, unit=g1, period="2026", member_id=me)
        month_grid = await points.ranking(session, unit=g1, period="2026-11", member_id=me)
        year_community = await points.ranking(session, unit=c1, period="2026", member_id=me)
    assert [r.name for r in year_grid.top] == ["李明"]
    assert month_grid.top == ()
    assert month_grid.mine is None
    assert [r.name for r in year_community.top] == ["李明", "陈静"]


async def test_the_year_follows_the_installations_calendar(world: World) -> None:
    new_year_in_shanghai = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 2027-01-01 01:00 local
    entry = await award(world, world.volunteer, now=new_year_in_shanghai)
    assert entry is not None
    async with world.db.transaction() as session:
        summary = await points.summary(session, world.id(world.volunteer), new_year_in_shanghai)
    assert (summary.year, summary.year_points, summary.month_points) == ("2027", 10, 10)


# -- the last-quarter nudge ---------------------------------------------------------------------


async def test_volunteers_under_target_are_nudged_once_a_month_in_the_last_quarter(
    world: World,
) -> None:
    zone = points.DEFAULT_ZONE
    async with world.db.transaction() as session:
        assert await points.plan_hours_nudges(session, datetime(2026, 9, 20, tzinfo=UTC), zone) == 0
        await points.log_hours(
            session,
            member_id=world.id(world.volunteer2),
            hours=Decimal(24),
            source="task",
            source_id=1,
            now=NOW,
        )
        planned = await points.plan_hours_nudges(session, NOW, zone)
        assert await points.plan_hours_nudges(session, NOW, zone) == 0, "planned once"
        handled = await points.send_hours_nudges(session, NOW, zone=zone, target_hours=24)
        again = await points.send_hours_nudges(session, NOW, zone=zone, target_hours=24)
        nudges = (await session.execute(select(HoursNudge))).scalars().all()
    assert planned == 3, "every volunteer: 李明, 周丽, 孙强"
    assert (handled, again) == (3, 0)
    assert sorted(n.sent for n in nudges) == [False, True, True], "周丽 reached the target"
    heard = await texts_to(world.db, world.volunteer)
    assert heard == [
        "您好！2026 年您已服务 0 小时，全年目标 24 小时，还差 24 小时。"
        "有空时看看身边的微心愿：/wishes"
    ]
    assert await texts_to(world.db, world.volunteer2) == []
    async with world.db.transaction() as session:
        december = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
        assert await points.plan_hours_nudges(session, december, zone) == 3


async def test_summary_lists_recent_entries_with_their_names(world: World) -> None:
    await award(world, world.volunteer)
    async with world.db.transaction() as session:
        c1 = await unit_by_code(session, "C1")
        item = await store.add_item(
            session, world.coordinator, community_id=c1.id, name="雨伞", cost=4, stock=1, now=NOW
        )
        await store.redeem(session, world.volunteer, item_id=item.id, now=NOW, token="u")
        summary = await points.summary(session, world.id(world.volunteer), NOW)
    assert [(e.points, e.label("zh_CN"), e.label("en")) for e in summary.entries] == [
        (-4, "雨伞", "雨伞"),
        (10, "完成微心愿", "Wish fulfilled"),
    ]
    assert (summary.balance, summary.year_points) == (6, 10), "spending is not in the ranking"
    assert summary.grid_place is not None
    assert summary.grid_place.place == 1
    async with world.db.transaction() as session:
        count = (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
    assert count == 2
