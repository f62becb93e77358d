"""Updates per second end to end: gridbot answering /me (a database read and an outbox write
per update) through the aiogram runtime, next to a bare aiogram echo bot, both against the
same sandbox Bot API running in its own process. Prints both rates and their ratio.

Usage: .venv/bin/python bench/updates_per_second.py [--updates 2000] [--users 50]
       [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.db import Database
from bot.migrate import upgrade
from models.base import utcnow
from services.demo import seed_demo
from services.invites import redeem
from services.members import Person

TOKEN = "123456:SANDBOX"
FIRST_USER = 50_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/_sandbox/stats") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession()

    async def post(self, path: str, body: object) -> dict[str, object]:
        async with self.http.post(f"{self.url}/_sandbox/{path}", json=body) as response:
            return await response.json()  # type: ignore[no-any-return]

    async def bot_messages(self) -> int:
        async with self.http.get(f"{self.url}/_sandbox/stats") as response:
            return int((await response.json())["messages_from_bot"])

    async def calls(self, method: str) -> int:
        async with self.http.get(f"{self.url}/_sandbox/stats") as response:
            return int((await response.json())["calls"].get(method, 0))

    async def close(self) -> None:
        await self.http.close()


async def prepare_database(url: str, users: int) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    async with db.transaction() as session:
        await seed_demo(session, utcnow())
        for index in range(users):
            user = FIRST_USER + index
            await redeem(
                session, "demo-resident", Person(user, user, f"U{index}", "zh_CN"), utcnow()
            )
    await db.dispose()


async def measure(sandbox: Sandbox, text: str, updates: int, users: int) -> float:
    """Inject ``updates`` messages at once and time until every one is answered."""
    start_count = await sandbox.bot_messages()
    items = [{"user_id": FIRST_USER + i % users, "text": text} for i in range(updates)]
    started = time.perf_counter()
    await sandbox.post("send_many", {"items": items})
    while await sandbox.bot_messages() < start_count + updates:
        await asyncio.sleep(0.01)
    return updates / (time.perf_counter() - started)


async def run_process(
    args: list[str], env: dict[str, str], ready: Sandbox, log: Path
) -> subprocess.Popen[bytes]:
    before = await ready.calls("getUpdates")
    handle = log.open("wb")
    process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while await ready.calls("getUpdates") <= before:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{args} did not start:\n{log.read_text()}")
        await asyncio.sleep(0.05)
    return process


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="gridbot-bench-"))
    if args.database == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        import asyncpg

        name = f"gridbot_bench_{os.getpid()}"
        admin = await asyncpg.connect(args.postgres_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        database_url = args.postgres_url.rsplit("/", 1)[0] + "/" + name
    await prepare_database(database_url, args.users)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox_process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox", "--port", str(port), "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await wait_http(url)
    sandbox = Sandbox(url)
    for index in range(args.users):
        await sandbox.post("users", {"id": FIRST_USER + index, "first_name": f"U{index}"})

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: dict[str, float] = {}
    try:
        echo = await run_process(
            [sys.executable, str(ROOT / "bench" / "echo_bot.py"), url, TOKEN],
            env,
            sandbox,
            workdir / "echo.log",
        )
        await measure(sandbox, "warm-up", 200, args.users)
        cpu_before = _cpu_seconds(echo.pid)
        results["echo"] = await measure(sandbox, "hello", args.updates, args.users)
        results["echo_cpu_ms"] = (_cpu_seconds(echo.pid) - cpu_before) * 1000 / args.updates
        stop(echo)

        bot_env = {
            **env,
            "GRIDBOT_TELEGRAM_TOKEN": TOKEN,
            "GRIDBOT_TELEGRAM_API_URL": url,
            "GRIDBOT_DATABASE_URL": database_url,
            "GRIDBOT_LOG_LEVEL": "WARNING",
        }
        gridbot = await run_process(
            [sys.executable, "-m", "bot", "run"], bot_env, sandbox, workdir / "gridbot.log"
        )
        await measure(sandbox, "/me", 200, args.users)
        spy = None
        if os.environ.get("BENCH_PYSPY"):
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-o",
                    os.environ["BENCH_PYSPY"],
                    "-f",
                    "speedscope",
                    "-p",
                    str(gridbot.pid),
                    "-d",
                    "15",
                ]
            )
        cpu_before = _cpu_seconds(gridbot.pid)
        results["gridbot"] = await measure(sandbox, "/me", args.updates, args.users)
        results["gridbot_cpu_ms"] = (_cpu_seconds(gridbot.pid) - cpu_before) * 1000 / args.updates
        if spy:
            spy.wait()
        stop(gridbot)
    finally:
        await sandbox.close()
        sandbox_process.terminate()
        sandbox_process.wait(timeout=15)

    ratio = results["gridbot"] / results["echo"]
    print(
        f"database: {args.database}; {args.updates} updates from {args.users} users, "
        f"all injected at once; {os.cpu_count()} CPUs"
    )
    print(f"bare aiogram echo bot : {results['echo']:8.1f} updates/s")
    print(f"gridbot /me           : {results['gridbot']:8.1f} updates/s")
    print(f"ratio gridbot / echo  : {ratio:8.2f}   (target >= 0.60)")
    print(
        f"CPU per update        : echo {results['echo_cpu_ms']:.2f} ms, "
        f"gridbot {results['gridbot_cpu_ms']:.2f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
