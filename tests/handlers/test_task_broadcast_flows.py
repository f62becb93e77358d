"""A task's announcement in /broadcasts: the organiser gets a live report that counts the
takes as acknowledgements, and the volunteer's announcement still has only the take buttons."""

from __future__ import annotations

from jobs.broadcasts import refresh_broadcast_reports
from services.broadcasts import BroadcastPolicy
from tests.conftest import COORDINATOR, VOLUNTEER
from tests.handlers.test_task_flows import announcement, deliver, post_task, town
from tests.harness import Harness

__all__ = ["town"]


async def test_the_organiser_follows_a_task_in_broadcasts(town: Harness) -> None:
    h = town
    await post_task(h)
    reports = [m for m in h.transport.chats[COORDINATOR.id] if m.text.startswith("📊 群发 #1")]
    assert len(reports) == 1, "one live report message"
    live = reports[0]
    assert "📋 任务：清理3号楼垃圾" in live.text
    card = announcement(h, VOLUNTEER)
    assert [label for row in card.buttons for label, _ in row] == ["🙋 报名（0/2）"]
    await h.press(VOLUNTEER, card.button("报名"), card)

    h.clock.advance(seconds=10)
    await refresh_broadcast_reports(h.app.db, BroadcastPolicy.of(h.app.settings), h.clock())
    await deliver(h)
    assert live.edits >= 1, "the report is edited in place"
    assert "已确认（报名即确认）1" in live.text
    assert "发送完毕" in live.text

    listing = (await h.send(COORDINATOR, "/broadcasts"))[-1]
    assert listing.text.startswith("📊 群发 #1")
    assert "📋 任务：清理3号楼垃圾" in listing.text
    assert "已确认（报名即确认）1" in listing.text
