"""Client-side chat state, without I/O: rooms, what was seen, what is pending, how to recover.

A :class:`ChatSession` turns user intents into client frames (``join``, ``send``…) and server
frames into :class:`Event` values to display (``receive``), de-duplicating messages by
``message_id`` and remembering each room's newest cursor. After a reconnect,
:meth:`ChatSession.recovery_requests` asks each room for everything ``after`` its newest cursor
minus a 30 s overlap (docs/protocol.md, "Recovery after a reconnect"); history pages are
followed until ``next_cursor`` is null, and unacknowledged sends are retried with the same
``client_msg_id`` (the server never stores a retried one twice).

Any Python client (the terminal client, tests, bots) can drive one session per user.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "RECOVERY_OVERLAP_S",
    "Acked",
    "ChatMessage",
    "ChatSession",
    "Connected",
    "Event",
    "HistoryShown",
    "Joined",
    "Left",
    "MessageShown",
    "Pending",
    "PresenceChanged",
    "PresenceListed",
    "Recovered",
    "Reply",
    "RoomState",
    "ServerError",
    "Typing",
    "Unrecognised",
    "cursor_before",
    "valid_room",
    "valid_user_id",
    "validate_text",
]

RECOVERY_OVERLAP_S = 30.0
"""Recovery asks for messages this much older than the newest one seen (concurrent stores may land out of order)."""
RECOVERY_PAGE = 100
"""Page size of recovery requests (the protocol's maximum)."""
JOIN_HISTORY = 20
"""Messages shown when a room is joined for the first time."""
EMPTY_ROOM_OVERLAP_S = 300.0
"""Recovery of a room that was empty when joined starts this long before the (client's) join time."""
RETRYABLE = frozenset({"rate_limited", "unknown_connection", "storage_unavailable", "internal_error"})
"""Error codes after which a pending send is retried (same ``client_msg_id``) rather than dropped."""
SEEN_PER_ROOM = 10_000
"""Message ids remembered per room for de-duplication (oldest forgotten first)."""

_ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ZERO_ID = "0" * 32
MAX_TEXT = 4000


def cursor_before(cursor_or_timestamp: str, seconds: float = RECOVERY_OVERLAP_S) -> str:
    """The cursor ``seconds`` older than a cursor or ISO timestamp, with message id ``000…0``."""
    stamp = cursor_or_timestamp.split("#", 1)[0]
    moment = _parse_timestamp(stamp) - timedelta(seconds=seconds)
    return f"{_format_timestamp(moment)}#{_ZERO_ID}"


def validate_text(text: str) -> str | None:
    """Why ``text`` cannot be sent as a message (the protocol's rules), or None if it can."""
    if not text.strip():
        return "the message is empty"
    if len(text) > MAX_TEXT:
        return f"the message is {len(text)} characters; at most {MAX_TEXT}"
    if _CONTROL.search(text):
        return "the message contains control characters"
    return None


def valid_user_id(user_id: str) -> bool:
    """Whether ``user_id`` follows the protocol's user id pattern."""
    return bool(_USER.fullmatch(user_id))


def valid_room(room: str) -> bool:
    """Whether ``room`` follows the protocol's room name pattern."""
    return bool(_ROOM.fullmatch(room))


def _parse_timestamp(stamp: str) -> datetime:
    return datetime.strptime(
        stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    ).replace(tzinfo=UTC)


def _format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatMessage:
    """A stored chat message, as carried by ``message`` frames and history pages."""

    room: str
    user_id: str
    text: str
    timestamp: str
    message_id: str
    cursor: str
    client_msg_id: str | None = None

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> ChatMessage:
        return cls(
            room=str(frame["room"]),
            user_id=str(frame["user_id"]),
            text=str(frame["message"]),
            timestamp=str(frame["timestamp"]),
            message_id=str(frame["message_id"]),
            cursor=str(frame["cursor"]),
            client_msg_id=frame.get("client_msg_id"),
        )

    @property
    def sent_at(self) -> datetime:
        """When the server stored it (UTC)."""
        return _parse_timestamp(self.timestamp)


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


@dataclass
class RoomState:
    """What the client knows about one room it is in."""

    name: str
    joined_at: float
    newest_cursor: str | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    synced: bool = False
    """Whether a first page or a recovery of this room was answered."""
    pages: deque[str] = field(default_factory=deque)
    """Kinds of the backwards history requests in flight: ``first`` (new messages only) or ``explicit`` (all)."""
    recovered: int = 0

    def remember(self, message: ChatMessage) -> bool:
        """Record a message; False if its id was already seen."""
        if message.message_id in self.seen:
            return False
        self.seen[message.message_id] = None
        if len(self.seen) > SEEN_PER_ROOM:
            self.seen.popitem(last=False)
        if self.newest_cursor is None or message.cursor > self.newest_cursor:
            self.newest_cursor = message.cursor
        return True


# --- events: what happened, for a user interface to show -------------------------------------


@dataclass(frozen=True)
class Connected:
    connection_id: str
    user_id: str
    rooms: tuple[str, ...]


@dataclass(frozen=True)
class MessageShown:
    """A message seen for the first time (live, recovered, or confirming one of ours)."""

    message: ChatMessage
    own: bool
    recovered: bool = False


@dataclass(frozen=True)
class Acked:
    """One of our pending messages is stored (``duplicate``: a retry matched an earlier send)."""

    client_msg_id: str
    room: str
    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class HistoryShown:
    """An explicitly requested history page (or the first page of a newly joined room)."""

    room: str
    messages: tuple[ChatMessage, ...]
    more: bool


@dataclass(frozen=True)
class Recovered:
    """Recovery of a room finished: ``count`` missed messages were shown."""

    room: str
    count: int


@dataclass(frozen=True)
class Joined:
    room: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Left:
    room: str


@dataclass(frozen=True)
class PresenceChanged:
    room: str
    user_id: str
    event: str


@dataclass(frozen=True)
class PresenceListed:
    room: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Typing:
    room: str
    user_id: str


@dataclass(frozen=True)
class ServerError:
    code: str
    message: str
    retry_after_ms: int | None = None
    client_msg_id: str | None = None
    """The refused send, when the error names one."""


@dataclass(frozen=True)
class Unrecognised:
    frame: Any


Event = (
    Connected
    | MessageShown
    | Acked
    | HistoryShown
    | Recovered
    | Joined
    | Left
    | PresenceChanged
    | PresenceListed
    | Typing
    | ServerError
    | Unrecognised
)


@dataclass
class Reply:
    """What a server frame produced: events to show and frames to send back."""

    events: list[Event] = field(default_factory=list)
    send: list[dict[str, Any]] = field(default_factory=list)


# --- the session ----------------------------------------------------------------------------


class ChatSession:
    """One user's client-side state across connections.

    ``user_id`` is the signed-in user; ``send_user_id`` controls whether ``sendMessage``
    frames carry it (needed in auth mode ``none``, optional with a token).
    """

    def __init__(
        self,
        user_id: str,
        rooms: Iterable[str] = ("general",),
        *,
        send_user_id: bool = True,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.user_id = user_id
        self.send_user_id = send_user_id
        self.connection_id: str | None = None
        self._clock = clock
        self._new_id = new_id
        self.rooms: dict[str, RoomState] = {}
        self.pending: dict[str, Pending] = {}
        for room in rooms:
            self._add_room(room)
        self.active_room: str | None = next(iter(self.rooms), None)
        self._in_flight: str | None = None
        self._requested: set[str] = set()
        """Rooms asked for with joinRoom and not yet answered."""

    # -- intents -> frames -------------------------------------------------------------------

    def connect_rooms(self) -> list[str]:
        """The rooms to name in the connect URL (``rooms=``)."""
        return list(self.rooms)

    def join(self, room: str) -> dict[str, Any]:
        """A joinRoom frame; the room becomes active once ``joined`` arrives."""
        self._requested.add(room)
        return {"action": "joinRoom", "room": room}

    def leave(self, room: str) -> dict[str, Any]:
        return {"action": "leaveRoom", "room": room}

    def presence(self, room: str) -> dict[str, Any]:
        return {"action": "getPresence", "room": room}

    def history(self, room: str, limit: int = JOIN_HISTORY) -> dict[str, Any]:
        """An explicit history request (``/history``): its answer is shown in full."""
        state = self.rooms.get(room)
        if state is not None:
            state.pages.append("explicit")
        return {"action": "getHistory", "room": room, "limit": max(1, min(100, limit))}

    def send(self, room: str, text: str) -> tuple[dict[str, Any] | None, Pending]:
        """Queue a message with a fresh ``client_msg_id``; pending until acknowledged.

        Sends are one at a time, in the order typed (the server may process back-to-back frames
        in either order): the frame is returned only if nothing else is in flight, otherwise
        it is sent once the previous one is acknowledged (it comes in :attr:`Reply.send`).
        """
        problem = validate_text(text)
        if problem:
            raise ValueError(problem)
        pending = Pending(client_msg_id=self._new_id(), room=room, text=text, created_at=self._clock())
        self.pending[pending.client_msg_id] = pending
        frames = self._next_send()
        return (frames[0] if frames else None), pending

    def resend_pending(self) -> list[dict[str, Any]]:
        """The oldest unacknowledged send again, same ``client_msg_id`` (the server de-duplicates).

        The others follow, one per acknowledgement.
        """
        self._in_flight = None
        return self._next_send()

    @property
    def in_flight(self) -> str | None:
        """The ``client_msg_id`` of the send awaiting its ack, if any."""
        return self._in_flight

    def _next_send(self) -> list[dict[str, Any]]:
        if self._in_flight is not None or not self.pending:
            return []
        head = next(iter(self.pending.values()))
        self._in_flight = head.client_msg_id
        head.attempts += 1
        return [head.frame(self._sender())]

    def _confirm(self, client_msg_id: str | None) -> list[dict[str, Any]]:
        """Forget a pending send; the next frame to send, if it was the one in flight."""
        if client_msg_id is None or self.pending.pop(client_msg_id, None) is None:
            return []
        if client_msg_id == self._in_flight:
            self._in_flight = None
            return self._next_send()
        return []

    def on_connected(self, connection_id: str | None = None) -> list[dict[str, Any]]:
        """Frames to send once a (re)connection is open, its rooms joined through the URL's ``rooms``.

        One :meth:`recovery_request` per room, then every unacknowledged send again.
        """
        if connection_id is not None:
            self.connection_id = connection_id
        return self.recovery_requests() + self.resend_pending()

    def recovery_request(self, room: str) -> dict[str, Any]:
        """The ``getHistory`` that fetches what ``room`` may have missed.

        After the newest cursor seen minus 30 s (paged forwards until ``next_cursor`` is null);
        for a room that was empty when joined, after the join time minus a generous 5 minutes
        (client and server clocks differ); for a room not yet shown, its newest page.
        """
        state = self.rooms[room]
        if state.newest_cursor is None and not state.synced:
            return self._first_page(room)
        state.recovered = 0
        if state.newest_cursor is not None:
            after = cursor_before(state.newest_cursor)
        else:
            joined = _format_timestamp(datetime.fromtimestamp(state.joined_at, UTC))
            after = cursor_before(joined, EMPTY_ROOM_OVERLAP_S)
        return {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": after}

    def recovery_requests(self) -> list[dict[str, Any]]:
        """:meth:`recovery_request` for every room."""
        return [self.recovery_request(room) for room in self.rooms]

    def _first_page(self, room: str) -> dict[str, Any]:
        self.rooms[room].pages.append("first")
        return {"action": "getHistory", "room": room, "limit": JOIN_HISTORY}

    # -- server frames -> events -------------------------------------------------------------

    def receive(self, frame: Any) -> Reply:
        """Apply one server frame (already parsed from JSON)."""
        if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
            if isinstance(frame, dict) and frame.get("message") == "Internal server error":
                return Reply([ServerError("internal_error", "Internal server error (API Gateway)")])
            return Reply([Unrecognised(frame)])
        handler = getattr(self, f"_on_{frame['action']}", None)
        if handler is None:
            return Reply([Unrecognised(frame)])
        try:
            result: Reply = handler(frame)
        except (KeyError, TypeError, ValueError):
            return Reply([Unrecognised(frame)])
        return result

    def _on_welcome(self, frame: dict[str, Any]) -> Reply:
        self.connection_id = str(frame["connection_id"])
        if frame.get("user_id"):
            self.user_id = str(frame["user_id"])
        rooms = tuple(str(r) for r in frame.get("rooms", ()))
        send: list[dict[str, Any]] = []
        for room in rooms:
            if room not in self.rooms:  # the server's default room, though we asked for none
                send.append(self.leave(room))
        return Reply([Connected(self.connection_id, self.user_id, rooms)], send)

    def _on_message(self, frame: dict[str, Any]) -> Reply:
        message = ChatMessage.from_frame(frame)
        send = self._confirm_own([message])
        return Reply(self._accept([message], recovered=False), send)

    def _on_ack(self, frame: dict[str, Any]) -> Reply:
        client_msg_id = frame.get("client_msg_id")
        pending = self.pending.get(client_msg_id) if client_msg_id else None
        send = self._confirm(client_msg_id)
        events: list[Event] = [
            Acked(
                client_msg_id=str(client_msg_id),
                room=str(frame["room"]),
                message_id=str(frame["message_id"]),
                duplicate=bool(frame.get("duplicate")),
            )
        ]
        if pending is not None:
            # The broadcast may be lost with the connection, or never come (duplicate): the ack
            # carries everything needed to show the stored message once.
            message = ChatMessage(
                room=pending.room,
                user_id=self.user_id,
                text=pending.text,
                timestamp=str(frame["timestamp"]),
                message_id=str(frame["message_id"]),
                cursor=str(frame["cursor"]),
                client_msg_id=pending.client_msg_id,
            )
            events = self._accept([message], recovered=False) + events
        return Reply(events, send)

    def _on_history(self, frame: dict[str, Any]) -> Reply:
        room = str(frame["room"])
        messages = sorted((ChatMessage.from_frame(m) for m in frame["messages"]), key=lambda m: m.cursor)
        next_cursor = frame.get("next_cursor")
        state = self.rooms.get(room)
        if state is None:
            return Reply([HistoryShown(room, tuple(messages), more=bool(next_cursor))])
        send = self._confirm_own(messages)
        if frame.get("direction") == "after":
            events = self._accept(messages, recovered=True)
            state.recovered += len(events)
            if next_cursor:
                page = {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": next_cursor}
                return Reply(events, [page, *send])
            state.synced = True
            return Reply([*events, Recovered(room, state.recovered)], send)
        kind = state.pages.popleft() if state.pages else "first"
        if kind == "explicit":
            for message in messages:
                state.remember(message)
            return Reply([HistoryShown(room, tuple(messages), more=bool(next_cursor))], send)
        state.synced = True
        accepted = self._accept(messages, recovered=True)
        fresh = tuple(e.message for e in accepted if isinstance(e, MessageShown))
        return Reply([HistoryShown(room, fresh, more=bool(next_cursor))], send)

    def _on_joined(self, frame: dict[str, Any]) -> Reply:
        room = str(frame["room"])
        users = tuple(str(u) for u in frame.get("users", ()))
        asked = room in self._requested
        self._requested.discard(room)
        send: list[dict[str, Any]] = []
        if room not in self.rooms:
            self._add_room(room)
            send.append(self._first_page(room))
        if asked:
            self.active_room = room
        return Reply([Joined(room, users)], send)

    def _on_left(self, frame: dict[str, Any]) -> Reply:
        room = str(frame["room"])
        self.rooms.pop(room, None)
        send: list[dict[str, Any]] = []
        for client_msg_id in [p.client_msg_id for p in self.pending.values() if p.room == room]:
            send += self._confirm(client_msg_id)
        if self.active_room == room:
            self.active_room = next(reversed(self.rooms), None) if self.rooms else None
        return Reply([Left(room)], send)

    def _on_presence(self, frame: dict[str, Any]) -> Reply:
        return Reply([PresenceChanged(str(frame["room"]), str(frame["user_id"]), str(frame["event"]))])

    def _on_presenceList(self, frame: dict[str, Any]) -> Reply:
        return Reply([PresenceListed(str(frame["room"]), tuple(str(u) for u in frame["users"]))])

    def _on_typing(self, frame: dict[str, Any]) -> Reply:
        if frame.get("user_id") == self.user_id:
            return Reply()
        return Reply([Typing(str(frame["room"]), str(frame["user_id"]))])

    def _on_error(self, frame: dict[str, Any]) -> Reply:
        """An error; one naming a pending send refused for good drops it (and sends the next)."""
        retry = frame.get("retry_after_ms")
        code = str(frame.get("code", "error"))
        client_msg_id = frame.get("client_msg_id")
        error = ServerError(
            code=code,
            message=str(frame.get("message", "")),
            retry_after_ms=int(retry) if isinstance(retry, int) else None,
            client_msg_id=str(client_msg_id) if client_msg_id else None,
        )
        if client_msg_id in self.pending and code not in RETRYABLE:
            return Reply([error], self._confirm(str(client_msg_id)))
        return Reply([error])

    # -- helpers -----------------------------------------------------------------------------

    def _confirm_own(self, messages: Iterable[ChatMessage]) -> list[dict[str, Any]]:
        """Stored messages of ours confirm their pending sends (the ack may have been lost)."""
        send: list[dict[str, Any]] = []
        for message in messages:
            if message.client_msg_id is not None and message.user_id == self.user_id:
                send += self._confirm(message.client_msg_id)
        return send

    def _accept(self, messages: Iterable[ChatMessage], *, recovered: bool) -> list[Event]:
        events: list[Event] = []
        for message in messages:
            state = self.rooms.get(message.room)
            if state is None:
                continue  # a room we left: late deliveries are dropped
            if state.remember(message):
                events.append(MessageShown(message, own=message.user_id == self.user_id, recovered=recovered))
        return events

    def _add_room(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms[room] = RoomState(room, joined_at=self._clock())

    def _sender(self) -> str | None:
        return self.user_id if self.send_user_id else None
