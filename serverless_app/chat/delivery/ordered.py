"""Posts to one connection, in order, and the later rounds for what was throttled or failed.

Used by :mod:`~serverless_app.chat.delivery.loop` (a frame to one connection, and the rounds
after every unit was posted) and :mod:`~serverless_app.chat.delivery.room_pass` (each member of a
page); it calls only :meth:`ConnectionsApi.post_async <serverless_app.chat.connections_api.ConnectionsApi.post_async>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from serverless_app.chat.connections_api import ConnectionsApi, PostResult
from serverless_app.chat.delivery.units import DeliveryReport
from serverless_app.chat.observability import logger as log

__all__ = ["REDELIVERY_CONCURRENCY", "REDELIVERY_DELAYS_S", "Account", "post_in_order", "redeliver"]

REDELIVERY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
"""Pauses before each further round for posts still throttled (429) or failed (5xx, network) after
``ConnectionsApi``'s own retries; what is still unsent after the last round is counted ``unsent``."""

_UNSENT = (PostResult.THROTTLED, PostResult.FAILED)

REDELIVERY_CONCURRENCY = 4
"""Posts a later round makes at once: few, so a round behind a throttle trickles rather than
stampedes (every attempt of a stampede but the first few is another 429)."""

Account = Callable[[str, str | None, list[PostResult]], None]
"""Counts one connection's post results in the report, and notes a 410 with the room it was
reached in (``None``: named directly, or a later round)."""


async def post_in_order(
    api: ConnectionsApi,
    connection_id: str,
    frames: list[bytes],
    after: asyncio.Task[list[PostResult]] | None,
    unsent: dict[str, list[bytes]],
) -> list[PostResult]:
    """Post ``frames`` one after the other once ``after`` is done. Stop at a 410; at a post still
    throttled or failed, stop and leave it and the frames after it in ``unsent`` (so a later
    round keeps their order); if ``after`` left frames unsent, these wait behind them."""
    if after is not None:
        earlier = await asyncio.gather(after, return_exceptions=True)
        if isinstance(earlier[0], list) and PostResult.GONE in earlier[0]:
            return []
        if connection_id in unsent:
            unsent[connection_id] += frames
            return []
    results: list[PostResult] = []
    for index, data in enumerate(frames):
        result = await api.post_async(connection_id, data)
        results.append(result)
        if result is PostResult.GONE:
            break
        if result in _UNSENT:
            unsent.setdefault(connection_id, []).extend(frames[index:])
            break
    return results


async def redeliver(
    api: ConnectionsApi,
    unsent: dict[str, list[bytes]],
    report: DeliveryReport,
    account: Account,
) -> None:
    """Post what was throttled or failed again, each connection's frames in order, in rounds
    after growing pauses, a few at a time. A 429 delivered nothing, so its frame goes again exactly once; a post
    that failed without an answer may have arrived, as with ``ConnectionsApi``'s own retries
    (clients de-duplicate by ``message_id``, which beats losing it)."""
    for delay in REDELIVERY_DELAYS_S:
        if not unsent:
            return
        await asyncio.sleep(delay)
        pending = dict(unsent)
        unsent.clear()
        report.redelivered += sum(len(frames) for frames in pending.values())
        slots = asyncio.Semaphore(REDELIVERY_CONCURRENCY)
        tasks = [_post_when_free(slots, api, cid, frames, unsent) for cid, frames in pending.items()]
        for connection_id, results in zip(pending, await asyncio.gather(*tasks), strict=True):
            account(connection_id, None, results)
    if unsent:
        report.unsent += sum(len(frames) for frames in unsent.values())
        log.error("frames left unsent", connections=len(unsent), frames=report.unsent)


async def _post_when_free(
    slots: asyncio.Semaphore,
    api: ConnectionsApi,
    connection_id: str,
    frames: list[bytes],
    unsent: dict[str, list[bytes]],
) -> list[PostResult]:
    async with slots:
        return await post_in_order(api, connection_id, frames, None, unsent)
