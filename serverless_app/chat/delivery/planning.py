"""Shard planning: handing the rest of a large room to ``websocket-fanout`` and, in a planning
invocation, launching its key ranges.

Two words: a *planning shard* is the event (a :class:`Shard` with ``plans=True``: a room and where
its unlaunched ranges start); the *planning invocation* is the ``websocket-fanout`` invocation that
receives one and launches range shards from it.

The sender's :func:`~serverless_app.chat.delivery.room_pass.post_room` calls :func:`hand_on`
once it has posted its own range; ``handlers/fanout.py`` reaches :func:`launch_ranges` through
:func:`~serverless_app.chat.delivery.loop.deliver_range` for a planning :class:`Shard`. It reads
the room's key ranges through :meth:`ChatService.recipient_pages
<serverless_app.chat.service.ChatService.recipient_pages>` and launches with a
:data:`ShardLauncher` (the container's asynchronous Lambda ``Invoke``).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from serverless_app.chat.delivery.units import DeliveryOptions, DeliveryReport, RoomPass, Shard, ShardLauncher
from serverless_app.chat.observability import logger as log
from serverless_app.chat.service import ChatService, ToRoom

__all__ = ["PLAN_LAUNCHERS", "PLAN_SPAN", "hand_on", "launch_ranges"]

PLAN_SPAN = 100
"""Ranges one planning invocation of ``websocket-fanout`` launches before it hands the rest of the
room to the next planning invocation (100 ranges of 1,000: 100,000 members, a few seconds)."""

PLAN_LAUNCHERS = 8
"""Ranges a planning invocation launches at once (each launch is one asynchronous ``Invoke``)."""


def hand_on(
    unit: RoomPass,
    start_key: dict[str, Any],
    options: DeliveryOptions,
    launch: ShardLauncher,
    report: DeliveryReport,
) -> None:
    """Hand the rest of the room, from ``start_key`` on, to one planning invocation: launching the
    ranges takes a Query and an ``Invoke`` each, which must not sit in the sender's 30 s."""
    launch(Shard(unit, start_key, options.shard_size, plans=True))
    report.plans += 1


def launch_ranges(service: ChatService, shard: Shard, launch: ShardLauncher, report: DeliveryReport) -> None:
    """A planning shard's work: from its ``start_key``, one range of ``limit`` members after the
    other, launch each (``PLAN_LAUNCHERS`` at once); after ``PLAN_SPAN`` ranges hand what is left
    to the next planning invocation, so a room of any size is launched in bounded time per
    invocation. A range whose launch still fails after the Lambda client's retries is counted in
    ``unlaunched`` (its members find the message in history); the invocation raises — and Lambda
    retries it — only when it launched nothing, so a retry never launches a range twice."""
    room = ToRoom(shard.room_pass.room, {})
    key: dict[str, Any] | None = shard.start_key
    launches: list[Future[None]] = []
    onward: Future[None] | None = None
    with ThreadPoolExecutor(PLAN_LAUNCHERS, thread_name_prefix="launch") as pool:
        while key is not None:
            if len(launches) == PLAN_SPAN:
                onward = pool.submit(launch, Shard(shard.room_pass, key, shard.limit, plans=True))
                break
            ranges = service.recipient_pages(room, page_size=shard.limit, start_key=key, limit=shard.limit)
            ids, next_key = next(ranges, ([], None))
            if ids:  # a range found empty is not launched
                launches.append(pool.submit(launch, Shard(shard.room_pass, key, shard.limit)))
            key = next_key
    failures = [error for error in (launched.exception() for launched in launches) if error is not None]
    handed_on = onward is not None and onward.exception() is None
    if launches and len(failures) == len(launches) and not handed_on:
        raise failures[0]  # nothing launched: Lambda's retry duplicates nothing
    report.shards += len(launches) - len(failures)
    if failures:
        report.unlaunched += len(failures)
        log.error("ranges not launched", room=room.room, failed=len(failures), error=str(failures[0]))
    if onward is not None:
        if handed_on:
            report.plans += 1
        else:  # the rest of the room: counted as one unlaunched planning shard, and said loudly
            report.unlaunched += 1
            log.error("rest of the room not handed on", room=room.room, error=str(onward.exception()))
