"""Detects whether the client of a pending request is still connected."""

from __future__ import annotations

import os
import socket

from aiohttp import web

_PEEK_FLAGS = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)


def client_gone(request: web.Request) -> bool:
    """True when the client closed its connection (e.g. the bot process was killed).

    The event loop may not have noticed the close yet, so the socket is peeked directly: an
    HTTP/1.1 client waiting for an answer sends nothing, so EOF here means it is gone.
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        return True
    if not getattr(socket, "MSG_DONTWAIT", 0):
        return False
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        probe = socket.socket(fileno=os.dup(sock.fileno()))
    except OSError:
        return False
    try:
        return probe.recv(1, _PEEK_FLAGS) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        probe.close()
