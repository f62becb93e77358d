"""Plain data records of the sandbox: users, chats, messages, callback queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .files import StoredFile
from .markup import Markup

Json = dict[str, Any]


@dataclass(frozen=True)
class DemoUser:
    id: int  # Telegram user id == private chat id
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"
    phone_number: str | None = None  # used when the page answers a request_contact button
    label: str | None = None  # shown on the web page, e.g. "居民 Resident"

    def api_user(self) -> Json:
        user: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                user[key] = value
        return user

    def api_chat(self) -> Json:
        chat: Json = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    def control_json(self) -> Json:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
            "phone_number": self.phone_number,
            "label": self.label,
        }


@dataclass
class StoredMessage:
    """One message of a chat, both directions. `api` is the Telegram Message object."""

    chat_id: int
    message_id: int
    from_bot: bool
    api: Json
    markup: Markup | None = None  # any markup the bot attached, including reply keyboards
    files: list[StoredFile] = field(default_factory=list)
    edit_count: int = 0
    deleted: bool = False
    seq: int = 0  # global change sequence number of the latest change


@dataclass
class CallbackAnswer:
    callback_query_id: str
    chat_id: int
    message_id: int | None
    text: str | None
    show_alert: bool
    url: str | None
    seq: int

    def control_json(self) -> Json:
        return {
            "callback_query_id": self.callback_query_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "seq": self.seq,
        }


@dataclass
class CallbackQueryRecord:
    query_id: str
    chat_id: int
    message_id: int | None
    created: float  # time.monotonic()
    answered: bool = False


@dataclass
class Chat:
    user: DemoUser
    chat_instance: str
    messages: list[StoredMessage] = field(default_factory=list)  # index == message_id - 1
    answers: list[CallbackAnswer] = field(default_factory=list)
    blocked: bool = False
    action: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    def get(self, message_id: int) -> StoredMessage | None:
        if 1 <= message_id <= len(self.messages):
            message = self.messages[message_id - 1]
            return None if message.deleted else message
        return None
