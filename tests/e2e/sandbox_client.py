"""A small client for the sandbox's control API, and the real bot as a child process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:SANDBOX"


class SandboxClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.http.close()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.base_url}/_sandbox/{path}", json=body) as response:
            data: dict[str, Any] = await response.json()
            if response.status != 200:
                raise AssertionError(f"sandbox {path}: {response.status} {data}")
            return data

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        query = {k: str(v) for k, v in params.items() if v is not None}
        async with self.http.get(f"{self.base_url}/_sandbox/{path}", params=query) as response:
            data: dict[str, Any] = await response.json()
            if response.status != 200:
                raise AssertionError(f"sandbox {path}: {response.status} {data}")
            return data

    async def user(self, user_id: int, first_name: str, language_code: str = "zh-hans") -> None:
        await self._post(
            "users", {"id": user_id, "first_name": first_name, "language_code": language_code}
        )

    async def send(self, user_id: int, text: str) -> int:
        return int((await self._post("send", {"user_id": user_id, "text": text}))["update_id"])

    async def send_many(self, items: list[tuple[int, str]]) -> list[int]:
        body = {"items": [{"user_id": u, "text": t} for u, t in items]}
        return [int(i) for i in (await self._post("send_many", body))["update_ids"]]

    async def send_contact(self, user_id: int, phone: str) -> None:
        await self._post("send_contact", {"user_id": user_id, "phone_number": phone})

    async def send_photo(self, user_id: int, caption: str | None = None) -> int:
        """A generated picture (three sizes), optionally with a caption."""
        body: dict[str, Any] = {"user_id": user_id}
        if caption is not None:
            body["caption"] = caption
        return int((await self._post("send_photo", body))["update_id"])

    async def send_location(self, user_id: int, latitude: float, longitude: float) -> int:
        body = {"user_id": user_id, "latitude": latitude, "longitude": longitude}
        return int((await self._post("send_location", body))["update_id"])

    async def send_sticker(self, user_id: int) -> None:
        await self._post("send_sticker", {"user_id": user_id})

    async def press(self, user_id: int, message_id: int, data: str, *, forge: bool = False) -> None:
        await self._post(
            "press",
            {"user_id": user_id, "message_id": message_id, "callback_data": data, "forge": forge},
        )

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return list((await self._get(f"chats/{chat_id}/messages"))["messages"])

    async def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in await self.messages(chat_id) if m["from_bot"]]

    async def commands(self, chat_id: int) -> list[str]:
        return [c["command"] for c in (await self._get(f"chats/{chat_id}/commands"))["commands"]]

    async def callback_answers(self, chat_id: int) -> list[dict[str, Any]]:
        return list((await self._get(f"chats/{chat_id}/callback_answers"))["answers"])

    async def stats(self) -> dict[str, Any]:
        return await self._get("stats")

    async def flood(
        self, global_per_second: int | None = None, per_chat_per_second: int | None = None
    ) -> None:
        """Enforce Telegram-like flood limits (429 with retry_after); no arguments: off."""
        body = {"global_per_second": global_per_second, "per_chat_per_second": per_chat_per_second}
        await self._post("flood", {k: v for k, v in body.items() if v is not None})

    async def fail(
        self, method: str, error_code: int, count: int = 1, retry_after: int | None = None
    ) -> None:
        """The next ``count`` calls of ``method`` fail with ``error_code``."""
        body: dict[str, Any] = {"method": method, "error_code": error_code, "count": count}
        if retry_after is not None:
            body["retry_after"] = retry_after
        await self._post("fail", body)

    async def block(self, user_id: int, blocked: bool = True) -> None:
        await self._post("block", {"user_id": user_id, "blocked": blocked})

    async def hold(self, *methods: str) -> None:
        await self._post("hold", {"methods": list(methods)})

    async def release(self) -> None:
        await self._post("release", {})

    async def held(self) -> int:
        return int((await self._get("held"))["held"])

    async def wait_until(
        self,
        chat_id: int,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Wait (long-polling the sandbox, no sleeps) until the chat's bot messages satisfy
        ``predicate``; returns them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self.bot_messages(chat_id)
            if predicate(found):
                return found
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out; chat {chat_id} has {[m['text'] for m in found]}")
            after = max((m["message_id"] for m in await self.messages(chat_id)), default=0)
            await self._get("wait", chat_id=chat_id, after_message_id=after, timeout=min(left, 2.0))

    async def reply_to(
        self, user_id: int, text: str, count: int = 1, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Send ``text`` and return the next ``count`` bot messages in that chat."""
        before = len(await self.bot_messages(user_id))
        await self.send(user_id, text)
        found = await self.wait_until(user_id, lambda ms: len(ms) >= before + count, timeout)
        return found[before:]


class BotProcess:
    """`gridbot run` as a child process pointed at the sandbox."""

    def __init__(
        self,
        sandbox_url: str,
        database_url: str,
        log_path: Path,
        runtime: str = "aiogram",
        **env: str,
    ) -> None:
        self.log_path = log_path
        self.runtime = runtime
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "GRIDBOT_TELEGRAM_TOKEN": TOKEN,
            "GRIDBOT_TELEGRAM_API_URL": sandbox_url,
            "GRIDBOT_DATABASE_URL": database_url,
            "GRIDBOT_OUTBOX_LEASE_SECONDS": "2",
            "GRIDBOT_LOG_LEVEL": "INFO",
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--runtime",
            self.runtime,
            env=self.env,
            cwd=str(self.log_path.parent),
            stdout=log,
            stderr=log,
        )
        log.close()

    async def wait_ready(self, sandbox: SandboxClient, timeout: float = 30.0) -> None:
        """Ready when it has asked for updates (polling) or set its webhook."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            calls = (await sandbox.stats())["calls"]
            if calls.get("getUpdates") or calls.get("setWebhook"):
                return
            if self.process is not None and self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bot did not start:\n{self.log()}")

    async def kill(self) -> None:
        """SIGKILL: no clean-up at all, like a crash or a power cut."""
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> int | None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode if self.process else None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
