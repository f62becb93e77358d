"""Wires the sandbox together: state, Bot API routes, control routes, web page, webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiohttp import web

from .botapi import BotApi
from .control import Control
from .model import DemoUser
from .state import SandboxState
from .webhook import WebhookManager

STATIC_DIR = Path(__file__).with_name("static")


class SandboxServer:
    """A local stand-in for the Telegram Bot API (HTTP on 127.0.0.1) with a web chat page."""

    def __init__(
        self,
        *,
        token: str = "123456:SANDBOX",
        bot_username: str = "gridbot_sandbox_bot",
        bot_first_name: str = "Gridbot",
        host: str = "127.0.0.1",
        port: int = 0,
        demo_users: Sequence[DemoUser] = (),
        quick_texts: Mapping[int, Sequence[tuple[str, str]]] = {},
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(
            token=token,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            demo_users=demo_users,
        )
        self.webhooks = WebhookManager(self.state)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(BotApi(self.state, self.webhooks).routes())
        self.app.add_routes(Control(self.state, self.webhooks, quick_texts).routes())
        self.app.add_routes([web.get("/", self._index), web.static("/static/", STATIC_DIR)])
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SandboxServer is not started")
        return self._base_url

    async def start(self) -> str:
        """Starts serving; returns the base URL, e.g. "http://127.0.0.1:54321"."""
        if self._runner is not None:
            return self.base_url
        # handler_cancellation: a request whose client disconnects is cancelled, so a held
        # request from a killed bot is dropped instead of applied later.
        runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        sockets = runner.addresses
        port = sockets[0][1] if sockets else self.port
        self._base_url = f"http://{self.host}:{port}"
        return self._base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.state.wake_all()  # long polls return at once
        self.state.holds.release()
        await self.webhooks.close()
        await runner.cleanup()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")


async def serve_forever(server: SandboxServer) -> None:
    """Start, wait until cancelled, stop."""
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
