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

The sink is ``benchmarks.sink``, the fan-out processes ``benchmarks.fanout_process``, the results
and their markdown ``benchmarks.large_room_results``; this module writes the member records, starts
the processes, runs them and accounts for the posts.
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
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import fanout_process
from benchmarks.large_room_results import LargeRoomResults, LargeRun
from benchmarks.sink import Sink
from serverless_app.local.dynamodb_local import running_dynamodb_local
from serverless_app.local.dynamodb_tables import create_tables, dynamodb_client

__all__ = ["measure_large_rooms"]

SHARD_SIZE = 1000
SIZES = (100, 2_000, 20_000)
QUICK_SIZES = (100, 2_000)
MAX_SHARD_PROCESSES = 24
"""Bound on shard processes started for one run (20,000 / 1,000 = 20 shards; 19 leave the sender)."""
RUN_BOUND_S = 180.0
"""No run may take longer than this (the 20,000 room unsharded needs ~20 s at 1,000 posts/s)."""


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
    processes = [
        ctx.Process(target=fanout_process.sender, args=(env, sink.url, room, sharded, shards_q, results, go))
    ]
    processes += [
        ctx.Process(target=fanout_process.shard_worker, args=(env, sink.url, shards_q, results))
        for _ in range(workers)
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
        shard_size=shard_size, load_average=" ".join(Path("/proc/loadavg").read_text().split()[:3])
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
