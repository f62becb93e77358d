"""Teams in the chat: /teams lists the teams I am in (with "leave") and, for coordinators and
grid leaders, the teams in their area with "new team"; a team card shows its members with
buttons to add (by tapping a member of the unit, or by sending a phone number, ``tg:<id>`` or
``#<member id>``), remove, rename and archive (after a confirmation).

Every permission is checked again in :mod:`services.teams`; buttons are only hints.
"""

from __future__ import annotations

from typing import Any

from bot.i18n import N_
from handlers.context import Context
from handlers.households import nav_row, pages, unit_label
from handlers.router import MEMBERS, Router
from handlers.types import Kind
from services import audiences, org, teams
from services.errors import InvalidInput
from services.messages import Button
from services.teams import TeamView

router = Router("teams")

PAGE = 8
UNIT_BUTTONS = 24
NAMES_SHOWN = 40


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


def _team_id(ctx: Context) -> int:
    team_id = _data(ctx).get("team")
    if not isinstance(team_id, int):
        raise InvalidInput("core.stale_button")
    return team_id


def team_label(ctx: Context, team: TeamView) -> str:
    return f"{team.name} · {team.unit.label(ctx.t.locale)} ({team.members})"


# ---------------------------------------------------------------------------------------------
# /teams


@router.command("teams", description=N_("teams.cmd_teams"), roles=MEMBERS, order=66)
async def list_teams(ctx: Context) -> None:
    await _show_list(ctx, reply=True)


async def _show_list(ctx: Context, *, reply: bool = False) -> None:
    mine = await teams.my_teams(ctx.session, ctx.actor)
    lines = [ctx.t("teams.title")]
    if mine:
        lines.append(ctx.t("teams.mine", names="、".join(t.name for t in mine)))
    else:
        lines.append(ctx.t("teams.mine_none"))
    rows: list[list[Button]] = [
        [Button(ctx.t("teams.leave_button", name=t.name), payload=f"tm_lv:{t.id}")] for t in mine
    ]
    if audiences.may_address(ctx.actor):
        await ctx.set_step("teams.list", keep_nonce=not reply)
        managed = await teams.teams_in_scope(ctx.session, ctx.actor)
        lines.append(ctx.t("teams.managed") if managed else ctx.t("teams.managed_none"))
        rows += [[ctx.flow_button(team_label(ctx, t), "tm_o", t.id)] for t in managed]
        rows.append([ctx.flow_button(ctx.t("teams.new_button"), "tm_new")])
    text = "\n".join(lines)
    if reply:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


@router.button("tm_lv")
async def leave(ctx: Context) -> None:
    team_id = ctx.int_arg(0)
    left = await teams.leave(ctx.session, ctx.actor, team_id)
    ctx.answer(ctx.t("teams.left") if left else ctx.t("teams.not_in"))
    await _show_list(ctx)


async def prompt_list(ctx: Context) -> None:
    ctx.reply(ctx.t("teams.use_buttons"))


@router.step("teams.list", accepts=(), prompt=prompt_list)
async def list_step(ctx: Context) -> None:
    await prompt_list(ctx)


# ---------------------------------------------------------------------------------------------
# A new team: unit (when there is a choice), then the name


@router.button("tm_new", flow=True)
async def new_team(ctx: Context) -> None:
    units = await audiences.choosable_units(ctx.session, ctx.actor)
    if not units:
        ctx.actor.refuse("create team")
    if len(units) == 1:
        await _ask_name(ctx, units[0].id)
        return
    await ctx.set_step("teams.new_unit", keep_nonce=True)
    rows = [[ctx.flow_button(unit_label(ctx, u), "tm_nu", u.id)] for u in units[:UNIT_BUTTONS]]
    ctx.edit(ctx.t("teams.ask_unit"), rows)


async def prompt_unit(ctx: Context) -> None:
    ctx.reply(ctx.t("teams.ask_unit"))


@router.step("teams.new_unit", accepts={Kind.text}, prompt=prompt_unit)
async def unit_typed(ctx: Context) -> None:
    unit = await org.unit_by_code(ctx.session, ctx.incoming.text)
    await _ask_name(ctx, unit.id)


@router.button("tm_nu", flow=True)
async def unit_chosen(ctx: Context) -> None:
    await _ask_name(ctx, ctx.int_arg(0))


