"""An in-memory Transport: what the bot sent, per chat, with scriptable failures."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobs.transport import BotIdentity, TransportError, Upload
from services.messages import Document, Edit, Photo, Text


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    kind: str
    text: str
    buttons: list[list[tuple[str, str | None]]] = field(default_factory=list)
    request: list[list[tuple[str, str]]] = field(default_factory=list)
    remove_keyboard: bool = False
    upload: Upload | None = None
    file_id: str | None = None
    edits: int = 0

    def payloads(self) -> list[str]:
        return [payload for row in self.buttons for _, payload in row if payload]

    def button(self, label_part: str) -> str:
        """The payload of the first button whose label contains ``label_part``."""
        for row in self.buttons:
            for label, payload in row:
                if label_part in label and payload:
                    return payload
        raise AssertionError(f"no button {label_part!r} in {self.buttons}")


def _buttons(rows: Any) -> list[list[tuple[str, str | None]]]:
    return [[(b.text, b.payload) for b in row] for row in rows]


class FakeTransport:
    def __init__(self, username: str = "gridbot_test_bot") -> None:
        self.identity = BotIdentity(42, username, "Gridbot")
        self.chats: dict[int, list[SentMessage]] = defaultdict(list)
        self.callbacks: list[tuple[str, str | None, bool]] = []
        self.commands: dict[tuple[int | None, str | None], list[tuple[str, str]]] = {}
        self.failures: dict[str, deque[Exception]] = defaultdict(deque)
        self.calls: list[str] = []
        self._next_id = 100

    def fail_next(self, method: str, *errors: Exception) -> None:
        self.failures[method].extend(errors)

    def _check(self, method: str) -> None:
        self.calls.append(method)
        if self.failures[method]:
            raise self.failures[method].popleft()

    def _new(self, chat_id: int, **fields: Any) -> int:
        self._next_id += 1
        self.chats[chat_id].append(SentMessage(chat_id, self._next_id, **fields))
        return self._next_id

    async def get_me(self) -> BotIdentity:
        return self.identity

    async def send_text(self, chat_id: int, message: Text) -> int:
        self._check("send_text")
        return self._new(
            chat_id,
            kind="text",
            text=message.text,
            buttons=_buttons(message.buttons),
            request=[[(b.text, b.request) for b in row] for row in message.request],
            remove_keyboard=message.remove_keyboard,
        )

    async def send_photo(self, chat_id: int, message: Photo, upload: Upload | None) -> int:
        self._check("send_photo")
        return self._new(
            chat_id,
            kind="photo",
            text=message.caption,
            buttons=_buttons(message.buttons),
            upload=upload,
            file_id=message.file_id,
        )

    async def send_document(self, chat_id: int, message: Document, upload: Upload) -> int:
        self._check("send_document")
        return self._new(chat_id, kind="document", text=message.caption, upload=upload)

    async def edit_text(self, chat_id: int, message_id: int, message: Edit) -> None:
        self._check("edit_text")
        for sent in self.chats[chat_id]:
            if sent.message_id == message_id:
                sent.text = message.text
                sent.buttons = _buttons(message.buttons)
                sent.edits += 1
                return
        raise TransportError("Bad Request: message to edit not found")

    async def answer_callback(self, callback_id: str, text: str | None, alert: bool) -> None:
        self._check("answer_callback")
        self.callbacks.append((callback_id, text, alert))

    async def set_commands(
        self, chat_id: int | None, commands: Sequence[tuple[str, str]], language_code: str | None
    ) -> None:
        self._check("set_commands")
        self.commands[(chat_id, language_code)] = list(commands)
