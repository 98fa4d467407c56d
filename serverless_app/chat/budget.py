"""The stack's ``@connections`` posts budget, shared by every container of every function.

Every ``@connections`` request of the account draws on one quota (10,000 requests/s by default,
burst 5,000, shared by every API of the account and region; past it, 429 — API Gateway quotas,
https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html). A per-container pace
cannot keep many concurrent fan-outs under it: k shards each paced to r offer k × r. So the budget
is kept in DynamoDB (one item of ``websocket-connections``, a GCRA: one conditional write per
reservation) and each container leases it a chunk of posts at a time, so a small room's message
costs no extra write and a large fan-out one write per ``chunk`` posts.

Built by :func:`serverless_app.chat.container.posts_budget` over the store's ``reserve_posts``;
taken from by :class:`~serverless_app.chat.connections_api.ConnectionsApi` before every POST.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

__all__ = ["PostsBudget", "Reserve"]

log = logging.getLogger(__name__)

Reserve = Callable[[int], int]
"""Reserves that many posts from the shared budget: 0 when granted, else milliseconds to wait."""


class PostsBudget:
    """Posts leased from the shared budget ``chunk`` at a time; a lease not used within
    ``lease_s`` lapses (so a container cannot hoard posts and spend them in a burst later).

    If the budget's store cannot be reached, posting goes on unbudgeted for ``outage_s`` before
    the store is asked again (the account's 429s are still retried with backoff): an outage of the
    budget must not stop the chat, nor make every post wait for the store's own retries.
    """

    def __init__(
        self,
        reserve: Reserve,
        *,
        chunk: int,
        lease_s: float = 1.0,
        outage_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if chunk < 1:
            raise ValueError("a lease is at least one post")
        self._reserve = reserve
        self.chunk = chunk
        self._lease_s = lease_s
        self._outage_s = outage_s
        self._unbudgeted_until = float("-inf")
        self._clock = clock
        self._tokens = 0
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None
        self.reservations = 0
        """Reservations made (granted or not): what the budget cost in writes."""
        self.waited_s = 0.0
        """Time spent waiting for the budget."""

    async def take(self) -> None:
        """Wait until one post may be made."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while self._tokens <= 0 or self._clock() >= self._expires:
                if self._clock() < self._unbudgeted_until:
                    return
                self.reservations += 1
                try:
                    wait_ms = await asyncio.to_thread(self._reserve, self.chunk)
                except Exception:  # the budget's table unreachable: do not stop the chat for it
                    log.warning("posts budget unavailable; posting unbudgeted", exc_info=True)
                    self._unbudgeted_until = self._clock() + self._outage_s
                    return
                if wait_ms <= 0:
                    self._tokens = self.chunk
                    self._expires = self._clock() + self._lease_s
                else:
                    self.waited_s += wait_ms / 1000
                    await asyncio.sleep(wait_ms / 1000)
            self._tokens -= 1
