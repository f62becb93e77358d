"""The layers stay channel-neutral: handlers, services, models and jobs import no Telegram
library, neither directly nor through anything they import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEUTRAL = ("handlers", "services", "models", "jobs")
TELEGRAM_LIBRARIES = ("aiogram", "telegram")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_neutral_module_imports_a_telegram_library_directly() -> None:
    offenders = []
    for package in NEUTRAL:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                if name.split(".")[0] in TELEGRAM_LIBRARIES or name.startswith("bot.runtime"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_importing_every_neutral_module_loads_no_telegram_library() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in NEUTRAL
        for path in sorted((ROOT / package).rglob("*.py"))
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {TELEGRAM_LIBRARIES!r})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"


def test_the_check_would_catch_a_telegram_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from aiogram import Bot\nimport telegram.error\n", encoding="utf-8")
    assert imported_modules(sneaky) == {"aiogram", "telegram.error"}
