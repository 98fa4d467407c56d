"""``websocket-rooms`` in memory, who is in a room, mirroring
:mod:`~serverless_app.chat.store.rooms.presence`: memberships (``member#``), each user's connection
count there (``user#``) and the room's presence tallies (the stats item: online users, presence
mode, typing).

Part of :class:`~serverless_app.chat.store.memory.rooms.MemoryRooms`;
:class:`~serverless_app.chat.store.memory.MemoryStore` forwards ``remove_member``, ``count_user``,
``members``, ``member_pages``, ``adjust_online``, ``online``, ``switch_mode``, ``users_page`` and
``claim_room_typing`` here. A membership is written by
:meth:`~serverless_app.chat.store.memory.rooms.grants.MemoryRoomGrants.enter`.
"""

from __future__ import annotations

from collections.abc import Iterator

from serverless_app.chat.models import Member
from serverless_app.chat.store.base import millis
from serverless_app.chat.store.keys import member_sk
from serverless_app.chat.store.memory.base import MemoryTable, RoomStats
from serverless_app.chat.store.protocol import PageKey

__all__ = ["MemoryRoomPresence"]


class MemoryRoomPresence(MemoryTable):
    """Memberships, per-user counts and presence tallies of each room's partition."""

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        with self._lock:
            found = self._room(room).members.pop(connection_id, None)
        return found[0] if found is not None else None

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int:
        with self._lock:
            counts = self._room(room).counts
            count = counts.get(user_id, (0, ttl))[0] + delta
            if count <= 0:
                counts.pop(user_id, None)
            else:
                counts[user_id] = (count, ttl)
            return count

    def _sorted_members(self, room: str) -> list[tuple[str, Member, int]]:
        """``(sk, member, ttl)`` in key order, expired ones too."""
        members = self._room(room).members.values()
        return sorted((member_sk(m.connection_id), m, ttl) for m, ttl in members)

    def members(self, room: str, *, now: float) -> list[Member]:
        with self._lock:
            return [m for _, m, ttl in self._sorted_members(room) if ttl > int(now)]

    def member_pages(
        self,
        room: str,
        *,
        now: float,
        page_size: int,
        start_key: PageKey | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[Member], PageKey | None]]:
        """Pages as a DynamoDB Query reads them: ``page_size`` items read (expired ones count, then
        are left out), a key after each full page, the same key shape (``{"room": {"S": …}, "sk": …}``)."""
        after = start_key["sk"]["S"] if start_key is not None else None
        left = limit
        while left is None or left > 0:
            read = page_size if left is None else min(page_size, left)
            with self._lock:
                items = [i for i in self._sorted_members(room) if after is None or i[0] > after][:read]
            members = [m for _, m, ttl in items if ttl > int(now)]
            next_key = {"room": {"S": room}, "sk": {"S": items[-1][0]}} if len(items) == read else None
            if left is not None:
                left -= len(items)
            yield members, next_key
            if next_key is None:
                return
            after = next_key["sk"]["S"]

    def adjust_online(self, room: str, delta: int) -> tuple[int, str]:
        with self._lock:
            stats = self._room(room).stats = self._room(room).stats or RoomStats()
            stats.online += delta
            return max(0, stats.online), stats.mode or "live"

    def online(self, room: str) -> tuple[int, str]:
        with self._lock:
            stats = self._room(room).stats or RoomStats()
            return max(0, stats.online), stats.mode or "live"

    def switch_mode(self, room: str, *, to: str) -> bool:
        with self._lock:
            stats = self._room(room).stats
            if stats is not None and stats.mode == to:  # a mode never set differs from "live" too
                return False
            stats = self._room(room).stats = stats or RoomStats()
            stats.mode = to
            return True

    def users_page(
        self, room: str, *, now: float, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        with self._lock:
            counts = self._room(room).counts
            users = sorted(u for u, (n, ttl) in counts.items() if n > 0 and ttl > int(now))
        if after is not None:
            users = [u for u in users if u > after]
        page = users[:limit]
        return page, (page[-1] if len(users) > limit else None)

    def claim_room_typing(self, room: str, *, now: float, interval_s: float) -> bool:
        with self._lock:
            stats = self._room(room).stats = self._room(room).stats or RoomStats()
            if stats.typing_at_ms is not None and stats.typing_at_ms > millis(now - interval_s):
                return False
            stats.typing_at_ms = millis(now)
            return True
