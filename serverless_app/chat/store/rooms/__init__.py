"""``websocket-rooms``: who may be in a room (meta, roles, bans), who is (membership: fan-out is a
Query of one room) and per-room presence counts. The layout of its items is in
:mod:`~serverless_app.chat.store.keys`.

:class:`~serverless_app.chat.store.DynamoDBStore` holds one :class:`RoomsTable` and forwards each
rooms operation of the ``ChatStore`` protocol to one of its three parts:

* ``presence``: :class:`~serverless_app.chat.store.rooms.presence.RoomPresence` — memberships,
  per-user counts, online tallies and presence mode, the room's typing claim.
* ``standing``: :class:`~serverless_app.chat.store.rooms.standing.RoomStanding` — reads of a
  room's meta and users' roles and bans; a user's rooms and the public rooms.
* ``grants``: :class:`~serverless_app.chat.store.rooms.grants.RoomGrants` — the transactional
  writes: create a room, enter it, grant, revoke, unban.
"""

from __future__ import annotations

from typing import Any

from serverless_app.chat.store.base import TableClient
from serverless_app.chat.store.rooms.grants import RoomGrants
from serverless_app.chat.store.rooms.presence import RoomPresence
from serverless_app.chat.store.rooms.standing import RoomStanding

__all__ = ["RoomGrants", "RoomPresence", "RoomStanding", "RoomsTable"]


class RoomsTable(TableClient):
    """``websocket-rooms``, in three parts over the same client and table (see the module)."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self.presence = RoomPresence(client, table)
        self.standing = RoomStanding(client, table)
        self.grants = RoomGrants(client, table)
