"""Bot command lists per (scope, language_code) and Telegram's precedence for a private chat.

Language matching: commands are stored under a two-letter code ("en", "zh"); a user's
language_code is reduced to its primary subtag ("zh-hans" → "zh", "en-US" → "en") before
matching, like Telegram clients, which send IETF tags but look up bot commands by ISO 639-1.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import (
    BOT_COMMAND_DESCRIPTION_INVALID,
    BOT_COMMAND_INVALID,
    BOT_COMMANDS_TOO_MUCH,
    LANG_CODE_INVALID,
    ApiError,
    bad_request,
)

ScopeKey = tuple[str, int | None, int | None]  # (type, chat_id, user_id)
Command = dict[str, str]

_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_LANG = re.compile(r"[a-z]{2}")
_SCOPE_TYPES = {
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
}
DEFAULT_SCOPE: ScopeKey = ("default", None, None)


def _decode(raw: Any, what: str) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(f"can't parse {what} JSON object") from None
    return raw


def _as_int(value: Any, error: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, error) from None


def parse_scope(raw: Any) -> ScopeKey:
    if raw in (None, ""):
        return DEFAULT_SCOPE
    scope = _decode(raw, "BotCommandScope")
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
        raise bad_request("unsupported bot command scope type")
    kind = str(scope["type"])
    chat_id = user_id = None
    if kind in ("chat", "chat_administrators", "chat_member"):
        if scope.get("chat_id") in (None, ""):
            raise bad_request("chat_id is empty")
        chat_id = _as_int(scope["chat_id"], "Bad Request: chat not found")
    if kind == "chat_member":
        user_id = _as_int(scope.get("user_id"), "Bad Request: invalid user_id specified")
    return (kind, chat_id, user_id)


def parse_language(raw: Any) -> str:
    code = "" if raw is None else str(raw)
    if code and not _LANG.fullmatch(code):
        raise ApiError(400, LANG_CODE_INVALID)
    return code


def parse_commands(raw: Any) -> list[Command]:
    commands = _decode(raw, "commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise ApiError(400, BOT_COMMANDS_TOO_MUCH)
    result: list[Command] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand: BotCommand must be an Object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND.fullmatch(command):
            raise ApiError(400, BOT_COMMAND_INVALID)
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise ApiError(400, BOT_COMMAND_DESCRIPTION_INVALID)
        result.append({"command": command, "description": description.strip()})
    return result


def primary_language(language_code: str | None) -> str:
    return (language_code or "").replace("_", "-").split("-", 1)[0].lower()


def scope_json(key: ScopeKey) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": key[0]}
    if key[1] is not None:
        scope["chat_id"] = key[1]
    if key[2] is not None:
        scope["user_id"] = key[2]
    return scope


class CommandStore:
    def __init__(self) -> None:
        self._lists: dict[tuple[ScopeKey, str], list[Command]] = {}

    def clear(self) -> None:
        self._lists.clear()

    def set(self, scope: ScopeKey, language: str, commands: list[Command]) -> None:
        if commands:
            self._lists[(scope, language)] = commands
        else:
            self._lists.pop((scope, language), None)

    def get(self, scope: ScopeKey, language: str) -> list[Command]:
        return list(self._lists.get((scope, language), []))

    def delete(self, scope: ScopeKey, language: str) -> None:
        self._lists.pop((scope, language), None)

    def for_private_chat(
        self, chat_id: int, language_code: str | None
    ) -> tuple[list[Command], ScopeKey | None, str]:
        """(commands, scope used, language used) in Telegram's precedence order."""
        lang = primary_language(language_code)
        scopes: list[ScopeKey] = [("chat", chat_id, None), ("all_private_chats", None, None)]
        languages = [lang, ""] if lang else [""]
        for scope in (*scopes, DEFAULT_SCOPE):
            for language in languages:
                found = self._lists.get((scope, language))
                if found:
                    return list(found), scope, language
        return [], None, ""
