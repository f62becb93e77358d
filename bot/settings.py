"""Typed settings, read once at start-up from the environment and `.env`, then passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Locale = Literal["zh_CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh_CN", "en")

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


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

    wish_claim_days: int = Field(default=7, ge=1, le=90)
    """A claimed wish not marked fulfilled within this many days is released and published again."""
    wish_confirm_days: int = Field(default=3, ge=1, le=60)
    """After this many days without the wisher's confirmation a coordinator may confirm."""
    service_hours_target: int = Field(default=24, ge=1, le=2000)
    """Service hours each volunteer owes per year; the last quarter brings gentle nudges."""

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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

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
