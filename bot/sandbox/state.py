"""In-memory state of the sandbox: users and chats, message history, updates, change log.

Everything here is synchronous except the waits; request handlers validate input and then
apply a change in one step, so a cancelled request never leaves a half-applied change.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from .commands import CommandStore
from .errors import BLOCKED, CHAT_NOT_FOUND, QUERY_TOO_OLD, ApiError, ControlError
from .faults import FailRules, FloodControl, Holds
from .files import FileStore, StoredFile, Upload
from .formatting import command_entities
from .markup import Markup, inline_callback_data, inline_only
from .model import CallbackAnswer, CallbackQueryRecord, Chat, DemoUser, Json, StoredMessage
from .updates import UpdateQueue

CALLBACK_QUERY_TTL = 15 * 60.0
_LOG_SIZE = 50_000

LogEntry = tuple[int, str, int, int]  # (seq, kind, chat_id, message_id or answer index)


@dataclass
class WebhookConfig:
    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


def _bot_id(token: str) -> int:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 123456


class SandboxState:
    def __init__(
        self,
        *,
        token: str,
        bot_username: str,
        bot_first_name: str,
        demo_users: Sequence[DemoUser] = (),
    ) -> None:
        self.token = token
        self.bot_id = _bot_id(token)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.demo_users = tuple(demo_users)
        self.updates = UpdateQueue()
        self.files = FileStore()
        self.commands = CommandStore()
        self.fails = FailRules()
        self.holds = Holds()
        self.flood: FloodControl | None = None
        self.webhook = WebhookConfig()
        self.chats: dict[int, Chat] = {}
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.calls: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self.messages_from_bot = 0
        self.seq = 0
        self._log: deque[LogEntry] = deque()
        self._log_floor = 0
        self._changed = asyncio.Event()
        for user in self.demo_users:
            self.upsert_user(user)

    # -- identity --------------------------------------------------------------------------
    def bot_user(self) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def get_me(self) -> Json:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # -- change log ------------------------------------------------------------------------
    def _log_change(self, kind: str, chat_id: int = 0, ref: int = 0) -> int:
        self.seq += 1
        if len(self._log) >= _LOG_SIZE:
            self._log_floor = self._log.popleft()[0]
        self._log.append((self.seq, kind, chat_id, ref))
        self._changed.set()
        self._changed = asyncio.Event()
        return self.seq

    def changes_since(self, after_seq: int) -> list[LogEntry] | None:
        """Log entries newer than after_seq, oldest first; None if the log no longer has them."""
        if after_seq < self._log_floor:
            return None
        found: list[LogEntry] = []
        for entry in reversed(self._log):
            if entry[0] <= after_seq:
                break
            found.append(entry)
        found.reverse()
        return found

    async def wait_change(self, seconds: float) -> None:
        event = self._changed
        try:
            async with asyncio.timeout(max(seconds, 0)):
                await event.wait()
        except TimeoutError:
            pass

    def wake_all(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self.updates.close()

    # -- users and chats -------------------------------------------------------------------
    def upsert_user(self, user: DemoUser) -> Chat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = Chat(user=user, chat_instance=str(secrets.randbits(62)))
            self.chats[user.id] = chat
        else:
            chat.user = user
        self._log_change("users", user.id)
        return chat

    def users(self) -> list[DemoUser]:
        return [chat.user for chat in self.chats.values()]

    def chat_for_bot(self, chat_id: int) -> Chat:
        """The chat a bot method addresses: 400 if unknown, 403 if the user blocked the bot."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, CHAT_NOT_FOUND)
        if chat.blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def chat_for_user(self, user_id: int) -> Chat:
        chat = self.chats.get(user_id)
        if chat is None:
            raise ControlError(f"unknown user {user_id}; create it with POST /_sandbox/users", 404)
        return chat

    def set_blocked(self, user_id: int, blocked: bool) -> None:
        self.chat_for_user(user_id).blocked = blocked

    # -- messages --------------------------------------------------------------------------
    def add_message(
        self,
        chat: Chat,
        *,
        from_bot: bool,
        fields: Json,
        markup: Markup | None = None,
        files: list[StoredFile] | None = None,
    ) -> StoredMessage:
        message_id = len(chat.messages) + 1
        api: Json = {
            "message_id": message_id,
            "from": self.bot_user() if from_bot else chat.user.api_user(),
            "chat": chat.user.api_chat(),
            "date": int(time.time()),
            **fields,
        }
        shown = inline_only(markup)
        if shown is not None:
            api["reply_markup"] = shown
        message = StoredMessage(chat.id, message_id, from_bot, api, markup, files or [])
        chat.messages.append(message)
        if from_bot:
            self.messages_from_bot += 1
            chat.action = None
        message.seq = self._log_change("message", chat.id, message_id)
        return message

    def edit_message(self, message: StoredMessage, fields: Json, markup: Markup | None) -> None:
        """Replaces content fields (None removes a field); never mutates the old api dict."""
        api = {k: v for k, v in message.api.items() if k not in fields and k != "reply_markup"}
        api.update({k: v for k, v in fields.items() if v is not None})
        api["edit_date"] = int(time.time())
        shown = inline_only(markup)
        if shown is not None:
            api["reply_markup"] = shown
        message.api = api
        message.markup = markup
        message.edit_count += 1
        message.seq = self._log_change("message", message.chat_id, message.message_id)

    def delete_message(self, message: StoredMessage) -> None:
        message.deleted = True
        message.seq = self._log_change("message", message.chat_id, message.message_id)

    def set_action(self, chat: Chat, action: str) -> None:
        chat.action = action
        self._log_change("action", chat.id)

    def bot_messages_after(self, chat_id: int | None, after_message_id: int) -> list[StoredMessage]:
        chats = self.chats.values() if chat_id is None else [self.chats[chat_id]]
        found: list[StoredMessage] = []
        for chat in chats:
            found.extend(
                m for m in chat.messages[max(after_message_id, 0) :] if m.from_bot and not m.deleted
            )
        return found

    async def wait_bot_messages(
        self, chat_id: int | None, after_message_id: int, seconds: float
    ) -> list[StoredMessage]:
        if chat_id is not None and chat_id not in self.chats:
            raise ControlError(f"unknown chat {chat_id}", 404)
        deadline = time.monotonic() + seconds
        while True:
            found = self.bot_messages_after(chat_id, after_message_id)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0 or self.updates.closed:
                return found
            await self.wait_change(remaining)

    # -- user actions (control API) --------------------------------------------------------
    def _user_message(
        self, user_id: int, fields: Json, files: list[StoredFile] | None = None
    ) -> tuple[int, int]:
        chat = self.chat_for_user(user_id)
        message = self.add_message(chat, from_bot=False, fields=fields, files=files)
        update_id = self.updates.push({"message": message.api})
        return update_id, message.message_id

    def user_text(self, user_id: int, text: str) -> tuple[int, int]:
        if not text:
            raise ControlError("text must not be empty")
        fields: Json = {"text": text}
        entities = command_entities(text)
        if entities:
            fields["entities"] = entities
        return self._user_message(user_id, fields)

    def user_photo(
        self, user_id: int, upload: Upload | None, caption: str | None
    ) -> tuple[int, int]:
        self.chat_for_user(user_id)
        if upload is None:
            sizes = self.files.add_sample_photo(seed=user_id + self.seq)
        else:
            try:
                sizes = self.files.add_photo(upload.data)
            except ApiError:
                raise ControlError(
                    "the uploaded file is not a PNG, JPEG, GIF or WebP image"
                ) from None
        fields: Json = {"photo": [size.photo_size() for size in sizes]}
        if caption:
            fields["caption"] = caption
        return self._user_message(user_id, fields, sizes)

    def user_document(
        self, user_id: int, upload: Upload | None, file_name: str | None
    ) -> tuple[int, int]:
        self.chat_for_user(user_id)
        if upload is None:
            name = file_name or "notes.txt"
            stored = self.files.add_document(f"Sample document {name}\n".encode(), name)
        else:
            stored = self.files.add_document(
                upload.data, file_name or upload.filename or "file", upload.content_type
            )
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.file_name,
            "mime_type": stored.mime_type,
            "file_size": len(stored.data),
        }
        return self._user_message(user_id, {"document": document}, [stored])

    def user_location(self, user_id: int, latitude: float, longitude: float) -> tuple[int, int]:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ControlError("latitude must be in [-90, 90] and longitude in [-180, 180]")
        return self._user_message(
            user_id, {"location": {"latitude": latitude, "longitude": longitude}}
        )

    def user_contact(
        self, user_id: int, phone_number: str, first_name: str | None, contact_user_id: int | None
    ) -> tuple[int, int]:
        chat = self.chat_for_user(user_id)
        if not phone_number:
            raise ControlError("phone_number must not be empty")
        contact: Json = {
            "phone_number": phone_number,
            "first_name": first_name or chat.user.first_name,
            "user_id": user_id if contact_user_id is None else contact_user_id,
        }
        if first_name is None and chat.user.last_name:
            contact["last_name"] = chat.user.last_name
        return self._user_message(user_id, {"contact": contact})

    def user_sticker(self, user_id: int, emoji: str = "👍") -> tuple[int, int]:
        self.chat_for_user(user_id)
        stored = self.files.add_sticker(seed=user_id)
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.data),
        }
        return self._user_message(user_id, {"sticker": sticker}, [stored])

    def press(
        self, user_id: int, message_id: int, data: str, forge: bool = False
    ) -> tuple[int, str]:
        chat = self.chat_for_user(user_id)
        message = chat.get(message_id)
        if not forge:
            if message is None or not message.from_bot:
                raise ControlError(f"no bot message {message_id} in chat {user_id}")
            if data not in inline_callback_data(message.markup):
                raise ControlError(f"message {message_id} has no inline button with that data")
        query_id = str(secrets.randbits(63))
        self.callback_queries[query_id] = CallbackQueryRecord(
            query_id, chat.id, message_id, time.monotonic()
        )
        shown: Json = (
            message.api
            if message is not None
            else {"chat": chat.user.api_chat(), "message_id": message_id, "date": 0}
        )
        update = {
            "callback_query": {
                "id": query_id,
                "from": chat.user.api_user(),
                "message": shown,
                "chat_instance": chat.chat_instance,
                "data": data,
            }
        }
        return self.updates.push(update), query_id

    def answer_callback(
        self, query_id: str, text: str | None, show_alert: bool, url: str | None
    ) -> None:
        record = self.callback_queries.get(query_id)
        if (
            record is None
            or record.answered
            or time.monotonic() - record.created > CALLBACK_QUERY_TTL
        ):
            raise ApiError(400, QUERY_TOO_OLD)
        record.answered = True
        chat = self.chats.get(record.chat_id)
        if chat is None:
            return
        seq = self._log_change("answer", chat.id, len(chat.answers))
        chat.answers.append(
            CallbackAnswer(query_id, chat.id, record.message_id, text, show_alert, url, seq)
        )

    def inject(self, update: Json) -> int:
        if not update or not any(key != "update_id" for key in update):
            raise ControlError("update must contain an update type such as 'message'")
        return self.updates.push(dict(update))

    # -- stats and reset -------------------------------------------------------------------
    def stats(self) -> Json:
        return {
            "calls": dict(self.calls),
            "messages_from_bot": self.messages_from_bot,
            "updates_total": self.updates.total,
            "updates_pending": self.updates.pending_count,
            "errors": {str(code): count for code, count in self.errors.items()},
            "held": self.holds.waiting,
            "held_discarded": self.holds.discarded,
        }

    def reset(self) -> None:
        """Forget everything except the bot identity; update ids keep increasing so a running
        bot's offset stays valid. Configured demo users are created again."""
        self.updates.clear()
        self.updates.total = 0
        self.files.clear()
        self.commands.clear()
        self.fails.clear()
        self.holds.release()
        self.holds.discarded = 0
        self.flood = None
        self.webhook = WebhookConfig()
        self.chats.clear()
        self.callback_queries.clear()
        self.calls.clear()
        self.errors.clear()
        self.messages_from_bot = 0
        self._log_change("reset")
        for user in self.demo_users:
            self.upsert_user(user)
