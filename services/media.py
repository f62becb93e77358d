"""Checks on pictures people send the bot to pass on (a broadcast's photo), made before anything
is confirmed, so that a picture the messenger would refuse never reaches the send step.

Channel-neutral: sizes and types come from the neutral ``FileRef`` the runtime filled in; the
limits are Telegram's (a photo up to 10 MB), the strictest channel the bot runs on.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.i18n import N_
from models.outbox import OutboxKind, OutboxMessage, OutboxStatus
from services.errors import InvalidInput

PHOTO_MAX_BYTES = 10 * 1024 * 1024
"""Telegram takes photos up to 10 MB."""
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
PREVIEWS_LOOKED_AT = 5


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}"


def check_photo(size: int | None) -> None:
    """A photo sent as a photo: refused only when it is over the limit."""
    if size is not None and size > PHOTO_MAX_BYTES:
        raise InvalidInput(
            N_("media.photo_too_big"),
            size=_megabytes(size),
            limit=_megabytes(PHOTO_MAX_BYTES),
        )


def check_document(mime_type: str | None, size: int | None) -> None:
    """A file sent where a photo is wanted is always refused, with the reason that helps: not
    a picture; a picture too big for a photo; or a picture that only needs sending as a photo
    (a file's id cannot be sent on as a photo)."""
    if (mime_type or "").lower() not in IMAGE_TYPES:
        raise InvalidInput(N_("media.not_an_image"))
    check_photo(size)
    raise InvalidInput(N_("media.send_as_photo"))


async def preview_refused(session: AsyncSession, chat_id: int, file_id: str) -> str | None:
    """The messenger's reason when the preview of ``file_id`` sent to ``chat_id`` (the sender)
    was refused; None when it went out or is still on its way."""
    rows = await session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == chat_id)
        .where(col(OutboxMessage.kind) == OutboxKind.photo)
        .order_by(col(OutboxMessage.id).desc())
        .limit(PREVIEWS_LOOKED_AT)
    )
    for row in rows.scalars():
        if row.payload.get("file_id") == file_id:
            if row.status == OutboxStatus.failed:
                return (row.error or "?")[:120]
            return None
    return None


async def require_preview_delivered(session: AsyncSession, chat_id: int, file_id: str) -> None:
    reason = await preview_refused(session, chat_id, file_id)
    if reason is not None:
        raise InvalidInput(N_("media.preview_refused"), reason=reason)
