"""Presence: announcing a user's first arrival and last departure, pages of who is online, typing.

Called by ``membership`` (entering and exiting a room announce) and by the façade
(``getPresence``, ``typing``); reads and counts through the store's per-room tallies, so the
cost of an announcement does not grow with the room.
"""

from __future__ import annotations

from typing import Any, Literal

from serverless_app.chat.errors import RateLimited
from serverless_app.chat.models import ConnectionRecord
from serverless_app.chat.protocol import presence_frame, presence_mode_frame, typing_frame
from serverless_app.chat.service.context import Context
from serverless_app.chat.service.outcomes import Delivery, ToRoom

__all__ = ["announce", "presence_page", "typing"]


def announce(
    ctx: Context, room: str, user_id: str, event: Literal["join", "leave"], *, exclude: str | None = None
) -> list[Delivery]:
    """A user's first arrival or last departure, announced at a cost independent of the room's size.

    A ``live`` room announces each join and leave. When its online users pass
    ``presence_threshold`` it turns ``on_demand``: nothing is announced per user (clients ask
    ``getPresence``, paged, with ``count``), so filling a room of N people costs O(N) posts,
    not O(N²). It turns ``live`` again only at half the threshold: a room hovering around
    the threshold does not flap, and a disconnect storm in a large room announces the last
    departures to at most threshold/2 members. Each switch is announced once, with
    ``presenceMode`` (a conditional write decides who announces it).
    """
    online, mode = ctx.store.adjust_online(room, +1 if event == "join" else -1)
    threshold = ctx.settings.presence_threshold
    others = frozenset({exclude}) if exclude else frozenset()
    switch_to = None
    if mode == "live" and online > threshold:
        switch_to = "on_demand"
    elif mode == "on_demand" and online <= threshold // 2:
        switch_to = "live"
    if switch_to is not None:
        if not ctx.store.switch_mode(room, to=switch_to):
            return []
        return [ToRoom(room, presence_mode_frame(room, switch_to, online), exclude=others)]
    if mode == "live":
        return [ToRoom(room, presence_frame(room, user_id, event), exclude=others)]
    return []


def presence_page(ctx: Context, room: str, *, after: str | None, limit: int) -> dict[str, Any]:
    """A page of who is online, how many are in all, and how presence is kept up to date."""
    users, next_cursor = ctx.store.users_page(room, now=ctx.clock(), after=after, limit=limit)
    online, mode = ctx.store.online(room)
    count = len(users) if next_cursor is None and after is None else max(online, len(users))
    return {"users": users, "count": count, "mode": mode, "next_cursor": next_cursor}


def typing(ctx: Context, record: ConnectionRecord, room: str) -> list[Delivery]:
    """Relay a typing event: refused like a read, but over a rate it is dropped quietly."""
    ctx.check(record, "typing", room)
    if not ctx.store.claim_typing(
        record.connection_id, now=ctx.clock(), interval_s=ctx.settings.typing_interval_s
    ):
        return []  # relayed at most once per interval; extra typing events are dropped quietly
    if ctx.store.online(room)[1] == "on_demand" and not ctx.store.claim_room_typing(
        room, now=ctx.clock(), interval_s=ctx.settings.typing_interval_s
    ):
        return []  # a large room relays one typing event per interval, whoever types
    try:
        ctx.spend(record, "typing")
    except RateLimited:
        return []
    frame = typing_frame(room, record.user_id)
    return [ToRoom(room, frame, exclude=frozenset({record.connection_id}))]
