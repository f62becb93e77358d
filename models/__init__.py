"""SQLModel tables, one module per domain. Importing this package registers every table."""

from models import conversations, invites, members, org, outbox, points, wishes

__all__ = ["conversations", "invites", "members", "org", "outbox", "points", "wishes"]
