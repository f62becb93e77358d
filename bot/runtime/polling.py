"""Long polling that confirms an update to Telegram only after its transaction committed.

The offset sent with the next getUpdates is what confirms earlier updates, so it only moves
past an update once :meth:`App.process` returned for it. If the process dies, Telegram sends
the unconfirmed updates again and the ``(channel, update_id)`` memory skips the ones done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from bot.app import App
from bot.runtime.incoming import incoming_from_update
from jobs.transport import NetworkError, TransportError, Unauthorized

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25


class UpdateSource(Protocol):
    async def fetch(self, offset: int | None, timeout: int) -> Sequence[dict[str, Any]]:
        """Raw updates as Bot API JSON dicts."""
        ...


async def poll(
    source: UpdateSource, app: App, stop: asyncio.Event, timeout: int = POLL_TIMEOUT
) -> None:
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        fetch = asyncio.ensure_future(source.fetch(offset, timeout))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not fetch.done():
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)
            break
        try:
            batch = fetch.result()
        except Unauthorized:
            log.error("the Bot API refused the token; stopping")
            raise
        except (NetworkError, TransportError, OSError) as trouble:
            failures += 1
            delay = min(2.0**failures, 30.0)
            log.warning("getUpdates failed (%s); trying again in %.0fs", trouble, delay)
            await _sleep_or_stop(stop, delay)
            continue
        failures = 0
        incoming = [
            converted
            for update in batch
            if (converted := incoming_from_update(update, app.bot.username, app.clock()))
        ]
        try:
            await app.process_batch(incoming)
        except Exception:
            log.exception(
                "a batch of %s updates could not be processed; it will come again", len(batch)
            )
            await _sleep_or_stop(stop, 1.0)
            continue
        if batch:
            offset = int(batch[-1]["update_id"]) + 1


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
