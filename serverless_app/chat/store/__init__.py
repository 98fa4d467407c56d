"""DynamoDB access for the chat: connections, room membership, presence counts, messages.

One module per table (``connections``, ``rooms``, ``messages``), combined into :class:`ChatStore`.
Every expression uses placeholders; user input is only ever a value. Reads filter out items
whose ``ttl`` has passed, because DynamoDB deletes expired items lazily.
"""

from __future__ import annotations

from serverless_app.chat.store.base import Cancelled, Conflict
from serverless_app.chat.store.connections import ConnectionStore
from serverless_app.chat.store.messages import MessageStore
from serverless_app.chat.store.rooms import RoomStore

__all__ = ["Cancelled", "ChatStore", "Conflict"]


class ChatStore(ConnectionStore, RoomStore, MessageStore):
    """The chat's three tables, through a low-level DynamoDB client."""
