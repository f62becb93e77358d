"""The delivery engine: drains the outbox at Telegram's limits and records every outcome.

* at most ``rate`` sends a second for the whole bot, spaced evenly (no bursts);
* at most one message a second per chat for queued notifications (replies to the person who
  just wrote go out at once);
* a 429 pauses the whole bot for ``retry_after``; network errors and 5xx retry with backoff;
  a 403 marks the person as having blocked the bot and holds back what is queued for them.

A row is leased before it is sent and marked after Telegram answered, each in its own short
transaction; no transaction is open across an HTTP call. A crash between Telegram's answer and
the mark is the only way a message goes out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from bot.db import Database
from jobs.transport import (
    BadRequest,
    Blocked,
    NetworkError,
    NotModified,
    RetryAfter,
    Transport,
    TransportError,
    Upload,
)
from models.outbox import OutboxStatus, Priority
from services import outbox
from services.messages import Commands, Document, Edit, Photo, Text, from_payload
from services.outbox import OutboxRow

log = logging.getLogger(__name__)

PER_CHAT_INTERVAL = 1.0
RECORD_DELAY = 0.02
ROWS_PER_CHAT_PER_CLAIM = 2
SENDER_LOCK_KEY = 0x67726964  # "grid": one sender per bot token across processes


@dataclass(frozen=True)
class Sent:
    message_id: int | None


@dataclass(frozen=True)
class Retry:
    after: float
    error: str
    counted: bool = True


@dataclass(frozen=True)
class Failed:
    error: str


@dataclass(frozen=True)
class BlockedByUser:
    pass


Outcome = Sent | Retry | Failed | BlockedByUser


def backoff(attempts: int) -> float:
    return float(min(2**attempts, 300))


class Gate:
    """Bot-wide pacing over a sliding one-second window, and a pause after a 429.

    A send holds a place in the window from the moment it starts until one second after the
    Bot API answered it. Telegram counts a message when it arrives, which is somewhere in
    between, so the bot never has more than ``rate`` messages in any second as Telegram sees
    it, whatever the network delays; a send that never gets an answer keeps its place.
    Starts are also spaced ``1 / rate`` apart, so the queue goes out evenly, not in bursts.

    Queued messages wait for room in the window. Replies to someone who just wrote do not
    wait (they are bounded by incoming traffic and a person is waiting for them), but they
    take room in the window, so bulk sending slows down while many people are chatting.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._waiting = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def _trim(self, now: float) -> None:
        while self._done and self._done[0] <= now - 1.0:
            self._done.popleft()

    async def acquire(self, *, wait_for_room: bool = True) -> None:
        """Take a place in the window; call :meth:`release` when the Bot API answered.
        Waiters queue behind one lock (first come, first served), so a hundred queued sends
        do not all wake up at every tick."""
        if not wait_for_room:
            if self.paused_for > 0:
                await asyncio.sleep(self.paused_for)
            self._take(time.monotonic())
            return
        async with self._waiting:
            while True:
                pause = self.paused_for
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                now = time.monotonic()
                self._trim(now)
                if now < self._next_start:
                    await asyncio.sleep(self._next_start - now)
                    continue
                if len(self._done) + self._in_flight < self.rate:
                    self._take(now)
                    return
                # Full: wait until the oldest answered send leaves the window (or, when every
                # place is still in flight, a moment for one to be answered).
                await asyncio.sleep(self._done[0] + 1.0 - now if self._done else 0.005)

    def _take(self, now: float) -> None:
        self._in_flight += 1
        interval = 1.0 / self.rate
        # A waiter woken a little late does not push every later start back: the schedule
        # keeps its beat (catching up at most one interval).
        self._next_start = max(self._next_start, now - interval) + interval

    def release(self) -> None:
        self._in_flight -= 1
        self._done.append(time.monotonic())


