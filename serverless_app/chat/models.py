"""The chat's records, independent of how they are stored."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConnectionRecord", "Identity", "Member", "StoredMessage", "TokenBucket"]


@dataclass(frozen=True)
class Identity:
    """Who is on a connection. ``verified`` when it comes from a token the authorizer checked."""

    user_id: str
    verified: bool


@dataclass(frozen=True)
class TokenBucket:
    """Rate-limit state: ``tokens`` left as of ``at`` (epoch seconds)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class ConnectionRecord:
    connection_id: str
    user_id: str
    verified: bool
    connected_at_ms: int
    ttl: int
    rooms: frozenset[str] = field(default_factory=frozenset)
    bucket: TokenBucket | None = None


@dataclass(frozen=True)
class Member:
    """One connection's membership of one room."""

    room: str
    connection_id: str
    user_id: str


@dataclass(frozen=True)
class StoredMessage:
    room: str
    user_id: str
    message: str
    timestamp: str
    message_id: str
    ttl: int
    client_msg_id: str | None = None

    @property
    def cursor(self) -> str:
        """The message's position in its room's history; also its sort key."""
        return f"{self.timestamp}#{self.message_id}"
