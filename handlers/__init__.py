"""The channel-neutral conversation layer. ROUTERS is the one place handlers are wired up,
in the order they are matched (the menu first: /start, /help, /cancel)."""

from handlers import (
    broadcasts,
    households,
    invites,
    issues,
    meetings,
    menu,
    points,
    profile,
    stats,
    store,
    tasks,
    teams,
    visits,
    wishes,
)
from handlers.router import Registry, Router

ROUTERS: tuple[Router, ...] = (
    menu.router,
    profile.router,
    invites.router,
    issues.router,
    meetings.router,
    households.router,
    visits.router,
    wishes.router,
    points.router,
    store.router,
    broadcasts.router,
    tasks.router,
    teams.router,
    stats.router,
)


def build_registry() -> Registry:
    return Registry(ROUTERS)
