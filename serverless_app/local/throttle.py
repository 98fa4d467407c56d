"""The token bucket: API Gateway's throttle (rate per second, burst = bucket size), and the pacing of
clients that must stay under one (``wschat bench``'s senders)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second refill a bucket of ``burst`` tokens; each request takes one.

    ``rate <= 0`` disables throttling. The clock is injectable for tests.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self.throttled = 0

    def try_acquire(self) -> bool:
        """Take one token if there is one; ``False`` means the request is throttled (429)."""
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.throttled += 1
        return False

    def reserve(self) -> float:
        """Take one token even if there is none yet: the seconds the caller must wait before it may
        act (0 when a token was there). For pacing a client; ``try_acquire`` refuses instead."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate) - 1.0
        self._updated = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
