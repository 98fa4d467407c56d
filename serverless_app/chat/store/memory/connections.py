"""``websocket-connections`` in memory, mirroring :mod:`~serverless_app.chat.store.connections`:
connection items (rooms, typing claim), user items (live connections, rate limits) and the
``@connections`` posts budget (:data:`~serverless_app.chat.store.keys.BUDGET_ITEM`).

:class:`~serverless_app.chat.store.memory.MemoryStore` forwards the connection and user
operations of the ``ChatStore`` protocol here, as ``DynamoDBStore`` forwards them to
:class:`~serverless_app.chat.store.connections.ConnectionsTable`.
"""

from __future__ import annotations

from dataclasses import replace

from serverless_app.chat.models import ConnectionRecord
from serverless_app.chat.store.base import Conflict, millis
from serverless_app.chat.store.gcra import window
from serverless_app.chat.store.keys import BUDGET_ITEM, user_item
from serverless_app.chat.store.memory.base import ConnectionItem, MemoryTable, UserItem
from serverless_app.chat.store.protocol import RateDecision

__all__ = ["MemoryConnections"]

"""As ``ConnectionsTable``'s: how far apart two callers' clocks may be before a limit's state is impossible."""


class MemoryConnections(MemoryTable):
    """Connections, users and the posts budget (``Tables.connections`` and ``Tables.users``)."""

    def put_connection(self, record: ConnectionRecord) -> None:
        with self._lock:
            self._tables.connections[record.connection_id] = ConnectionItem(record)

    def get_connection(self, connection_id: str, *, now: float) -> ConnectionRecord | None:
        with self._lock:
            item = self._tables.connections.get(connection_id)
        return item.record if item is not None and item.record.ttl > now else None

    def delete_connection(self, connection_id: str) -> ConnectionRecord | None:
        with self._lock:
            item = self._tables.connections.pop(connection_id, None)
        return item.record if item is not None else None

    def reserve_room(self, connection_id: str, room: str, *, maximum: int) -> None:
        with self._lock:
            item = self._tables.connections.get(connection_id)
            if item is None:
                raise Conflict(f"no connection {connection_id!r}")
            rooms = item.record.rooms
            if room not in rooms and len(rooms) >= maximum:
                raise Conflict(f"{connection_id!r} is in {maximum} rooms")
            item.record = replace(item.record, rooms=rooms | {room})

    def release_room(self, connection_id: str, room: str) -> None:
        with self._lock:
            item = self._tables.connections.get(connection_id)
            if item is not None:
                item.record = replace(item.record, rooms=item.record.rooms - {room})

    def claim_typing(self, connection_id: str, *, now: float, interval_s: float) -> bool:
        with self._lock:
            item = self._tables.connections.get(connection_id)
            if item is None:
                return False
            if item.typing_at_ms is not None and item.typing_at_ms > millis(now - interval_s):
                return False
            item.typing_at_ms = millis(now)
            return True

    def add_live_connection(self, user_id: str, connection_id: str, *, maximum: int, ttl: int) -> None:
        with self._lock:
            user = self._tables.users.setdefault(user_item(user_id), UserItem())
            if connection_id not in user.live and len(user.live) >= maximum:
                raise Conflict(f"{user_id!r} has {maximum} live connections")
            user.live.add(connection_id)

    def remove_live_connection(self, user_id: str, connection_id: str) -> None:
        with self._lock:
            self._tables.users.setdefault(user_item(user_id), UserItem()).live.discard(connection_id)

    def live_connections(self, user_id: str) -> list[str]:
        with self._lock:
            user = self._tables.users.get(user_item(user_id))
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
        limit = window(cost, now=now, rate=rate, burst=burst)
        now_ms, advance, horizon, reachable = limit.now_ms, limit.advance, limit.horizon, limit.reachable
        with self._lock:
            state = self._tables.users.setdefault(item, UserItem()).tat
            tat = state.get(attribute)
            if tat is not None and now_ms < tat <= horizon:
                state[attribute] = tat + advance
                return 0
            if tat is not None and horizon < tat <= reachable:
                return tat - horizon
            state[attribute] = now_ms + advance  # none yet, in the past, or beyond any reach: replaced
            return 0
