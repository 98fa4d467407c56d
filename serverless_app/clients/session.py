"""Client-side chat state, without I/O: rooms, what was seen, what is pending, how to recover.

A :class:`ChatSession` turns user intents into client frames (``join``, ``send``…) and server
frames into :class:`Event` values to display (``receive``), de-duplicating messages by
``message_id`` and remembering each room's newest cursor. After a reconnect,
:meth:`ChatSession.recovery_requests` asks each room for everything ``after`` its newest cursor
minus a 30 s overlap (docs/protocol.md, "Recovery after a reconnect"); history pages are
followed until ``next_cursor`` is null, and unacknowledged sends are retried with the same
``client_msg_id`` (the server never stores a retried one twice).

Rooms have a visibility (``public``, ``private``, ``direct``) and the user a role in them
(``owner``, ``admin``, ``member``, ``invited``); the session remembers both from ``joined`` and
``rooms`` frames, names direct rooms after the other user (``@bob``, :meth:`ChatSession.label`)
and builds the moderation frames (``createRoom``, ``invite``, ``kick``…). A room the user is
kicked or banned from is forgotten, so a reconnect does not ask for it again. When the server
answers ``token_expired`` (and closes the connection), :attr:`Reply.reconnect` tells the
transport to reconnect with a fresh token; requests left unanswered are sent again on the new
connection, like unacknowledged messages.

Who is online is kept per room in one of two forms (docs/protocol.md, "Presence in large
rooms"): ``live``, a list kept up to date by ``presence`` events; ``on_demand``, the server's
``count`` and the users of the pages fetched so far (:meth:`ChatSession.presence`, then
:meth:`ChatSession.presence_more` after ``next_cursor``). ``presenceMode`` switches the form and
fetches the first page again.

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

from serverless_app.chat.protocol import ROOM_NAME, USER_ID

__all__ = [
    "RECOVERY_OVERLAP_S",
    "Acked",
    "ChatMessage",
    "ChatSession",
    "Connected",
    "Event",
    "HistoryShown",
    "Invited",
    "Joined",
    "Left",
    "MessageShown",
    "Pending",
    "PresenceChanged",
    "PresenceListed",
    "PresenceModeChanged",
    "Recovered",
    "Reply",
    "RoomInfo",
    "RoomState",
    "RoomUpdated",
    "RoomsListed",
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
RETRYABLE = frozenset(
    {"rate_limited", "unknown_connection", "storage_unavailable", "internal_error", "token_expired"}
)
"""Error codes after which a pending send is retried (same ``client_msg_id``) rather than dropped."""
SEEN_PER_ROOM = 10_000
"""Message ids remembered per room for de-duplication (oldest forgotten first)."""
LIST_PAGE = 50
"""Page size of ``listRooms`` requests."""
PRESENCE_PAGE = 50
"""Users per ``getPresence`` page (``/who``, ``/who more``)."""
LIVE, ON_DEMAND = "live", "on_demand"
"""How a room's presence is kept up to date (docs/protocol.md, "Presence in large rooms")."""
REPLAY_WINDOW_S = 30.0
"""Unanswered requests this recent are sent again after a reconnect forced by the server
(``token_expired``, ``unknown_connection``): the refused frame was not applied."""
RECONNECT_FRESH_TOKEN = "fresh_token"
RECONNECT = "reconnect"
MODERATION = {"invite": "invited", "kick": "kicked", "ban": "banned", "unban": "unbanned", "setRole": "role"}
"""Moderation actions and the ``change`` of the ``roomUpdated`` that answers each."""
ANNOUNCE_PAIR_S = 10.0
"""Frames telling the same change (``left`` kicked and ``roomUpdated`` kicked) this close are shown once."""
MAX_CONNECT_ROOMS = 20
"""Rooms the connect URL may name (the protocol's limit)."""
DIRECT_PREFIX = "dm-"
"""Room names starting with this are reserved for direct conversations."""

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
    return bool(USER_ID.fullmatch(user_id))


