"""The neutral incoming event every runtime produces, whatever the messenger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.messages import Button, Commands, Document, Edit, Message, Photo, RequestButton, Text

__all__ = [
    "Button",
    "Commands",
    "Contact",
    "Document",
    "Edit",
    "FileRef",
    "Incoming",
    "Kind",
    "Location",
    "Message",
    "Photo",
    "RequestButton",
    "Text",
    "Toast",
]


class Kind(StrEnum):
    command = "command"
    text = "text"
    button = "button"
    photo = "photo"
    location = "location"
    contact = "contact"
    document = "document"
    sticker = "sticker"
    other = "other"


@dataclass(frozen=True)
class FileRef:
    file_id: str
    size: int | None = None
    name: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Contact:
    phone: str
    user_id: int | None
    name: str


@dataclass(frozen=True)
class Incoming:
    channel: str
    update_id: int
    user_id: int
    chat_id: int
    kind: Kind
    received_at: datetime
    chat_is_private: bool = True
    user_name: str = ""
    language_code: str | None = None
    text: str = ""
    """Message text, or a photo's caption."""
    command: str | None = None
    """Lower-case command without the slash or the bot's @username."""
    args: str = ""
    payload: str | None = None
    """Button payload (callback data)."""
    callback_id: str | None = None
    message_id: int | None = None
    """For a button: the message it sits on. Otherwise: the person's own message."""
    photo: FileRef | None = None
    document: FileRef | None = None
    location: Location | None = None
    contact: Contact | None = None


@dataclass(frozen=True)
class Toast:
    """A short notice on a pressed button (answerCallbackQuery); ``alert`` shows a dialog."""

    text: str
    alert: bool = False
