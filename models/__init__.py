"""SQLModel tables, one module per domain. Importing this package registers every table."""

from models import (
    broadcasts,
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
    tasks,
    teams,
    visits,
    wishes,
)

__all__ = [
    "broadcasts",
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
    "tasks",
    "teams",
    "visits",
    "wishes",
]
