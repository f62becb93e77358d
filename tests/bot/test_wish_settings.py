"""The wish and points settings: defaults, and bad values named clearly."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


def test_wish_and_points_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.wish_claim_days, settings.wish_confirm_days) == (7, 3)
    assert settings.service_hours_target == 24


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GRIDBOT_WISH_CLAIM_DAYS", "0"),
        ("GRIDBOT_WISH_CONFIRM_DAYS", "soon"),
        ("GRIDBOT_SERVICE_HOURS_TARGET", "-24"),
    ],
)
def test_bad_wish_and_points_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    assert str(error.value).startswith(f"{variable}:")
