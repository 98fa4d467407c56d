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
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from serverless_app.chat.connections_api import ConnectionsApi, PostResult
from serverless_app.chat.errors import StorageUnavailable
from serverless_app.chat.observability import logger as log
from serverless_app.chat.protocol import ServerFrame, dumps
from serverless_app.chat.service import ChatService, Delivery, ToConnection, ToRoom

__all__ = ["DeliveryReport", "RoomPass", "Shard", "ShardLauncher", "deliver", "deliver_range"]


PAGES_IN_FLIGHT = 2
"""A room's pages whose posts may be under way at once (one posting while the next is read)."""

REDELIVERY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
"""Pauses before each further round for posts still throttled (429) or failed (5xx, network) after
``ConnectionsApi``'s own retries; what is still unsent after the last round is counted ``unsent``."""

_UNSENT = (PostResult.THROTTLED, PostResult.FAILED)

REDELIVERY_CONCURRENCY = 4
"""Posts a later round makes at once: few, so a round behind a throttle trickles rather than
stampedes (every attempt of a stampede but the first few is another 429)."""

READ_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Pauses before reading a room's members again, from the page where storage failed: a message
already stored and acknowledged still reaches the room after a DynamoDB outage of up to ~15 s
(inside the functions' 30 s)."""

PLAN_SPAN = 100
"""Ranges one planning invocation of ``websocket-fanout`` launches before it hands the rest of the
room to the next planning invocation (100 ranges of 1,000: 100,000 members, a few seconds)."""

PLAN_LAUNCHERS = 8
"""Ranges a planning invocation launches at once (each launch is one asynchronous ``Invoke``)."""


@dataclass
class DeliveryReport:
    results: Counter[str] = field(default_factory=Counter)
    pruned: list[str] = field(default_factory=list)
    shards: int = 0
    """Key ranges handed to ``websocket-fanout``."""
    plans: int = 0
    """Planning invocations of ``websocket-fanout`` started (each launches up to ``PLAN_SPAN`` ranges)."""
    unlaunched: int = 0
    """Ranges a planning invocation could not launch (the Lambda API failed even after its retries)."""
    redelivered: int = 0
    """Frames posted again in a later round because they were throttled or failed."""
    unsent: int = 0
    """Frames still throttled or failed after every round: not delivered to a live connection
    (the message is stored; the client finds it in ``getHistory``)."""


@dataclass(frozen=True)
class RoomPass:
    """Frames for one room, posted in one read of its members (each member gets them in order)."""

    room: str
    frames: tuple[tuple[ServerFrame, frozenset[str]], ...]
    """Each frame with the connections it must not go to."""


@dataclass(frozen=True)
class Shard:
    """What ``websocket-fanout`` is invoked with: the frames for a room and a key range of its
    members — ``limit`` members from ``start_key`` on to post to or, when ``plans``, the rest of the
    room from ``start_key`` on, to split into ranges of ``limit`` and launch."""

    room_pass: RoomPass
    start_key: dict[str, Any]
    limit: int
    plans: bool = False

    def to_json(self, callback_url: str) -> dict[str, Any]:
        return {
            "room": self.room_pass.room,
            "frames": [{"frame": frame, "exclude": sorted(ex)} for frame, ex in self.room_pass.frames],
            "start_key": self.start_key,
            "limit": self.limit,
            "plans": self.plans,
            "callback_url": callback_url,
        }

    @classmethod
    def from_json(cls, event: dict[str, Any]) -> Shard:
        frames = tuple((dict(f["frame"]), frozenset(f.get("exclude", ()))) for f in event["frames"])
        return cls(
            RoomPass(str(event["room"]), frames),
            dict(event["start_key"]),
            int(event["limit"]),
            bool(event.get("plans", False)),
        )


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
    """Post a shard's frames to its key range of the room (``websocket-fanout``), then prune; or,
    for a planning shard, launch the ranges it covers."""
    report = report or DeliveryReport()
    if shard.plans:
        if launch is None:
            raise ValueError("a planning shard needs a launcher")
        _launch_ranges(service, shard, launch, report)
        return report
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
    unsent: dict[str, list[bytes]] = {}
    """Per connection, in order, the frames a throttled or failed post left unsent."""

    def account(connection_id: str, room: str | None, results: list[PostResult]) -> None:
        report.results.update(result.value for result in results)
        if PostResult.GONE in results:
            rooms = gone.setdefault(connection_id, set())
            if room is not None:
                rooms.add(room)

    def post(connection_id: str, frames: list[bytes]) -> asyncio.Task[list[PostResult]]:
        task = asyncio.create_task(
            _post_in_order(api, connection_id, frames, last.get(connection_id), unsent)
        )
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
    await _redeliver(api, unsent, report, account)
    return gone


async def _redeliver(
    api: ConnectionsApi,
    unsent: dict[str, list[bytes]],
    report: DeliveryReport,
    account: Callable[[str, str | None, list[PostResult]], None],
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


def _account_single(
    account: Callable[[str, str | None, list[PostResult]], None],
    connection_id: str,
    task: asyncio.Task[list[PostResult]],
) -> None:
    if not task.cancelled() and task.exception() is None:
        account(connection_id, None, task.result())


async def _post_when_free(
    slots: asyncio.Semaphore,
    api: ConnectionsApi,
    connection_id: str,
    frames: list[bytes],
    unsent: dict[str, list[bytes]],
) -> list[PostResult]:
    async with slots:
        return await _post_in_order(api, connection_id, frames, None, unsent)


async def _post_in_order(
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
    pages = _pages_outliving_outages(
        service,
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


def _pages_outliving_outages(
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
    """Hand the rest of the room, from ``start_key`` on, to one planning invocation: launching the
    ranges takes a Query and an ``Invoke`` each, which must not sit in the sender's 30 s."""
    launch(Shard(unit, start_key, plan.shard_size, plans=True))
    report.plans += 1


def _launch_ranges(service: ChatService, shard: Shard, launch: ShardLauncher, report: DeliveryReport) -> None:
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
        else:  # the rest of the room: counted as one unlaunched planning event, and said loudly
            report.unlaunched += 1
            log.error("rest of the room not handed on", room=room.room, error=str(onward.exception()))


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
