"""Bot API update (as the JSON dict both libraries can produce) → neutral Incoming."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.types import Contact, FileRef, Incoming, Kind, Location

CHANNEL = "telegram"


def _name(user: dict[str, Any]) -> str:
    parts = [user.get("first_name") or "", user.get("last_name") or ""]
    return " ".join(p for p in parts if p).strip() or user.get("username") or str(user.get("id"))


def _command(text: str, bot_username: str) -> tuple[str, str] | None:
    if not text.startswith("/"):
        return None
    head, _, args = text.partition(" ")
    name, _, target = head[1:].partition("@")
    if target and target.lower() != bot_username.lower():
        return None
    if not name:
        return None
    return name.lower(), args.strip()


def incoming_from_update(
    update: dict[str, Any], bot_username: str, now: datetime
) -> Incoming | None:
    """None for updates the bot does not handle (edits, channel posts, member changes…)."""
    update_id = int(update["update_id"])
    if "callback_query" in update:
        query = update["callback_query"]
        user = query["from"]
        message = query.get("message") or {}
        chat = message.get("chat") or {"id": user["id"], "type": "private"}
        return Incoming(
            channel=CHANNEL,
            update_id=update_id,
            user_id=int(user["id"]),
            chat_id=int(chat["id"]),
            kind=Kind.button,
            received_at=now,
            chat_is_private=chat.get("type") == "private",
            user_name=_name(user),
            language_code=user.get("language_code"),
            payload=str(query.get("data") or ""),
            callback_id=str(query["id"]),
            message_id=message.get("message_id"),
        )
    message = update.get("message")
    if not message or "from" not in message:
        return None
    user = message["from"]
    chat = message["chat"]
    base: dict[str, Any] = {
        "channel": CHANNEL,
        "update_id": update_id,
        "user_id": int(user["id"]),
        "chat_id": int(chat["id"]),
        "received_at": now,
        "chat_is_private": chat.get("type") == "private",
        "user_name": _name(user),
        "language_code": user.get("language_code"),
        "message_id": message.get("message_id"),
    }
    if "text" in message:
        text = str(message["text"])
        command = _command(text, bot_username)
        if command is not None:
            return Incoming(
                kind=Kind.command, text=text, command=command[0], args=command[1], **base
            )
        return Incoming(kind=Kind.text, text=text, **base)
    if message.get("photo"):
        largest = max(message["photo"], key=lambda p: p.get("width", 0) * p.get("height", 0))
        return Incoming(
            kind=Kind.photo,
            text=str(message.get("caption") or ""),
            photo=FileRef(largest["file_id"], largest.get("file_size")),
            **base,
        )
    if "location" in message:
        loc = message["location"]
        return Incoming(
            kind=Kind.location,
            location=Location(float(loc["latitude"]), float(loc["longitude"])),
            **base,
        )
    if "contact" in message:
        contact = message["contact"]
        return Incoming(
            kind=Kind.contact,
            contact=Contact(
                phone=str(contact.get("phone_number") or ""),
                user_id=contact.get("user_id"),
                name=_name(contact),
            ),
            **base,
        )
    if "sticker" in message:
        return Incoming(kind=Kind.sticker, **base)
    if "document" in message:
        doc = message["document"]
        return Incoming(
            kind=Kind.document,
            text=str(message.get("caption") or ""),
            document=FileRef(
                doc["file_id"], doc.get("file_size"), doc.get("file_name"), doc.get("mime_type")
            ),
            **base,
        )
    return Incoming(kind=Kind.other, **base)
