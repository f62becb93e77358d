"""Statistics through the real aiogram runtime against the sandbox: a coordinator's /stats
brings the summary and the chart (a real PNG upload), and the Excel button brings the
workbook from the export job, with the progress message edited in place."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.conftest import BotFactory
from tests.e2e.sandbox_client import SandboxClient

pytestmark = pytest.mark.e2e

COORDINATOR = 1204


def button(message: dict[str, Any], label_part: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for key in row:
            if label_part in key["text"] and key.get("callback_data"):
                return str(key["callback_data"])
    raise AssertionError(f"no button {label_part!r} in {message.get('reply_markup')}")


async def test_stats_chart_and_export(sandbox: SandboxClient, start_bot: BotFactory) -> None:
    await sandbox.user(COORDINATOR, "陈静")
    await start_bot()
    await sandbox.reply_to(COORDINATOR, "/start demo-coordinator", count=2)
    before = len(await sandbox.bot_messages(COORDINATOR))
    await sandbox.send(COORDINATOR, "/stats")
    found = await sandbox.wait_until(
        COORDINATOR, lambda ms: any(m.get("photo") for m in ms[before:])
    )
    summary = next(m for m in found[before:] if (m.get("text") or "").startswith("📊 "))
    assert "新德社区" in summary["text"] or "(C1)" in summary["text"]
    chart = next(m for m in found[before:] if m.get("photo"))
    assert chart["caption"].startswith("📈 ")
    async with sandbox.http.get(sandbox.base_url + chart["photo"]) as response:
        png = await response.read()
    assert png.startswith(b"\x89PNG")
    assert 20_000 < len(png) < 2_000_000

    count = len(found)
    await sandbox.press(COORDINATOR, summary["message_id"], button(summary, "Excel"))
    done = await sandbox.wait_until(
        COORDINATOR, lambda ms: any(m.get("document") for m in ms[count:]), timeout=40
    )
    document = next(m for m in done[count:] if m.get("document"))
    assert document["document"]["file_name"].startswith("stats-C1-")
    assert document["document"]["file_size"] > 5_000
    assert document["document"]["file_name"].endswith(".xlsx")
    progress_id = next(
        m["message_id"] for m in done[count:] if (m.get("text") or "").startswith("⏳")
    )
    # The last edit of the progress message may arrive just after the file.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        messages = await sandbox.bot_messages(COORDINATOR)
        progress = next(m for m in messages if m["message_id"] == progress_id)
        if progress["text"].endswith("100%") or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert progress["text"].endswith("：100%")
    assert progress["edit_count"] >= 2
