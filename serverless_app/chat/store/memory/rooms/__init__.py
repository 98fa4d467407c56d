"""``websocket-rooms`` in memory, mirroring :mod:`~serverless_app.chat.store.rooms`: one
:class:`~serverless_app.chat.store.memory.base.RoomPartition` per room, read and written by the
same three parts as the DynamoDB table's, to which
:class:`~serverless_app.chat.store.memory.MemoryStore` forwards the same operations:

* ``presence``: :class:`~serverless_app.chat.store.memory.rooms.presence.MemoryRoomPresence`
  (as :class:`~serverless_app.chat.store.rooms.presence.RoomPresence`) — memberships, per-user
  counts, online tallies and presence mode, the room's typing claim.
* ``standing``: :class:`~serverless_app.chat.store.memory.rooms.standing.MemoryRoomStanding`
  (as :class:`~serverless_app.chat.store.rooms.standing.RoomStanding`) — reads of a room's meta
  and users' roles and bans; a user's rooms and the public rooms.
* ``grants``: :class:`~serverless_app.chat.store.memory.rooms.grants.MemoryRoomGrants`
  (as :class:`~serverless_app.chat.store.rooms.grants.RoomGrants`) — the writes that are
  transactions in DynamoDB: create a room, enter it, grant, revoke, unban.
"""

from __future__ import annotations

from serverless_app.chat.store.memory.base import MemoryTable, Tables
from serverless_app.chat.store.memory.rooms.grants import MemoryRoomGrants
from serverless_app.chat.store.memory.rooms.presence import MemoryRoomPresence
from serverless_app.chat.store.memory.rooms.standing import MemoryRoomStanding

__all__ = ["MemoryRoomGrants", "MemoryRoomPresence", "MemoryRoomStanding", "MemoryRooms"]


class MemoryRooms(MemoryTable):
    """``websocket-rooms``, in three parts over the same :class:`Tables` (see the module)."""

    def __init__(self, tables: Tables) -> None:
        super().__init__(tables)
        self.presence = MemoryRoomPresence(tables)
        self.standing = MemoryRoomStanding(tables)
        self.grants = MemoryRoomGrants(tables)

    def has_items(self, room: str) -> bool:
        """Whether the room's partition holds anything (even expired), as ``TableClient.has_items``."""
        with self._lock:
            state = self._tables.rooms.get(room)
            return state is not None and not state.empty()
