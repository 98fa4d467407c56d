"""How a :class:`~serverless_app.clients.session.ChatSession` applies server frames: :func:`receive`.

One handler per server action, each turning a frame into a
:class:`~serverless_app.clients.events.Reply`: the events to show and the frames to send back
(the next page of a recovery, the next pending send). The connection's and the messages'
frames (``welcome``, ``message``, ``ack``, ``history``, ``typing``, ``error``) are handled here,
those about rooms and presence in :mod:`~serverless_app.clients.membership`. A frame that is not
a JSON object with a known ``action``, or lacks what its action needs, becomes
:class:`~serverless_app.clients.events.Unrecognised`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from serverless_app.clients import membership
from serverless_app.clients.events import (
    RECONNECT,
    RECONNECT_FRESH_TOKEN,
    Acked,
    Connected,
    Event,
    HistoryShown,
    Left,
    MessageShown,
    Recovered,
    Reply,
    ServerError,
    Typing,
    Unrecognised,
)
from serverless_app.clients.messages import ChatMessage
from serverless_app.clients.request_log import RECOVERY_PAGE

if TYPE_CHECKING:
    from serverless_app.clients.session import ChatSession

__all__ = ["RETRYABLE", "receive"]

RETRYABLE = frozenset(
    {"rate_limited", "unknown_connection", "storage_unavailable", "internal_error", "token_expired"}
)
"""Error codes after which a pending send is retried (same ``client_msg_id``) rather than dropped."""
_GONE = ("forbidden", "not_found")
"""Error codes refusing a room (a recovery of it refused on reconnect is not told again)."""


def receive(session: ChatSession, frame: Any) -> Reply:
    """Apply one server frame (already parsed from JSON) to ``session``."""
    if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
        if isinstance(frame, dict) and frame.get("message") == "Internal server error":
            return Reply([ServerError("internal_error", "Internal server error (API Gateway)")])
        return Reply([Unrecognised(frame)])
    handler = _HANDLERS.get(frame["action"])
    if handler is None:
        return Reply([Unrecognised(frame)])
    try:
        return handler(session, frame)
    except (KeyError, TypeError, ValueError):
        return Reply([Unrecognised(frame)])


def _on_welcome(session: ChatSession, frame: dict[str, Any]) -> Reply:
    session.connection_id = str(frame["connection_id"])
    if frame.get("user_id"):
        session.user_id = str(frame["user_id"])
    rooms = tuple(str(r) for r in frame.get("rooms", ()))
    send: list[dict[str, Any]] = []
    for room in rooms:
        if room not in session.rooms:  # the server's default room, though we asked for none
            send.append(session.leave(room))
    events: list[Event] = [Connected(session.connection_id, session.user_id, rooms)]
    for room in session.requests.connect_rooms:
        if room not in rooms and room in session.rooms:
            # Refused on reconnect (kicked or banned while away): forget it like a left.
            send += membership.forget(session, room)
            events.append(Left(room, "removed"))
    session.requests.connect_rooms = []
    return Reply(events, send)


def _on_message(session: ChatSession, frame: dict[str, Any]) -> Reply:
    message = ChatMessage.from_frame(frame)
    send = _confirm_own(session, [message])
    return Reply(_accept(session, [message], recovered=False), send)


def _on_ack(session: ChatSession, frame: dict[str, Any]) -> Reply:
    client_msg_id = frame.get("client_msg_id")
    pending = session.pending.get(client_msg_id) if client_msg_id else None
    send = session.outbox.confirm(client_msg_id)
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
            user_id=session.user_id,
            text=pending.text,
            timestamp=str(frame["timestamp"]),
            message_id=str(frame["message_id"]),
            cursor=str(frame["cursor"]),
            client_msg_id=pending.client_msg_id,
        )
        events = _accept(session, [message], recovered=False) + events
    return Reply(events, send)


def _on_history(session: ChatSession, frame: dict[str, Any]) -> Reply:
    room = str(frame["room"])
    messages = sorted((ChatMessage.from_frame(m) for m in frame["messages"]), key=lambda m: m.cursor)
    next_cursor = frame.get("next_cursor")
    session.requests.answered(("history", room))
    state = session.rooms.get(room)
    if state is None:
        return Reply([HistoryShown(room, tuple(messages), more=bool(next_cursor))])
    send = _confirm_own(session, messages)
    if frame.get("direction") == "after":
        events = _accept(session, messages, recovered=True)
        state.recovered += len(events)
        if next_cursor:
            page = {"action": "getHistory", "room": room, "limit": RECOVERY_PAGE, "after": next_cursor}
            return Reply(events, [session.requests.track(("history", room), page), *send])
        state.synced = True
        return Reply([*events, Recovered(room, state.recovered)], send)
    kind = state.pages.popleft() if state.pages else "first"
    if kind == "explicit":
        for message in messages:
            state.remember(message)
        return Reply([HistoryShown(room, tuple(messages), more=bool(next_cursor))], send)
    state.synced = True
    accepted = _accept(session, messages, recovered=True)
    fresh = tuple(e.message for e in accepted if isinstance(e, MessageShown))
    return Reply([HistoryShown(room, fresh, more=bool(next_cursor))], send)


def _on_typing(session: ChatSession, frame: dict[str, Any]) -> Reply:
    if frame.get("user_id") == session.user_id:
        return Reply()
    return Reply([Typing(str(frame["room"]), str(frame["user_id"]))])


def _on_error(session: ChatSession, frame: dict[str, Any]) -> Reply:
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
        session.requests.connection_dropped()
        reconnect = RECONNECT_FRESH_TOKEN if code == "token_expired" else RECONNECT
        return Reply([error], reconnect=reconnect)
    if client_msg_id in session.pending and code not in RETRYABLE:
        return Reply([error], session.outbox.confirm(str(client_msg_id)))
    # Errors do not say which request they answer; requests are answered in order, mostly.
    key = None if client_msg_id else session.requests.refuse_oldest(code)
    if key is not None and key[0] == "history" and key[1] not in session.rooms and code in _GONE:
        return Reply()  # the recovery of a room refused on reconnect (already told)
    return Reply([error])


def _confirm_own(session: ChatSession, messages: Iterable[ChatMessage]) -> list[dict[str, Any]]:
    """Stored messages of ours confirm their pending sends (the ack may have been lost)."""
    send: list[dict[str, Any]] = []
    for message in messages:
        if message.client_msg_id is not None and message.user_id == session.user_id:
            send += session.outbox.confirm(message.client_msg_id)
    return send


def _accept(session: ChatSession, messages: Iterable[ChatMessage], *, recovered: bool) -> list[Event]:
    events: list[Event] = []
    for message in messages:
        state = session.rooms.get(message.room)
        if state is None:
            continue  # a room we left: late deliveries are dropped
        if state.remember(message):
            events.append(MessageShown(message, own=message.user_id == session.user_id, recovered=recovered))
    return events


_HANDLERS: dict[str, Callable[[ChatSession, dict[str, Any]], Reply]] = {
    "welcome": _on_welcome,
    "message": _on_message,
    "ack": _on_ack,
    "history": _on_history,
    "joined": membership.on_joined,
    "left": membership.on_left,
    "invited": membership.on_invited,
    "roomUpdated": membership.on_roomUpdated,
    "rooms": membership.on_rooms,
    "presence": membership.on_presence,
    "presenceList": membership.on_presenceList,
    "presenceMode": membership.on_presenceMode,
    "typing": _on_typing,
    "error": _on_error,
}
"""The handler of each server action."""
