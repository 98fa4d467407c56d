"""Server frames for the client tests, built as docs/protocol.md describes them."""

from __future__ import annotations

from typing import Any

from serverless_app.clients.events import MessageShown

ZERO = "0" * 32
"""The message id of a cursor that starts a recovery."""


def cursor(second: int, n: int) -> str:
    """The cursor of message ``n`` stored at second ``second`` of a fixed minute."""
    return f"2026-11-26T17:41:{second:02d}.000000Z#{n:032x}"


def message(
    room: str, second: int, n: int, user: str = "bob", text: str = "hi", **extra: Any
) -> dict[str, Any]:
    """A ``message`` frame (its cursor from ``second`` and ``n``)."""
    c = cursor(second, n)
    return {
        "action": "message",
        "room": room,
        "user_id": user,
        "message": text,
        "timestamp": c.split("#")[0],
        "message_id": c.split("#")[1],
        "cursor": c,
        **extra,
    }


def history(
    room: str, messages: list[dict[str, Any]], direction: str, next_cursor: str | None = None
) -> dict[str, Any]:
    """A ``history`` page answering a getHistory ``before`` or ``after`` a cursor."""
    return {
        "action": "history",
        "room": room,
        "messages": messages,
        "next_cursor": next_cursor,
        "direction": direction,
    }


def shown(reply_events: list[Any]) -> list[str]:
    """The message ids of the messages shown by these events."""
    return [e.message.message_id for e in reply_events if isinstance(e, MessageShown)]


def ack_for(room: str, client_msg_id: str, n: int, *, duplicate: bool = False) -> dict[str, Any]:
    """The ``ack`` of the send ``client_msg_id`` (stored as message ``n``)."""
    c = cursor(30, n)
    return {
        "action": "ack",
        "room": room,
        "message_id": c.split("#")[1],
        "timestamp": c.split("#")[0],
        "cursor": c,
        "client_msg_id": client_msg_id,
        "duplicate": duplicate,
    }


DM = "dm-" + "ab" * 16
"""A direct room's name."""


def error(code: str, **extra: Any) -> dict[str, Any]:
    """An ``error`` frame with this ``code``."""
    return {"action": "error", "code": code, "message": f"{code} message", "request_id": "r", **extra}


def joined(
    room: str, users: list[str], count: int, mode: str, next_cursor: str | None = None
) -> dict[str, Any]:
    """A ``joined`` frame of a public room with its presence (``count``, ``mode``, first page)."""
    return {
        "action": "joined",
        "room": room,
        "users": users,
        "count": count,
        "mode": mode,
        "next_cursor": next_cursor,
        "visibility": "public",
    }


def presence_list(
    room: str, users: list[str], count: int, mode: str, next_cursor: str | None = None
) -> dict[str, Any]:
    """A ``presenceList`` page."""
    return {
        "action": "presenceList",
        "room": room,
        "users": users,
        "count": count,
        "mode": mode,
        "next_cursor": next_cursor,
    }
