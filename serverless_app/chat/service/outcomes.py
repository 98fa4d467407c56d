"""What the service's operations return: the frames to deliver, as values (no socket is touched).

Every module of :mod:`serverless_app.chat.service` builds these; :mod:`serverless_app.chat.delivery`
turns them into posts through the ``@connections`` API (a :class:`ToRoom` is resolved to the room's
members at delivery time, after any message was stored), and :mod:`serverless_app.chat.serialization` writes them to
JSON for the payload ``$connect`` hands to the welcome function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serverless_app.chat.models import ConnectionRecord
from serverless_app.chat.protocol import ServerFrame

__all__ = ["ConnectOutcome", "Delivery", "ToConnection", "ToRoom", "reply"]


@dataclass(frozen=True)
class ToConnection:
    connection_id: str
    frame: ServerFrame


@dataclass(frozen=True)
class ToRoom:
    """To every connection in the room at delivery time, except ``exclude``."""

    room: str
    frame: ServerFrame
    exclude: frozenset[str] = field(default_factory=frozenset)


Delivery = ToConnection | ToRoom


@dataclass(frozen=True)
class ConnectOutcome:
    welcome: ServerFrame
    announcements: list[Delivery]
    """Presence ``join`` events for the rooms this connection is the user's first in."""


def reply(record: ConnectionRecord, frame: ServerFrame) -> ToConnection:
    """The frame to the connection that asked (the sender's own answer)."""
    return ToConnection(record.connection_id, frame)
