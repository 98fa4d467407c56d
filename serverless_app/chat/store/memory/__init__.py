"""The chat's storage in plain dicts: :class:`~serverless_app.chat.store.protocol.ChatStore` for fast
tests of the chat's rules, with DynamoDBStore's semantics (conditional failures and the positions
of cancelled transactions, TTL filtering, paging, rate limits), checked against it by
``tests/chat/test_store_contract.py``. Never deployed as storage: it forgets everything when the
process ends.

Built as :class:`~serverless_app.chat.store.dynamodb.DynamoDBStore` is, one object per table over
the same shared dicts (:class:`~serverless_app.chat.store.memory.base.Tables`, one lock), each
module mirroring the DynamoDB one of the same name:

* ``connections``: :class:`MemoryConnections` (as ``store/connections.py``) — connections, users,
  rate limits and the posts budget.
* ``messages``: :class:`MemoryMessages` (as ``store/messages.py``) — messages and their
  idempotency markers.
* ``rooms``: :class:`MemoryRooms` (as the ``store/rooms/`` package), in the same three parts,
  ``presence``, ``standing`` and ``grants``.
* ``base``: what they share (as ``store/base.py``): the items and the lock.
"""

from __future__ import annotations

from serverless_app.chat.store.composed import ComposedStore
from serverless_app.chat.store.memory.base import Tables
from serverless_app.chat.store.memory.connections import MemoryConnections
from serverless_app.chat.store.memory.messages import MemoryMessages
from serverless_app.chat.store.memory.rooms import MemoryRooms

__all__ = ["MemoryStore"]


class MemoryStore(ComposedStore):
    """The chat's three tables in dicts, behind one lock; each operation is one table's (the rooms
    table's in one of its three parts), but for :meth:`has_traces`, which asks two."""

    def __init__(self) -> None:
        self._tables = Tables()
        self.connections = MemoryConnections(self._tables)
        self.messages = MemoryMessages(self._tables)
        self.rooms = MemoryRooms(self._tables)

    def has_traces(self, room: str) -> bool:
        with self._tables.lock:  # both partitions read in one snapshot
            return self.rooms.has_items(room) or self.messages.has_items(room)
