"""``ChatService``: the one object the handlers call (through ``container.service()``).

It checks that a frame comes from a live connection with an unexpired token, spends the
user's rate, and hands the frame to the module that owns its action:

* ``lifecycle``: connect, disconnect, prune (410 from ``@connections``);
* ``membership``: ``joinRoom``, ``leaveRoom``;
* ``presence``: ``getPresence``, ``typing``;
* ``messaging``: ``sendMessage``, ``getHistory``, ``getUserHistory``;
* ``administration``: ``createRoom``, ``invite``, ``kick``, ``ban``, ``unban``, ``setRole``,
  ``openDirect``, ``listRooms``.

Each returns :data:`~serverless_app.chat.service.outcomes.Delivery` values; the handler gives
them to :func:`serverless_app.chat.delivery.deliver`, which resolves rooms to connections with
:meth:`ChatService.recipient_pages`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from serverless_app.chat.auth import LEEWAY_S
from serverless_app.chat.errors import TokenExpired, UnknownConnection
from serverless_app.chat.models import Identity
from serverless_app.chat.protocol import ClientFrame, presence_list_frame
from serverless_app.chat.service import administration, lifecycle, membership, messaging, presence
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.outcomes import ConnectOutcome, Delivery, ToConnection, reply
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import ChatStore

__all__ = ["ChatService"]


class ChatService:
    """Chat operations over any :class:`~serverless_app.chat.store.ChatStore` (DynamoDB in a Lambda
    container, memory in unit tests); ``clock`` returns epoch seconds."""

    def __init__(
        self,
        store: ChatStore,
        settings: Settings,
        *,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._settings = settings
        self._ctx = Context(store, settings, clock, new_id)

    @property
    def settings(self) -> Settings:
        """The limits and names this service was built with (the benchmarks' fan-out processes read them)."""
        return self._settings

    # --- lifecycle ---------------------------------------------------------------------

    def connect(self, connection_id: str, identity: Identity, rooms: list[str]) -> ConnectOutcome:
        """Record the connection, count it against the user's cap, and join the rooms the user
        may enter (the others are left out of ``welcome.rooms``)."""
        return lifecycle.connect(self._ctx, connection_id, identity, rooms)

    def disconnect(self, connection_id: str, *, also_rooms: frozenset[str] = frozenset()) -> list[Delivery]:
        """Forget a connection (idempotent): its record, memberships, and presence where it was the last.

        ``also_rooms`` are rooms it may still be a member of even if its record is gone.
        """
        return lifecycle.disconnect(self._ctx, connection_id, also_rooms=also_rooms)

    def prune(self, connection_id: str, *, rooms: frozenset[str]) -> list[Delivery]:
        """Forget a connection the ``@connections`` API answered 410 for, unless it is still
        connecting (see :func:`~serverless_app.chat.service.lifecycle.prune`)."""
        return lifecycle.prune(self._ctx, connection_id, rooms=rooms)

    # --- frames ------------------------------------------------------------------------

    def handle(self, connection_id: str, frame: ClientFrame, *, request_id: str) -> list[Delivery]:
        """Apply one validated client frame; raise a ChatError for the sender if refused."""
        ctx = self._ctx
        record = ctx.store.get_connection(connection_id, now=ctx.clock())
        if record is None:
            raise UnknownConnection("this connection has no live record (expired or pruned); reconnect")
        if record.token_exp is not None and ctx.clock() >= record.token_exp + LEEWAY_S:
            raise TokenExpired("your token has expired; reconnect with a fresh one")
        action = frame["action"]
        if action == "typing":
            return presence.typing(ctx, record, frame["room"])
        ctx.spend(record, action)
        if action == "sendMessage":
            return messaging.send(ctx, record, frame, request_id)
        if action == "joinRoom":
            return membership.join(ctx, record, frame["room"])
        if action == "leaveRoom":
            return membership.leave(ctx, record, frame["room"])
        if action == "getPresence":
            ctx.check(record, "getPresence", frame["room"])
            limit = frame.get("limit", ctx.settings.presence_page_size)
            page = presence.presence_page(ctx, frame["room"], after=frame.get("after"), limit=limit)
            return [reply(record, presence_list_frame(frame["room"], page))]
        if action == "getHistory":
            ctx.check(record, "getHistory", frame["room"])
            return [reply(record, messaging.history(ctx, frame))]
        if action == "getUserHistory":
            return [reply(record, messaging.user_history(ctx, record, frame))]
        if action == "createRoom":
            return administration.create(ctx, record, frame["room"], frame["visibility"])
        if action in ("invite", "kick", "ban", "unban", "setRole"):
            return administration.moderate(ctx, record, action, frame)
        if action == "openDirect":
            return administration.open_direct(ctx, record, frame["user_id"])
        if action == "listRooms":
            return [reply(record, administration.list_rooms(ctx, record, frame))]
        raise AssertionError(f"validated frame with unhandled action {action!r}")  # pragma: no cover

    # --- delivery ------------------------------------------------------------------------

    def recipients(self, delivery: Delivery) -> list[str]:
        """The connection ids a delivery goes to, resolved now (after any message was stored)."""
        if isinstance(delivery, ToConnection):
            return [delivery.connection_id]
        members = self._store.members(delivery.room, now=self._ctx.clock())
        return [m.connection_id for m in members if m.connection_id not in delivery.exclude]

    def recipient_pages(
        self,
        delivery: Delivery,
        *,
        page_size: int,
        start_key: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
        """:meth:`recipients` a page at a time, each with the key to go on from (see
        ``ChatStore.member_pages``); ``start_key`` and ``limit`` select a key range of the room."""
        if isinstance(delivery, ToConnection):
            yield [delivery.connection_id], None
            return
        pages = self._store.member_pages(
            delivery.room, now=self._ctx.clock(), page_size=page_size, start_key=start_key, limit=limit
        )
        for members, next_key in pages:
            yield [m.connection_id for m in members if m.connection_id not in delivery.exclude], next_key
