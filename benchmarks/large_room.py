"""Issue 10 §4: a simulated large room — N member records in DynamoDB Local, a ``@connections``
sink that answers every POST after a fixed 20 ms, and the real fan-out code posting to it.

* DynamoDB Local (in memory, its own process) gets the stack's tables and, per room size N, N
  ``member#<id>`` items in ``websocket-rooms`` written directly (the shape ``RoomStore.enter``
  writes: ``room``, ``sk``, ``connection_id``, ``user_id``, ``ttl``);
* the sink is an aiohttp server on 127.0.0.1 in this process: ``POST /prod/@connections/{id}``
  sleeps 20 ms, records (time, id) and answers 200, as API Gateway would for a live connection;
* the fan-out runs in a process of its own (a warm "container": imports done, one small delivery
  made first): ``serverless_app.chat.delivery.deliver`` with the ``ConnectionsApi`` and settings the
  handlers use (``FANOUT_RATE_PER_S`` 1,000, 32 connections, pages of 200). *Unsharded*: no
  launcher, the one process posts to the whole room. *Sharded*: a launcher hands every further range
  of ``FANOUT_SHARD_SIZE`` members to warm shard processes (one per shard, as Lambda would run one
  container per async invocation), each running ``deliver_range`` like ``websocket-fanout``.

Measured: time from ``deliver`` being called to the first and to the last POST at the sink, the
peak RSS of each fan-out process during the delivery (``VmHWM`` after resetting it through
``/proc/self/clear_refs``, so imports do not count), the aggregate POST rate at the sink (peak over
any 1 s window; AWS's account quota is 10,000/s), and lost/duplicated posts (every member must get
exactly one).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console

from serverless_app.local.dynamodb_local import create_tables, dynamodb_client, running_dynamodb_local

__all__ = ["LargeRoomResults", "measure_large_rooms"]

SINK_LATENCY_S = 0.020
STAGE = "prod"
SHARD_SIZE = 1000
SIZES = (100, 2_000, 20_000)
QUICK_SIZES = (100, 2_000)
MAX_SHARD_PROCESSES = 24
"""Bound on shard processes started for one run (20,000 / 1,000 = 20 shards; 19 leave the sender)."""
RUN_BOUND_S = 180.0
"""No run may take longer than this (the 20,000 room unsharded needs ~20 s at 1,000 posts/s)."""


# --- the sink --------------------------------------------------------------------------------


class Sink:
    """A ``@connections`` endpoint that answers every POST with 200 after ``latency_s``."""

    def __init__(self, latency_s: float = SINK_LATENCY_S) -> None:
        self.latency_s = latency_s
        self.posts: list[tuple[float, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.latency_s)
        self.posts.append((time.monotonic(), request.match_info["id"]))
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(f"/{STAGE}/@connections/{{id}}", self._post)
        app.router.add_post(f"/{STAGE}/%40connections/{{id}}", self._post)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/{STAGE}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# --- the fan-out processes ---------------------------------------------------------------------


def _vm(field_name: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
    except OSError:
        pass


def _container(env: dict[str, str], sink_url: str) -> tuple[Any, Any]:
    os.environ.update(env)
    import boto3

    from serverless_app.chat.connections_api import ConnectionsApi
    from serverless_app.chat.service import ChatService
    from serverless_app.chat.settings import Settings
    from serverless_app.chat.store import DynamoDBStore as ChatStore

    settings = Settings.from_env()
    client = boto3.client("dynamodb", endpoint_url=env["DYNAMODB_ENDPOINT"], region_name="us-east-1")
    service = ChatService(ChatStore(client, settings), settings, clock=time.time)
    api = ConnectionsApi(
        sink_url, concurrency=settings.fanout_concurrency, rate_per_s=settings.fanout_rate_per_s
    )
    return service, api


def _frame(room: str) -> dict[str, Any]:
    return {
        "action": "message",
        "room": room,
        "user_id": "bench-sender",
        "message": "a message to a large room",
        "timestamp": "2026-11-27T00:00:00.000000Z",
        "message_id": "0" * 32,
        "cursor": "2026-11-27T00:00:00.000000Z#" + "0" * 32,
    }


def _sender(
    env: dict[str, str], sink_url: str, room: str, sharded: bool, shards: Any, results: Any, go: Any
) -> None:
    """The sending ``websocket-default`` container: warm up, wait for ``go``, deliver to ``room``."""
    from serverless_app.chat.delivery import Shard, deliver
    from serverless_app.chat.service import ToRoom

    service, api = _container(env, sink_url)
    settings = service._settings
    deliver(service, api, [ToRoom("warm-up", _frame("warm-up"))], page_size=settings.fanout_page_size)
    launched: list[float] = []

    def launch(shard: Shard) -> None:
        launched.append(time.monotonic())
        shards.put(shard.to_json(sink_url))

    results.put({"role": "ready"})
    go.wait(60)
    _reset_peak()
    base = _vm("VmRSS")
    started = time.monotonic()
    report = deliver(
        service,
        api,
        [ToRoom(room, _frame(room))],
        page_size=settings.fanout_page_size,
        shard_size=settings.fanout_shard_size,
        launch=launch if sharded else None,
    )
    results.put(
        {
            "role": "sender",
            "started": started,
            "finished": time.monotonic(),
            "rss_base": base,
            "rss_peak": _vm("VmHWM"),
            "results": dict(report.results),
            "shards": report.shards,
            "plans": report.plans,
            "launched": launched,
        }
    )


def _shard_worker(env: dict[str, str], sink_url: str, shards: Any, results: Any) -> None:
    """A warm ``websocket-fanout`` container: runs shards from the queue until it gets ``None``."""
    from serverless_app.chat.delivery import Shard, deliver
    from serverless_app.chat.service import ToRoom

    service, api = _container(env, sink_url)
    settings = service._settings
    deliver(service, api, [ToRoom("warm-up", _frame("warm-up"))], page_size=settings.fanout_page_size)
    results.put({"role": "ready"})
    from serverless_app.chat.delivery import deliver_range

    while True:
        event = shards.get()
        if event is None:
            return
        _reset_peak()
        base = _vm("VmRSS")
        started = time.monotonic()
        shard = Shard.from_json(event)
        report = deliver_range(
            service,
            api,
            shard,
            page_size=settings.fanout_page_size,
            launch=lambda shard: shards.put(shard.to_json(sink_url)),  # a planning shard launches ranges
        )
        results.put(
            {
                "role": "shard",
                "plans": shard.plans,
                "launched": report.shards + report.plans,
                "started": started,
                "finished": time.monotonic(),
                "rss_base": base,
                "rss_peak": _vm("VmHWM"),
                "results": dict(report.results),
            }
        )


# --- one run -------------------------------------------------------------------------------------


@dataclass
class LargeRun:
    members: int
    sharded: bool
    shard_size: int
    first_post_ms: float = 0.0
    last_post_ms: float = 0.0
    posts: int = 0
    distinct: int = 0
    duplicated: int = 0
    lost: int = 0
    peak_rate: int = 0
    sender_rss_base: int = 0
    sender_rss_peak: int = 0
    shard_rss_peak: int = 0
    """The largest peak RSS growth (peak − RSS at the shard's start) over the shard processes."""
    shards: int = 0
    sender_done_ms: float = 0.0
    first_launch_ms: float | None = None
    """When the sender handed on its first shard."""
    last_launch_ms: float | None = None
    """When the last range was launched: the end of the last planning shard (the sender launches
    only the first planning shard)."""
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _write_members(endpoint: str, room: str, members: int) -> None:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    from serverless_app.definitions import ROOMS_TABLE

    ttl = str(int(time.time()) + 86_400)

    def batch(start: int) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "room": {"S": room},
                        "sk": {"S": f"member#c{i:07d}="},
                        "connection_id": {"S": f"c{i:07d}="},
                        "user_id": {"S": f"user-{i}"},
                        "ttl": {"N": ttl},
                    }
                }
            }
            for i in range(start, min(start + 25, members))
        ]
        pending = {ROOMS_TABLE.name: requests}
        for _ in range(20):
            response = client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(0.05)
        raise RuntimeError("DynamoDB Local left items unprocessed")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(batch, range(0, members, 25)))


