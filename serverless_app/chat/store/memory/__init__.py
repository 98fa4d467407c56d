"""The chat's storage in plain dicts: :class:`~serverless_app.chat.store.protocol.ChatStore` for fast
tests of the chat's rules, with DynamoDBStore's semantics (conditional failures, TTL filtering,
paging), checked against it by ``tests/chat/test_store_contract.py``.

One lock makes every operation atomic, as DynamoDB's conditional writes and transactions are.
Expired items stay until overwritten or deleted, as DynamoDB deletes them lazily; reads that take
``now`` leave them out. Never deployed as storage: it forgets everything when the process ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import (
    ConnectionRecord,
    Grant,
    Member,
    Role,
    RoomInfo,
    Standing,
    StoredMessage,
)
from serverless_app.chat.store.base import Cancelled, Conflict, millis
from serverless_app.chat.store.keys import BUDGET_ITEM, member_sk, user_item
from serverless_app.chat.store.protocol import PageKey, RateDecision

__all__ = ["MemoryStore"]

_CLOCK_SLACK_MS = 1000


@dataclass
class _Connection:
    record: ConnectionRecord
    typing_at_ms: int | None = None


@dataclass
class _User:
    """A user's item (or the posts budget's): live connection ids and rate-limit states (``tat``, ms)."""

    live: set[str] = field(default_factory=set)
    tat: dict[str, int] = field(default_factory=dict)


@dataclass
class _Stats:
    online: int = 0
    mode: str | None = None
    typing_at_ms: int | None = None


@dataclass
class _Room:
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
    stats: _Stats | None = None

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


class MemoryStore:
    """Connections, users, messages and rooms in dicts, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._connections: dict[str, _Connection] = {}
        self._users: dict[str, _User] = {}
        self._messages: dict[str, dict[str, StoredMessage]] = {}
        """By room, then cursor."""
        self._rooms: dict[str, _Room] = {}

    def _room(self, room: str) -> _Room:
        return self._rooms.setdefault(room, _Room())

    # --- connections and users ---------------------------------------------------------

    def put_connection(self, record: ConnectionRecord) -> None:
        with self._lock:
            self._connections[record.connection_id] = _Connection(record)

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        with self._lock:
            item = self._connections.get(connection_id)
        return item.record if item is not None and item.record.ttl > now else None

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        with self._lock:
            item = self._connections.pop(connection_id, None)
        return item.record if item is not None else None

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        with self._lock:
            item = self._connections.get(connection_id)
            if item is None:
                raise Conflict(f"no connection {connection_id!r}")
            rooms = item.record.rooms
            if room not in rooms and len(rooms) >= maximum:
                raise Conflict(f"{connection_id!r} is in {maximum} rooms")
            item.record = replace(item.record, rooms=rooms | {room})

    def set_connection_rooms(self, connection_id: str, room: str, *, present: bool) -> None:
        with self._lock:
            item = self._connections.get(connection_id)
            if item is not None:
                rooms = item.record.rooms | {room} if present else item.record.rooms - {room}
                item.record = replace(item.record, rooms=rooms)

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        with self._lock:
            item = self._connections.get(connection_id)
            if item is None:
                return False
            if item.typing_at_ms is not None and item.typing_at_ms > millis(now - interval_s):
                return False
            item.typing_at_ms = millis(now)
            return True

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        with self._lock:
            user = self._users.setdefault(user_item(user_id), _User())
            if connection_id not in user.live and len(user.live) >= maximum:
                raise Conflict(f"{user_id!r} has {maximum} live connections")
            user.live.add(connection_id)

    def remove_live_connection(self, user_id: str, connection_id: str) -> None:
        with self._lock:
            self._users.setdefault(user_item(user_id), _User()).live.discard(connection_id)

    def live_connections(self, user_id: str) -> list[str]:
        with self._lock:
            user = self._users.get(user_item(user_id))
            return sorted(user.live) if user is not None else []

    def spend(
        self, user_id: str, bucket: str, *, now: float, rate: float, burst: int, ttl: int
    ) -> RateDecision:
        return self._take(user_item(user_id), f"tat_{bucket}", 1, now=now, rate=rate, burst=burst)

    def reserve_posts(self, count: int, *, now: float, rate: float, burst: int, ttl: int) -> RateDecision:
        return self._take(BUDGET_ITEM, "tat_posts", count, now=now, rate=rate, burst=burst)

    def _take(
        self, item: str, attribute: str, cost: int, *, now: float, rate: float, burst: int
    ) -> RateDecision:
        """The generic cell rate algorithm, as ``ConnectionsTable._take`` (without the races)."""
        interval = 1000 / rate
        advance = max(1, round(cost * interval))
        now_ms = millis(now)
        horizon = now_ms + max(0, round((burst - cost) * interval))
        reachable = now_ms + round(burst * interval) + _CLOCK_SLACK_MS
        with self._lock:
            state = self._users.setdefault(item, _User()).tat
            tat = state.get(attribute)
            if tat is not None and now_ms < tat <= horizon:
                state[attribute] = tat + advance
                return 0
            if tat is not None and horizon < tat <= reachable:
                return tat - horizon
            state[attribute] = now_ms + advance  # none yet, in the past, or beyond any reach: replaced
            return 0

    # --- messages ----------------------------------------------------------------------

    def put_message(self, message: StoredMessage) -> StoredMessage:
        with self._lock:
            stored = self._messages.setdefault(message.room, {})
            if message.client_msg_id is None:
                if message.cursor in stored:
                    raise Conflict(f"a message is stored at {message.cursor!r}")
                stored[message.cursor] = message
                return message
            markers = self._room(message.room).idempotency
            key = (message.user_id, message.client_msg_id)
            if key in markers:
                original = stored.get(markers[key])
                if original is None:
                    raise StorageUnavailable(
                        "storage failed (TransactionCanceledException); nothing was saved"
                    )
                return original
            if message.cursor in stored:
                raise StorageUnavailable("storage failed (TransactionCanceledException); nothing was saved")
            markers[key] = message.cursor
            stored[message.cursor] = message
            return message

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        with self._lock:
            messages = sorted(self._messages.get(room, {}).values(), key=lambda m: m.cursor)
        if after is not None:
            chosen = [m for m in messages if m.cursor > after and m.ttl > int(now)]
            return chosen[:limit], len(chosen) > limit
        chosen = [m for m in reversed(messages) if (before is None or m.cursor < before) and m.ttl > int(now)]
        page = chosen[:limit]
        page.reverse()
        return page, len(chosen) > limit

    def user_history(
        self, user_id: str, *, limit: int, now: float, before: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        with self._lock:
            messages = [m for room in self._messages.values() for m in room.values() if m.user_id == user_id]
        chosen = sorted(
            (m for m in messages if (before is None or m.cursor < before) and m.ttl > int(now)),
            key=lambda m: m.cursor,
            reverse=True,
        )
        return chosen[:limit], len(chosen) > limit

    # --- rooms: who is in them ---------------------------------------------------------

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
            stats = self._room(room).stats = self._room(room).stats or _Stats()
            stats.online += delta
            return max(0, stats.online), stats.mode or "live"

    def online(self, room: str) -> tuple[int, str]:
        with self._lock:
            stats = self._room(room).stats or _Stats()
            return max(0, stats.online), stats.mode or "live"

    def switch_mode(self, room: str, *, to: str) -> bool:
        with self._lock:
            stats = self._room(room).stats
            if stats is not None and stats.mode == to:  # a mode never set differs from "live" too
                return False
            stats = self._room(room).stats = stats or _Stats()
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
            stats = self._room(room).stats = self._room(room).stats or _Stats()
            if stats.typing_at_ms is not None and stats.typing_at_ms > millis(now - interval_s):
                return False
            stats.typing_at_ms = millis(now)
            return True

    # --- rooms: who may be in them -----------------------------------------------------

    def _standing(self, room: str, user_id: str) -> Standing:
        state = self._rooms.get(room) or _Room()
        grant = state.roles.get(user_id)
        return Standing(role=grant.role if grant is not None else None, banned=user_id in state.bans)

    def _info(self, room: str) -> RoomInfo:
        state = self._rooms.get(room)
        meta = state.meta if state is not None else None
        return meta if meta is not None else RoomInfo(room, exists=False)

    def room_access(self, room: str, users: tuple[str, ...]) -> tuple[RoomInfo, dict[str, Standing]]:
        with self._lock:
            return self._info(room), {user: self._standing(room, user) for user in users}

    def standings(self, user_id: str, rooms: list[str]) -> dict[str, tuple[RoomInfo, Standing]]:
        with self._lock:
            return {room: (self._info(room), self._standing(room, user_id)) for room in dict.fromkeys(rooms)}

    def has_traces(self, room: str) -> bool:
        with self._lock:
            state = self._rooms.get(room)
            return (state is not None and not state.empty()) or bool(self._messages.get(room))

    def create_room(self, info: RoomInfo, *, now_ms: int) -> None:
        with self._lock:
            state = self._room(info.room)
            if state.meta is not None:
                raise Cancelled(f"room {info.room!r} exists", frozenset({0}))
            state.meta = RoomInfo(info.room, info.visibility, owner=info.owner, peers=tuple(info.peers))
            if info.owner is not None:
                state.roles[info.owner] = Grant(info.room, info.owner, "owner", info.visibility)
            if len(info.peers) == 2:
                first, second = info.peers
                state.roles[first] = Grant(info.room, first, "member", info.visibility, peer=second)
                state.roles[second] = Grant(info.room, second, "member", info.visibility, peer=first)

    def enter(self, member: Member, *, ttl: int, standing: Standing, needs_role: bool) -> bool:
        user = member.user_id
        with self._lock:
            state = self._room(member.room)
            failed = set()
            if user in state.bans:
                failed.add(0)
            grant = state.roles.get(user)
            promote = needs_role and standing.role == "invited"
            if promote:
                if grant is None or grant.role not in ("invited", "member"):
                    failed.add(1)
            elif needs_role:
                if grant is None:
                    failed.add(1)
            elif state.meta is None:
                failed.add(1)
            if member.connection_id in state.members:
                failed.add(2)
            if failed == {2}:
                return False
            if failed:
                raise Cancelled(f"{user!r} may not enter {member.room!r}", frozenset(failed))
            if promote and grant is not None:
                state.roles[user] = replace(grant, role="member")
            state.members[member.connection_id] = (member, ttl)
            return True

    def _actor_failed(self, state: _Room, actor: str, roles: tuple[Role, ...]) -> bool:
        grant = state.roles.get(actor)
        return grant is None or grant.role not in roles

    def grant(
        self,
        grant: Grant,
        *,
        actor: str,
        actor_roles: tuple[Role, ...],
        target_roles: tuple[Role | None, ...],
        unbanned: bool = False,
    ) -> None:
        with self._lock:
            state = self._room(grant.room)
            failed = set()
            if self._actor_failed(state, actor, actor_roles):
                failed.add(0)
            current = state.roles.get(grant.user_id)
            if (current.role if current is not None else None) not in target_roles:
                failed.add(1)
            if unbanned and grant.user_id in state.bans:
                failed.add(2)
            if failed:
                raise Cancelled(f"cannot grant {grant.role} in {grant.room!r}", frozenset(failed))
            state.roles[grant.user_id] = grant

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
        with self._lock:
            state = self._room(room)
            failed = set()
            if self._actor_failed(state, actor, actor_roles):
                failed.add(0)
            current = state.roles.get(user_id)
            if current is not None and current.role not in target_roles:
                failed.add(1)
            if failed:
                raise Cancelled(f"cannot revoke {user_id!r} in {room!r}", frozenset(failed))
            state.roles.pop(user_id, None)
            if ban_by is not None:
                state.bans.add(user_id)

    def unban(self, room: str, user_id: str, *, actor: str, actor_roles: tuple[Role, ...]) -> None:
        with self._lock:
            state = self._room(room)
            if self._actor_failed(state, actor, actor_roles):
                raise Cancelled(f"cannot unban in {room!r}", frozenset({0}))
            state.bans.discard(user_id)

    def user_grants(self, user_id: str, *, after: str | None, limit: int) -> tuple[list[Grant], bool]:
        with self._lock:
            grants = sorted(
                (
                    s.roles[user_id]
                    for room, s in self._rooms.items()
                    if user_id in s.roles and (not after or room > after)
                ),
                key=lambda g: g.room,
            )
        return grants[:limit], len(grants) > limit

    def public_rooms(self, *, after: str | None, limit: int) -> tuple[list[str], bool]:
        with self._lock:
            rooms = sorted(
                room
                for room, s in self._rooms.items()
                if s.meta is not None and s.meta.visibility == "public" and (not after or room > after)
            )
        return rooms[:limit], len(rooms) > limit
