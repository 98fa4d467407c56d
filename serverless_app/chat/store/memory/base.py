"""What every in-memory table shares, as :mod:`~serverless_app.chat.store.base` is what every
DynamoDB table shares: here, the dicts that stand for the three tables' items and the one lock
around them (:class:`Tables`), and a table's view of them (:class:`MemoryTable`, the counterpart of
:class:`~serverless_app.chat.store.base.TableClient`).

The items, by the table that holds them in DynamoDB (layouts in :mod:`~serverless_app.chat.store.keys`):

* ``websocket-connections``: :class:`ConnectionItem` by connection id; :class:`UserItem` by
  ``user_item(user_id)``, and one more under ``BUDGET_ITEM`` (the ``@connections`` posts budget).
* ``websocket-messages``: :class:`~serverless_app.chat.models.StoredMessage` by room, then cursor.
* ``websocket-rooms``: one :class:`RoomPartition` per room (meta, ``member#``, ``user#``,
  ``role#``, ``ban#``, ``idem#`` and the stats item).

One lock makes every operation atomic, as DynamoDB's conditional writes and transactions are.
Expired items stay until overwritten or deleted, as DynamoDB deletes them lazily; reads that take
``now`` leave them out.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from serverless_app.chat.models import ConnectionRecord, Grant, Member, RoomInfo, StoredMessage

__all__ = ["ConnectionItem", "MemoryTable", "RoomPartition", "RoomStats", "Tables", "UserItem"]


@dataclass
class ConnectionItem:
    """A connection's item: its record and when it last claimed a typing notice (ms)."""

    record: ConnectionRecord
    typing_at_ms: int | None = None


@dataclass
class UserItem:
    """A user's item (or the posts budget's): live connection ids and rate-limit states (``tat``, ms)."""

    live: set[str] = field(default_factory=set)
    tat: dict[str, int] = field(default_factory=dict)


@dataclass
class RoomStats:
    """A room's :data:`~serverless_app.chat.store.keys.STATS` item."""

    online: int = 0
    mode: str | None = None
    typing_at_ms: int | None = None


@dataclass
class RoomPartition:
    """A room's partition of ``websocket-rooms``."""

    meta: RoomInfo | None = None
    members: dict[str, tuple[Member, int]] = field(default_factory=dict)
    """By connection id: the membership and its ttl."""
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """By user: connections in the room and ttl."""
    roles: dict[str, Grant] = field(default_factory=dict)
    bans: set[str] = field(default_factory=set)
    idempotency: dict[tuple[str, str], str] = field(default_factory=dict)
    """``(user_id, client_msg_id)`` → the cursor of the message stored for it."""
    stats: RoomStats | None = None

    def empty(self) -> bool:
        return not (
            self.meta
            or self.members
            or self.counts
            or self.roles
            or self.bans
            or self.idempotency
            or self.stats
        )


class Tables:
    """The three tables' items, behind one lock (re-entrant: a part may call another's helper)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.connections: dict[str, ConnectionItem] = {}
        self.users: dict[str, UserItem] = {}
        """User items and the posts budget, by their ``connection_id`` key."""
        self.messages: dict[str, dict[str, StoredMessage]] = {}
        """By room, then cursor."""
        self.rooms: dict[str, RoomPartition] = {}


class MemoryTable:
    """One table (or part of one) over the shared :class:`Tables`."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._lock = tables.lock

    def _room(self, room: str) -> RoomPartition:
        """The room's partition of ``websocket-rooms``, made empty if there is none yet."""
        return self._tables.rooms.setdefault(room, RoomPartition())
