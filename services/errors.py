"""Refusals that reach the person as a translated message; nothing they touched is changed."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_


class ServiceError(Exception):
    """A refusal with a message key (translated by the handler layer) and its parameters."""

    default_key = N_("error.invalid")

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.default_key
        self.params = params
        super().__init__(self.key)


class InvalidInput(ServiceError):
    default_key = N_("error.invalid")


class NotFound(ServiceError):
    default_key = N_("error.not_found")


class PermissionDenied(ServiceError):
    """Logged where it is caught: a forged button or a typed id outside one's scope lands here."""

    default_key = N_("error.permission")


class Conflict(ServiceError):
    default_key = N_("error.conflict")
