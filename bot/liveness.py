"""Which processes are alive (PostgreSQL): each holds an advisory lock named after its
instance id for as long as it runs. When a lock can be taken, its owner is gone, and the
outbox rows it had leased can be handed on at once instead of waiting for the lease to end."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db import Database


def lock_key(owner: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big", signed=True
    )


class Liveness:
    def __init__(self, db: Database, instance_id: str) -> None:
        self.db = db
        self.instance_id = instance_id
        self._connection: AsyncConnection | None = None

    async def start(self) -> None:
        if self.db.dialect != "postgresql":
            return
        self._connection = await self.db.engine.connect()
        await self._connection.execute(
            text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(self.instance_id)}
        )
        await self._connection.commit()

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def dead(self, owners: Iterable[str]) -> list[str]:
        """The owners in ``owners`` whose process no longer runs."""
        gone: list[str] = []
        async with self.db.engine.connect() as connection:
            for owner in owners:
                if owner == self.instance_id:
                    continue
                key = {"key": lock_key(owner)}
                taken = (
                    await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key)
                ).scalar()
                if taken:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                    gone.append(owner)
            await connection.commit()
        return gone
