"""Points in the chat: /points, /hours, /rank for everyone; /rules and /award for coordinators
(rule table; manual awards, hours and corrections as reversing entries)."""

from __future__ import annotations

from datetime import datetime

from bot.i18n import N_
from handlers.context import Context
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from models.members import Role
from models.points import EntryKind, RuleKind, Source
from services import points
from services.access import UnitRef
from services.errors import InvalidInput
from services.messages import Button
from services.points import EntryLine, RankRow, RuleView, format_hours, signed

router = Router("points")

STAFF = frozenset({Role.coordinator, Role.admin})
SERVING = frozenset({Role.volunteer, Role.grid_worker, Role.grid_leader, Role.coordinator})
"""Who owes service hours and competes in rankings (residents see their points and the store)."""
SOURCE_NAMES = {
    Source.wish: N_("points.source_wish"),
    Source.visit: N_("points.source_visit"),
    Source.meeting: N_("points.source_meeting"),
    Source.task: N_("points.source_task"),
    Source.manual: N_("points.source_manual"),
    Source.store: N_("points.source_store"),
}
KIND_NAMES = {
    RuleKind.base: N_("points.kind_base"),
    RuleKind.bonus: N_("points.kind_bonus"),
    RuleKind.deduction: N_("points.kind_deduction"),
}
RULE_TOGGLE = {True: N_("points.button_rule_off"), False: N_("points.button_rule_on")}
ENTRY_NAMES = {
    EntryKind.award: N_("points.entry_award"),
    EntryKind.reversal: N_("points.entry_reversal"),
    EntryKind.redemption: N_("points.entry_redemption"),
    EntryKind.refund: N_("points.entry_refund"),
}


def _date(ctx: Context, moment: datetime) -> str:
    return moment.astimezone(ctx.app.settings.zone).strftime("%m-%d")


def entry_text(ctx: Context, line: EntryLine) -> str:
    label = line.label(ctx.t.locale) or ctx.t(SOURCE_NAMES[line.source])
    if line.kind != EntryKind.award:
        label = f"{ctx.t(ENTRY_NAMES[line.kind])}：{label}"
    text = f"{signed(line.points)} {label} · {_date(ctx, line.at)}"
    if line.reversed:
        text += " " + ctx.t("points.reversed_mark")
    return text


def _place(ctx: Context, place: RankRow | None, ranked: int, unit: UnitRef | None) -> str | None:
    if unit is None:
        return None
    name = unit.label(ctx.t.locale)
    if place is None:
        return ctx.t("points.place_none", unit=name)
    return ctx.t("points.place", unit=name, place=place.place, ranked=ranked)


@router.command("points", description=N_("points.cmd_points"), roles=MEMBERS, order=30)
async def show_points(ctx: Context) -> None:
    summary = await points.summary(ctx.session, ctx.member_id, ctx.now, ctx.app.settings.zone)
    lines = [
        ctx.t("points.title"),
        ctx.t("points.balance", balance=summary.balance),
        ctx.t(
            "points.year_points",
            year=summary.year,
            points=summary.year_points,
            month=summary.month_points,
        ),
    ]
    for place in (
        _place(ctx, summary.grid_place, summary.grid_ranked, summary.home.grid),
        _place(ctx, summary.community_place, summary.community_ranked, summary.home.community),
    ):
        if place:
            lines.append(place)
    lines += ["", ctx.t("points.recent")]
    lines += [entry_text(ctx, line) for line in summary.entries] or [ctx.t("points.no_entries")]
    ctx.reply(
        "\n".join(lines),
        [
            [
                Button(ctx.t("points.button_rank"), payload="cmd:rank"),
                Button(ctx.t("points.button_store"), payload="cmd:store"),
                Button(ctx.t("points.button_hours"), payload="cmd:hours"),
            ]
        ],
    )


