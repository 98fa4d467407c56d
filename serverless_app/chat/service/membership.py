"""Joining and leaving: a connection taking a room place, entering (if the user may), exiting.

Called by the façade (``joinRoom``, ``leaveRoom``), by ``lifecycle`` (connect enters the rooms
of the URL, disconnect exits them), ``messaging`` (sending to a room not joined joins it) and
``administration`` (a created or direct room is joined; a kick or ban exits). Entering and
exiting announce through ``presence``; the store's ``enter`` re-checks the standing in the same
transaction, so a concurrent ban cannot leave a banned user in a room.
"""

from __future__ import annotations

from serverless_app.chat.errors import Forbidden, InvalidField, NotFound
from serverless_app.chat.models import ConnectionRecord, Member, RoomInfo, Standing
from serverless_app.chat.protocol import joined_frame, left_frame
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.outcomes import Delivery, reply
from serverless_app.chat.service.presence import announce, presence_page
from serverless_app.chat.store import Cancelled, Conflict

__all__ = ["ensure_room", "enter", "exit_room", "join", "join_checked", "leave"]


def join(ctx: Context, record: ConnectionRecord, room: str) -> list[Delivery]:
    """``joinRoom``: apply the rule, create a missing public room, then join it."""
    info, standing = ctx.check(record, "joinRoom", room)
    return join_checked(ctx, record, ensure_room(ctx, info), standing)


def join_checked(
    ctx: Context, record: ConnectionRecord, info: RoomInfo, standing: Standing
) -> list[Delivery]:
    """Join a room the rule allowed: take one of the connection's room places, then enter."""
    already = info.room in record.rooms
    if not already:
        maximum = ctx.settings.max_rooms_per_connection
        try:
            ctx.store.reserve_room(record.connection_id, info.room, maximum=maximum)
        except Conflict:
            raise InvalidField(f"joinRoom: at most {maximum} rooms per connection") from None
    try:
        return enter(ctx, record, info, standing, announce_to_self=True)
    except (Forbidden, NotFound):
        if not already:
            ctx.store.release_room(record.connection_id, info.room)
        raise


def ensure_room(ctx: Context, info: RoomInfo) -> RoomInfo:
    """The room, created public (without an owner) if it did not exist: the seed's behaviour."""
    if info.exists:
        return info
    public = RoomInfo(info.room, "public")
    try:
        ctx.store.create_room(public, now_ms=round(ctx.clock() * 1000))
    except Conflict:
        existing, _ = ctx.store.room_access(info.room, ())
        return existing
    return public


def enter(
    ctx: Context, record: ConnectionRecord, info: RoomInfo, standing: Standing, *, announce_to_self: bool
) -> list[Delivery]:
    """Record the membership (if the user is still allowed in) and announce a first arrival."""
    room = info.room
    deliveries: list[Delivery] = []
    member = Member(room=room, connection_id=record.connection_id, user_id=record.user_id)
    try:
        added = ctx.store.enter(
            member, ttl=record.ttl, standing=standing, needs_role=info.visibility != "public"
        )
    except Cancelled as cancelled:
        if 0 in cancelled.failed:
            raise Forbidden(f"you are banned from {room!r}") from None
        raise NotFound(f"no room {room!r}") from None
    if added and ctx.store.count_user(room, record.user_id, +1, ttl=record.ttl) == 1:
        deliveries += announce(ctx, room, record.user_id, "join", exclude=record.connection_id)
    if announce_to_self:
        joined = joined_frame(
            room,
            presence_page(ctx, room, after=None, limit=ctx.settings.presence_page_size),
            visibility=info.visibility,
            role="member" if standing.role == "invited" else standing.role,
            peer=_peer(info, record.user_id),
        )
        deliveries.insert(0, reply(record, joined))
    return deliveries


def leave(ctx: Context, record: ConnectionRecord, room: str) -> list[Delivery]:
    """``leaveRoom``: exit, free the room place, and tell the connection."""
    deliveries = exit_room(ctx, room, record.connection_id)[1]
    ctx.store.release_room(record.connection_id, room)
    return [reply(record, left_frame(room, "left")), *deliveries]


def exit_room(ctx: Context, room: str, connection_id: str) -> tuple[bool, list[Delivery]]:
    """Remove one membership: whether there was one, and the presence ``leave`` if it was the user's last."""
    member = ctx.store.remove_member(room, connection_id)
    if member is None:
        return False, []
    now = ctx.clock()
    remaining = ctx.store.count_user(room, member.user_id, -1, ttl=int(now) + ctx.settings.connection_ttl_s)
    if remaining > 0:
        return True, []
    return True, announce(ctx, room, member.user_id, "leave")


def _peer(info: RoomInfo, user_id: str) -> str | None:
    if info.visibility != "direct":
        return None
    others = [p for p in info.peers if p != user_id]
    return others[0] if others else None
