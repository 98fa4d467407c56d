"""``websocket-rooms`` in memory, who may be in a room and which rooms there are: the reads,
mirroring :mod:`~serverless_app.chat.store.rooms.standing` — a room's meta and each user's role
and ban, a user's rooms and the public rooms, a page at a time.

Part of :class:`~serverless_app.chat.store.memory.rooms.MemoryRooms`;
:class:`~serverless_app.chat.store.memory.MemoryStore` forwards ``room_access``, ``standings``,
``user_grants`` and ``public_rooms`` here. The items are written by
:mod:`~serverless_app.chat.store.memory.rooms.grants`.
"""

from __future__ import annotations

from serverless_app.chat.models import Grant, RoomInfo, Standing
from serverless_app.chat.store.memory.base import MemoryTable, RoomPartition

__all__ = ["MemoryRoomStanding"]


class MemoryRoomStanding(MemoryTable):
    """Reads of rooms' meta, roles and bans; they never make an empty partition."""

    def _standing(self, room: str, user_id: str) -> Standing:
        state = self._tables.rooms.get(room) or RoomPartition()
        grant = state.roles.get(user_id)
        return Standing(role=grant.role if grant is not None else None, banned=user_id in state.bans)

    def _info(self, room: str) -> RoomInfo:
        state = self._tables.rooms.get(room)
        meta = state.meta if state is not None else None
        return meta if meta is not None else RoomInfo(room, exists=False)

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]:
        with self._lock:
            return self._info(room), {user: self._standing(room, user) for user in users}

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]:
        with self._lock:
            return {room: (self._info(room), self._standing(room, user_id)) for room in dict.fromkeys(rooms)}

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]:
        with self._lock:
            grants = sorted(
                (
                    s.roles[user_id]
                    for room, s in self._tables.rooms.items()
                    if user_id in s.roles and (not after or room > after)
                ),
                key=lambda g: g.room,
            )
        return grants[:limit], len(grants) > limit

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        with self._lock:
            rooms = sorted(
                room
                for room, s in self._tables.rooms.items()
                if s.meta is not None and s.meta.visibility == "public" and (not after or room > after)
            )
        return rooms[:limit], len(rooms) > limit
