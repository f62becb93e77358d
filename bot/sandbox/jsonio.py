"""Compact UTF-8 JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")
