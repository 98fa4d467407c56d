"""One pass over a room: read its members a Query page at a time and post each page as it arrives,
riding out a storage outage; hand the rest of a large room on.

Called by the delivery loop (:mod:`~serverless_app.chat.delivery.loop`) for each
:class:`~serverless_app.chat.delivery.units.RoomPass` (the whole room, the sender's first range,
or a ``websocket-fanout`` shard's range). Reads members through :meth:`ChatService.recipient_pages
<serverless_app.chat.service.ChatService.recipient_pages>`, posts with the loop's ``post``
(:func:`~serverless_app.chat.delivery.ordered.post_in_order` underneath) and hands the rest of the
room to :func:`~serverless_app.chat.delivery.planning.hand_on`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from serverless_app.chat.connections_api import ConnectionsApi, PostResult
from serverless_app.chat.delivery.ordered import Account
from serverless_app.chat.delivery.planning import hand_on
from serverless_app.chat.delivery.units import DeliveryOptions, DeliveryReport, RoomPass, Shard
from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.observability import logger as log
from serverless_app.chat.protocol import dumps
from serverless_app.chat.service import ChatService, ToRoom

__all__ = ["PAGES_IN_FLIGHT", "READ_RETRY_DELAYS_S", "pages_outliving_outages", "post_room"]

PAGES_IN_FLIGHT = 2
"""A room's pages whose posts may be under way at once (one posting while the next is read)."""

READ_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Pauses before reading a room's members again, from the page where storage failed: a message
already stored and acknowledged still reaches the room after a DynamoDB outage of up to ~15 s
(inside the functions' 30 s)."""

_END = object()


async def post_room(
    service: ChatService,
    api: ConnectionsApi,
    unit: RoomPass,
    options: DeliveryOptions,
    report: DeliveryReport,
    shard: Shard | None,
    post: Callable[[str, list[bytes]], asyncio.Task[list[PostResult]]],
    account: Account,
) -> None:
    """One pass over the room's members (or the shard's range), posting each page as it arrives."""
    encoded = [(dumps(frame), exclude) for frame, exclude in unit.frames]
    everyone = ToRoom(unit.room, {})
    sharded = shard is None and options.launch is not None
    limit = shard.limit if shard is not None else options.shard_size if sharded else None
    pages = pages_outliving_outages(
        service,
        everyone,
        page_size=min(options.page_size, limit) if limit else options.page_size,
        start_key=shard.start_key if shard is not None else None,
        limit=limit,
    )
    in_flight: deque[list[tuple[str, asyncio.Task[list[PostResult]]]]] = deque()
    handing_on: asyncio.Future[None] | None = None
    next_key: dict[str, Any] | None = None
    try:
        reading = asyncio.ensure_future(asyncio.to_thread(next, pages, _END))
        while True:
            page = await reading
            if page is _END:
                break
            ids: list[str] = page[0]  # type: ignore[index]
            next_key = page[1]  # type: ignore[index]
            reading = asyncio.ensure_future(asyncio.to_thread(next, pages, _END))
            posts = []
            for connection_id in ids:
                frames = [data for data, exclude in encoded if connection_id not in exclude]
                if frames:
                    posts.append((connection_id, post(connection_id, frames)))
            in_flight.append(posts)
            while len(in_flight) > PAGES_IN_FLIGHT:
                await _settle(unit.room, in_flight.popleft(), account)
        if sharded and next_key is not None and options.launch is not None:
            # The room goes on past this invocation's range: hand the rest on, range by range,
            # while this range's last posts finish.
            handing_on = asyncio.ensure_future(
                asyncio.to_thread(hand_on, unit, next_key, options, options.launch, report)
            )
    except BaseException:
        # A read or a post failed: let what was started finish (nothing is left running), then fail.
        pending = [task for posts in in_flight for _, task in posts]
        await asyncio.gather(*pending, *([handing_on] if handing_on else []), return_exceptions=True)
        raise
    while in_flight:
        await _settle(unit.room, in_flight.popleft(), account)
    if handing_on is not None:
        await handing_on


def pages_outliving_outages(
    service: ChatService,
    room: ToRoom,
    *,
    page_size: int,
    start_key: dict[str, Any] | None,
    limit: int | None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
    """``service.recipient_pages`` of the whole room (no one excluded), read again from the last
    page's key after each pause of ``READ_RETRY_DELAYS_S`` when storage fails: none skipped, and
    after the last pause the failure is raised. A shard's ``limit`` counts member items read,
    expired ones too, which the pages do not show: after an outage a shard whose range holds
    expired items may read a few members past its range (posted twice, as a retried shard's are;
    clients drop copies by ``message_id``)."""
    key, remaining = start_key, limit
    pauses = iter(READ_RETRY_DELAYS_S)
    while True:
        try:
            for ids, next_key in service.recipient_pages(
                room, page_size=page_size, start_key=key, limit=remaining
            ):
                yield ids, next_key
                key = next_key
                if remaining is not None:
                    remaining -= len(ids)
                if key is None or remaining == 0:
                    return
            return
        except StorageUnavailable:
            pause = next(pauses, None)
            if pause is None:
                raise
            log.warning("room read failed; reading again", room=room.room, pause_s=pause)
            sleep(pause)


async def _settle(
    room: str,
    posts: list[tuple[str, asyncio.Task[list[PostResult]]]],
    account: Account,
) -> None:
    outcomes = await asyncio.gather(*(task for _, task in posts), return_exceptions=True)
    failure: BaseException | None = None
    for (connection_id, _), outcome in zip(posts, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failure = failure or outcome
        else:
            account(connection_id, room, outcome)
    if failure is not None:
        raise failure
