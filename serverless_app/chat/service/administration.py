"""Rooms with owners: ``createRoom``, ``invite``/``kick``/``ban``/``unban``/``setRole``,
``openDirect`` and ``listRooms``.

Called by the façade once the frame's rate was spent. Who may do what is
:func:`serverless_app.chat.access.authorize` (and ``targets_below`` for whom); the store's
``grant``/``revoke``/``unban`` re-check the actor's and the target's standing in the same
transaction (a :class:`~serverless_app.chat.store.Cancelled` names the check that failed). A
created or direct room is joined, and a kicked or banned user's connections exit, through
``membership``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from serverless_app.chat.access import (
    DIRECT_PREFIX,
    MODERATORS,
    authorize,
    direct_room,
    is_reserved,
    targets_below,
)
from serverless_app.chat.errors import Forbidden, InvalidField, NotFound, RoomExists
from serverless_app.chat.models import ConnectionRecord, Grant, Role, RoomInfo, Standing
from serverless_app.chat.protocol import (
    ClientFrame,
    ServerFrame,
    invited_frame,
    left_frame,
    room_updated_frame,
    rooms_frame,
)
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.membership import exit_room, join_checked
from serverless_app.chat.service.outcomes import Delivery, ToConnection, reply
from serverless_app.chat.store import Cancelled, Conflict

__all__ = ["create", "list_rooms", "moderate", "open_direct"]


def create(ctx: Context, record: ConnectionRecord, room: str, visibility: str) -> list[Delivery]:
    """``createRoom``: a new name only (no traces of an earlier room), owned by its creator, who joins."""
    if is_reserved(room):
        raise InvalidField(
            f"createRoom: names starting with {DIRECT_PREFIX!r} are kept for direct conversations"
        )
    taken = RoomExists(f"a room named {room!r} already exists")
    info, _ = ctx.store.room_access(room, ())
    if info.exists or ctx.store.has_traces(room):
        raise taken
    created = RoomInfo(room, "private" if visibility == "private" else "public", owner=record.user_id)
    try:
        ctx.store.create_room(created, now_ms=round(ctx.clock() * 1000))
    except Conflict:
        raise taken from None
    return join_checked(ctx, record, created, Standing(role="owner"))


def moderate(ctx: Context, record: ConnectionRecord, action: str, frame: ClientFrame) -> list[Delivery]:
    """``invite``, ``kick``, ``ban``, ``unban`` or ``setRole`` by an owner or admin, on someone below them."""
    room, target = frame["room"], frame["user_id"]
    actor = record.user_id
    if target == actor:
        raise InvalidField(f"{action}: you cannot {action} yourself")
    info, standings = ctx.store.room_access(room, (actor, target))
    mine, theirs = standings[actor], standings[target]
    authorize(action, info, mine, joined=room in record.rooms)  # type: ignore[arg-type]
    assert mine.role is not None  # authorize let only owners and admins through
    below = targets_below(mine.role)
    if action != "invite" and theirs.role is not None and theirs.role not in below:
        raise Forbidden(f"{action}: {target!r} is {theirs.role} of {room!r}; you cannot")
    deliveries: list[Delivery] = []
    try:
        if action == "invite":
            if theirs.banned:
                raise Forbidden(f"invite: {target!r} is banned from {room!r}; unban them first")
            if not theirs.role:
                grant = Grant(room, target, "invited", info.visibility)
                ctx.store.grant(
                    grant, actor=actor, actor_roles=MODERATORS, target_roles=(None,), unbanned=True
                )
                invited = invited_frame(room, by=actor, visibility=info.visibility)
                deliveries += ctx.to_user(target, invited)
            updated = room_updated_frame(room, target, by=actor, change="invited")
            return [reply(record, updated), *deliveries]
        if action == "setRole":
            role = frame["role"]
            # in a public room anyone not banned may be made admin; elsewhere only members
            targets: tuple[Role | None, ...] = ("admin", "member")
            if info.visibility == "public":
                targets += (None,)
            if theirs.role not in targets or theirs.banned:
                raise Forbidden(f"setRole: {target!r} is not a member of {room!r}")
            grant = Grant(room, target, role, info.visibility)
            ctx.store.grant(grant, actor=actor, actor_roles=("owner",), target_roles=targets, unbanned=True)
            change = room_updated_frame(room, target, by=actor, change="role", role=role)
            return [reply(record, change), *ctx.to_user(target, change)]
        if action == "unban":
            ctx.store.unban(room, target, actor=actor, actor_roles=MODERATORS)
            change = room_updated_frame(room, target, by=actor, change="unbanned")
            return [reply(record, change), *ctx.to_user(target, change)]
        banned = action == "ban"
        ctx.store.revoke(
            room,
            target,
            actor=actor,
            actor_roles=MODERATORS,
            target_roles=below,
            ban_by=actor if banned else None,
        )
    except Cancelled as cancelled:
        if 0 in cancelled.failed:
            raise Forbidden(f"{action}: you are no longer owner or admin of {room!r}") from None
        if 2 in cancelled.failed:
            raise Forbidden(f"{action}: {target!r} is banned from {room!r}; unban them first") from None
        if action == "invite":  # they were given a role meanwhile: nothing to do
            return [reply(record, room_updated_frame(room, target, by=actor, change="invited"))]
        raise Forbidden(f"{action}: {target!r} outranks you in {room!r} or is not a member") from None
    reason: Literal["banned", "kicked"] = "banned" if banned else "kicked"
    change = room_updated_frame(room, target, by=actor, change=reason)
    deliveries.append(reply(record, change))
    for connection_id in ctx.store.live_connections(target):
        was_member, departures = exit_room(ctx, room, connection_id)
        if was_member:
            ctx.store.release_room(connection_id, room)
            deliveries.append(ToConnection(connection_id, left_frame(room, reason, by=actor)))
        deliveries.append(ToConnection(connection_id, change))
        deliveries += departures
    return deliveries


def open_direct(ctx: Context, record: ConnectionRecord, peer: str) -> list[Delivery]:
    """``openDirect``: the two users' direct room, created by whichever side opens it first, joined."""
    user = record.user_id
    if peer == user:
        raise InvalidField("openDirect: a direct conversation needs another user")
    room = direct_room(user, peer)
    info, standing = ctx.access(room, user)
    if not info.exists:
        created = RoomInfo(room, "direct", peers=tuple(sorted((user, peer))))
        with contextlib.suppress(Conflict):  # the other side opened it at the same moment
            ctx.store.create_room(created, now_ms=round(ctx.clock() * 1000))
        info, standing = ctx.access(room, user)
    if info.visibility != "direct" or user not in info.peers:
        raise NotFound(f"no direct conversation with {peer!r}")
    deliveries = join_checked(ctx, record, info, standing)
    return [*deliveries, *ctx.to_user(peer, invited_frame(room, by=user, visibility="direct"))]


def list_rooms(ctx: Context, record: ConnectionRecord, frame: ClientFrame) -> ServerFrame:
    """The user's rooms (those they hold a role in), then the public ones, a page at a time."""
    limit = frame.get("limit", ctx.settings.history_default_limit)
    phase, _, start = frame.get("after", "mine:").partition(":")
    entries: list[dict[str, Any]] = []
    if phase == "mine":
        grants, more = ctx.store.user_grants(record.user_id, after=start or None, limit=limit)
        for grant in grants:
            entry = {"room": grant.room, "visibility": grant.visibility, "role": grant.role}
            if grant.peer:
                entry["peer"] = grant.peer
            entries.append(entry)
        if more:
            return rooms_frame(entries, f"mine:{grants[-1].room}")
        phase, start = "public", ""
    left = limit - len(entries)
    if left == 0:
        return rooms_frame(entries, "public:")
    rooms, more = ctx.store.public_rooms(after=start or None, limit=left)
    standings = ctx.store.standings(record.user_id, rooms)
    for room in rooms:
        _, standing = standings[room]
        if standing.role is None and not standing.banned:
            entries.append({"room": room, "visibility": "public"})
    return rooms_frame(entries, f"public:{rooms[-1]}" if more else None)
