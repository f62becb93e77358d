"""Every documented error, with Telegram's exact description and HTTP status."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox import SandboxServer
from bot.sandbox import errors as E

from .conftest import ANN, BOB, Control, FastCloseSession


def button(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="b", callback_data=data)]]
    )


async def bad_request(call: Awaitable[object]) -> str:
    with pytest.raises(TelegramBadRequest) as caught:
        await call
    return caught.value.message


async def test_text_empty_and_too_long(abot: Bot, control: Control) -> None:
    assert await bad_request(abot.send_message(ANN.id, "")) == E.TEXT_EMPTY
    assert await bad_request(abot.send_message(ANN.id, " \n\t ")) == E.TEXT_EMPTY
    assert await bad_request(abot.send_message(ANN.id, "x" * 4097)) == E.TEXT_TOO_LONG
    assert await bad_request(abot.send_message(ANN.id, "汉" * 4097)) == E.TEXT_TOO_LONG
    # The limit applies after stripping and after entity parsing.
    await abot.send_message(ANN.id, "  " + "x" * 4096 + "\n")
    await abot.send_message(ANN.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    status, body = await control.api("sendMessage", chat_id=ANN.id)
    assert (status, body["description"]) == (400, E.TEXT_EMPTY)


async def test_callback_data_limit_is_in_bytes(abot: Bot) -> None:
    data_64 = "网" * 21 + "a"  # 63 + 1 bytes
    data_65 = "网" * 21 + "ab"  # 65 bytes, only 23 characters
    await abot.send_message(ANN.id, "ok", reply_markup=button(data_64))
    described = await bad_request(abot.send_message(ANN.id, "no", reply_markup=button(data_65)))
    assert described == "Bad Request: BUTTON_DATA_INVALID"
    assert await bad_request(abot.send_message(ANN.id, "no", reply_markup=button(""))) == (
        "Bad Request: BUTTON_DATA_INVALID"
    )


async def test_inline_button_needs_exactly_one_action(control: Control) -> None:
    only_text = {"inline_keyboard": [[{"text": "x"}]]}
    status, body = await control.api(
        "sendMessage", chat_id=ANN.id, text="t", reply_markup=only_text
    )
    assert status == 400
    assert "Text buttons are unallowed" in body["description"]
    both = {"inline_keyboard": [[{"text": "x", "callback_data": "a", "url": "https://e.org"}]]}
    status, body = await control.api("sendMessage", chat_id=ANN.id, text="t", reply_markup=both)
    assert status == 400
    assert body["description"].startswith("Bad Request: can't parse inline")
    status, body = await control.api(
        "sendMessage", chat_id=ANN.id, text="t", reply_markup="{not json"
    )
    assert (status, body["description"]) == (400, E.MARKUP_UNPARSABLE)


async def test_unknown_chat_and_missing_chat_id(abot: Bot, control: Control) -> None:
    assert await bad_request(abot.send_message(424242, "hi")) == "Bad Request: chat not found"
    assert await bad_request(abot.send_photo(424242, "x")) == "Bad Request: chat not found"
    status, body = await control.api("sendMessage", text="hi")
    assert (status, body) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"},
    )


async def test_edit_errors(abot: Bot) -> None:
    assert await bad_request(abot.edit_message_text("x", chat_id=ANN.id, message_id=77)) == (
        "Bad Request: message to edit not found"
    )
    sent = await abot.send_message(ANN.id, "same", reply_markup=button("a"))
    not_modified = abot.edit_message_text(
        "same", chat_id=ANN.id, message_id=sent.message_id, reply_markup=button("a")
    )
    assert await bad_request(not_modified) == E.NOT_MODIFIED
    # A different keyboard is a modification; the message of another chat is not found.
    await abot.edit_message_text(
        "same", chat_id=ANN.id, message_id=sent.message_id, reply_markup=button("b")
    )
    other_chat = abot.edit_message_text("x", chat_id=BOB.id, message_id=sent.message_id)
    assert await bad_request(other_chat) == "Bad Request: message to edit not found"
    assert await bad_request(abot.delete_message(ANN.id, 999)) == E.MESSAGE_TO_DELETE_NOT_FOUND


async def test_html_parse_errors(abot: Bot) -> None:
    assert await bad_request(abot.send_message(ANN.id, "<b>x", parse_mode="HTML")) == (
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
    )
    assert await bad_request(abot.send_message(ANN.id, "<p>x</p>", parse_mode="HTML")) == (
        'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0'
    )
    assert await bad_request(abot.send_message(ANN.id, "1.5", parse_mode="MarkdownV2")) == (
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped "
        "with the preceding '\\'"
    )


async def test_wrong_token_and_unknown_method(sandbox: SandboxServer, control: Control) -> None:
    session = FastCloseSession(api=TelegramAPIServer.from_base(sandbox.base_url))
    intruder = Bot("654321:WRONG", session=session)
    with pytest.raises(TelegramUnauthorizedError):
        await intruder.get_me()
    await session.close()
    assert await control.api("getMe", token="654321:WRONG") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await control.api("noSuchMethod") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
    )


async def test_flood_control_429(abot: Bot, control: Control) -> None:
    await control.post("flood", {"global_per_second": 30, "per_chat_per_second": 1})
    await abot.send_message(ANN.id, "one")
    with pytest.raises(TelegramRetryAfter) as caught:
        await abot.send_message(ANN.id, "two")
    assert caught.value.retry_after == 1
    await abot.send_message(BOB.id, "another chat is fine")
    status, body = await control.api("editMessageText", chat_id=ANN.id, message_id=1, text="e")
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    assert body["description"] == "Too Many Requests: retry after 1"
    await control.post("flood", None)
    await abot.send_message(ANN.id, "flood control off")


async def test_global_flood_limit(abot: Bot, control: Control) -> None:
    await control.post("flood", {"global_per_second": 2})
    await abot.send_message(ANN.id, "1")
    await abot.send_message(BOB.id, "2")
    with pytest.raises(TelegramRetryAfter):
        await abot.send_message(ANN.id, "3")
    stats = await control.get("stats")
    assert stats["errors"] == {"429": 1}
    assert stats["messages_from_bot"] == 2


async def test_scripted_failures(abot: Bot, control: Control) -> None:
    await control.post(
        "fail", {"method": "sendMessage", "count": 2, "error_code": 429, "retry_after": 7}
    )
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await abot.send_message(ANN.id, "hi")
        assert caught.value.retry_after == 7
    await abot.send_message(ANN.id, "third call goes through")
    await control.post("fail", {"method": "SENDMESSAGE", "error_code": 502})
    status, body = await control.api("sendMessage", chat_id=ANN.id, text="x")
    assert (status, body) == (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    assert len(await control.messages(ANN.id)) == 1


async def test_blocked_user(abot: Bot, control: Control) -> None:
    await control.post("block", {"user_id": ANN.id, "blocked": True})
    with pytest.raises(TelegramForbiddenError) as caught:
        await abot.send_message(ANN.id, "hi")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    await control.post("block", {"user_id": ANN.id, "blocked": False})
    await abot.send_message(ANN.id, "unblocked")


async def test_file_errors(abot: Bot, control: Control) -> None:
    assert await bad_request(abot.send_photo(ANN.id, "no-such-file-id")) == E.WRONG_FILE_ID
    assert await bad_request(abot.get_file("no-such-file-id")) == "Bad Request: invalid file_id"
    doc = await control.post("send_document", {"user_id": ANN.id})
    [update] = await abot.get_updates()
    assert update.message
    assert update.message.document
    assert doc["message_id"]
    mismatch = abot.send_photo(ANN.id, update.message.document.file_id)
    assert await bad_request(mismatch) == "Bad Request: type of file mismatch"
