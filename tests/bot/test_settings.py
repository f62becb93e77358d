"""A missing or malformed setting stops start-up with one clear line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GRIDBOT_TIMEZONE": "Mars/Olympus"},
            "GRIDBOT_TIMEZONE: unknown time zone 'Mars/Olympus'",
        ),
        ({"GRIDBOT_DEFAULT_LOCALE": "fr"}, "GRIDBOT_DEFAULT_LOCALE:"),
        ({"GRIDBOT_TELEGRAM_TOKEN": "not-a-token"}, "GRIDBOT_TELEGRAM_TOKEN: does not look like"),
        ({"GRIDBOT_TELEGRAM_API_URL": "localhost:8081"}, "GRIDBOT_TELEGRAM_API_URL: must be an"),
        ({"GRIDBOT_DATABASE_URL": "mysql://x"}, "GRIDBOT_DATABASE_URL: must start with"),
        ({"GRIDBOT_WEBHOOK_LISTEN": "8080"}, "GRIDBOT_WEBHOOK_LISTEN: must be HOST:PORT"),
        ({"GRIDBOT_WEBHOOK_SECRET": "has spaces"}, "GRIDBOT_WEBHOOK_SECRET: must be 1-256"),
        ({"GRIDBOT_SEND_RATE_PER_SECOND": "-3"}, "GRIDBOT_SEND_RATE_PER_SECOND:"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(_env_file=None)
    assert settings.default_locale == "zh_CN"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.database_url.startswith("sqlite:///")
    with pytest.raises(SettingsError, match="GRIDBOT_TELEGRAM_TOKEN: missing"):
        settings.require_token()


def test_the_cli_prints_one_line_not_a_traceback(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        env={"GRIDBOT_TIMEZONE": "Nowhere/Land", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: GRIDBOT_TIMEZONE: unknown time zone 'Nowhere/Land'"
    assert "Traceback" not in result.stderr


def test_run_without_a_token_says_so(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert result.returncode == 2
    assert "GRIDBOT_TELEGRAM_TOKEN: missing" in result.stderr
    assert "Traceback" not in result.stderr
