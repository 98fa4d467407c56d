"""What the chat needs from storage: exactly the operations :class:`~serverless_app.chat.service.ChatService`
and the container call, whatever keeps the data.

Two implementations: :class:`~serverless_app.chat.store.dynamodb.DynamoDBStore` (the three tables)
and :class:`~serverless_app.chat.store.memory.MemoryStore` (plain dicts, for fast tests of the
rules). Both keep the same promises, checked by ``tests/chat/test_store_contract.py``:

* a write whose condition does not hold raises :class:`~serverless_app.chat.store.base.Conflict`;
  a transaction names the positions that failed in :class:`~serverless_app.chat.store.base.Cancelled`;
* reads leave out items whose ``ttl`` (epoch seconds) is not after ``now``, where they take ``now``;
* pages come with how to go on: a cursor, a ``more`` flag or a :data:`PageKey`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from serverless_app.chat.models import (
    ConnectionRecord,
    Grant,
    Member,
    Role,
    RoomInfo,
    Standing,
    StoredMessage,
)

__all__ = ["ChatStore", "PageKey", "RateDecision"]

PageKey = dict[str, Any]
"""Where a page of a room's members ends (JSON-serializable: a shard carries it to another function)."""

RateDecision = int
"""0 when the action may go ahead, else how many milliseconds to wait."""


class ChatStore(Protocol):
    """The chat's storage: connections and users, messages, rooms."""

    # --- connections and users ---------------------------------------------------------

    def put_connection(self, record: ConnectionRecord) -> None: ...

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None: ...

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        """Remove the record; return what was there (``None`` if it was already gone)."""
        ...

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        """Add ``room`` to the connection's rooms unless it has ``maximum`` others (or no record): Conflict."""
        ...

    def set_connection_rooms(self, connection_id: str, room: str, *, present: bool) -> None: ...

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool: ...

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        """Count the connection among the user's live ones; Conflict if ``maximum`` are live."""
        ...

    def remove_live_connection(self, user_id: str, connection_id: str) -> None: ...

    def live_connections(self, user_id: str) -> list[str]: ...

    def spend(
        self, user_id: str, bucket: str, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision: ...

    def reserve_posts(self, count: int, *, now: float, rate: float, burst: int, ttl: int) -> RateDecision: ...

    # --- messages ----------------------------------------------------------------------

    def put_message(self, message: StoredMessage) -> StoredMessage:
        """Store a message (at most once per user and ``client_msg_id``); return the stored one."""
        ...

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]: ...

    def user_history(
        self, user_id: str, *, limit: int, now: float, before: str | None = None
    ) -> tuple[list[StoredMessage], bool]: ...

    # --- rooms: who is in them ---------------------------------------------------------

    def remove_member(self, room: str, connection_id: str) -> Member | None: ...

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int: ...

    def members(self, room: str, *, now: float) -> list[Member]: ...

    def member_pages(
        self,
        room: str,
        *,
        now: float,
        page_size: int,
        start_key: PageKey | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[Member], PageKey | None]]: ...

    def adjust_online(self, room: str, delta: int) -> tuple[int, str]: ...

    def online(self, room: str) -> tuple[int, str]: ...

    def switch_mode(self, room: str, *, to: str) -> bool: ...

    def users_page(
        self, room: str, *, now: float, after: str | None, limit: int
    ) -> tuple[list[str], str | None]: ...

    def claim_room_typing(self, room: str, *, now: float, interval_s: float) -> bool: ...

    # --- rooms: who may be in them -----------------------------------------------------

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]: ...

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]: ...

    def has_traces(self, room: str) -> bool:
        """Whether anything was ever kept under this name (members, bookkeeping or messages)."""
        ...

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None: ...

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool: ...

    def grant(
        self,
        grant: Grant,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role | None, ...],
        unbanned: bool = False,
    ) -> None: ...

    def revoke(
        self,
        room: str,
        user_id: str,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role, ...],
        ban_by: str | None = None,
    ) -> None: ...

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None: ...

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]: ...

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]: ...
