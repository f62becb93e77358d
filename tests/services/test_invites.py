"""Invites: limits, kinds of unit per role, and the race for the last use."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import func, select

from bot.db import Database
from models.base import utcnow
from models.invites import Invite, InviteUse
from models.members import RoleGrant
from services.access import Actor
from services.errors import InvalidInput, NotFound, ServiceError
from services.invites import create_invite, redeem
from services.members import Person


async def test_roles_can_only_be_held_on_their_kind_of_unit(demo_db: Database) -> None:
    async with demo_db.transaction() as session:
        with pytest.raises(InvalidInput) as refused:
            await create_invite(
                session, Actor.cli(), role="grid_worker", unit_code="C1", now=utcnow()
            )
    assert refused.value.key == "invite.wrong_unit_kind"
    assert refused.value.params["kinds"] == "grid"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"role": "mayor", "unit_code": "G1"}, "invite.role_unknown"),
        ({"role": "resident", "unit_code": "NOPE"}, "org.unit_unknown"),
        ({"role": "resident", "unit_code": "G1", "max_uses": 0}, "invite.bad_uses"),
        ({"role": "resident", "unit_code": "G1", "expires_days": 400}, "invite.bad_expiry"),
    ],
)
async def test_bad_invite_requests_are_refused(
    demo_db: Database, options: dict[str, object], key: str
) -> None:
    async with demo_db.transaction() as session:
        with pytest.raises(ServiceError) as refused:
            await create_invite(session, Actor.cli(), now=utcnow(), **options)  # type: ignore[arg-type]
    assert refused.value.key == key


async def test_unknown_token_is_not_found(demo_db: Database) -> None:
    async with demo_db.transaction() as session:
        with pytest.raises(NotFound):
            await redeem(session, "x" * 200, Person(1, 1, "A", "en"), utcnow())


async def test_many_people_racing_for_the_last_use_exactly_one_joins(demo_db: Database) -> None:
    async with demo_db.transaction() as session:
        await create_invite(
            session,
            Actor.cli(),
            role="volunteer",
            unit_code="G1",
            now=utcnow(),
            max_uses=1,
            token="last-seat",
        )

    async def attempt(person_id: int) -> str:
        try:
            async with demo_db.transaction() as session:
                await redeem(
                    session, "last-seat", Person(person_id, person_id, "P", "zh_CN"), utcnow()
                )
        except InvalidInput as refused:
            return refused.key
        return "joined"

    results = await asyncio.gather(*(attempt(5000 + i) for i in range(12)))
    assert sorted(results) == ["invite.used_up"] * 11 + ["joined"]
    async with demo_db.transaction() as session:
        invite = (
            await session.execute(select(Invite).where(Invite.token == "last-seat"))
        ).scalar_one()
        grants = (
            await session.execute(
                select(func.count()).select_from(RoleGrant).where(RoleGrant.invite_id == invite.id)
            )
        ).scalar_one()
        uses = (
            await session.execute(
                select(func.count()).select_from(InviteUse).where(InviteUse.invite_id == invite.id)
            )
        ).scalar_one()
    assert (invite.uses, grants, uses) == (1, 1, 1)
