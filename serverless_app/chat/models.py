"""The chat's records, independent of how they are stored.

The service (:mod:`serverless_app.chat.service`) works with these; the store
(:mod:`serverless_app.chat.store`) turns them into items and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ConnectionRecord",
    "Grant",
    "Identity",
    "Member",
    "Role",
    "RoomInfo",
    "Standing",
    "StoredMessage",
    "Visibility",
]

Visibility = Literal["public", "private", "direct"]
Role = Literal["owner", "admin", "member", "invited"]


@dataclass(frozen=True)
class Identity:
    """Who is on a connection. ``verified`` when it comes from a token the authorizer checked."""

    user_id: str
    verified: bool
    expires_at: int | None = None
    """When the token expires (epoch seconds); the connection may not outlive it."""


@dataclass(frozen=True)
class ConnectionRecord:
    connection_id: str
    user_id: str
    verified: bool
    connected_at_ms: int
    ttl: int
    rooms: frozenset[str] = field(default_factory=frozenset)
    token_exp: int | None = None


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
    sent_at: str
    """When the server accepted the message (ISO-8601 UTC); frames carry it as ``timestamp``."""
    message_id: str
    ttl: int
    client_msg_id: str | None = None

    @property
    def cursor(self) -> str:
        """The message's position in its room's history; also its sort key (the table's ``timestamp``)."""
        return f"{self.sent_at}#{self.message_id}"


@dataclass(frozen=True)
class RoomInfo:
    """A room's visibility, owner and (direct rooms) peers. ``exists`` is false for a name no room has yet."""

    room: str
    visibility: Visibility = "public"
    owner: str | None = None
    peers: tuple[str, ...] = ()
    """The two users of a direct room, sorted."""
    exists: bool = True


@dataclass(frozen=True)
class Standing:
    """One user's standing in one room: their role (if any) and whether they are banned."""

    role: Role | None = None
    banned: bool = False

    @property
    def member(self) -> bool:
        return self.role in ("owner", "admin", "member")


@dataclass(frozen=True)
class Grant:
    """A user's role in a room, as listed by ``listRooms``."""

    room: str
    user_id: str
    role: Role
    visibility: Visibility
    peer: str | None = None
