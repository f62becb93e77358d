"""/stats and /export in the chat: the summary, the chart, the buttons, the scope, the export
job's progress and file, and the coordinators' weekly digest. The report is made by the
statistics job, off the person's update: the update only checks the unit and queues it."""

from __future__ import annotations

import asyncio
import io
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, select
from sqlmodel import col

from bot.settings import Settings
from jobs.stats import stats_exports, weekly_digest
from models.issues import IssueStatus
from models.members import Member, Role, RoleGrant
from services import stats
from tests.conftest import ALICE, COORDINATOR, RESIDENT
from tests.fakes import SentMessage
from tests.harness import Harness, User
from tests.households_world import deliver_queued, empty_registry
from tests.stats_world import StatsWorld

NOVEMBER_5 = datetime(2026, 11, 5, 2, tzinfo=UTC)


async def some_issues(harness: Harness) -> StatsWorld:
    """Two issues in G1 and one in G2 reported in November 2026 (the harness's month)."""
    world = await StatsWorld(harness.app.db).existing()
    await world.issue(
        "G1", NOVEMBER_5, IssueStatus.closed,
        [("accepted", 1, None), ("resolved", 5, None), ("rated", 6, "satisfied"),
         ("closed", 6, None)],
        resolved_after=5,
    )  # fmt: skip
    await world.issue("G1", NOVEMBER_5, IssueStatus.new, [("escalated", 1, "response")])
    await world.issue("G2", NOVEMBER_5 + timedelta(days=1), IssueStatus.accepted,
                      [("accepted", 2, None)])  # fmt: skip
    return world


async def run_job(harness: Harness, settings: Settings, user: User) -> list[SentMessage]:
    """Deliver what is queued, run the statistics job once, deliver what it queued; returns
    the new messages in the person's chat (edits change earlier messages in place)."""
    await deliver_queued(harness)
    before = len(harness.transport.chats[user.id])
    await stats_exports(harness.app.db, settings, harness.clock())
    await deliver_queued(harness)
    return harness.transport.chats[user.id][before:]


async def ask(
    harness: Harness, settings: Settings, user: User, command: str
) -> tuple[SentMessage, list[SentMessage]]:
    """``/stats …``: the "working…" message the update queued, after the job has replaced it
    with the summary, and the messages the job sent (the chart)."""
    assert await harness.send(user, command) == []
    await deliver_queued(harness)
    working = harness.last(user)
    assert working.text.startswith("⏳ ")
    return working, await run_job(harness, settings, user)


