"""The pending-update queue: getUpdates long polling, confirmation by offset, allowed_updates."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from .errors import CONFLICT_POLLING, CONFLICT_SET_WEBHOOK, ApiError

Update = dict[str, Any]

# Telegram's default when allowed_updates is unset or empty.
_OPT_IN = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def update_type(update: Update) -> str:
    return next((key for key in update if key != "update_id"), "")


class _Poller:
    __slots__ = ("conflict",)

    def __init__(self) -> None:
        self.conflict: str | None = None


class UpdateQueue:
    def __init__(self) -> None:
        self._pending: deque[Update] = deque()
        self.next_id = 1
        self.total = 0
        self.allowed: frozenset[str] | None = None  # None = Telegram's default set
        self._changed = asyncio.Event()
        self._poller: _Poller | None = None
        self.closed = False

    # -- producing -------------------------------------------------------------------------
    def push(self, update: Update) -> int:
        given = update.get("update_id")
        if isinstance(given, int) and not isinstance(given, bool):
            update_id = given
        else:
            update_id = self.next_id
            update = {"update_id": update_id, **update}
        self.next_id = max(self.next_id, update_id + 1)
        self._pending.append(update)
        self.total += 1
        self._notify()
        return update_id

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- consuming -------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def polling(self) -> bool:
        """True while a getUpdates request is waiting for updates."""
        return self._poller is not None

    def clear(self) -> None:
        self._pending.clear()
        self.allowed = None

    def confirm(self, offset: int) -> None:
        """offset > 0 forgets updates with smaller ids; offset < 0 keeps only the last -offset."""
        pending = self._pending
        if offset > 0:
            while pending and pending[0]["update_id"] < offset:
                pending.popleft()
        elif offset < 0:
            while len(pending) > -offset:
                pending.popleft()

    def set_allowed(self, allowed: list[str] | None) -> None:
        if allowed is not None:
            self.allowed = frozenset(allowed) if allowed else None

    def _is_allowed(self, update: Update) -> bool:
        kind = update_type(update)
        return kind not in _OPT_IN if self.allowed is None else kind in self.allowed

    def take(self, limit: int) -> list[Update]:
        """Up to `limit` pending updates; updates of types not allowed are dropped."""
        result: list[Update] = []
        pending = self._pending
        index = 0
        while index < len(pending) and len(result) < limit:
            update = pending[index]
            if self._is_allowed(update):
                result.append(update)
                index += 1
            else:
                del pending[index]
        return result

    def first(self) -> Update | None:
        found = self.take(1)
        return found[0] if found else None

    def pop_first(self, update_id: int) -> None:
        if self._pending and self._pending[0]["update_id"] == update_id:
            self._pending.popleft()

    def terminate_poller(self, reason: str = CONFLICT_SET_WEBHOOK) -> None:
        if self._poller is not None:
            self._poller.conflict = reason
            self._poller = None
            self._notify()

    def close(self) -> None:
        """Wakes every waiter (server shutdown)."""
        self.closed = True
        self._notify()

    async def wait_change(self, seconds: float | None = None) -> None:
        event = self._changed
        if seconds is None:
            await event.wait()
            return
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass

    async def get_updates(self, offset: int | None, limit: int, seconds: float) -> list[Update]:
        if offset is not None:
            self.confirm(offset)
        self.terminate_poller(CONFLICT_POLLING)
        found = self.take(limit)
        if found or seconds <= 0 or self.closed:
            return found
        poller = _Poller()
        self._poller = poller
        deadline = time.monotonic() + seconds
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                await self.wait_change(remaining)
                if poller.conflict is not None:
                    raise ApiError(409, poller.conflict)
                found = self.take(limit)
                if found or self.closed:
                    return found
        finally:
            if self._poller is poller:
                self._poller = None
