"""`python -m bot.sandbox --port 8081 [--token T]`: run the sandbox alone and print its URL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .server import SandboxServer, serve_forever


async def _run(server: SandboxServer) -> None:
    print(await server.start(), flush=True)
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve_forever(server)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox", description="Local stand-in for the Telegram Bot API."
    )
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:SANDBOX")
    parser.add_argument("--bot-username", default="gridbot_sandbox_bot")
    args = parser.parse_args(argv)
    server = SandboxServer(token=args.token, bot_username=args.bot_username, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(server))


if __name__ == "__main__":
    main()
