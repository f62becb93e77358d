"""What the delivery engine needs from a messenger; each runtime adapter implements it and
turns its library's errors into the neutral ones below."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.messages import Document, Edit, Photo, Text


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    mime_type: str


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str
    first_name: str


class TransportError(Exception):
    pass


class RetryAfter(TransportError):
    """Flood limit (HTTP 429): the whole bot must wait ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class Blocked(TransportError):
    """HTTP 403: the person blocked the bot (or deleted their account)."""


class BadRequest(TransportError):
    """HTTP 400: this message will never be accepted as it is."""


class NotModified(BadRequest):
    """An edit that changes nothing; counts as delivered."""


class NetworkError(TransportError):
    """Connection trouble or a 5xx: worth trying again later."""


class Unauthorized(TransportError):
    """HTTP 401: the token is wrong."""


class Transport(Protocol):
    async def get_me(self) -> BotIdentity: ...

    async def send_text(self, chat_id: int, message: Text) -> int: ...

    async def send_photo(self, chat_id: int, message: Photo, upload: Upload | None) -> int: ...

    async def send_document(self, chat_id: int, message: Document, upload: Upload) -> int: ...

    async def edit_text(self, chat_id: int, message_id: int, message: Edit) -> None: ...

    async def answer_callback(self, callback_id: str, text: str | None, alert: bool) -> None: ...

    async def set_commands(
        self, chat_id: int | None, commands: Sequence[tuple[str, str]], language_code: str | None
    ) -> None: ...
