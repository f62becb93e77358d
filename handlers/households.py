"""Household files in the chat: /myhouseholds, /households (search, add, edit), /assign (a
building's households to a member), /hubs ("1+10+N" groups) and /tags (cadences).

Every screen here asks the services, which check the person's roles on the household's
building each time: a forged or outdated button is refused there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.i18n import N_
from handlers.context import Context
from handlers.router import Router
from handlers.types import Kind
from models.members import Role
from models.visits import VisitOutcome
from services import households as hh
from services import visits
from services.access import UnitRef
from services.errors import InvalidInput
from services.households import VisitPolicy
from services.messages import Button

router = Router("households")

PAGE = 8
LIST_PAGE = 10
ASSIGNERS = hh.ASSIGNING_ROLES
FIELD_LABELS = {
    "address": N_("households.field_address"),
    "door": N_("households.field_door"),
    "size": N_("households.field_size"),
    "contact_name": N_("households.field_contact"),
    "phone": N_("households.field_phone"),
    "notes": N_("households.field_notes"),
}
ROLE_SHORT = {
    Role.volunteer: N_("households.role_volunteer"),
    Role.grid_worker: N_("households.role_grid_worker"),
    Role.grid_leader: N_("households.role_grid_leader"),
    Role.coordinator: N_("households.role_coordinator"),
    Role.admin: N_("households.role_admin"),
}


def policy_of(ctx: Context) -> VisitPolicy:
    return VisitPolicy.of(ctx.app.settings)


def day(ctx: Context, moment: datetime) -> str:
    return policy_of(ctx).local_date(moment).isoformat()


def due_phrase(ctx: Context, due_at: datetime) -> str:
    policy = policy_of(ctx)
    late = visits.overdue_days(due_at, policy.local_date(ctx.now), policy)
    if late > 0:
        return ctx.t("households.overdue_days", days=late)
    if late == 0:
        return ctx.t("households.due_today")
    return ctx.t("households.due_on", date=day(ctx, due_at))


def shorten(text: str, limit: int = 120) -> str:
    """A long text on a card (the card must fit one message, also when it is edited)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unit_label(ctx: Context, unit: UnitRef) -> str:
    return f"{unit.label(ctx.t.locale)} ({unit.code})"


