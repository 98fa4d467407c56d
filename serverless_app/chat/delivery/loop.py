"""The delivery loop: :func:`deliver` (the handlers' entry) and :func:`deliver_range`
(``websocket-fanout``'s), posting every unit in order, then the later rounds, then pruning the gone.

Called by the handlers ``default``, ``welcome`` and ``disconnect`` (:func:`deliver`) and ``fanout``
(:func:`deliver_range`); ``connect`` delivers nothing itself, it schedules the welcome. Turns
the service's deliveries into units (:mod:`~serverless_app.chat.delivery.units`), posts a frame
to one connection with :mod:`~serverless_app.chat.delivery.ordered` and a room with
:mod:`~serverless_app.chat.delivery.room_pass`; a planning shard goes to
:mod:`~serverless_app.chat.delivery.planning`. Gone connections are pruned with
:meth:`ChatService.prune <serverless_app.chat.service.ChatService.prune>`, whose announcements
are delivered by this loop again (to ``prune_depth``).
"""

from __future__ import annotations

import asyncio
import functools
import json

from serverless_app.chat.connections_api import ConnectionsApi, PostResult
from serverless_app.chat.delivery.ordered import Account, post_in_order, redeliver
from serverless_app.chat.delivery.planning import launch_ranges
from serverless_app.chat.delivery.room_pass import post_room
from serverless_app.chat.delivery.units import (
    DeliveryOptions,
    DeliveryReport,
    RoomPass,
    Shard,
    ShardLauncher,
    units,
)
from serverless_app.chat.observability import logger as log
from serverless_app.chat.protocol import dumps
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom
from serverless_app.chat.settings import Settings

__all__ = ["deliver", "deliver_range"]


def deliver(
    service: ChatService,
    api: ConnectionsApi,
    deliveries: list[Delivery],
    *,
    page_size: int = Settings.fanout_page_size,
    shard_size: int = Settings.fanout_shard_size,
    launch: ShardLauncher | None = None,
    report: DeliveryReport | None = None,
    prune_depth: int = 2,
) -> DeliveryReport:
    """Send every delivery; a connection answering 410 is pruned (its records and memberships
    removed, presence ``leave`` announced) unless it is still connecting.

    With ``launch``, a room of more than ``shard_size`` members is posted to its first
    ``shard_size`` here, and every further range of ``shard_size`` is handed to ``launch``.
    """
    report = report or DeliveryReport()
    options = DeliveryOptions(page_size, shard_size, launch)
    todo = units(deliveries)
    if todo:
        gone = api.run(_post_units(service, api, todo, options, report, None))
        _prune(service, api, gone, options, report, prune_depth)
    return report


def deliver_range(
    service: ChatService,
    api: ConnectionsApi,
    shard: Shard,
    *,
    page_size: int = Settings.fanout_page_size,
    launch: ShardLauncher | None = None,
    report: DeliveryReport | None = None,
) -> DeliveryReport:
    """Post a shard's frames to its key range of the room (``websocket-fanout``), then prune; or,
    for a planning shard, launch the ranges it covers."""
    report = report or DeliveryReport()
    if shard.plans:
        if launch is None:
            raise ValueError("a planning shard needs a launcher")
        launch_ranges(service, shard, launch, report)
        return report
    options = DeliveryOptions(page_size, shard.limit, launch)
    gone = api.run(_post_units(service, api, [shard.room_pass], options, report, shard))
    _prune(service, api, gone, options, report, 1)
    return report


async def _post_units(
    service: ChatService,
    api: ConnectionsApi,
    todo: list[ToConnection | RoomPass],
    options: DeliveryOptions,
    report: DeliveryReport,
    shard: Shard | None,
) -> dict[str, set[str]]:
    """Post every unit; the connections that answered 410, each with the rooms it was reached in."""
    direct = {unit.connection_id for unit in todo if isinstance(unit, ToConnection)}
    last: dict[str, asyncio.Task[list[PostResult]]] = {}
    """The latest posts to each directly named connection: later frames to it wait for them."""
    gone: dict[str, set[str]] = {}
    singles: list[asyncio.Task[list[PostResult]]] = []
    unsent: dict[str, list[bytes]] = {}
    """Per connection, in order, the frames a throttled or failed post left unsent."""

    def account(connection_id: str, room: str | None, results: list[PostResult]) -> None:
        report.results.update(result.value for result in results)
        if PostResult.GONE in results:
            rooms = gone.setdefault(connection_id, set())
            if room is not None:
                rooms.add(room)

    def post(connection_id: str, frames: list[bytes]) -> asyncio.Task[list[PostResult]]:
        task = asyncio.create_task(post_in_order(api, connection_id, frames, last.get(connection_id), unsent))
        if connection_id in direct:
            last[connection_id] = task
        return task

    try:
        for unit in todo:
            if isinstance(unit, ToConnection):
                task = post(unit.connection_id, [dumps(unit.frame)])
                task.add_done_callback(functools.partial(_account_single, account, unit.connection_id))
                singles.append(task)
                continue
            await post_room(service, api, unit, options, report, shard, post, account)
    finally:
        await asyncio.gather(*singles, return_exceptions=True)
    await redeliver(api, unsent, report, account)
    return gone


def _account_single(account: Account, connection_id: str, task: asyncio.Task[list[PostResult]]) -> None:
    if not task.cancelled() and task.exception() is None:
        account(connection_id, None, task.result())


def _prune(
    service: ChatService,
    api: ConnectionsApi,
    gone: dict[str, set[str]],
    options: DeliveryOptions,
    report: DeliveryReport,
    prune_depth: int,
) -> None:
    """Prune every gone connection, then deliver the announcements once: duplicates dropped and
    each room's frames merged into one pass over its members."""
    announcements: list[Delivery] = []
    for connection_id, rooms in gone.items():
        found = service.prune(connection_id, rooms=frozenset(rooms))
        log.info("gone connection", gone_connection_id=connection_id, announcements=len(found))
        report.pruned.append(connection_id)
        announcements += found
    if prune_depth <= 0 or not announcements:
        return
    unique: dict[str, Delivery] = {}
    for announcement in announcements:
        unique.setdefault(_identity(announcement), announcement)
    ordered = sorted(unique.values(), key=lambda d: (0, d.room) if isinstance(d, ToRoom) else (1, ""))
    deliver(
        service,
        api,
        ordered,
        page_size=options.page_size,
        shard_size=options.shard_size,
        launch=options.launch,
        report=report,
        prune_depth=prune_depth - 1,
    )


def _identity(delivery: Delivery) -> str:
    if isinstance(delivery, ToConnection):
        return json.dumps(["c", delivery.connection_id, delivery.frame], sort_keys=True)
    return json.dumps(["r", delivery.room, delivery.frame, sorted(delivery.exclude)], sort_keys=True)
