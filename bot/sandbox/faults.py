"""Fault injection: flood limits (429), scripted failures, blocked users and held requests."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass

from .errors import ApiError, default_description, too_many_requests


class FloodControl:
    """Sliding one-second windows, global and per chat, over successful send*/edit* calls."""

    def __init__(self, global_per_second: int | None, per_chat_per_second: int | None) -> None:
        self.global_per_second = global_per_second
        self.per_chat_per_second = per_chat_per_second
        self._global: deque[float] = deque()
        self._chats: dict[int, deque[float]] = {}

    @staticmethod
    def _retry_after(window: deque[float], limit: int | None, now: float) -> int | None:
        while window and window[0] <= now - 1.0:
            window.popleft()
        if limit is None or len(window) < limit:
            return None
        return max(1, math.ceil(window[-limit] + 1.0 - now))

    def check(self, chat_id: int | None, now: float) -> None:
        """Raises 429 when over a limit; otherwise records the call."""
        waits = [self._retry_after(self._global, self.global_per_second, now)]
        chat_window = None
        if chat_id is not None:
            chat_window = self._chats.setdefault(chat_id, deque())
            waits.append(self._retry_after(chat_window, self.per_chat_per_second, now))
        worst = max((w for w in waits if w is not None), default=None)
        if worst is not None:
            raise too_many_requests(worst)
        self._global.append(now)
        if chat_window is not None:
            chat_window.append(now)


@dataclass(frozen=True)
class FailRule:
    error_code: int
    description: str | None
    retry_after: int | None

    def error(self) -> ApiError:
        if self.error_code == 429:
            retry = self.retry_after if self.retry_after is not None else 1
            if self.description:
                return ApiError(429, self.description, retry)
            return too_many_requests(retry)
        return ApiError(
            self.error_code,
            self.description or default_description(self.error_code),
            self.retry_after,
        )


class FailRules:
    """Scripted failures: the next N calls of a method (case-insensitive, "*" = any) fail."""

    def __init__(self) -> None:
        self._rules: dict[str, deque[FailRule]] = {}

    def clear(self) -> None:
        self._rules.clear()

    def add(self, method: str, count: int, rule: FailRule) -> None:
        self._rules.setdefault(method.lower(), deque()).extend([rule] * count)

    def take(self, method_lower: str) -> FailRule | None:
        for key in (method_lower, "*"):
            queue = self._rules.get(key)
            if queue:
                return queue.popleft()
        return None

    def pending(self) -> dict[str, int]:
        return {method: len(queue) for method, queue in self._rules.items() if queue}


class Holds:
    """Requests of the held methods wait before being applied until release()."""

    def __init__(self) -> None:
        self.methods: frozenset[str] = frozenset()
        self.waiting = 0
        self.discarded = 0
        self._released = asyncio.Event()

    def holds(self, method_lower: str) -> bool:
        return method_lower in self.methods or "*" in self.methods

    def hold(self, methods: list[str]) -> None:
        self.methods = frozenset(m.lower() for m in methods)
        if self._released.is_set():
            self._released = asyncio.Event()

    def release(self) -> None:
        self.methods = frozenset()
        self._released.set()
        self._released = asyncio.Event()

    async def wait(self) -> None:
        event = self._released
        self.waiting += 1
        try:
            await event.wait()
        finally:
            self.waiting -= 1
