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

    def put_connection(self, record: ConnectionRecord) -> None:
        """Record a new connection (its user, rooms, ttl), replacing any record of that id."""
        ...

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        """The connection's record, or ``None`` if there is none or its ``ttl`` has passed."""
        ...

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        """Remove the record; return what was there (``None`` if it was already gone)."""
        ...

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        """Add ``room`` to the connection's rooms unless it has ``maximum`` others (or no record): Conflict."""
        ...

    def release_room(self, connection_id: str, room: str) -> None:
        """Give back the room place :meth:`reserve_room` took (the connection left the room); nothing
        if the record is gone."""
        ...

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        """True if this connection may relay a typing event now (at most one per ``interval_s``)."""
        ...

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        """Count the connection among the user's live ones; Conflict if ``maximum`` are live."""
        ...

    def remove_live_connection(self, user_id: str, connection_id: str) -> None:
        """Stop counting the connection among the user's live ones (idempotent)."""
        ...

    def live_connections(self, user_id: str) -> list[str]:
        """The ids of the user's live connections, as recorded (a dead one may linger until checked)."""
        ...

    def spend(
        self, user_id: str, bucket: str, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision:
        """One action against the user's ``bucket`` limit (``rate`` per second, bursts of ``burst``; a GCRA,
        :mod:`~serverless_app.chat.store.gcra`)."""
        ...

    def reserve_posts(self, count: int, *, now: float, rate: float, burst: int, ttl: int) -> RateDecision:
        """``count`` ``@connections`` posts against the budget the whole stack shares
        (:mod:`~serverless_app.chat.budget`)."""
        ...

    # --- messages ----------------------------------------------------------------------

    def put_message(self, message: StoredMessage) -> StoredMessage:
        """Store a message (at most once per user and ``client_msg_id``); return the stored one."""
        ...

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """A room's messages in chronological order and whether more exist that way: the newest ``limit``
        before ``before``, or with ``after`` the oldest ``limit`` after it (cursors)."""
        ...

    def user_history(
        self, user_id: str, *, limit: int, now: float, before: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """A user's messages across rooms, newest first, and whether more exist."""
        ...

    # --- rooms: who is in them ---------------------------------------------------------

    def remove_member(self, room: str, connection_id: str) -> Member | None:
        """Delete the connection's membership of the room; return it, or ``None`` if there was none."""
        ...

    def count_user(self, room: str, user_id: str, delta: int, *, ttl: int) -> int:
        """Add ``delta`` to the user's connection count in the room; return the new count (1: arrived, 0:
        left)."""
        ...

    def members(self, room: str, *, now: float) -> list[Member]:
        """Every live connection in the room (one Query of the room, never a Scan); tests and small rooms."""
        ...

    def member_pages(
        self,
        room: str,
        *,
        now: float,
        page_size: int,
        start_key: PageKey | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[Member], PageKey | None]]:
        """The room's live members a page at a time, each with the key to go on from (``None``: the end);
        ``(start_key, limit)`` is a key range, a shard's."""
        ...

    def adjust_online(self, room: str, delta: int) -> tuple[int, str]:
        """Add ``delta`` to the room's count of distinct online users; return it and the presence mode."""
        ...

    def online(self, room: str) -> tuple[int, str]:
        """The room's count of online users and its presence mode (``live`` or ``on_demand``)."""
        ...

    def switch_mode(self, room: str, *, to: str) -> bool:
        """Switch the room's presence mode; ``False`` if it already was (another invocation switched it)."""
        ...

    def users_page(
        self, room: str, *, now: float, after: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Up to ``limit`` distinct online users after ``after``, sorted, and the cursor to go on from."""
        ...

    def claim_room_typing(self, room: str, *, now: float, interval_s: float) -> bool:
        """True if a typing event may be relayed in this room now (a large room relays one per interval)."""
        ...

    # --- rooms: who may be in them -----------------------------------------------------

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]:
        """The room's meta and each user's standing in it (role, ban), read consistently at once."""
        ...

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]:
        """The meta of each of ``rooms`` and the user's standing there."""
        ...

    def has_traces(self, room: str) -> bool:
        """Whether anything was ever kept under this name (members, bookkeeping or messages)."""
        ...

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None:
        """Create the room with its owner (or a direct room's two users); Conflict if the name is taken."""
        ...

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool:
        """Record the membership if the user is still allowed in; ``False`` if already in; Cancelled (0 banned,
        1 no role or no room) if not."""
        ...

    def grant(
        self,
        grant: Grant,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role | None, ...],
        unbanned: bool = False,
    ) -> None:
        """Give the user a role if the actor still holds one of ``actor_roles`` and the target one of
        ``target_roles``; Cancelled (0 actor, 1 target, 2 ban) if not."""
        ...

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
        """Remove the user's role (and with ``ban_by`` ban them) if the actor still holds one of
        ``actor_roles``; Cancelled (0 actor, 1 target) if not."""
        ...

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None:
        """Lift a ban if the actor still holds one of ``actor_roles``; Cancelled if not."""
        ...

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]:
        """The rooms the user holds a role in, by name after ``after``, and whether more exist (eventually
        consistent)."""
        ...

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Public rooms by name after ``after``, and whether more exist."""
        ...
