"""python-telegram-bot 22: a thin second runtime over the same handlers (long polling).

Only ``telegram.Bot`` is used: no Application, persistence or job queue — state lives in the
database and scheduling in ``jobs/``, exactly as with aiogram.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram import error as tg

from bot.settings import Settings
from jobs.transport import (
    BadRequest,
    Blocked,
    BotIdentity,
    NetworkError,
    NotModified,
    RetryAfter,
    TransportError,
    Unauthorized,
    Upload,
)
from services.messages import Button, Document, Edit, Keyboard, Photo, Text

T = TypeVar("T")
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def make_bot(settings: Settings) -> Bot:
    token = settings.require_token()
    if settings.telegram_api_url:
        base = settings.telegram_api_url
        return Bot(token, base_url=base + "/bot", base_file_url=base + "/file/bot")
    return Bot(token)


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except tg.RetryAfter as flood:
        after = flood.retry_after
        seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
        raise RetryAfter(seconds) from flood
    except tg.Forbidden as error:
        raise Blocked(error.message) from error
    except tg.BadRequest as error:  # before NetworkError: PTB derives it from NetworkError
        if "not modified" in error.message:
            raise NotModified(error.message) from error
        raise BadRequest(error.message) from error
    except tg.InvalidToken as error:
        raise Unauthorized(error.message) from error
    except (tg.NetworkError, tg.Conflict) as error:
        raise NetworkError(error.message) from error
    except tg.TelegramError as error:
        raise TransportError(error.message) from error


def _inline(rows: Keyboard) -> InlineKeyboardMarkup:
    def button(b: Button) -> InlineKeyboardButton:
        if b.payload is not None:
            return InlineKeyboardButton(b.text, callback_data=b.payload)
        return InlineKeyboardButton(b.text, url=b.url)

    return InlineKeyboardMarkup([[button(b) for b in row] for row in rows])


def _markup(message: Text) -> Markup | None:
    if message.buttons:
        return _inline(message.buttons)
    if message.request:
        return ReplyKeyboardMarkup(
            [
                [
                    KeyboardButton(
                        b.text,
                        request_location=b.request == "location" or None,
                        request_contact=b.request == "contact" or None,
                    )
                    for b in row
                ]
                for row in message.request
            ],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if message.remove_keyboard:
        return ReplyKeyboardRemove()
    return None


class PtbTransport:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def get_me(self) -> BotIdentity:
        me = await _call(self.bot.get_me())
        return BotIdentity(me.id, me.username or "", me.first_name)

    async def send_text(self, chat_id: int, message: Text) -> int:
        sent = await _call(
            self.bot.send_message(chat_id, message.text, reply_markup=_markup(message))
        )
        return sent.message_id

    async def send_photo(self, chat_id: int, message: Photo, upload: Upload | None) -> int:
        photo: str | InputFile = (
            InputFile(upload.data, filename=upload.filename) if upload else message.file_id or ""
        )
        sent = await _call(
            self.bot.send_photo(
                chat_id,
                photo,
                caption=message.caption or None,
                reply_markup=_inline(message.buttons) if message.buttons else None,
            )
        )
        return sent.message_id

    async def send_document(self, chat_id: int, message: Document, upload: Upload) -> int:
        sent = await _call(
            self.bot.send_document(
                chat_id,
                InputFile(upload.data, filename=upload.filename),
                caption=message.caption or None,
            )
        )
        return sent.message_id

    async def edit_text(self, chat_id: int, message_id: int, message: Edit) -> None:
        await _call(
            self.bot.edit_message_text(
                message.text,
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=_inline(message.buttons) if message.buttons else None,
            )
        )

    async def answer_callback(self, callback_id: str, text: str | None, alert: bool) -> None:
        await _call(self.bot.answer_callback_query(callback_id, text=text, show_alert=alert))

    async def set_commands(
        self, chat_id: int | None, commands: Sequence[tuple[str, str]], language_code: str | None
    ) -> None:
        scope = BotCommandScopeChat(chat_id) if chat_id is not None else BotCommandScopeDefault()
        items = [BotCommand(c, d) for c, d in commands]
        if items:
            await _call(self.bot.set_my_commands(items, scope=scope, language_code=language_code))
        else:
            await _call(self.bot.delete_my_commands(scope=scope, language_code=language_code))


class PtbSource:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, offset: int | None, timeout: int) -> Sequence[dict[str, Any]]:
        updates = await _call(
            self.bot.get_updates(
                offset=offset,
                timeout=timeout,
                allowed_updates=["message", "callback_query"],
                read_timeout=timeout + 10,
            )
        )
        return [u.to_dict() for u in updates]

    async def delete_webhook(self) -> None:
        await _call(self.bot.delete_webhook())


class PtbRuntime:
    name = "ptb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = make_bot(settings)
        self.transport = PtbTransport(self.bot)
        self.source = PtbSource(self.bot)

    async def start(self) -> None:
        await _call(self.bot.initialize())

    async def close(self) -> None:
        await self.bot.shutdown()
