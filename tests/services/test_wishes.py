"""Micro-wishes as the people involved experience them: who may do what, what they are told,
and that a second press or a race changes nothing twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func, select

from bot.db import Database
from bot.i18n import translator
from models.points import LedgerEntry
from models.wishes import Skill, Wish, WishCategory, WishClaim, WishStatus
from services import points, wishes
from services.access import Actor
from services.errors import Conflict, PermissionDenied, ServiceError
from services.org import unit_by_code
from services.wishes import WishView
from tests.services.world import NOW, World, buttons_of, make_world, sent_to, texts_to

DAYS = 7
CONFIRM_DAYS = 3


@pytest.fixture
async def world(demo_db: Database) -> World:
    return await make_world(demo_db)


async def post(
    world: World, actor: Actor | None = None, *, category: str = "tutoring", **extra: object
) -> WishView:
    async with world.db.transaction() as session:
        return await wishes.create_wish(
            session,
            actor or world.resident,
            now=NOW,
            category=category,
            text=str(extra.pop("text", "孙子周末想找人辅导数学")),
            address=str(extra.pop("address", "1号楼2单元301")),
            **extra,  # type: ignore[arg-type]
        )


async def published(world: World, *, category: str = "tutoring", **extra: object) -> WishView:
    view = await post(world, None, category=category, **extra)
    async with world.db.transaction() as session:
        return await wishes.approve_wish(session, world.grid_leader, view.id, NOW)


async def claimed(world: World, volunteer: Actor | None = None) -> WishView:
    view = await published(world)
    async with world.db.transaction() as session:
        result = await wishes.claim_wish(
            session, volunteer or world.volunteer, view.id, NOW, claim_days=DAYS
        )
    return result.wish


async def fulfilled(world: World) -> WishView:
    view = await claimed(world)
    async with world.db.transaction() as session:
        return await wishes.fulfil_wish(
            session,
            world.volunteer,
            view.id,
            note="周六上午辅导了两个小时",
            now=NOW,
            confirm_days=CONFIRM_DAYS,
            hours=Decimal("1.5"),
        )


async def refused(world: World, action: object) -> ServiceError:
    """Run ``action(session)``; it must be refused. Returns the refusal."""
    with pytest.raises(ServiceError) as caught:
        async with world.db.transaction() as session:
            await action(session)  # type: ignore[operator]
    return caught.value


async def wish_row(world: World, wish_id: int) -> Wish:
    async with world.db.transaction() as session:
        wish = await session.get(Wish, wish_id)
        assert wish is not None
        return wish


async def ledger_count(world: World) -> int:
    async with world.db.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
        )


# -- posting and approving ---------------------------------------------------------------------


async def test_resident_posts_a_wish_and_the_grid_leader_and_coordinator_are_asked(
    world: World,
) -> None:
    view = await post(world)
    assert view.status == WishStatus.submitted
    assert view.unit.code == "B1"
    assert view.wisher_id == world.resident.member_id

    for approver in (world.grid_leader, world.coordinator):
        notices = await sent_to(world.db, approver)
        assert len(notices) == 1
        assert "新的微心愿待审核" in notices[0]["text"]
        assert f"#{view.id}「辅导功课」孙子周末想找人辅导数学" in notices[0]["text"]
        assert "1号楼2单元301" not in notices[0]["text"], "no address before a claim"
        assert buttons_of(notices[0]) == [f"wish:ok:{view.id}", f"wish:no:{view.id}"]
    for bystander in (world.resident, world.volunteer, world.far_coordinator):
        assert await sent_to(world.db, bystander) == []


async def test_too_long_or_empty_input_is_refused_and_nothing_is_created(world: World) -> None:
    too_long = await refused(
        world,
        lambda s: wishes.create_wish(
            s, world.resident, now=NOW, category="other", text="字" * 501, address="1号楼"
        ),
    )
    assert (too_long.key, too_long.params) == ("wishes.text_too_long", {"limit": 500})
    no_address = await refused(
        world,
        lambda s: wishes.create_wish(s, world.resident, now=NOW, category="other", text="灯坏了"),
    )
    assert no_address.key == "wishes.text_empty"
    bad_category = await refused(
        world,
        lambda s: wishes.create_wish(
            s, world.resident, now=NOW, category="cars", text="x", address="y"
        ),
    )
    assert bad_category.key == "wishes.category_invalid"
    past = await refused(
        world,
        lambda s: wishes.create_wish(
            s,
            world.resident,
            now=NOW,
            category="other",
            text="x",
            address="y",
            wished_by=NOW.date() - timedelta(days=3),
        ),
    )
    assert past.key == "wishes.date_invalid"
    async with world.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Wish))).scalar_one() == 0


@pytest.mark.parametrize("who", ["volunteer", "resident", "grid_worker", "far_coordinator"])
async def test_only_grid_leaders_and_coordinators_in_scope_approve(world: World, who: str) -> None:
    view = await post(world)
    refusal = await refused(
        world, lambda s: wishes.approve_wish(s, getattr(world, who), view.id, NOW)
    )
    assert isinstance(refusal, PermissionDenied)
    assert (await wish_row(world, view.id)).status == WishStatus.submitted


async def test_approving_twice_is_refused_and_the_resident_hears_once(world: World) -> None:
    view = await published(world)
    assert view.status == WishStatus.approved
    again = await refused(world, lambda s: wishes.approve_wish(s, world.coordinator, view.id, NOW))
    assert again.key == "wishes.already_approved"
    notices = await texts_to(world.db, world.resident)
    assert notices == [
        f"✅ 您的微心愿已通过审核并发布：#{view.id}「辅导功课」孙子周末想找人辅导数学"
    ]


async def test_an_approver_cannot_approve_their_own_wish(world: World) -> None:
    own = await post(world, world.grid_leader, category="repairs", text="楼道灯坏了")
    refusal = await refused(world, lambda s: wishes.approve_wish(s, world.grid_leader, own.id, NOW))
    assert refusal.key == "wishes.own_wish_approve"
    async with world.db.transaction() as session:
        pending = await wishes.pending_wishes(session, world.grid_leader)
        assert own.id not in [w.id for w in pending.wishes], "not offered for self-approval"
        view = await wishes.approve_wish(session, world.coordinator, own.id, NOW)
    assert view.status == WishStatus.approved


async def test_rejection_needs_a_reason_and_tells_the_resident(world: World) -> None:
    view = await post(world)
    empty = await refused(
        world, lambda s: wishes.reject_wish(s, world.grid_leader, view.id, "  ", NOW)
    )
    assert empty.key == "wishes.text_empty"
    async with world.db.transaction() as session:
        rejected = await wishes.reject_wish(
            session, world.grid_leader, view.id, "请联系社区低保窗口", NOW
        )
    assert rejected.status == WishStatus.rejected
    assert "原因：请联系社区低保窗口" in (await texts_to(world.db, world.resident))[-1]
    again = await refused(
        world, lambda s: wishes.claim_wish(s, world.volunteer, view.id, NOW, claim_days=DAYS)
    )
    assert again.key == "wishes.wrong_status"


# -- browsing, skills and privacy --------------------------------------------------------------


async def test_volunteers_browse_published_wishes_in_their_scope_only(world: World) -> None:
    submitted = await post(world, text="还没审核")
    open_ = await published(world, category="repairs", text="水龙头漏水")
    async with world.db.transaction() as session:
        mine = await wishes.open_wishes(session, world.volunteer)
        far = await wishes.open_wishes(session, world.far_volunteer)
        repairs = await wishes.open_wishes(session, world.volunteer, category=WishCategory.repairs)
        tutoring = await wishes.open_wishes(
            session, world.volunteer, category=WishCategory.tutoring
        )
        with pytest.raises(PermissionDenied):
            await wishes.open_wishes(session, world.resident)
    assert [w.id for w in mine.wishes] == [open_.id]
    assert submitted.id not in [w.id for w in mine.wishes]
    assert far.total == 0
    assert [w.id for w in repairs.wishes] == [open_.id]
    assert tutoring.total == 0
    description = wishes.describe(translator("zh_CN"), mine.wishes[0], points.DEFAULT_ZONE)
    for private in ("1号楼2单元301", "王阿姨"):
        assert private not in description


async def test_skills_narrow_the_list_to_wishes_one_can_help_with(world: World) -> None:
    repairs = await published(world, category="repairs", text="修门锁")
    await published(world, category="tutoring", text="英语辅导")
    other = await published(world, category="other", text="帮忙搬家")
    async with world.db.transaction() as session:
        nothing = await wishes.open_wishes(session, world.volunteer, by_skills=True)
        skills = await wishes.toggle_skill(session, world.volunteer, Skill.repairs, NOW)
        matching = await wishes.open_wishes(session, world.volunteer, by_skills=True)
        again = await wishes.toggle_skill(session, world.volunteer, "repairs", NOW)
    assert nothing.total == 0, "no skills declared yet"
    assert skills == {Skill.repairs}
    assert [w.id for w in matching.wishes] == [repairs.id, other.id]
    assert again == set(), "pressing again removes the skill"


async def test_pages_of_open_wishes(world: World) -> None:
    created = [await published(world, text=f"心愿{i}") for i in range(7)]
    async with world.db.transaction() as session:
        first = await wishes.open_wishes(session, world.volunteer, page=0)
        second = await wishes.open_wishes(session, world.volunteer, page=1)
        beyond = await wishes.open_wishes(session, world.volunteer, page=9)
    assert (first.total, first.pages) == (7, 2)
    assert [w.id for w in first.wishes + second.wishes] == [w.id for w in created]
    assert beyond.page == 1, "a page past the end shows the last one"


# -- claiming ---------------------------------------------------------------------------------


async def test_the_contact_goes_to_the_claimer_only_and_only_after_the_claim(world: World) -> None:
    view = await published(world)
    before = await refused(world, lambda s: wishes.contact_of(s, world.volunteer, view.id))
    assert isinstance(before, PermissionDenied)
    async with world.db.transaction() as session:
        result = await wishes.claim_wish(session, world.volunteer, view.id, NOW, claim_days=DAYS)
    assert (result.contact.name, result.contact.address) == ("王阿姨", "1号楼2单元301")
    for other in (world.volunteer2, world.grid_leader, world.coordinator):
        refusal = await refused(world, lambda s, o=other: wishes.contact_of(s, o, view.id))
        assert isinstance(refusal, PermissionDenied)
    notice = (await texts_to(world.db, world.resident))[-1]
    assert notice.startswith("🙋 李明 认领了您的微心愿")


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ("volunteer2", "wishes.already_claimed"),
        ("resident", "error.permission"),
        ("grid_worker", "error.permission"),
        ("far_volunteer", "error.permission"),
    ],
)
async def test_who_may_not_claim(world: World, who: str, reason: str) -> None:
    view = await claimed(world)
    refusal = await refused(
        world, lambda s: wishes.claim_wish(s, getattr(world, who), view.id, NOW, claim_days=DAYS)
    )
    assert refusal.key == reason
    async with world.db.transaction() as session:
        claims = (await session.execute(select(WishClaim))).scalars().all()
    assert [(c.member_id, c.live_wish_id) for c in claims] == [(world.id(world.volunteer), view.id)]


async def test_a_volunteer_cannot_claim_their_own_wish(world: World) -> None:
    own = await post(world, world.volunteer, text="需要一台轮椅")
    async with world.db.transaction() as session:
        await wishes.approve_wish(session, world.grid_leader, own.id, NOW)
    refusal = await refused(
        world, lambda s: wishes.claim_wish(s, world.volunteer, own.id, NOW, claim_days=DAYS)
    )
    assert refusal.key == "wishes.own_wish_claim"


async def test_two_volunteers_pressing_claim_at_once_one_gets_it(world: World) -> None:
    view = await published(world)

    async def claim(actor: Actor) -> str:
        try:
            async with world.db.transaction() as session:
                await wishes.claim_wish(session, actor, view.id, NOW, claim_days=DAYS)
        except Conflict as refusal:
            return refusal.key
        return "ok"

    outcomes = await asyncio.gather(claim(world.volunteer), claim(world.volunteer2))
    assert sorted(outcomes) == ["ok", "wishes.already_claimed"]
    async with world.db.transaction() as session:
        live = (
            await session.execute(
                select(func.count())
                .select_from(WishClaim)
                .where(col(WishClaim.live_wish_id) == view.id)
            )
        ).scalar_one()
    assert live == 1


async def test_a_claimer_who_gives_up_puts_the_wish_back_for_others(world: World) -> None:
    view = await claimed(world)
    not_theirs = await refused(
        world, lambda s: wishes.release_claim(s, world.volunteer2, view.id, NOW)
    )
    assert isinstance(not_theirs, PermissionDenied)
    async with world.db.transaction() as session:
        released = await wishes.release_claim(session, world.volunteer, view.id, NOW)
        listed = await wishes.open_wishes(session, world.volunteer2)
        again = await wishes.claim_wish(session, world.volunteer2, view.id, NOW, claim_days=DAYS)
    assert released.status == WishStatus.released
    assert [w.id for w in listed.wishes] == [view.id]
    assert again.wish.claimer_name == "周丽"
    resident_heard = await texts_to(world.db, world.resident)
    assert any("李明 不再认领" in text for text in resident_heard)
    assert resident_heard[-1].startswith("🙋 周丽 认领了您的微心愿")


# -- fulfilling and confirming -------------------------------------------------------------------


async def test_fulfilment_needs_the_claimer_and_a_note(world: World) -> None:
    view = await claimed(world)
    stranger = await refused(
        world,
        lambda s: wishes.fulfil_wish(
            s, world.volunteer2, view.id, note="done", now=NOW, confirm_days=CONFIRM_DAYS
        ),
    )
    assert isinstance(stranger, PermissionDenied)
    no_note = await refused(
        world,
        lambda s: wishes.fulfil_wish(
            s, world.volunteer, view.id, note=" ", now=NOW, confirm_days=CONFIRM_DAYS
        ),
    )
    assert no_note.key == "wishes.text_empty"
    bad_hours = await refused(
        world,
        lambda s: wishes.fulfil_wish(
            s, world.volunteer, view.id, note="ok", now=NOW, confirm_days=CONFIRM_DAYS, hours="30"
        ),
    )
    assert bad_hours.key == "points.hours_invalid"
    assert (await wish_row(world, view.id)).status == WishStatus.claimed


async def test_confirmation_awards_the_claimer_points_and_hours_exactly_once(world: World) -> None:
    view = await fulfilled(world)
    notice = (await sent_to(world.db, world.resident))[-1]
    assert "李明 已完成您的微心愿" in notice["text"]
    assert buttons_of(notice) == [f"wish:conf:{view.id}", f"wish:disp:{view.id}"]

    async with world.db.transaction() as session:
        result = await wishes.confirm_wish(session, world.resident, view.id, NOW)
    assert (result.points, result.minutes) == (10, 90)
    assert result.wish.status == WishStatus.confirmed
    twice = await refused(world, lambda s: wishes.confirm_wish(s, world.resident, view.id, NOW))
    assert twice.key == "wishes.already_confirmed"
    assert await ledger_count(world) == 1

    async with world.db.transaction() as session:
        summary = await points.summary(session, world.id(world.volunteer), NOW)
        hours = await points.hours_summary(session, world.id(world.volunteer), NOW, target_hours=24)
    assert (summary.balance, summary.year_points) == (10, 10)
    assert hours.minutes == 90
    told = (await texts_to(world.db, world.volunteer))[-1]
    assert "已确认完成" in told
    assert "积分 +10，服务时长 1.5 小时" in told


async def test_claimer_cannot_confirm_and_the_coordinator_waits_for_the_timeout(
    world: World,
) -> None:
    view = await fulfilled(world)
    own = await refused(world, lambda s: wishes.confirm_wish(s, world.volunteer, view.id, NOW))
    assert own.key == "wishes.claimer_cannot_confirm"
    early = await refused(world, lambda s: wishes.confirm_wish(s, world.coordinator, view.id, NOW))
    assert (early.key, early.params) == ("wishes.confirm_not_yet", {"date": "2026-11-26 10:00"})
    far = await refused(
        world,
        lambda s: wishes.confirm_wish(s, world.far_coordinator, view.id, NOW + timedelta(days=4)),
    )
    assert isinstance(far, PermissionDenied)
    async with world.db.transaction() as session:
        result = await wishes.confirm_wish(
            session, world.coordinator, view.id, NOW + timedelta(days=3)
        )
    assert result.points == 10
    assert "社区已代为确认" in (await texts_to(world.db, world.resident))[-1]


async def test_the_wisher_says_not_done_yet_and_the_claimer_is_told_why(world: World) -> None:
    view = await fulfilled(world)
    async with world.db.transaction() as session:
        disputed = await wishes.dispute_wish(
            session, world.resident, view.id, "还差一次课", NOW, claim_days=DAYS
        )
    assert disputed.status == WishStatus.claimed
    notice = (await sent_to(world.db, world.volunteer))[-1]
    assert "还差一次课" in notice["text"]
    assert buttons_of(notice) == [f"wish:done:{view.id}"]
    assert await ledger_count(world) == 0, "no points for a disputed fulfilment"


async def test_withdrawing_a_claimed_wish_tells_the_claimer(world: World) -> None:
    view = await claimed(world)
    not_theirs = await refused(
        world, lambda s: wishes.withdraw_wish(s, world.neighbour, view.id, NOW)
    )
    assert isinstance(not_theirs, PermissionDenied)
    async with world.db.transaction() as session:
        withdrawn = await wishes.withdraw_wish(session, world.resident, view.id, NOW)
    assert withdrawn.status == WishStatus.withdrawn
    assert "已被发布人撤回" in (await texts_to(world.db, world.volunteer))[-1]
    again = await refused(world, lambda s: wishes.withdraw_wish(s, world.resident, view.id, NOW))
    assert again.key == "wishes.wrong_status"


# -- dispatch to a unit, and hand-off from a visit ----------------------------------------


async def test_coordinator_dispatches_a_large_wish_to_a_department(world: World) -> None:
    view = await post(world, category="hardship", text="屋顶漏水需要整体维修")
    volunteer = await refused(
        world,
        lambda s: wishes.dispatch_wish(
            s, world.volunteer, view.id, world.id(world.department), NOW, claim_days=DAYS
        ),
    )
    assert isinstance(volunteer, PermissionDenied)
    not_a_liaison = await refused(
        world,
        lambda s: wishes.dispatch_wish(
            s, world.coordinator, view.id, world.id(world.volunteer), NOW, claim_days=DAYS
        ),
    )
    assert isinstance(not_a_liaison, PermissionDenied)
    async with world.db.transaction() as session:
        liaisons = await wishes.department_liaisons(session, world.coordinator, view.id)
        dispatched = await wishes.dispatch_wish(
            session, world.coordinator, view.id, world.id(world.department), NOW, claim_days=DAYS
        )
    assert [m.name for m in liaisons] == ["水务所"]
    async with world.db.transaction() as session:
        assert await wishes.release_stale_claims(session, NOW + timedelta(days=30)) == 0
        assert await wishes.remind_claims(session, NOW + timedelta(days=DAYS)) == 1
    assert "社区派给您的" in (await texts_to(world.db, world.department))[-1]
    assert (dispatched.status, dispatched.claimer_name) == (WishStatus.claimed, "水务所")
    told = (await sent_to(world.db, world.department))[0]
    assert "1号楼2单元301" in told["text"], "the unit gets the contact"
    assert buttons_of(told) == [f"wish:done:{view.id}", f"wish:give:{view.id}"]

    async with world.db.transaction() as session:
        await wishes.fulfil_wish(
            session, world.department, view.id, note="已维修", now=NOW, confirm_days=CONFIRM_DAYS
        )
        result = await wishes.confirm_wish(session, world.resident, view.id, NOW)
    assert result.points is None, "no personal points for a dispatched wish"
    assert await ledger_count(world) == 0


async def test_a_visit_hands_off_one_wish_for_a_household(world: World) -> None:
    async def hand_off(session: AsyncSession, actor: Actor) -> WishView:
        b2 = await unit_by_code(session, "B2")
        return await wishes.create_wish(
            session,
            actor,
            now=NOW,
            category="elderly",
            text="独居老人需要助浴",
            unit_id=b2.id,
            household_id=4711,
            contact_name="钱奶奶",
            contact_phone="13800000000",
            address="2号楼101",
            source="visit",
            source_id=99,
        )

    refusal = await refused(world, lambda s: hand_off(s, world.resident))
    assert isinstance(refusal, PermissionDenied)
    async with world.db.transaction() as session:
        first = await hand_off(session, world.grid_worker)
    async with world.db.transaction() as session:
        second = await hand_off(session, world.grid_worker)
    assert first.id == second.id, "the same visit hands off once"
    assert (first.wisher_id, first.household_id, first.unit.code) == (None, 4711, "B2")

    async with world.db.transaction() as session:
        await wishes.approve_wish(session, world.grid_leader, first.id, NOW)
        claim = await wishes.claim_wish(session, world.volunteer, first.id, NOW, claim_days=DAYS)
        await wishes.fulfil_wish(
            session, world.volunteer, first.id, note="已助浴", now=NOW, confirm_days=CONFIRM_DAYS
        )
    assert claim.contact.phone == "13800000000"
    assert "李明 已完成您的微心愿" in (await texts_to(world.db, world.grid_worker))[-1]
    async with world.db.transaction() as session:
        result = await wishes.confirm_wish(session, world.grid_worker, first.id, NOW)
    assert result.points == 10


async def test_a_forged_wish_id_from_another_community_is_refused(world: World) -> None:
    view = await published(world)
    for actor, action in (
        (world.far_volunteer, lambda s, a: wishes.get_wish(s, a, view.id)),
        (world.far_coordinator, lambda s, a: wishes.approve_wish(s, a, view.id, NOW)),
        (world.far_coordinator, lambda s, a: wishes.reject_wish(s, a, view.id, "no", NOW)),
        (world.far_coordinator, lambda s, a: wishes.department_liaisons(s, a, view.id)),
    ):
        refusal = await refused(world, lambda s, a=actor, f=action: f(s, a))
        assert isinstance(refusal, PermissionDenied)
    unknown = await refused(world, lambda s: wishes.get_wish(s, world.volunteer, 999_999))
    assert unknown.key == "wishes.unknown"


# -- deadlines (frozen clock) -------------------------------------------------------------------


async def test_a_stale_claim_is_reminded_then_released_once(world: World) -> None:
    view = await claimed(world)
    async with world.db.transaction() as session:
        assert await wishes.remind_claims(session, NOW + timedelta(days=5)) == 0
        assert await wishes.remind_claims(session, NOW + timedelta(days=6)) == 1
        assert await wishes.remind_claims(session, NOW + timedelta(days=6, hours=1)) == 0
        assert await wishes.release_stale_claims(session, NOW + timedelta(days=6, hours=23)) == 0
        assert await wishes.release_stale_claims(session, NOW + timedelta(days=7)) == 1
        assert await wishes.release_stale_claims(session, NOW + timedelta(days=8)) == 0
        view = await wishes.load(session, view.id)
    assert view.status == WishStatus.released
    volunteer_heard = await sent_to(world.db, world.volunteer)
    assert "将在 2026-11-30 10:00 自动释放" in volunteer_heard[0]["text"]
    assert buttons_of(volunteer_heard[0]) == [f"wish:done:{view.id}", f"wish:give:{view.id}"]
    assert "超过期限未完成，已自动释放" in volunteer_heard[1]["text"]
    assert "它已重新发布" in (await texts_to(world.db, world.resident))[-1]
    async with world.db.transaction() as session:
        events = [e.action for e in await wishes.events_of(session, view.id)]
    assert events == ["submit", "approve", "claim", "expire"]


async def test_an_unconfirmed_fulfilment_goes_to_the_coordinators_once(world: World) -> None:
    view = await fulfilled(world)
    async with world.db.transaction() as session:
        assert await wishes.escalate_unconfirmed(session, NOW + timedelta(days=2)) == 0
        assert await wishes.escalate_unconfirmed(session, NOW + timedelta(days=3)) == 1
        assert await wishes.escalate_unconfirmed(session, NOW + timedelta(days=4)) == 0
    overdue = (await sent_to(world.db, world.coordinator))[-1]
    assert "发布人超时未确认" in overdue["text"]
    assert buttons_of(overdue) == [f"wish:conf:{view.id}"]
    assert [p for p in await sent_to(world.db, world.far_coordinator)] == []
    async with world.db.transaction() as session:
        result = await wishes.confirm_wish(session, world.coordinator, view.id, NOW)
    assert result.points == 10, "once escalated, the coordinator may confirm"
