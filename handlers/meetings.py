"""Meetings in the chat: /meetings, /newmeeting, /checkin, /topic, /attendance, the meeting
card with its buttons (RSVP, calendar file, check-in code, move, cancel, minutes, follow-ups).

Every permission is checked again in :mod:`services.meetings`; the buttons here only show what
a person is likely allowed to do.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.i18n import N_
from handlers import issues as issue_handlers
from handlers.context import Context
from handlers.menu import role_name
from handlers.router import Router
from handlers.types import Kind
from models.meetings import Audience, FollowUpStatus, MeetingKind, Rsvp
from models.members import Role
from services import meetings
from services.errors import InvalidInput, PermissionDenied
from services.issues import STATUS_KEYS as ISSUE_STATUS_KEYS
from services.issues import IssuePolicy
from services.meetings import (
    KIND_NAMES,
    ORGANISER_ROLES,
    MeetingCard,
    MeetingRules,
    MeetingView,
    SeriesDraft,
    format_day,
    format_when,
    meeting_summary,
)
from services.messages import Button, Document, RequestButton
from services.outbox import store_blob
from services.points import format_hours

router = Router("meetings")

ORGANISERS = frozenset(ORGANISER_ROLES | {Role.admin})
PER_PAGE = 8
AUDIENCE_ROLES = (
    Role.resident,
    Role.volunteer,
    Role.grid_worker,
    Role.grid_leader,
    Role.coordinator,
    Role.department,
)
RSVP_NAMES = {
    Rsvp.yes: N_("meetings.rsvp_yes"),
    Rsvp.no: N_("meetings.rsvp_no"),
    Rsvp.maybe: N_("meetings.rsvp_maybe"),
}
RSVP_SAVED = {
    Rsvp.yes: N_("meetings.rsvp_saved_yes"),
    Rsvp.no: N_("meetings.rsvp_saved_no"),
    Rsvp.maybe: N_("meetings.rsvp_saved_maybe"),
}
AUDIENCE_NAMES = {
    Audience.open: N_("meetings.audience_open"),
    Audience.roles: N_("meetings.audience_roles"),
    Audience.members: N_("meetings.audience_members"),
}
PRESET_NAMES = {
    "once": N_("meetings.preset_once"),
    "weekly": N_("meetings.preset_weekly"),
    "monthly_weekday": N_("meetings.preset_monthly_weekday"),
    "monthly_day": N_("meetings.preset_monthly_day"),
    "bimonthly_weekday": N_("meetings.preset_bimonthly_weekday"),
    "bimonthly_day": N_("meetings.preset_bimonthly_day"),
}
FOLLOWUP_STATUS = {
    FollowUpStatus.open: N_("meetings.followup_open"),
    FollowUpStatus.done: N_("meetings.followup_done"),
    FollowUpStatus.dropped: N_("meetings.followup_dropped"),
}


def rules(ctx: Context) -> MeetingRules:
    return MeetingRules.of(ctx.app.settings)


def _when(ctx: Context, moment: datetime) -> str:
    return format_when(ctx.t, moment, ctx.app.settings.zone)


def _unit_label(ctx: Context, unit: Any) -> str:
    return f"{unit.label(ctx.t.locale)} ({unit.code})"


def _rows(buttons: list[Button], per_row: int = 2) -> list[list[Button]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


# ---------------------------------------------------------------------------------------------
# /meetings and the meeting card


@router.command("meetings", description=N_("meetings.cmd_meetings"), order=60)
async def list_meetings(ctx: Context) -> None:
    found = await meetings.upcoming_for(ctx.session, ctx.actor, ctx.now, rules(ctx))
    organiser = bool(ctx.actor.scopes(ORGANISER_ROLES))
    new_row = [[Button(ctx.t("meetings.new_button"), payload="cmd:newmeeting")]]
    if not found:
        ctx.reply(ctx.t("meetings.none_upcoming"), new_row if organiser else ())
        return
    lines = [ctx.t("meetings.upcoming_title")]
    rows: list[list[Button]] = []
    for number, (meeting, answer) in enumerate(found, start=1):
        mine = ctx.t(RSVP_NAMES[answer]) if answer else ctx.t("meetings.rsvp_none")
        lines.append(
            ctx.t(
                "meetings.upcoming_line",
                n=number,
                when=_when(ctx, meeting.starts_at),
                title=meeting.title,
                venue=meeting.series.venue,
                answer=mine,
            )
        )
        rows.append(
            [
                Button(ctx.t("meetings.open_button", n=number), payload=f"mtg_card:{meeting.id}"),
                Button(ctx.t("meetings.ics_button"), payload=f"mtg_ics:{meeting.id}"),
            ]
        )
    if organiser:
        rows += new_row
    ctx.reply("\n\n".join(lines), rows)


def card_text(ctx: Context, card: MeetingCard) -> str:
    meeting = card.meeting
    zone = ctx.app.settings.zone
    lines = [meeting_summary(ctx.t, meeting, zone)]
    series = meeting.series
    lines.append(
        ctx.t(
            "meetings.summary_rule",
            rule=meetings.describe_rule(ctx.t, series.rrule, series.first_start, zone),
        )
    )
    if meeting.cancelled:
        lines.append(ctx.t("meetings.card_cancelled"))
    elif card.attend:
        mine = ctx.t(RSVP_NAMES[card.my_rsvp]) if card.my_rsvp else ctx.t("meetings.rsvp_none")
        lines.append(ctx.t("meetings.card_my_answer", answer=mine))
    if card.checked_in:
        lines.append(ctx.t("meetings.card_checked_in"))
    if card.manage:
        lines.append(
            ctx.t(
                "meetings.card_counts",
                yes=card.counts[Rsvp.yes],
                no=card.counts[Rsvp.no],
                maybe=card.counts[Rsvp.maybe],
                present=card.attended,
                topics=card.topics,
                followups=card.followups,
            )
        )
    if meeting.minutes:
        minutes = meeting.minutes if len(meeting.minutes) <= 1500 else meeting.minutes[:1500] + "…"
        lines += ["", ctx.t("meetings.card_minutes"), minutes]
    return "\n".join(lines)


def card_buttons(ctx: Context, card: MeetingCard) -> list[list[Button]]:
    meeting = card.meeting
    mid = meeting.id
    t = ctx.t
    rows: list[list[Button]] = []
    live = not meeting.cancelled and ctx.now < meeting.ends_at
    if card.attend and live:
        rows.append(
            [
                Button(
                    ("✔ " if card.my_rsvp == answer else "") + t(RSVP_NAMES[answer]),
                    payload=f"mtg_rsvp:{mid}:{answer.value}",
                )
                for answer in Rsvp
            ]
        )
    actions: list[Button] = []
    if card.checkin_open and not card.checked_in:
        actions.append(Button(t("meetings.checkin_button"), payload=f"mtg_checkin:{mid}"))
    if card.topics_open and card.attend:
        actions.append(Button(t("meetings.topic_button"), payload=f"mtg_topic:{mid}"))
    actions.append(Button(t("meetings.ics_button"), payload=f"mtg_ics:{mid}"))
    rows += _rows(actions)
    if card.manage:
        manage = [
            Button(t("meetings.code_button"), payload=f"mtg_code:{mid}"),
            Button(t("meetings.rsvps_button"), payload=f"mtg_rsvps:{mid}"),
            Button(t("meetings.agenda_button"), payload=f"mtg_agenda:{mid}"),
            Button(t("meetings.present_button"), payload=f"mtg_present:{mid}"),
        ]
        if not meeting.cancelled and ctx.now < meeting.starts_at:
            manage.append(Button(t("meetings.move_button"), payload=f"mtg_move:{mid}"))
        if not meeting.cancelled and ctx.now < meeting.ends_at:
            manage.append(Button(t("meetings.cancel_button"), payload=f"mtg_cancel:{mid}"))
        if not meeting.cancelled and ctx.now >= meeting.starts_at:
            manage.append(Button(t("meetings.minutes_button"), payload=f"mtg_minutes:{mid}"))
            manage.append(Button(t("meetings.followups_button"), payload=f"mtg_fus:{mid}"))
        if not meeting.series.ended:
            manage.append(
                Button(t("meetings.end_series_button"), payload=f"mtg_end:{meeting.series.id}")
            )
        rows += _rows(manage)
    return rows


async def show_card(ctx: Context, meeting_id: int, *, edit: bool = False) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, meeting_id, ctx.now, rules(ctx))
    text, buttons = card_text(ctx, card), card_buttons(ctx, card)
    if edit:
        ctx.edit(text, buttons)
    else:
        ctx.reply(text, buttons)


@router.button("mtg_card")
async def card_button(ctx: Context) -> None:
    await show_card(ctx, ctx.int_arg(0))


@router.button("mtg_rsvp")
async def rsvp_button(ctx: Context) -> None:
    meeting_id = ctx.int_arg(0)
    answer = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    await meetings.rsvp(ctx.session, ctx.actor, meeting_id, answer, ctx.now)
    ctx.answer(ctx.t(RSVP_SAVED[Rsvp(answer)]))
    await show_card(ctx, meeting_id, edit=True)


@router.button("mtg_ics")
async def ics_button(ctx: Context) -> None:
    meeting, data, filename = await meetings.meeting_ics(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, ctx.t
    )
    blob_id = await store_blob(ctx.session, data, filename, "text/calendar")
    ctx.send(Document(blob_id=blob_id, caption=ctx.t("meetings.ics_caption", title=meeting.title)))
    ctx.answer(ctx.t("meetings.ics_sent"))


# ---------------------------------------------------------------------------------------------
# Organiser views: code, RSVPs, agenda, attendance


@router.button("mtg_code")
async def code_button(ctx: Context) -> None:
    meeting, code, opens, closes = await meetings.checkin_code(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx)
    )
    ctx.reply(
        ctx.t(
            "meetings.code_text",
            title=meeting.title,
            code=code,
            opens=_when(ctx, opens),
            closes=f"{closes.astimezone(ctx.app.settings.zone):%H:%M}",
        )
    )


@router.button("mtg_rsvps")
async def rsvps_button(ctx: Context) -> None:
    summary = await meetings.rsvp_summary(ctx.session, ctx.actor, ctx.int_arg(0))
    lines = [ctx.t("meetings.rsvps_title", title=summary.meeting.title)]
    for answer in Rsvp:
        names = summary.names[answer]
        lines.append(
            ctx.t(
                "meetings.rsvps_line",
                answer=ctx.t(RSVP_NAMES[answer]),
                count=len(names),
                names="、".join(names) if names else "—",
            )
        )
    if summary.invited is not None:
        answered = sum(len(n) for n in summary.names.values())
        lines.append(ctx.t("meetings.rsvps_silent", count=max(summary.invited - answered, 0)))
    ctx.reply("\n".join(lines))


@router.button("mtg_agenda")
async def agenda_button(ctx: Context) -> None:
    meeting, topics = await meetings.agenda(ctx.session, ctx.actor, ctx.int_arg(0))
    if not topics:
        ctx.reply(ctx.t("meetings.agenda_empty", title=meeting.title))
        return
    lines = [ctx.t("meetings.agenda_title", title=meeting.title, count=len(topics))]
    lines += [f"{i}. {topic.text} — {topic.author}" for i, topic in enumerate(topics, start=1)]
    ctx.reply("\n".join(lines))


@router.button("mtg_present")
async def present_button(ctx: Context) -> None:
    meeting_id = ctx.int_arg(0)
    people = await meetings.attendees(ctx.session, ctx.actor, meeting_id)
    card = await meetings.meeting_card(ctx.session, ctx.actor, meeting_id, ctx.now, rules(ctx))
    names = "、".join(p.name for p in people) if people else "—"
    ctx.reply(
        ctx.t("meetings.present_text", title=card.meeting.title, count=len(people), names=names)
    )


# ---------------------------------------------------------------------------------------------
# Check-in


async def ask_checkin(ctx: Context) -> None:
    ctx.reply(
        ctx.t("meetings.checkin_ask"),
        request=((RequestButton(ctx.t("meetings.share_location"), "location"),),),
    )


@router.command("checkin", description=N_("meetings.cmd_checkin"), order=61)
async def checkin_command(ctx: Context) -> None:
    if ctx.incoming.args.strip():
        result = await meetings.check_in_with_code(
            ctx.session, ctx.actor, ctx.incoming.args, ctx.now, rules(ctx)
        )
        _checked_in(ctx, result)
        return
    await ctx.set_step("meetings.checkin", {})
    await ask_checkin(ctx)


@router.button("mtg_checkin")
async def checkin_button(ctx: Context) -> None:
    await ctx.set_step("meetings.checkin", {"meeting": ctx.int_arg(0)})
    await ask_checkin(ctx)


@router.step("meetings.checkin", accepts={Kind.text, Kind.location}, prompt=ask_checkin)
async def receive_checkin(ctx: Context) -> None:
    bound = (ctx.state.data if ctx.state else {}).get("meeting")
    location = ctx.incoming.location
    if location is not None:
        result = await meetings.check_in_with_location(
            ctx.session,
            ctx.actor,
            location.latitude,
            location.longitude,
            ctx.now,
            rules(ctx),
            meeting_id=bound,
        )
    else:
        result = await meetings.check_in_with_code(
            ctx.session, ctx.actor, ctx.incoming.text, ctx.now, rules(ctx), meeting_id=bound
        )
    await ctx.clear_step()
    _checked_in(ctx, result)


def _checked_in(ctx: Context, result: meetings.CheckinResult) -> None:
    zone = ctx.app.settings.zone
    at = f"{result.checked_in_at.astimezone(zone):%H:%M}"
    key = N_("meetings.checkin_already") if result.already else N_("meetings.checkin_done")
    text = ctx.t(key, title=result.meeting.title, at=at)
    if result.minutes:
        text += "\n" + ctx.t(
            "meetings.checkin_earned_hours",
            points=f"+{result.points}",
            hours=format_hours(result.minutes),
        )
    elif result.points:
        text += "\n" + ctx.t("meetings.checkin_earned", points=f"+{result.points}")
    ctx.reply(text, remove_keyboard=True)


# ---------------------------------------------------------------------------------------------
# Topics


@router.command("topic", description=N_("meetings.cmd_topic"), order=62)
async def topic_command(ctx: Context) -> None:
    choices = await meetings.topic_meetings(ctx.session, ctx.actor, ctx.now, rules(ctx))
    if not choices:
        raise InvalidInput("meetings.no_topic_meeting")
    text = ctx.incoming.args.strip()
    if len(choices) == 1:
        if text:
            await _save_topic(ctx, choices[0].id, text)
            return
        await _ask_topic_for(ctx, choices[0])
        return
    await ctx.set_step("meetings.topic_choose", {"text": text[: meetings.TOPIC_MAX + 1]})
    buttons = [
        [ctx.flow_button(f"{_when(ctx, m.starts_at)} · {m.title}", "mtg_tp", m.id)] for m in choices
    ]
    ctx.reply(ctx.t("meetings.topic_choose"), buttons)


@router.button("mtg_tp", flow=True)
async def topic_chosen(ctx: Context) -> None:
    meeting_id = ctx.int_arg(0)
    text = str((ctx.state.data if ctx.state else {}).get("text") or "")
    if text:
        await _save_topic(ctx, meeting_id, text)
        return
    card = await meetings.meeting_card(ctx.session, ctx.actor, meeting_id, ctx.now, rules(ctx))
    await _ask_topic_for(ctx, card.meeting)


@router.button("mtg_topic")
async def topic_button(ctx: Context) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    await _ask_topic_for(ctx, card.meeting)


async def _ask_topic_for(ctx: Context, meeting: MeetingView) -> None:
    await ctx.set_step("meetings.topic", {"meeting": meeting.id})
    await ask_topic(ctx)


async def ask_topic(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.topic_ask", limit=meetings.TOPIC_MAX))


@router.step("meetings.topic", accepts={Kind.text}, prompt=ask_topic)
async def receive_topic(ctx: Context) -> None:
    meeting_id = int((ctx.state.data if ctx.state else {}).get("meeting") or 0)
    await _save_topic(ctx, meeting_id, ctx.incoming.text)


async def _save_topic(ctx: Context, meeting_id: int, text: str) -> None:
    meeting = await meetings.submit_topic(ctx.session, ctx.actor, meeting_id, text, ctx.now)
    await ctx.clear_step()
    ctx.reply(
        ctx.t("meetings.topic_saved", title=meeting.title, when=_when(ctx, meeting.starts_at))
    )


# ---------------------------------------------------------------------------------------------
# Moving and cancelling


@router.button("mtg_move")
async def move_button(ctx: Context) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    if not card.manage:
        raise PermissionDenied()
    await ctx.set_step("meetings.move", {"meeting": card.meeting.id})
    await ask_move(ctx)


async def ask_move(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.move_ask", example=_example(ctx)))


def _example(ctx: Context) -> str:
    """A date a week from now, at 19:00, as people would type it."""
    zone = ctx.app.settings.zone
    return f"{(ctx.now + timedelta(days=7)).astimezone(zone):%Y-%m-%d} 19:00"


@router.step("meetings.move", accepts={Kind.text}, prompt=ask_move)
async def receive_move(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    new_start = meetings.parse_when(ctx.incoming.text, ctx.app.settings.zone, ctx.now)
    card = await meetings.meeting_card(
        ctx.session, ctx.actor, int(data.get("meeting") or 0), ctx.now, rules(ctx)
    )
    data["start"] = new_start.isoformat()
    await ctx.set_step("meetings.move_confirm", data)
    ctx.reply(
        ctx.t(
            "meetings.move_confirm",
            title=card.meeting.title,
            old=_when(ctx, card.meeting.starts_at),
            new=_when(ctx, new_start),
        ),
        [
            [
                ctx.flow_button(ctx.t("meetings.move_yes"), "mtg_move_ok"),
                ctx.flow_button(ctx.t("meetings.keep"), "mtg_keep"),
            ]
        ],
    )


@router.button("mtg_move_ok", flow=True)
async def move_confirmed(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    try:
        new_start = datetime.fromisoformat(str(data["start"]))
        meeting_id = int(data["meeting"])
    except (KeyError, ValueError):
        raise InvalidInput("core.stale_button") from None
    moved = await meetings.move_meeting(
        ctx.session, ctx.actor, meeting_id, new_start, ctx.now, rules(ctx)
    )
    await ctx.clear_step()
    ctx.edit(ctx.t("meetings.moved", title=moved.title, when=_when(ctx, moved.starts_at)))


@router.button("mtg_keep", flow=True)
async def keep(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("meetings.nothing_changed"))


@router.button("mtg_cancel")
async def cancel_button(ctx: Context) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    if not card.manage:
        raise PermissionDenied()
    await ctx.set_step("meetings.cancel_confirm", {"meeting": card.meeting.id})
    ctx.reply(
        ctx.t(
            "meetings.cancel_confirm",
            title=card.meeting.title,
            when=_when(ctx, card.meeting.starts_at),
        ),
        [
            [
                ctx.flow_button(ctx.t("meetings.cancel_yes"), "mtg_cancel_ok"),
                ctx.flow_button(ctx.t("meetings.keep"), "mtg_keep"),
            ]
        ],
    )


@router.button("mtg_cancel_ok", flow=True)
async def cancel_confirmed(ctx: Context) -> None:
    meeting_id = int((ctx.state.data if ctx.state else {}).get("meeting") or 0)
    cancelled = await meetings.cancel_meeting(
        ctx.session, ctx.actor, meeting_id, ctx.now, rules(ctx)
    )
    await ctx.clear_step()
    ctx.edit(
        ctx.t("meetings.cancelled", title=cancelled.title, when=_when(ctx, cancelled.starts_at))
    )


@router.button("mtg_end")
async def end_series_button(ctx: Context) -> None:
    series_id = ctx.int_arg(0)
    series = await meetings.managed_series_view(ctx.session, ctx.actor, series_id)
    await ctx.set_step("meetings.end_confirm", {"series": series_id})
    ctx.reply(
        ctx.t("meetings.end_series_confirm", title=series.title),
        [
            [
                ctx.flow_button(ctx.t("meetings.end_series_yes"), "mtg_end_ok"),
                ctx.flow_button(ctx.t("meetings.keep"), "mtg_keep"),
            ]
        ],
    )


@router.button("mtg_end_ok", flow=True)
async def end_series_confirmed(ctx: Context) -> None:
    series_id = int((ctx.state.data if ctx.state else {}).get("series") or 0)
    series = await meetings.end_series(ctx.session, ctx.actor, series_id, ctx.now)
    await ctx.clear_step()
    ctx.edit(ctx.t("meetings.series_ended", title=series.title))


# ---------------------------------------------------------------------------------------------
# Minutes and follow-ups


@router.button("mtg_minutes")
async def minutes_button(ctx: Context) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    if not card.manage:
        raise PermissionDenied()
    await ctx.set_step("meetings.minutes", {"meeting": card.meeting.id})
    await ask_minutes(ctx)


async def ask_minutes(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.minutes_ask", limit=meetings.MINUTES_MAX))


@router.step("meetings.minutes", accepts={Kind.text}, prompt=ask_minutes)
async def receive_minutes(ctx: Context) -> None:
    meeting_id = int((ctx.state.data if ctx.state else {}).get("meeting") or 0)
    meeting = await meetings.save_minutes(
        ctx.session, ctx.actor, meeting_id, ctx.incoming.text, ctx.now, rules(ctx)
    )
    await ctx.clear_step()
    ctx.reply(
        ctx.t("meetings.minutes_saved", title=meeting.title),
        [[Button(ctx.t("meetings.followups_button"), payload=f"mtg_fus:{meeting.id}")]],
    )


@router.button("mtg_fus")
async def followups_button(ctx: Context) -> None:
    meeting, items = await meetings.followups(ctx.session, ctx.actor, ctx.int_arg(0))
    lines = [ctx.t("meetings.followups_title", title=meeting.title)]
    rows: list[list[Button]] = []
    if not items:
        lines.append(ctx.t("meetings.followups_none"))
    for number, item in enumerate(items, start=1):
        owner = item.owner_name or ctx.t("meetings.no_owner")
        due = format_day(ctx.t, item.due_on) if item.due_on else ctx.t("meetings.no_due")
        lines.append(
            ctx.t(
                "meetings.followup_line",
                n=number,
                text=item.text,
                owner=owner,
                due=due,
                status=ctx.t(FOLLOWUP_STATUS[item.status]),
            )
        )
        if item.issue_number and item.issue_status:
            lines.append(
                ctx.t(
                    "meetings.followup_issue",
                    number=item.issue_number,
                    status=ctx.t(ISSUE_STATUS_KEYS[item.issue_status]),
                )
            )
        if item.status == FollowUpStatus.open:
            row = [
                Button(
                    ctx.t("meetings.followup_mark_done", n=number),
                    payload=f"mtg_fu:{item.id}:done",
                ),
                Button(
                    ctx.t("meetings.followup_mark_dropped", n=number),
                    payload=f"mtg_fu:{item.id}:dropped",
                ),
            ]
            if item.issue_id is None:
                row.append(
                    Button(ctx.t("meetings.followup_track", n=number), payload=f"mtg_fi:{item.id}")
                )
            rows.append(row)
    if not meeting.cancelled:
        rows.append([Button(ctx.t("meetings.followup_add"), payload=f"mtg_fu_add:{meeting.id}")])
    ctx.reply("\n".join(lines), rows)


@router.button("mtg_fi")
async def followup_track(ctx: Context) -> None:
    """One tap: the follow-up becomes a tracked issue with the meeting as its source."""
    _item, issue, created = await meetings.track_followup(
        ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, IssuePolicy.from_settings(ctx.app.settings)
    )
    await issue_handlers.show_handoff(ctx, issue, created)


@router.button("mtg_fu_add")
async def followup_add(ctx: Context) -> None:
    card = await meetings.meeting_card(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now, rules(ctx))
    if not card.manage:
        raise PermissionDenied()
    await ctx.set_step("meetings.fu_text", {"meeting": card.meeting.id})
    await ask_followup(ctx)


async def ask_followup(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.followup_ask", limit=meetings.FOLLOWUP_MAX))


@router.step("meetings.fu_text", accepts={Kind.text}, prompt=ask_followup)
async def receive_followup(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    text = ctx.incoming.text.strip()
    if len(text) > meetings.FOLLOWUP_MAX:
        raise InvalidInput("meetings.followup_too_long", limit=meetings.FOLLOWUP_MAX)
    people = await meetings.owner_choices(ctx.session, ctx.actor, int(data.get("meeting") or 0))
    data["text"] = text
    await ctx.set_step("meetings.fu_owner", data)
    buttons = [ctx.flow_button(p.name, "mtg_fu_owner", p.member_id) for p in people[:20]]
    buttons.append(ctx.flow_button(ctx.t("meetings.no_owner"), "mtg_fu_owner", 0))
    ctx.reply(ctx.t("meetings.followup_owner"), _rows(buttons))


@router.button("mtg_fu_owner", flow=True)
async def followup_owner(ctx: Context) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    data["owner"] = ctx.int_arg(0) or None
    await ctx.set_step("meetings.fu_due", data, keep_nonce=True)
    await ask_due(ctx)


async def ask_due(ctx: Context) -> None:
    ctx.reply(
        ctx.t("meetings.followup_due_ask"),
        [[ctx.flow_button(ctx.t("meetings.no_due"), "mtg_fu_nodue")]] if ctx.state else (),
    )


@router.step("meetings.fu_due", accepts={Kind.text}, prompt=ask_due)
async def receive_due(ctx: Context) -> None:
    due = meetings.parse_day(ctx.incoming.text, ctx.app.settings.zone, ctx.now)
    await _save_followup(ctx, due.isoformat())


@router.button("mtg_fu_nodue", flow=True)
async def followup_no_due(ctx: Context) -> None:
    await _save_followup(ctx, None)


async def _save_followup(ctx: Context, due: str | None) -> None:
    data = dict(ctx.state.data) if ctx.state else {}
    if "text" not in data:
        raise InvalidInput("core.stale_button")
    owner = data.get("owner")
    item = await meetings.add_followup(
        ctx.session,
        ctx.actor,
        int(data.get("meeting") or 0),
        str(data["text"]),
        int(owner) if owner else None,
        date.fromisoformat(due) if due else None,
        ctx.now,
        rules(ctx),
    )
    await ctx.clear_step()
    ctx.reply(
        ctx.t(
            "meetings.followup_saved",
            text=item.text,
            owner=item.owner_name or ctx.t("meetings.no_owner"),
            due=format_day(ctx.t, item.due_on) if item.due_on else ctx.t("meetings.no_due"),
        ),
        [[Button(ctx.t("meetings.followups_button"), payload=f"mtg_fus:{item.meeting_id}")]],
    )


@router.button("mtg_fu")
async def followup_close(ctx: Context) -> None:
    status = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    item, changed = await meetings.close_followup(
        ctx.session, ctx.actor, ctx.int_arg(0), status, ctx.now
    )
    key = N_("meetings.followup_closed") if changed else N_("meetings.followup_was_closed")
    text = ctx.t(key, text=item.text, status=ctx.t(FOLLOWUP_STATUS[item.status]))
    ctx.answer(text[:200])
    ctx.reply(text)


# ---------------------------------------------------------------------------------------------
# /attendance


@router.command("attendance", description=N_("meetings.cmd_attendance"), roles=ORGANISERS, order=64)
async def attendance_command(ctx: Context) -> None:
    series = await meetings.managed_series(ctx.session, ctx.actor)
    if not series:
        ctx.reply(ctx.t("meetings.no_series"))
        return
    buttons = [
        [Button(f"{s.title} · {_unit_label(ctx, s.unit)}", payload=f"mtg_att:{s.id}")]
        for s in series[:10]
    ]
    ctx.reply(ctx.t("meetings.attendance_choose"), buttons)


@router.button("mtg_att")
async def attendance_button(ctx: Context) -> None:
    report = await meetings.attendance_report(ctx.session, ctx.actor, ctx.int_arg(0), ctx.now)
    lines = [ctx.t("meetings.attendance_title", title=report.series.title)]
    if not report.rows:
        lines.append(ctx.t("meetings.attendance_none"))
    for row in report.rows:
        when = format_day(ctx.t, row.starts_at.astimezone(ctx.app.settings.zone).date())
        if row.cancelled:
            lines.append(ctx.t("meetings.attendance_cancelled", when=when))
        elif row.invited:
            rate = round(100 * row.attended / row.invited)
            lines.append(
                ctx.t(
                    "meetings.attendance_line",
                    when=when,
                    present=row.attended,
                    invited=row.invited,
                    rate=rate,
                    coming=row.coming,
                )
            )
        else:
            lines.append(
                ctx.t(
                    "meetings.attendance_line_open",
                    when=when,
                    present=row.attended,
                    coming=row.coming,
                )
            )
    if report.regulars:
        held = sum(1 for r in report.rows if not r.cancelled)
        lines += ["", ctx.t("meetings.attendance_regulars")]
        lines += [f"• {name}: {count}/{held}" for name, count in report.regulars[:30]]
    ctx.reply("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# /newmeeting: kind → unit → title → audience → first date → recurrence → venue → place → confirm


@router.command("newmeeting", description=N_("meetings.cmd_newmeeting"), roles=ORGANISERS, order=63)
async def new_meeting(ctx: Context) -> None:
    if not await meetings.organiser_units(ctx.session, ctx.actor):
        raise PermissionDenied()
    await ctx.set_step("meetings.new_kind")
    buttons = [ctx.flow_button(ctx.t(KIND_NAMES[k]), "mtg_nk", k.value) for k in MeetingKind]
    ctx.reply(ctx.t("meetings.new_kind"), _rows(buttons))


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


@router.button("mtg_nk", flow=True)
async def new_kind(ctx: Context) -> None:
    try:
        kind = MeetingKind(ctx.button_args[0] if ctx.button_args else "")
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    data = _data(ctx)
    data["kind"] = kind.value
    units = await meetings.organiser_units(ctx.session, ctx.actor)
    if len(units) == 1:
        await _unit_chosen(ctx, data, units[0].id)
        return
    await ctx.set_step("meetings.new_unit", data, keep_nonce=True)
    await _unit_page(ctx, 0)


@router.button("mtg_nup", flow=True)
async def new_unit_page(ctx: Context) -> None:
    await _unit_page(ctx, ctx.int_arg(0))


async def _unit_page(ctx: Context, page: int) -> None:
    units = await meetings.organiser_units(ctx.session, ctx.actor)
    pages = max(1, (len(units) + PER_PAGE - 1) // PER_PAGE)
    page = max(0, min(page, pages - 1))
    rows = [
        [ctx.flow_button(_unit_label(ctx, u), "mtg_nu", u.id)]
        for u in units[page * PER_PAGE : (page + 1) * PER_PAGE]
    ]
    nav = []
    if page > 0:
        nav.append(ctx.flow_button("◀", "mtg_nup", page - 1))
    if page < pages - 1:
        nav.append(ctx.flow_button("▶", "mtg_nup", page + 1))
    if nav:
        rows.append(nav)
    ctx.edit(ctx.t("meetings.new_unit", page=page + 1, pages=pages), rows)


@router.button("mtg_nu", flow=True)
async def new_unit(ctx: Context) -> None:
    await _unit_chosen(ctx, _data(ctx), ctx.int_arg(0))


async def _unit_chosen(ctx: Context, data: dict[str, Any], unit_id: int) -> None:
    units = {u.id: u for u in await meetings.organiser_units(ctx.session, ctx.actor)}
    unit = units.get(unit_id)
    if unit is None:
        raise PermissionDenied()
    data.update(unit=unit.code, unit_id=unit.id)
    kind = MeetingKind(data.get("kind", "custom"))
    data["default_title"] = f"{unit.label(ctx.t.locale)} {ctx.t(KIND_NAMES[kind])}"[
        : meetings.TITLE_MAX
    ]
    await ctx.set_step("meetings.new_title", data, keep_nonce=True)
    await ask_title(ctx)


async def ask_title(ctx: Context) -> None:
    default = str(_data(ctx).get("default_title") or "")
    buttons = (
        [[ctx.flow_button(ctx.t("meetings.use_title", title=default[:40]), "mtg_nt")]]
        if default and ctx.state
        else []
    )
    ctx.reply(ctx.t("meetings.new_title", limit=meetings.TITLE_MAX), buttons)


@router.step("meetings.new_title", accepts={Kind.text}, prompt=ask_title)
async def receive_title(ctx: Context) -> None:
    title = " ".join(ctx.incoming.text.split())
    if len(title) > meetings.TITLE_MAX:
        raise InvalidInput("meetings.title_too_long", limit=meetings.TITLE_MAX)
    await _title_chosen(ctx, title)


@router.button("mtg_nt", flow=True)
async def default_title(ctx: Context) -> None:
    await _title_chosen(ctx, str(_data(ctx).get("default_title") or ""))


async def _title_chosen(ctx: Context, title: str) -> None:
    if not title:
        raise InvalidInput("meetings.title_empty")
    data = _data(ctx)
    data["title"] = title
    await ctx.set_step("meetings.new_audience", data, keep_nonce=True)
    ctx.reply(
        ctx.t("meetings.new_audience"),
        [[ctx.flow_button(ctx.t(AUDIENCE_NAMES[a]), "mtg_na", a.value)] for a in Audience],
    )


@router.button("mtg_na", flow=True)
async def new_audience(ctx: Context) -> None:
    try:
        audience = Audience(ctx.button_args[0] if ctx.button_args else "")
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    data = _data(ctx)
    data.update(audience=audience.value, roles=[], members=[])
    if audience == Audience.open:
        await _ask_when(ctx, data)
    elif audience == Audience.roles:
        await ctx.set_step("meetings.new_roles", data, keep_nonce=True)
        _roles_screen(ctx, data)
    else:
        await ctx.set_step("meetings.new_members", data, keep_nonce=True)
        await _members_screen(ctx, data, 0)


def _roles_screen(ctx: Context, data: dict[str, Any]) -> None:
    chosen = set(data.get("roles") or [])
    buttons = [
        ctx.flow_button(("✔ " if r.value in chosen else "") + role_name(ctx, r), "mtg_nr", r.value)
        for r in AUDIENCE_ROLES
    ]
    rows = _rows(buttons)
    rows.append([ctx.flow_button(ctx.t("meetings.done_button"), "mtg_nrd")])
    ctx.edit(ctx.t("meetings.new_roles"), rows)


@router.button("mtg_nr", flow=True)
async def toggle_role(ctx: Context) -> None:
    try:
        role = Role(ctx.button_args[0] if ctx.button_args else "")
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    data = _data(ctx)
    chosen = list(data.get("roles") or [])
    if role.value in chosen:
        chosen.remove(role.value)
    else:
        chosen.append(role.value)
    data["roles"] = chosen
    await ctx.set_step("meetings.new_roles", data, keep_nonce=True)
    _roles_screen(ctx, data)


@router.button("mtg_nrd", flow=True)
async def roles_done(ctx: Context) -> None:
    data = _data(ctx)
    if not data.get("roles"):
        raise InvalidInput("meetings.no_roles")
    await _ask_when(ctx, data)


async def _members_screen(ctx: Context, data: dict[str, Any], page: int) -> None:
    people = await meetings.audience_candidates(
        ctx.session, ctx.actor, int(data.get("unit_id") or 0)
    )
    chosen = set(data.get("members") or [])
    pages = max(1, (len(people) + PER_PAGE - 1) // PER_PAGE)
    page = max(0, min(page, pages - 1))
    rows = [
        [
            ctx.flow_button(
                ("✔ " if p.member_id in chosen else "") + p.name, "mtg_nm", p.member_id, page
            )
        ]
        for p in people[page * PER_PAGE : (page + 1) * PER_PAGE]
    ]
    nav = []
    if page > 0:
        nav.append(ctx.flow_button("◀", "mtg_nmp", page - 1))
    if page < pages - 1:
        nav.append(ctx.flow_button("▶", "mtg_nmp", page + 1))
    if nav:
        rows.append(nav)
    rows.append([ctx.flow_button(ctx.t("meetings.done_button"), "mtg_nmd")])
    ctx.edit(ctx.t("meetings.new_members", count=len(chosen), page=page + 1, pages=pages), rows)


@router.button("mtg_nmp", flow=True)
async def members_page(ctx: Context) -> None:
    await _members_screen(ctx, _data(ctx), ctx.int_arg(0))


@router.button("mtg_nm", flow=True)
async def toggle_member(ctx: Context) -> None:
    data = _data(ctx)
    member_id = ctx.int_arg(0)
    allowed = {
        p.member_id
        for p in await meetings.audience_candidates(
            ctx.session, ctx.actor, int(data.get("unit_id") or 0)
        )
    }
    if member_id not in allowed:
        raise PermissionDenied()
    chosen = list(data.get("members") or [])
    if member_id in chosen:
        chosen.remove(member_id)
    else:
        chosen.append(member_id)
    data["members"] = chosen
    await ctx.set_step("meetings.new_members", data, keep_nonce=True)
    await _members_screen(ctx, data, ctx.int_arg(1) if len(ctx.button_args) > 1 else 0)


@router.button("mtg_nmd", flow=True)
async def members_done(ctx: Context) -> None:
    data = _data(ctx)
    if not data.get("members"):
        raise InvalidInput("meetings.no_members")
    await _ask_when(ctx, data)


async def _ask_when(ctx: Context, data: dict[str, Any]) -> None:
    await ctx.set_step("meetings.new_when", data, keep_nonce=True)
    await ask_when(ctx)


async def ask_when(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.new_when", example=_example(ctx)))


@router.step("meetings.new_when", accepts={Kind.text}, prompt=ask_when)
async def receive_when(ctx: Context) -> None:
    zone = ctx.app.settings.zone
    start = meetings.parse_when(ctx.incoming.text, zone, ctx.now)
    data = _data(ctx)
    data["start"] = start.isoformat()
    await ctx.set_step("meetings.new_rule", data, keep_nonce=True)
    await ask_rule(ctx)


async def ask_rule(ctx: Context) -> None:
    data = _data(ctx)
    zone = ctx.app.settings.zone
    start = datetime.fromisoformat(str(data["start"]))
    local = start.astimezone(zone)
    weekday = ctx.t(meetings.WEEKDAY_NAMES[local.weekday()])
    nth = (local.day - 1) // 7 + 1
    day_of = ctx.t(meetings.NTH_NAMES[nth if nth < 5 else -1]) + weekday
    buttons = [
        [
            ctx.flow_button(
                ctx.t(PRESET_NAMES[p.code], weekday=weekday, nth=day_of, day=local.day),
                "mtg_nrule",
                p.code,
            )
        ]
        for p in meetings.presets(start, zone)
    ]
    buttons.append([ctx.flow_button(ctx.t("meetings.preset_custom"), "mtg_nrule", "custom")])
    ctx.reply(ctx.t("meetings.new_rule", when=_when(ctx, start)), buttons)


@router.button("mtg_nrule", flow=True)
async def rule_chosen(ctx: Context) -> None:
    code = ctx.button_args[0] if ctx.button_args else ""
    data = _data(ctx)
    if "start" not in data:
        raise InvalidInput("core.stale_button")
    if code == "custom":
        await ctx.set_step("meetings.new_rrule", data, keep_nonce=True)
        await ask_rrule(ctx)
        return
    start = datetime.fromisoformat(str(data["start"]))
    preset = {p.code: p for p in meetings.presets(start, ctx.app.settings.zone)}.get(code)
    if preset is None:
        raise InvalidInput("core.stale_button")
    await _rule_set(ctx, data, preset.rrule)


async def ask_rrule(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.new_rrule"))


@router.step("meetings.new_rrule", accepts={Kind.text}, prompt=ask_rrule)
async def receive_rrule(ctx: Context) -> None:
    rule = meetings.normalise_rule(ctx.incoming.text)
    await _rule_set(ctx, _data(ctx), rule)


async def _rule_set(ctx: Context, data: dict[str, Any], rule: str | None) -> None:
    start = datetime.fromisoformat(str(data["start"]))
    await meetings.preview(start, rule, ctx.app.settings.zone, count=1)
    data["rule"] = rule
    await ctx.set_step("meetings.new_venue", data, keep_nonce=True)
    await ask_venue(ctx)


async def ask_venue(ctx: Context) -> None:
    ctx.reply(ctx.t("meetings.new_venue", limit=meetings.VENUE_MAX))


@router.step("meetings.new_venue", accepts={Kind.text}, prompt=ask_venue)
async def receive_venue(ctx: Context) -> None:
    venue = ctx.incoming.text.strip()
    if len(venue) > meetings.VENUE_MAX:
        raise InvalidInput("meetings.venue_too_long", limit=meetings.VENUE_MAX)
    data = _data(ctx)
    data["venue"] = venue
    await ctx.set_step("meetings.new_place", data, keep_nonce=True)
    await ask_place(ctx)


async def ask_place(ctx: Context) -> None:
    ctx.reply(
        ctx.t("meetings.new_place"),
        request=((RequestButton(ctx.t("meetings.share_location"), "location"),),),
    )
    if ctx.state is not None:
        ctx.reply(
            ctx.t("meetings.new_place_skip"),
            [[ctx.flow_button(ctx.t("meetings.skip_location"), "mtg_nskip")]],
        )


@router.step("meetings.new_place", accepts={Kind.location}, prompt=ask_place)
async def receive_place(ctx: Context) -> None:
    location = ctx.incoming.location
    assert location is not None
    data = _data(ctx)
    data.update(lat=location.latitude, lon=location.longitude)
    ctx.reply(ctx.t("meetings.place_saved"), remove_keyboard=True)
    await _confirm(ctx, data)


@router.button("mtg_nskip", flow=True)
async def skip_place(ctx: Context) -> None:
    data = _data(ctx)
    data.update(lat=None, lon=None)
    ctx.reply(ctx.t("meetings.place_skipped"), remove_keyboard=True)
    await _confirm(ctx, data)


def _draft(data: dict[str, Any]) -> SeriesDraft:
    try:
        return SeriesDraft(
            kind=MeetingKind(data["kind"]),
            title=str(data["title"]),
            unit_code=str(data["unit"]),
            first_start=datetime.fromisoformat(str(data["start"])),
            rrule=data.get("rule"),
            venue=str(data["venue"]),
            audience=Audience(data["audience"]),
            roles=[Role(r) for r in data.get("roles") or []],
            member_ids=[int(m) for m in data.get("members") or []],
            latitude=data.get("lat"),
            longitude=data.get("lon"),
        )
    except (KeyError, ValueError):
        raise InvalidInput("core.stale_button") from None


async def _confirm(ctx: Context, data: dict[str, Any]) -> None:
    draft = _draft(data)
    zone = ctx.app.settings.zone
    first = await meetings.preview(draft.first_start, draft.rrule, zone, count=3)
    await ctx.set_step("meetings.new_confirm", data, keep_nonce=True)
    if draft.audience == Audience.roles:
        audience = "、".join(role_name(ctx, r) for r in draft.roles)
    elif draft.audience == Audience.members:
        audience = ctx.t("meetings.audience_n_members", count=len(draft.member_ids))
    else:
        audience = ctx.t(AUDIENCE_NAMES[Audience.open])
    place = (
        ctx.t("meetings.place_set") if draft.latitude is not None else ctx.t("meetings.place_none")
    )
    text = ctx.t(
        "meetings.new_confirm",
        kind=ctx.t(KIND_NAMES[draft.kind]),
        title=draft.title,
        unit=str(data.get("unit")),
        audience=audience,
        rule=meetings.describe_rule(ctx.t, draft.rrule, draft.first_start, zone),
        dates="\n".join(f"• {_when(ctx, d)}" for d in first),
        venue=draft.venue,
        place=place,
    )
    ctx.reply(
        text,
        [
            [
                ctx.flow_button(ctx.t("meetings.create_button"), "mtg_nok"),
                ctx.flow_button(ctx.t("meetings.keep"), "mtg_keep"),
            ]
        ],
    )


@router.button("mtg_nok", flow=True)
async def create_confirmed(ctx: Context) -> None:
    data = _data(ctx)
    series, created = await meetings.create_series(
        ctx.session, ctx.actor, _draft(data), ctx.now, rules(ctx)
    )
    await ctx.clear_step()
    first = created[0] if created else None
    ctx.edit(
        ctx.t(
            "meetings.created",
            title=series.title,
            when=_when(ctx, first.starts_at) if first else "—",
        )
    )
    if first is not None:
        await show_card(ctx, first.id)
