"""aiogram 3: the primary runtime (Bot API calls, long polling, webhook)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.app import App
from bot.runtime.incoming import incoming_from_update
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

log = logging.getLogger(__name__)
T = TypeVar("T")
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


class PinnedResponseSession(AiohttpSession):
    """aiogram parses every answer with ``Response[T]``; pydantic caches that generic model
    only weakly, so it was garbage-collected and rebuilt again and again (about an eighth of
    the bot's CPU time under load). Holding one reference per answer type keeps it cached."""

    _pinned: ClassVar[dict[Any, type[Response[Any]]]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[T], status_code: int, content: str
    ) -> Response[T]:
        returning = method.__returning__
        if returning not in self._pinned:
            self._pinned[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)


def make_bot(settings: Settings) -> Bot:
    token = settings.require_token()
    if settings.telegram_api_url:
        api = TelegramAPIServer.from_base(settings.telegram_api_url)
        return Bot(token, session=PinnedResponseSession(api=api))
    return Bot(token, session=PinnedResponseSession())


async def _call(request: Awaitable[T]) -> T:
    """Turn aiogram's exceptions into the neutral transport errors."""
    try:
        return await request
    except TelegramRetryAfter as flood:
        raise RetryAfter(float(flood.retry_after)) from flood
    except TelegramForbiddenError as error:
        raise Blocked(error.message) from error
    except TelegramBadRequest as error:
        if "message is not modified" in error.message:
            raise NotModified(error.message) from error
        raise BadRequest(error.message) from error
    except TelegramEntityTooLarge as error:
        raise BadRequest(error.message) from error
    except TelegramUnauthorizedError as error:
        raise Unauthorized(error.message) from error
    except (TelegramNetworkError, TelegramServerError, TelegramConflictError) as error:
        raise NetworkError(error.message) from error
    except TelegramNotFound as error:
        raise BadRequest(error.message) from error
    except TelegramAPIError as error:
        raise TransportError(error.message) from error


def _inline(rows: Keyboard) -> InlineKeyboardMarkup:
    def button(b: Button) -> InlineKeyboardButton:
        if b.payload is not None:
            return InlineKeyboardButton(text=b.text, callback_data=b.payload)
        return InlineKeyboardButton(text=b.text, url=b.url)

    return InlineKeyboardMarkup(inline_keyboard=[[button(b) for b in row] for row in rows])


def _markup(message: Text) -> Markup | None:
    if message.buttons:
        return _inline(message.buttons)
    if message.request:
        return ReplyKeyboardMarkup(
            keyboard=[
                [
                    KeyboardButton(
                        text=b.text,
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


class AiogramTransport:
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
        photo: str | BufferedInputFile = (
            BufferedInputFile(upload.data, upload.filename) if upload else message.file_id or ""
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
                BufferedInputFile(upload.data, upload.filename),
                caption=message.caption or None,
            )
        )
        return sent.message_id

    async def edit_text(self, chat_id: int, message_id: int, message: Edit) -> None:
        await _call(
            self.bot.edit_message_text(
                text=message.text,
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
        scope = (
            BotCommandScopeChat(chat_id=chat_id)
            if chat_id is not None
            else BotCommandScopeDefault()
        )
        items = [BotCommand(command=c, description=d) for c, d in commands]
        if items:
            await _call(self.bot.set_my_commands(items, scope=scope, language_code=language_code))
        else:
            await _call(self.bot.delete_my_commands(scope=scope, language_code=language_code))


class AiogramSource:
    """getUpdates through aiogram, handing on raw Bot API dicts."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, offset: int | None, timeout: int) -> Sequence[dict[str, Any]]:
        updates = await _call(
            self.bot.get_updates(
                offset=offset,
                timeout=timeout,
                allowed_updates=["message", "callback_query"],
                request_timeout=timeout + 10,
            )
        )
        return [u.model_dump(mode="json", by_alias=True, exclude_none=True) for u in updates]

    async def delete_webhook(self) -> None:
        await _call(self.bot.delete_webhook())


class AiogramRuntime:
    name = "aiogram"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = make_bot(settings)
        self.transport = AiogramTransport(self.bot)
        self.source = AiogramSource(self.bot)

    async def close(self) -> None:
        await self.bot.session.close()

    async def serve_webhook(self, app: App, stop: asyncio.Event) -> None:
        """Webhook with the secret-token header checked by aiogram (wrong → 401). Updates are
        handled before answering, so a failed transaction answers 5xx and Telegram retries."""
        settings = self.settings
        assert settings.webhook_url
        dispatcher = Dispatcher()

        async def on_event(event: object, event_update: Update) -> None:
            raw = event_update.model_dump(mode="json", by_alias=True, exclude_none=True)
            incoming = incoming_from_update(raw, app.bot.username, app.clock())
            if incoming is not None:
                await app.process(incoming)

        dispatcher.message.register(on_event)
        dispatcher.callback_query.register(on_event)
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        web_app = web.Application()
        path = urlparse(settings.webhook_url).path or "/"
        SimpleRequestHandler(
            dispatcher, self.bot, handle_in_background=False, secret_token=secret
        ).register(web_app, path=path)
        async with _serving(web_app, settings.webhook_host, settings.webhook_port):
            await _call(
                self.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=secret,
                    allowed_updates=["message", "callback_query"],
                )
            )
            log.info("webhook listening on %s%s", settings.webhook_listen, path)
            await stop.wait()


@asynccontextmanager
async def _serving(web_app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()
