"""Drive the real App (dispatcher, services, outbox, courier) in-process with a FakeTransport.

Updates are built as Bot API JSON and converted by the same code the runtimes use, so a flow
test covers everything except the HTTP hop (the end-to-end tests cover that)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import App, Handled
from bot.runtime.incoming import incoming_from_update
from tests.fakes import FakeTransport, SentMessage


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    language_code: str = "zh-hans"
    last_name: str | None = None

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.last_name:
            data["last_name"] = self.last_name
        return data


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness:
    def __init__(self, app: App, transport: FakeTransport, clock: Clock) -> None:
        self.app = app
        self.transport = transport
        self.clock = clock
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def _message(self, user: User, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": 0,
            "from": user.json(),
            "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
            **fields,
        }

    async def update(self, update: dict[str, Any]) -> Handled | None:
        update.setdefault("update_id", next(self._update_ids))
        incoming = incoming_from_update(update, self.app.bot.username, self.app.clock())
        if incoming is None:
            return None
        handled = await self.app.process(incoming)
        await self.app.courier.flush()
        return handled

    async def send(self, user: User, text: str) -> list[SentMessage]:
        """Send a text as ``user``; returns what the bot sent to that chat in answer."""
        before = len(self.transport.chats[user.id])
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else []
        )
        await self.update({"message": self._message(user, text=text, entities=entities)})
        return self.transport.chats[user.id][before:]

    async def send_kind(self, user: User, **fields: Any) -> list[SentMessage]:
        """Send a photo/location/contact/sticker/document message (Bot API fields)."""
        before = len(self.transport.chats[user.id])
        await self.update({"message": self._message(user, **fields)})
        return self.transport.chats[user.id][before:]

    async def press(
        self,
        user: User,
        payload: str,
        message: SentMessage | None = None,
        update_id: int | None = None,
    ) -> list[SentMessage]:
        before = len(self.transport.chats[user.id])
        query: dict[str, Any] = {
            "id": f"cb{next(self._update_ids)}",
            "from": user.json(),
            "chat_instance": "1",
            "data": payload,
        }
        if message is not None:
            query["message"] = {
                "message_id": message.message_id,
                "date": 0,
                "chat": {"id": user.id, "type": "private"},
                "text": message.text,
            }
        update: dict[str, Any] = {"callback_query": query}
        if update_id is not None:
            update["update_id"] = update_id
        await self.update(update)
        return self.transport.chats[user.id][before:]

    def last(self, user: User) -> SentMessage:
        return self.transport.chats[user.id][-1]

    def texts(self, user: User) -> list[str]:
        return [m.text for m in self.transport.chats[user.id]]

    def last_toast(self) -> str | None:
        return self.transport.callbacks[-1][1] if self.transport.callbacks else None
