"""Every user-facing string goes through the catalogs, and both languages are complete."""

from __future__ import annotations

import string
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("zh_CN", "en")
KEYWORDS = {
    name: None
    for name in (
        "t",
        "N_",
        "InvalidInput",
        "NotFound",
        "PermissionDenied",
        "Conflict",
        "ServiceError",
    )
}


def catalog(locale: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in sorted((ROOT / "locales" / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle):
                if message.id:
                    assert message.id not in messages, f"{message.id} defined twice ({path.name})"
                    messages[str(message.id)] = str(message.string)
    return messages


def used_keys() -> set[str]:
    keys: set[str] = set()
    for package in ("bot", "handlers", "services", "jobs"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=(),
            strip_comment_tags=True,
        ):
            if isinstance(message, str) and "." in message and " " not in message:
                keys.add(message)
    return keys


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_no_message_exists_in_one_catalog_only() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    assert sorted(set(zh) - set(en)) == []
    assert sorted(set(en) - set(zh)) == []


def test_every_message_is_translated() -> None:
    for locale in LOCALES:
        untranslated = [key for key, text in catalog(locale).items() if not text.strip()]
        assert untranslated == [], locale


def test_translations_use_the_same_placeholders() -> None:
    zh, en = catalog("zh_CN"), catalog("en")
    mismatched = [k for k in zh if placeholders(zh[k]) != placeholders(en.get(k, ""))]
    assert mismatched == []


def test_every_key_used_in_code_is_in_the_catalogs() -> None:
    missing = sorted(used_keys() - set(catalog("en")))
    assert missing == []


def test_no_catalog_entry_is_unused() -> None:
    unused = sorted(set(catalog("en")) - used_keys())
    assert unused == []
