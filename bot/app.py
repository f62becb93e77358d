"""The application core: one transaction per update, replies through the outbox, delivered
right after the commit. Runtimes call :meth:`App.process` with a neutral :class:`Incoming`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import Database
from bot.i18n import normalize_locale, translator
from bot.liveness import Liveness
from bot.settings import Settings
from handlers import build_registry
from handlers.context import AppInfo, Context
from handlers.dispatcher import dispatch
from handlers.router import Registry
from handlers.types import Incoming, Toast
from jobs.sender import Courier
from jobs.transport import BotIdentity, Transport, TransportError
from models.base import utcnow
from models.outbox import Priority
from services import held, members, outbox, updates
from services.errors import PermissionDenied, ServiceError
from services.held import HeldPolicy
from services.messages import Text
from services.outbox import OutboxRow
from services.visitors import load_visitor

log = logging.getLogger(__name__)


@dataclass
class Handled:
    rows: list[OutboxRow] = field(default_factory=list)
    toast: Toast | None = None
    duplicate: bool = False
    queued_for_others: bool = False


class App:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        transport: Transport,
        bot: BotIdentity,
        *,
        registry: Registry | None = None,
        clock: Callable[[], datetime] = utcnow,
        instance_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.transport = transport
        self.bot = bot
        self.clock = clock
        self.instance_id = instance_id or f"proc-{uuid.uuid4().hex[:12]}"
        self.info = AppInfo(settings, bot.username, registry or build_registry())
        self.liveness = Liveness(db, self.instance_id)
        self.courier = Courier(
            db,
            transport,
            owner=self.instance_id,
            rate=settings.send_rate_per_second,
            lease_seconds=settings.outbox_lease_seconds,
            clock=clock,
        )

    async def process(self, incoming: Incoming) -> Handled:
        """Handle one update and start delivering its replies (without waiting for them)."""
        handled = await self.handle(incoming)
        await self._after_commit(incoming, handled)
        return handled

    async def process_batch(self, batch: Sequence[Incoming]) -> list[Handled]:
        """Handle a batch of updates (one getUpdates answer) in one transaction.

        Each update still changes all or nothing: when any of them is refused or fails, the
        batch's transaction is rolled back and every update is handled again in a transaction
        of its own, which is where refusals and failures are answered. Sharing the commit
        saves a BEGIN/COMMIT per update (on PostgreSQL a WAL flush per update).
        """
        if len(batch) <= 1:
            return [await self.process(incoming) for incoming in batch]
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                fresh = await updates.claim_updates(
                    session, [(i.channel, i.update_id) for i in batch], now
                )
                results = []
                for incoming in batch:
                    key = (incoming.channel, incoming.update_id)
                    results.append(await self._run_in(session, incoming, now, claimed=key in fresh))
                    fresh.discard(key)
        except Exception:
            results = [await self.handle(incoming) for incoming in batch]
        for incoming, handled in zip(batch, results, strict=True):
            await self._after_commit(incoming, handled)
        return results

    async def _after_commit(self, incoming: Incoming, handled: Handled) -> None:
        self.courier.deliver_soon(incoming.chat_id, handled.rows)
        if incoming.callback_id:
            await self._answer(incoming.callback_id, handled.toast)
        if handled.queued_for_others:
            self.courier.wake()

    async def handle(self, incoming: Incoming) -> Handled:
        now = self.clock()
        try:
            return await self._handle(incoming, now)
        except Exception:
            log.exception("update %s failed (chat %s)", incoming.update_id, incoming.chat_id)
            return await self._apologise(incoming, now)

    async def _handle(self, incoming: Incoming, now: datetime) -> Handled:
        try:
            return await self._run(incoming, now)
        except ServiceError as refusal:
            return await self._refuse(incoming, now, refusal)

    async def _run(self, incoming: Incoming, now: datetime) -> Handled:
        async with self.db.transaction() as session:
            return await self._run_in(session, incoming, now)

    async def _run_in(
        self,
        session: AsyncSession,
        incoming: Incoming,
        now: datetime,
        claimed: bool | None = None,
    ) -> Handled:
        """One update inside a transaction the caller owns; ``claimed`` says whether the caller
        already recorded the update as seen for the first time (None: record it here)."""
        if claimed is None:
            claimed = await updates.claim_update(session, incoming.channel, incoming.update_id, now)
        if not claimed:
            log.info("update %s already processed", incoming.update_id)
            return Handled(duplicate=True)
        session.info.pop(outbox.QUEUED_FLAG, None)
        visitor = await load_visitor(
            session, incoming.channel, incoming.user_id, incoming.chat_id, now
        )
        member = visitor.member
        if member is not None and member.blocked:
            await members.mark_returned(session, member.id)
            await held.release(session, member.id, now, HeldPolicy.of(self.settings))
        locale = (
            member.locale
            if member
            else normalize_locale(incoming.language_code, self.settings.default_locale)
        )
        ctx = Context(
            incoming=incoming,
            session=session,
            now=now,
            app=self.info,
            t=translator(locale),
            member=member,
            actor=visitor.actor,
            state=visitor.state,
        )
        await dispatch(ctx)
        rows: list[OutboxRow] = []
        for reply in ctx.replies:
            rows += await outbox.enqueue(
                session,
                incoming.chat_id,
                reply,
                now,
                member_id=ctx.member.id if ctx.member else None,
                priority=Priority.reply,
                source=f"update:{incoming.update_id}",
                lease_owner=self.instance_id,
                lease_seconds=self.settings.outbox_lease_seconds,
            )
        queued = bool(session.info.get(outbox.QUEUED_FLAG))
        return Handled(rows, ctx.toast, queued_for_others=queued)

    async def _refuse(self, incoming: Incoming, now: datetime, refusal: ServiceError) -> Handled:
        """A refusal: everything the update did is rolled back; the person gets the reason."""
        if isinstance(refusal, PermissionDenied):
            log.warning(
                "permission denied on update %s (chat %s)", incoming.update_id, incoming.chat_id
            )
        async with self.db.transaction() as session:
            if not await updates.claim_update(session, incoming.channel, incoming.update_id, now):
                return Handled(duplicate=True)
            member = await members.find_member(session, incoming.user_id)
            t = translator(
                member.locale
                if member
                else normalize_locale(incoming.language_code, self.settings.default_locale)
            )
            text = t(refusal.key, **refusal.params)
            rows = await outbox.enqueue(
                session,
                incoming.chat_id,
                Text(text),
                now,
                member_id=member.id if member else None,
                priority=Priority.reply,
                source=f"update:{incoming.update_id}",
                lease_owner=self.instance_id,
                lease_seconds=self.settings.outbox_lease_seconds,
            )
        return Handled(rows, Toast(text[:200], alert=True) if incoming.callback_id else None)

    async def _apologise(self, incoming: Incoming, now: datetime) -> Handled:
        """Something broke: the update's changes are gone; say sorry once and move on.
        If even this fails (the database is down), the error reaches the runtime, which
        leaves the update unconfirmed so that it comes again."""
        t = translator(normalize_locale(incoming.language_code, self.settings.default_locale))
        async with self.db.transaction() as session:
            if not await updates.claim_update(session, incoming.channel, incoming.update_id, now):
                return Handled(duplicate=True)
            rows = await outbox.enqueue(
                session,
                incoming.chat_id,
                Text(t("core.error")),
                now,
                priority=Priority.reply,
                source=f"update:{incoming.update_id}",
                lease_owner=self.instance_id,
                lease_seconds=self.settings.outbox_lease_seconds,
            )
        return Handled(rows, Toast(t("core.error")))

    async def _answer(self, callback_id: str, toast: Toast | None) -> None:
        try:
            await self.transport.answer_callback(
                callback_id, toast.text[:200] if toast else None, toast.alert if toast else False
            )
        except TransportError as error:
            log.info("could not answer a button press: %s", error)

    async def start(self) -> None:
        """Announce this process as alive, then recover what a dead one left in flight."""
        await self.liveness.start()
        await self.recover()

    async def close(self) -> None:
        await self.courier.flush()
        await self.liveness.stop()

    async def recover(self) -> None:
        """Replies leased by a process that died go back to the queue at once instead of
        waiting for their lease to run out, and are sent before any new update is answered.
        With SQLite this is the only process, so every lease is orphaned; with PostgreSQL
        only those of processes whose liveness lock is free."""
        async with self.db.transaction() as session:
            if self.db.dialect == "sqlite":
                released = await outbox.release_leases(session)
            else:
                released = 0
                for owner in await self.liveness.dead(await outbox.lease_owners(session)):
                    released += await outbox.release_leases(session, owner)
        if released:
            log.info("re-queued %s messages left in flight by the previous run", released)
        sent = await self.courier.drain_replies()
        if sent:
            log.info("sent %s replies the previous run had not delivered", sent)
