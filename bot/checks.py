"""`gridbot check`: settings, database and token, each with a one-line verdict."""

from __future__ import annotations

from collections.abc import Callable

from bot.db import Database
from bot.migrate import current_revision, head_revision
from bot.settings import Settings
from jobs.transport import TransportError


async def run_checks(settings: Settings, echo: Callable[[str], object]) -> bool:
    ok = True
    echo("✓ settings: loaded")

    db = Database(settings.database_url)
    try:
        async with db.engine.connect() as connection:
            current = await connection.run_sync(current_revision)
        head = head_revision()
        if current == head:
            echo(f"✓ database: reachable, schema at the latest migration ({head})")
        else:
            ok = False
            echo(
                f"✗ database: schema at {current or 'nothing'}, needs {head}: "
                "run `gridbot db upgrade`"
            )
    except Exception as error:
        ok = False
        echo(f"✗ database: cannot connect ({str(error).splitlines()[0]})")
    finally:
        await db.dispose()

    if settings.telegram_token is None:
        echo("✗ token: GRIDBOT_TELEGRAM_TOKEN is not set")
        return False
    from bot.runtime.aiogram_runtime import AiogramTransport, make_bot

    bot = make_bot(settings)
    try:
        me = await AiogramTransport(bot).get_me()
        where = settings.telegram_api_url or "api.telegram.org"
        echo(f"✓ token: accepted by {where}, the bot is @{me.username}")
    except TransportError as error:
        ok = False
        echo(f"✗ token: the Bot API said {error}")
    except Exception as error:
        ok = False
        echo(f"✗ token: cannot reach the Bot API ({str(error).splitlines()[0]})")
    finally:
        await bot.session.close()
    return ok
