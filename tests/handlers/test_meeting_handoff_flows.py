"""After the meeting: the organiser turns a follow-up into a tracked issue in one tap; the grid
staff are told, and the follow-up list shows the issue's number and where it stands."""

from __future__ import annotations

from sqlmodel import select

from models.issues import Issue
from services import issues, meetings
from services.access import Actor, load_actor
from services.members import find_member
from tests.conftest import COORDINATOR, GRID_WORKER
from tests.handlers.test_meeting_flows import call, deliver, town
from tests.harness import Harness
from tests.services.meeting_fixtures import FIRST, RULES, hours

__all__ = ["town"]


async def test_organiser_tracks_a_follow_up_as_an_issue(town: Harness) -> None:
    h = town
    meeting_id = await call(h)
    h.clock.now = FIRST + hours(2)
    async with h.app.db.transaction() as session:
        member = await find_member(session, COORDINATOR.id)
        assert member is not None
        organiser = await load_actor(session, member.id)
        await meetings.add_followup(
            session, organiser, meeting_id, "3号楼增设充电桩", None, None, h.clock(), RULES
        )
    listing = (await h.press(COORDINATOR, f"mtg_fus:{meeting_id}"))[-1]
    track = listing.button("1 转为问题")
    reported = (await h.press(COORDINATOR, track, listing))[-1]
    assert reported.text.startswith("📋 已上报为问题 C1-2026-")
    again = (await h.press(COORDINATOR, track, listing))[-1]
    assert again.text.startswith("这条已经上报过了")
    async with h.app.db.transaction() as session:
        [issue] = list((await session.execute(select(Issue))).scalars())
    assert (issue.source, issue.description) == ("meeting", "新德第一网格月月谈: 3号楼增设充电桩")

    card = (await h.press(COORDINATOR, reported.button("查看"), reported))[-1]
    assert any(line.startswith("来源：会议待办 #") for line in card.text.splitlines())

    before = len(h.texts(GRID_WORKER))
    await deliver(h)
    assert any(issue.number in text for text in h.texts(GRID_WORKER)[before:])

    listing = (await h.press(COORDINATOR, f"mtg_fus:{meeting_id}"))[-1]
    assert f"   📋 问题 {issue.number} · 待受理" in listing.text.splitlines()
    assert not any("转为问题" in label for row in listing.buttons for label, _ in row)
    assert issue.id is not None
    async with h.app.db.transaction() as session:
        policy = issues.IssuePolicy()
        await issues.accept(session, Actor.cli(), issue.id, h.clock(), policy)
        await issues.resolve(session, Actor.cli(), issue.id, "已安装", h.clock(), policy)
    listing = (await h.press(COORDINATOR, f"mtg_fus:{meeting_id}"))[-1]
    assert f"   📋 问题 {issue.number} · 已办结" in listing.text.splitlines()
