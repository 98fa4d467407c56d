"""Messages: ``sendMessage`` (stored before it is delivered), ``getHistory``, ``getUserHistory``.

Called by the façade once the frame's rule and rate were applied; sending to a room not yet
joined joins it through ``membership``. Storing first and reading the room's members at
delivery time is what makes recovery after a reconnect gap-free (see ``docs/protocol.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from serverless_app.chat.access import may_read
from serverless_app.chat.errors import Forbidden
from serverless_app.chat.models import ConnectionRecord, StoredMessage
from serverless_app.chat.protocol import (
    ClientFrame,
    ServerFrame,
    ack_frame,
    history_frame,
    message_frame,
    user_history_frame,
)
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.membership import join
from serverless_app.chat.service.outcomes import Delivery, ToRoom, reply

__all__ = ["history", "send", "user_history"]


def _utc_timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def send(ctx: Context, record: ConnectionRecord, frame: ClientFrame, request_id: str) -> list[Delivery]:
    """Store the message (once per ``client_msg_id``), acknowledge it, and deliver it to the room."""
    user_id = _speaker(record, frame.get("user_id"))
    deliveries: list[Delivery] = []
    room = frame["room"]
    if room in record.rooms:
        ctx.check(record, "sendMessage", room)
    else:
        deliveries += join(ctx, record, room)
    now = ctx.clock()
    message = StoredMessage(
        room=room,
        user_id=user_id,
        message=frame["message"],
        sent_at=_utc_timestamp(now),
        message_id=ctx.new_id(),
        ttl=int(now) + ctx.settings.message_retention_s,
        client_msg_id=frame.get("client_msg_id"),
    )
    stored = ctx.store.put_message(message)
    duplicate = stored.message_id != message.message_id
    if message.client_msg_id is not None:
        ack = ack_frame(
            stored, client_msg_id=message.client_msg_id, duplicate=duplicate, request_id=request_id
        )
        deliveries.append(reply(record, ack))
    if not duplicate:
        deliveries.append(ToRoom(room, message_frame(stored)))
    return deliveries


def _speaker(record: ConnectionRecord, claimed: str | None) -> str:
    """Who a message is from. A verified connection speaks only as its own user."""
    if claimed is None:
        return record.user_id
    if record.verified and claimed != record.user_id:
        raise Forbidden(f"this connection is signed in as {record.user_id!r}; it cannot send as {claimed!r}")
    return claimed


def history(ctx: Context, frame: ClientFrame) -> ServerFrame:
    """A page of the room's history, ``before`` (the default: newest first) or ``after`` a cursor."""
    limit = frame.get("limit", ctx.settings.history_default_limit)
    after = frame.get("after")
    messages, more = ctx.store.room_history(
        frame["room"], limit=limit, now=ctx.clock(), before=frame.get("before"), after=after
    )
    next_cursor = None
    if more and messages:
        next_cursor = messages[-1].cursor if after is not None else messages[0].cursor
    direction: Literal["before", "after"] = "after" if after is not None else "before"
    return history_frame(frame["room"], messages, next_cursor=next_cursor, direction=direction)


def user_history(ctx: Context, record: ConnectionRecord, frame: ClientFrame) -> ServerFrame:
    """A user's messages; another user's only in rooms the asker may read.

    The page is read first and filtered after, so it may hold fewer than ``limit``
    messages (even none) while ``next_cursor`` still leads on.
    """
    user_id = frame.get("user_id", record.user_id)
    limit = frame.get("limit", ctx.settings.history_default_limit)
    messages, more = ctx.store.user_history(user_id, limit=limit, now=ctx.clock(), before=frame.get("before"))
    next_cursor = messages[-1].cursor if more and messages else None
    if user_id != record.user_id:
        readable = ctx.store.standings(record.user_id, [m.room for m in messages])
        messages = [m for m in messages if may_read(*readable[m.room])]
    return user_history_frame(user_id, messages, next_cursor=next_cursor)