async def _one_run(
    sink: Sink, env: dict[str, str], room: str, members: int, sharded: bool, console: Console
) -> LargeRun:
    ctx = mp.get_context("spawn")
    run = LargeRun(members=members, sharded=sharded, shard_size=int(env["FANOUT_SHARD_SIZE"]))
    shards_q: Any = ctx.Queue()
    results: Any = ctx.Queue()
    go = ctx.Event()
    workers = 0
    if sharded:
        workers = min(MAX_SHARD_PROCESSES, max(0, (members - 1) // run.shard_size))
    processes = [ctx.Process(target=_sender, args=(env, sink.url, room, sharded, shards_q, results, go))]
    processes += [
        ctx.Process(target=_shard_worker, args=(env, sink.url, shards_q, results)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, Any]] = []
    try:
        ready = 0
        deadline = time.monotonic() + 120
        while ready < len(processes) and time.monotonic() < deadline:
            try:
                message = await asyncio.to_thread(results.get, True, 1.0)
            except queue.Empty:
                continue
            ready += message["role"] == "ready"
        sink.posts.clear()
        go.set()
        expected_shards = 0
        """Shard events handed on so far (by the sender and by planning shards): the run is over
        when as many shard reports have arrived."""
        deadline = time.monotonic() + RUN_BOUND_S
        sender: dict[str, Any] | None = None
        shard_reports = 0
        while time.monotonic() < deadline:
            try:
                message = await asyncio.to_thread(results.get, True, 0.5)
            except queue.Empty:
                continue
            reports.append(message)
            if message["role"] == "sender":
                sender = message
                expected_shards += int(message["shards"]) + int(message.get("plans", 0))
            if message["role"] == "shard":
                shard_reports += 1
                expected_shards += int(message["launched"])
            if sender is not None and shard_reports >= expected_shards:
                break
        else:
            run.errors.append(f"not finished within {RUN_BOUND_S:g} s")
    finally:
        for _ in range(workers):
            shards_q.put(None)
        for process in processes:
            await asyncio.to_thread(process.join, 30)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 10)
    sender = next((r for r in reports if r["role"] == "sender"), None)
    if sender is None:
        run.errors.append("the sending process reported nothing")
        return run
    t0 = float(sender["started"])
    times = sorted(t for t, _ in sink.posts)
    ids = Counter(cid for _, cid in sink.posts)
    run.posts = len(sink.posts)
    run.distinct = len(ids)
    run.duplicated = sum(n - 1 for n in ids.values())
    run.lost = members - len(ids)
    if times:
        run.first_post_ms = (times[0] - t0) * 1000
        run.last_post_ms = (times[-1] - t0) * 1000
        per_second = Counter(int(t - times[0]) for t in times)
        run.peak_rate = max(per_second.values())
    run.sender_done_ms = (float(sender["finished"]) - t0) * 1000
    run.sender_rss_base = int(sender["rss_base"])
    run.sender_rss_peak = int(sender["rss_peak"])
    run.shards = sum(1 for r in reports if r["role"] == "shard" and not r["plans"])
    if sender["launched"]:
        run.first_launch_ms = (min(sender["launched"]) - t0) * 1000
        run.last_launch_ms = (max(sender["launched"]) - t0) * 1000
    planners = [float(r["finished"]) for r in reports if r["role"] == "shard" and r["plans"]]
    if planners:
        run.last_launch_ms = (max(planners) - t0) * 1000
    growth = [int(r["rss_peak"]) - int(r["rss_base"]) for r in reports if r["role"] == "shard"]
    run.shard_rss_peak = max(growth, default=0)
    console.print(
        f"  {members:>6,} members {'sharded' if sharded else 'unsharded':>9}: first post "
        f"{run.first_post_ms:.0f} ms, last {run.last_post_ms:.0f} ms, {run.posts:,} posts "
        f"({run.lost} lost, {run.duplicated} dup), sender peak +"
        f"{(run.sender_rss_peak - run.sender_rss_base) / 2**20:.1f} MiB, shards {run.shards}"
    )
    return run


# --- all runs, and the report -----------------------------------------------------------------


@dataclass
class LargeRoomResults:
    runs: list[LargeRun] = field(default_factory=list)
    load_average: str = ""
    shard_size: int = SHARD_SIZE

    def to_json(self) -> list[dict[str, Any]]:
        return [run.to_json() for run in self.runs]

    def _run(self, members: int, sharded: bool) -> LargeRun | None:
        return next((r for r in self.runs if r.members == members and r.sharded == sharded), None)

    def markdown(self) -> list[str]:
        lines = ["## 6. A simulated large room: the fan-out against a 20 ms `@connections` sink", ""]
        lines.append(
            "N `member#` records written straight into DynamoDB Local's `websocket-rooms`; a local "
            "`@connections` sink on 127.0.0.1 answers every POST with 200 after 20 ms; the fan-out is "
            "`delivery.deliver` in a warm process of its own with the handlers' settings "
            f"(`FANOUT_RATE_PER_S` 1,000, 32 connections, pages of 200). *Sharded*: `FANOUT_SHARD_SIZE` "
            f"{self.shard_size:,}; the sender posts the first range and launches one shard per further range, "
            "each run by its own warm process (`deliver_range`, as `websocket-fanout`), all on the same "
            "2 cores. Times are from `deliver` being called. RSS growth = peak RSS during the delivery "
            "(`VmHWM`, reset just before) minus RSS just before. Peak rate = most POSTs the sink answered "
            f"in any 1 s window (all processes together). Load average before: {self.load_average}."
        )
        lines.append("")
        lines.append(
            "| members | sharded | first post (ms) | last post (ms) | sender done (ms) | shards "
            "| first / last shard launched (ms) | sender RSS growth (MiB) | largest shard RSS growth (MiB) "
            "| peak posts/s | lost / dup |"
        )
        lines.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for run in self.runs:
            lines.append(
                f"| {run.members:,} | {'yes' if run.sharded else 'no'} | {run.first_post_ms:,.1f} "
                f"| {run.last_post_ms:,.0f} | {run.sender_done_ms:,.0f} | {run.shards} "
                f"| {'-' if run.first_launch_ms is None else f'{run.first_launch_ms:,.0f} / {run.last_launch_ms or 0:,.0f}'} "
                f"| {(run.sender_rss_peak - run.sender_rss_base) / 2**20:.1f} "
                f"| {run.shard_rss_peak / 2**20:.1f} | {run.peak_rate:,} | {run.lost} / {run.duplicated} |"
                + (f" {'; '.join(run.errors)}" if run.errors else "")
            )
        lines.append("")
        return lines

    def targets(self) -> list[tuple[str, str, bool]]:
        rows: list[tuple[str, str, bool]] = []
        small = self._run(100, False)
        for sharded in (False, True):
            big = self._run(max(r.members for r in self.runs), sharded)
            base = self._run(100, sharded) or small
            if big is None or base is None:
                continue
            ratio = big.first_post_ms / max(1e-9, base.first_post_ms)
            rows.append(
                (
                    f"time to first post, {big.members:,} within 2× of 100 ({'sharded' if sharded else 'unsharded'})",
                    f"{big.first_post_ms:.1f} vs {base.first_post_ms:.1f} ms ({ratio:.2f}×)",
                    ratio <= 2.0,
                )
            )
            growth = [
                (r.members, r.sender_rss_peak - r.sender_rss_base) for r in self.runs if r.sharded == sharded
            ]
            worst = max(g for _, g in growth)
            rows.append(
                (
                    f"fan-out process memory bounded, no growth with room size ({'sharded' if sharded else 'unsharded'})",
                    ", ".join(f"{m:,}: +{g / 2**20:.1f} MiB" for m, g in growth),
                    worst <= 16 * 2**20,
                )
            )
        lost = sum(r.lost for r in self.runs)
        dup = sum(r.duplicated for r in self.runs)
        rows.append(
            ("large rooms: every member posted exactly once", f"lost {lost}, dup {dup}", lost == dup == 0)
        )
        return rows


async def measure_large_rooms(
    *,
    quick: bool,
    console: Console,
    sizes: tuple[int, ...] | None = None,
    shard_size: int = SHARD_SIZE,
    dynamodb_endpoint: str | None = None,
    modes: tuple[bool, ...] = (False, True),
) -> LargeRoomResults:
    """Every size unsharded, then every size sharded; DynamoDB Local is started unless given."""
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    out = LargeRoomResults(
        load_average=" ".join(Path("/proc/loadavg").read_text().split()[:3]), shard_size=shard_size
    )
    console.rule("simulated large rooms (DynamoDB Local + a 20 ms @connections sink)")
    with ExitStack() as stack:
        if dynamodb_endpoint is None:
            dynamodb_endpoint = stack.enter_context(running_dynamodb_local()).endpoint_url
        await _simulate(out, sizes, shard_size, dynamodb_endpoint, console, modes)
    return out


async def _simulate(
    out: LargeRoomResults,
    sizes: tuple[int, ...],
    shard_size: int,
    endpoint: str,
    console: Console,
    modes: tuple[bool, ...],
) -> None:
    room_prefix = f"large-{os.getpid()}-{int(time.time())}"
    await asyncio.to_thread(create_tables, dynamodb_client(endpoint))
    for members in sizes:
        started = time.monotonic()
        await asyncio.to_thread(_write_members, endpoint, f"{room_prefix}-{members}", members)
        console.print(f"  wrote {members:,} member records in {time.monotonic() - started:.1f} s")
    sink = Sink()
    await sink.start()
    try:
        env = {
            "DYNAMODB_ENDPOINT": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "FANOUT_SHARD_SIZE": str(shard_size),
            "FANOUT_RATE_PER_S": os.environ.get("FANOUT_RATE_PER_S", "1000"),
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": sink.url,
        }
        for sharded in modes:
            for members in sizes:
                room = f"{room_prefix}-{members}"
                out.runs.append(await _one_run(sink, env, room, members, sharded, console))
    finally:
        await sink.stop()
