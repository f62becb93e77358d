"""Held requests wait for /release; a held request whose client disconnected is never applied."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import aiohttp
from aiogram import Bot

from bot.sandbox import SandboxServer

from .conftest import ANN, TOKEN, Control, until

_CLIENT = """
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(),
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=30).read()
"""


async def test_held_request_is_applied_after_release(
    abot: Bot, control: Control, sandbox: SandboxServer
) -> None:
    await control.post("hold", {"methods": ["sendMessage"]})
    sending = asyncio.create_task(abot.send_message(ANN.id, "held"))
    await until(lambda: sandbox.state.holds.waiting == 1)
    assert (await control.get("held"))["held"] == 1
    assert await control.messages(ANN.id) == []  # not applied while held
    await abot.send_chat_action(ANN.id, "typing")  # other methods are not held
    assert (await control.post("release"))["released"] == 1
    message = await sending
    assert message.text == "held"
    assert [m["text"] for m in await control.messages(ANN.id)] == ["held"]
    await abot.send_message(ANN.id, "not held any more")


async def test_held_request_of_a_disconnected_client_is_discarded(
    control: Control, sandbox: SandboxServer
) -> None:
    await control.post("hold", {"methods": ["sendmessage"]})
    url = f"{sandbox.base_url}/bot{TOKEN}/sendMessage"
    session = aiohttp.ClientSession()
    request = asyncio.create_task(session.post(url, json={"chat_id": ANN.id, "text": "lost"}))
    await until(lambda: sandbox.state.holds.waiting == 1)
    request.cancel()
    await session.close()
    await until(lambda: sandbox.state.holds.waiting == 0)
    await control.post("release")
    assert await control.messages(ANN.id) == []
    assert (await control.get("held"))["discarded"] == 1


async def test_killed_bot_process_request_is_never_applied(
    control: Control, sandbox: SandboxServer
) -> None:
    await control.post("hold", {"methods": ["sendMessage", "editMessageText"]})
    url = f"{sandbox.base_url}/bot{TOKEN}/sendMessage"
    body = json.dumps({"chat_id": ANN.id, "text": "from a killed bot"})
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", _CLIENT, url, body)
    try:
        await until(lambda: sandbox.state.holds.waiting == 1, timeout=10)
    finally:
        process.kill()
        await process.wait()
    # Release at once, possibly before the server noticed the closed connection.
    await control.post("release")
    await until(lambda: sandbox.state.holds.waiting == 0)
    assert await control.messages(ANN.id) == []
    stats = await control.get("stats")
    assert stats["messages_from_bot"] == 0
    assert stats["held_discarded"] == 1


async def test_close_not_yet_seen_by_the_event_loop_is_detected(
    control: Control, sandbox: SandboxServer
) -> None:
    """Release in the same loop step as the client's close: only the socket peek can tell."""
    await control.post("hold", {"methods": ["sendMessage"]})
    body = json.dumps({"chat_id": ANN.id, "text": "raced"}).encode()
    head = (
        f"POST /bot{TOKEN}/sendMessage HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    client = socket.create_connection((sandbox.host, int(sandbox.base_url.rsplit(":", 1)[1])))
    client.sendall(head + body)
    await until(lambda: sandbox.state.holds.waiting == 1)
    client.close()
    sandbox.state.holds.release()  # no await in between: the loop has not read the FIN yet
    await until(lambda: sandbox.state.holds.waiting == 0)
    await asyncio.sleep(0.05)
    assert await control.messages(ANN.id) == []
    assert sandbox.state.holds.discarded == 1
