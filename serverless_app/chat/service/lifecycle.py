"""A connection's life: ``$connect`` (with the per-user cap), ``$disconnect``, and pruning the gone.

Called by the façade (:meth:`ChatService.connect`, ``disconnect``, ``prune``: the connect and
disconnect handlers, and ``delivery`` when a post answers 410). Joins and exits rooms through
``membership``. :func:`parse_rooms` and :func:`valid_user_id` read the connect URL for
``handlers/connect.py``.
"""

from __future__ import annotations

from serverless_app.chat.access import authorize
from serverless_app.chat.errors import Forbidden, InvalidField, NotFound, RateLimited
from serverless_app.chat.models import ConnectionRecord, Identity, RoomInfo, Standing
from serverless_app.chat.protocol import ROOM_NAME, USER_ID, welcome_frame
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.membership import ensure_room, enter, exit_room
from serverless_app.chat.service.outcomes import ConnectOutcome, Delivery
from serverless_app.chat.store import Conflict

__all__ = ["CONNECT_GRACE_S", "connect", "disconnect", "parse_rooms", "prune", "valid_user_id"]

CONNECT_GRACE_S = 30.0
"""A connection this young may still be inside ``$connect`` (29 s integration timeout)."""


def parse_rooms(raw: str | None, *, default: str, maximum: int) -> list[str]:
    """The ``rooms`` query parameter of the connect URL: comma-separated room names.

    Absent, blank, or only separators and blanks (``?rooms=,,,``): the default room.
    """
    rooms = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if not rooms:
        return [default]
    bad = [room for room in rooms if not ROOM_NAME.fullmatch(room)]
    if bad:
        raise InvalidField(f"rooms: {bad[0][:70]!r} is not a valid room name")
    if len(rooms) > maximum:
        raise InvalidField(f"rooms: at most {maximum} rooms per connection")
    return rooms


def valid_user_id(user_id: str) -> bool:
    return bool(USER_ID.fullmatch(user_id))


def connect(ctx: Context, connection_id: str, identity: Identity, rooms: list[str]) -> ConnectOutcome:
    """Record the connection, count it against the user's cap, and join the rooms the user
    may enter (the others are left out of ``welcome.rooms``)."""
    now = ctx.clock()
    allowed: list[tuple[RoomInfo, Standing]] = []
    for room in rooms:
        info, standing = ctx.access(room, identity.user_id)
        try:
            authorize("joinRoom", info, standing, joined=False)
        except (Forbidden, NotFound):
            continue
        allowed.append((ensure_room(ctx, info), standing))
    record = ConnectionRecord(
        connection_id=connection_id,
        user_id=identity.user_id,
        verified=identity.verified,
        connected_at_ms=int(now * 1000),
        ttl=int(now) + ctx.settings.connection_ttl_s,
        rooms=frozenset(info.room for info, _ in allowed),
        token_exp=identity.expires_at,
    )
    ctx.store.put_connection(record)
    _count_live(ctx, record)
    announcements: list[Delivery] = []
    joined: list[str] = []
    for info, standing in allowed:
        try:
            announcements += enter(ctx, record, info, standing, announce_to_self=False)
        except (Forbidden, NotFound):
            continue  # banned or removed in the meantime
        joined.append(info.room)
    welcome = welcome_frame(connection_id, identity.user_id, joined)
    return ConnectOutcome(welcome=welcome, announcements=announcements)


def _count_live(ctx: Context, record: ConnectionRecord) -> None:
    """Count the connection among its user's live ones, or refuse it (and forget its record).

    Places are freed lazily: ``$disconnect`` (best effort on AWS anyway) does not touch the
    user's item, which keeps a mass disconnect as cheap as before the cap existed. When the
    user is at the cap, places whose connection record is gone are freed and the count is
    tried again: about two extra operations per connect, amortized.
    """
    maximum = ctx.settings.max_connections_per_user
    for attempt in range(2):
        try:
            ctx.store.add_live_connection(
                record.user_id, record.connection_id, maximum=maximum, ttl=record.ttl
            )
            return
        except Conflict:
            if attempt:
                break
            for other in ctx.store.live_connections(record.user_id):
                if ctx.store.get_connection(other, now=ctx.clock()) is None:
                    ctx.store.remove_live_connection(record.user_id, other)
    ctx.store.delete_connection(record.connection_id)
    raise RateLimited(
        f"{record.user_id!r} already has {maximum} live connections; close one first",
        retry_after_ms=1000,
    )


def disconnect(
    ctx: Context, connection_id: str, *, also_rooms: frozenset[str] = frozenset()
) -> list[Delivery]:
    """Forget a connection (idempotent): its record, memberships, and presence where it was the last.

    ``also_rooms`` are rooms it may still be a member of even if its record is gone.
    """
    record = ctx.store.delete_connection(connection_id)
    rooms = (record.rooms if record is not None else frozenset()) | also_rooms
    deliveries: list[Delivery] = []
    for room in sorted(rooms):
        deliveries += exit_room(ctx, room, connection_id)[1]
    return deliveries


def prune(ctx: Context, connection_id: str, *, rooms: frozenset[str]) -> list[Delivery]:
    """Forget a connection the ``@connections`` API answered 410 for, unless it is still connecting.

    API Gateway also answers 410 while a connection's ``$connect`` is running, so a record
    younger than the integration timeout is left alone: a brand-new connection must not be
    deleted by a message that happened to be sent while it was being set up. A truly dead
    young connection is pruned by a later fan-out, by ``$disconnect`` or by TTL.
    """
    record = ctx.store.get_connection(connection_id, now=ctx.clock())
    if record is not None and ctx.clock() * 1000 - record.connected_at_ms < CONNECT_GRACE_S * 1000:
        return []
    return disconnect(ctx, connection_id, also_rooms=rooms)
