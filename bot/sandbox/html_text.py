"""Telegram's HTML parse mode: turns markup into plain text plus MessageEntity dicts.

Mirrors the rules in https://core.telegram.org/bots/api#html-style, including the error texts
("can't parse entities: ..."), so a bot that produces bad HTML fails here as it would in
production.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

Entity = dict[str, Any]

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_KNOWN_TAGS = {*_SIMPLE_TAGS, "span", "a", "blockquote", "tg-emoji"}
_ATTR = re.compile(r"""([a-zA-Z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_PLAIN = re.compile(r"[^<&]+")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of MessageEntity offsets."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


@dataclass
class _Open:
    name: str
    start: int  # UTF-16 offset in the output
    entity_type: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def _decode_ref(text: str, index: int) -> tuple[str, int] | None:
    match = _ENTITY_REF.match(text, index)
    if match is None:
        return None
    body = match.group(1)
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), match.end()
    decoded = _NAMED.get(body.lower())
    return (decoded, match.end()) if decoded is not None else None


def _attributes(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR.finditer(raw):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs[match.group(1).lower()] = html.unescape(value)
    return attrs


def _open_tag(text: str, index: int, inner: str, stack: list[_Open], pos: int) -> _Open:
    name, _, rest = inner.strip().partition(" ")
    name = name.lower().rstrip("/")
    attrs = _attributes(rest)
    at = byte_offset(text, index)
    if name not in _KNOWN_TAGS:
        raise parse_error(f'Unsupported start tag "{name}" at byte offset {at}')
    if name in _SIMPLE_TAGS:
        if name == "code" and stack and stack[-1].name == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                stack[-1].extra["language"] = language[len("language-") :]
                return _Open(name, pos, None)
        return _Open(name, pos, _SIMPLE_TAGS[name])
    if name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        return _Open(name, pos, "spoiler")
    if name == "a":
        href = attrs.get("href", "").strip()
        return _Open(name, pos, "text_link" if href else None, {"url": href} if href else {})
    if name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        return _Open(name, pos, kind)
    emoji_id = attrs.get("emoji-id", "")
    if not emoji_id:
        raise parse_error(f'Custom emoji entity must contain a tag "emoji-id" at byte offset {at}')
    return _Open(name, pos, "custom_emoji", {"custom_emoji_id": emoji_id})


def _close_tag(text: str, index: int, inner: str, stack: list[_Open]) -> _Open:
    name = inner[1:].strip().lower()
    at = byte_offset(text, index)
    if not stack:
        raise parse_error(f"Unexpected end tag at byte offset {at}")
    top = stack[-1]
    if name != top.name:
        raise parse_error(
            f'Unmatched end tag at byte offset {at}, expected "</{top.name}>", found "</{name}>"'
        )
    return stack.pop()


def parse_html(text: str) -> tuple[str, list[Entity]]:
    out: list[str] = []
    pos = 0
    stack: list[_Open] = []
    entities: list[Entity] = []
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char == "&":
            decoded = _decode_ref(text, index)
            piece, index = decoded if decoded is not None else ("&", index + 1)
            out.append(piece)
            pos += utf16_len(piece)
            continue
        if char != "<":
            match = _PLAIN.match(text, index)
            assert match is not None
            piece = match.group(0)
            out.append(piece)
            pos += utf16_len(piece)
            index = match.end()
            continue
        end = text.find(">", index)
        if end == -1:
            raise parse_error(f"Unclosed start tag at byte offset {byte_offset(text, index)}")
        inner = text[index + 1 : end]
        if inner.startswith("/"):
            opened = _close_tag(text, index, inner, stack)
            if opened.entity_type is not None and pos > opened.start:
                entity: Entity = {
                    "type": opened.entity_type,
                    "offset": opened.start,
                    "length": pos - opened.start,
                }
                entity.update(opened.extra)
                entities.append(entity)
        else:
            stack.append(_open_tag(text, index, inner, stack, pos))
        index = end + 1
    if stack:
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities
