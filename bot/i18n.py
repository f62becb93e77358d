"""Message catalogs (gettext .po files read with Babel) and a per-person translator.

Catalogs live in ``locales/<locale>/LC_MESSAGES/<domain>.po``; every domain of a locale is
merged into one lookup, so each feature keeps its own file. Message ids are stable keys such as
``join.welcome``; the texts use ``str.format`` placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from bot.settings import Locale

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LOCALE: Locale = "zh_CN"


def N_(key: str) -> str:
    """Mark a key for extraction where it is translated later (e.g. in a table of commands)."""
    return key


@cache
def catalog(locale: str) -> Mapping[str, str]:
    messages: dict[str, str] = {}
    for po_file in sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po_file.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id and isinstance(message.id, str) and message.string:
                    messages[message.id] = str(message.string)
    return messages


def normalize_locale(code: str | None, default: Locale = DEFAULT_LOCALE) -> Locale:
    """Map a client language code (``en-US``, ``zh-hans``) to one of ours."""
    if not code:
        return default
    code = code.lower()
    if code.startswith("en"):
        return "en"
    if code.startswith("zh"):
        return "zh_CN"
    return default


class Translator:
    """Translates keys for one locale, falling back to the default locale, then to the key."""

    def __init__(self, locale: str, fallback: str = DEFAULT_LOCALE) -> None:
        self.locale: Locale = normalize_locale(locale.replace("_", "-"), DEFAULT_LOCALE)
        self._messages = catalog(self.locale)
        self._fallback = catalog(fallback)

    def __call__(self, key: str, /, **params: Any) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format(**params) if params else text


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)
