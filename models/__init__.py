"""SQLModel tables, one module per domain. Importing this package registers every table."""

from models import (
    conversations,
    households,
    invites,
    issues,
    meetings,
    members,
    org,
    outbox,
    visits,
)

__all__ = [
    "conversations",
    "households",
    "invites",
    "issues",
    "meetings",
    "members",
    "org",
    "outbox",
    "visits",
]
