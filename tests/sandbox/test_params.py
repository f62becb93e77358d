"""Parameter transports Telegram accepts: query string, form, JSON, multipart, empty body."""

from __future__ import annotations

import json

import aiohttp

from bot.sandbox.images import sample_png

from .conftest import ANN, TOKEN, Control

MARKUP = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}


def url(control: Control, method: str) -> str:
    return f"{control.base_url}/bot{TOKEN}/{method}"


async def test_get_with_query_string_and_case_insensitive_method(control: Control) -> None:
    params = {"chat_id": str(ANN.id), "text": "via GET", "reply_markup": json.dumps(MARKUP)}
    async with control.session.get(url(control, "SENDMESSAGE"), params=params) as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["result"]["reply_markup"] == MARKUP
    async with control.session.post(url(control, "getme")) as resp:  # empty body
        assert (await resp.json())["result"]["username"] == "gridbot_sandbox_bot"
    assert (await control.get("stats"))["calls"] == {"sendMessage": 1, "getMe": 1}


async def test_form_urlencoded_with_json_strings(control: Control) -> None:
    form = {
        "chat_id": str(ANN.id),
        "text": "via form",
        "reply_markup": json.dumps(MARKUP),
        "disable_notification": "true",
        "unknown_parameter": "ignored",
    }
    async with control.session.post(url(control, "sendMessage"), data=form) as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["result"]["text"] == "via form"


async def test_json_body_with_native_nesting(control: Control) -> None:
    status, body = await control.api(
        "sendMessage", chat_id=ANN.id, text="*bold*", parse_mode="MarkdownV2", reply_markup=MARKUP
    )
    assert status == 200
    assert body["result"]["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    status, body = await control.api(
        "setMyCommands", commands=[{"command": "a", "description": "A"}]
    )
    assert (status, body) == (200, {"ok": True, "result": True})


async def test_multipart_fields_and_attach_reference(control: Control) -> None:
    png = sample_png(10, 10)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN.id))
    form.add_field("photo", "attach://pic")
    form.add_field("caption", "attached")
    form.add_field("reply_markup", json.dumps(MARKUP))
    form.add_field("pic", png, filename="pic.png", content_type="image/png")
    async with control.session.post(url(control, "sendPhoto"), data=form) as resp:
        body = await resp.json()
    assert resp.status == 200, body
    result = body["result"]
    assert result["caption"] == "attached"
    assert result["reply_markup"] == MARKUP
    assert result["photo"][-1]["width"] == 10

    form = aiohttp.FormData()
    form.add_field("chat_id", str(ANN.id))
    form.add_field("photo", b"not an image", filename="x.png")
    async with control.session.post(url(control, "sendPhoto"), data=form) as resp:
        assert (resp.status, (await resp.json())["description"]) == (
            400,
            "Bad Request: IMAGE_PROCESS_FAILED",
        )
