"""Bot API routes: /bot{token}/{method} and /file/bot{token}/{path}, validated like Telegram."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import errors as E
from .commands import parse_commands, parse_language, parse_scope
from .connection import client_gone
from .errors import ApiError, bad_request
from .faults import FloodControl
from .files import StoredFile
from .formatting import check_length, format_text
from .jsonio import json_response
from .markup import Markup, inline_only, parse_reply_markup
from .model import Chat, Json, StoredMessage
from .params import Params, read_params
from .state import SandboxState, WebhookConfig
from .webhook import WebhookManager

Handler = Callable[[Params], Awaitable[Any]]
logger = logging.getLogger(__name__)

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Discarded(Exception):
    """A held request whose client went away: it must never be applied."""


class BotApi:
    def __init__(self, state: SandboxState, webhooks: WebhookManager) -> None:
        self.state = state
        self.webhooks = webhooks
        self._profile: dict[str, str] = {}
        handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "logOut": self.ok,
            "close": self.ok,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "sendMessage": self.send_message,
            "sendPhoto": self.send_photo,
            "sendDocument": self.send_document,
            "sendLocation": self.send_location,
            "sendChatAction": self.send_chat_action,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "getFile": self.get_file,
            "getChat": self.get_chat,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMyName": self.set_profile("name"),
            "getMyName": self.get_profile("name"),
            "setMyDescription": self.set_profile("description"),
            "getMyDescription": self.get_profile("description"),
            "setMyShortDescription": self.set_profile("short_description"),
            "getMyShortDescription": self.get_profile("short_description"),
            "setChatMenuButton": self.ok,
            "getChatMenuButton": self.get_chat_menu_button,
        }
        self.methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/bot{token}/{method}", self.handle),
            web.get("/file/bot{token}/{path:.+}", self.download),
        ]

    # -- dispatch --------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        try:
            result = await self._dispatch(request)
        except ApiError as error:
            state.errors[error.code] += 1
            return json_response(error.payload(), status=error.code)
        except _Discarded:
            return web.Response(status=499)
        except ConnectionError:
            raise  # the client went away while sending its request
        except Exception as error:  # a sandbox bug must still answer in the Bot API format
            logger.exception("sandbox error in %s", request.path)
            state.errors[500] += 1
            failure = ApiError(500, f"Internal Server Error: {type(error).__name__}")
            return json_response(failure.payload(), status=500)
        return json_response({"ok": True, "result": result})

    async def _dispatch(self, request: web.Request) -> Any:
        state = self.state
        if request.match_info["token"] != state.token:
            raise ApiError(401, E.UNAUTHORIZED)
        lower = request.match_info["method"].lower()
        entry = self.methods.get(lower)
        if entry is None:
            raise ApiError(404, E.METHOD_NOT_FOUND)
        name, handler = entry
        state.calls[name] += 1
        try:
            params = await read_params(request)
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        rule = state.fails.take(lower)
        if rule is not None:
            raise rule.error()
        if state.holds.holds(lower):
            await self._hold(request)
        return await handler(params)

    async def _hold(self, request: web.Request) -> None:
        holds = self.state.holds
        try:
            await holds.wait()
        except asyncio.CancelledError:
            holds.discarded += 1  # aiohttp cancels the handler when the client disconnects
            raise
        if client_gone(request):
            holds.discarded += 1
            raise _Discarded

    def _flood(self, chat_id: int | None) -> None:
        flood: FloodControl | None = self.state.flood
        if flood is not None:
            flood.check(chat_id, time.monotonic())

    async def download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.state.token:
            return json_response(ApiError(401, E.UNAUTHORIZED).payload(), status=401)
        stored = self.state.files.by_path(request.match_info["path"])
        if stored is None:
            return json_response(ApiError(404, E.FILE_NOT_FOUND).payload(), status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type)

    # -- simple methods --------------------------------------------------------------------
    async def ok(self, p: Params) -> bool:
        return True

    async def get_me(self, p: Params) -> Json:
        return self.state.get_me()

    def set_profile(self, key: str) -> Handler:
        async def handler(p: Params) -> bool:
            self._profile[key] = p.get_str(key) or ""
            return True

        return handler

    def get_profile(self, key: str) -> Handler:
        async def handler(p: Params) -> Json:
            default = self.state.bot_first_name if key == "name" else ""
            return {key: self._profile.get(key, default)}

        return handler

    async def get_chat_menu_button(self, p: Params) -> Json:
        return {"type": "commands"}

    async def get_chat(self, p: Params) -> Json:
        chat = self.state.chats.get(p.chat_id())
        if chat is None:
            raise ApiError(400, E.CHAT_NOT_FOUND)
        gifts = (
            "unlimited_gifts",
            "limited_gifts",
            "unique_gifts",
            "premium_subscription",
            "gifts_from_channels",
        )
        return {
            **chat.user.api_chat(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(gifts, False),
        }

    # -- updates and webhooks --------------------------------------------------------------
    async def get_updates(self, p: Params) -> list[Json]:
        if self.state.webhook.url:
            raise ApiError(409, E.CONFLICT_WEBHOOK)
        limit = min(max(p.get_int("limit", 100) or 100, 1), 100)
        timeout = max(p.get_float("timeout", 0.0) or 0.0, 0.0)
        updates = self.state.updates
        updates.set_allowed(p.str_list("allowed_updates"))
        return await updates.get_updates(p.get_int("offset"), limit, timeout)

    async def set_webhook(self, p: Params) -> bool:
        url = (p.get_str("url") or "").strip()
        if not url:
            return await self.delete_webhook(p)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token") or None
        if secret is not None and (len(secret) > 256 or not set(secret) <= _SECRET_CHARS):
            raise bad_request("secret token contains unallowed characters")
        updates = self.state.updates
        if p.get_bool("drop_pending_updates"):
            updates.confirm(updates.next_id)
        updates.set_allowed(p.str_list("allowed_updates"))
        updates.terminate_poller()
        max_connections = p.get_int("max_connections", 40) or 40
        self.state.webhook = WebhookConfig(url, secret, max_connections)
        self.webhooks.start()
        return True

    async def delete_webhook(self, p: Params) -> bool:
        self.webhooks.stop()
        self.state.webhook = WebhookConfig()
        if p.get_bool("drop_pending_updates"):
            self.state.updates.confirm(self.state.updates.next_id)
        return True

    async def get_webhook_info(self, p: Params) -> Json:
        hook = self.state.webhook
        info: Json = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": self.state.updates.pending_count,
        }
        if hook.url:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if self.state.updates.allowed is not None:
                info["allowed_updates"] = sorted(self.state.updates.allowed)
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        return info

    # -- sending ---------------------------------------------------------------------------
    def _reply_to(self, chat: Chat, p: Params) -> Json | None:
        params = p.get_json("reply_parameters")
        message_id = p.get_int("reply_to_message_id")
        allow_missing = p.get_bool("allow_sending_without_reply")
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow_missing = bool(params.get("allow_sending_without_reply"))
        if not message_id:
            return None
        target = chat.get(int(message_id))
        if target is None:
            if allow_missing:
                return None
            raise ApiError(400, E.REPLY_NOT_FOUND)
        return {k: v for k, v in target.api.items() if k != "reply_to_message"}

    def _caption(self, p: Params) -> Json:
        raw = p.get_str("caption") or ""
        caption, entities = format_text(raw, p.get_str("parse_mode"), p.raw("caption_entities"))
        check_length(caption, 1024, E.CAPTION_TOO_LONG)
        fields: Json = {}
        if caption:
            fields["caption"] = caption
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _text(self, p: Params) -> Json:
        text, entities = format_text(
            p.get_str("text") or "", p.get_str("parse_mode"), p.raw("entities")
        )
        if not text:
            raise ApiError(400, E.TEXT_EMPTY)
        check_length(text, 4096, E.TEXT_TOO_LONG)
        return {"text": text, "entities": entities or None}

    def _send(
        self,
        p: Params,
        chat: Chat,
        fields: Json,
        markup: Markup | None,
        files: list[StoredFile] | None = None,
    ) -> Json:
        reply = self._reply_to(chat, p)
        self._flood(chat.id)
        if reply is not None:
            fields["reply_to_message"] = reply
        clean = {k: v for k, v in fields.items() if v is not None}
        message = self.state.add_message(
            chat, from_bot=True, fields=clean, markup=markup, files=files
        )
        return message.api

    async def send_message(self, p: Params) -> Json:
        chat_id = p.chat_id()
        fields = self._text(p)
        markup = parse_reply_markup(p.raw("reply_markup"))
        chat = self.state.chat_for_bot(chat_id)
        return self._send(p, chat, fields, markup)

    async def send_photo(self, p: Params) -> Json:
        chat_id = p.chat_id()
        fields = self._caption(p)
        markup = parse_reply_markup(p.raw("reply_markup"))
        chat = self.state.chat_for_bot(chat_id)
        resolved = self.state.files.resolve(p.file("photo"), "photo")
        sizes = resolved if isinstance(resolved, list) else [resolved]
        fields["photo"] = [size.photo_size() for size in sizes]
        return self._send(p, chat, fields, markup, sizes)

    async def send_document(self, p: Params) -> Json:
        chat_id = p.chat_id()
        fields = self._caption(p)
        markup = parse_reply_markup(p.raw("reply_markup"))
        chat = self.state.chat_for_bot(chat_id)
        resolved = self.state.files.resolve(p.file("document"), "document")
        stored = resolved[-1] if isinstance(resolved, list) else resolved
        fields["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": stored.file_name,
            "mime_type": stored.mime_type,
            "file_size": len(stored.data),
        }
        return self._send(p, chat, fields, markup, [stored])

    async def send_location(self, p: Params) -> Json:
        chat_id = p.chat_id()
        latitude, longitude = p.get_float("latitude"), p.get_float("longitude")
        if latitude is None or not -90 <= latitude <= 90:
            raise bad_request("wrong latitude specified")
        if longitude is None or not -180 <= longitude <= 180:
            raise bad_request("wrong longitude specified")
        markup = parse_reply_markup(p.raw("reply_markup"))
        chat = self.state.chat_for_bot(chat_id)
        location = {"latitude": latitude, "longitude": longitude}
        return self._send(p, chat, {"location": location}, markup)

    async def send_chat_action(self, p: Params) -> bool:
        chat_id = p.chat_id()
        action = p.get_str("action") or ""
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, E.WRONG_ACTION)
        self.state.set_action(self.state.chat_for_bot(chat_id), action)
        return True

    # -- editing ---------------------------------------------------------------------------
    def _message_to_edit(self, p: Params) -> StoredMessage:
        if p.get_str("inline_message_id"):
            raise ApiError(400, E.MESSAGE_TO_EDIT_NOT_FOUND)  # no inline mode here
        chat_id = p.chat_id()
        message_id = p.get_int("message_id")
        if not message_id:
            raise ApiError(400, E.MESSAGE_ID_MISSING)
        chat = self.state.chat_for_bot(chat_id)
        message = chat.get(message_id)
        if message is None:
            raise ApiError(400, E.MESSAGE_TO_EDIT_NOT_FOUND)
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    @staticmethod
    def _inline_markup(p: Params) -> Markup | None:
        markup = parse_reply_markup(p.raw("reply_markup"))
        if markup is not None and inline_only(markup) is None:
            raise bad_request("inline keyboard expected")
        return markup

    def _edit(self, message: StoredMessage, fields: Json, markup: Markup | None) -> Json:
        api = message.api
        unchanged = all(api.get(key) == value for key, value in fields.items())
        if unchanged and api.get("reply_markup") == inline_only(markup):
            raise ApiError(400, E.NOT_MODIFIED)
        self._flood(message.chat_id)
        self.state.edit_message(message, fields, markup)
        return message.api

    async def edit_message_text(self, p: Params) -> Json:
        fields = self._text(p)
        markup = self._inline_markup(p)
        message = self._message_to_edit(p)
        if "text" not in message.api:
            raise ApiError(400, E.NO_TEXT_TO_EDIT)
        return self._edit(message, fields, markup)

    async def edit_message_caption(self, p: Params) -> Json:
        fields = self._caption(p)
        fields.setdefault("caption", None)
        fields.setdefault("caption_entities", None)
        markup = self._inline_markup(p)
        message = self._message_to_edit(p)
        if "text" in message.api:
            raise bad_request("there is no caption in the message to edit")
        return self._edit(message, fields, markup)

    async def edit_message_reply_markup(self, p: Params) -> Json:
        markup = self._inline_markup(p)
        message = self._message_to_edit(p)
        return self._edit(message, {}, markup)

    async def delete_message(self, p: Params) -> bool:
        chat_id = p.chat_id()
        message_id = p.get_int("message_id")
        if not message_id:
            raise ApiError(400, E.MESSAGE_ID_MISSING)
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, E.CHAT_NOT_FOUND)
        message = chat.get(message_id)
        if message is None:
            raise ApiError(400, E.MESSAGE_TO_DELETE_NOT_FOUND)
        self.state.delete_message(message)
        return True

    async def answer_callback_query(self, p: Params) -> bool:
        text = p.get_str("text") or None
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.state.answer_callback(
            p.get_str("callback_query_id") or "",
            text,
            p.get_bool("show_alert"),
            p.get_str("url") or None,
        )
        return True

    # -- files -----------------------------------------------------------------------------
    async def get_file(self, p: Params) -> Json:
        file_id = p.get_str("file_id")
        if not file_id:
            raise bad_request("file_id is empty")
        stored = self.state.files.get(file_id)
        if stored is None:
            raise ApiError(400, E.INVALID_FILE_ID)
        return stored.api_file()

    # -- commands --------------------------------------------------------------------------
    def _scope_and_language(self, p: Params) -> tuple[Any, str]:
        scope = parse_scope(p.raw("scope"))
        language = parse_language(p.get_str("language_code"))
        if scope[1] is not None and scope[1] not in self.state.chats:
            raise ApiError(400, E.CHAT_NOT_FOUND)
        return scope, language

    async def set_my_commands(self, p: Params) -> bool:
        raw = p.raw("commands")
        if raw is None:
            raise bad_request('parameter "commands" is required')
        commands = parse_commands(raw)
        scope, language = self._scope_and_language(p)
        self.state.commands.set(scope, language, commands)
        return True

    async def get_my_commands(self, p: Params) -> list[dict[str, str]]:
        scope, language = self._scope_and_language(p)
        return self.state.commands.get(scope, language)

    async def delete_my_commands(self, p: Params) -> bool:
        scope, language = self._scope_and_language(p)
        self.state.commands.delete(scope, language)
        return True
