"""The chat's storage on DynamoDB: :class:`~serverless_app.chat.store.protocol.ChatStore` over three
table objects, one per table (their key layouts in :mod:`~serverless_app.chat.store.keys`).

Built once per Lambda container (``container.service()``) and handed to
:class:`~serverless_app.chat.service.ChatService`, which sees only the protocol. Each operation
is forwarded (:class:`~serverless_app.chat.store.composed.ComposedStore`) to :mod:`~serverless_app.chat.store.connections`, :mod:`~serverless_app.chat.store.messages`
or one of the three parts of :mod:`~serverless_app.chat.store.rooms` (``presence``, ``standing``,
``grants``).
"""

from __future__ import annotations

from typing import Any

from serverless_app.chat.settings import Settings
from serverless_app.chat.store.composed import ComposedStore
from serverless_app.chat.store.connections import ConnectionsTable
from serverless_app.chat.store.messages import MessagesTable
from serverless_app.chat.store.rooms import RoomsTable

__all__ = ["DynamoDBStore"]


class DynamoDBStore(ComposedStore):
    """The chat's three tables, through a low-level DynamoDB client; each operation is one table's
    (see the table classes for how; the rooms table's in one of its three parts), but for
    :meth:`has_traces`, which asks two."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.connections = ConnectionsTable(client, settings.connections_table)
        self.messages = MessagesTable(client, settings.messages_table, rooms_table=settings.rooms_table)
        self.rooms = RoomsTable(client, settings.rooms_table)
