"""The aiogram session the bot uses keeps aiogram's parsed-answer models alive between calls."""

from __future__ import annotations

import gc
import json
import weakref

from aiogram import Bot
from aiogram.methods import SendMessage

from bot.runtime.aiogram_runtime import PinnedResponseSession

ANSWER = json.dumps(
    {
        "ok": True,
        "result": {
            "message_id": 7,
            "date": 0,
            "chat": {"id": 42, "type": "private"},
            "text": "hi",
        },
    }
)


async def test_answers_parse_and_their_model_survives_garbage_collection() -> None:
    session = PinnedResponseSession()
    bot = Bot("123456:TEST", session=session)
    try:
        method = SendMessage(chat_id=42, text="hi")
        answer = session.check_response(bot, method, 200, ANSWER)
        assert answer.result is not None
        assert answer.result.message_id == 7
        model = weakref.ref(type(answer))
        del answer
        gc.collect()
        # pydantic's cache holds it weakly: without the pin it is gone and built again next time.
        assert model() is not None
    finally:
        await session.close()
