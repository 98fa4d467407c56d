"""Messages typed and not yet acknowledged: :class:`Pending` sends in an :class:`Outbox`.

Sends go out one at a time, in the order typed (the server may process back-to-back frames in
either order): the next one leaves when the one in flight is acknowledged, or refused for
good. A retry carries the same ``client_msg_id``, so the server never stores it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Outbox", "Pending"]


@dataclass
class Pending:
    """A message sent but not yet acknowledged."""

    client_msg_id: str
    room: str
    text: str
    created_at: float
    attempts: int = 0

    def frame(self, user_id: str | None) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "action": "sendMessage",
            "room": self.room,
            "message": self.text,
            "client_msg_id": self.client_msg_id,
        }
        if user_id is not None:
            frame["user_id"] = user_id
        return frame


class Outbox:
    """The pending sends, oldest first, and the one in flight.

    ``sender`` gives the ``user_id`` the ``sendMessage`` frames carry (None: they carry none).
    Each method returns the frames to send now: the next send, if one may leave.
    """

    def __init__(self, sender: Callable[[], str | None]) -> None:
        self.pending: dict[str, Pending] = {}
        self.in_flight: str | None = None
        """The ``client_msg_id`` of the send awaiting its ack, if any."""
        self._sender = sender

    def add(self, pending: Pending) -> list[dict[str, Any]]:
        """Queue a send; its frame, if nothing else is in flight."""
        self.pending[pending.client_msg_id] = pending
        return self._next()

    def resend(self) -> list[dict[str, Any]]:
        """The oldest pending send again (after a reconnect or a retryable error)."""
        self.in_flight = None
        return self._next()

    def confirm(self, client_msg_id: str | None) -> list[dict[str, Any]]:
        """Forget a pending send; the next frame to send, if it was the one in flight."""
        if client_msg_id is None or self.pending.pop(client_msg_id, None) is None:
            return []
        if client_msg_id == self.in_flight:
            self.in_flight = None
            return self._next()
        return []

    def drop_room(self, room: str) -> list[dict[str, Any]]:
        """Forget the pending sends to a room the user is no longer in; the next send, if any."""
        send: list[dict[str, Any]] = []
        for client_msg_id in [p.client_msg_id for p in self.pending.values() if p.room == room]:
            send += self.confirm(client_msg_id)
        return send

    def _next(self) -> list[dict[str, Any]]:
        if self.in_flight is not None or not self.pending:
            return []
        head = next(iter(self.pending.values()))
        self.in_flight = head.client_msg_id
        head.attempts += 1
        return [head.frame(self._sender())]
