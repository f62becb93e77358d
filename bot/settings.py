"""Typed settings, read once at start-up from the environment and `.env`, then passed down."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Locale = Literal["zh_CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh_CN", "en")

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def parse_weekdays(value: str) -> frozenset[int]:
    """``1-5`` / ``1,3,5`` / ``1-3,6`` → ISO weekdays (1 = Monday)."""
    days: set[int] = set()
    for part in value.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError("must be ISO weekdays like 1-5 or 1,2,3,4,5,6 (1 = Monday)")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 7:
            raise ValueError("weekdays go from 1 (Monday) to 7 (Sunday)")
        days.update(range(first, last + 1))
    return frozenset(days)


class SettingsError(Exception):
    """A missing or malformed setting; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None
    bot_username: str | None = None
    """Only for printing invite links from the CLI without asking the Bot API (getMe)."""
    database_url: str = "sqlite:///gridbot.sqlite3"
    default_locale: Locale = "zh_CN"
    timezone: str = "Asia/Shanghai"

    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1:8080"
    webhook_secret: SecretStr | None = None

    send_rate_per_second: float = Field(default=30.0, gt=0, le=1000)
    outbox_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    conversation_timeout_minutes: int = Field(default=60, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    meeting_reminders: str = "1440,60"
    """Minutes before a meeting when reminders go out (comma-separated; empty for none)."""
    meeting_checkin_radius_meters: int = Field(default=300, ge=10, le=5000)
    meeting_checkin_early_minutes: int = Field(default=30, ge=0, le=720)
    meeting_checkin_late_minutes: int = Field(default=30, ge=0, le=720)
    meeting_plan_days: int = Field(default=14, ge=1, le=366)
    """Occurrences of a series are created this many days ahead (and always the next one)."""
    # Issue reports: working time, default deadlines (coordinators override them per category
    # and priority in the chat), and the windows of the closed loop.
    working_hours: str = "08:30-17:30"
    """Working time in the installation's zone, HH:MM-HH:MM (response deadlines count in it)."""
    working_days: str = "1-5"
    """ISO weekdays with working hours: ranges and lists, e.g. ``1-5`` or ``1-6`` or ``1,3,5``."""
    issue_response_minutes: int = Field(default=10, gt=0, le=10_080)
    """Working minutes to accept a new normal report (urgent ones count around the clock)."""
    issue_handling_hours: int = Field(default=72, gt=0, le=8_760)
    issue_urgent_handling_hours: int = Field(default=24, gt=0, le=8_760)
    issue_report_in_minutes: int = Field(default=30, gt=0, le=10_080)
    """A whistled department must report in within this (working minutes unless urgent)."""
    issue_reminder_percent: int = Field(default=80, ge=10, le=95)
    """Remind the handler when this share of a deadline's time has passed."""
    issue_rating_days: int = Field(default=7, gt=0, le=90)
    """Unrated resolutions close as "no answer" after this many days."""
    issue_duplicate_days: int = Field(default=14, gt=0, le=365)
    issue_duplicate_meters: int = Field(default=150, gt=0, le=10_000)
    issue_grid_radius_meters: int = Field(default=1500, gt=0, le=100_000)
    """A location farther than this from every grid's centre asks for the community instead."""
    issue_board_days: int = Field(default=30, gt=0, le=365)
    visit_nudge_time: str = "08:30"
    """Local time of the daily door-knocking nudge (HH:MM)."""
    visit_default_interval_days: int = Field(default=90, ge=1, le=3650)
    """Visit interval of households whose tags carry none."""
    visit_summary_weekday: int = Field(default=1, ge=1, le=7)
    """Day of the coordinators' weekly coverage summary (1 Monday … 7 Sunday), at the nudge time."""
    visit_service_minutes: int = Field(default=30, ge=1, le=480)
    """Service time logged for each visit that found someone at home (or learned they moved)."""
    wish_claim_days: int = Field(default=7, ge=1, le=90)
    """A claimed wish not marked fulfilled within this many days is released and published again."""
    wish_confirm_days: int = Field(default=3, ge=1, le=60)
    """After this many days without the wisher's confirmation a coordinator may confirm."""
    service_hours_target: int = Field(default=24, ge=1, le=2000)
    """Service hours each volunteer owes per year; the last quarter brings gentle nudges."""
    broadcast_quiet_hours: str = "21:00-08:00"
    """Local quiet hours (HH:MM-HH:MM, may wrap midnight; equal ends: none). Non-urgent
    broadcasts written during them wait until they end."""
    broadcast_renotify_minutes: int = Field(default=30, ge=1, le=1440)
    """Urgent broadcasts asking for acknowledgement remind the silent ones this often…"""
    broadcast_renotify_max: int = Field(default=3, ge=0, le=10)
    """…at most this many times."""
    broadcast_report_seconds: int = Field(default=5, ge=1, le=600)
    """The sender's live delivery report is edited at most this often."""
    task_reminder_minutes: int = Field(default=120, ge=0, le=10_080)
    """Minutes before a task's shift starts when its takers are reminded (0: no reminder)."""
    held_max_hours: int = Field(default=72, ge=1, le=24 * 30)
    """Messages queued while a person had blocked the bot are delivered when they come back if
    still relevant and younger than this; older ones are dropped (recorded as expired)."""
    task_no_show_grace_minutes: int = Field(default=60, ge=0, le=10_080)
    """After a shift ended this long, takers never checked in are marked no-shows (and lose
    the ``no_show`` points; the organiser can undo it)."""
    task_widen_minutes: int = Field(default=30, ge=5, le=1440)
    """Default delay before an emergency call with empty slots widens to the next audience."""
    stats_league_min_cases: int = Field(default=5, ge=1, le=1000)
    """A department is ranked in the league table once it handled at least this many issues."""
    stats_digest_weekday: int = Field(default=1, ge=1, le=7)
    """Day of the coordinators' weekly statistics digest (1 Monday … 7 Sunday)."""
    stats_digest_time: str = "09:00"
    """Local time of the weekly statistics digest (HH:MM)."""

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token (digits:letters)")
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("meeting_reminders")
    @classmethod
    def _reminder_minutes(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() and 1 <= int(p) <= 60 * 24 * 30 for p in parts):
            raise ValueError("must be minutes before the meeting, e.g. 1440,60 (1 to 43200 each)")
        return ",".join(str(m) for m in sorted({int(p) for p in parts}, reverse=True))

    @property
    def meeting_reminder_minutes(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.meeting_reminders.split(",") if p)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("working_hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        match = _HOURS.match(value.strip())
        if not match:
            raise ValueError("must be HH:MM-HH:MM, e.g. 08:30-17:30")
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        minutes_ok = int(match[2]) < 60 and int(match[4]) < 60
        if not (minutes_ok and int(match[1]) < 24 and start < end <= 24 * 60):
            raise ValueError("must be HH:MM-HH:MM with the start before the end")
        return value.strip()

    @field_validator("working_days")
    @classmethod
    def _working_days(cls, value: str) -> str:
        parse_weekdays(value)
        return value.strip()

    @field_validator("visit_nudge_time", "stats_digest_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError("must be a local time HH:MM, e.g. 08:30")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("broadcast_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        match = _HOURS.match(value.strip())
        if (
            not match
            or any(int(match[i]) > 23 for i in (1, 3))
            or any(int(match[i]) > 59 for i in (2, 4))
        ):
            raise ValueError("must be HH:MM-HH:MM, e.g. 21:00-08:00")
        return value.strip()

    @property
    def quiet_hours(self) -> tuple[time, time]:
        """Start and end of the broadcast quiet hours (local; the end may be the next day)."""
        match = _HOURS.match(self.broadcast_quiet_hours)
        assert match is not None
        return time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))

    @field_validator("webhook_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if not value.startswith(
            ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")
        ):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def working_window(self) -> tuple[int, int]:
        """Start and end of the working day in minutes after midnight (end ≤ 1440)."""
        match = _HOURS.match(self.working_hours)
        assert match is not None
        return int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_weekdays(self.working_days)

    @property
    def visit_nudge_at(self) -> time:
        hour, minute = self.visit_nudge_time.split(":")
        return time(int(hour), int(minute))

    @property
    def stats_digest_at(self) -> time:
        hour, minute = self.stats_digest_time.split(":")
        return time(int(hour), int(minute))

    @property
    def webhook_host(self) -> str:
        return self.webhook_listen.rpartition(":")[0]

    @property
    def webhook_port(self) -> int:
        return int(self.webhook_listen.rpartition(":")[2])

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.uses_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return None if path in ("", ":memory:") else Path(path)

    def require_token(self) -> str:
        if self.telegram_token is None:
            raise SettingsError("GRIDBOT_TELEGRAM_TOKEN: missing (the bot token from @BotFather)")
        return self.telegram_token.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors into one clear line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"GRIDBOT_{field.upper()}: {message}") from None
