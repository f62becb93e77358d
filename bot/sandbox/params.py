"""Bot API request parameters from a query string, form, multipart or JSON body.

Telegram accepts all of them; nested objects arrive as JSON strings in forms and multipart
(python-telegram-bot and aiogram both do this), files as multipart parts that are either named
after the parameter or referenced as "attach://<part name>".
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import CHAT_ID_EMPTY, CHAT_NOT_FOUND, ApiError, bad_request
from .files import Upload

_TRUE = {"true", "1", "yes", "on"}


class Params:
    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload]) -> None:
        self.values = values
        self.uploads = uploads

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f'invalid value of parameter "{name}"') from None

    def get_float(self, name: str, default: float | None = None) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'invalid value of parameter "{name}"') from None

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        return isinstance(value, str) and value.strip().lower() in _TRUE

    def get_json(self, name: str) -> Any:
        """Nested objects: JSON strings (forms) or already-decoded values (JSON bodies)."""
        value = self.values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value

    def str_list(self, name: str) -> list[str] | None:
        value = self.get_json(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"can't parse {name} JSON object")
        return value

    def chat_id(self) -> int:
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise ApiError(400, CHAT_ID_EMPTY)
        try:
            return int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ApiError(400, CHAT_NOT_FOUND) from None  # e.g. "@channel": unknown here

    def file(self, name: str) -> Upload | str | None:
        """An uploaded part, an "attach://" reference to one, or a file_id / URL string."""
        upload = self.uploads.get(name)
        if upload is not None:
            return upload
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            attached = self.uploads.get(value[len("attach://") :])
            if attached is None:
                raise bad_request(f"file {value} not found in the request")
            return attached
        return value if isinstance(value, str) else None


async def read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if not request.can_read_body:
        return Params(values, uploads)
    content_type = request.content_type
    if content_type == "application/json":
        body = await request.read()
        if body.strip():
            try:
                decoded = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON body") from None
            if not isinstance(decoded, dict):
                raise bad_request("JSON body must be an object")
            values.update(decoded)
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        values.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif content_type.startswith("multipart/"):
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = bytes(await part.read(decode=True))
                mime = part.headers.get("Content-Type")
                uploads[part.name] = Upload(data, part.filename, mime)
            else:
                values[part.name] = await part.text()
    else:
        await request.read()  # ignore bodies of other types, as Telegram does
    return Params(values, uploads)
