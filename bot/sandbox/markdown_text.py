"""Telegram's MarkdownV2 and legacy Markdown parse modes (the commonly used subset).

Supported: bold, italic, underline, strikethrough, spoiler, inline code, pre blocks with a
language, inline links and (MarkdownV2) line-start blockquotes. Unescaped reserved characters
and unclosed entities fail with Telegram's texts.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError
from .html_text import byte_offset, parse_error, utf16_len

Entity = dict[str, Any]

_RESERVED_V2 = set("_*[]()~`>#+-=|{}.!")
_TOGGLES_V2 = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.pos += utf16_len(piece)

    def add(self, entity_type: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": entity_type, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[Entity]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities


def _scan_until(text: str, index: int, closing: str, escapes: bool) -> tuple[str, int] | None:
    """Collect text up to `closing`; returns (content, index after closing) or None."""
    chunk: list[str] = []
    size = len(text)
    while index < size:
        if escapes and text[index] == "\\" and index + 1 < size:
            chunk.append(text[index + 1])
            index += 2
            continue
        if text.startswith(closing, index):
            return "".join(chunk), index + len(closing)
        chunk.append(text[index])
        index += 1
    return None


def _code_block(b: _Builder, text: str, index: int, escapes: bool) -> int:
    if text.startswith("```", index):
        found = _scan_until(text, index + 3, "```", escapes)
        if found is None:
            raise parse_error(
                f"Can't find end of Pre entity at byte offset {byte_offset(text, index)}"
            )
        content, after = found
        language = ""
        first, newline, rest = content.partition("\n")
        if newline and first and " " not in first:
            language, content = first, rest
        start = b.pos
        b.emit(content)
        extra = {"language": language} if language else {}
        b.add("pre", start, **extra)
        return after
    found = _scan_until(text, index + 1, "`", escapes)
    if found is None:
        raise parse_error(
            f"Can't find end of Code entity at byte offset {byte_offset(text, index)}"
        )
    start = b.pos
    b.emit(found[0])
    b.add("code", start)
    return found[1]


def _link_tail(text: str, index: int, escapes: bool) -> tuple[str, int] | None:
    if not text.startswith("(", index):
        return None
    return _scan_until(text, index + 1, ")", escapes)


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    b = _Builder(text)
    stack: list[tuple[str, int, int]] = []  # (entity type, utf16 start, source index)
    quote_start: int | None = None
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        at_line_start = index == 0 or text[index - 1] == "\n"
        if char == "\n" and quote_start is not None and not text.startswith(">", index + 1):
            b.add("blockquote", quote_start)
            quote_start = None
        if char == "\\" and index + 1 < size and 0 < ord(text[index + 1]) < 127:
            b.emit(text[index + 1])
            index += 2
            continue
        if char not in _RESERVED_V2:
            b.emit(char)
            index += 1
            continue
        if char == "`":
            index = _code_block(b, text, index, escapes=True)
            continue
        if char == ">" and at_line_start:
            if quote_start is None:
                quote_start = b.pos
            index += 1
            continue
        token = text[index : index + 2] if text[index : index + 2] in ("__", "||") else char
        if token in _TOGGLES_V2:
            kind = _TOGGLES_V2[token]
            open_at = next((i for i, item in enumerate(stack) if item[0] == kind), None)
            if open_at is None:
                stack.append((kind, b.pos, index))
            else:
                b.add(kind, stack.pop(open_at)[1])
            index += len(token)
            continue
        if char == "[":
            stack.append(("text_link", b.pos, index))
            index += 1
            continue
        if char == "]" and stack and stack[-1][0] == "text_link":
            _, start, _ = stack.pop()
            tail = _link_tail(text, index + 1, escapes=True)
            if tail is not None:
                b.add("text_link", start, url=tail[0])
                index = tail[1]
            else:
                index += 1
            continue
        raise parse_error(
            f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
        )
    if quote_start is not None:
        b.add("blockquote", quote_start)
    if stack:
        kind, _, source_index = stack[-1]
        raise parse_error(
            f"Can't find end of {_TYPE_NAMES[kind]} entity at byte offset "
            f"{byte_offset(text, source_index)}"
        )
    return b.result()


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    b = _Builder(text)
    index, size = 0, len(text)
    toggles = {"*": ("bold", "*"), "_": ("italic", "_")}
    while index < size:
        char = text[index]
        if char == "\\" and index + 1 < size and text[index + 1] in "_*`[":
            b.emit(text[index + 1])
            index += 2
            continue
        if char == "`":
            try:
                index = _code_block(b, text, index, escapes=False)
            except ApiError:
                raise _unclosed(text, index) from None
            continue
        if char in toggles:
            kind, closing = toggles[char]
            found = _scan_until(text, index + 1, closing, escapes=False)
            if found is None:
                raise _unclosed(text, index)
            start = b.pos
            b.emit(found[0])
            b.add(kind, start)
            index = found[1]
            continue
        if char == "[":
            found = _scan_until(text, index + 1, "]", escapes=False)
            tail = _link_tail(text, found[1], escapes=False) if found else None
            if found is None or tail is None:
                raise _unclosed(text, index)
            start = b.pos
            b.emit(found[0])
            b.add("text_link", start, url=tail[0])
            index = tail[1]
            continue
        b.emit(char)
        index += 1
    return b.result()


def _unclosed(text: str, index: int) -> ApiError:
    return parse_error(
        f"Can't find end of the entity starting at byte offset {byte_offset(text, index)}"
    )
