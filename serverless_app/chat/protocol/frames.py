"""Server frames: one builder per action, the one place a server frame is shaped (shapes in
``protocol.schema.json``).

Called by the service's modules (each operation returns frames built here), by
``handlers/default.py`` (:func:`error_frame`) and by the local emulator. The history builders
cut their page to fit with :func:`~serverless_app.chat.protocol.encoding.fit_messages`.
"""

from __future__ import annotations

from typing import Any, Literal

from serverless_app.chat.errors import ChatError, RateLimited
from serverless_app.chat.models import Role, StoredMessage, Visibility
from serverless_app.chat.protocol.encoding import fit_messages
from serverless_app.chat.protocol.schema import ClientFrame, ServerFrame

__all__ = [
    "ack_frame",
    "error_frame",
    "history_frame",
    "invited_frame",
    "joined_frame",
    "left_frame",
    "message_frame",
    "presence_frame",
    "presence_list_frame",
    "presence_mode_frame",
    "room_updated_frame",
    "rooms_frame",
    "typing_frame",
    "user_history_frame",
    "welcome_frame",
]


def welcome_frame(connection_id: str, user_id: str, rooms: list[str]) -> ServerFrame:
    return {
        "action": "welcome",
        "connection_id": connection_id,
        "user_id": user_id,
        "rooms": rooms,
        "message": f"Welcome to wschat, {user_id}! You are in: {', '.join(rooms) or 'no room'}.",
    }


def message_frame(message: StoredMessage) -> ServerFrame:
    """A stored message as clients see it; its ``sent_at`` is the frame's ``timestamp``."""
    frame: ServerFrame = {
        "action": "message",
        "room": message.room,
        "user_id": message.user_id,
        "message": message.message,
        "timestamp": message.sent_at,
        "message_id": message.message_id,
        "cursor": message.cursor,
    }
    if message.client_msg_id is not None:
        frame["client_msg_id"] = message.client_msg_id
    return frame


def ack_frame(stored: StoredMessage, *, client_msg_id: str, duplicate: bool, request_id: str) -> ServerFrame:
    return {
        "action": "ack",
        "room": stored.room,
        "message_id": stored.message_id,
        "timestamp": stored.sent_at,
        "cursor": stored.cursor,
        "client_msg_id": client_msg_id,
        "duplicate": duplicate,
        "request_id": request_id,
    }


def joined_frame(
    room: str, presence: dict[str, Any], *, visibility: Visibility, role: Role | None, peer: str | None
) -> ServerFrame:
    """``presence`` is a page of who is online (``users``, ``count``, ``mode``, ``next_cursor``)."""
    frame: ServerFrame = {"action": "joined", "room": room, **presence, "visibility": visibility}
    if role is not None:
        frame["role"] = role
    if peer is not None:
        frame["peer"] = peer
    return frame


def left_frame(
    room: str, reason: Literal["left", "kicked", "banned"], *, by: str | None = None
) -> ServerFrame:
    frame: ServerFrame = {"action": "left", "room": room, "reason": reason}
    if by is not None:
        frame["by"] = by
    return frame


def presence_frame(room: str, user_id: str, event: Literal["join", "leave"]) -> ServerFrame:
    return {"action": "presence", "room": room, "user_id": user_id, "event": event}


def presence_mode_frame(room: str, mode: str, count: int) -> ServerFrame:
    return {"action": "presenceMode", "room": room, "mode": mode, "count": count}


def presence_list_frame(room: str, presence: dict[str, Any]) -> ServerFrame:
    return {"action": "presenceList", "room": room, **presence}


def history_frame(
    room: str,
    messages: list[StoredMessage],
    *,
    next_cursor: str | None,
    direction: Literal["before", "after"],
) -> ServerFrame:
    """A page of a room's history, cut to fit a frame (:func:`fit_messages`)."""
    return fit_messages(
        {
            "action": "history",
            "room": room,
            "messages": [message_frame(m) for m in messages],
            "next_cursor": next_cursor,
            "direction": direction,
        }
    )


def user_history_frame(
    user_id: str, messages: list[StoredMessage], *, next_cursor: str | None
) -> ServerFrame:
    """A page of a user's messages, newest first, cut to fit a frame (:func:`fit_messages`)."""
    return fit_messages(
        {
            "action": "userHistory",
            "user_id": user_id,
            "messages": [message_frame(m) for m in messages],
            "next_cursor": next_cursor,
        }
    )


def typing_frame(room: str, user_id: str) -> ServerFrame:
    return {"action": "typing", "room": room, "user_id": user_id}


def room_updated_frame(
    room: str, user_id: str, *, by: str, change: str, role: Role | None = None
) -> ServerFrame:
    frame: ServerFrame = {
        "action": "roomUpdated",
        "room": room,
        "user_id": user_id,
        "by": by,
        "change": change,
    }
    if role is not None:
        frame["role"] = role
    return frame


def invited_frame(room: str, *, by: str, visibility: Visibility) -> ServerFrame:
    return {"action": "invited", "room": room, "by": by, "visibility": visibility}


def rooms_frame(entries: list[dict[str, Any]], next_cursor: str | None) -> ServerFrame:
    return {"action": "rooms", "rooms": entries, "next_cursor": next_cursor}


def error_frame(error: ChatError, request_id: str, refused: ClientFrame | None = None) -> ServerFrame:
    """The chat's refusal, to the sender only, naming what it refuses when the frame could be read:
    its action, room and client_msg_id."""
    frame: ServerFrame = {
        "action": "error",
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    }
    if isinstance(error, RateLimited):
        frame["retry_after_ms"] = error.retry_after_ms
    if refused is not None:
        frame["refused_action"] = refused["action"]
        for key in ("room", "client_msg_id"):
            if key in refused:
                frame[key] = refused[key]
    return frame
