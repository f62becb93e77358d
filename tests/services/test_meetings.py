"""Meetings, service by service: who may do what, invitations and reminders with a frozen
clock, moving and cancelling, RSVP, check-in, topics, minutes, follow-ups, attendance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from sqlmodel import col, func, select

from bot.db import Database
from bot.i18n import translator
from models.meetings import (
    Audience,
    FollowUpStatus,
    Meeting,
    MeetingAttendance,
    MeetingReminder,
    ReminderStatus,
    Rsvp,
)
from models.members import Role
from services import meetings
from services.errors import InvalidInput, PermissionDenied, ServiceError
from tests.services.meeting_fixtures import (
    FIRST,
    NOW,
    RULES,
    VENUE,
    Town,
    call_meeting,
    hours,
    make_town,
    outbox_texts,
    reminders,
    run_reminders,
)


@pytest.fixture
async def town(demo_db: Database) -> Town:
    return await make_town(demo_db)


async def attendance_rows(db: Database, meeting_id: int) -> int:
    async with db.transaction() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(MeetingAttendance)
                    .where(col(MeetingAttendance.meeting_id) == meeting_id)
                )
            ).scalar_one()
        )


async def code_of(town: Town, meeting_id: int) -> str:
    async with town.db.transaction() as session:
        _, code, _, _ = await meetings.checkin_code(
            session, town["coordinator"], meeting_id, NOW, RULES
        )
    return code


# -- creating a series ------------------------------------------------------------------------


async def test_coordinator_calls_a_monthly_council_and_its_next_meeting_is_planned(
    town: Town,
) -> None:
    series, planned = await call_meeting(town)
    assert series.organiser_id == town.member("coordinator")
    assert [m.starts_at for m in planned] == [FIRST], "the next one (beyond 14 days) is planned"
    due = await reminders(town.db, planned[0].id)
    assert [(r.kind, r.due_at) for r in due] == [
        ("invitation", NOW),
        ("before", FIRST - hours(24)),
        ("before", FIRST - hours(1)),
    ]


CALLERS = [
    ("coordinator", "G1", True),
    ("coordinator", "C1", True),
    ("grid_leader", "G1", True),
    ("grid_leader", "B1", True),
    ("admin", "G3", True),
    ("grid_leader", "G2", False),
    ("coordinator", "G3", False),
    ("grid_worker", "G1", False),
    ("volunteer", "G1", False),
    ("resident", "B1", False),
    ("department", "C1", False),
]


async def meeting_count(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Meeting))).scalar_one())


async def test_who_may_call_a_meeting_where(town: Town) -> None:
    for who, unit, allowed in CALLERS:
        before = await meeting_count(town.db)
        if allowed:
            series, _ = await call_meeting(town, who, unit_code=unit, title=f"{who} {unit}")
            assert series.unit.code == unit
            continue
        with pytest.raises(PermissionDenied):
            await call_meeting(town, who, unit_code=unit)
        assert await meeting_count(town.db) == before, f"{who} on {unit}: nothing created"


BAD_SERIES: list[tuple[dict[str, Any], str]] = [
    ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31"}, "meetings.never_occurs"),
    ({"rrule": "FREQ=DAILY"}, "meetings.rule_freq"),
    ({"title": "  "}, "meetings.title_empty"),
    ({"title": "长" * 101}, "meetings.title_too_long"),
    ({"venue": ""}, "meetings.venue_empty"),
    ({"first_start": NOW - hours(1)}, "meetings.in_past"),
    ({"audience": Audience.roles, "roles": ()}, "meetings.no_roles"),
    ({"audience": Audience.members, "member_ids": ()}, "meetings.no_members"),
    ({"audience": Audience.members, "member_ids": (99999,)}, "meetings.member_unknown"),
    ({"latitude": 95.0}, "meetings.bad_location"),
    ({"duration_minutes": 5}, "meetings.bad_duration"),
    ({"unit_code": "D1"}, "meetings.bad_unit_kind"),
]


async def test_bad_series_are_refused_with_a_reason(town: Town) -> None:
    for overrides, key in BAD_SERIES:
        who = "admin" if overrides.get("unit_code") == "D1" else "coordinator"
        with pytest.raises(ServiceError) as refused:
            await call_meeting(town, who, **overrides)
        assert refused.value.key == key
        assert translator("en")(key, **refused.value.params) != key
    assert await meeting_count(town.db) == 0


async def test_planning_again_adds_nothing_and_the_window_moves_with_time(town: Town) -> None:
    _series, planned = await call_meeting(town, rrule="FREQ=WEEKLY", first_start=NOW + hours(30))
    assert len(planned) == 2, "a weekly series: everything within 14 days"
    async with town.db.transaction() as session:
        assert await meetings.plan_all(session, NOW, RULES) == 0
        assert await meetings.plan_all(session, NOW + timedelta(days=7), RULES) == 1
        total = (await session.execute(select(func.count()).select_from(Meeting))).scalar_one()
    assert total == 3


async def test_a_one_off_meeting_is_planned_once(town: Town) -> None:
    _, planned = await call_meeting(town, rrule=None)
    assert len(planned) == 1
    async with town.db.transaction() as session:
        assert await meetings.plan_all(session, NOW + timedelta(days=40), RULES) == 0


# -- audience ---------------------------------------------------------------------------------


async def invited(town: Town, series: meetings.SeriesView) -> set[str]:
    async with town.db.transaction() as session:
        ids = set(await meetings.audience_member_ids(session, series))
    return {name for name in town.actors if town.member(name) in ids}


async def test_open_meeting_invites_everyone_in_the_unit(town: Town) -> None:
    series, _ = await call_meeting(town)
    assert await invited(town, series) == {
        "coordinator",
        "grid_leader",
        "grid_worker",
        "resident",
        "volunteer",
    }


async def test_roles_meeting_invites_only_those_roles_and_the_organiser(town: Town) -> None:
    series, _ = await call_meeting(
        town, audience=Audience.roles, roles=(Role.grid_worker, Role.volunteer)
    )
    assert await invited(town, series) == {"coordinator", "grid_worker", "volunteer"}


async def test_named_members_meeting(town: Town) -> None:
    series, _ = await call_meeting(
        town,
        kind="joint",
        audience=Audience.members,
        member_ids=(town.member("grid_leader"), town.member("department")),
    )
    assert await invited(town, series) == {"coordinator", "grid_leader", "department"}


# -- reminders --------------------------------------------------------------------------------


async def test_invitation_then_reminders_go_out_once_each(town: Town) -> None:
    _, planned = await call_meeting(town)
    resident = town.member("resident")
    assert await run_reminders(town.db, NOW) == 1
    assert await run_reminders(town.db, NOW + timedelta(minutes=1)) == 0
    texts = await outbox_texts(town.db, resident)
    assert len(texts) == 1
    assert texts[0].startswith("📅 会议邀请\n【月月谈】新德第一网格月月谈")
    assert "12月8日 周二 19:00–20:30" in texts[0]
    assert "每月第二个周二 19:00" in texts[0]

    assert await run_reminders(town.db, FIRST - hours(24) - timedelta(seconds=1)) == 0
    assert await run_reminders(town.db, FIRST - hours(24)) == 1
    assert await run_reminders(town.db, FIRST - hours(1)) == 1
    assert await run_reminders(town.db, FIRST) == 0
    texts = await outbox_texts(town.db, resident)
    assert [t.split("\n")[0] for t in texts] == [
        "📅 会议邀请",
        "⏰ 会议提醒：1 天后开始",
        "⏰ 会议提醒：1 小时后开始",
    ]
    due = await reminders(town.db, planned[0].id)
    assert {r.status for r in due} == {ReminderStatus.sent}
    assert due[0].recipients == 5


async def test_after_downtime_only_the_latest_reminder_goes_out(town: Town) -> None:
    await call_meeting(town)
    await run_reminders(town.db, NOW)
    assert await run_reminders(town.db, FIRST - timedelta(minutes=30)) == 1
    texts = await outbox_texts(town.db, town.member("resident"))
    assert [t.split("\n")[0] for t in texts] == ["📅 会议邀请", "⏰ 会议提醒：1 小时后开始"]


async def test_nothing_is_sent_once_the_meeting_has_begun(town: Town) -> None:
    _, planned = await call_meeting(town)
    assert await run_reminders(town.db, FIRST + timedelta(minutes=5)) == 0
    assert {r.status for r in await reminders(town.db, planned[0].id)} == {ReminderStatus.skipped}


async def test_moving_a_meeting_reschedules_its_reminders(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    await run_reminders(town.db, NOW)
    later = FIRST + timedelta(days=2)
    async with town.db.transaction() as session:
        moved = await meetings.move_meeting(
            session, town["coordinator"], meeting_id, later, NOW + hours(1), RULES
        )
    assert moved.starts_at == later
    assert moved.ends_at == later + timedelta(minutes=90)
    due = await reminders(town.db, meeting_id)
    assert [(r.version, r.status, r.due_at) for r in due if r.kind == "before"] == [
        (1, ReminderStatus.cancelled, FIRST - hours(24)),
        (1, ReminderStatus.cancelled, FIRST - hours(1)),
        (2, ReminderStatus.pending, later - hours(24)),
        (2, ReminderStatus.pending, later - hours(1)),
    ]
    resident = town.member("resident")
    told = await outbox_texts(town.db, resident)
    assert told[-1].startswith("🕑 会议改期（原定 12月8日 周二 19:00）：")
    assert "12月10日 周四 19:00" in told[-1]

    assert await run_reminders(town.db, FIRST - hours(1)) == 0, "nothing at the old time"
    assert await run_reminders(town.db, later - hours(24)) == 1
    assert (await outbox_texts(town.db, resident))[-1].startswith("⏰ 会议提醒：1 天后开始")


async def test_a_cancelled_meeting_sends_nothing_more_and_everyone_is_told(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    async with town.db.transaction() as session:
        await meetings.cancel_meeting(session, town["coordinator"], meeting_id, NOW, RULES)
    assert await run_reminders(town.db, FIRST - hours(1)) == 0
    texts = await outbox_texts(town.db, town.member("volunteer"))
    assert texts == ["❌ 会议取消：12月8日 周二 19:00 的「新德第一网格月月谈」不再举行。"]
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.rsvp(session, town["resident"], meeting_id, Rsvp.yes, NOW)
    assert refused.value.key == "meetings.is_cancelled"


async def test_the_next_occurrence_is_not_touched_by_moving_this_one(town: Town) -> None:
    _, planned = await call_meeting(town)
    async with town.db.transaction() as session:
        await meetings.move_meeting(
            session, town["coordinator"], planned[0].id, FIRST + hours(48), NOW, RULES
        )
        created = await meetings.plan_all(session, FIRST + hours(3), RULES)
        starts = list(
            (await session.execute(select(Meeting.starts_at).order_by(col(Meeting.id)))).scalars()
        )
    assert created == 1
    assert starts == [FIRST + hours(48), FIRST + timedelta(days=35)], "Jan 12, not Dec 8 again"


@pytest.mark.parametrize(
    ("new_start", "key"),
    [
        (NOW - hours(1), "meetings.in_past"),
        (FIRST, "meetings.same_time"),
        (NOW + timedelta(days=800), "meetings.too_far"),
    ],
)
async def test_bad_moves_are_refused(town: Town, new_start: Any, key: str) -> None:
    _, planned = await call_meeting(town)
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.move_meeting(
                session, town["coordinator"], planned[0].id, new_start, NOW, RULES
            )
    assert refused.value.key == key


# -- who may manage ---------------------------------------------------------------------------


ManageAction = Callable[[Any, Any, int], Awaitable[Any]]

MANAGE_ACTIONS: dict[str, ManageAction] = {
    "code": lambda s, a, m: meetings.checkin_code(s, a, m, NOW, RULES),
    "rsvps": lambda s, a, m: meetings.rsvp_summary(s, a, m),
    "agenda": lambda s, a, m: meetings.agenda(s, a, m),
    "attendees": lambda s, a, m: meetings.attendees(s, a, m),
    "minutes": lambda s, a, m: meetings.save_minutes(s, a, m, "纪要", FIRST + hours(1), RULES),
    "followup": lambda s, a, m: meetings.add_followup(
        s, a, m, "修路灯", None, None, FIRST + hours(1), RULES
    ),
    "followups": lambda s, a, m: meetings.followups(s, a, m),
    "move": lambda s, a, m: meetings.move_meeting(s, a, m, FIRST + hours(2), NOW, RULES),
    "cancel": lambda s, a, m: meetings.cancel_meeting(s, a, m, NOW, RULES),
}
"""Every organiser action, in an order that works on one meeting (cancel last)."""


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("coordinator", True),
        ("grid_leader", True),
        ("admin", True),
        ("grid_worker", False),
        ("volunteer", False),
        ("resident", False),
        ("department", False),
        ("far_coordinator", False),
    ],
)
async def test_who_may_manage_a_meeting(town: Town, who: str, allowed: bool) -> None:
    _, planned = await call_meeting(town)
    for action, run in MANAGE_ACTIONS.items():
        if allowed:
            async with town.db.transaction() as session:
                await run(session, town[who], planned[0].id)
            continue
        with pytest.raises(PermissionDenied):
            async with town.db.transaction() as session:
                await run(session, town[who], planned[0].id)
        async with town.db.transaction() as session:
            meeting = await session.get(Meeting, planned[0].id)
            assert meeting is not None
            assert (meeting.status, meeting.version, meeting.minutes) == ("scheduled", 1, None), (
                f"{who} changed nothing with {action}"
            )


async def test_the_organiser_manages_even_without_a_role_on_the_unit(town: Town) -> None:
    _, planned = await call_meeting(town, unit_code="C1")
    async with town.db.transaction() as session:
        await meetings.end_series(session, town["admin"], planned[0].series.id, NOW)
    with pytest.raises(PermissionDenied):
        async with town.db.transaction() as session:
            await meetings.end_series(session, town["grid_leader"], planned[0].series.id, NOW)


# -- RSVP -------------------------------------------------------------------------------------


async def test_rsvp_changes_and_the_organiser_sees_counts_and_names(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    async with town.db.transaction() as session:
        await meetings.rsvp(session, town["resident"], meeting_id, Rsvp.maybe, NOW)
        await meetings.rsvp(session, town["resident"], meeting_id, Rsvp.yes, NOW)
        await meetings.rsvp(session, town["volunteer"], meeting_id, "no", NOW)
        summary = await meetings.rsvp_summary(session, town["coordinator"], meeting_id)
    assert summary.names == {Rsvp.yes: ["王阿姨"], Rsvp.no: ["李明"], Rsvp.maybe: []}


async def test_someone_outside_the_audience_cannot_rsvp(town: Town) -> None:
    _, planned = await call_meeting(town, audience=Audience.roles, roles=(Role.grid_worker,))
    with pytest.raises(PermissionDenied) as refused:
        async with town.db.transaction() as session:
            await meetings.rsvp(session, town["resident"], planned[0].id, Rsvp.yes, NOW)
    assert refused.value.key == "meetings.not_in_audience"


async def test_anyone_may_come_to_an_open_council(town: Town) -> None:
    _, planned = await call_meeting(town)
    async with town.db.transaction() as session:
        await meetings.rsvp(session, town["far_resident"], planned[0].id, Rsvp.yes, NOW)


# -- check-in ---------------------------------------------------------------------------------


async def test_check_in_with_the_code_counts_once(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    code = await code_of(town, meeting_id)
    async with town.db.transaction() as session:
        first = await meetings.check_in_with_code(
            session,
            town["resident"],
            f" {code[:3]} {code[3:]} ",
            FIRST - timedelta(minutes=10),
            RULES,
        )
        again = await meetings.check_in_with_code(
            session, town["resident"], code, FIRST + timedelta(minutes=5), RULES
        )
    assert (first.already, again.already) == (False, True)
    assert again.checked_in_at == FIRST - timedelta(minutes=10)
    assert await attendance_rows(town.db, meeting_id) == 1


@pytest.mark.parametrize(
    ("moment", "key"),
    [
        (FIRST - timedelta(minutes=31), "meetings.checkin_not_yet"),
        (FIRST + timedelta(minutes=121), "meetings.code_expired"),
    ],
)
async def test_a_code_outside_the_time_window_is_refused(town: Town, moment: Any, key: str) -> None:
    _, planned = await call_meeting(town)
    code = await code_of(town, planned[0].id)
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.check_in_with_code(session, town["resident"], code, moment, RULES)
    assert refused.value.key == key
    assert await attendance_rows(town.db, planned[0].id) == 0


async def test_a_code_for_another_meeting_is_refused(town: Town) -> None:
    _, first = await call_meeting(town)
    _, other = await call_meeting(town, title="楼栋会", rrule=None, first_start=FIRST + hours(1))
    other_code = await code_of(town, other[0].id)
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.check_in_with_code(
                session, town["resident"], other_code, FIRST, RULES, meeting_id=first[0].id
            )
    assert refused.value.key == "meetings.code_other_meeting"
    with pytest.raises(InvalidInput) as wrong:
        async with town.db.transaction() as session:
            await meetings.check_in_with_code(session, town["resident"], "000000", FIRST, RULES)
    assert wrong.value.key in ("meetings.code_unknown", "meetings.not_in_audience")


async def test_a_member_outside_the_audience_cannot_check_in(town: Town) -> None:
    _, planned = await call_meeting(town, audience=Audience.roles, roles=(Role.volunteer,))
    code = await code_of(town, planned[0].id)
    with pytest.raises(PermissionDenied) as refused:
        async with town.db.transaction() as session:
            await meetings.check_in_with_code(session, town["resident"], code, FIRST, RULES)
    assert refused.value.key == "meetings.not_in_audience"
    with pytest.raises(ServiceError):
        async with town.db.transaction() as session:
            await meetings.check_in_with_location(
                session, town["resident"], *VENUE, FIRST, RULES, meeting_id=planned[0].id
            )
    assert await attendance_rows(town.db, planned[0].id) == 0


async def test_check_in_by_location_near_the_venue(town: Town) -> None:
    _, planned = await call_meeting(town)
    near = (VENUE[0] + 0.001, VENUE[1])  # about 111 m north
    async with town.db.transaction() as session:
        result = await meetings.check_in_with_location(
            session, town["volunteer"], *near, FIRST + timedelta(minutes=3), RULES
        )
    assert result.meeting.id == planned[0].id
    assert result.distance_m is not None
    assert 100 <= result.distance_m <= 120


async def test_a_location_far_from_the_venue_is_refused_with_the_distance(town: Town) -> None:
    _, planned = await call_meeting(town)
    far = (VENUE[0] + 0.02, VENUE[1])  # about 2.2 km
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.check_in_with_location(session, town["volunteer"], *far, FIRST, RULES)
    assert refused.value.key == "meetings.too_far_away"
    assert refused.value.params == {"distance": "2.2 km", "radius": 300}
    assert await attendance_rows(town.db, planned[0].id) == 0


async def test_location_check_in_needs_an_open_meeting_with_a_venue_location(town: Town) -> None:
    await call_meeting(town, latitude=None, longitude=None)
    for moment, key in ((NOW, "meetings.nothing_open"), (FIRST, "meetings.no_venue_location")):
        with pytest.raises(InvalidInput) as refused:
            async with town.db.transaction() as session:
                await meetings.check_in_with_location(
                    session, town["volunteer"], *VENUE, moment, RULES
                )
        assert refused.value.key == key


# -- topics, minutes, follow-ups --------------------------------------------------------------


async def test_residents_submit_topics_and_the_organiser_sees_the_agenda(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    async with town.db.transaction() as session:
        choices = await meetings.topic_meetings(session, town["resident"], NOW, RULES)
        assert [m.id for m in choices] == [meeting_id]
        await meetings.submit_topic(session, town["resident"], meeting_id, "楼道堆物", NOW)
        await meetings.submit_topic(session, town["volunteer"], meeting_id, "电动车充电", NOW)
        _, topics = await meetings.agenda(session, town["coordinator"], meeting_id)
    assert [(t.author, t.text) for t in topics] == [("王阿姨", "楼道堆物"), ("李明", "电动车充电")]
    with pytest.raises(InvalidInput) as closed:
        async with town.db.transaction() as session:
            await meetings.submit_topic(session, town["resident"], meeting_id, "晚了", FIRST)
    assert closed.value.key == "meetings.topics_closed"


async def test_topics_per_person_are_limited(town: Town) -> None:
    _, planned = await call_meeting(town)
    async with town.db.transaction() as session:
        for n in range(meetings.TOPICS_PER_PERSON):
            await meetings.submit_topic(session, town["resident"], planned[0].id, f"议题{n}", NOW)
    with pytest.raises(InvalidInput) as refused:
        async with town.db.transaction() as session:
            await meetings.submit_topic(session, town["resident"], planned[0].id, "再一条", NOW)
    assert refused.value.key == "meetings.topic_limit"


async def test_minutes_go_to_those_who_came_once(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    code = await code_of(town, meeting_id)
    async with town.db.transaction() as session:
        await meetings.check_in_with_code(session, town["resident"], code, FIRST, RULES)
    with pytest.raises(InvalidInput) as early:
        async with town.db.transaction() as session:
            await meetings.save_minutes(
                session, town["coordinator"], meeting_id, "纪要", NOW, RULES
            )
    assert early.value.key == "meetings.not_started"
    async with town.db.transaction() as session:
        await meetings.save_minutes(
            session,
            town["coordinator"],
            meeting_id,
            "一、楼道清理\n二、路灯维修",
            FIRST + hours(2),
            RULES,
        )
        await meetings.save_minutes(
            session,
            town["coordinator"],
            meeting_id,
            "一、楼道清理（更正）",
            FIRST + hours(3),
            RULES,
        )
    sent = await outbox_texts(town.db, town.member("resident"))
    assert sent == [
        "🗒「新德第一网格月月谈」（12月8日 周二 19:00）会议纪要：\n\n一、楼道清理\n二、路灯维修"
    ]
    assert await outbox_texts(town.db, town.member("volunteer")) == [], "only those who came"


async def test_follow_up_with_an_owner_and_due_date(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    after = FIRST + hours(2)
    async with town.db.transaction() as session:
        choices = await meetings.owner_choices(session, town["grid_leader"], meeting_id)
        assert [p.name for p in choices] == ["陈静", "刘强"]
        item = await meetings.add_followup(
            session,
            town["grid_leader"],
            meeting_id,
            "修复3号楼路灯",
            town.member("coordinator"),
            date(2026, 12, 20),
            after,
            RULES,
        )
    told = await outbox_texts(town.db, town.member("coordinator"))
    assert (
        told[-1]
        == "📌 会议「新德第一网格月月谈」交办给您一项待办：\n修复3号楼路灯\n期限：2026年12月20日"
    )
    with pytest.raises(PermissionDenied):
        async with town.db.transaction() as session:
            await meetings.close_followup(session, town["resident"], item.id, "done", after)
    async with town.db.transaction() as session:
        closed, changed = await meetings.close_followup(
            session, town["coordinator"], item.id, FollowUpStatus.done, after
        )
        again, changed_again = await meetings.close_followup(
            session, town["coordinator"], item.id, FollowUpStatus.dropped, after
        )
    assert (closed.status, changed, again.status, changed_again) == (
        FollowUpStatus.done,
        True,
        FollowUpStatus.done,
        False,
    )


async def test_a_follow_up_owner_must_be_someone_from_the_meeting(town: Town) -> None:
    _, planned = await call_meeting(town)
    with pytest.raises(PermissionDenied):
        async with town.db.transaction() as session:
            await meetings.add_followup(
                session,
                town["coordinator"],
                planned[0].id,
                "任务",
                town.member("far_resident"),
                None,
                FIRST + hours(2),
                RULES,
            )


# -- attendance over time and the calendar file -----------------------------------------------


async def test_attendance_of_a_series_over_time(town: Town) -> None:
    series, planned = await call_meeting(town)
    first_id = planned[0].id
    await run_reminders(town.db, NOW)
    code = await code_of(town, first_id)
    async with town.db.transaction() as session:
        await meetings.rsvp(session, town["resident"], first_id, Rsvp.yes, NOW)
        for who in ("resident", "volunteer"):
            await meetings.check_in_with_code(session, town[who], code, FIRST, RULES)
        await meetings.plan_all(session, FIRST + hours(3), RULES)
        report = await meetings.attendance_report(
            session, town["grid_leader"], series.id, FIRST + timedelta(days=40)
        )
    assert [(r.invited, r.coming, r.attended) for r in report.rows] == [(5, 1, 2), (None, 0, 0)]
    assert report.regulars == [("李明", 1), ("王阿姨", 1)]


async def test_the_calendar_file_follows_moves(town: Town) -> None:
    _, planned = await call_meeting(town)
    meeting_id = planned[0].id
    t = translator("zh_CN")
    async with town.db.transaction() as session:
        _, data, name = await meetings.meeting_ics(session, town["resident"], meeting_id, NOW, t)
        await meetings.move_meeting(
            session, town["coordinator"], meeting_id, FIRST + hours(1), NOW, RULES
        )
        _, moved, _ = await meetings.meeting_ics(session, town["resident"], meeting_id, NOW, t)
    assert name == f"meeting-{meeting_id}.ics"
    before = Calendar.from_ical(data).walk("VEVENT")[0]
    after = Calendar.from_ical(moved).walk("VEVENT")[0]
    assert str(before["SUMMARY"]) == "新德第一网格月月谈"
    assert str(before["LOCATION"]) == "新德社区党群服务站"
    assert before.decoded("DTSTART") == FIRST
    assert after.decoded("DTSTART") == FIRST + hours(1)
    assert str(before["UID"]) == str(after["UID"])
    assert (before.decoded("SEQUENCE"), after.decoded("SEQUENCE")) == (0, 1)


async def test_the_calendar_file_is_only_for_the_audience(town: Town) -> None:
    _, planned = await call_meeting(town, audience=Audience.roles, roles=(Role.grid_worker,))
    with pytest.raises(PermissionDenied):
        async with town.db.transaction() as session:
            await meetings.meeting_ics(
                session, town["resident"], planned[0].id, NOW, translator("en")
            )


async def test_demo_meetings_are_seeded_once_and_quietly(demo_db: Database) -> None:
    from services.demo import seed_demo

    async with demo_db.transaction() as session:
        await seed_demo(session, NOW)
        series = (await session.execute(select(func.count()).select_from(Meeting))).scalar_one()
        sent = (
            await session.execute(select(func.count()).select_from(MeetingReminder))
        ).scalar_one()
    assert series >= 2, "the council of G1 and the joint meeting of C1, planned"
    assert sent == 0, "nobody to invite yet: no reminders"