class Courier:
    """Sends outbox rows through a :class:`Transport`: replies at once, the rest by draining."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        owner: str,
        rate: float = 30.0,
        lease_seconds: float = 30.0,
        clock: Callable[[], datetime],
        batch: int = 100,
        per_chat_interval: float = PER_CHAT_INTERVAL,
    ) -> None:
        self.db = db
        self.transport = transport
        self.owner = owner
        self.gate = Gate(rate)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.batch = batch
        self.per_chat_interval = per_chat_interval
        self._last_sent: dict[int, float] = {}
        self._delivered: list[tuple[int, datetime, int | None]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._chains: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    # -- replies: right after the update's commit, in order per chat ---------------------------

    def deliver_soon(self, chat_id: int, rows: Sequence[OutboxRow]) -> None:
        """Queue rows behind whatever this chat is already being sent, without waiting."""
        if not rows:
            return
        previous = self._chains.get(chat_id)

        async def chain() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            for row in rows:
                await self.deliver(row, spaced=False)

        task = asyncio.create_task(chain())
        self._chains[chat_id] = task
        task.add_done_callback(lambda t: self._forget(chat_id, t))

    def _forget(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._chains.get(chat_id) is task:
            del self._chains[chat_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery chain for a chat failed", exc_info=task.exception())

    async def flush(self) -> None:
        """Wait until every reply handed to :meth:`deliver_soon` has been tried and recorded."""
        while self._chains:
            await asyncio.gather(*list(self._chains.values()), return_exceptions=True)
        await self.record_delivered()

    def wake(self) -> None:
        """New rows were committed: drain now instead of at the next tick."""
        self._wake.set()

    # -- one row --------------------------------------------------------------------------

    async def deliver(self, row: OutboxRow, *, spaced: bool = True) -> Outcome:
        if spaced:
            last = self._last_sent.get(row.chat_id, 0.0)
            wait = last + self.per_chat_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        await self.gate.acquire(wait_for_room=spaced)
        self._last_sent[row.chat_id] = time.monotonic()
        try:
            outcome = await self._attempt(row)
        finally:
            self.gate.release()
            # Per chat, too, the interval counts from the answer (when Telegram has seen it).
            self._last_sent[row.chat_id] = time.monotonic()
        await self._record(row, outcome)
        return outcome

    async def _attempt(self, row: OutboxRow) -> Outcome:
        try:
            message = from_payload(row.kind, row.payload)
            match message:
                case Text():
                    return Sent(await self.transport.send_text(row.chat_id, message))
                case Photo():
                    upload = await self._upload(message.blob_id) if message.blob_id else None
                    return Sent(await self.transport.send_photo(row.chat_id, message, upload))
                case Document():
                    upload = await self._upload(message.blob_id)
                    if upload is None:
                        return Failed("file is gone")
                    return Sent(await self.transport.send_document(row.chat_id, message, upload))
                case Edit():
                    return await self._edit(row, message)
                case Commands():
                    await self.transport.set_commands(row.chat_id, message.commands, None)
                    return Sent(None)
        except RetryAfter as flood:
            self.gate.pause(flood.seconds)
            return Retry(flood.seconds, str(flood), counted=False)
        except Blocked:
            return BlockedByUser()
        except NotModified:
            return Sent(None)
        except BadRequest as refused:
            log.warning("outbox row %s refused by the Bot API: %s", row.id, refused)
            return Failed(str(refused))
        except (NetworkError, TimeoutError, OSError) as trouble:
            return Retry(backoff(row.attempts), f"network: {trouble}")
        except (TransportError, ValueError, KeyError) as trouble:
            log.exception("outbox row %s could not be sent", row.id)
            return Retry(backoff(row.attempts), f"error: {trouble}")
        return Failed(f"unknown kind {row.kind}")

    async def _upload(self, blob_id: int | None) -> Upload | None:
        if blob_id is None:
            return None
        async with self.db.transaction() as session:
            blob = await outbox.load_blob(session, blob_id)
        return Upload(blob.data, blob.filename, blob.mime_type) if blob else None

    async def _edit(self, row: OutboxRow, message: Edit) -> Outcome:
        message_id = message.message_id
        if message_id is None and message.outbox_id is not None:
            async with self.db.transaction() as session:
                status, message_id = await outbox.message_id_of(session, message.outbox_id)
            if message_id is None:
                if status in (OutboxStatus.pending, OutboxStatus.sending):
                    return Retry(1.0, "edited message not sent yet")
                return Failed("edited message was never delivered")
        assert message_id is not None
        await self.transport.edit_text(row.chat_id, message_id, message)
        return Sent(message_id)

    async def _record(self, row: OutboxRow, outcome: Outcome) -> None:
        now = self.clock()
        if isinstance(outcome, Sent):
            self._delivered.append((row.id, now, outcome.message_id))
            if self._recorder is None or self._recorder.done():
                self._recorder = asyncio.create_task(self._record_soon())
            return
        async with self.db.transaction() as session:
            match outcome:
                case Retry(after, error, counted):
                    await outbox.mark_retry(
                        session, row.id, now + timedelta(seconds=after), error, count=counted
                    )
                case Failed(error):
                    await outbox.mark_failed(session, row.id, error)
                case BlockedByUser():
                    await outbox.mark_blocked(session, row.id, row.chat_id, now)
        if isinstance(outcome, Retry):
            self.wake()

    async def _record_soon(self) -> None:
        await asyncio.sleep(RECORD_DELAY)
        await self.record_delivered()

    async def record_delivered(self) -> None:
        """Mark delivered rows as sent, many per transaction.

        Waiting up to RECORD_DELAY to gather them widens the window in which a crash would
        send a message twice from one commit to RECORD_DELAY plus one commit."""
        while self._delivered:
            batch, self._delivered = self._delivered, []
            try:
                async with self.db.transaction() as session:
                    await outbox.mark_sent_many(session, batch)
            except Exception:
                log.exception("could not record %s deliveries; they may be sent again", len(batch))

    # -- draining the queue ---------------------------------------------------------------

    async def drain_once(self) -> int:
        """Claim due rows and send them; returns how many were claimed."""
        now = self.clock()
        async with self.db.transaction() as session:
            rows = await outbox.claim(
                session, self.owner, now, limit=self.batch, lease_seconds=self.lease_seconds
            )
        if not rows:
            return 0
        by_chat: dict[int, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        later = [r for chat_rows in by_chat.values() for r in chat_rows[ROWS_PER_CHAT_PER_CLAIM:]]
        if later:
            async with self.db.transaction() as session:
                await outbox.release_ids(session, [r.id for r in later])
        await asyncio.gather(
            *(
                self._deliver_chat(chat_rows[:ROWS_PER_CHAT_PER_CLAIM])
                for chat_rows in by_chat.values()
            )
        )
        await self.record_delivered()
        self._prune_pacing()
        return len(rows)

    async def drain_replies(self) -> int:
        """Send every queued reply now, in order per chat and without per-chat spacing.

        Used at start-up: replies a dead process committed but never sent go out before any
        new update is answered, so each chat still reads in the order it was written. Only
        replies: urgent broadcasts rank higher in the queue but must keep the pace."""
        total = 0
        while True:
            async with self.db.transaction() as session:
                rows = await outbox.claim(
                    session,
                    self.owner,
                    self.clock(),
                    limit=self.batch,
                    lease_seconds=self.lease_seconds,
                    only_priority=Priority.reply,
                )
            if not rows:
                return total
            total += len(rows)
            by_chat: dict[int, list[OutboxRow]] = defaultdict(list)
            for row in sorted(rows, key=lambda r: r.id):
                by_chat[row.chat_id].append(row)

            async def in_order(chat_rows: list[OutboxRow]) -> None:
                for row in chat_rows:
                    await self.deliver(row, spaced=False)

            await asyncio.gather(*(in_order(chat_rows) for chat_rows in by_chat.values()))
            await self.record_delivered()

    async def _deliver_chat(self, rows: Sequence[OutboxRow]) -> None:
        for row in rows:
            outcome = await self.deliver(row)
            if isinstance(outcome, BlockedByUser):
                return

    def _prune_pacing(self) -> None:
        if len(self._last_sent) > 10_000:
            horizon = time.monotonic() - self.per_chat_interval
            self._last_sent = {c: t for c, t in self._last_sent.items() if t > horizon}

    async def run(self, stop: asyncio.Event, tick: float = 1.0) -> None:
        """Drain until ``stop`` is set. On PostgreSQL only the process holding the sender
        lock drains (one sender per bot token); the others keep trying to take it over."""
        if self.db.dialect == "postgresql":
            await self._run_elected(stop, tick)
        else:
            await self._loop(stop, tick)

    async def _loop(self, stop: asyncio.Event, tick: float) -> None:
        while not stop.is_set():
            try:
                claimed = await self.drain_once()
            except Exception:
                log.exception("draining the outbox failed; trying again shortly")
                claimed = 0
            if claimed:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _run_elected(self, stop: asyncio.Event, tick: float) -> None:
        while not stop.is_set():
            async with self.db.engine.connect() as connection:
                held = (
                    await connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": SENDER_LOCK_KEY}
                    )
                ).scalar()
                await connection.commit()
                if held:
                    log.info("this process is the outbox sender")
                    try:
                        await self._loop(stop, tick)
                    finally:
                        await connection.execute(
                            text("SELECT pg_advisory_unlock(:key)"), {"key": SENDER_LOCK_KEY}
                        )
                        await connection.commit()
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5 * tick)
