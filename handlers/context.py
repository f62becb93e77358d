"""What a handler gets: the incoming event, the transaction, the person, and a reply list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from bot.settings import Settings
from handlers.router import Registry
from handlers.types import Incoming, Kind, Toast
from services import conversations
from services.access import Actor
from services.conversations import State
from services.errors import InvalidInput
from services.members import MemberView
from services.messages import Button, Edit, Keyboard, Message, RequestButton, Text


@dataclass(frozen=True)
class AppInfo:
    """Start-up facts handlers need: settings, the bot's username, the routing registry."""

    settings: Settings
    bot_username: str
    registry: Registry


@dataclass
class Context:
    incoming: Incoming
    session: AsyncSession
    now: datetime
    app: AppInfo
    t: Translator
    member: MemberView | None = None
    actor: Actor = field(default_factory=lambda: Actor(member_id=None))
    state: State | None = None
    previous_state: State | None = None
    """The flow a command interrupted (so /cancel can say what it cancelled)."""
    replies: list[Message] = field(default_factory=list)
    toast: Toast | None = None
    button_args: list[str] = field(default_factory=list)
    """A pressed button's payload fields after the prefix (and after a flow button's nonce)."""

    # -- replying -------------------------------------------------------------------------

    def reply(
        self,
        text: str,
        buttons: Keyboard = (),
        *,
        request: tuple[tuple[RequestButton, ...], ...] = (),
        remove_keyboard: bool = False,
    ) -> None:
        self.replies.append(Text(text, buttons, request, remove_keyboard))

    def send(self, message: Message) -> None:
        self.replies.append(message)

    def edit(self, text: str, buttons: Keyboard = ()) -> None:
        """Replace the message whose button was pressed; a new message otherwise."""
        if self.incoming.kind == Kind.button and self.incoming.message_id is not None:
            self.replies.append(Edit(text, buttons, message_id=self.incoming.message_id))
        else:
            self.reply(text, buttons)

    def answer(self, text: str, *, alert: bool = False) -> None:
        self.toast = Toast(text, alert)

    # -- conversation state ---------------------------------------------------------------

    @property
    def ttl(self) -> timedelta:
        return timedelta(minutes=self.app.settings.conversation_timeout_minutes)

    async def set_step(
        self, step: str, data: dict[str, Any] | None = None, *, keep_nonce: bool = False
    ) -> State:
        nonce = self.state.nonce if keep_nonce and self.state else None
        self.state = await conversations.set_state(
            self.session,
            self.incoming.channel,
            self.incoming.chat_id,
            step,
            data if data is not None else {},
            self.now,
            self.ttl,
            nonce,
        )
        return self.state

    async def clear_step(self) -> None:
        await conversations.clear_state(self.session, self.incoming.channel, self.incoming.chat_id)
        self.state = None

    def flow_button(self, text: str, action: str, *args: object) -> Button:
        """A button that belongs to the current flow: stale once the flow moves on."""
        if self.state is None:
            raise RuntimeError("flow buttons need a conversation state; call set_step first")
        payload = ":".join([action, self.state.nonce, *(str(a) for a in args)])
        return Button(text, payload=payload)

    # -- reading button payloads ----------------------------------------------------------

    def int_arg(self, index: int) -> int:
        """A numeric payload field; a forged or mangled one is refused as a stale button."""
        try:
            return int(self.button_args[index])
        except (IndexError, ValueError):
            raise InvalidInput("core.stale_button") from None

    @property
    def member_id(self) -> int:
        if self.member is None:
            raise InvalidInput("core.join_first")
        return self.member.id
