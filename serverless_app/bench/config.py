"""What one ``wschat bench`` run does: how many clients in how many rooms, who sends, how fast.

:class:`BenchConfig` is all of it; its defaults are ``wschat bench``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from serverless_app.clients.endpoint import DEFAULT_URL

__all__ = ["BenchConfig"]


@dataclass(frozen=True)
class BenchConfig:
    """What to run; the defaults are ``wschat bench``'s."""

    url: str = DEFAULT_URL
    clients: int = 100
    rooms: int = 10
    senders: int = 10
    messages: int = 100
    rate: float | None = None
    """Messages per second in total; ``None``: closed loop (each sender waits for its echo)."""
    connect_rate: float = 450.0
    """New connections per second (API Gateway's default quota is 500/s per account and region)."""
    connect_concurrency: int = 100
    """Handshakes (up to ``welcome``) in flight at once."""
    connect_timeout_s: float = 15.0
    echo_timeout_s: float = 10.0
    drain_s: float = 10.0
    sender_rate: float = 4.5
    """Per-sender client-side cap, below the server's 5 messages/s per connection."""
    sender_burst: int = 18
    """Per-sender burst, below the server's 20."""
    user_prefix: str = "bench"
    users_per_room: int = 0
    """Distinct users per room (connections share them round-robin); 0: one user per connection."""
    room_prefix: str | None = None
    """Room names are ``<prefix>-<i>``; default ``bench-<run id>`` so runs never share rooms."""
    seed_rooms: bool = False
    """Connect one client per room (and wait for its ``welcome``) before the others: a room then
    fills without any member being announced to connections still inside ``$connect``."""
    payload_bytes: int = 0
    """Pad each message's text to at least this many characters (at most 4,000)."""
    progress: bool = True
