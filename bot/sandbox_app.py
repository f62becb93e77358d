"""`make sandbox`: migrate and seed a local SQLite file, start the sandbox Bot API with its web
chat page, and run the real bot against it (no token, nothing leaves the machine)."""

from __future__ import annotations

import asyncio
import logging

from pydantic import SecretStr

from bot.db import Database
from bot.migrate import upgrade
from bot.runtime.serve import RuntimeName, run_bot
from bot.sandbox import DemoUser, SandboxServer
from bot.settings import Settings
from models.base import utcnow
from services.broadcasts import BroadcastPolicy
from services.demo import seed_demo
from services.demo_activity import DemoPerson, seed_activity
from services.tasks import TaskRules

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "123456:SANDBOX"
BOT_USERNAME = "gridbot_sandbox_bot"

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser(1001, "王阿姨", None, "wang_ayi", "zh-hans", "13800000001", "居民 Resident"),
    DemoUser(1002, "李明", None, "li_ming", "zh-hans", "13800000002", "志愿者 Volunteer"),
    DemoUser(1003, "张伟", None, "zhang_wei", "zh-hans", "13800000003", "网格员 Grid worker"),
    DemoUser(1004, "陈静", None, "chen_jing", "zh-hans", "13800000004", "社区干部 Coordinator"),
    DemoUser(1005, "Alice", "Smith", "alice", "en", "13800000005", "Resident (English)"),
)

DEMO_COORDINATOR = DemoPerson(1004, "陈静", "demo-coordinator")
DEMO_VOLUNTEER = DemoPerson(1002, "李明", "demo-volunteer")
"""Already joined when the sandbox starts: the coordinator has sent a broadcast and posted a
task, the volunteer has taken a slot (services/demo_activity.py)."""

JOIN_TEXTS: dict[int, tuple[tuple[str, str], ...]] = {
    1001: (("加入网格（居民）", "/start demo-resident"), ("/help", "/help")),
    1002: (("加入网格（志愿者）", "/start demo-volunteer"), ("/help", "/help")),
    1003: (("加入网格（网格员）", "/start demo-gridworker"), ("/help", "/help")),
    1004: (("加入社区（社区干部）", "/start demo-coordinator"), ("/help", "/help")),
    1005: (("Join as resident", "/start demo-resident"), ("/help", "/help")),
}


async def prepare_demo_database(settings: Settings) -> None:
    if settings.sqlite_path:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            await seed_demo(session, utcnow())
            await seed_activity(
                session,
                utcnow(),
                DEMO_COORDINATOR,
                DEMO_VOLUNTEER,
                TaskRules.of(settings),
                BroadcastPolicy.of(settings),
            )
    finally:
        await db.dispose()


async def run_sandbox(settings: Settings, *, port: int, runtime: str = "aiogram") -> None:
    await prepare_demo_database(settings)
    server = SandboxServer(
        token=SANDBOX_TOKEN,
        bot_username=BOT_USERNAME,
        port=port,
        demo_users=DEMO_USERS,
        quick_texts=JOIN_TEXTS,
    )
    url = await server.start()
    bot_settings = settings.model_copy(
        update={
            "telegram_token": SecretStr(SANDBOX_TOKEN),
            "telegram_api_url": url,
            "webhook_url": None,
        }
    )
    print(
        f"\n  gridbot sandbox is running: open {url} in your browser\n"
        f"  (demo database: {settings.database_url}; Ctrl+C to stop)\n",
        flush=True,
    )
    try:
        await run_bot(bot_settings, runtime if runtime == "ptb" else "aiogram")  # type: ignore[arg-type]
    finally:
        await server.stop()


__all__ = ["RuntimeName", "run_sandbox"]