async def _ask_name(ctx: Context, unit_id: int) -> None:
    unit = await org.unit_by_id(ctx.session, unit_id)
    if not teams.may_manage(ctx.actor, unit):
        ctx.actor.refuse("create team", unit)
    await ctx.set_step("teams.new_name", {"unit": unit.id}, keep_nonce=True)
    ctx.edit(ctx.t("teams.ask_name", unit=unit_label(ctx, unit), limit=teams.NAME_MAX))


async def prompt_name(ctx: Context) -> None:
    ctx.reply(ctx.t("teams.ask_name_again", limit=teams.NAME_MAX))


@router.step("teams.new_name", accepts={Kind.text}, prompt=prompt_name)
async def name_typed(ctx: Context) -> None:
    unit_id = _data(ctx).get("unit")
    if not isinstance(unit_id, int):
        raise InvalidInput("core.stale_button")
    team = await teams.create(ctx.session, ctx.actor, unit_id, ctx.incoming.text, ctx.now)
    ctx.reply(ctx.t("teams.created", name=team.name, unit=unit_label(ctx, team.unit)))
    await _show_card(ctx, team.id, reply=True)


# ---------------------------------------------------------------------------------------------
# The team card


async def _show_card(ctx: Context, team_id: int, *, reply: bool = False) -> None:
    team = await teams.team(ctx.session, ctx.actor, team_id)
    people = await teams.members(ctx.session, ctx.actor, team_id)
    await ctx.set_step("teams.team", {"team": team_id}, keep_nonce=not reply)
    names = "、".join(p.name for p in people[:NAMES_SHOWN])
    if len(people) > NAMES_SHOWN:
        names += "…"
    lines = [
        ctx.t("teams.card", name=team.name, unit=unit_label(ctx, team.unit), count=len(people)),
        names or ctx.t("teams.empty"),
    ]
    rows = [
        [ctx.flow_button(ctx.t("teams.add_button"), "tm_add", 0)],
        [ctx.flow_button(ctx.t("teams.remove_button"), "tm_del", 0)] if people else [],
        [
            ctx.flow_button(ctx.t("teams.rename_button"), "tm_ren"),
            ctx.flow_button(ctx.t("teams.archive_button"), "tm_arc"),
        ],
        [ctx.flow_button(ctx.t("teams.back_button"), "tm_list")],
    ]
    text = "\n".join(lines)
    if reply:
        ctx.reply(text, [r for r in rows if r])
    else:
        ctx.edit(text, [r for r in rows if r])


@router.button("tm_o", flow=True)
async def open_team(ctx: Context) -> None:
    await _show_card(ctx, ctx.int_arg(0))


@router.button("tm_list", flow=True)
async def back_to_list(ctx: Context) -> None:
    await _show_list(ctx)


async def prompt_card(ctx: Context) -> None:
    ctx.reply(ctx.t("teams.use_buttons"))


@router.step("teams.team", accepts=(), prompt=prompt_card)
async def card_step(ctx: Context) -> None:
    await prompt_card(ctx)


# ---------------------------------------------------------------------------------------------
# Adding and removing members


async def _show_add(ctx: Context, page: int) -> None:
    team_id = _team_id(ctx)
    team = await teams.team(ctx.session, ctx.actor, team_id)
    choices = await teams.candidates(ctx.session, ctx.actor, team_id)
    shown, page, count = pages(choices, page, PAGE)
    await ctx.set_step("teams.add", {"team": team_id, "page": page}, keep_nonce=True)
    rows = [[ctx.flow_button(f"➕ {c.name}"[:60], "tm_am", c.id, page)] for c in shown]
    nav = nav_row(ctx, "tm_add", page, count)
    if nav:
        rows.append(nav)
    rows.append([ctx.flow_button(ctx.t("teams.done_button"), "tm_o", team_id)])
    key = N_("teams.add_pick") if choices else N_("teams.add_nobody")
    ctx.edit(ctx.t(key, name=team.name, members=team.members, page=page + 1, pages=count), rows)


@router.button("tm_add", flow=True)
async def add_page(ctx: Context) -> None:
    await _show_add(ctx, ctx.int_arg(0))


