"""One user's client-side chat state, without I/O: :class:`ChatSession`.

A :class:`ChatSession` turns user intents into client frames (``join``, ``send``…) and server
frames into events to display (:meth:`ChatSession.receive`, which hands each frame to
:mod:`~serverless_app.clients.incoming`; the events are in :mod:`~serverless_app.clients.events`),
de-duplicating messages by ``message_id`` and remembering each room's newest cursor
(:class:`~serverless_app.clients.rooms.RoomState`). After a reconnect,
:meth:`ChatSession.recovery_requests` asks each room for everything ``after`` its newest cursor
minus a 30 s overlap (docs/protocol.md, "Recovery after a reconnect"); history pages are
followed until ``next_cursor`` is null, and unacknowledged sends are retried with the same
``client_msg_id`` (:mod:`~serverless_app.clients.outbox`; the server never stores a retried one
twice).

Rooms have a visibility (``public``, ``private``, ``direct``) and the user a role in them
(``owner``, ``admin``, ``member``, ``invited``); the session remembers both from ``joined`` and
``rooms`` frames, names direct rooms after the other user (``@bob``, :meth:`ChatSession.label`)
and builds the moderation frames (``createRoom``, ``invite``, ``kick``…). A room the user is
kicked or banned from is forgotten, so a reconnect does not ask for it again. When the server
answers ``token_expired`` (and closes the connection), ``Reply.reconnect`` tells the
transport to reconnect with a fresh token; requests left unanswered are sent again on the new
connection, like unacknowledged messages (:mod:`~serverless_app.clients.request_log`).

Who is online is kept per room in one of two forms (docs/protocol.md, "Presence in large
rooms"): ``live``, a list kept up to date by ``presence`` events; ``on_demand``, the server's
``count`` and the users of the pages fetched so far (:meth:`ChatSession.presence`, then
:meth:`ChatSession.presence_more` after ``next_cursor``). ``presenceMode`` switches the form and
fetches the first page again.

Any Python client (the terminal client, tests, bots) can drive one session per user.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from serverless_app.clients import incoming
from serverless_app.clients.events import Reply
from serverless_app.clients.messages import cursor_before, format_timestamp, validate_text
from serverless_app.clients.outbox import Outbox, Pending
from serverless_app.clients.request_log import LIST_PAGE, RECOVERY_PAGE, RequestLog
from serverless_app.clients.rooms import DIRECT_PREFIX, RoomState

__all__ = [
    "EMPTY_ROOM_OVERLAP_S",
    "JOIN_HISTORY",
    "MAX_CONNECT_ROOMS",
    "MODERATION",
    "PRESENCE_PAGE",
    "ChatSession",
]

JOIN_HISTORY = 20
"""Messages shown when a room is joined for the first time."""
EMPTY_ROOM_OVERLAP_S = 300.0
"""Recovery of a room that was empty when joined starts this long before the (client's) join time."""
PRESENCE_PAGE = 50
"""Users per ``getPresence`` page (``/who``, ``/who more``)."""
MODERATION = {"invite": "invited", "kick": "kicked", "ban": "banned", "unban": "unbanned", "setRole": "role"}
"""Moderation actions and the ``change`` of the ``roomUpdated`` that answers each."""
MAX_CONNECT_ROOMS = 20
"""Rooms the connect URL may name (the protocol's limit)."""


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
        self.outbox = Outbox(self._sender)
        """The messages typed and not yet acknowledged."""
        for room in rooms:
            self.add_room(room)
        self.active_room: str | None = next(iter(self.rooms), None)
        self.peers: dict[str, str] = {}
        """Direct rooms known to the session: room name → the other user."""
        self.requests = RequestLog(clock)
        """The requests sent and not yet answered."""

    # -- intents -> frames -------------------------------------------------------------------

    def connect_rooms(self) -> list[str]:
        """The rooms to name in the connect URL (``rooms=``, at most 20)."""
        self.requests.connect_rooms = list(self.rooms)[:MAX_CONNECT_ROOMS]
        return list(self.requests.connect_rooms)

    def join(self, room: str) -> dict[str, Any]:
        """A joinRoom frame; the room becomes active once ``joined`` arrives."""
        self.requests.rooms.add(room)
        return self.requests.track(("joined", room), {"action": "joinRoom", "room": room})

    def leave(self, room: str) -> dict[str, Any]:
        return self.requests.track(("left", room), {"action": "leaveRoom", "room": room})

    def presence(self, room: str) -> dict[str, Any]:
        """A getPresence frame for the first page of who is online (``/who``)."""
        frame = {"action": "getPresence", "room": room, "limit": self.presence_page}
        return self.requests.track(("presenceList", room), frame)

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
        return self.requests.track(("presenceList", room), frame)

    def create(self, room: str, visibility: str = "private") -> dict[str, Any]:
        """A createRoom frame (``private`` or ``public``); the room becomes active once ``joined`` arrives."""
        if visibility not in ("private", "public"):
            raise ValueError(f"visibility must be private or public, not {visibility!r}")
        if room.startswith(DIRECT_PREFIX):
            raise ValueError(f"names starting with {DIRECT_PREFIX!r} are reserved for direct conversations")
        self.requests.rooms.add(room)
        return self.requests.track(
            ("joined", room), {"action": "createRoom", "room": room, "visibility": visibility}
        )

    def moderate(self, action: str, room: str, user_id: str, *, role: str | None = None) -> dict[str, Any]:
        """An ``invite``, ``kick``, ``ban``, ``unban`` or ``setRole`` (with ``role``: admin or member) frame."""
        if action not in MODERATION:
            raise ValueError(f"not a moderation action: {action!r}")
        frame: dict[str, Any] = {"action": action, "room": room, "user_id": user_id}
        if action == "setRole":
            if role not in ("admin", "member"):
                raise ValueError(f"role must be admin or member, not {role!r}")
            frame["role"] = role
        return self.requests.track(("roomUpdated", room, user_id, MODERATION[action]), frame)

    def open_direct(self, user_id: str) -> dict[str, Any]:
        """An openDirect frame; the direct room becomes active once ``joined`` arrives."""
        self.requests.directs.add(user_id)
        return self.requests.track(("direct", user_id), {"action": "openDirect", "user_id": user_id})

    def list_rooms(self) -> dict[str, Any]:
        """A listRooms frame; its pages are followed and shown together as one :class:`RoomsListed`."""
        self.requests.listing = []
        self.requests.list_cursors = set()
        return self.requests.track(("rooms",), {"action": "listRooms", "limit": LIST_PAGE})

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
        return self.requests.track(
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
        frames = self.outbox.add(pending)
        return (frames[0] if frames else None), pending

    def resend_pending(self) -> list[dict[str, Any]]:
        """The oldest unacknowledged send again, same ``client_msg_id`` (the server de-duplicates).

        The others follow, one per acknowledgement.
        """
        return self.outbox.resend()

    @property
    def pending(self) -> dict[str, Pending]:
        """The messages sent and not yet acknowledged, by ``client_msg_id``, oldest first."""
        return self.outbox.pending

    @property
    def in_flight(self) -> str | None:
        """The ``client_msg_id`` of the send awaiting its ack, if any."""
        return self.outbox.in_flight

    def on_connected(self, connection_id: str | None = None) -> list[dict[str, Any]]:
        """Frames to send once a (re)connection is open, its rooms joined through the URL's ``rooms``.

        One :meth:`recovery_request` per room, the requests the server refused while replacing the
        connection (``token_expired``, ``unknown_connection``), then the unacknowledged send again.
        """
        if connection_id is not None:
            self.connection_id = connection_id
        replayed = self.requests.reconnected()
        return self.recovery_requests() + replayed + self.resend_pending()

    def recovery_request(self, room: str) -> dict[str, Any]:
        """The ``getHistory`` that fetches what ``room`` may have missed.

        After the newest cursor seen minus 30 s (paged forwards until ``next_cursor`` is null);
        for a room that was empty when joined, after the join time minus a generous 5 minutes
        (client and server clocks differ); for a room not yet shown, its newest page.
        """
        state = self.rooms[room]
        if state.newest_cursor is None and not state.synced:
            return self.first_page(room)
        state.recovered = 0
        if state.newest_cursor is not None:
            after = cursor_before(state.newest_cursor)
        else:
            joined = format_timestamp(datetime.fromtimestamp(state.joined_at, UTC))
            after = cursor_before(joined, EMPTY_ROOM_OVERLAP_S)
        return self.requests.track(
            ("history", room), {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": after}
        )

    def recovery_requests(self) -> list[dict[str, Any]]:
        """:meth:`recovery_request` for every room."""
        return [self.recovery_request(room) for room in self.rooms]

    # -- server frames -> events -------------------------------------------------------------

    def receive(self, frame: Any) -> Reply:
        """Apply one server frame (already parsed from JSON)."""
        return incoming.receive(self, frame)

    # -- shared with the frame handlers ------------------------------------------------------

    def add_room(self, room: str) -> None:
        """Keep state for ``room`` (a room in the connect URL, or joined)."""
        if room not in self.rooms:
            self.rooms[room] = RoomState(room, joined_at=self._clock())

    def first_page(self, room: str) -> dict[str, Any]:
        """A getHistory for the newest page of a room not yet shown (its new messages are shown)."""
        self.rooms[room].pages.append("first")
        return self.requests.track(
            ("history", room), {"action": "getHistory", "room": room, "limit": JOIN_HISTORY}
        )

    def _sender(self) -> str | None:
        return self.user_id if self.send_user_id else None
