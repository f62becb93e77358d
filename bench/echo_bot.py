"""A bare aiogram echo bot: the yardstick gridbot's throughput is compared with.

Usage: python bench/echo_bot.py BASE_URL TOKEN
"""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def main(base_url: str, token: str) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    await dispatcher.start_polling(bot, handle_signals=True, polling_timeout=10)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
