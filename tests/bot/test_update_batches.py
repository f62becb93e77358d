"""A getUpdates batch is handled in one transaction, yet every update is answered exactly once."""

from __future__ import annotations

from typing import Any

from bot.runtime.incoming import incoming_from_update
from handlers.types import Incoming
from tests.conftest import ALICE, RESIDENT
from tests.harness import Harness, User


def _message(harness: Harness, user: User, update_id: int, text: str) -> Incoming:
    update: dict[str, Any] = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "from": user.json(),
            "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }
    incoming = incoming_from_update(update, harness.app.bot.username, harness.clock())
    assert incoming is not None
    return incoming


async def test_a_batch_answers_each_new_update_once(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-resident")
    seen_before = _message(harness, RESIDENT, 500, "/me")
    await harness.app.process(seen_before)
    await harness.app.courier.flush()
    answers_before = len(harness.transport.chats[RESIDENT.id])

    batch = [
        seen_before,  # confirmed late by the runtime: already handled, not answered again
        _message(harness, RESIDENT, 501, "/me"),
        _message(harness, ALICE, 502, "/help"),
        _message(harness, RESIDENT, 501, "/me"),  # the same update twice in one batch
    ]
    results = await harness.app.process_batch(batch)
    await harness.app.courier.flush()

    assert [r.duplicate for r in results] == [True, False, False, True]
    assert len(harness.transport.chats[RESIDENT.id]) == answers_before + 1
    assert len(harness.transport.chats[ALICE.id]) == 1


async def test_a_batch_with_a_failing_update_answers_the_others(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-resident")
    answers_before = len(harness.transport.chats[RESIDENT.id])
    batch = [
        _message(harness, RESIDENT, 600, "/me"),
        _message(harness, ALICE, 601, "/start no-such-invite"),
        _message(harness, RESIDENT, 602, "/me"),
    ]
    results = await harness.app.process_batch(batch)
    await harness.app.courier.flush()

    assert not any(r.duplicate for r in results)
    assert len(harness.transport.chats[RESIDENT.id]) == answers_before + 2
    assert len(harness.transport.chats[ALICE.id]) == 1
