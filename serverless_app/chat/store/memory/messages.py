"""``websocket-messages`` in memory, mirroring :mod:`~serverless_app.chat.store.messages`:
storing a message at most once, and reading history by room or by user.

As in DynamoDB, a message's idempotency marker lives in the room's partition of
``websocket-rooms`` (``idem#…``, here :attr:`RoomPartition.idempotency
<serverless_app.chat.store.memory.base.RoomPartition.idempotency>`) and is written together with
the message. :class:`~serverless_app.chat.store.memory.MemoryStore` forwards ``put_message``,
``room_history`` and ``user_history`` here, as ``DynamoDBStore`` forwards them to
:class:`~serverless_app.chat.store.messages.MessagesTable`.
"""

from __future__ import annotations

from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.models import StoredMessage
from serverless_app.chat.store.base import Conflict
from serverless_app.chat.store.memory.base import MemoryTable

__all__ = ["MemoryMessages"]

_CANCELLED = "storage failed (TransactionCanceledException); nothing was saved"
"""What ``MessagesTable`` raises when the message's transaction is cancelled."""


class MemoryMessages(MemoryTable):
    """Messages by room, then cursor (``Tables.messages``); idempotency markers in ``Tables.rooms``."""

    def put_message(self, message: StoredMessage) -> StoredMessage:
        with self._lock:
            stored = self._tables.messages.setdefault(message.room, {})
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
                    raise StorageUnavailable(_CANCELLED)
                return original
            if message.cursor in stored:
                raise StorageUnavailable(_CANCELLED)
            markers[key] = message.cursor
            stored[message.cursor] = message
            return message

    def room_history(
        self, room: str, *, limit: int, now: float, before: str | None = None, after: str | None = None
    ) -> tuple[list[StoredMessage], bool]:
        with self._lock:
            messages = sorted(self._tables.messages.get(room, {}).values(), key=lambda m: m.cursor)
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
            messages = [
                m for room in self._tables.messages.values() for m in room.values() if m.user_id == user_id
            ]
        chosen = sorted(
            (m for m in messages if (before is None or m.cursor < before) and m.ttl > int(now)),
            key=lambda m: m.cursor,
            reverse=True,
        )
        return chosen[:limit], len(chosen) > limit

    def has_items(self, room: str) -> bool:
        """Whether any message (even expired) is stored in ``room``, as ``TableClient.has_items``."""
        with self._lock:
            return bool(self._tables.messages.get(room))
