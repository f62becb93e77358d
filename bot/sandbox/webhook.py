"""Delivers pending updates to the webhook URL, one at a time, in order, retrying on failure."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from .jsonio import dumps
from .state import SandboxState

_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 1.0
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookManager:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """(Re)starts delivery to the URL in state.webhook."""
        self.stop()
        if self.state.webhook.url:
            self._task = asyncio.create_task(
                self._run(self.state.webhook.url, self.state.webhook.secret_token)
            )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> str | None:
        """None on a 2xx answer, else the error text shown by getWebhookInfo."""
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"Connection error: {type(error).__name__}"

    async def _run(self, url: str, secret: str | None) -> None:
        updates = self.state.updates
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[_SECRET_HEADER] = secret
        backoff = _FIRST_BACKOFF
        while not updates.closed:
            update = updates.first()
            if update is None:
                await updates.wait_change()
                continue
            error = await self._post(url, headers, dumps(update))
            if error is None:
                updates.pop_first(update["update_id"])
                backoff = _FIRST_BACKOFF
                continue
            self.state.webhook.last_error_date = int(time.time())
            self.state.webhook.last_error_message = error
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
