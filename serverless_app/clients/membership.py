"""How a session applies the server frames about rooms and who is in them.

``joined``, ``left`` (also kicked or banned), ``invited`` and ``roomUpdated`` (moderation) change
which rooms the session is in, the user's role and the names of direct rooms; ``rooms`` pages
are gathered into one listing; ``presence``, ``presenceList`` and ``presenceMode`` keep each
room's :class:`~serverless_app.clients.rooms.RoomState` presence up to date. Dispatched by
:func:`serverless_app.clients.incoming.receive`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from serverless_app.clients.events import (
    Invited,
    Joined,
    Left,
    PresenceChanged,
    PresenceListed,
    PresenceModeChanged,
    Reply,
    RoomInfo,
    RoomsListed,
    RoomUpdated,
)
from serverless_app.clients.request_log import LIST_PAGE
from serverless_app.clients.rooms import LIVE, ON_DEMAND

if TYPE_CHECKING:
    from serverless_app.clients.session import ChatSession

__all__ = [
    "forget",
    "on_invited",
    "on_joined",
    "on_left",
    "on_presence",
    "on_presenceList",
    "on_presenceMode",
    "on_roomUpdated",
    "on_rooms",
]


def on_joined(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """This connection is in a room (asked for, created, direct, or the server's choice): keep it and
    load its first page; a room the user asked for becomes the active one."""
    room = str(frame["room"])
    users = tuple(str(u) for u in frame.get("users", ()))
    visibility = _optional(frame, "visibility")
    role = _optional(frame, "role")
    peer = _optional(frame, "peer")
    asked = room in session.requests.rooms or (peer is not None and peer in session.requests.directs)
    session.requests.rooms.discard(room)
    session.requests.answered(("joined", room))
    if peer is not None:
        session.peers[room] = peer
        session.requests.directs.discard(peer)
        session.requests.answered(("direct", peer))
    session.requests.announced.pop((room, "invited"), None)
    send: list[dict[str, Any]] = []
    if room not in session.rooms:
        session.add_room(room)
        send.append(session.first_page(room))
    state = session.rooms[room]
    state.visibility, state.role, state.peer = visibility or state.visibility, role, peer
    if asked:
        session.active_room = room
    count = _count(frame)
    mode = _optional(frame, "mode")
    next_cursor = _optional(frame, "next_cursor")
    state.set_presence(users, count, mode, next_cursor, first=True)
    joined = Joined(room, users, visibility, role, peer, count, mode, more=next_cursor is not None)
    return Reply([joined], send)


def on_left(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """Left, kicked or banned: the room is forgotten (a reconnect does not ask for it again)."""
    room = str(frame["room"])
    reason = _optional(frame, "reason") or "left"
    session.requests.answered(("left", room))
    send = forget(session, room)
    if reason in ("kicked", "banned"):
        session.requests.told((room, reason))  # the roomUpdated telling the same is then not shown
    return Reply([Left(room, reason, _optional(frame, "by"))], send)


def on_invited(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """The user was invited (or a direct conversation was opened): told once, whichever of this and
    the ``roomUpdated`` saying the same comes first."""
    room, by = str(frame["room"]), str(frame["by"])
    visibility = _optional(frame, "visibility")
    if visibility == "direct":
        session.peers[room] = by
    if room in session.rooms:  # e.g. the peer opened the direct conversation this client is in
        return Reply()
    if not session.requests.told((room, "invited")):
        return Reply()
    return Reply([Invited(room, by, visibility)])


def on_roomUpdated(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """A moderation change; one about the user is told once, with the ``invited`` or ``left``
    saying the same."""
    room, user_id, change, by = (str(frame[k]) for k in ("room", "user_id", "change", "by"))
    role = _optional(frame, "role")
    session.requests.answered(("roomUpdated", room, user_id, change))
    if user_id == session.user_id:
        state = session.rooms.get(room)
        if state is not None and change == "role":
            state.role = role
        if change == "invited":  # the invited frame says the same: show whichever comes first
            if not session.requests.told((room, change)):
                return Reply()
            return Reply([Invited(room, by)])
        recent = session.requests.told_recently((room, change))
        if change in ("kicked", "banned") and (state is not None or recent):
            session.requests.told((room, change))  # this connection gets (or got) a left saying it
            return Reply()
    return Reply([RoomUpdated(room, user_id, change, by, role)])


def on_rooms(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """A page of the room listing: the next page is asked for, the last one shows them all."""
    infos = [
        RoomInfo(
            room=str(r["room"]),
            visibility=str(r["visibility"]),
            role=_optional(r, "role"),
            peer=_optional(r, "peer"),
        )
        for r in frame["rooms"]
    ]
    log = session.requests
    log.answered(("rooms",))
    for info in infos:
        if info.peer is not None:
            session.peers[info.room] = info.peer
        state = session.rooms.get(info.room)
        if state is not None:
            state.visibility, state.role = info.visibility, info.role
            state.peer = info.peer or state.peer
    listing = log.listing if log.listing is not None else []
    listing += [info for info in infos if all(info.room != known.room for known in listing)]
    next_cursor = _optional(frame, "next_cursor")
    if next_cursor and next_cursor not in log.list_cursors:  # a repeated cursor would loop forever
        log.listing = listing
        log.list_cursors.add(next_cursor)
        page = {"action": "listRooms", "limit": LIST_PAGE, "after": next_cursor}
        return Reply(send=[log.track(("rooms",), page)])
    log.listing, log.list_cursors = None, set()
    return Reply([RoomsListed(tuple(listing), frozenset(session.rooms), session.active_room)])


def on_presence(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """Someone came online in a room or left it: a live room's list and count follow."""
    room, user_id, event = str(frame["room"]), str(frame["user_id"]), str(frame["event"])
    state = session.rooms.get(room)
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


def on_presenceList(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """A page of who is online: the first replaces what was known, a next one (``/who more``) adds."""
    room = str(frame["room"])
    users = tuple(str(u) for u in frame["users"])
    asked = session.requests.asked(("presenceList", room))
    continued = asked is not None and "after" in asked
    refresh = session.requests.was_refresh(asked)
    session.requests.answered(("presenceList", room))
    count, mode, next_cursor = _count(frame), _optional(frame, "mode"), _optional(frame, "next_cursor")
    state = session.rooms.get(room)
    if state is not None:
        state.set_presence(users, count, mode, next_cursor, first=not continued)
    listed = PresenceListed(room, users, count, mode, next_cursor is not None, continued, refresh)
    return Reply([listed])


def on_presenceMode(session: ChatSession, frame: dict[str, Any]) -> Reply:
    """The room crossed the threshold: note the mode and count, and fetch the first page again
    (an ``on_demand`` room's list is no longer kept up to date; a ``live`` one is from now on)."""
    room, mode, count = str(frame["room"]), str(frame["mode"]), int(frame["count"])
    if mode not in (LIVE, ON_DEMAND):
        raise ValueError(mode)
    state = session.rooms.get(room)
    if state is None:
        return Reply([PresenceModeChanged(room, mode, count)])
    state.presence_mode, state.online = mode, count
    refresh = session.requests.refreshing(session.presence(room))
    return Reply([PresenceModeChanged(room, mode, count)], [refresh])


def forget(session: ChatSession, room: str) -> list[dict[str, Any]]:
    """Drop a room this connection is no longer in, and its pending sends; the next send, if any."""
    session.requests.rooms.discard(room)
    session.rooms.pop(room, None)
    send = session.outbox.drop_room(room)
    if session.active_room == room:
        session.active_room = next(reversed(session.rooms), None) if session.rooms else None
    return send


def _count(frame: Mapping[str, Any]) -> int | None:
    value = frame.get("count")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional(frame: Mapping[str, Any], key: str) -> str | None:
    value = frame.get(key)
    return None if value is None else str(value)
