"""Parse modes: entity offsets in UTF-16, stripping, and Telegram's error texts."""

from __future__ import annotations

import pytest

from bot.sandbox.errors import ApiError
from bot.sandbox.formatting import command_entities, format_text


def test_html_entities_use_utf16_offsets() -> None:
    text, entities = format_text(
        "😀 <b>网格</b> &lt;tag&gt; <a href='https://t.me/x?start=1'>go</a>", "HTML"
    )
    assert text == "😀 网格 <tag> go"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "text_link", "offset": 12, "length": 2, "url": "https://t.me/x?start=1"},
    ]


def test_html_nesting_pre_language_spoiler_and_errors() -> None:
    text, entities = format_text(
        '<pre><code class="language-python">x = 1</code></pre><tg-spoiler>s</tg-spoiler>', "html"
    )
    assert text == "x = 1s"
    assert entities == [
        {"type": "pre", "offset": 0, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 5, "length": 1},
    ]
    with pytest.raises(ApiError) as caught:
        format_text("<b><i>x</b></i>", "HTML")
    assert caught.value.description == (
        "Bad Request: can't parse entities: Unmatched end tag at byte offset 7, "
        'expected "</i>", found "</b>"'
    )
    with pytest.raises(ApiError, match="Unexpected end tag at byte offset 1"):
        format_text("x</b>", "HTML")


def test_strip_moves_entities() -> None:
    text, entities = format_text("\n  <b>hi</b> there  \n", "HTML")
    assert text == "hi there"
    assert entities == [{"type": "bold", "offset": 0, "length": 2}]


def test_markdown_v2() -> None:
    text, entities = format_text(
        r"*b* _i_ __u__ ~s~ ||sp|| `c` [l](https://e.org) 1\.5", "MarkdownV2"
    )
    assert text == "b i u s sp c l 1.5"
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    with pytest.raises(ApiError, match="Can't find end of Bold entity at byte offset 0"):
        format_text("*open", "MarkdownV2")


def test_legacy_markdown_and_explicit_entities() -> None:
    assert format_text("*b* and _i_", "Markdown") == (
        "b and i",
        [{"type": "bold", "offset": 0, "length": 1}, {"type": "italic", "offset": 6, "length": 1}],
    )
    explicit = '[{"type": "bold", "offset": 0, "length": 2}]'
    assert format_text("<b>", "HTML", explicit) == (
        "<b>",
        [{"type": "bold", "offset": 0, "length": 2}],
    )


def test_command_entities() -> None:
    assert command_entities("/start demo-resident") == [
        {"type": "bot_command", "offset": 0, "length": 6}
    ]
    assert command_entities("/report@gridbot_sandbox_bot x")[0]["length"] == 27
    assert command_entities("hello /start") == []
