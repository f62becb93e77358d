"""`python -m bot.sandbox` runs a standalone server and prints its URL."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request

from .conftest import TOKEN


def get_me(base_url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base_url}/bot{TOKEN}/getMe", timeout=5) as resp:
        body: dict[str, object] = json.loads(resp.read())
    return body


async def test_standalone_process_serves_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox",
        "--port",
        "0",
        "--token",
        TOKEN,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        base_url = line.decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        body = await asyncio.to_thread(get_me, base_url)
        assert body["ok"] is True
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
