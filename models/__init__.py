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
    points,
    stats,
    visits,
    wishes,
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
    "points",
    "stats",
    "visits",
    "wishes",
]
