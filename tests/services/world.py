"""People of the demo org for the wish, points and store tests: each joined with an invite, as
a real person would, and returned as the Actor the services see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from bot.db import Database
from models.outbox import OutboxMessage
from services import invites
from services.access import Actor, load_actor
from services.members import Person

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""A Monday morning in Shanghai, in the last quarter (hours nudges are on)."""


@dataclass(frozen=True)
class World:
    db: Database
    resident: Actor
    """王阿姨, resident of building B1 in grid G1 of community C1."""
    neighbour: Actor
    """A second resident of B1."""
    volunteer: Actor
    """李明, volunteer of G1."""
    volunteer2: Actor
    """Another volunteer of G1."""
    far_volunteer: Actor
    """A volunteer of G3, in community C2."""
    grid_worker: Actor
    grid_leader: Actor
    """Grid leader of G1."""
    coordinator: Actor
    """Coordinator of C1."""
    far_coordinator: Actor
    """Coordinator of C2."""
    department: Actor
    """Liaison of a department on street S1 (covers C1 and C2)."""

    def id(self, actor: Actor) -> int:
        assert actor.member_id is not None
        return actor.member_id


async def _join(db: Database, telegram_id: int, name: str, token: str) -> Actor:
    async with db.transaction() as session:
        joined = await invites.redeem(
            session, token, Person(telegram_id, telegram_id, name, "zh_CN"), NOW
        )
        return await load_actor(session, joined.member.id)


async def make_world(db: Database) -> World:
    async with db.transaction() as session:
        for token, role, unit in (
            ("far-volunteer", "volunteer", "G3"),
            ("far-coordinator", "coordinator", "C2"),
        ):
            await invites.create_invite(
                session, Actor.cli(), role=role, unit_code=unit, now=NOW, token=token
            )
    return World(
        db=db,
        resident=await _join(db, 3001, "王阿姨", "demo-resident"),
        neighbour=await _join(db, 3002, "赵大爷", "demo-resident"),
        volunteer=await _join(db, 3003, "李明", "demo-volunteer"),
        volunteer2=await _join(db, 3004, "周丽", "demo-volunteer"),
        far_volunteer=await _join(db, 3005, "孙强", "far-volunteer"),
        grid_worker=await _join(db, 3006, "张伟", "demo-gridworker"),
        grid_leader=await _join(db, 3007, "刘网格长", "demo-gridleader"),
        coordinator=await _join(db, 3008, "陈静", "demo-coordinator"),
        far_coordinator=await _join(db, 3009, "吴主任", "far-coordinator"),
        department=await _join(db, 3010, "水务所", "demo-department"),
    )


async def sent_to(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Payloads queued for a member (notifications), oldest first."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.member_id) == actor.member_id)
                .order_by(col(OutboxMessage.id))
            )
        ).scalars()
        return [dict(row.payload) | {"kind": row.kind} for row in rows]


async def texts_to(db: Database, actor: Actor) -> list[str]:
    return [str(p.get("text") or p.get("caption") or "") for p in await sent_to(db, actor)]


def buttons_of(payload: dict[str, Any]) -> Sequence[str]:
    return [b.get("payload", "") for row in payload.get("buttons") or [] for b in row]
