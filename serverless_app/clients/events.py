"""The typed events a :class:`~serverless_app.clients.session.ChatSession` emits, and its :class:`Reply`.

``ChatSession.receive`` turns each server frame into a :class:`Reply`: the :data:`Event` values a
user interface shows (one frozen dataclass per kind of news: a message shown, a room joined, an
error…) and the frames to send back. :attr:`Reply.reconnect` asks the transport to replace the
connection (:data:`RECONNECT_FRESH_TOKEN` or :data:`RECONNECT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serverless_app.clients.messages import ChatMessage

__all__ = [
    "RECONNECT",
    "RECONNECT_FRESH_TOKEN",
    "Acked",
    "Connected",
    "Event",
    "HistoryShown",
    "Invited",
    "Joined",
    "Left",
    "MessageShown",
    "PresenceChanged",
    "PresenceListed",
    "PresenceModeChanged",
    "Recovered",
    "Reply",
    "RoomInfo",
    "RoomUpdated",
    "RoomsListed",
    "ServerError",
    "Typing",
    "Unrecognised",
]

RECONNECT_FRESH_TOKEN = "fresh_token"
""":attr:`Reply.reconnect` when the token expired: get a new one, then reconnect."""
RECONNECT = "reconnect"
""":attr:`Reply.reconnect` when the server forgot the connection: reconnect with the same credentials."""


@dataclass(frozen=True)
class Connected:
    """A connection is open (``welcome``): who the server says the user is, and the rooms it joined."""

    connection_id: str
    user_id: str
    rooms: tuple[str, ...]


@dataclass(frozen=True)
class MessageShown:
    """A message seen for the first time (live, recovered, or confirming one of ours)."""

    message: ChatMessage
    own: bool
    recovered: bool = False


@dataclass(frozen=True)
class Acked:
    """One of our pending messages is stored (``duplicate``: a retry matched an earlier send)."""

    client_msg_id: str
    room: str
    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class HistoryShown:
    """An explicitly requested history page (or the first page of a newly joined room)."""

    room: str
    messages: tuple[ChatMessage, ...]
    more: bool


@dataclass(frozen=True)
class Recovered:
    """Recovery of a room finished: ``count`` missed messages were shown."""

    room: str
    count: int


@dataclass(frozen=True)
class Joined:
    """This connection joined ``room``: ``users`` is the first page of who is online, ``count``
    how many are in all (None from a server that does not say), ``more`` whether a next page
    exists (``/who more``), ``mode`` ``live`` or ``on_demand``."""

    room: str
    users: tuple[str, ...]
    visibility: str | None = None
    role: str | None = None
    peer: str | None = None
    count: int | None = None
    mode: str | None = None
    more: bool = False


@dataclass(frozen=True)
class Left:
    """This connection left ``room``: ``reason`` ``left`` (asked), ``kicked`` or ``banned`` (``by`` whom)."""

    room: str
    reason: str = "left"
    by: str | None = None


@dataclass(frozen=True)
class Invited:
    """``by`` invited the user to ``room`` (``visibility`` ``direct``: opened a direct conversation)."""

    room: str
    by: str
    visibility: str | None = None


@dataclass(frozen=True)
class RoomUpdated:
    """A moderation change in ``room``: ``by`` ``change``d (invited, kicked, banned, unbanned, role) ``user_id``."""

    room: str
    user_id: str
    change: str
    by: str
    role: str | None = None


@dataclass(frozen=True)
class RoomInfo:
    """One room of a ``rooms`` answer."""

    room: str
    visibility: str
    role: str | None = None
    peer: str | None = None


@dataclass(frozen=True)
class RoomsListed:
    """The answer to :meth:`ChatSession.list_rooms`, every page of it."""

    rooms: tuple[RoomInfo, ...]
    joined: frozenset[str] = frozenset()
    """The rooms this connection is in, when the listing ended."""
    active: str | None = None


@dataclass(frozen=True)
class PresenceChanged:
    """``user_id`` came online in ``room`` or left it (``event`` ``join`` or ``leave``)."""

    room: str
    user_id: str
    event: str


@dataclass(frozen=True)
class PresenceListed:
    """A page of who is online in ``room`` (``continued``: a next page, after ``/who more``).

    ``count`` is how many are online in all, ``more`` whether another page follows, ``mode``
    ``live`` or ``on_demand``; ``refresh`` marks the first page fetched by the session itself
    after a :class:`PresenceModeChanged` (to keep its list right, not asked by the user)."""

    room: str
    users: tuple[str, ...]
    count: int | None = None
    mode: str | None = None
    more: bool = False
    continued: bool = False
    refresh: bool = False


@dataclass(frozen=True)
class PresenceModeChanged:
    """``room`` crossed the presence threshold: ``on_demand`` (joins and leaves are no longer
    announced, ask ``/who``) or ``live`` again; ``count`` users are online."""

    room: str
    mode: str
    count: int


@dataclass(frozen=True)
class Typing:
    """``user_id`` is typing in ``room`` (the user's own typing is not an event)."""

    room: str
    user_id: str


@dataclass(frozen=True)
class ServerError:
    """An ``error`` frame: ``code`` and ``message``, and when to retry (``rate_limited``)."""

    code: str
    message: str
    retry_after_ms: int | None = None
    client_msg_id: str | None = None
    """The refused send, when the error names one."""


@dataclass(frozen=True)
class Unrecognised:
    """A frame that is not one the protocol describes (kept for a warning)."""

    frame: Any


Event = (
    Connected
    | MessageShown
    | Acked
    | HistoryShown
    | Recovered
    | Joined
    | Left
    | Invited
    | RoomUpdated
    | RoomsListed
    | PresenceChanged
    | PresenceListed
    | PresenceModeChanged
    | Typing
    | ServerError
    | Unrecognised
)


@dataclass
class Reply:
    """What a server frame produced: events to show and frames to send back."""

    events: list[Event] = field(default_factory=list)
    send: list[dict[str, Any]] = field(default_factory=list)
    reconnect: str | None = None
    """Set when the connection must be replaced: ``fresh_token`` (the token expired: get a new
    one first) or ``reconnect`` (the server forgot the connection)."""
