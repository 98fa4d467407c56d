"""The chat's rules: connect, join, leave, send, history, presence, typing, disconnect.

The service decides and records; it never talks to a socket. Each operation returns the
frames to deliver as :data:`Delivery` values, which a shell (a Lambda handler) sends
through the ``@connections`` API. Messages are stored before they are delivered, and room
membership is read at delivery time, which is what makes recovery after a reconnect
gap-free (see ``docs/protocol.md``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from serverless_app.chat.errors import Forbidden, InvalidField, RateLimited, UnknownConnection
from serverless_app.chat.models import ConnectionRecord, Identity, Member, StoredMessage, TokenBucket
from serverless_app.chat.protocol import SCHEMA, ClientFrame, ServerFrame
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import ChatStore, Conflict

__all__ = [
    "ChatService",
    "ConnectOutcome",
    "Delivery",
    "ToConnection",
    "ToRoom",
    "message_frame",
    "parse_rooms",
]

CONNECT_GRACE_S = 30.0
"""A connection this young may still be inside ``$connect`` (29 s integration timeout)."""
TOKEN_ATTEMPTS = 32
"""Optimistic rounds for the rate-limit bucket: each round at least one concurrent sender wins."""

_ROOM = re.compile(SCHEMA["definitions"]["room"]["pattern"])
_USER = re.compile(SCHEMA["definitions"]["user_id"]["pattern"])


@dataclass(frozen=True)
class ToConnection:
    connection_id: str
    frame: ServerFrame


@dataclass(frozen=True)
class ToRoom:
    """To every connection in the room at delivery time, except ``exclude``."""

    room: str
    frame: ServerFrame
    exclude: frozenset[str] = field(default_factory=frozenset)


Delivery = ToConnection | ToRoom


@dataclass(frozen=True)
class ConnectOutcome:
    welcome: ServerFrame
    announcements: list[Delivery]
    """Presence ``join`` events for the rooms this connection is the user's first in."""


def _utc_timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_frame(message: StoredMessage) -> ServerFrame:
    frame: ServerFrame = {
        "action": "message",
        "room": message.room,
        "user_id": message.user_id,
        "message": message.message,
        "timestamp": message.timestamp,
        "message_id": message.message_id,
        "cursor": message.cursor,
    }
    if message.client_msg_id is not None:
        frame["client_msg_id"] = message.client_msg_id
    return frame


def parse_rooms(raw: str | None, *, default: str, maximum: int) -> list[str]:
    """The ``rooms`` query parameter of the connect URL: comma-separated room names."""
    if raw is None or not raw.strip():
        return [default]
    rooms = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    bad = [room for room in rooms if not _ROOM.fullmatch(room)]
    if bad:
        raise InvalidField(f"rooms: {bad[0][:70]!r} is not a valid room name")
    if len(rooms) > maximum:
        raise InvalidField(f"rooms: at most {maximum} rooms per connection")
    return rooms


def valid_user_id(user_id: str) -> bool:
    return bool(_USER.fullmatch(user_id))


