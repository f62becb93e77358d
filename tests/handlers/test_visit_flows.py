"""Logging a visit from the morning nudge: outcome in one tap, then a note, a photo and the needs
found; a second tap is the same visit; coverage for the grid and the community."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from bot.settings import Settings
from jobs.visits import run_visit_jobs
from models.households import Household
from models.members import Member
from models.visits import Visit
from services.access import Actor
from services.households import HouseholdDraft, VisitPolicy, add_household, list_tags
from services.org import unit_by_code
from tests.conftest import ALICE, COORDINATOR, GRID_WORKER, VOLUNTEER
from tests.harness import Harness, User
from tests.households_world import deliver_queued, empty_registry


@pytest.fixture(autouse=True)
async def _empty_registry(demo_db: Database) -> None:
    await empty_registry(demo_db)


async def a_household_for(harness: Harness, user: User, door: str = "302") -> int:
    """A special-needs household in B1, assigned to ``user`` (who has joined already)."""
    async with harness.app.db.transaction() as session:
        tags = {t.code: t.id for t in await list_tags(session)}
        building = await unit_by_code(session, "B1")
        view = await add_household(
            session,
            Actor.cli(),
            building.id,
            HouseholdDraft(
                "和平路88弄3号", door, (tags["special_needs"],), "王秀英", "13900001111"
            ),
            harness.clock(),
            VisitPolicy(),
        )
        member = (
            await session.execute(select(Member).where(col(Member.telegram_id) == user.id))
        ).scalar_one()
        await session.execute(
            update(Household).where(col(Household.id) == view.id).values(assignee_id=member.id)
        )
    return view.id


async def visits_of(harness: Harness) -> list[Visit]:
    async with harness.app.db.transaction() as session:
        return list((await session.execute(select(Visit).order_by(col(Visit.id)))).scalars())


async def morning(harness: Harness, settings: Settings, days: int) -> None:
    """``days`` later at half past eight in Shanghai: the nudge goes out."""
    harness.clock.now = harness.clock.now.replace(hour=0, minute=30) + timedelta(days=days)
    await run_visit_jobs(harness.app.db, settings, harness.clock())
    await deliver_queued(harness)


async def test_volunteer_logs_a_visit_from_the_morning_nudge(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    household_id = await a_household_for(harness, VOLUNTEER)
    await morning(harness, settings, 8)
    nudge = harness.last(VOLUNTEER)
    assert nudge.text.splitlines() == [
        "🚪 今天的走访：1 户待走访，其中 1 户已逾期",
        "1. 新德1号楼 和平路88弄3号 302 · 特需对象 · 逾期 1 天",
    ]
    question = (await harness.press(VOLUNTEER, nudge.button("📝 1."), nudge))[-1]
    assert question.text == "走访 新德1号楼 和平路88弄3号 302：情况如何？"
    assert nudge.text.startswith("🚪"), "the nudge stays for the other households"

    harness.clock.advance(hours=2)
    met = question.button("见到本人")
    await harness.press(VOLUNTEER, met, question)
    assert question.text.splitlines()[:2] == [
        "✅ 已记录走访：新德1号楼 和平路88弄3号 302 · 见到本人",
        "下次走访：2026-12-08",
    ]
    await harness.press(VOLUNTEER, question.button("备注"), question)
    await harness.send(VOLUNTEER, "老人身体还好，儿子周末会来")
    await harness.press(VOLUNTEER, question.button("照片"), question)
    wrong = await harness.send(VOLUNTEER, "没带相机")
    assert wrong[0].text == "这一步需要的不是文字。"
    assert wrong[1].text == "请发送一张照片："
    await harness.send_kind(
        VOLUNTEER,
        photo=[{"file_id": "door-photo", "file_unique_id": "u1", "width": 1, "height": 1}],
    )
    await harness.press(VOLUNTEER, question.button("发现需求"), question)
    saved = await harness.send(VOLUNTEER, "楼道灯坏了；需要每周上门送药")
    assert saved[-1].text.startswith("需求已记录在这次走访里。")
    await harness.press(VOLUNTEER, saved[-1].button("完成"), saved[-1])
    assert saved[-1].text == "✅ 走访已保存（见到本人）。"

    [visit] = await visits_of(harness)
    assert (visit.household_id, visit.outcome) == (household_id, "met")
    assert visit.note == "老人身体还好，儿子周末会来"
    assert visit.photo_file_id == "door-photo"
    assert visit.needs == "楼道灯坏了；需要每周上门送药"

    card = (await harness.press(VOLUNTEER, f"hh:{household_id}"))[-1]
    assert "• 2026-12-01 李明 · 见到本人" in card.text
    assert "  发现需求：楼道灯坏了；需要每周上门送药" in card.text
    before = len(harness.texts(VOLUNTEER))
    await morning(harness, settings, 1)
    assert len(harness.texts(VOLUNTEER)) == before, "nothing due the next day: no message"


async def test_a_second_tap_within_minutes_is_one_visit(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    household_id = await a_household_for(harness, VOLUNTEER)
    await morning(harness, settings, 8)
    nudge = harness.last(VOLUNTEER)
    question = (await harness.press(VOLUNTEER, nudge.button("📝 1."), nudge))[-1]
    met = question.button("见到本人")
    await harness.press(VOLUNTEER, met, question)
    harness.clock.advance(minutes=1)
    await harness.press(VOLUNTEER, met, question)
    assert question.text.startswith("这户在 08:30 已经记录过走访，不会重复记录")
    again = (await harness.press(VOLUNTEER, f"visit:{household_id}"))[-1]
    harness.clock.advance(minutes=4)
    await harness.press(VOLUNTEER, again.button("不在家"), again)
    assert again.text.startswith("新德1号楼 和平路88弄3号 302 在 08:30 的走访结果已改为：不在家")
    assert "这次没见到人，这户仍在待走访名单里。" in again.text
    assert [(v.outcome, v.household_id) for v in await visits_of(harness)] == [
        ("not_home", household_id)
    ]


async def test_moved_away_asks_first_and_stops_the_nudges(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    household_id = await a_household_for(harness, VOLUNTEER)
    question = (await harness.press(VOLUNTEER, f"visit:{household_id}"))[-1]
    await harness.press(VOLUNTEER, question.button("已搬走"), question)
    assert question.text.startswith("确认 新德1号楼 和平路88弄3号 302 已搬走？")
    await harness.press(VOLUNTEER, question.button("返回"), question)
    assert question.text.endswith("情况如何？")
    await harness.press(VOLUNTEER, question.button("已搬走"), question)
    await harness.press(VOLUNTEER, question.button("确认已搬走"), question)
    assert "已标记为迁出，不再提醒走访。" in question.text
    before = len(harness.texts(VOLUNTEER))
    await morning(harness, settings, 30)
    assert len(harness.texts(VOLUNTEER)) == before
    refused = await harness.press(VOLUNTEER, f"visit:{household_id}")
    assert refused[-1].text.startswith("这户已标记为迁出，不能再记录走访。")


async def test_english_speakers_get_the_nudge_in_english(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(ALICE, "/start demo-volunteer")
    await a_household_for(harness, ALICE)
    await morning(harness, settings, 7)
    nudge = harness.last(ALICE)
    assert nudge.text.splitlines() == [
        "🚪 Today's visits — due: 1, overdue: 0",
        "1. Xinde Building 1 和平路88弄3号 302 · Special needs · due today",
    ]
    question = (await harness.press(ALICE, nudge.button("📝 1."), nudge))[-1]
    assert [label for row in question.buttons for label, _ in row] == [
        "Met",
        "Not home",
        "Refused",
        "Moved away",
        "Other",
    ]


async def test_coverage_for_the_grid_worker_and_the_coordinator(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await harness.send(COORDINATOR, "/start demo-coordinator")
    visited = await a_household_for(harness, VOLUNTEER, "301")
    await a_household_for(harness, VOLUNTEER, "302")
    question = (await harness.press(VOLUNTEER, f"visit:{visited}"))[-1]
    await harness.press(VOLUNTEER, question.button("见到本人"), question)
    harness.clock.advance(days=8)

    grid = (await harness.send(GRID_WORKER, "/coverage"))[0]
    assert grid.text.splitlines()[:5] == [
        "📊 新德第一网格 (G1) 走访覆盖率",
        "住户 2 户，周期内已走访 0 户（0.0%）",
        "逾期 2 户 · 从未走访 1 户 · 未分配 0 户",
        "近 7 天走访 0 次，发现需求 0 条",
        "逾期（按标签）：特需对象 2",
    ]
    community = (await harness.send(COORDINATOR, "/coverage"))[0]
    assert community.text.startswith("📊 新德社区 (C1) 走访覆盖率")
    assert "• 新德第一网格 (G1)：0.0%（2 户，逾期 2）" in community.text
    assert "• 李明：2 户，覆盖 0.0%，逾期 2" in community.text
    assert "13900001111" not in community.text
    drilled = (await harness.press(COORDINATOR, community.button("G1"), community))[-1]
    assert drilled.text.startswith("📊 新德第一网格 (G1) 走访覆盖率")
    async with harness.app.db.transaction() as session:
        other_grid = await unit_by_code(session, "G2")
    refused = await harness.press(GRID_WORKER, f"cov:{other_grid.id}")
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"
    assert "/coverage" in (await harness.send(VOLUNTEER, "/coverage"))[-1].text
