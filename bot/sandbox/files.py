"""In-memory file storage: file_id / file_unique_id / file_path, photos as sets of sizes."""

from __future__ import annotations

import itertools
import mimetypes
import secrets
from dataclasses import dataclass, field
from typing import Any

from .errors import FILE_TYPE_MISMATCH, IMAGE_PROCESS_FAILED, WRONG_FILE_ID, ApiError
from .images import image_size, sample_png

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_THUMB_SIDE = 90


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # "photo", "document" or "sticker"
    data: bytes
    mime_type: str
    file_path: str
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    photo: list[StoredFile] = field(default_factory=list, repr=False)

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": len(self.data),
        }

    def api_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class Upload:
    """A file part received in a multipart request."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def clear(self) -> None:
        self._by_id.clear()
        self._by_path.clear()

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def _add(
        self,
        kind: str,
        data: bytes,
        mime: str,
        name: str | None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        number = next(self._counter)
        ext = _EXTENSIONS.get(mime) or (name.rsplit(".", 1)[-1] if name and "." in name else "bin")
        stored = StoredFile(
            file_id=f"{kind[:2].upper()}AC{number:06d}{secrets.token_urlsafe(18)}",
            file_unique_id=f"AQAD{number:06d}{secrets.token_hex(3)}",
            kind=kind,
            data=data,
            mime_type=mime,
            file_path=f"{kind}s/file_{number}.{ext}",
            file_name=name,
            width=width,
            height=height,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def add_photo(self, data: bytes) -> list[StoredFile]:
        """Stores an image as a photo: a thumbnail-sized entry plus the original size.

        The thumbnail reuses the original bytes (no resampling) but reports scaled dimensions.
        """
        size = image_size(data)
        if size is None:
            raise ApiError(400, IMAGE_PROCESS_FAILED)
        width, height, mime = size
        sizes: list[StoredFile] = []
        if max(width, height) > _THUMB_SIDE:
            scale = _THUMB_SIDE / max(width, height)
            thumb_w, thumb_h = max(1, round(width * scale)), max(1, round(height * scale))
            sizes.append(self._add("photo", data, mime, None, width=thumb_w, height=thumb_h))
        sizes.append(self._add("photo", data, mime, None, width=width, height=height))
        for item in sizes:
            item.photo = sizes
        return sizes

    def add_sample_photo(self, seed: int) -> list[StoredFile]:
        """Three real sizes of a generated picture (used when no file is uploaded)."""
        sizes = [
            self._add("photo", sample_png(w, h, seed), "image/png", None, width=w, height=h)
            for w, h in ((90, 68), (320, 240), (640, 480))
        ]
        for item in sizes:
            item.photo = sizes
        return sizes

    def add_document(self, data: bytes, file_name: str, mime: str | None = None) -> StoredFile:
        guessed = mime or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        return self._add("document", data, guessed, file_name)

    def add_sticker(self, seed: int) -> StoredFile:
        return self._add(
            "sticker", sample_png(128, 128, seed), "image/png", None, width=512, height=512
        )

    def resolve(self, value: Upload | str | None, kind: str) -> StoredFile | list[StoredFile]:
        """A file parameter (upload or file_id) → stored file (photo → list of sizes)."""
        if isinstance(value, Upload):
            if kind == "photo":
                return self.add_photo(value.data)
            name = value.filename or "file"
            mime = value.content_type if value.content_type not in (None, "") else None
            if mime == "application/octet-stream":
                mime = None
            return self.add_document(value.data, name, mime)
        if not value:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if value.startswith(("http://", "https://")):
            # No network access in the sandbox: stand in a generated picture / placeholder.
            if kind == "photo":
                return self.add_sample_photo(seed=len(value))
            name = value.rstrip("/").rsplit("/", 1)[-1] or "file"
            return self.add_document(f"Placeholder for {value}\n".encode(), name)
        stored = self._by_id.get(value)
        if stored is None:
            raise ApiError(400, WRONG_FILE_ID)
        if stored.kind != kind:
            raise ApiError(400, FILE_TYPE_MISMATCH)
        return stored.photo if kind == "photo" else stored