def valid_room(room: str) -> bool:
    """Whether ``room`` follows the protocol's room name pattern."""
    return bool(ROOM_NAME.fullmatch(room))


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
    visibility: str | None = None
    """``public``, ``private`` or ``direct`` (None until the server said)."""
    role: str | None = None
    """The user's standing: ``owner``, ``admin``, ``member`` (None in an ownerless public room)."""
    peer: str | None = None
    """The other user of a direct room."""
    presence_mode: str = LIVE
    """``live``: ``presence`` events keep :attr:`users` up to date; ``on_demand``: the room is
    too large for that, :attr:`users` holds the pages fetched so far and :attr:`online` the
    server's count."""
    online: int = 0
    """How many users are online in the room (the server's ``count``)."""
    users: set[str] = field(default_factory=set)
    """Who is online, as far as the pages fetched so far (and, while live, presence events) tell."""
    presence_cursor: str | None = None
    """Where the next page of who is online starts (``after``), None after the last page."""

    def set_presence(
        self,
        users: Iterable[str],
        count: int | None,
        mode: str | None,
        next_cursor: str | None,
        *,
        first: bool,
    ) -> None:
        """Apply a page of who is online: the first one replaces what was known, the next ones add."""
        if first:
            self.users = set(users)
        else:
            self.users.update(users)
        self.online = max(count if count is not None else 0, len(self.users))
        self.presence_mode = mode or self.presence_mode
        self.presence_cursor = next_cursor

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
    """This connection joined ``room``: ``users`` is the first page of who is online, ``count``
    how many are in all (None from a server that does not say), ``more`` whether a next page
    exists (``/who more``), ``mode`` ``live`` or ``on_demand``."""

    room: str
    users: tuple[str, ...]
    visibility: str | None = None
    role: str | None = None
    peer: str | None = None
    count: int | None = None
    mode: str | None = None
    more: bool = False


@dataclass(frozen=True)
class Left:
    """This connection left ``room``: ``reason`` ``left`` (asked), ``kicked`` or ``banned`` (``by`` whom)."""

    room: str
    reason: str = "left"
    by: str | None = None


@dataclass(frozen=True)
class Invited:
    """``by`` invited the user to ``room`` (``visibility`` ``direct``: opened a direct conversation)."""

    room: str
    by: str
    visibility: str | None = None


@dataclass(frozen=True)
class RoomUpdated:
    """A moderation change in ``room``: ``by`` ``change``d (invited, kicked, banned, unbanned, role) ``user_id``."""

    room: str
    user_id: str
    change: str
    by: str
    role: str | None = None


@dataclass(frozen=True)
class RoomInfo:
    """One room of a ``rooms`` answer."""

    room: str
    visibility: str
    role: str | None = None
    peer: str | None = None


@dataclass(frozen=True)
class RoomsListed:
    """The answer to :meth:`ChatSession.list_rooms`, every page of it."""

    rooms: tuple[RoomInfo, ...]
    joined: frozenset[str] = frozenset()
    """The rooms this connection is in, when the listing ended."""
    active: str | None = None


@dataclass(frozen=True)
class PresenceChanged:
    room: str
    user_id: str
    event: str


@dataclass(frozen=True)
class PresenceListed:
    """A page of who is online in ``room`` (``continued``: a next page, after ``/who more``).

    ``count`` is how many are online in all, ``more`` whether another page follows, ``mode``
    ``live`` or ``on_demand``; ``refresh`` marks the first page fetched by the session itself
    after a :class:`PresenceModeChanged` (to keep its list right, not asked by the user)."""

    room: str
    users: tuple[str, ...]
    count: int | None = None
    mode: str | None = None
    more: bool = False
    continued: bool = False
    refresh: bool = False


@dataclass(frozen=True)
class PresenceModeChanged:
    """``room`` crossed the presence threshold: ``on_demand`` (joins and leaves are no longer
    announced, ask ``/who``) or ``live`` again; ``count`` users are online."""

    room: str
    mode: str
    count: int


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
    | Invited
    | RoomUpdated
    | RoomsListed
    | PresenceChanged
    | PresenceListed
    | PresenceModeChanged
    | Typing
    | ServerError
    | Unrecognised
)