async def test_coordinator_gets_summary_chart_and_buttons(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    world = await some_issues(harness)
    await harness.send(COORDINATOR, "/stats")
    await deliver_queued(harness)
    summary = harness.last(COORDINATOR)
    # The update only queued the report: a "working…" message, nothing computed yet.
    assert summary.text.startswith("⏳ ")
    assert "(C1)" in summary.text
    sent = await run_job(harness, settings, COORDINATOR)
    assert [m.kind for m in sent] == ["photo"]
    chart = sent[0]
    assert summary.edits == 1
    assert summary.text.splitlines()[0].startswith("📊 ")
    assert "(C1)" in summary.text.splitlines()[0]
    assert "上报 3 · 按时受理 67% · 按期办结 33% · 重新办理 0" in summary.text
    assert "满意 100%" in summary.text
    g1 = world.id("G1")
    assert f"sx:{g1}:2026-11" in summary.payloads()
    assert f"sx:{world.id('C1')}:2026-10" in summary.payloads()  # previous month
    assert not any(p.startswith(f"sx:{world.id('S1')}") for p in summary.payloads())
    assert chart.kind == "photo"
    assert chart.upload is not None
    png = chart.upload.data
    assert png.startswith(b"\x89PNG")
    assert 20_000 < len(png) < 2_000_000
    assert struct.unpack(">II", png[16:24]) == (1210, 506)

    # Down to a grid: the text is replaced in place ("working…", then the report), a new chart
    # comes, the way up is a button.
    assert await harness.press(COORDINATOR, f"sx:{g1}:2026-11", summary) == []
    await deliver_queued(harness)
    assert summary.text.startswith("⏳ ")
    assert "(G1)" in summary.text
    after = await run_job(harness, settings, COORDINATOR)
    assert summary.edits == 3
    assert "(G1)" in summary.text.splitlines()[0]
    assert "上报 2" in summary.text
    assert summary.button("⬆")
    assert [m.kind for m in after] == ["photo"]

    # Another period kind and the league table.
    await harness.press(COORDINATOR, summary.button("季"), summary)
    await run_job(harness, settings, COORDINATOR)
    assert "2026-Q4" in summary.text.splitlines()[0]
    # The league table is made by the job too, in place of the summary, with a way back.
    assert await harness.press(COORDINATOR, summary.button("部门排名"), summary) == []
    assert await run_job(harness, settings, COORDINATOR) == []
    assert "这一期没有吹哨到部门的事项" in summary.text
    assert summary.button("↩")


async def test_scope_and_bad_input(harness: Harness, settings: Settings) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await harness.send(RESIDENT, "/start demo-resident")
    world = await some_issues(harness)
    # A forged button for the street, a typed code of another community: refused at once,
    # and nothing is queued for the statistics job.
    street = world.id("S1")
    refused = await harness.press(COORDINATOR, f"sx:{street}:2026-11")
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"
    typed = await harness.send(COORDINATOR, "/stats C2")
    assert typed[-1].text == "抱歉，您没有权限执行此操作。"
    league = await harness.press(COORDINATOR, f"sxl:{street}:2026-11")
    assert league[-1].text == "抱歉，您没有权限执行此操作。"
    assert await stats_exports(harness.app.db, settings, harness.clock()) == 0
    unknown = await harness.send(COORDINATOR, "/stats NOPE")
    assert unknown[-1].text == "没有这个单位代码。"
    bad = await harness.send(COORDINATOR, "/stats 2026-13")
    assert bad[-1].text.startswith("看不懂这个时段")
    stale = await harness.press(COORDINATOR, f"sx:{world.id('C1')}:garbage")
    assert stale[-1].text != ""
    assert "📊" not in stale[-1].text
    # A resident has no /stats.
    answer = await harness.send(RESIDENT, "/stats")
    assert "📊" not in answer[-1].text
    # An empty period: said plainly, and no chart.
    summary, sent = await ask(harness, settings, COORDINATOR, "/stats 2025-01")
    assert sent == []
    assert "这一期没有数据" in summary.text


async def test_the_same_report_twice_is_made_once(harness: Harness, settings: Settings) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await some_issues(harness)
    await harness.send(COORDINATOR, "/stats G1")
    again = await harness.send(COORDINATOR, "/stats G1")
    assert again[-1].text == "这份统计正在计算，好了会替换这条消息。"
    assert await stats_exports(harness.app.db, settings, harness.clock()) == 1
    assert await stats_exports(harness.app.db, settings, harness.clock()) == 0


async def test_a_scope_lost_before_the_job_runs_is_said_in_place(
    harness: Harness, settings: Settings
) -> None:
    """The job checks the scope again with the grants of the moment it runs."""
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await some_issues(harness)
    await harness.send(COORDINATOR, "/stats")
    await deliver_queued(harness)
    working = harness.last(COORDINATOR)
    async with harness.app.db.transaction() as session:
        member_id = (
            await session.execute(
                select(col(Member.id)).where(col(Member.telegram_id) == COORDINATOR.id)
            )
        ).scalar_one()
        await session.execute(
            delete(RoleGrant).where(
                col(RoleGrant.member_id) == member_id, col(RoleGrant.role) == Role.coordinator
            )
        )
    assert await run_job(harness, settings, COORDINATOR) == []
    assert working.text == "抱歉，您没有权限执行此操作。"
    assert "📊" not in working.text


async def test_other_updates_go_on_while_a_report_is_made(
    harness: Harness, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report is read by the job through ``Database.reading()``, outside any update's
    transaction: while it is being computed (held here at its end), another person's update
    is handled and answered (on SQLite it would otherwise wait for the single writer)."""
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await some_issues(harness)
    await harness.send(COORDINATOR, "/stats")
    await deliver_queued(harness)
    computed = asyncio.Event()
    release = asyncio.Event()
    build_report = stats.build_report

    async def held(*args: Any, **kwargs: Any) -> stats.Report:
        report = await build_report(*args, **kwargs)
        computed.set()
        await release.wait()
        return report

    monkeypatch.setattr(stats, "build_report", held)
    job = asyncio.create_task(stats_exports(harness.app.db, settings, harness.clock()))
    await computed.wait()
    # A guard against a hang, not a measurement: a blocked update would never finish.
    answer = await asyncio.wait_for(harness.send(RESIDENT, "/start demo-resident"), 60)
    assert answer
    assert not job.done()
    assert harness.last(COORDINATOR).text.startswith("⏳ ")
    release.set()
    assert await job == 1
    await deliver_queued(harness)
    assert harness.last(COORDINATOR).kind == "photo"


async def test_export_runs_as_a_job_with_progress(harness: Harness, settings: Settings) -> None:
    await harness.send(ALICE, "/start demo-coordinator")
    await some_issues(harness)
    summary, _ = await ask(harness, settings, ALICE, "/stats")
    await harness.press(ALICE, summary.button("Excel"), summary)
    assert harness.last_toast() == "Started; you get the file when it is ready."
    await deliver_queued(harness)
    progress = harness.last(ALICE)
    assert progress.text.startswith("⏳ Preparing the workbook")
    assert progress.text.endswith(": 0%")
    # A second tap while it is queued changes nothing.
    await harness.press(ALICE, summary.button("Excel"), summary)
    assert harness.last_toast() == "That workbook is being prepared already."
    assert harness.last(ALICE) is progress

    assert await stats_exports(harness.app.db, settings, harness.clock()) == 1
    await deliver_queued(harness)
    document = harness.last(ALICE)
    assert document.kind == "document"
    assert document.upload is not None
    assert document.upload.filename == "stats-C1-2026-11.xlsx"
    assert progress.text.endswith(": 100%")
    assert progress.edits >= 2
    book = load_workbook(io.BytesIO(document.upload.data))
    sheet = book["Issues"]
    assert [c.value for c in sheet[3][1:3]] == ["G1", 2]
    assert [c.value for c in sheet[4][1:3]] == ["G2", 1]
    assert str(sheet["A1"].value).startswith("Issues · ")
    # Nothing left to do.
    assert await stats_exports(harness.app.db, settings, harness.clock()) == 0


async def test_export_command_uses_the_typed_unit_and_period(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await some_issues(harness)
    await harness.send(COORDINATOR, "/export G2 2026-11")
    await deliver_queued(harness)
    assert harness.last(COORDINATOR).text.startswith("⏳ 正在生成")
    await stats_exports(harness.app.db, settings, harness.clock())
    await deliver_queued(harness)
    assert harness.last(COORDINATOR).upload is not None
    assert harness.last(COORDINATOR).upload.filename == "stats-G2-2026-11.xlsx"  # type: ignore[union-attr]
    refused = await harness.send(COORDINATOR, "/export S1 2026-11")
    assert refused[-1].text == "抱歉，您没有权限执行此操作。"


async def test_weekly_digest_once_and_quiet_without_news(
    harness: Harness, settings: Settings
) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    await empty_registry(harness.app.db)  # the demo's visits would count as news
    await some_issues(harness)
    # Monday 9 November 2026, 09:00 in Shanghai: last week (2026-W45) had three reports.
    monday = datetime(2026, 11, 9, 1, 0, tzinfo=UTC)
    assert await weekly_digest(harness.app.db, settings, monday - timedelta(minutes=5)) == 0
    assert await weekly_digest(harness.app.db, settings, monday) == 1
    await deliver_queued(harness)
    text, chart = harness.transport.chats[COORDINATOR.id][-2:]
    assert text.text.startswith("🗓 每周统计")
    assert "2026-W45" in text.text
    assert chart.kind == "photo"
    assert await weekly_digest(harness.app.db, settings, monday + timedelta(hours=2)) == 0
    # The Monday after: nothing happened in W46, nothing is sent.
    assert await weekly_digest(harness.app.db, settings, monday + timedelta(days=7)) == 0


def test_the_statistics_jobs_are_scheduled(settings: Settings) -> None:
    from bot.db import Database
    from jobs.scheduler import job_table

    ids = [job_id for job_id, _, _ in job_table(settings, Database(settings.database_url))]
    assert {"stats.exports", "stats.digest"} <= set(ids)
