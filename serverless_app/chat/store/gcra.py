"""The arithmetic of the generic cell rate algorithm both stores' limits use (no I/O).

A limit keeps one number, its theoretical arrival time ``tat`` (epoch milliseconds). ``cost``
units are allowed when ``tat`` is at most :attr:`Window.horizon`, and move it
:attr:`Window.advance` on; a ``tat`` beyond :attr:`Window.reachable` no caller of this rate and
burst could have written (a clock that jumped, a rate lowered since, a value written by hand), so
it is replaced rather than waited for. ``ConnectionsTable._take`` applies it with one conditional
write, ``MemoryConnections._take`` under a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from serverless_app.chat.store.base import millis

__all__ = ["CLOCK_SLACK_MS", "Window", "window"]

CLOCK_SLACK_MS = 1000
"""How far apart the clocks of two callers may be before a limit's state counts as impossible."""


@dataclass(frozen=True)
class Window:
    """What one request of ``cost`` units may find and do, at ``now_ms``."""

    now_ms: int
    advance: int
    """How far a grant moves ``tat`` (at least 1 ms)."""
    horizon: int
    """The latest ``tat`` that still grants."""
    reachable: int
    """The latest ``tat`` any caller could have written; beyond it the state is replaced."""


def window(cost: int, *, now: float, rate: float, burst: int) -> Window:
    """The window of a request of ``cost`` units at ``now`` (epoch seconds) under ``rate`` per
    second with bursts of ``burst``."""
    interval = 1000 / rate
    now_ms = millis(now)
    return Window(
        now_ms=now_ms,
        advance=max(1, round(cost * interval)),
        horizon=now_ms + max(0, round((burst - cost) * interval)),
        reachable=now_ms + round(burst * interval) + CLOCK_SLACK_MS,
    )
