"""Control API under /_sandbox/: act as users, inspect chats, inject faults, wait for the bot."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from .errors import ControlError
from .faults import FailRule, FloodControl
from .files import Upload
from .jsonio import json_response
from .model import DemoUser, Json
from .state import SandboxState
from .views import FILES_ROUTE, chat_messages, events_view, message_view
from .webhook import WebhookManager

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_WAIT = 60.0


def _ok(**fields: Any) -> web.Response:
    return json_response({"ok": True, **fields})


def _need(body: Json, key: str, kind: type) -> Any:
    value = body.get(key)
    if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if kind is float and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ControlError(f"'{key}' must be a {kind.__name__}")
    return value


def _opt(body: Json, key: str, kind: type) -> Any:
    return None if body.get(key) is None else _need(body, key, kind)


async def _json_body(request: web.Request) -> Json:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError("body must be JSON") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


async def _form_or_json(request: web.Request, file_field: str) -> tuple[Json, Upload | None]:
    """Multipart (from the page, with an optional file) or JSON."""
    if not request.content_type.startswith("multipart/"):
        return await _json_body(request), None
    fields: Json = {}
    upload = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            data = bytes(await part.read(decode=True))
            if part.name == file_field and data:
                upload = Upload(data, part.filename, part.headers.get("Content-Type"))
        else:
            fields[part.name] = await part.text()
    return fields, upload


def _query_int(request: web.Request, key: str, default: int | None) -> int | None:
    value = request.query.get(key, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"'{key}' must be an integer") from None


def _query_timeout(request: web.Request, default: float) -> float:
    try:
        return min(max(float(request.query.get("timeout", default)), 0.0), _MAX_WAIT)
    except ValueError:
        raise ControlError("'timeout' must be a number") from None


class Control:
    def __init__(
        self,
        state: SandboxState,
        webhooks: WebhookManager,
        quick_texts: Mapping[int, Sequence[tuple[str, str]]],
    ) -> None:
        self.state = state
        self.webhooks = webhooks
        self.quick_texts = {
            uid: [list(pair) for pair in pairs] for uid, pairs in quick_texts.items()
        }

    def routes(self) -> list[web.RouteDef]:
        table: list[tuple[str, str, Route]] = [
            ("GET", "config", self.config),
            ("GET", "users", self.list_users),
            ("POST", "users", self.upsert_user),
            ("POST", "send", self.send),
            ("POST", "send_photo", self.send_photo),
            ("POST", "send_document", self.send_document),
            ("POST", "send_location", self.send_location),
            ("POST", "send_contact", self.send_contact),
            ("POST", "send_sticker", self.send_sticker),
            ("POST", "send_many", self.send_many),
            ("POST", "press", self.press),
            ("POST", "raw_update", self.raw_update),
            ("GET", "chats/{chat_id}/messages", self.messages),
            ("GET", "chats/{chat_id}/callback_answers", self.callback_answers),
            ("GET", "chats/{chat_id}/commands", self.commands),
            ("GET", "wait", self.wait),
            ("GET", "events", self.events),
            ("POST", "flood", self.flood),
            ("POST", "fail", self.fail),
            ("POST", "block", self.block),
            ("POST", "hold", self.hold),
            ("POST", "release", self.release),
            ("GET", "held", self.held),
            ("GET", "stats", self.stats),
            ("POST", "reset", self.reset),
            ("GET", "files/{file_id}", self.file),
        ]
        return [web.route(verb, f"/_sandbox/{path}", self._wrap(fn)) for verb, path, fn in table]

    @staticmethod
    def _wrap(route: Route) -> Route:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await route(request)
            except ControlError as error:
                return json_response({"ok": False, "error": error.message}, error.status)

        return handler

    def _chat_id(self, request: web.Request) -> int:
        try:
            chat_id = int(request.match_info["chat_id"])
        except ValueError:
            raise ControlError("chat id must be an integer") from None
        if chat_id not in self.state.chats:
            raise ControlError(f"unknown chat {chat_id}", 404)
        return chat_id

    # -- users -----------------------------------------------------------------------------
    async def config(self, request: web.Request) -> web.Response:
        state = self.state
        return _ok(
            bot=state.bot_user(),
            demo_user_ids=[user.id for user in state.demo_users],
            quick_texts={str(uid): pairs for uid, pairs in self.quick_texts.items()},
            seq=state.seq,
            files_route=FILES_ROUTE,
        )

    async def list_users(self, request: web.Request) -> web.Response:
        return _ok(users=[user.control_json() for user in self.state.users()])

    async def upsert_user(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        user = DemoUser(
            id=_need(body, "id", int),
            first_name=_need(body, "first_name", str),
            last_name=_opt(body, "last_name", str),
            username=_opt(body, "username", str),
            language_code=_opt(body, "language_code", str)
            if "language_code" in body
            else "zh-hans",
            phone_number=_opt(body, "phone_number", str),
            label=_opt(body, "label", str),
        )
        if user.id <= 0:
            raise ControlError("'id' must be a positive integer (a private chat)")
        self.state.upsert_user(user)
        return _ok(user=user.control_json())

    # -- acting as a user ------------------------------------------------------------------
    async def send(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        update_id, message_id = self.state.user_text(
            _need(body, "user_id", int), _need(body, "text", str)
        )
        return _ok(update_id=update_id, message_id=message_id)

    async def send_many(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        items = body.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ControlError("'items' must be a list of {user_id, text}")
        pairs = [(_need(i, "user_id", int), _need(i, "text", str)) for i in items]
        for user_id, _ in pairs:
            self.state.chat_for_user(user_id)
        ids = [self.state.user_text(user_id, text)[0] for user_id, text in pairs]
        return _ok(update_ids=ids)

    async def send_photo(self, request: web.Request) -> web.Response:
        body, upload = await _form_or_json(request, "photo")
        update_id, message_id = self.state.user_photo(
            _need(body, "user_id", int), upload, _opt(body, "caption", str) or None
        )
        return _ok(update_id=update_id, message_id=message_id)

    async def send_document(self, request: web.Request) -> web.Response:
        body, upload = await _form_or_json(request, "document")
        update_id, message_id = self.state.user_document(
            _need(body, "user_id", int), upload, _opt(body, "file_name", str) or None
        )
        return _ok(update_id=update_id, message_id=message_id)

    async def send_location(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        update_id, message_id = self.state.user_location(
            _need(body, "user_id", int),
            _need(body, "latitude", float),
            _need(body, "longitude", float),
        )
        return _ok(update_id=update_id, message_id=message_id)

    async def send_contact(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        update_id, message_id = self.state.user_contact(
            _need(body, "user_id", int),
            _need(body, "phone_number", str),
            _opt(body, "first_name", str),
            _opt(body, "contact_user_id", int),
        )
        return _ok(update_id=update_id, message_id=message_id)

    async def send_sticker(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        emoji = _opt(body, "emoji", str) or "👍"
        update_id, message_id = self.state.user_sticker(_need(body, "user_id", int), emoji)
        return _ok(update_id=update_id, message_id=message_id)

    async def press(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        update_id, query_id = self.state.press(
            _need(body, "user_id", int),
            _need(body, "message_id", int),
            _need(body, "callback_data", str),
            forge=bool(body.get("forge")),
        )
        return _ok(update_id=update_id, callback_query_id=query_id)

    async def raw_update(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return _ok(update_id=self.state.inject(_need(body, "update", dict)))

    # -- inspecting ------------------------------------------------------------------------
    async def messages(self, request: web.Request) -> web.Response:
        chat_id = self._chat_id(request)
        after = _query_int(request, "after_message_id", 0) or 0
        return _ok(messages=chat_messages(self.state, chat_id, after))

    async def callback_answers(self, request: web.Request) -> web.Response:
        chat = self.state.chats[self._chat_id(request)]
        return _ok(answers=[answer.control_json() for answer in chat.answers])

    async def commands(self, request: web.Request) -> web.Response:
        chat = self.state.chats[self._chat_id(request)]
        commands, scope, language = self.state.commands.for_private_chat(
            chat.id, chat.user.language_code
        )
        scope_json = None if scope is None else {"type": scope[0], "chat_id": scope[1]}
        if scope_json is not None and scope_json["chat_id"] is None:
            del scope_json["chat_id"]
        return _ok(commands=commands, scope=scope_json, language_code=language)

    async def wait(self, request: web.Request) -> web.Response:
        chat_id = _query_int(request, "chat_id", None)
        after = _query_int(request, "after_message_id", 0) or 0
        timeout = _query_timeout(request, 10.0)
        found = await self.state.wait_bot_messages(chat_id, after, timeout)
        return _ok(messages=[message_view(m) for m in found], timed_out=not found)

    async def events(self, request: web.Request) -> web.Response:
        after = _query_int(request, "after_seq", 0) or 0
        timeout = _query_timeout(request, 25.0)
        if self.state.seq <= after and timeout > 0 and not self.state.updates.closed:
            await self.state.wait_change(timeout)
        return _ok(**events_view(self.state, after))

    async def file(self, request: web.Request) -> web.Response:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            raise ControlError("unknown file", 404)
        headers = {}
        if stored.file_name:
            headers["Content-Disposition"] = (
                f"inline; filename*=UTF-8''{quote(stored.file_name, safe='')}"
            )
        return web.Response(body=stored.data, content_type=stored.mime_type, headers=headers)

    async def stats(self, request: web.Request) -> web.Response:
        return _ok(**self.state.stats())

    # -- faults ----------------------------------------------------------------------------
    async def flood(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        global_limit = _opt(body, "global_per_second", int)
        chat_limit = _opt(body, "per_chat_per_second", int)
        if global_limit is None and chat_limit is None:
            self.state.flood = None
        else:
            self.state.flood = FloodControl(global_limit, chat_limit)
        return _ok(enabled=self.state.flood is not None)

    async def fail(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        method = _need(body, "method", str)
        count = _opt(body, "count", int) or 1
        code = _opt(body, "error_code", int) or 500
        if not 400 <= code <= 599:
            raise ControlError("'error_code' must be an HTTP error status")
        rule = FailRule(code, _opt(body, "description", str), _opt(body, "retry_after", int))
        self.state.fails.add(method, count, rule)
        return _ok(pending=self.state.fails.pending())

    async def block(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        blocked = body.get("blocked", True)
        self.state.set_blocked(_need(body, "user_id", int), bool(blocked))
        return _ok(blocked=bool(blocked))

    async def hold(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        methods = body.get("methods")
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise ControlError("'methods' must be a list of Bot API method names")
        self.state.holds.hold(methods)
        return _ok(methods=sorted(self.state.holds.methods))

    async def release(self, request: web.Request) -> web.Response:
        waiting = self.state.holds.waiting
        self.state.holds.release()
        return _ok(released=waiting)

    async def held(self, request: web.Request) -> web.Response:
        holds = self.state.holds
        return _ok(held=holds.waiting, discarded=holds.discarded, methods=sorted(holds.methods))

    async def reset(self, request: web.Request) -> web.Response:
        self.webhooks.stop()
        self.state.reset()
        return _ok()
