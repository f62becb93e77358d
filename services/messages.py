"""Channel-neutral outgoing messages: what handlers reply and services notify.

They are plain values that serialise to an outbox payload; the runtime turns them into Bot API
calls. Limits are checked here, in bytes where the Bot API counts bytes, so that no runtime
library has to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64


class MessageTooLong(ValueError):
    pass


@dataclass(frozen=True)
class Button:
    """An inline button: a payload for the bot, or a URL to open."""

    text: str
    payload: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.payload is None) == (self.url is None):
            raise ValueError("a button has exactly one of payload and url")
        if self.payload is not None and not 1 <= len(self.payload.encode()) <= MAX_CALLBACK_BYTES:
            raise ValueError(f"button payload must be 1-64 bytes: {self.payload!r}")

    def to_json(self) -> dict[str, str]:
        return (
            {"text": self.text, "payload": self.payload}
            if self.payload
            else {"text": self.text, "url": self.url or ""}
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Button:
        return cls(text=data["text"], payload=data.get("payload"), url=data.get("url"))


@dataclass(frozen=True)
class RequestButton:
    """A reply-keyboard button that asks the client for a location, a contact or plain text."""

    text: str
    request: Literal["location", "contact", "text"] = "text"


Keyboard = Sequence[Sequence[Button]]


def _keyboard_json(rows: Keyboard) -> list[list[dict[str, str]]]:
    return [[button.to_json() for button in row] for row in rows if row]


def _keyboard_from(rows: list[list[dict[str, Any]]] | None) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(Button.from_json(b) for b in row) for row in rows or [])


@dataclass(frozen=True)
class Text:
    text: str
    buttons: Keyboard = ()
    request: Sequence[Sequence[RequestButton]] = ()
    remove_keyboard: bool = False

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("empty message text")


@dataclass(frozen=True)
class Photo:
    """A picture: an existing file id, or bytes stored as a blob (``blob_id``)."""

    file_id: str | None = None
    blob_id: int | None = None
    caption: str = ""
    buttons: Keyboard = ()

    def __post_init__(self) -> None:
        if (self.file_id is None) == (self.blob_id is None):
            raise ValueError("a photo has exactly one of file_id and blob_id")
        if len(self.caption) > MAX_CAPTION:
            raise MessageTooLong("caption over 1024 characters")


@dataclass(frozen=True)
class Document:
    blob_id: int
    caption: str = ""

    def __post_init__(self) -> None:
        if len(self.caption) > MAX_CAPTION:
            raise MessageTooLong("caption over 1024 characters")


@dataclass(frozen=True)
class Edit:
    """Replace the text and buttons of a message the bot sent earlier.

    ``message_id`` is the chat's message id when known (a pressed button's message); otherwise
    ``outbox_id`` names the outbox row whose delivered message is edited.
    """

    text: str
    buttons: Keyboard = ()
    message_id: int | None = None
    outbox_id: int | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("empty message text")
        if len(self.text) > MAX_TEXT:
            raise MessageTooLong("an edited text must fit one message")
        if (self.message_id is None) == (self.outbox_id is None):
            raise ValueError("an edit targets exactly one of message_id and outbox_id")


@dataclass(frozen=True)
class Commands:
    """The command menu for one chat: (command, description) pairs."""

    commands: Sequence[tuple[str, str]] = field(default_factory=tuple)


Message = Text | Photo | Document | Edit | Commands


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text at line breaks (or hard, for a single huge line) into sendable parts."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current.strip():
        parts.append(current)
    return [part.rstrip("\n") for part in parts if part.strip()]


def to_payload(message: Message) -> tuple[str, dict[str, Any]]:
    """The outbox ``kind`` and JSON payload of a message."""
    match message:
        case Text():
            payload: dict[str, Any] = {"text": message.text}
            if message.buttons:
                payload["buttons"] = _keyboard_json(message.buttons)
            if message.request:
                payload["request"] = [
                    [{"text": b.text, "request": b.request} for b in row] for row in message.request
                ]
            if message.remove_keyboard:
                payload["remove_keyboard"] = True
            return "text", payload
        case Photo():
            return "photo", {
                "file_id": message.file_id,
                "blob_id": message.blob_id,
                "caption": message.caption,
                "buttons": _keyboard_json(message.buttons),
            }
        case Document():
            return "document", {"blob_id": message.blob_id, "caption": message.caption}
        case Edit():
            return "edit", {
                "text": message.text,
                "buttons": _keyboard_json(message.buttons),
                "message_id": message.message_id,
                "outbox_id": message.outbox_id,
            }
        case Commands():
            return "commands", {"commands": [list(c) for c in message.commands]}
    raise TypeError(f"not a message: {message!r}")


def from_payload(kind: str, payload: dict[str, Any]) -> Message:
    if kind == "text":
        return Text(
            text=payload["text"],
            buttons=_keyboard_from(payload.get("buttons")),
            request=tuple(
                tuple(RequestButton(b["text"], b["request"]) for b in row)
                for row in payload.get("request") or []
            ),
            remove_keyboard=bool(payload.get("remove_keyboard")),
        )
    if kind == "photo":
        return Photo(
            file_id=payload.get("file_id"),
            blob_id=payload.get("blob_id"),
            caption=payload.get("caption") or "",
            buttons=_keyboard_from(payload.get("buttons")),
        )
    if kind == "document":
        return Document(blob_id=payload["blob_id"], caption=payload.get("caption") or "")
    if kind == "edit":
        return Edit(
            text=payload["text"],
            buttons=_keyboard_from(payload.get("buttons")),
            message_id=payload.get("message_id"),
            outbox_id=payload.get("outbox_id"),
        )
    if kind == "commands":
        return Commands(tuple((str(c), str(d)) for c, d in payload["commands"]))
    raise ValueError(f"unknown outbox kind {kind!r}")
