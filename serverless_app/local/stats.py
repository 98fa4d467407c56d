"""Local-only observability: counts since start (or the last reset), served at ``GET /_local/stats``.

The gateway owns a :class:`GatewayStats`; the snapshot adds the Lambda runtime's and the DynamoDB
proxy's own ``stats()`` when they are attached.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["GatewayStats", "add_stats_routes"]


@dataclass
class GatewayStats:
    """Counters the gateway bumps on its hot paths (plain ints: no locks, one event loop)."""

    connections_total: int = 0
    connections_rejected: int = 0
    messages_in: int = 0
    messages_throttled: int = 0
    connects_throttled: int = 0
    disconnects: int = 0
    slow_consumers_disconnected: int = 0
    posts: Counter[str] = field(default_factory=Counter)
    """``@connections`` POST results by status: ``2xx``, ``403``, ``410``, ``413``, ``429``."""
    management: Counter[str] = field(default_factory=Counter)
    """Other ``@connections`` calls by ``METHOD status`` (GET/DELETE)."""
    since: float = field(default_factory=time.time)

    def reset(self) -> None:
        fresh = GatewayStats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def snapshot(self, *, open_connections: int) -> dict[str, Any]:
        return {
            "since": self.since,
            "connections": {
                "open": open_connections,
                "total": self.connections_total,
                "rejected": self.connections_rejected,
                "connects_throttled": self.connects_throttled,
                "disconnects": self.disconnects,
                "slow_consumers_disconnected": self.slow_consumers_disconnected,
            },
            "messages": {"in": self.messages_in, "throttled": self.messages_throttled},
            "connections_api": {
                "posts": {key: self.posts.get(key, 0) for key in ("2xx", "410", "413", "429")}
                | {
                    key: value for key, value in self.posts.items() if key not in ("2xx", "410", "413", "429")
                },
                "other": dict(self.management),
            },
        }


def add_stats_routes(
    app: web.Application,
    *,
    snapshot: Callable[[], dict[str, Any]],
    reset: Callable[[], None],
) -> None:
    """``GET /_local/stats`` (JSON snapshot) and ``POST /_local/stats/reset``."""

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(snapshot())

    async def post_reset(request: web.Request) -> web.Response:
        reset()
        return web.json_response({"reset": True})

    app.router.add_get("/_local/stats", get_stats)
    app.router.add_post("/_local/stats/reset", post_reset)