class ChatService:
    """Chat operations over a :class:`ChatStore`; ``clock`` returns epoch seconds."""

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
        self._clock = clock
        self._new_id = new_id

    # --- lifecycle ---------------------------------------------------------------------

    def connect(self, connection_id: str, identity: Identity, rooms: list[str]) -> ConnectOutcome:
        now = self._clock()
        record = ConnectionRecord(
            connection_id=connection_id,
            user_id=identity.user_id,
            verified=identity.verified,
            connected_at_ms=int(now * 1000),
            ttl=int(now) + self._settings.connection_ttl_s,
            rooms=frozenset(rooms),
        )
        self._store.put_connection(record)
        announcements: list[Delivery] = []
        for room in rooms:
            announcements += self._enter(record, room, announce_to_self=False, record_has_room=True)
        welcome: ServerFrame = {
            "action": "welcome",
            "connection_id": connection_id,
            "user_id": identity.user_id,
            "rooms": rooms,
            "message": f"Welcome to wschat, {identity.user_id}! You are in: {', '.join(rooms)}.",
        }
        return ConnectOutcome(welcome=welcome, announcements=announcements)

    def disconnect(self, connection_id: str, *, also_rooms: frozenset[str] = frozenset()) -> list[Delivery]:
        """Forget a connection (idempotent): its record, memberships, and presence where it was the last.

        ``also_rooms`` are rooms it may still be a member of even if its record is gone.
        """
        record = self._store.delete_connection(connection_id)
        rooms = (record.rooms if record is not None else frozenset()) | also_rooms
        deliveries: list[Delivery] = []
        for room in sorted(rooms):
            deliveries += self._exit(room, connection_id)
        return deliveries

    def prune(self, connection_id: str, *, rooms: frozenset[str]) -> list[Delivery]:
        """Forget a connection the ``@connections`` API answered 410 for, unless it is still connecting.

        API Gateway also answers 410 while a connection's ``$connect`` is running, so a record
        younger than the integration timeout is left alone: a brand-new connection must not be
        deleted by a message that happened to be sent while it was being set up. A truly dead
        young connection is pruned by a later fan-out, by ``$disconnect`` or by TTL.
        """
        record = self._store.get_connection(connection_id, now=self._clock())
        if record is not None and self._clock() * 1000 - record.connected_at_ms < CONNECT_GRACE_S * 1000:
            return []
        return self.disconnect(connection_id, also_rooms=rooms)

    # --- frames ------------------------------------------------------------------------

    def handle(self, connection_id: str, frame: ClientFrame, *, request_id: str) -> list[Delivery]:
        """Apply one validated client frame; raise a ChatError for the sender if refused."""
        record = self._store.get_connection(connection_id, now=self._clock())
        if record is None:
            raise UnknownConnection("this connection has no live record (expired or pruned); reconnect")
        action = frame["action"]
        if action == "sendMessage":
            return self._send(record, frame, request_id)
        if action == "joinRoom":
            return self._join(record, frame["room"])
        if action == "leaveRoom":
            return self._leave(record, frame["room"])
        if action == "getPresence":
            users = self._store.users(frame["room"], now=self._clock())
            return [self._reply(record, {"action": "presenceList", "room": frame["room"], "users": users})]
        if action == "getHistory":
            return [self._reply(record, self._history(frame))]
        if action == "getUserHistory":
            return [self._reply(record, self._user_history(record, frame))]
        if action == "typing":
            return self._typing(record, frame["room"])
        raise AssertionError(f"validated frame with unhandled action {action!r}")  # pragma: no cover

    # --- actions ----------------------------------------------------------------------

    def _send(self, record: ConnectionRecord, frame: ClientFrame, request_id: str) -> list[Delivery]:
        user_id = self._speaker(record, frame.get("user_id"))
        self._take_token(record)
        deliveries: list[Delivery] = []
        room = frame["room"]
        if room not in record.rooms:
            deliveries += self._join(record, room)
        now = self._clock()
        message = StoredMessage(
            room=room,
            user_id=user_id,
            message=frame["message"],
            timestamp=_utc_timestamp(now),
            message_id=self._new_id(),
            ttl=int(now) + self._settings.message_retention_s,
            client_msg_id=frame.get("client_msg_id"),
        )
        stored = self._store.put_message(message)
        duplicate = stored.message_id != message.message_id
        if message.client_msg_id is not None:
            deliveries.append(
                self._reply(
                    record,
                    {
                        "action": "ack",
                        "room": room,
                        "message_id": stored.message_id,
                        "timestamp": stored.timestamp,
                        "cursor": stored.cursor,
                        "client_msg_id": message.client_msg_id,
                        "duplicate": duplicate,
                        "request_id": request_id,
                    },
                )
            )
        if not duplicate:
            deliveries.append(ToRoom(room, message_frame(stored)))
        return deliveries

    def _speaker(self, record: ConnectionRecord, claimed: str | None) -> str:
        """Who a message is from. A verified connection speaks only as its own user."""
        if claimed is None:
            return record.user_id
        if record.verified and claimed != record.user_id:
            raise Forbidden(
                f"this connection is signed in as {record.user_id!r}; it cannot send as {claimed!r}"
            )
        return claimed

    def _take_token(self, record: ConnectionRecord) -> None:
        """Spend one token of the connection's bucket, or refuse with how long to wait.

        The bucket lives on the connection item and is written with a condition on the value
        read, so concurrent invocations for one connection cannot both spend the same token.
        """
        rate, burst = self._settings.message_rate_per_s, self._settings.message_burst
        current = record
        for _ in range(TOKEN_ATTEMPTS):
            now = round(self._clock(), 3)  # the bucket's time is stored in whole milliseconds
            previous = current.bucket
            if previous is None:
                tokens = float(burst)
            else:
                now = max(now, previous.at)
                tokens = min(float(burst), previous.tokens + (now - previous.at) * rate)
            if tokens < 1.0:
                retry_after_ms = math.ceil((1.0 - tokens) / rate * 1000)
                raise RateLimited(
                    f"too many messages: at most {rate:g}/s (bursts of {burst}); retry in {retry_after_ms} ms",
                    retry_after_ms=retry_after_ms,
                )
            try:
                self._store.save_bucket(
                    current.connection_id, TokenBucket(tokens - 1.0, now), previous=previous
                )
                return
            except Conflict:
                refreshed = self._store.get_connection(current.connection_id, now=self._clock())
                if refreshed is None:
                    raise UnknownConnection("this connection has no live record; reconnect") from None
                current = refreshed
        raise RateLimited("too many concurrent messages on this connection", retry_after_ms=100)

    def _join(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        if room not in record.rooms and len(record.rooms) >= self._settings.max_rooms_per_connection:
            raise InvalidField(
                f"joinRoom: at most {self._settings.max_rooms_per_connection} rooms per connection"
            )
        return self._enter(record, room, announce_to_self=True)

    def _enter(
        self, record: ConnectionRecord, room: str, *, announce_to_self: bool, record_has_room: bool = False
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        member = Member(room=room, connection_id=record.connection_id, user_id=record.user_id)
        if self._store.add_member(member, ttl=record.ttl):
            if not record_has_room:  # at connect the record was written with its rooms
                self._store.set_connection_rooms(record.connection_id, room, present=True)
            if self._store.count_user(room, record.user_id, +1, ttl=record.ttl) == 1:
                presence = {"action": "presence", "room": room, "user_id": record.user_id, "event": "join"}
                deliveries.append(ToRoom(room, presence, exclude=frozenset({record.connection_id})))
        if announce_to_self:
            users = self._store.users(room, now=self._clock())
            deliveries.insert(0, self._reply(record, {"action": "joined", "room": room, "users": users}))
        return deliveries

    def _leave(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        deliveries = self._exit(room, record.connection_id)
        self._store.set_connection_rooms(record.connection_id, room, present=False)
        return [self._reply(record, {"action": "left", "room": room}), *deliveries]

    def _exit(self, room: str, connection_id: str) -> list[Delivery]:
        member = self._store.remove_member(room, connection_id)
        if member is None:
            return []
        now = self._clock()
        remaining = self._store.count_user(
            room, member.user_id, -1, ttl=int(now) + self._settings.connection_ttl_s
        )
        if remaining > 0:
            return []
        return [
            ToRoom(room, {"action": "presence", "room": room, "user_id": member.user_id, "event": "leave"})
        ]

    def _history(self, frame: ClientFrame) -> ServerFrame:
        limit = frame.get("limit", self._settings.history_default_limit)
        after = frame.get("after")
        messages, more = self._store.room_history(
            frame["room"], limit=limit, now=self._clock(), before=frame.get("before"), after=after
        )
        next_cursor = None
        if more and messages:
            next_cursor = messages[-1].cursor if after is not None else messages[0].cursor
        return {
            "action": "history",
            "room": frame["room"],
            "messages": [message_frame(m) for m in messages],
            "next_cursor": next_cursor,
            "direction": "after" if after is not None else "before",
        }

    def _user_history(self, record: ConnectionRecord, frame: ClientFrame) -> ServerFrame:
        user_id = frame.get("user_id", record.user_id)
        limit = frame.get("limit", self._settings.history_default_limit)
        messages, more = self._store.user_history(
            user_id, limit=limit, now=self._clock(), before=frame.get("before")
        )
        return {
            "action": "userHistory",
            "user_id": user_id,
            "messages": [message_frame(m) for m in messages],
            "next_cursor": messages[-1].cursor if more and messages else None,
        }

    def _typing(self, record: ConnectionRecord, room: str) -> list[Delivery]:
        if room not in record.rooms:
            return []
        if not self._store.claim_typing(
            record.connection_id, now=self._clock(), interval_s=self._settings.typing_interval_s
        ):
            return []  # relayed at most once per interval; extra typing events are dropped quietly
        frame = {"action": "typing", "room": room, "user_id": record.user_id}
        return [ToRoom(room, frame, exclude=frozenset({record.connection_id}))]

    def recipients(self, delivery: Delivery) -> list[str]:
        """The connection ids a delivery goes to, resolved now (after any message was stored)."""
        if isinstance(delivery, ToConnection):
            return [delivery.connection_id]
        members = self._store.members(delivery.room, now=self._clock())
        return [m.connection_id for m in members if m.connection_id not in delivery.exclude]

    @staticmethod
    def _reply(record: ConnectionRecord, frame: dict[str, Any]) -> ToConnection:
        return ToConnection(record.connection_id, frame)