@dataclass
class Reply:
    """What a server frame produced: events to show and frames to send back."""

    events: list[Event] = field(default_factory=list)
    send: list[dict[str, Any]] = field(default_factory=list)
    reconnect: str | None = None
    """Set when the connection must be replaced: ``fresh_token`` (the token expired: get a new
    one first) or ``reconnect`` (the server forgot the connection)."""


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
        presence_page: int = PRESENCE_PAGE,
    ) -> None:
        self.user_id = user_id
        self.presence_page = max(1, min(100, presence_page))
        """Users per ``getPresence`` page (the protocol allows 1–100)."""
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
        """Rooms asked for with joinRoom or createRoom and not yet answered."""
        self._requested_direct: set[str] = set()
        """Users asked for with openDirect and not yet answered."""
        self.peers: dict[str, str] = {}
        """Direct rooms known to the session: room name → the other user."""
        self._listing: list[RoomInfo] | None = None
        self._list_cursors: set[str] = set()
        self._outstanding: list[tuple[tuple[str, ...], float, dict[str, Any]]] = []
        """Requests sent and not yet answered: (the answer's key, when sent, the frame)."""
        self._replay: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        """Requests refused because the connection was being replaced, to send on the next one."""
        self._connect_asked: list[str] = []
        """The rooms named in the last connect URL: those the welcome leaves out were refused."""
        self._announced: dict[tuple[str, str], float] = {}
        """(room, change) just told by one of two frames saying the same (left + roomUpdated), and when."""
        self._refreshes: list[dict[str, Any]] = []
        """getPresence frames the session sent on its own (after presenceMode), by identity."""

    # -- intents -> frames -------------------------------------------------------------------

    def connect_rooms(self) -> list[str]:
        """The rooms to name in the connect URL (``rooms=``, at most 20)."""
        self._connect_asked = list(self.rooms)[:MAX_CONNECT_ROOMS]
        return list(self._connect_asked)

    def join(self, room: str) -> dict[str, Any]:
        """A joinRoom frame; the room becomes active once ``joined`` arrives."""
        self._requested.add(room)
        return self._track(("joined", room), {"action": "joinRoom", "room": room})

    def leave(self, room: str) -> dict[str, Any]:
        return self._track(("left", room), {"action": "leaveRoom", "room": room})

    def presence(self, room: str) -> dict[str, Any]:
        """A getPresence frame for the first page of who is online (``/who``)."""
        frame = {"action": "getPresence", "room": room, "limit": self.presence_page}
        return self._track(("presenceList", room), frame)

    def presence_more(self, room: str) -> dict[str, Any] | None:
        """A getPresence frame for the next page (``/who more``); None when the last page was shown."""
        state = self.rooms.get(room)
        if state is None or state.presence_cursor is None:
            return None
        frame = {
            "action": "getPresence",
            "room": room,
            "limit": self.presence_page,
            "after": state.presence_cursor,
        }
        return self._track(("presenceList", room), frame)

    def create(self, room: str, visibility: str = "private") -> dict[str, Any]:
        """A createRoom frame (``private`` or ``public``); the room becomes active once ``joined`` arrives."""
        if visibility not in ("private", "public"):
            raise ValueError(f"visibility must be private or public, not {visibility!r}")
        if room.startswith(DIRECT_PREFIX):
            raise ValueError(f"names starting with {DIRECT_PREFIX!r} are reserved for direct conversations")
        self._requested.add(room)
        return self._track(("joined", room), {"action": "createRoom", "room": room, "visibility": visibility})

    def moderate(self, action: str, room: str, user_id: str, *, role: str | None = None) -> dict[str, Any]:
        """An ``invite``, ``kick``, ``ban``, ``unban`` or ``setRole`` (with ``role``: admin or member) frame."""
        if action not in MODERATION:
            raise ValueError(f"not a moderation action: {action!r}")
        frame: dict[str, Any] = {"action": action, "room": room, "user_id": user_id}
        if action == "setRole":
            if role not in ("admin", "member"):
                raise ValueError(f"role must be admin or member, not {role!r}")
            frame["role"] = role
        return self._track(("roomUpdated", room, user_id, MODERATION[action]), frame)

    def open_direct(self, user_id: str) -> dict[str, Any]:
        """An openDirect frame; the direct room becomes active once ``joined`` arrives."""
        self._requested_direct.add(user_id)
        return self._track(("direct", user_id), {"action": "openDirect", "user_id": user_id})

    def list_rooms(self) -> dict[str, Any]:
        """A listRooms frame; its pages are followed and shown together as one :class:`RoomsListed`."""
        self._listing = []
        self._list_cursors = set()
        return self._track(("rooms",), {"action": "listRooms", "limit": LIST_PAGE})

    # -- names -------------------------------------------------------------------------------

    def label(self, room: str) -> str:
        """How to show a room: ``@bob`` for the direct conversation with bob, ``#room`` otherwise."""
        peer = self.peers.get(room)
        return f"@{peer}" if peer else f"#{room}"

    def direct_room(self, user_id: str) -> str | None:
        """The known direct room with ``user_id``, if any."""
        return next((room for room, peer in self.peers.items() if peer == user_id), None)

    def resolve(self, name: str) -> str | None:
        """The room a user typed: ``#room`` or ``room`` as is, ``@bob`` the direct room with bob (None if unknown)."""
        if name.startswith("@"):
            return self.direct_room(name[1:])
        return name.lstrip("#")

    def history(self, room: str, limit: int = JOIN_HISTORY) -> dict[str, Any]:
        """An explicit history request (``/history``): its answer is shown in full."""
        state = self.rooms.get(room)
        if state is not None:
            state.pages.append("explicit")
        return self._track(
            ("history", room), {"action": "getHistory", "room": room, "limit": max(1, min(100, limit))}
        )

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

        One :meth:`recovery_request` per room, the requests the server refused while replacing the
        connection (``token_expired``, ``unknown_connection``), then the unacknowledged send again.
        """
        if connection_id is not None:
            self.connection_id = connection_id
        replay, self._replay = self._replay, []
        self._outstanding.clear()  # answers to the previous connection's requests will not come
        replayed = [self._track(key, frame) for key, frame in replay if key[0] != "history"]
        return self.recovery_requests() + replayed + self.resend_pending()

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
        return self._track(
            ("history", room), {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": after}
        )

    def recovery_requests(self) -> list[dict[str, Any]]:
        """:meth:`recovery_request` for every room."""
        return [self.recovery_request(room) for room in self.rooms]

    def _first_page(self, room: str) -> dict[str, Any]:
        self.rooms[room].pages.append("first")
        return self._track(("history", room), {"action": "getHistory", "room": room, "limit": JOIN_HISTORY})

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
        events: list[Event] = [Connected(self.connection_id, self.user_id, rooms)]
        for room in self._connect_asked:
            if room not in rooms and room in self.rooms:
                # Refused on reconnect (kicked or banned while away): forget it like a left.
                send += self._forget(room)
                events.append(Left(room, "removed"))
        self._connect_asked = []
        return Reply(events, send)

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
        self._answered(("history", room))
        state = self.rooms.get(room)
        if state is None:
            return Reply([HistoryShown(room, tuple(messages), more=bool(next_cursor))])
        send = self._confirm_own(messages)
        if frame.get("direction") == "after":
            events = self._accept(messages, recovered=True)
            state.recovered += len(events)
            if next_cursor:
                page = {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": next_cursor}
                return Reply(events, [self._track(("history", room), page), *send])
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
        visibility = _optional(frame, "visibility")
        role = _optional(frame, "role")
        peer = _optional(frame, "peer")
        asked = room in self._requested or (peer is not None and peer in self._requested_direct)
        self._requested.discard(room)
        self._answered(("joined", room))
        if peer is not None:
            self.peers[room] = peer
            self._requested_direct.discard(peer)
            self._answered(("direct", peer))
        self._announced.pop((room, "invited"), None)
        send: list[dict[str, Any]] = []
        if room not in self.rooms:
            self._add_room(room)
            send.append(self._first_page(room))
        state = self.rooms[room]
        state.visibility, state.role, state.peer = visibility or state.visibility, role, peer
        if asked:
            self.active_room = room
        count = _count(frame)
        mode = _optional(frame, "mode")
        next_cursor = _optional(frame, "next_cursor")
        state.set_presence(users, count, mode, next_cursor, first=True)
        joined = Joined(room, users, visibility, role, peer, count, mode, more=next_cursor is not None)
        return Reply([joined], send)

    def _on_left(self, frame: dict[str, Any]) -> Reply:
        """Left, kicked or banned: the room is forgotten (a reconnect does not ask for it again)."""
        room = str(frame["room"])
        reason = _optional(frame, "reason") or "left"
        self._answered(("left", room))
        send = self._forget(room)
        if reason in ("kicked", "banned"):
            self._told((room, reason))  # the roomUpdated telling the same is then not shown
        return Reply([Left(room, reason, _optional(frame, "by"))], send)

    def _on_invited(self, frame: dict[str, Any]) -> Reply:
        room, by = str(frame["room"]), str(frame["by"])
        visibility = _optional(frame, "visibility")
        if visibility == "direct":
            self.peers[room] = by
        if room in self.rooms:  # e.g. the peer opened the direct conversation this client is in
            return Reply()
        if not self._told((room, "invited")):
            return Reply()
        return Reply([Invited(room, by, visibility)])

    def _on_roomUpdated(self, frame: dict[str, Any]) -> Reply:
        room, user_id, change, by = (str(frame[k]) for k in ("room", "user_id", "change", "by"))
        role = _optional(frame, "role")
        self._answered(("roomUpdated", room, user_id, change))
        if user_id == self.user_id:
            state = self.rooms.get(room)
            if state is not None and change == "role":
                state.role = role
            if change == "invited":  # the invited frame says the same: show whichever comes first
                if not self._told((room, change)):
                    return Reply()
                return Reply([Invited(room, by)])
            told_at = self._announced.get((room, change))
            recent = told_at is not None and self._clock() - told_at <= ANNOUNCE_PAIR_S
            if change in ("kicked", "banned") and (state is not None or recent):
                self._told((room, change))  # this connection gets (or got) a left saying it
                return Reply()
        return Reply([RoomUpdated(room, user_id, change, by, role)])

    def _on_rooms(self, frame: dict[str, Any]) -> Reply:
        infos = [
            RoomInfo(
                room=str(r["room"]),
                visibility=str(r["visibility"]),
                role=_optional(r, "role"),
                peer=_optional(r, "peer"),
            )
            for r in frame["rooms"]
        ]
        self._answered(("rooms",))
        for info in infos:
            if info.peer is not None:
                self.peers[info.room] = info.peer
            state = self.rooms.get(info.room)
            if state is not None:
                state.visibility, state.role = info.visibility, info.role
                state.peer = info.peer or state.peer
        listing = self._listing if self._listing is not None else []
        listing += [info for info in infos if all(info.room != known.room for known in listing)]
        next_cursor = _optional(frame, "next_cursor")
        if next_cursor and next_cursor not in self._list_cursors:  # a repeated cursor would loop forever
            self._listing = listing
            self._list_cursors.add(next_cursor)
            page = {"action": "listRooms", "limit": LIST_PAGE, "after": next_cursor}
            return Reply(send=[self._track(("rooms",), page)])
        self._listing, self._list_cursors = None, set()
        return Reply([RoomsListed(tuple(listing), frozenset(self.rooms), self.active_room)])

    def _on_presence(self, frame: dict[str, Any]) -> Reply:
        room, user_id, event = str(frame["room"]), str(frame["user_id"]), str(frame["event"])
        state = self.rooms.get(room)
        if state is not None:
            # Sent while the room is live; one overtaken by a presenceMode is still true news.
            if event == "join" and user_id not in state.users:
                state.users.add(user_id)
                state.online += 1
            elif event == "leave" and (user_id in state.users or state.presence_cursor is not None):
                state.users.discard(user_id)  # or one of a page not fetched yet
                state.online = max(0, state.online - 1)
            state.online = max(state.online, len(state.users))
        return Reply([PresenceChanged(room, user_id, event)])

    def _on_presenceList(self, frame: dict[str, Any]) -> Reply:
        room = str(frame["room"])
        users = tuple(str(u) for u in frame["users"])
        asked = next((f for k, _, f in self._outstanding if k == ("presenceList", room)), None)
        asked = asked or next((f for k, f in self._replay if k == ("presenceList", room)), None)
        continued = asked is not None and "after" in asked
        refresh = asked is not None and any(asked is f for f in self._refreshes)
        self._refreshes = [f for f in self._refreshes if f is not asked]
        self._answered(("presenceList", room))
        count, mode, next_cursor = _count(frame), _optional(frame, "mode"), _optional(frame, "next_cursor")
        state = self.rooms.get(room)
        if state is not None:
            state.set_presence(users, count, mode, next_cursor, first=not continued)
        listed = PresenceListed(room, users, count, mode, next_cursor is not None, continued, refresh)
        return Reply([listed])

    def _on_presenceMode(self, frame: dict[str, Any]) -> Reply:
        """The room crossed the threshold: note the mode and count, and fetch the first page again
        (an ``on_demand`` room's list is no longer kept up to date; a ``live`` one is from now on)."""
        room, mode, count = str(frame["room"]), str(frame["mode"]), int(frame["count"])
        if mode not in (LIVE, ON_DEMAND):
            raise ValueError(mode)
        state = self.rooms.get(room)
        if state is None:
            return Reply([PresenceModeChanged(room, mode, count)])
        state.presence_mode, state.online = mode, count
        refresh = self.presence(room)
        self._refreshes = [*self._refreshes[-20:], refresh]
        return Reply([PresenceModeChanged(room, mode, count)], [refresh])

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
        if code in ("token_expired", "unknown_connection"):
            # The server is dropping this connection: what it refused was not applied, and
            # requests still unanswered will not be answered. Send them again once reconnected.
            now = self._clock()
            self._replay += [(k, f) for k, sent, f in self._outstanding if now - sent <= REPLAY_WINDOW_S]
            self._outstanding.clear()
            reconnect = RECONNECT_FRESH_TOKEN if code == "token_expired" else RECONNECT
            return Reply([error], reconnect=reconnect)
        if client_msg_id in self.pending and code not in RETRYABLE:
            return Reply([error], self._confirm(str(client_msg_id)))
        if not client_msg_id and self._outstanding:
            # Errors do not say which request they answer; requests are answered in order, mostly.
            actions = _ANSWERS_CODE.get(code)
            index = next(
                (
                    i
                    for i, (_, _, f) in enumerate(self._outstanding)
                    if actions is None or f["action"] in actions
                ),
                0,
            )
            key = self._outstanding.pop(index)[0]
            self._refused(key)
            if key[0] == "history" and key[1] not in self.rooms and code in ("forbidden", "not_found"):
                return Reply()  # the recovery of a room refused on reconnect (already told)
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

    def _forget(self, room: str) -> list[dict[str, Any]]:
        """Drop a room this connection is no longer in, and its pending sends; the next send, if any."""
        self._requested.discard(room)
        self.rooms.pop(room, None)
        send: list[dict[str, Any]] = []
        for client_msg_id in [p.client_msg_id for p in self.pending.values() if p.room == room]:
            send += self._confirm(client_msg_id)
        if self.active_room == room:
            self.active_room = next(reversed(self.rooms), None) if self.rooms else None
        return send

    def _track(self, key: tuple[str, ...], frame: dict[str, Any]) -> dict[str, Any]:
        """Remember a request until the frame answering it (``key``) arrives."""
        self._outstanding.append((key, self._clock(), frame))
        del self._outstanding[:-100]
        return frame

    def _answered(self, key: tuple[str, ...]) -> None:
        """The request answered by ``key`` waits no more (nor is it sent again after a reconnect)."""
        for index, (waiting, _, _) in enumerate(self._outstanding):
            if waiting == key:
                del self._outstanding[index]
                return
        for index, (waiting, _) in enumerate(self._replay):
            if waiting == key:  # answered after all, late, by the connection being replaced
                del self._replay[index]
                return

    def _refused(self, key: tuple[str, ...]) -> None:
        """A request was refused: it will make no room active, and a listing ends."""
        if key[0] == "joined":
            self._requested.discard(key[1])
        elif key[0] == "direct":
            self._requested_direct.discard(key[1])
        elif key[0] == "rooms":
            self._listing, self._list_cursors = None, set()

    def _told(self, key: tuple[str, str]) -> bool:
        """Two frames may tell the user the same thing: True for the first, False for a second one
        arriving within :data:`ANNOUNCE_PAIR_S` (a later one is news: a new invitation, a new kick)."""
        now = self._clock()
        for stale in [k for k, at in self._announced.items() if now - at > ANNOUNCE_PAIR_S]:
            del self._announced[stale]
        if self._announced.pop(key, None) is not None:
            return False
        self._announced[key] = now
        return True

    def _add_room(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms[room] = RoomState(room, joined_at=self._clock())

    def _sender(self) -> str | None:
        return self.user_id if self.send_user_id else None


_ANSWERS_CODE = {"room_exists": ("createRoom",), "invalid_cursor": ("getHistory", "listRooms")}
"""Error codes only some requests can get: an error is matched to the oldest such request."""


def _count(frame: Mapping[str, Any]) -> int | None:
    value = frame.get("count")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional(frame: Mapping[str, Any], key: str) -> str | None:
    value = frame.get(key)
    return None if value is None else str(value)
