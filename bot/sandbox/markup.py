"""Validation and normalisation of reply_markup (inline and reply keyboards)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .errors import BUTTON_DATA_INVALID, MARKUP_UNPARSABLE, ApiError, bad_request

Markup = dict[str, Any]

_INLINE_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_REPLY_FLAGS = (
    "is_persistent",
    "resize_keyboard",
    "one_time_keyboard",
    "input_field_placeholder",
    "selective",
)
_URL_SCHEMES = ("http", "https", "tg", "ton")


def _button_error(detail: str) -> ApiError:
    return bad_request(f"can't parse inline keyboard button: {detail}")


def _decode(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, MARKUP_UNPARSABLE) from None
    return raw


def _rows(value: Any, field: str, owner: str) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise bad_request(f'field "{field}" of the {owner} should be an Array of Arrays')
    return value


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise _button_error('Field "url" must be of type String')
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme.lower() not in _URL_SCHEMES or not (parts.netloc or parts.scheme == "tg"):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    return url


def _inline_button(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _button_error("InlineKeyboardButton must be an Object")
    button = {k: v for k, v in raw.items() if v is not None}
    text = button.get("text")
    if not isinstance(text, str):
        raise _button_error('Field "text" must be of type String')
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [key for key in _INLINE_ACTIONS if key in button]
    if not actions:
        raise _button_error("Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise _button_error("exactly one of the optional fields must be used")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise ApiError(400, BUTTON_DATA_INVALID)
    if "url" in button:
        _check_url(button["url"])
    return button


def _reply_button(raw: Any) -> dict[str, Any]:
    button = {"text": raw} if isinstance(raw, str) else raw
    if not isinstance(button, dict):
        raise bad_request("KeyboardButton must be a String or an Object")
    button = {k: v for k, v in button.items() if v is not None}
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
    return button


def parse_reply_markup(raw: Any) -> Markup | None:
    """Returns the normalised markup, or None when absent. Raises ApiError like Telegram."""
    if raw is None or raw == "":
        return None
    value = _decode(raw)
    if not isinstance(value, dict):
        raise ApiError(400, MARKUP_UNPARSABLE)
    if "inline_keyboard" in value:
        rows = _rows(value["inline_keyboard"], "inline_keyboard", "InlineKeyboardMarkup")
        return {"inline_keyboard": [[_inline_button(b) for b in row] for row in rows]}
    if "keyboard" in value:
        rows = _rows(value["keyboard"], "keyboard", "ReplyKeyboardMarkup")
        markup: Markup = {"keyboard": [[_reply_button(b) for b in row] for row in rows]}
        markup.update({k: value[k] for k in _REPLY_FLAGS if value.get(k) is not None})
        return markup
    if value.get("remove_keyboard") is True:
        return {"remove_keyboard": True, **_selective(value)}
    if value.get("force_reply") is True:
        placeholder = value.get("input_field_placeholder")
        extra = {"input_field_placeholder": placeholder} if placeholder else {}
        return {"force_reply": True, **extra, **_selective(value)}
    raise ApiError(400, MARKUP_UNPARSABLE)


def _selective(value: dict[str, Any]) -> dict[str, Any]:
    return {"selective": True} if value.get("selective") else {}


def inline_only(markup: Markup | None) -> Markup | None:
    """The part of a markup that Telegram echoes back in Message.reply_markup."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def inline_callback_data(markup: Markup | None) -> set[str]:
    if markup is None or "inline_keyboard" not in markup:
        return set()
    return {
        button["callback_data"]
        for row in markup["inline_keyboard"]
        for button in row
        if "callback_data" in button
    }
