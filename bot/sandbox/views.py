"""JSON views of the state for the control API and the web page."""

from __future__ import annotations

from typing import Any

from .model import Json, StoredMessage
from .state import SandboxState

FILES_ROUTE = "/_sandbox/files/"


def file_url(file_id: str) -> str:
    return f"{FILES_ROUTE}{file_id}"


def message_view(message: StoredMessage) -> Json:
    api = message.api
    view: Json = {
        "chat_id": message.chat_id,
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "date": api.get("date"),
        "edit_date": api.get("edit_date"),
        "text": api.get("text"),
        "entities": api.get("entities", []),
        "caption": api.get("caption"),
        "caption_entities": api.get("caption_entities", []),
        "reply_markup": message.markup,
        "photo": None,
        "document": None,
        "sticker": None,
        "location": api.get("location"),
        "contact": api.get("contact"),
        "edit_count": message.edit_count,
        "deleted": message.deleted,
        "seq": message.seq,
    }
    photo: list[Json] | None = api.get("photo")
    if photo:
        view["photo"] = file_url(photo[-1]["file_id"])
    document: Json | None = api.get("document")
    if document:
        view["document"] = {
            "file_name": document.get("file_name"),
            "mime_type": document.get("mime_type"),
            "file_size": document.get("file_size"),
            "url": file_url(document["file_id"]),
        }
    sticker: Json | None = api.get("sticker")
    if sticker:
        view["sticker"] = {"emoji": sticker.get("emoji"), "url": file_url(sticker["file_id"])}
    return view


def chat_messages(state: SandboxState, chat_id: int, after_message_id: int) -> list[Json]:
    chat = state.chats[chat_id]
    return [message_view(m) for m in chat.messages[max(after_message_id, 0) :] if not m.deleted]


def events_view(state: SandboxState, after_seq: int) -> Json:
    """Everything that changed after `after_seq`, for the page's long poll."""
    entries = None if after_seq > state.seq else state.changes_since(after_seq)
    if entries is None or any(kind == "reset" for _, kind, _, _ in entries):
        return {"seq": state.seq, "reset": True}
    messages: dict[tuple[int, int], Json] = {}
    answers: list[Json] = []
    actions: dict[int, str | None] = {}
    users_changed = False
    for _, kind, chat_id, ref in entries:
        chat = state.chats.get(chat_id)
        if kind == "users":
            users_changed = True
        elif chat is None:
            continue
        elif kind == "message":
            messages[(chat_id, ref)] = message_view(chat.messages[ref - 1])
        elif kind == "answer":
            answers.append(chat.answers[ref].control_json())
        elif kind == "action":
            actions[chat_id] = chat.action
    result: dict[str, Any] = {
        "seq": state.seq,
        "reset": False,
        "users_changed": users_changed,
        "messages": list(messages.values()),
        "callback_answers": answers,
        "actions": [{"chat_id": c, "action": a} for c, a in actions.items()],
    }
    return result
