"""Deliver a service's frames: resolve rooms to connections page by page, post as pages arrive,
hand the ranges of a large room to ``websocket-fanout``, and prune the dead in one batch.

Memory is bounded whatever the room's size: a room is read one Query page at a time and at most
two pages' posts are in flight (one posting while the next is read). Order is kept for every
connection that receives several frames of one delivery list (e.g. an ``ack`` then its
``message``): a room's frames are posted only after the previous room's, and a connection named
directly is posted to only after its earlier frames arrived. Connections that answered 410 are
pruned together at the end, and the presence ``leave`` frames that produces are delivered once,
each room read once for all of them.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from serverless_app.chat.fanout import ConnectionsApi, PostResult
from serverless_app.chat.protocol import ServerFrame, dumps
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom

__all__ = ["DeliveryReport", "RoomPass", "Shard", "ShardLauncher", "deliver", "deliver_range"]

log = structlog.get_logger(__name__)

PAGES_IN_FLIGHT = 2
"""A room's pages whose posts may be under way at once (one posting while the next is read)."""


@dataclass
class DeliveryReport:
    results: Counter[str] = field(default_factory=Counter)
    pruned: list[str] = field(default_factory=list)
    shards: int = 0
    """Key ranges handed to ``websocket-fanout``."""


@dataclass(frozen=True)
class RoomPass:
    """Frames for one room, posted in one read of its members (each member gets them in order)."""

    room: str
    frames: tuple[tuple[ServerFrame, frozenset[str]], ...]
    """Each frame with the connections it must not go to."""


@dataclass(frozen=True)
class Shard:
    """A key range of a room and the frames to post to it: what ``websocket-fanout`` is invoked with."""

    room_pass: RoomPass
    start_key: dict[str, Any]
    limit: int

    def to_json(self, callback_url: str) -> dict[str, Any]:
        return {
            "room": self.room_pass.room,
            "frames": [{"frame": frame, "exclude": sorted(ex)} for frame, ex in self.room_pass.frames],
            "start_key": self.start_key,
            "limit": self.limit,
            "callback_url": callback_url,
        }

    @classmethod
    def from_json(cls, event: dict[str, Any]) -> Shard:
        frames = tuple((dict(f["frame"]), frozenset(f.get("exclude", ()))) for f in event["frames"])
        return cls(RoomPass(str(event["room"]), frames), dict(event["start_key"]), int(event["limit"]))


ShardLauncher = Callable[[Shard], None]
"""Hands a shard to ``websocket-fanout`` (an asynchronous Lambda invocation); raises if it could not."""


@dataclass(frozen=True)
class _Plan:
    page_size: int
    shard_size: int
    launch: ShardLauncher | None


