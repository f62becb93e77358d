"""SQLModel tables, one module per domain. Importing this package registers every table."""

from models import conversations, invites, issues, meetings, members, org, outbox

__all__ = ["conversations", "invites", "issues", "meetings", "members", "org", "outbox"]
