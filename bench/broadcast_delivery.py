"""Broadcast delivery at Telegram's flood limit: one broadcast to N recipients drained by the
real sender (`gridbot run`, its own process) against the sandbox Bot API (its own process)
enforcing 30 messages a second for the bot and one a second per chat. Prints the achieved rate
divided by the limit (target ≥ 0.95), how many recipients got nothing (lost) and how many got
more than one copy (duplicates). With ``--kill`` the bot is SIGKILLed halfway (no clean-up, at
a moment unrelated to what it is doing) and started again at once; the rate then includes the
restart.

Usage: .venv/bin/python bench/broadcast_delivery.py [--recipients 10000] [--kill]
       [--rate 30] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select
from sqlmodel import col

from bot.db import Database
from bot.migrate import upgrade
from bot.settings import Settings
from models.base import utcnow
from models.members import Member, Role, RoleGrant
from models.org import Unit
from services import broadcasts
from services.access import Actor, load_actor
from services.audiences import Audience
from services.broadcasts import BroadcastPolicy, Draft
from services.demo import DEMO_ORG
from services.org import import_org

TOKEN = "123456:SANDBOX"
FIRST_USER = 800_000
COORDINATOR = 799_999
MARKER = "bench-broadcast"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def post(self, path: str, body: object) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/_sandbox/{path}", json=body) as response:
            return await response.json()  # type: ignore[no-any-return]

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/_sandbox/{path}") as response:
            return await response.json()  # type: ignore[no-any-return]

    async def stats(self) -> dict[str, Any]:
        return await self.get("stats")

    async def copies(self, user: int) -> int:
        messages = (await self.get(f"chats/{user}/messages"))["messages"]
        return sum(
            1
            for m in messages
            if m["from_bot"] and MARKER in str(m.get("text") or m.get("caption") or "")
        )

    async def close(self) -> None:
        await self.http.close()


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


async def prepare(url: str, recipients: int) -> None:
    """The demo org (only the units: no demo meetings or visits whose jobs would write to the
    same people), a coordinator of C1 and ``recipients`` residents of B1 (in G1; residents get
    no service-hours nudges either)."""
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = utcnow()
    async with db.transaction() as session:
        await import_org(session, DEMO_ORG.read_text(encoding="utf-8"))
        units = dict((await session.execute(select(col(Unit.code), col(Unit.id)))).all())
        people = [
            {
                "telegram_id": user,
                "chat_id": user,
                "display_name": f"M{user}",
                "locale": "zh_CN",
                "created_at": now,
            }
            for user in [COORDINATOR, *range(FIRST_USER, FIRST_USER + recipients)]
        ]
        for start in range(0, len(people), 500):
            await session.execute(insert(Member), people[start : start + 500])
        ids = dict((await session.execute(select(col(Member.telegram_id), col(Member.id)))).all())
        grants = [
            {
                "member_id": ids[user],
                "role": (Role.coordinator if user == COORDINATOR else Role.resident).value,
                "unit_id": units["C1" if user == COORDINATOR else "B1"],
                "created_at": now,
            }
            for user in [COORDINATOR, *range(FIRST_USER, FIRST_USER + recipients)]
        ]
        for start in range(0, len(grants), 500):
            await session.execute(insert(RoleGrant), grants[start : start + 500])
    await db.dispose()


async def broadcast(url: str) -> int:
    db = Database(url)
    settings = Settings(database_url=url, _env_file=None)
    async with db.transaction() as session:
        coordinator = (
            await session.execute(
                select(col(Member.id)).where(col(Member.telegram_id) == COORDINATOR)
            )
        ).scalar_one()
        actor: Actor = await load_actor(session, int(coordinator or 0))
        g1 = (
            await session.execute(select(col(Unit.id)).where(col(Unit.code) == "G1"))
        ).scalar_one()
        sent = await broadcasts.send(
            session,
            actor,
            Draft(
                f"{MARKER}: 周六上午九点集合",
                audience=Audience(unit_ids=(int(g1 or 0),)),
                urgent=True,
            ),
            utcnow(),
            BroadcastPolicy.of(settings),
        )
    await db.dispose()
    return sent.recipients


async def start_bot(env: dict[str, str], sandbox: Sandbox, log: Path) -> subprocess.Popen[bytes]:
    before = (await sandbox.stats())["calls"].get("getUpdates", 0)
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], env=env, stdout=handle, stderr=subprocess.STDOUT,
        cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while (await sandbox.stats())["calls"].get("getUpdates", 0) <= before:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not start:\n{log.read_text()}")
        await asyncio.sleep(0.05)
    return process


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=30, help="the limit, for bot and sandbox")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the bot halfway")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    n = args.recipients

    workdir = Path(tempfile.mkdtemp(prefix="gridbot-bench-bc-"))
    if args.database == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        import asyncpg

        name = f"gridbot_bench_bc_{os.getpid()}"
        admin = await asyncpg.connect(args.postgres_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        database_url = args.postgres_url.rsplit("/", 1)[0] + "/" + name
    await prepare(database_url, n)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox_process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox", "--port", str(port), "--token", TOKEN],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await wait_http(url)
    sandbox = Sandbox(url)
    users = list(range(FIRST_USER, FIRST_USER + n))
    await sandbox.post("users", {"id": COORDINATOR, "first_name": "Coordinator"})
    for start in range(0, n, 200):
        await asyncio.gather(
            *(
                sandbox.post("users", {"id": u, "first_name": f"M{u}"})
                for u in users[start : start + 200]
            )
        )
    await sandbox.post("flood", {"global_per_second": args.rate, "per_chat_per_second": 1})

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GRIDBOT_TELEGRAM_TOKEN": TOKEN,
        "GRIDBOT_TELEGRAM_API_URL": url,
        "GRIDBOT_DATABASE_URL": database_url,
        "GRIDBOT_LOG_LEVEL": "WARNING",
        "GRIDBOT_SEND_RATE_PER_SECOND": str(args.rate),
    }
    log = workdir / "gridbot.log"
    bot = await start_bot(env, sandbox, log)
    kill_at = n // 2 if args.kill else None
    killed_after: int | None = None
    restart_seconds = 0.0
    try:
        baseline = (await sandbox.stats())["messages_from_bot"]
        assert await broadcast(database_url) == n
        target = n + 1  # the copies and the sender's report message
        first = last = None
        while True:
            delivered = (await sandbox.stats())["messages_from_bot"] - baseline
            moment = time.perf_counter()
            if first is None and delivered > 0:
                first = moment
            if kill_at is not None and killed_after is None and delivered >= kill_at:
                bot.send_signal(signal.SIGKILL)
                bot.wait()
                killed_after = delivered
                down = time.perf_counter()
                bot = await start_bot(env, sandbox, log)
                restart_seconds = time.perf_counter() - down
            if delivered >= target:
                last = moment
                break
            if first is not None and moment - first > 4 * n / args.rate + 120:
                last = moment
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # anything still in flight lands (a duplicate counts then)
        counts: list[int] = []
        for start in range(0, n, 200):
            counts += await asyncio.gather(*(sandbox.copies(u) for u in users[start : start + 200]))
        stats = await sandbox.stats()
    finally:
        bot.terminate()
        try:
            bot.wait(timeout=15)
        except subprocess.TimeoutExpired:
            bot.kill()
        await sandbox.close()
        sandbox_process.terminate()
        sandbox_process.wait(timeout=15)

    assert first is not None
    assert last is not None
    elapsed = last - first
    rate = (target - 1) / elapsed if elapsed > 0 else 0.0
    lost = sum(1 for c in counts if c == 0)
    duplicates = sum(c - 1 for c in counts if c > 1)
    print(
        f"database: {args.database}; {n} recipients; limit {args.rate}/s "
        "(enforced by the sandbox, and 1/s per chat)"
    )
    if killed_after is not None:
        print(
            f"killed (SIGKILL) after {killed_after} delivered; restart took {restart_seconds:.1f} s"
        )
        sending = elapsed - restart_seconds
        print(
            f"without the restart: {n / sending:.2f} msg/s; rate / limit = "
            f"{n / sending / args.rate:.3f}"
        )
    print(f"delivered in {elapsed:.1f} s: {rate:.2f} msg/s; rate / limit = {rate / args.rate:.3f}")
    print(f"lost: {lost}; duplicates: {duplicates}")
    if lost:
        print(
            "lost recipients (first 10):",
            [u for u, c in zip(users, counts, strict=True) if not c][:10],
        )
    print(f"sandbox answers: calls {stats['calls']}, errors {stats['errors']}")


if __name__ == "__main__":
    asyncio.run(main())