def deliver(
    service: ChatService,
    api: ConnectionsApi,
    deliveries: list[Delivery],
    *,
    page_size: int = 200,
    shard_size: int = 1000,
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
    plan = _Plan(page_size, shard_size, launch)
    units = _units(deliveries)
    if units:
        gone = api.run(_post_units(service, api, units, plan, report, None))
        _prune(service, api, gone, plan, report, prune_depth)
    return report


def deliver_range(
    service: ChatService,
    api: ConnectionsApi,
    shard: Shard,
    *,
    page_size: int = 200,
    launch: ShardLauncher | None = None,
    report: DeliveryReport | None = None,
) -> DeliveryReport:
    """Post a shard's frames to its key range of the room (``websocket-fanout``), then prune."""
    report = report or DeliveryReport()
    plan = _Plan(page_size, shard.limit, launch)
    gone = api.run(_post_units(service, api, [shard.room_pass], plan, report, shard))
    _prune(service, api, gone, plan, report, 1)
    return report


# --- planning ----------------------------------------------------------------------------


def _units(deliveries: list[Delivery]) -> list[ToConnection | RoomPass]:
    """Deliveries in order, consecutive ones to the same room merged into one pass over it."""
    units: list[ToConnection | RoomPass] = []
    for delivery in deliveries:
        if isinstance(delivery, ToConnection):
            units.append(delivery)
            continue
        entry = (delivery.frame, delivery.exclude)
        previous = units[-1] if units else None
        if isinstance(previous, RoomPass) and previous.room == delivery.room:
            units[-1] = RoomPass(delivery.room, (*previous.frames, entry))
        else:
            units.append(RoomPass(delivery.room, (entry,)))
    return units


# --- posting -----------------------------------------------------------------------------


async def _post_units(
    service: ChatService,
    api: ConnectionsApi,
    units: list[ToConnection | RoomPass],
    plan: _Plan,
    report: DeliveryReport,
    shard: Shard | None,
) -> dict[str, set[str]]:
    """Post every unit; the connections that answered 410, each with the rooms it was reached in."""
    direct = {unit.connection_id for unit in units if isinstance(unit, ToConnection)}
    last: dict[str, asyncio.Task[list[PostResult]]] = {}
    """The latest posts to each directly named connection: later frames to it wait for them."""
    gone: dict[str, set[str]] = {}
    singles: list[asyncio.Task[list[PostResult]]] = []

    def account(connection_id: str, room: str | None, results: list[PostResult]) -> None:
        report.results.update(result.value for result in results)
        if PostResult.GONE in results:
            rooms = gone.setdefault(connection_id, set())
            if room is not None:
                rooms.add(room)

    def post(connection_id: str, frames: list[bytes]) -> asyncio.Task[list[PostResult]]:
        task = asyncio.create_task(_post_in_order(api, connection_id, frames, last.get(connection_id)))
        if connection_id in direct:
            last[connection_id] = task
        return task

    try:
        for unit in units:
            if isinstance(unit, ToConnection):
                task = post(unit.connection_id, [dumps(unit.frame)])
                task.add_done_callback(functools.partial(_account_single, account, unit.connection_id))
                singles.append(task)
                continue
            await _post_room(service, api, unit, plan, report, shard, post, account)
    finally:
        await asyncio.gather(*singles, return_exceptions=True)
    return gone


def _account_single(
    account: Callable[[str, str | None, list[PostResult]], None],
    connection_id: str,
    task: asyncio.Task[list[PostResult]],
) -> None:
    if not task.cancelled() and task.exception() is None:
        account(connection_id, None, task.result())


async def _post_in_order(
    api: ConnectionsApi,
    connection_id: str,
    frames: list[bytes],
    after: asyncio.Task[list[PostResult]] | None,
) -> list[PostResult]:
    """Post ``frames`` one after the other once ``after`` is done; stop at a 410."""
    if after is not None:
        earlier = await asyncio.gather(after, return_exceptions=True)
        if isinstance(earlier[0], list) and PostResult.GONE in earlier[0]:
            return []
    results: list[PostResult] = []
    for data in frames:
        result = await api.post_async(connection_id, data)
        results.append(result)
        if result is PostResult.GONE:
            break
    return results


_END = object()


async def _post_room(
    service: ChatService,
    api: ConnectionsApi,
    unit: RoomPass,
    plan: _Plan,
    report: DeliveryReport,
    shard: Shard | None,
    post: Callable[[str, list[bytes]], asyncio.Task[list[PostResult]]],
    account: Callable[[str, str | None, list[PostResult]], None],
) -> None:
    """One pass over the room's members (or the shard's range), posting each page as it arrives."""
    encoded = [(dumps(frame), exclude) for frame, exclude in unit.frames]
    everyone = ToRoom(unit.room, {})
    sharded = shard is None and plan.launch is not None
    limit = shard.limit if shard is not None else plan.shard_size if sharded else None
    pages: Iterator[tuple[list[str], dict[str, Any] | None]] = service.recipient_pages(
        everyone,
        page_size=min(plan.page_size, limit) if limit else plan.page_size,
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
        if sharded and next_key is not None and plan.launch is not None:
            # The room goes on past this invocation's range: hand the rest on, range by range,
            # while this range's last posts finish.
            handing_on = asyncio.ensure_future(
                asyncio.to_thread(_hand_on, service, unit, next_key, plan, plan.launch, report)
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


async def _settle(
    room: str,
    posts: list[tuple[str, asyncio.Task[list[PostResult]]]],
    account: Callable[[str, str | None, list[PostResult]], None],
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


def _hand_on(
    service: ChatService,
    unit: RoomPass,
    start_key: dict[str, Any],
    plan: _Plan,
    launch: ShardLauncher,
    report: DeliveryReport,
) -> None:
    """Launch one shard per ``shard_size`` members from ``start_key`` on (reads the room's keys;
    a range found empty is not launched)."""
    key: dict[str, Any] | None = start_key
    while key is not None:
        ranges = service.recipient_pages(
            ToRoom(unit.room, {}), page_size=plan.shard_size, start_key=key, limit=plan.shard_size
        )
        ids, next_key = next(ranges, ([], None))
        if ids:
            launch(Shard(unit, key, plan.shard_size))
            report.shards += 1
        key = next_key


# --- pruning -----------------------------------------------------------------------------


def _prune(
    service: ChatService,
    api: ConnectionsApi,
    gone: dict[str, set[str]],
    plan: _Plan,
    report: DeliveryReport,
    prune_depth: int,
) -> None:
    """Prune every gone connection, then deliver the announcements once: duplicates dropped and
    each room's frames merged into one pass over its members."""
    announcements: list[Delivery] = []
    for connection_id, rooms in gone.items():
        found = service.prune(connection_id, rooms=frozenset(rooms))
        log.info("gone connection", connection_id=connection_id, announcements=len(found))
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
        page_size=plan.page_size,
        shard_size=plan.shard_size,
        launch=plan.launch,
        report=report,
        prune_depth=prune_depth - 1,
    )


def _identity(delivery: Delivery) -> str:
    if isinstance(delivery, ToConnection):
        return json.dumps(["c", delivery.connection_id, delivery.frame], sort_keys=True)
    return json.dumps(["r", delivery.room, delivery.frame, sorted(delivery.exclude)], sort_keys=True)
