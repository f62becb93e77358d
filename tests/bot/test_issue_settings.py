"""Working hours and issue deadlines are settings with clear errors."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings
from services.issues import IssuePolicy


def test_defaults_give_a_ten_minute_response_in_office_hours() -> None:
    settings = load_settings(_env_file=None)
    assert settings.working_window == (8 * 60 + 30, 17 * 60 + 30)
    assert settings.weekdays == frozenset({1, 2, 3, 4, 5})
    policy = IssuePolicy.from_settings(settings)
    assert policy.response_minutes == 10
    assert policy.handling_hours == 72


def test_working_time_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_WORKING_HOURS", "09:00-24:00")
    monkeypatch.setenv("GRIDBOT_WORKING_DAYS", "1-3,6")
    monkeypatch.setenv("GRIDBOT_ISSUE_RESPONSE_MINUTES", "15")
    settings = load_settings(_env_file=None)
    assert settings.working_window == (540, 1440)
    assert settings.weekdays == frozenset({1, 2, 3, 6})
    assert IssuePolicy.from_settings(settings).response_minutes == 15


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GRIDBOT_WORKING_HOURS", "9-17", "GRIDBOT_WORKING_HOURS: must be HH:MM-HH:MM"),
        ("GRIDBOT_WORKING_HOURS", "18:00-08:00", "GRIDBOT_WORKING_HOURS: must be HH:MM-HH:MM"),
        ("GRIDBOT_WORKING_HOURS", "08:75-17:00", "GRIDBOT_WORKING_HOURS: must be HH:MM-HH:MM"),
        ("GRIDBOT_WORKING_DAYS", "mon-fri", "GRIDBOT_WORKING_DAYS: must be ISO weekdays"),
        ("GRIDBOT_WORKING_DAYS", "0-8", "GRIDBOT_WORKING_DAYS: weekdays go from 1"),
        ("GRIDBOT_ISSUE_RESPONSE_MINUTES", "0", "GRIDBOT_ISSUE_RESPONSE_MINUTES:"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert str(error.value).startswith(message)
