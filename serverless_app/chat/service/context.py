"""What every rule of the service works with: the store, the settings, the clock and the ids; and
what every operation applies first — the rule (:func:`serverless_app.chat.access.authorize`) and
the per-user rate limits.

:class:`~serverless_app.chat.service.facade.ChatService` builds one :class:`Context` and hands it
to the operation modules (``lifecycle``, ``membership``, ``presence``, ``messaging``,
``administration``). The context talks only to the
:class:`~serverless_app.chat.store.ChatStore` protocol: DynamoDB in a Lambda container, memory in
unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from serverless_app.chat.access import RoomAction, authorize
from serverless_app.chat.errors import RateLimited
from serverless_app.chat.models import ConnectionRecord, RoomInfo, Standing
from serverless_app.chat.protocol import ServerFrame
from serverless_app.chat.service.outcomes import Delivery, ToConnection
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import ChatStore

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    """The service's dependencies (``clock`` returns epoch seconds; ``new_id`` names a message)."""

    store: ChatStore
    settings: Settings
    clock: Callable[[], float]
    new_id: Callable[[], str]

    def access(self, room: str, user_id: str) -> tuple[RoomInfo, Standing]:
        """The room and the user's standing in it (one read)."""
        info, standings = self.store.room_access(room, (user_id,))
        return info, standings[user_id]

    def check(self, record: ConnectionRecord, action: RoomAction, room: str) -> tuple[RoomInfo, Standing]:
        """Read the room and the user's standing, and apply the rule (``access.authorize``)."""
        info, standing = self.access(room, record.user_id)
        authorize(action, info, standing, joined=room in record.rooms)
        return info, standing

    def spend(self, record: ConnectionRecord, action: str) -> None:
        """Count the action against its user's rate (across all of their connections), or refuse."""
        settings = self.settings
        if action == "sendMessage":
            bucket, rate, burst = "message", settings.message_rate_per_s, settings.message_burst
        else:
            bucket, rate, burst = "action", settings.action_rate_per_s, settings.action_burst
        now = self.clock()
        wait_ms = self.store.spend(
            record.user_id, bucket, now=now, rate=rate, burst=burst, ttl=int(now) + settings.connection_ttl_s
        )
        if wait_ms:
            what = "messages" if bucket == "message" else "requests"
            raise RateLimited(
                f"too many {what}: at most {rate:g}/s per user (bursts of {burst}); retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )

    def to_user(self, user_id: str, frame: ServerFrame) -> list[Delivery]:
        """The frame to each of the user's live connections."""
        return [ToConnection(cid, frame) for cid in self.store.live_connections(user_id)]
