"""Sections 1–4 of ``make bench``: the scenarios, and one scenario run through the stack or the floor.

A :class:`Scenario` is a ``wschat bench`` load (:meth:`Scenario.config`); :func:`through_stack`
runs one against the local stack and adds what the server side did during the send phase
(DynamoDB units, ``websocket-default`` durations and CPU, the gateway's RSS and CPU) as a
:class:`StackRun`; :func:`through_floor` runs the same load against the floor server.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from benchmarks import procfs
from benchmarks.stack import Stack
from serverless_app.bench.config import BenchConfig
from serverless_app.bench.load import run_bench
from serverless_app.bench.report import summary
from serverless_app.bench.result import BenchResult
from serverless_app.bench.stats import percentiles

__all__ = ["COST", "FANOUT", "WARMUP", "Scenario", "StackRun", "through_floor", "through_stack"]


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    rooms: int
    senders: int
    messages: int
    rate: float
    users_per_room: int = 0
    seed_rooms: bool = False
    connect_rate: float = 450.0

    def config(self, url: str) -> BenchConfig:
        return BenchConfig(
            url=url,
            clients=self.clients,
            rooms=self.rooms,
            senders=self.senders,
            messages=self.messages,
            rate=self.rate,
            users_per_room=self.users_per_room,
            seed_rooms=self.seed_rooms,
            connect_rate=self.connect_rate,
            drain_s=15.0,
        )


# Fan-out: one room of N distinct users (a user may hold at most 10 connections and send 5
# messages/s, so one user's N tabs would be refused); seeded with one client, paced so messages
# rarely overlap. The unseeded fill itself is measured in section 5 (``benchmarks.rooms``).
FANOUT = [
    Scenario("fanout-10", 10, 1, 10, 100, 20.0, seed_rooms=True, connect_rate=100.0),
    Scenario("fanout-100", 100, 1, 10, 60, 10.0, seed_rooms=True, connect_rate=100.0),
    Scenario("fanout-500", 500, 1, 10, 30, 3.0, seed_rooms=True, connect_rate=100.0),
    Scenario("fanout-1000", 1000, 1, 10, 30, 2.0, seed_rooms=True, connect_rate=100.0),
]
# Cost: rooms of 10 distinct users; total connections grow, the room does not.
COST = [
    Scenario("cost-10", 10, 1, 10, 60, 10.0),
    Scenario("cost-100", 100, 10, 10, 60, 10.0),
    Scenario("cost-1000", 1000, 100, 10, 60, 10.0),
]
WARMUP = Scenario("warmup", 40, 4, 4, 20, 10.0, users_per_room=1, seed_rooms=True, connect_rate=50.0)


@dataclass
class StackRun:
    """One scenario through the stack: the load tool's result and the server-side measurements."""

    scenario: Scenario
    result: BenchResult
    stats: dict[str, Any] = field(default_factory=dict)
    rss_before: int = 0
    rss_connected: int = 0
    default_cpu_s: float = 0.0
    gateway_cpu_s: float = 0.0
    records_10s_after_close: int | None = None
    durations_ms: list[float] = field(default_factory=list)
    """``websocket-default`` invocation durations during the send phase (from the gateway's log)."""

    def billed_ms(self) -> list[float]:
        return [float(math.ceil(d)) for d in self.durations_ms]

    def units(self) -> tuple[float, float]:
        dynamodb = self.stats.get("dynamodb", {})
        reads = sum(float(op.get("read_units", 0.0)) for op in dynamodb.values())
        writes = sum(float(op.get("write_units", 0.0)) for op in dynamodb.values())
        return reads, writes

    def per_message(self) -> tuple[float, float]:
        sent = max(1, self.result.accounting.sent)
        reads, writes = self.units()
        return reads / sent, writes / sent

    def default_stats(self) -> dict[str, Any]:
        return dict(self.stats.get("lambda", {}).get("websocket-default", {}))

    def cpu_ms_per_delivery(self) -> float:
        return self.default_cpu_s * 1000 / max(1, self.result.accounting.delivered)

    def to_json(self) -> dict[str, Any]:
        reads, writes = self.per_message()
        return {
            "scenario": self.scenario.name,
            "bench": self.result.to_json(),
            "stats": self.stats,
            "read_units_per_message": reads,
            "write_units_per_message": writes,
            "gateway_rss_before_bytes": self.rss_before,
            "gateway_rss_connected_bytes": self.rss_connected,
            "gateway_rss_per_connection_bytes": (self.rss_connected - self.rss_before)
            / self.scenario.clients,
            "websocket_default_cpu_s": self.default_cpu_s,
            "websocket_default_cpu_ms_per_delivery": self.cpu_ms_per_delivery(),
            "gateway_cpu_s": self.gateway_cpu_s,
            "connection_records_10s_after_close": self.records_10s_after_close,
            "websocket_default_duration_ms": percentiles(self.durations_ms).as_dict(),
            "websocket_default_billed_ms": percentiles(self.billed_ms()).as_dict(),
        }


async def through_stack(stack: Stack, scenario: Scenario, *, count_records: bool = False) -> StackRun:
    """Run ``scenario`` through the stack, measuring the server side over the send phase only
    (counters reset once every client has its ``welcome``); with ``count_records``, the connection
    records left 10 s after the clients closed."""
    await stack.quiet()
    # connections an earlier scenario left "open" in the gateway (see analysis.md) are not ours
    leftover = int((await stack.stats())["connections"]["open"])
    run = StackRun(scenario=scenario, result=None)  # type: ignore[arg-type]
    run.rss_before = procfs.rss_bytes(stack.process.pid)
    marks: dict[str, float] = {}

    async def connected() -> None:
        await stack.quiet(open_connections=leftover + scenario.clients, timeout_s=30.0)
        run.rss_connected = procfs.rss_bytes(stack.process.pid)
        marks["default_cpu"] = stack.worker_cpu_s("websocket-default")
        marks["gateway_cpu"] = procfs.cpu_seconds(stack.process.pid)
        await stack.reset()
        marks["log"] = stack.log_offset()

    async def drained() -> None:
        await stack.quiet(timeout_s=15.0)
        run.stats = await stack.stats()
        run.default_cpu_s = stack.worker_cpu_s("websocket-default") - marks["default_cpu"]
        run.gateway_cpu_s = procfs.cpu_seconds(stack.process.pid) - marks["gateway_cpu"]
        run.durations_ms = stack.durations_ms(int(marks["log"]))

    stack.console.rule(f"{scenario.name} · local stack")
    run.result = await run_bench(
        scenario.config(stack.url), console=stack.console, on_connected=connected, on_drained=drained
    )
    closed_at = time.monotonic()
    stack.console.print(summary(run.result))
    if count_records:
        await asyncio.sleep(max(0.0, closed_at + 10.0 - time.monotonic()))
        run.records_10s_after_close = await asyncio.to_thread(stack.connection_records)
    return run


async def through_floor(url: str, scenario: Scenario, console: Console) -> BenchResult:
    """Run ``scenario`` against the floor server at ``url``."""
    console.rule(f"{scenario.name} · floor")
    result = await run_bench(scenario.config(url), console=console)
    console.print(summary(result))
    return result