def pages(items: Sequence[Any], page: int, per: int) -> tuple[list[Any], int, int]:
    """The items of one page, the page number (clamped) and the number of pages."""
    count = max(1, (len(items) + per - 1) // per)
    page = max(0, min(page, count - 1))
    return list(items[page * per : (page + 1) * per]), page, count


def nav_row(ctx: Context, action: str, page: int, count: int) -> list[Button]:
    row = []
    if page > 0:
        row.append(ctx.flow_button("◀", action, page - 1))
    if page < count - 1:
        row.append(ctx.flow_button("▶", action, page + 1))
    return row


# ---------------------------------------------------------------------------------------------
# The household card


async def card(ctx: Context, household_id: int, *, edit: bool = False) -> None:
    view = await hh.get_household(ctx.session, ctx.actor, household_id)
    recent = await visits.recent_visits(ctx.session, ctx.actor, household_id, limit=3)
    t = ctx.t
    lines = [t("households.card_title", place=view.place(t.locale))]
    if view.archived:
        lines.append(t("households.card_archived"))
    tags = view.tag_labels(t.locale) or t("households.no_tags")
    lines.append(t("households.card_tags", tags=tags, days=view.interval_days))
    if view.size:
        lines.append(t("households.card_size", size=view.size))
    if view.contact_name or view.phone:
        lines.append(
            t(
                "households.card_contact",
                name=view.contact_name or "—",
                phone=view.phone or "—",
            )
        )
    if view.notes:
        lines.append(t("households.card_notes", notes=view.notes))
    lines.append(
        t("households.card_assignee", name=view.assignee_name)
        if view.assignee_name
        else t("households.card_unassigned")
    )
    if view.last_visited_at:
        lines.append(t("households.card_last_visit", date=day(ctx, view.last_visited_at)))
    else:
        lines.append(t("households.card_never_visited"))
    if not view.archived:
        lines.append(t("households.card_next", due=due_phrase(ctx, view.due_at)))
    if recent:
        lines += ["", t("households.card_recent")]
        for visit in recent:
            lines.append(
                t(
                    "households.card_visit",
                    date=day(ctx, visit.visited_at),
                    name=visit.member_name or "—",
                    outcome=t(visits_outcome_key(visit.outcome)),
                )
            )
            if visit.needs:
                lines.append(t("households.card_visit_needs", needs=shorten(visit.needs)))
            if visit.issue_number:
                lines.append(t("households.card_visit_issue", number=visit.issue_number))
            if visit.wish_id:
                lines.append(t("households.card_visit_wish", id=visit.wish_id))
    buttons = []
    if not view.archived:
        buttons.append(Button(t("households.log_visit"), payload=f"visit:{view.id}"))
    if hh.may_edit(ctx.actor, view.building):
        buttons.append(Button(t("households.edit"), payload=f"hhe:{view.id}"))
    text = "\n".join(lines)
    if edit:
        ctx.edit(text, [buttons])
    else:
        ctx.reply(text, [buttons])


OUTCOMES = {
    VisitOutcome.met: N_("visits.outcome_met"),
    VisitOutcome.not_home: N_("visits.outcome_not_home"),
    VisitOutcome.refused: N_("visits.outcome_refused"),
    VisitOutcome.moved: N_("visits.outcome_moved"),
    VisitOutcome.other: N_("visits.outcome_other"),
}
"""How each outcome of a visit is called (the visits flow and the household card)."""


def visits_outcome_key(outcome: VisitOutcome) -> str:
    return OUTCOMES[outcome]


@router.button("hh")
async def open_household(ctx: Context) -> None:
    await card(ctx, ctx.int_arg(0))


# ---------------------------------------------------------------------------------------------
# /myhouseholds


@router.command(
    "myhouseholds", description=N_("households.cmd_myhouseholds"), roles=hh.VISITING_ROLES
)
async def my_households(ctx: Context) -> None:
    await _my_page(ctx, 0, edit=False)


@router.button("hh_list")
async def my_households_page(ctx: Context) -> None:
    await _my_page(ctx, ctx.int_arg(0), edit=True)


async def _my_page(ctx: Context, page: int, *, edit: bool) -> None:
    mine = await hh.my_households(ctx.session, ctx.actor)
    policy = policy_of(ctx)
    today = policy.local_date(ctx.now)
    t = ctx.t
    due = sum(1 for h in mine.households if visits.overdue_days(h.due_at, today, policy) >= 0)
    lines = []
    if mine.households:
        lines.append(t("households.mine_title", count=len(mine.households), due=due))
    else:
        lines.append(t("households.mine_empty"))
    shown, page, count = pages(mine.households, page, LIST_PAGE)
    rows = []
    for index, view in enumerate(shown, start=page * LIST_PAGE + 1):
        tags = view.tag_labels(t.locale)
        lines.append(
            t(
                "households.mine_line",
                n=index,
                place=view.place(t.locale),
                tags=f" · {tags}" if tags else "",
                due=due_phrase(ctx, view.due_at),
            )
        )
        rows.append([Button(f"{index}. {view.place(t.locale)}"[:60], payload=f"hh:{view.id}")])
    if count > 1:
        lines.append(t("households.page", page=page + 1, pages=count))
        nav = []
        if page > 0:
            nav.append(Button("◀", payload=f"hh_list:{page - 1}"))
        if page < count - 1:
            nav.append(Button("▶", payload=f"hh_list:{page + 1}"))
        rows.append(nav)
    if mine.out_of_scope:
        lines.append(t("households.mine_out_of_scope", count=mine.out_of_scope))
    if ctx.actor.member_id is not None:
        group = await visits.group_overdue(ctx.session, ctx.actor.member_id, ctx.now, policy)
        if group is not None:
            lines.append(t("households.mine_group", members=group[0], overdue=group[1]))
    text = "\n".join(lines)
    if edit:
        ctx.edit(text, rows)
    else:
        ctx.reply(text, rows)


# ---------------------------------------------------------------------------------------------
# /households: search and add


@router.command("households", description=N_("households.cmd_households"), roles=hh.EDITING_ROLES)
async def households_command(ctx: Context) -> None:
    if not await hh.buildings_for(ctx.session, ctx.actor, hh.EDITING_ROLES):
        raise InvalidInput("households.no_buildings")
    await ctx.set_step("households.search")
    await ask_search(ctx)


async def ask_search(ctx: Context) -> None:
    ctx.reply(
        ctx.t("households.search_prompt"),
        [[ctx.flow_button(ctx.t("households.add"), "hha")]],
    )


@router.step("households.search", accepts={Kind.text}, prompt=ask_search)
async def search(ctx: Context) -> None:
    found, total = await hh.search_households(ctx.session, ctx.actor, ctx.incoming.text)
    t = ctx.t
    if not found:
        ctx.reply(t("households.search_none"), [[ctx.flow_button(t("households.add"), "hha")]])
        return
    lines = [t("households.search_found", count=total)]
    rows = []
    for view in found:
        mark = t("households.archived_mark") if view.archived else ""
        label = f"{view.place(t.locale)}{mark}"
        lines.append(f"• {label}")
        rows.append([Button(label[:60], payload=f"hh:{view.id}")])
    if total > len(found):
        lines.append(t("households.search_more", count=total - len(found)))
    lines.append(t("households.search_again"))
    ctx.reply("\n".join(lines), rows)


@router.button("hha", flow=True)
async def add_start(ctx: Context) -> None:
    buildings = await hh.buildings_for(ctx.session, ctx.actor, hh.EDITING_ROLES)
    if not buildings:
        raise InvalidInput("households.no_buildings")
    if len(buildings) == 1:
        await _add_building_chosen(ctx, buildings[0])
        return
    await ctx.set_step("households.add_building", keep_nonce=True)
    await _building_page(ctx, buildings, 0, "hha_b", "hha_pg", N_("households.add_choose_building"))


async def _building_page(
    ctx: Context,
    buildings: list[UnitRef],
    page: int,
    choose: str,
    turn: str,
    title: str,
) -> None:
    shown, page, count = pages(buildings, page, PAGE)
    rows = [[ctx.flow_button(unit_label(ctx, b), choose, b.id)] for b in shown]
    nav = nav_row(ctx, turn, page, count)
    if nav:
        rows.append(nav)
    ctx.edit(ctx.t(title, page=page + 1, pages=count), rows)


@router.button("hha_pg", flow=True)
async def add_building_page(ctx: Context) -> None:
    buildings = await hh.buildings_for(ctx.session, ctx.actor, hh.EDITING_ROLES)
    await _building_page(
        ctx, buildings, ctx.int_arg(0), "hha_b", "hha_pg", N_("households.add_choose_building")
    )


@router.button("hha_b", flow=True)
async def add_building(ctx: Context) -> None:
    building_id = ctx.int_arg(0)
    buildings = {b.id: b for b in await hh.buildings_for(ctx.session, ctx.actor, hh.EDITING_ROLES)}
    if building_id not in buildings:
        ctx.actor.refuse(f"add household in building {building_id}")
    await _add_building_chosen(ctx, buildings[building_id])


async def _add_building_chosen(ctx: Context, building: UnitRef) -> None:
    await ctx.set_step("households.add_address", {"building": building.id}, keep_nonce=True)
    ctx.edit(ctx.t("households.add_in", building=unit_label(ctx, building)))
    await ask_address(ctx)


async def ask_address(ctx: Context) -> None:
    ctx.reply(ctx.t("households.ask_address", limit=hh.ADDRESS_MAX))


def _data(ctx: Context) -> dict[str, Any]:
    return dict(ctx.state.data) if ctx.state else {}


@router.step("households.add_address", accepts={Kind.text}, prompt=ask_address)
async def add_address(ctx: Context) -> None:
    draft = hh.clean_draft(hh.HouseholdDraft(ctx.incoming.text))
    data = _data(ctx) | {"address": draft.address}
    await ctx.set_step("households.add_door", data, keep_nonce=True)
    await ask_door(ctx)


async def ask_door(ctx: Context) -> None:
    ctx.reply(
        ctx.t("households.ask_door", limit=hh.DOOR_MAX),
        [[ctx.flow_button(ctx.t("households.skip"), "hha_skip")]],
    )


@router.step("households.add_door", accepts={Kind.text}, prompt=ask_door)
async def add_door(ctx: Context) -> None:
    data = _data(ctx)
    draft = hh.clean_draft(hh.HouseholdDraft(data.get("address", ""), ctx.incoming.text))
    await _to_tags(ctx, data | {"door": draft.door})


async def _to_tags(ctx: Context, data: dict[str, Any]) -> None:
    data.setdefault("tags", [])
    await ctx.set_step("households.add_tags", data, keep_nonce=True)
    await ask_tags(ctx)


async def ask_tags(ctx: Context, *, edit: bool = False) -> None:
    data = _data(ctx)
    chosen = set(data.get("tags", []))
    tags = await hh.list_tags(ctx.session)
    default = ctx.app.settings.visit_default_interval_days
    rows = []
    for index in range(0, len(tags), 2):
        rows.append(
            [
                ctx.flow_button(
                    ("✅ " if tag.id in chosen else "") + tag.label(ctx.t.locale), "hht", tag.id
                )
                for tag in tags[index : index + 2]
            ]
        )
    rows.append([ctx.flow_button(ctx.t("households.tags_done"), "hht_ok")])
    picked = [t for t in tags if t.id in chosen]
    text = ctx.t(
        "households.ask_tags",
        tags=hh.tag_list(picked, ctx.t.locale) or ctx.t("households.no_tags"),
        days=hh.interval_of(picked, default),
    )
    if edit:
        ctx.edit(text, rows)
    else:
        ctx.reply(text, rows)


async def tags_by_text(ctx: Context) -> None:
    """Someone typed instead of tapping: the tag buttons are above."""
    ctx.reply(ctx.t("households.use_tag_buttons"))
    await ask_tags(ctx)


router.step("households.add_tags", accepts={Kind.text}, prompt=ask_tags)(tags_by_text)
router.step("households.edit_tags", accepts={Kind.text}, prompt=ask_tags)(tags_by_text)


@router.button("hht", flow=True)
async def toggle_tag(ctx: Context) -> None:
    if ctx.state is None or ctx.state.step not in ("households.add_tags", "households.edit_tags"):
        raise InvalidInput("core.stale_button")
    tag_id = ctx.int_arg(0)
    if tag_id not in {t.id for t in await hh.list_tags(ctx.session)}:
        raise InvalidInput("core.stale_button")
    data = _data(ctx)
    chosen: list[int] = list(data.get("tags", []))
    if tag_id in chosen:
        chosen.remove(tag_id)
    else:
        chosen.append(tag_id)
    await ctx.set_step(ctx.state.step, data | {"tags": chosen}, keep_nonce=True)
    await ask_tags(ctx, edit=True)


@router.button("hht_ok", flow=True)
async def tags_done(ctx: Context) -> None:
    data = _data(ctx)
    if ctx.state is not None and ctx.state.step == "households.edit_tags":
        view = await hh.set_household_tags(
            ctx.session,
            ctx.actor,
            int(data.get("household", 0)),
            data.get("tags", []),
            ctx.now,
            policy_of(ctx),
        )
        await ctx.clear_step()
        ctx.answer(ctx.t("households.saved"))
        await card(ctx, view.id, edit=True)
        return
    if ctx.state is None or ctx.state.step != "households.add_tags":
        raise InvalidInput("core.stale_button")
    await ctx.set_step("households.add_contact", data, keep_nonce=True)
    tags = [t for t in await hh.list_tags(ctx.session) if t.id in set(data.get("tags", []))]
    ctx.edit(
        ctx.t(
            "households.tags_chosen",
            tags=hh.tag_list(tags, ctx.t.locale) or ctx.t("households.no_tags"),
        )
    )
    await ask_contact(ctx)


async def ask_contact(ctx: Context) -> None:
    ctx.reply(
        ctx.t("households.ask_contact", limit=hh.CONTACT_MAX),
        [[ctx.flow_button(ctx.t("households.skip"), "hha_skip")]],
    )


@router.step("households.add_contact", accepts={Kind.text}, prompt=ask_contact)
async def add_contact(ctx: Context) -> None:
    data = _data(ctx)
    draft = hh.clean_draft(
        hh.HouseholdDraft(data.get("address", ""), data.get("door", ""), (), ctx.incoming.text)
    )
    await ctx.set_step(
        "households.add_phone", data | {"contact": draft.contact_name}, keep_nonce=True
    )
    await ask_household_phone(ctx)


async def ask_household_phone(ctx: Context) -> None:
    ctx.reply(
        ctx.t("households.ask_phone"),
        [[ctx.flow_button(ctx.t("households.skip"), "hha_skip")]],
    )


@router.step("households.add_phone", accepts={Kind.text}, prompt=ask_household_phone)
async def add_phone(ctx: Context) -> None:
    phone = hh.clean_phone(ctx.incoming.text)
    await _save_new(ctx, _data(ctx) | {"phone": phone})


@router.button("hha_skip", flow=True)
async def add_skip(ctx: Context) -> None:
    step = ctx.state.step if ctx.state else ""
    data = _data(ctx)
    if step == "households.add_door":
        await _to_tags(ctx, data | {"door": ""})
    elif step == "households.add_contact":
        await ctx.set_step("households.add_phone", data, keep_nonce=True)
        await ask_household_phone(ctx)
    elif step == "households.add_phone":
        await _save_new(ctx, data)
    else:
        raise InvalidInput("core.stale_button")


async def _save_new(ctx: Context, data: dict[str, Any]) -> None:
    view = await hh.add_household(
        ctx.session,
        ctx.actor,
        int(data.get("building", 0)),
        hh.HouseholdDraft(
            data.get("address", ""),
            data.get("door", ""),
            tuple(data.get("tags", [])),
            data.get("contact"),
            data.get("phone"),
        ),
        ctx.now,
        policy_of(ctx),
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("households.added"))
    await card(ctx, view.id)


# ---------------------------------------------------------------------------------------------
# Editing


@router.button("hhe")
async def edit_household(ctx: Context) -> None:
    household_id = ctx.int_arg(0)
    household, building = await hh.load_household(
        ctx.session, ctx.actor, household_id, hh.EDITING_ROLES
    )
    await ctx.set_step("households.edit", {"household": household_id})
    t = ctx.t
    labels = [ctx.flow_button(t(label), "hhe_f", name) for name, label in FIELD_LABELS.items()]
    rows = [labels[i : i + 3] for i in range(0, len(labels), 3)]
    rows.append([ctx.flow_button(t("households.field_tags"), "hhe_f", "tags")])
    if household.archived_at is None:
        rows.append([ctx.flow_button(t("households.archive"), "hhe_f", "archive")])
    else:
        rows.append([ctx.flow_button(t("households.restore"), "hhe_f", "restore")])
    place = " ".join(p for p in (building.label(t.locale), household.address, household.door) if p)
    ctx.reply(t("households.edit_what", place=place), rows)


@router.button("hhe_f", flow=True)
async def edit_field(ctx: Context) -> None:
    data = _data(ctx)
    household_id = int(data.get("household", 0))
    name = ctx.button_args[0] if ctx.button_args else ""
    if name == "tags":
        view = await hh.get_household(ctx.session, ctx.actor, household_id)
        await hh.load_household(ctx.session, ctx.actor, household_id, hh.EDITING_ROLES)
        await ctx.set_step(
            "households.edit_tags", data | {"tags": [t.id for t in view.tags]}, keep_nonce=True
        )
        await ask_tags(ctx, edit=True)
        return
    if name in ("archive", "restore"):
        await hh.load_household(ctx.session, ctx.actor, household_id, hh.EDITING_ROLES)
        if name == "archive":
            text, confirm = ctx.t("households.archive_confirm"), ctx.t("households.yes_archive")
        else:
            text, confirm = ctx.t("households.restore_confirm"), ctx.t("households.yes_restore")
        ctx.edit(
            text,
            [
                [
                    ctx.flow_button(confirm, "hhe_arch", name),
                    ctx.flow_button(ctx.t("households.back"), "hhe_back"),
                ]
            ],
        )
        return
    if name not in FIELD_LABELS:
        raise InvalidInput("core.stale_button")
    await hh.load_household(ctx.session, ctx.actor, household_id, hh.EDITING_ROLES)
    await ctx.set_step("households.edit_value", data | {"field": name}, keep_nonce=True)
    await ask_value(ctx)


async def ask_value(ctx: Context) -> None:
    name = _data(ctx).get("field", "")
    label = ctx.t(FIELD_LABELS.get(name, N_("households.field_notes")))
    optional = name not in ("address", "door")
    key = N_("households.ask_value_optional") if optional else N_("households.ask_value")
    ctx.reply(ctx.t(key, field=label))


@router.step("households.edit_value", accepts={Kind.text}, prompt=ask_value)
async def edit_value(ctx: Context) -> None:
    data = _data(ctx)
    view = await hh.update_household(
        ctx.session,
        ctx.actor,
        int(data.get("household", 0)),
        str(data.get("field", "")),
        ctx.incoming.text,
        ctx.now,
    )
    await ctx.clear_step()
    ctx.reply(ctx.t("households.saved"))
    await card(ctx, view.id)


@router.button("hhe_arch", flow=True)
async def archive(ctx: Context) -> None:
    household_id = int(_data(ctx).get("household", 0))
    archived = (ctx.button_args[0] if ctx.button_args else "") == "archive"
    await hh.set_archived(ctx.session, ctx.actor, household_id, archived, ctx.now)
    await ctx.clear_step()
    ctx.answer(ctx.t("households.saved"))
    await card(ctx, household_id, edit=True)


@router.button("hhe_back", flow=True)
async def edit_back(ctx: Context) -> None:
    household_id = int(_data(ctx).get("household", 0))
    await ctx.clear_step()
    await card(ctx, household_id, edit=True)


# ---------------------------------------------------------------------------------------------
# /assign: a building's households to one member


@router.command("assign", description=N_("households.cmd_assign"), roles=ASSIGNERS)
async def assign_command(ctx: Context) -> None:
    buildings = await hh.buildings_for(ctx.session, ctx.actor, ASSIGNERS)
    if not buildings:
        raise InvalidInput("households.no_buildings")
    await ctx.set_step("households.assign")
    await _assign_buildings(ctx, 0, reply=True)


async def _assign_buildings(ctx: Context, page: int, *, reply: bool = False) -> None:
    buildings = await hh.buildings_for(ctx.session, ctx.actor, ASSIGNERS)
    shown, page, count = pages(buildings, page, PAGE)
    rows = [[ctx.flow_button(unit_label(ctx, b), "asg_b", b.id)] for b in shown]
    nav = nav_row(ctx, "asg_pg", page, count)
    if nav:
        rows.append(nav)
    text = ctx.t("households.assign_choose_building", page=page + 1, pages=count)
    if reply:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


@router.button("asg_pg", flow=True)
async def assign_building_page(ctx: Context) -> None:
    await _assign_buildings(ctx, ctx.int_arg(0))


@router.button("asg_b", flow=True)
async def assign_building(ctx: Context) -> None:
    building_id = ctx.int_arg(0)
    await ctx.set_step("households.assign", {"building": building_id}, keep_nonce=True)
    await _assign_members(ctx, 0)


@router.button("asg_mpg", flow=True)
async def assign_member_page(ctx: Context) -> None:
    await _assign_members(ctx, ctx.int_arg(0))


def member_label(ctx: Context, choice: hh.MemberChoice) -> str:
    roles = "、".join(ctx.t(ROLE_SHORT[r]) for r in choice.roles if r in ROLE_SHORT)
    return f"{choice.name} · {roles}" if roles else choice.name


async def _assign_members(ctx: Context, page: int) -> None:
    building_id = int(_data(ctx).get("building", 0))
    choices = await hh.assignable_members(ctx.session, ctx.actor, building_id)
    if not choices:
        raise InvalidInput("households.no_members")
    shown, page, count = pages(choices, page, PAGE)
    rows = [[ctx.flow_button(member_label(ctx, c)[:60], "asg_m", c.id)] for c in shown]
    nav = nav_row(ctx, "asg_mpg", page, count)
    if nav:
        rows.append(nav)
    ctx.edit(ctx.t("households.assign_choose_member", page=page + 1, pages=count), rows)


@router.button("asg_m", flow=True)
async def assign_member(ctx: Context) -> None:
    data = _data(ctx)
    member_id = ctx.int_arg(0)
    choices = {
        c.id: c
        for c in await hh.assignable_members(ctx.session, ctx.actor, int(data.get("building", 0)))
    }
    if member_id not in choices:
        ctx.actor.refuse(f"assign to member {member_id}")
    await ctx.set_step("households.assign", data | {"member": member_id}, keep_nonce=True)
    name = choices[member_id].name
    ctx.edit(
        ctx.t("households.assign_how", name=name),
        [
            [ctx.flow_button(ctx.t("households.assign_all", name=name), "asg_go", "all")],
            [ctx.flow_button(ctx.t("households.assign_free"), "asg_go", "free")],
        ],
    )


@router.button("asg_go", flow=True)
async def assign_go(ctx: Context) -> None:
    data = _data(ctx)
    how = ctx.button_args[0] if ctx.button_args else ""
    if how not in ("all", "free") or "member" not in data:
        raise InvalidInput("core.stale_button")
    result = await hh.assign_building(
        ctx.session,
        ctx.actor,
        int(data.get("building", 0)),
        int(data["member"]),
        ctx.now,
        only_unassigned=how == "free",
    )
    await ctx.clear_step()
    text = ctx.t(
        "households.assign_done",
        count=result.assigned,
        building=unit_label(ctx, result.building),
        name=result.member_name,
    )
    if result.kept:
        text += "\n" + ctx.t("households.assign_kept", count=result.kept)
    ctx.edit(text)


# ---------------------------------------------------------------------------------------------
# /hubs: "1+10+N" groups


@router.command("hubs", description=N_("households.cmd_hubs"), roles=ASSIGNERS)
async def hubs_command(ctx: Context) -> None:
    await ctx.set_step("households.hubs")
    await _hub_choose(ctx, 0, reply=True)


async def _hub_choose(ctx: Context, page: int, *, reply: bool = False) -> None:
    choices = await hh.hub_candidates(ctx.session, ctx.actor)
    if not choices:
        raise InvalidInput("households.no_members")
    shown, page, count = pages(choices, page, PAGE)
    rows = [[ctx.flow_button(member_label(ctx, c)[:60], "hub_h", c.id)] for c in shown]
    nav = nav_row(ctx, "hub_hpg", page, count)
    if nav:
        rows.append(nav)
    text = ctx.t("households.hub_choose", page=page + 1, pages=count)
    if reply:
        ctx.reply(text, rows)
    else:
        ctx.edit(text, rows)


@router.button("hub_hpg", flow=True)
async def hub_page(ctx: Context) -> None:
    await _hub_choose(ctx, ctx.int_arg(0))


@router.button("hub_h", flow=True)
async def hub_chosen(ctx: Context) -> None:
    hub_id = ctx.int_arg(0)
    await hh.hub_group(ctx.session, ctx.actor, hub_id)
    await ctx.set_step("households.hubs", {"hub": hub_id, "page": 0}, keep_nonce=True)
    await _hub_members(ctx)


async def _hub_members(ctx: Context) -> None:
    data = _data(ctx)
    hub_id = int(data.get("hub", 0))
    group = await hh.hub_group(ctx.session, ctx.actor, hub_id)
    linked = {m.id for m in group.members}
    choices = [c for c in await hh.hub_candidates(ctx.session, ctx.actor) if c.id != hub_id]
    shown, page, count = pages(choices, int(data.get("page", 0)), PAGE)
    rows = [
        [
            ctx.flow_button(
                (("✅ " if c.id in linked else "") + member_label(ctx, c))[:60], "hub_t", c.id
            )
        ]
        for c in shown
    ]
    nav = nav_row(ctx, "hub_tpg", page, count)
    if nav:
        rows.append(nav)
    rows.append([ctx.flow_button(ctx.t("households.hub_done"), "hub_ok")])
    ctx.edit(
        ctx.t(
            "households.hub_members",
            hub=group.hub.name,
            count=len(group.members),
            names="、".join(m.name for m in group.members) or "—",
            page=page + 1,
            pages=count,
        ),
        rows,
    )


@router.button("hub_tpg", flow=True)
async def hub_members_page(ctx: Context) -> None:
    await ctx.set_step("households.hubs", _data(ctx) | {"page": ctx.int_arg(0)}, keep_nonce=True)
    await _hub_members(ctx)


@router.button("hub_t", flow=True)
async def hub_toggle(ctx: Context) -> None:
    data = _data(ctx)
    hub_id = int(data.get("hub", 0))
    member_id = ctx.int_arg(0)
    group = await hh.hub_group(ctx.session, ctx.actor, hub_id)
    linked = member_id not in {m.id for m in group.members}
    await hh.set_hub_member(ctx.session, ctx.actor, hub_id, member_id, linked, ctx.now)
    await _hub_members(ctx)


@router.button("hub_ok", flow=True)
async def hub_done(ctx: Context) -> None:
    data = _data(ctx)
    group = await hh.hub_group(ctx.session, ctx.actor, int(data.get("hub", 0)))
    await ctx.clear_step()
    ctx.edit(
        ctx.t(
            "households.hub_saved",
            hub=group.hub.name,
            count=len(group.members),
            names="、".join(m.name for m in group.members) or "—",
        )
    )


# ---------------------------------------------------------------------------------------------
# /tags: visit intervals


TAG_MANAGERS = frozenset({Role.coordinator, Role.admin})


@router.command("tags", description=N_("households.cmd_tags"), roles=TAG_MANAGERS)
async def tags_command(ctx: Context) -> None:
    await ctx.set_step("households.tags")
    await _tag_list(ctx, reply=True)


async def _tag_list(ctx: Context, *, reply: bool = False) -> None:
    tags = await hh.list_tags(ctx.session)
    default = ctx.app.settings.visit_default_interval_days
    lines = [ctx.t("households.tags_title", days=default)]
    rows = []
    for tag in tags:
        days = tag.days(default)
        lines.append(ctx.t("households.tag_line", tag=tag.label(ctx.t.locale), days=days))
        label = ctx.t("households.tag_button", tag=tag.label(ctx.t.locale), days=days)
        rows.append([ctx.flow_button(label, "tag_e", tag.id)])
    rows.append([ctx.flow_button(ctx.t("households.tag_new"), "tag_new")])
    if reply:
        ctx.reply("\n".join(lines), rows)
    else:
        ctx.edit("\n".join(lines), rows)


@router.button("tag_e", flow=True)
async def tag_edit(ctx: Context) -> None:
    tag_id = ctx.int_arg(0)
    tags = {t.id: t for t in await hh.list_tags(ctx.session)}
    if tag_id not in tags:
        raise InvalidInput("core.stale_button")
    await ctx.set_step("households.tag_interval", {"tag": tag_id}, keep_nonce=True)
    await ask_interval(ctx)


async def ask_interval(ctx: Context) -> None:
    data = _data(ctx)
    tags = {t.id: t for t in await hh.list_tags(ctx.session)}
    tag = tags.get(int(data.get("tag", 0)))
    name = tag.label(ctx.t.locale) if tag else str(data.get("name", ""))
    ctx.reply(
        ctx.t(
            "households.ask_interval",
            tag=name,
            limit=hh.INTERVAL_MAX,
            days=ctx.app.settings.visit_default_interval_days,
        )
    )


@router.step("households.tag_interval", accepts={Kind.text}, prompt=ask_interval)
async def tag_interval(ctx: Context) -> None:
    days = hh.parse_interval(ctx.incoming.text)
    tag, changed = await hh.set_tag_interval(
        ctx.session, ctx.actor, int(_data(ctx).get("tag", 0)), days, policy_of(ctx), ctx.now
    )
    await ctx.clear_step()
    ctx.reply(
        ctx.t(
            "households.tag_interval_set",
            tag=tag.label(ctx.t.locale),
            days=tag.days(ctx.app.settings.visit_default_interval_days),
            count=changed,
        )
    )


@router.button("tag_new", flow=True)
async def tag_new(ctx: Context) -> None:
    await ctx.set_step("households.tag_name", keep_nonce=True)
    await ask_tag_name(ctx)


async def ask_tag_name(ctx: Context) -> None:
    ctx.reply(ctx.t("households.ask_tag_name", limit=hh.TAG_NAME_MAX))


@router.step("households.tag_name", accepts={Kind.text}, prompt=ask_tag_name)
async def tag_name(ctx: Context) -> None:
    name = ctx.incoming.text.strip()
    tags = await hh.list_tags(ctx.session)
    if any(t.name.casefold() == name.casefold() for t in tags):
        raise InvalidInput("households.tag_exists", tag=name[:20])
    if not name or len(name) > hh.TAG_NAME_MAX:
        raise InvalidInput("households.tag_name_invalid", limit=hh.TAG_NAME_MAX)
    await ctx.set_step("households.tag_new_interval", {"name": name}, keep_nonce=True)
    await ask_interval(ctx)


@router.step("households.tag_new_interval", accepts={Kind.text}, prompt=ask_interval)
async def tag_new_interval(ctx: Context) -> None:
    days = hh.parse_interval(ctx.incoming.text)
    tag = await hh.add_tag(ctx.session, ctx.actor, str(_data(ctx).get("name", "")), days, ctx.now)
    await ctx.clear_step()
    ctx.reply(
        ctx.t(
            "households.tag_added",
            tag=tag.label(ctx.t.locale),
            days=tag.days(ctx.app.settings.visit_default_interval_days),
        )
    )


async def use_buttons(ctx: Context) -> None:
    """A step that waits for a tap got text instead."""
    ctx.reply(ctx.t("households.use_buttons"))


for _step in (
    "households.add_building",
    "households.edit",
    "households.assign",
    "households.hubs",
    "households.tags",
):
    router.step(_step, accepts={Kind.text})(use_buttons)