@router.button("tm_am", flow=True)
async def add_tapped(ctx: Context) -> None:
    member_id, page = ctx.int_arg(0), ctx.int_arg(1)
    added = await teams.add_member(ctx.session, ctx.actor, _team_id(ctx), member_id, ctx.now)
    ctx.answer(ctx.t("teams.added_one") if added else ctx.t("teams.already_in"))
    await _show_add(ctx, page)


async def prompt_add(ctx: Context) -> None:
    ctx.reply(ctx.t("teams.add_hint"))


@router.step("teams.add", accepts={Kind.text}, prompt=prompt_add)
async def add_typed(ctx: Context) -> None:
    """Phone numbers, ``tg:<id>`` or ``#<member id>``, separated by commas or new lines."""
    team_id = _team_id(ctx)
    refs = [r.strip() for r in ctx.incoming.text.replace("，", ",").replace("\n", ",").split(",")]
    refs = [r for r in refs if r][: teams.TEAM_SIZE_MAX]
    if not refs:
        raise InvalidInput("teams.add_hint")
    people = [await teams.member_by_ref(ctx.session, ref) for ref in refs]
    added = [
        p.name
        for p in people
        if await teams.add_member(ctx.session, ctx.actor, team_id, p.id, ctx.now)
    ]
    ctx.reply(ctx.t("teams.added", count=len(added), names="、".join(added) or "—"))
    await _show_card(ctx, team_id, reply=True)


async def _show_remove(ctx: Context, page: int) -> None:
    team_id = _team_id(ctx)
    team = await teams.team(ctx.session, ctx.actor, team_id)
    people = await teams.members(ctx.session, ctx.actor, team_id)
    shown, page, count = pages(people, page, PAGE)
    rows = [[ctx.flow_button(f"✖ {p.name}"[:60], "tm_rm", p.id, page)] for p in shown]
    nav = nav_row(ctx, "tm_del", page, count)
    if nav:
        rows.append(nav)
    rows.append([ctx.flow_button(ctx.t("teams.done_button"), "tm_o", team_id)])
    ctx.edit(ctx.t("teams.remove_pick", name=team.name, page=page + 1, pages=count), rows)


@router.button("tm_del", flow=True)
async def remove_page(ctx: Context) -> None:
    await _show_remove(ctx, ctx.int_arg(0))


@router.button("tm_rm", flow=True)
async def remove_tapped(ctx: Context) -> None:
    member_id, page = ctx.int_arg(0), ctx.int_arg(1)
    removed = await teams.remove_member(ctx.session, ctx.actor, _team_id(ctx), member_id)
    ctx.answer(ctx.t("teams.removed_one") if removed else ctx.t("teams.not_member"))
    await _show_remove(ctx, page)


# ---------------------------------------------------------------------------------------------
# Renaming and archiving


@router.button("tm_ren", flow=True)
async def rename(ctx: Context) -> None:
    team_id = _team_id(ctx)
    team = await teams.team(ctx.session, ctx.actor, team_id)
    await ctx.set_step("teams.rename", {"team": team_id}, keep_nonce=True)
    ctx.edit(ctx.t("teams.ask_rename", name=team.name, limit=teams.NAME_MAX))


@router.step("teams.rename", accepts={Kind.text}, prompt=prompt_name)
async def rename_typed(ctx: Context) -> None:
    team = await teams.rename(ctx.session, ctx.actor, _team_id(ctx), ctx.incoming.text)
    ctx.reply(ctx.t("teams.renamed", name=team.name))
    await _show_card(ctx, team.id, reply=True)


@router.button("tm_arc", flow=True)
async def archive(ctx: Context) -> None:
    team_id = _team_id(ctx)
    team = await teams.team(ctx.session, ctx.actor, team_id)
    ctx.edit(
        ctx.t("teams.archive_confirm", name=team.name, count=team.members),
        [
            [ctx.flow_button(ctx.t("teams.archive_yes"), "tm_arcok")],
            [ctx.flow_button(ctx.t("teams.archive_no"), "tm_o", team_id)],
        ],
    )


@router.button("tm_arcok", flow=True)
async def archive_confirmed(ctx: Context) -> None:
    team = await teams.archive(ctx.session, ctx.actor, _team_id(ctx), ctx.now)
    await ctx.clear_step()
    ctx.edit(ctx.t("teams.archived_done", name=team.name))
