"""`gridbot run`: start-up checks, then polling or webhook until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Literal

from bot.app import App
from bot.db import Database
from bot.i18n import translator
from bot.instance import InstanceLock
from bot.migrate import current_revision, head_revision
from bot.runtime.polling import poll
from bot.settings import LOCALES, Settings, SettingsError
from handlers import build_registry
from jobs.scheduler import build_scheduler
from jobs.transport import Transport, TransportError

log = logging.getLogger(__name__)

RuntimeName = Literal["aiogram", "ptb"]


async def check_schema(db: Database) -> None:
    async with db.engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    head = head_revision()
    if current != head:
        raise SettingsError(
            f"GRIDBOT_DATABASE_URL: the database is at migration {current or 'none'}, "
            f"this version needs {head}; run `gridbot db upgrade`"
        )


async def set_public_commands(transport: Transport, settings: Settings) -> None:
    """The menu people see before joining, in each language (members get their own)."""
    registry = build_registry()
    specs = registry.menu(frozenset(), is_member=False)
    for language in (None, *LOCALES):
        t = translator(language or settings.default_locale)
        code = None if language is None else language.split("_")[0]
        try:
            await transport.set_commands(None, [(s.name, t(s.description)) for s in specs], code)
        except TransportError as error:
            log.warning("could not set the public command menu: %s", error)


async def run_bot(settings: Settings, runtime: RuntimeName = "aiogram") -> None:
    lock = InstanceLock(settings.sqlite_path) if settings.sqlite_path else None
    if lock:
        lock.acquire()
    db = Database(settings.database_url)
    try:
        await check_schema(db)
        await _serve(settings, db, runtime)
    finally:
        await db.dispose()
        if lock:
            lock.release()


async def _serve(settings: Settings, db: Database, runtime: RuntimeName) -> None:
    if runtime == "ptb":
        from bot.runtime.ptb_runtime import PtbRuntime

        ptb = PtbRuntime(settings)
        await ptb.start()
        adapter: object = ptb
        transport: Transport = ptb.transport
        source = ptb.source
    else:
        from bot.runtime.aiogram_runtime import AiogramRuntime

        aio = AiogramRuntime(settings)
        adapter = aio
        transport = aio.transport
        source = aio.source  # type: ignore[assignment]
    try:
        identity = await transport.get_me()
        app = App(settings, db, transport, identity)
        log.info("running as @%s with %s", identity.username, runtime)
        await app.start()
        await set_public_commands(transport, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sender = asyncio.create_task(app.courier.run(stop))
        scheduler = build_scheduler(settings, db, app.clock)
        scheduler.start()
        try:
            if settings.webhook_url and runtime == "aiogram":
                await aio.serve_webhook(app, stop)
            else:
                await source.delete_webhook()
                await poll(source, app, stop)
        finally:
            stop.set()
            scheduler.shutdown(wait=False)
            await sender
            await app.close()
    finally:
        await adapter.close()  # type: ignore[attr-defined]
