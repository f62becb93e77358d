"""A local stand-in for the Telegram Bot API with a web chat page (see README.md here)."""

from .model import DemoUser
from .server import SandboxServer, serve_forever
from .state import SandboxState

__all__ = ["DemoUser", "SandboxServer", "SandboxState", "serve_forever"]
