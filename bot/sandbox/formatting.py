"""Text + parse_mode → (stripped text, entities), as Telegram stores a message."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ApiError, bad_request
from .html_text import Entity, parse_html, utf16_len
from .markdown_text import parse_markdown, parse_markdown_v2

_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


def _parse_entities_param(raw: Any) -> list[Entity]:
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise bad_request("can't parse entities JSON object") from None
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise bad_request("can't parse entities JSON object")
    entities: list[Entity] = []
    for item in value:
        if not isinstance(item.get("type"), str):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        offset, length = item.get("offset"), item.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            raise bad_request('can\'t parse MessageEntity: Field "offset" must be of type Number')
        if length > 0:
            entities.append({k: v for k, v in item.items() if v is not None})
    return entities


def _strip(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def format_text(
    text: str, parse_mode: str | None, entities_raw: Any = None
) -> tuple[str, list[Entity]]:
    """Apply parse_mode (or explicit entities), then strip surrounding whitespace."""
    if entities_raw not in (None, ""):
        entities = _parse_entities_param(entities_raw)
    else:
        mode = (parse_mode or "").strip().lower()
        if mode == "html":
            text, entities = parse_html(text)
        elif mode == "markdownv2":
            text, entities = parse_markdown_v2(text)
        elif mode == "markdown":
            text, entities = parse_markdown(text)
        elif mode == "":
            entities = []
        else:
            raise bad_request("unsupported parse_mode")
    return _strip(text, entities)


def check_length(text: str, limit: int, error: str) -> None:
    if len(text) > limit:
        raise ApiError(400, error)


def command_entities(text: str) -> list[Entity]:
    """A user's "/start payload" carries a bot_command entity at offset 0."""
    match = _COMMAND.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
