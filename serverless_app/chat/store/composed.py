"""The forwarding both stores share: each :class:`~serverless_app.chat.store.protocol.ChatStore`
operation is one table's, so a store is three table objects and this list of which one answers what.

:class:`~serverless_app.chat.store.dynamodb.DynamoDBStore` and
:class:`~serverless_app.chat.store.memory.MemoryStore` differ only in the table objects they build
(``connections``, ``messages``, ``rooms`` with its ``presence``, ``standing`` and ``grants`` parts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from serverless_app.chat.models import (
    ConnectionRecord,
    Grant,
    Member,
    Role,
    RoomInfo,
    Standing,
    StoredMessage,
)
from serverless_app.chat.store.protocol import PageKey, RateDecision

if TYPE_CHECKING:
    from serverless_app.chat.store.connections import ConnectionsTable
    from serverless_app.chat.store.memory.connections import MemoryConnections
    from serverless_app.chat.store.memory.messages import MemoryMessages
    from serverless_app.chat.store.memory.rooms import MemoryRooms
    from serverless_app.chat.store.messages import MessagesTable
    from serverless_app.chat.store.rooms import RoomsTable

__all__ = ["ComposedStore"]


class ComposedStore:
    """Every store operation, forwarded to the table object that keeps it (the rooms table's to one
    of its three parts), but for :meth:`has_traces`, which asks two."""

    connections: ConnectionsTable | MemoryConnections
    messages: MessagesTable | MemoryMessages
    rooms: RoomsTable | MemoryRooms

    # --- connections and users ---------------------------------------------------------

    def put_connection(self, record: ConnectionRecord) -> None:
        self.connections.put_connection(record)

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        return self.connections.get_connection(connection_id, now=now)

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        return self.connections.delete_connection(connection_id)

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        self.connections.reserve_room(connection_id, room, maximum=maximum)

    def release_room(self, connection_id: str, room: str) -> None:
        self.connections.release_room(connection_id, room)

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        return self.connections.claim_typing(connection_id, now=now, interval_s=interval_s)

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        self.connections.add_live_connection(user_id, connection_id, maximum=maximum, ttl=ttl)

    def remove_live_connection(self, user_id: str, connection_id: str) -> None:
        self.connections.remove_live_connection(user_id, connection_id)

    def live_connections(self, user_id: str) -> list[str]:
        return self.connections.live_connections(user_id)

    def spend(
        self, user_id: str, bucket: str, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision:
        return self.connections.spend(user_id, bucket, now=now, rate=rate, burst=burst, ttl=ttl)

    def reserve_posts(self, count: int, *, now: float, rate: float, burst: int, ttl: int) -> RateDecision:
        return self.connections.reserve_posts(count, now=now, rate=rate, burst=burst, ttl=ttl)

    # --- messages ----------------------------------------------------------------------

    def put_message(self, message: StoredMessage) -> StoredMessage:
        return self.messages.put_message(message)

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        return self.messages.room_history(room, limit=limit, now=now, before=before, after=after)

    def user_history(
        self, user_id: str, *, limit: int, now: float, before: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        return self.messages.user_history(user_id, limit=limit, now=now, before=before)

    # --- rooms: who is in them ---------------------------------------------------------

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        return self.rooms.presence.remove_member(room, connection_id)

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int:
        return self.rooms.presence.count_user(room, user_id, delta, ttl=ttl)

    def members(self, room: str, *, now: float) -> list[Member]:
        return self.rooms.presence.members(room, now=now)

    def member_pages(
        self,
        room: str,
        *,
        now: float,
        page_size: int,
        start_key: PageKey | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[Member], PageKey | None]]:
        return self.rooms.presence.member_pages(
            room, now=now, page_size=page_size, start_key=start_key, limit=limit
        )

    def adjust_online(self, room: str, delta: int) -> tuple[int, str]:
        return self.rooms.presence.adjust_online(room, delta)

    def online(self, room: str) -> tuple[int, str]:
        return self.rooms.presence.online(room)

    def switch_mode(self, room: str, *, to: str) -> bool:
        return self.rooms.presence.switch_mode(room, to=to)

    def users_page(
        self, room: str, *, now: float, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        return self.rooms.presence.users_page(room, now=now, after=after, limit=limit)

    def claim_room_typing(self, room: str, *, now: float, interval_s: float) -> bool:
        return self.rooms.presence.claim_room_typing(room, now=now, interval_s=interval_s)

    # --- rooms: who may be in them -----------------------------------------------------

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]:
        return self.rooms.standing.room_access(room, users)

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]:
        return self.rooms.standing.standings(user_id, rooms)

    def has_traces(self, room: str) -> bool:
        return self.rooms.has_items(room) or self.messages.has_items(room)

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None:
        self.rooms.grants.create_room(info, now_ms=now_ms)

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool:
        return self.rooms.grants.enter(member, ttl=ttl, standing=standing, needs_role=needs_role)

    def grant(
        self,
        grant: Grant,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role | None, ...],
        unbanned: bool = False,
    ) -> None:
        self.rooms.grants.grant(
            grant, actor=actor, actor_roles=actor_roles, target_roles=target_roles, unbanned=unbanned
        )

    def revoke(
        self,
        room: str,
        user_id: str,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role, ...],
        ban_by: str | None = None,
    ) -> None:
        self.rooms.grants.revoke(
            room, user_id, actor=actor, actor_roles=actor_roles, target_roles=target_roles, ban_by=ban_by
        )

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None:
        self.rooms.grants.unban(room, user_id, actor=actor, actor_roles=actor_roles)

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]:
        return self.rooms.standing.user_grants(user_id, after=after, limit=limit)

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        return self.rooms.standing.public_rooms(after=after, limit=limit)