@router.command("hours", description=N_("points.cmd_hours"), roles=SERVING, order=31)
async def show_hours(ctx: Context) -> None:
    settings = ctx.app.settings
    summary = await points.hours_summary(
        ctx.session,
        ctx.member_id,
        ctx.now,
        target_hours=settings.service_hours_target,
        zone=settings.zone,
    )
    lines = [
        ctx.t(
            "points.hours_title",
            year=summary.year,
            done=format_hours(summary.minutes),
            target=settings.service_hours_target,
        )
    ]
    if summary.missing_minutes:
        lines.append(ctx.t("points.hours_missing", missing=format_hours(summary.missing_minutes)))
    else:
        lines.append(ctx.t("points.hours_reached"))
    if summary.entries:
        lines += ["", ctx.t("points.recent")]
        for entry in summary.entries:
            hours = format_hours(entry.minutes)
            lines.append(
                f"{'+' if entry.minutes > 0 else ''}{hours} h · "
                f"{ctx.t(SOURCE_NAMES[entry.source])} · {_date(ctx, entry.at)}"
            )
    ctx.reply("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# /rank


@router.command("rank", description=N_("points.cmd_rank"), roles=SERVING, order=32)
async def rank(ctx: Context) -> None:
    await _rank(ctx, "g", "y", new=True)


@router.button("rk")
async def rank_button(ctx: Context) -> None:
    scope = ctx.button_args[0] if ctx.button_args else ""
    period = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    if scope not in ("g", "c") or period not in ("m", "y"):
        raise InvalidInput("core.stale_button")
    await _rank(ctx, scope, period, new=False)


async def _rank(ctx: Context, scope: str, period: str, *, new: bool) -> None:
    home = await points.home_of(ctx.session, ctx.member_id)
    unit = home.grid if scope == "g" else home.community
    if unit is None:
        unit, scope = home.community, "c"
    if unit is None:
        raise InvalidInput("points.no_home")
    year, month = points.periods(ctx.now, ctx.app.settings.zone)
    key = month if period == "m" else year
    result = await points.ranking(ctx.session, unit=unit, period=key, member_id=ctx.member_id)
    lines = [ctx.t("points.rank_title", unit=unit.label(ctx.t.locale), period=key), ""]
    medals = {1: "🥇", 2: "🥈", 3: "🥉"}
    for row in result.top:
        marker = medals.get(row.place, f"{row.place}.")
        me = " " + ctx.t("points.rank_you") if row.member_id == ctx.member_id else ""
        lines.append(f"{marker} {row.name} · {row.points}{me}")
    if not result.top:
        lines.append(ctx.t("points.rank_empty"))
    lines.append("")
    if result.mine is None:
        lines.append(ctx.t("points.rank_mine_none"))
    else:
        lines.append(
            ctx.t(
                "points.rank_mine",
                place=result.mine.place,
                ranked=result.ranked,
                points=result.mine.points,
            )
        )

    rows = [
        [
            Button(
                ("✓ " if scope == "g" else "") + ctx.t("points.rank_grid"), payload=f"rk:g:{period}"
            ),
            Button(
                ("✓ " if scope == "c" else "") + ctx.t("points.rank_community"),
                payload=f"rk:c:{period}",
            ),
        ],
        [
            Button(
                ("✓ " if period == "m" else "") + ctx.t("points.rank_month"),
                payload=f"rk:{scope}:m",
            ),
            Button(
                ("✓ " if period == "y" else "") + ctx.t("points.rank_year"), payload=f"rk:{scope}:y"
            ),
        ],
    ]
    if new:
        ctx.reply("\n".join(lines), rows)
    else:
        ctx.edit("\n".join(lines), rows)


# ---------------------------------------------------------------------------------------------
# /rules: the rule table for the coordinator's community (or installation-wide for admins)


def rule_line(ctx: Context, rule: RuleView) -> str:
    cap = ctx.t("points.rule_cap", cap=rule.monthly_cap) if rule.monthly_cap else ""
    off = " " + ctx.t("points.rule_off") if not rule.active else ""
    return (
        f"{rule.label(ctx.t.locale)} ({rule.code}) · {ctx.t(KIND_NAMES[rule.kind])} "
        f"{signed(rule.points)}{cap}{off}"
    )


@router.command("rules", description=N_("points.cmd_rules"), roles=STAFF, order=60)
async def rules(ctx: Context) -> None:
    await _rules(ctx, new=True)


async def _rules(ctx: Context, *, new: bool) -> None:
    scope, found = await points.rules_for(ctx.session, ctx.actor)
    where = scope.label(ctx.t.locale) if scope else ctx.t("points.scope_everywhere")
    lines = [ctx.t("points.rules_title", scope=where), ""]
    lines += [rule_line(ctx, rule) for rule in found]
    buttons = [Button(rule.code, payload=f"rule:show:{rule.code}") for rule in found]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([Button(ctx.t("points.button_new_rule"), payload="rule:new")])
    if new:
        ctx.reply("\n".join(lines), rows)
    else:
        ctx.edit("\n".join(lines), rows)


async def _rule(ctx: Context, code: str) -> RuleView:
    _, found = await points.rules_for(ctx.session, ctx.actor)
    rule = next((r for r in found if r.code == code), None)
    if rule is None:
        raise InvalidInput("points.rule_unknown", code=code[:32])
    return rule


@router.button("rule")
async def rule_button(ctx: Context) -> None:
    action = ctx.button_args[0] if ctx.button_args else ""
    code = ctx.button_args[1] if len(ctx.button_args) > 1 else ""
    if action == "new":
        points.rule_scope(ctx.actor)
        await ctx.set_step("points.rule_code")
        await ask_rule_code(ctx)
        return
    rule = await _rule(ctx, code)
    if action == "show":
        ctx.edit(
            rule_line(ctx, rule),
            [
                [
                    Button(ctx.t("points.button_edit_points"), payload=f"rule:pts:{code}"),
                    Button(ctx.t("points.button_edit_cap"), payload=f"rule:cap:{code}"),
                ],
                [
                    Button(
                        ctx.t(RULE_TOGGLE[rule.active]),
                        payload=f"rule:flip:{code}",
                    ),
                    Button(ctx.t("points.button_back"), payload="rule:list"),
                ],
            ],
        )
    elif action == "list":
        await _rules(ctx, new=False)
    elif action == "flip":
        await points.set_rule(
            ctx.session,
            ctx.actor,
            code=code,
            now=ctx.now,
            active=not rule.active,
            unit=points.rule_scope(ctx.actor),
        )
        ctx.answer(ctx.t("points.rule_saved"))
        await _rules(ctx, new=False)
    elif action in ("pts", "cap"):
        step = "points.rule_points" if action == "pts" else "points.rule_cap"
        await ctx.set_step(step, {"code": code})
        await (ask_rule_points(ctx) if action == "pts" else ask_rule_cap(ctx))
    else:
        raise InvalidInput("core.stale_button")


async def ask_rule_points(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_rule_points", limit=points.MAX_RULE_POINTS))


async def ask_rule_cap(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_rule_cap"))


def _int(text: str) -> int:
    try:
        return int(text.strip().replace("+", ""))
    except ValueError:
        raise InvalidInput("points.number_expected") from None


def _state(ctx: Context) -> dict[str, str]:
    return dict(ctx.state.data) if ctx.state else {}


@router.step("points.rule_points", accepts={Kind.text}, prompt=ask_rule_points)
async def receive_rule_points(ctx: Context) -> None:
    data = _state(ctx)
    rule = await points.set_rule(
        ctx.session,
        ctx.actor,
        code=data.get("code", ""),
        now=ctx.now,
        points=_int(ctx.incoming.text),
        unit=points.rule_scope(ctx.actor),
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.rule_saved") + "\n" + rule_line(ctx, rule))


@router.step("points.rule_cap", accepts={Kind.text}, prompt=ask_rule_cap)
async def receive_rule_cap(ctx: Context) -> None:
    cap = _int(ctx.incoming.text)
    rule = await points.set_rule(
        ctx.session,
        ctx.actor,
        code=_state(ctx).get("code", ""),
        now=ctx.now,
        monthly_cap=cap if cap > 0 else None,
        unit=points.rule_scope(ctx.actor),
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.rule_saved") + "\n" + rule_line(ctx, rule))


# -- a new rule: code, Chinese name, English name, kind, points ------------------------------


async def ask_rule_code(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_rule_code"))


@router.step("points.rule_code", accepts={Kind.text}, prompt=ask_rule_code)
async def receive_rule_code(ctx: Context) -> None:
    code = ctx.incoming.text.strip().lower()
    if not points.CODE_PATTERN.match(code):
        raise InvalidInput("points.rule_code_invalid")
    await ctx.set_step("points.rule_name", {"code": code}, keep_nonce=True)
    await ask_rule_name(ctx)


async def ask_rule_name(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_rule_name", limit=points.NAME_MAX))


@router.step("points.rule_name", accepts={Kind.text}, prompt=ask_rule_name)
async def receive_rule_name(ctx: Context) -> None:
    name = points.clean_text(ctx.incoming.text, points.NAME_MAX, "points.rule_name_too_long")
    await ctx.set_step("points.rule_name_en", _state(ctx) | {"name": name}, keep_nonce=True)
    await ask_rule_name_en(ctx)


async def ask_rule_name_en(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_rule_name_en", limit=points.NAME_MAX))


@router.step("points.rule_name_en", accepts={Kind.text}, prompt=ask_rule_name_en)
async def receive_rule_name_en(ctx: Context) -> None:
    name = points.clean_text(ctx.incoming.text, points.NAME_MAX, "points.rule_name_too_long")
    await ctx.set_step("points.rule_kind", _state(ctx) | {"name_en": name}, keep_nonce=True)
    await ask_rule_kind(ctx)


async def ask_rule_kind(ctx: Context) -> None:
    ctx.reply(
        ctx.t("points.ask_rule_kind"),
        [[ctx.flow_button(ctx.t(KIND_NAMES[k]), "rk_kind", k.value) for k in RuleKind]],
    )


@router.step("points.rule_kind", accepts=(Kind.text,), prompt=ask_rule_kind)
async def receive_rule_kind_text(ctx: Context) -> None:
    await ask_rule_kind(ctx)


@router.button("rk_kind", flow=True)
async def choose_rule_kind(ctx: Context) -> None:
    try:
        kind = RuleKind(ctx.button_args[0] if ctx.button_args else "")
    except ValueError:
        raise InvalidInput("core.stale_button") from None
    await ctx.set_step(
        "points.rule_new_points", _state(ctx) | {"kind": kind.value}, keep_nonce=True
    )
    ctx.edit(ctx.t("points.kind_chosen", kind=ctx.t(KIND_NAMES[kind])))
    await ask_rule_points(ctx)


@router.step("points.rule_new_points", accepts={Kind.text}, prompt=ask_rule_points)
async def receive_new_rule_points(ctx: Context) -> None:
    data = _state(ctx)
    value = abs(_int(ctx.incoming.text))
    kind = RuleKind(data.get("kind", RuleKind.base.value))
    rule = await points.set_rule(
        ctx.session,
        ctx.actor,
        code=data.get("code", ""),
        now=ctx.now,
        name=data.get("name"),
        name_en=data.get("name_en"),
        kind=kind,
        points=-value if kind == RuleKind.deduction else value,
        unit=points.rule_scope(ctx.actor),
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("points.rule_saved") + "\n" + rule_line(ctx, rule))


# ---------------------------------------------------------------------------------------------
# /award: a coordinator finds a member, then applies a rule, logs hours or reverses an entry


@router.command("award", description=N_("points.cmd_award"), roles=STAFF, order=61)
async def award(ctx: Context) -> None:
    if not ctx.actor.scopes({Role.coordinator}):
        ctx.actor.refuse("award")
    await ctx.set_step("points.award_who")
    await ask_who(ctx)


async def ask_who(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_who"))


@router.step("points.award_who", accepts={Kind.text}, prompt=ask_who)
async def receive_who(ctx: Context) -> None:
    found = await points.find_members(ctx.session, ctx.actor, ctx.incoming.text)
    if not found:
        ctx.reply(ctx.t("points.nobody_found"))
        return
    await ctx.set_step("points.award_member", {}, keep_nonce=True)
    ctx.reply(
        ctx.t("points.choose_member"),
        [[ctx.flow_button(f"{m.name} (#{m.id})", "aw_m", m.id)] for m in found],
    )


@router.step("points.award_member", accepts={Kind.text}, prompt=ask_who)
async def search_again(ctx: Context) -> None:
    await receive_who(ctx)


@router.button("aw_m", flow=True)
async def choose_member(ctx: Context) -> None:
    member_id = ctx.int_arg(0)
    await points.require_staff_over(ctx.session, ctx.actor, member_id, "award")
    name = await points.member_name(ctx.session, member_id)
    await ctx.set_step(
        "points.award_action", {"member": str(member_id), "name": name}, keep_nonce=True
    )
    balance = await points.balance(ctx.session, member_id)
    ctx.edit(
        ctx.t("points.member_chosen", name=name, balance=balance),
        [
            [
                ctx.flow_button(ctx.t("points.button_apply_rule"), "aw_a", "rule"),
                ctx.flow_button(ctx.t("points.button_log_hours"), "aw_a", "hours"),
            ],
            [
                ctx.flow_button(ctx.t("points.button_reverse_entry"), "aw_a", "undo"),
                ctx.flow_button(ctx.t("points.button_reverse_hours"), "aw_a", "undoh"),
            ],
        ],
    )


@router.button("aw_a", flow=True)
async def choose_action(ctx: Context) -> None:
    data = _state(ctx)
    member_id = int(data.get("member", "0"))
    action = ctx.button_args[0] if ctx.button_args else ""
    if action == "rule":
        _, found = await points.rules_for(ctx.session, ctx.actor)
        active = [r for r in found if r.active]
        await ctx.set_step("points.award_rule", data, keep_nonce=True)
        buttons = [
            ctx.flow_button(f"{r.label(ctx.t.locale)} {signed(r.points)}", "aw_r", r.code)
            for r in active
        ]
        ctx.edit(
            ctx.t("points.choose_rule", name=data.get("name", "")),
            [buttons[i : i + 2] for i in range(0, len(buttons), 2)],
        )
    elif action == "hours":
        await ctx.set_step("points.award_hours", data, keep_nonce=True)
        await ask_hours(ctx)
    elif action == "undo":
        lines = await points.last_entries(ctx.session, member_id, 8, awards_only=True)
        open_lines = [line for line in lines if not line.reversed]
        if not open_lines:
            raise InvalidInput("points.nothing_to_reverse")
        await ctx.set_step("points.award_pick", data, keep_nonce=True)
        ctx.edit(
            ctx.t("points.choose_entry"),
            [[ctx.flow_button(entry_text(ctx, line), "aw_x", line.id)] for line in open_lines],
        )
    elif action == "undoh":
        hours = await points.recent_hours(ctx.session, member_id)
        if not hours:
            raise InvalidInput("points.nothing_to_reverse")
        await ctx.set_step("points.award_pick", data, keep_nonce=True)
        ctx.edit(
            ctx.t("points.choose_entry"),
            [
                [
                    ctx.flow_button(
                        f"{format_hours(h.minutes)} h · {ctx.t(SOURCE_NAMES[h.source])} · "
                        f"{_date(ctx, h.at)}",
                        "aw_hx",
                        h.id,
                    )
                ]
                for h in hours
            ],
        )
    else:
        raise InvalidInput("core.stale_button")


@router.button("aw_r", flow=True)
async def choose_rule(ctx: Context) -> None:
    code = ctx.button_args[0] if ctx.button_args else ""
    rule = await _rule(ctx, code)
    await ctx.set_step("points.award_note", _state(ctx) | {"rule": rule.code}, keep_nonce=True)
    await ask_note(ctx)


@router.button("aw_x", flow=True)
async def choose_entry(ctx: Context) -> None:
    data = _state(ctx) | {"entry": str(ctx.int_arg(0)), "what": "points"}
    await ctx.set_step("points.award_reason", data, keep_nonce=True)
    await ask_reason(ctx)


@router.button("aw_hx", flow=True)
async def choose_hours_entry(ctx: Context) -> None:
    data = _state(ctx) | {"entry": str(ctx.int_arg(0)), "what": "hours"}
    await ctx.set_step("points.award_reason", data, keep_nonce=True)
    await ask_reason(ctx)


async def ask_hours(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_hours", limit=points.MAX_HOURS))


@router.step("points.award_hours", accepts={Kind.text}, prompt=ask_hours)
async def receive_award_hours(ctx: Context) -> None:
    minutes = points.to_minutes(ctx.incoming.text.strip().lower().removesuffix("h"))
    data = _state(ctx) | {"minutes": str(minutes)}
    await ctx.set_step("points.award_note", data, keep_nonce=True)
    await ask_note(ctx)


async def ask_note(ctx: Context) -> None:
    ctx.reply(
        ctx.t("points.ask_note", limit=points.NOTE_MAX),
        [[ctx.flow_button(ctx.t("points.button_no_note"), "aw_n")]],
    )


@router.step("points.award_note", accepts={Kind.text}, prompt=ask_note)
async def receive_note(ctx: Context) -> None:
    note = points.clean_text(ctx.incoming.text, points.NOTE_MAX, "points.note_too_long")
    await _confirm(ctx, _state(ctx) | {"note": note})


@router.button("aw_n", flow=True)
async def skip_note(ctx: Context) -> None:
    await _confirm(ctx, _state(ctx) | {"note": ""})


async def ask_reason(ctx: Context) -> None:
    ctx.reply(ctx.t("points.ask_reason", limit=points.NOTE_MAX))


@router.step("points.award_reason", accepts={Kind.text}, prompt=ask_reason)
async def receive_reason(ctx: Context) -> None:
    note = points.clean_text(ctx.incoming.text, points.NOTE_MAX, "points.note_too_long")
    await _confirm(ctx, _state(ctx) | {"note": note})


async def _confirm(ctx: Context, data: dict[str, str]) -> None:
    await ctx.set_step("points.award_confirm", data, keep_nonce=True)
    name = data.get("name", "")
    if "rule" in data:
        rule = await _rule(ctx, data["rule"])
        text = ctx.t(
            "points.confirm_rule",
            name=name,
            rule=rule.label(ctx.t.locale),
            points=signed(rule.points),
        )
    elif "minutes" in data:
        text = ctx.t("points.confirm_hours", name=name, hours=format_hours(int(data["minutes"])))
    else:
        text = ctx.t("points.confirm_reverse", name=name, id=data.get("entry", "?"))
    if data.get("note"):
        text += "\n" + ctx.t("points.note_line", note=data["note"])
    ctx.reply(
        text,
        [
            [
                ctx.flow_button(ctx.t("points.button_confirm"), "aw_ok"),
                ctx.flow_button(ctx.t("points.button_cancel"), "aw_no"),
            ]
        ],
    )


@router.step("points.award_confirm", accepts={Kind.text}, prompt=None)
async def waiting_for_confirm(ctx: Context) -> None:
    ctx.reply(ctx.t("points.press_confirm"))


@router.button("aw_no", flow=True)
async def cancel_award(ctx: Context) -> None:
    await ctx.clear_step()
    ctx.edit(ctx.t("points.cancelled"))


@router.button("aw_ok", flow=True)
async def confirm_award(ctx: Context) -> None:
    data = _state(ctx)
    if ctx.state is None or ctx.state.step != "points.award_confirm":
        raise InvalidInput("core.stale_button")
    token = ctx.state.nonce
    member_id = int(data.get("member", "0"))
    zone = ctx.app.settings.zone
    note = data.get("note", "")
    if "rule" in data:
        entry = await points.award_manual(
            ctx.session,
            ctx.actor,
            member_id=member_id,
            rule_code=data["rule"],
            now=ctx.now,
            token=token,
            note=note,
            zone=zone,
        )
        key = N_("points.done_capped") if entry.capped else N_("points.done_rule")
        text = ctx.t(key, name=data.get("name", ""), points=signed(entry.points))
    elif "minutes" in data:
        minutes = await points.log_hours_manual(
            ctx.session,
            ctx.actor,
            member_id=member_id,
            hours=str(int(data["minutes"]) / 60),
            now=ctx.now,
            token=token,
            note=note,
        )
        text = ctx.t("points.done_hours", name=data.get("name", ""), hours=format_hours(minutes))
    elif data.get("what") == "hours":
        minutes = await points.reverse_hours(
            ctx.session, ctx.actor, entry_id=int(data.get("entry", "0")), reason=note, now=ctx.now
        )
        text = ctx.t("points.done_reverse_hours", hours=format_hours(-minutes))
    else:
        reversal = await points.reverse_entry(
            ctx.session,
            ctx.actor,
            entry_id=int(data.get("entry", "0")),
            reason=note,
            now=ctx.now,
            zone=zone,
        )
        text = ctx.t("points.done_reverse", points=signed(reversal.points))
    await ctx.clear_step()
    ctx.edit(text)
    ctx.answer(text[:100])
