"""Staff create invites from the chat, only within their own scope."""

from __future__ import annotations

from sqlmodel import col, select

from models.invites import Invite
from tests.conftest import COORDINATOR, GRID_WORKER, RESIDENT, STRANGER
from tests.harness import Harness


async def invites(harness: Harness) -> list[Invite]:
    async with harness.app.db.transaction() as session:
        return list((await session.execute(select(Invite).order_by(col(Invite.id)))).scalars())


async def test_coordinator_creates_an_invite_that_works(harness: Harness) -> None:
    await harness.send(COORDINATOR, "/start demo-coordinator")
    chooser = (await harness.send(COORDINATOR, "/invite"))[0]
    assert chooser.text == "要邀请什么角色？"
    labels = [label for row in chooser.buttons for label, _ in row]
    assert labels == ["居民", "志愿者", "网格员", "网格长", "部门联络员"]

    await harness.press(COORDINATOR, chooser.button("网格员"), chooser)
    assert "邀请「网格员」加入哪里？" in chooser.text, "the same message moves on"
    units = [label for row in chooser.buttons for label, _ in row]
    assert units == ["新德第一网格 (G1)", "新德第二网格 (G2)"], "only grids of C1"

    await harness.press(COORDINATOR, chooser.button("G2"), chooser)
    assert "邀请「网格员」加入 新德第二网格 (G2)" in chooser.text
    replies = await harness.press(COORDINATOR, chooser.button("10 人"), chooser)

    assert "✅ 邀请已生成：「网格员」· 新德第二网格 (G2)" in chooser.text
    link = chooser.text.rsplit("\n", 1)[1]
    assert link.startswith("https://t.me/gridbot_test_bot?start=")
    qr = replies[-1]
    assert qr.kind == "photo"
    assert qr.upload is not None
    assert qr.upload.data.startswith(b"\x89PNG"), "a QR code picture"
    assert qr.buttons == [[("打开邀请链接", None)]], "a URL button, no payload"

    token = link.split("start=")[1]
    joined = await harness.send(STRANGER, f"/start {token}")
    assert "您已作为「网格员」加入 新德第二网格 (G2)" in joined[0].text
    created = (await invites(harness))[-1]
    assert created.max_uses == 10
    assert created.uses == 1


async def test_grid_worker_may_only_invite_residents_of_their_grid(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    chooser = (await harness.send(GRID_WORKER, "/invite"))[0]
    assert [label for row in chooser.buttons for label, _ in row] == ["居民"]
    await harness.press(GRID_WORKER, chooser.button("居民"), chooser)
    units = [label for row in chooser.buttons for label, _ in row]
    assert units == ["新德第一网格 (G1)", "新德1号楼 (B1)", "新德2号楼 (B2)"]


async def test_forged_unit_outside_scope_is_refused_and_nothing_created(
    harness: Harness,
) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    chooser = (await harness.send(GRID_WORKER, "/invite"))[0]
    await harness.press(GRID_WORKER, chooser.button("居民"), chooser)
    nonce = chooser.button("G1").split(":")[1]
    before = len(await invites(harness))
    async with harness.app.db.transaction() as session:
        from models.org import Unit

        other = (await session.execute(select(Unit).where(Unit.code == "B4"))).scalar_one()
    replies = await harness.press(GRID_WORKER, f"inv_unit:{nonce}:{other.id}", chooser)
    assert replies[-1].text == "抱歉，您没有权限执行此操作。"
    assert harness.last_toast() == "抱歉，您没有权限执行此操作。"
    assert len(await invites(harness)) == before


async def test_forged_role_escalation_is_refused(harness: Harness) -> None:
    await harness.send(GRID_WORKER, "/start demo-gridworker")
    chooser = (await harness.send(GRID_WORKER, "/invite"))[0]
    nonce = chooser.button("居民").split(":")[1]
    await harness.press(GRID_WORKER, f"inv_role:{nonce}:admin", chooser)
    assert harness.last_toast() == "抱歉，您没有权限执行此操作。"
    assert chooser.text == "要邀请什么角色？", "the flow did not move on"
    await harness.press(GRID_WORKER, chooser.button("居民"), chooser)
    assert "邀请「居民」加入哪里？" in chooser.text, "the genuine choice still works"


async def test_pages_of_units_for_an_admin(harness: Harness) -> None:
    await harness.send(RESIDENT, "/start demo-admin")
    chooser = (await harness.send(RESIDENT, "/invite"))[0]
    await harness.press(RESIDENT, chooser.button("居民"), chooser)
    assert "第 1/2 页" in chooser.text
    await harness.press(RESIDENT, chooser.button("▶"), chooser)
    assert "第 2/2 页" in chooser.text
    assert "◀" in [label for row in chooser.buttons for label, _ in row]
