"""Routing tables: each handler module declares its commands, button prefixes and steps on a
:class:`Router`; :class:`Registry` collects the routers in one visible order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.types import Kind
from models.members import Role

if TYPE_CHECKING:
    from handlers.context import Context

Handler = Callable[["Context"], Awaitable[None]]

ANYONE: None = None
"""``roles=ANYONE``: the command works for people who have not joined yet."""
MEMBERS: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    description: str
    """Message key of the one-line description shown in the menu and in /help."""
    roles: frozenset[Role] | None
    menu: bool
    order: int
    """Menu position: everyday commands first (default 50), help and settings last."""

    def visible_to(self, roles: frozenset[Role], is_member: bool) -> bool:
        if self.roles is None:
            return True
        return is_member and bool(self.roles & roles or Role.admin in roles)


@dataclass(frozen=True)
class ButtonSpec:
    prefix: str
    handler: Handler
    flow: bool
    """Payload is ``prefix:nonce:args``; valid only while the chat's flow has that nonce."""
    public: bool


@dataclass(frozen=True)
class StepSpec:
    step: str
    handler: Handler
    accepts: frozenset[Kind]
    prompt: Handler | None
    """Asks the step's question again when the person sent something the step cannot use."""


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[CommandSpec] = []
        self.buttons: list[ButtonSpec] = []
        self.steps: list[StepSpec] = []

    def command(
        self,
        name: str,
        *,
        description: str,
        roles: Iterable[Role] | None = MEMBERS,
        menu: bool = True,
        order: int = 50,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands.append(
                CommandSpec(
                    name,
                    handler,
                    description,
                    frozenset(roles) if roles is not None else None,
                    menu,
                    order,
                )
            )
            return handler

        return register

    def button(
        self, prefix: str, *, flow: bool = False, public: bool = False
    ) -> Callable[[Handler], Handler]:
        if ":" in prefix:
            raise ValueError("a button prefix cannot contain ':'")

        def register(handler: Handler) -> Handler:
            self.buttons.append(ButtonSpec(prefix, handler, flow, public))
            return handler

        return register

    def step(
        self, step: str, *, accepts: Iterable[Kind] = (Kind.text,), prompt: Handler | None = None
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.steps.append(StepSpec(step, handler, frozenset(accepts), prompt))
            return handler

        return register


class Registry:
    """All routers, in order. Duplicate names are a programming error caught at start-up."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = tuple(routers)
        self.commands: dict[str, CommandSpec] = {}
        self.buttons: dict[str, ButtonSpec] = {}
        self.steps: dict[str, StepSpec] = {}
        for router in routers:
            for command in router.commands:
                self._add(self.commands, command.name, command, router.name)
            for button in router.buttons:
                self._add(self.buttons, button.prefix, button, router.name)
            for step in router.steps:
                self._add(self.steps, step.step, step, router.name)

    @staticmethod
    def _add(table: dict[str, Any], key: str, value: object, router: str) -> None:
        if key in table:
            raise ValueError(f"{key!r} registered twice (again in router {router!r})")
        table[key] = value

    def menu(self, roles: frozenset[Role], is_member: bool) -> list[CommandSpec]:
        """Exactly the commands this person may use, in menu order."""
        specs = [c for c in self.commands.values() if c.menu and c.visible_to(roles, is_member)]
        return sorted(specs, key=lambda c: c.order)
