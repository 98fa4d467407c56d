"""The one bounded wait every test uses: poll a condition until it holds, never a fixed sleep.

``eventually`` is for synchronous tests; ``eventually_async`` awaits the same poll from an asyncio
test (it polls in a worker thread, so the test's own tasks, such as client readers, keep running).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["eventually", "eventually_async"]

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    *,
    timeout_s: float = 5.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail after ``timeout_s``
    with ``what`` and the last value."""
    deadline = time.monotonic() + timeout_s
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout_s} s; last value {value!r}")
        time.sleep(interval_s)
        value = check()
    return value


async def eventually_async(
    check: Callable[[], T | None],
    *,
    timeout_s: float = 5.0,
    interval_s: float = 0.1,
    what: str = "condition",
) -> T:
    """:func:`eventually` awaited from a coroutine; ``check`` may block briefly (it runs in a thread)."""
    return await asyncio.to_thread(eventually, check, timeout_s=timeout_s, interval_s=interval_s, what=what)
