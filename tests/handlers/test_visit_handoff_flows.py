"""At the door: log the visit (and see the points it earned), note the needs found, and hand
them on in one tap as an issue report or a wish for the household."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from models.households import Household
from models.issues import Issue
from models.members import Member
from models.wishes import Wish
from services.access import Actor
from services.households import HouseholdDraft, VisitPolicy, add_household, list_tags
from services.org import unit_by_code
from tests.conftest import GRID_WORKER, VOLUNTEER
from tests.harness import Harness, User
from tests.households_world import empty_registry


@pytest.fixture(autouse=True)
async def _empty_registry(demo_db: Database) -> None:
    await empty_registry(demo_db)


async def a_household_for(harness: Harness, user: User) -> int:
    async with harness.app.db.transaction() as session:
        tags = {t.code: t.id for t in await list_tags(session)}
        building = await unit_by_code(session, "B1")
        view = await add_household(
            session,
            Actor.cli(),
            building.id,
            HouseholdDraft(
                "和平路88弄3号", "302", (tags["special_needs"],), "王秀英", "13900001111"
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


async def test_grid_worker_hands_needs_on_as_issue_and_wish_in_one_tap(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    household_id = await a_household_for(harness, GRID_WORKER)
    question = (await harness.press(GRID_WORKER, f"visit:{household_id}"))[-1]
    await harness.press(GRID_WORKER, question.button("见到本人"), question)
    assert "🏅 积分 +2 · 服务时长 0.5 小时" in question.text.splitlines()
    assert not any("上报为问题" in label for row in question.buttons for label, _ in row)

    await harness.press(GRID_WORKER, question.button("发现需求"), question)
    saved = (await harness.send(GRID_WORKER, "楼道灯坏了，老人晚上出门不安全"))[-1]
    tap = saved.button("上报为问题")
    reported = (await harness.press(GRID_WORKER, tap, saved))[-1]
    assert reported.text.startswith("📋 已上报为问题 C1-2026-")
    assert "（其他）" in reported.text.splitlines()[0]
    again = (await harness.press(GRID_WORKER, tap, saved))[-1]
    assert again.text.startswith("这条已经上报过了：问题 C1-2026-")

    await harness.press(GRID_WORKER, reported.button("安全隐患"), reported)
    assert reported.text.startswith("问题 C1-2026-")
    assert "安全隐患" in reported.text.splitlines()[0]
    assert "✓ 安全隐患" in [label for row in reported.buttons for label, _ in row]

    card = (await harness.press(GRID_WORKER, reported.button("查看"), reported))[-1]
    assert any(line.startswith("来源：入户走访 #") for line in card.text.splitlines())
    assert "13900001111" not in card.text, "the household's phone stays in its file"
    household_card = (await harness.press(GRID_WORKER, card.button("住户档案"), card))[-1]
    assert "13900001111" in household_card.text, "staff over the household open its file"

    wished = (await harness.press(GRID_WORKER, saved.button("发布为心愿"), saved))[-1]
    assert wished.text.startswith("🎁 已代住户发布心愿 #")
    await harness.press(GRID_WORKER, wished.button("助老"), wished)
    handed_on = (await harness.press(GRID_WORKER, f"hh:{household_id}"))[-1].text
    assert "  → 已上报为问题 C1-2026-" in handed_on
    assert "  → 已发布为心愿 #" in handed_on
    async with harness.app.db.transaction() as session:
        issues = list((await session.execute(select(Issue))).scalars())
        wishes = list((await session.execute(select(Wish))).scalars())
    needs = "楼道灯坏了，老人晚上出门不安全"
    assert [(i.description, i.source) for i in issues] == [(needs, "visit")]
    assert [(w.text, w.category, w.household_id) for w in wishes] == [
        ("楼道灯坏了，老人晚上出门不安全", "elderly", household_id)
    ]


async def test_a_forged_hand_off_for_someone_elses_visit_is_refused(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    await harness.send(VOLUNTEER, "/start demo-volunteer")
    household_id = await a_household_for(harness, GRID_WORKER)
    question = (await harness.press(GRID_WORKER, f"visit:{household_id}"))[-1]
    await harness.press(GRID_WORKER, question.button("见到本人"), question)
    await harness.press(GRID_WORKER, question.button("发现需求"), question)
    saved = (await harness.send(GRID_WORKER, "需要轮椅"))[-1]
    answer = (await harness.press(VOLUNTEER, saved.button("上报为问题")))[-1]
    assert "C1-2026-" not in answer.text
    async with harness.app.db.transaction() as session:
        assert list((await session.execute(select(Issue))).scalars()) == []
