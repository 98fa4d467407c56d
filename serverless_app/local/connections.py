"""The model of the stage's connections: what both wires act on, never HTTP itself (moto's split).

:class:`Connections` is the registry the WebSocket side (:mod:`serverless_app.local.gateway`) adds
connections to and removes them from, and the three ``@connections`` operations the management API's
wire (:mod:`serverless_app.local.connections_api`) calls: :meth:`~Connections.post_to_connection`,
:meth:`~Connections.get_connection`, :meth:`~Connections.delete_connection`. They raise the typed errors
of :mod:`serverless_app.local.errors` (:class:`Gone`, :class:`PayloadTooLarge`, :class:`LimitExceeded`),
each carrying the ``code`` and ``status_code`` the wire answers with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from serverless_app.local.connection import Connection
from serverless_app.local.errors import Gone, LimitExceeded, PayloadTooLarge
from serverless_app.local.throttle import TokenBucket

__all__ = ["DELETE_DISCONNECT_REASON", "Connections"]

DELETE_DISCONNECT_REASON = "Connection Closed Normally"
"""``disconnectReason`` of the ``$disconnect`` after a ``DELETE`` (API Gateway's, with code 1000)."""


class Connections(Mapping[str, Connection]):
    """Connection id → :class:`Connection`, known from the upgrade on (postable once ``$connect`` returned).

    ``quota`` is the account-level ``@connections`` quota shared by every caller (10,000/s, burst
    5,000 on AWS); ``max_message_bytes`` the API's message limit (128 KB).
    """

    def __init__(self, *, max_message_bytes: int, quota: TokenBucket) -> None:
        self.max_message_bytes = max_message_bytes
        self.quota = quota
        self._by_id: dict[str, Connection] = {}

    # --- the registry (the WebSocket side) -------------------------------------------------------

    def __getitem__(self, connection_id: str) -> Connection:
        return self._by_id[connection_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, connection: Connection) -> None:
        self._by_id[connection.connection_id] = connection

    def discard(self, connection_id: str) -> None:
        self._by_id.pop(connection_id, None)

    # --- the @connections operations -------------------------------------------------------------

    def post_to_connection(self, connection_id: str, data: bytes) -> None:
        """Queue ``data`` for the client (the hot path never awaits). Checked in API Gateway's order:
        the quota (429), the size (413), the connection (410), its buffer (429)."""
        if not self.quota.try_acquire():
            raise LimitExceeded("Rate exceeded")
        if len(data) > self.max_message_bytes:
            raise PayloadTooLarge("Request Entity Too Large")
        connection = self._by_id.get(connection_id)
        if connection is None:
            raise Gone()
        connection.post(data)

    def get_connection(self, connection_id: str) -> Connection:
        """The open connection of that id (its ``connectedAt``, ``lastActiveAt``, identity)."""
        connection = self._by_id.get(connection_id)
        if connection is None or not connection.is_open:
            raise Gone()
        return connection

    async def delete_connection(self, connection_id: str) -> None:
        """Close it: the client sees 1000 with an empty reason (AWS's DeleteConnection takes neither);
        the ``$disconnect`` event says what API Gateway's execution logs show for it."""
        connection = self.get_connection(connection_id)
        if connection.close_code is None:
            connection.close_code, connection.close_reason = 1000, DELETE_DISCONNECT_REASON
        await connection.close(1000, "")
