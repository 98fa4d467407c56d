"""``make bench``: fan-out, cost, connection and Lambda numbers, side by side with the floor, in one run.

Starts the local stack (``benchmarks.stack_process``) and the floor server
(``benchmarks.floor_server``) as processes of their own, drives both with the ``wschat bench`` load
tool from this process, reads the stack's ``/_local/stats`` and ``/proc``, and writes
``benchmarks/out/*.json`` and ``benchmarks/RESULTS.md`` (with ``benchmarks/analysis.md`` appended).

1. fan-out for rooms of 10, 100, 500 and 1,000 members, through the stack and through the floor;
2. DynamoDB units per message with 10 → 100 → 1,000 connections, rooms fixed at 10 members;
3. connection set-up rate and the gateway's RSS per idle connection at 1,000 connections; connection
   records left 10 s after 500 clients close at once;
4. ``websocket-default`` billed duration and CPU per delivery by room size, and the AWS cost per
   million messages;
5. (issue 10, ``benchmarks.rooms``) a room of 500 filled by 500 distinct users beside the same room
   filled by 50 users × 10 tabs: fill rate, posts and presence frames per join, fan-out right after
   the fill; the 500 users' disconnect storm; Ctrl-C to the stack right after such a storm;
6. (issue 10, ``benchmarks.large_room``) simulated rooms of 100, 2,000 and 20,000 members against a
   20 ms ``@connections`` sink, with and without sharding: time to first and last post, peak RSS.

``benchmarks/model.md`` (the AWS model for 100,000 and 1,000,000 members, verdicts, defects) and
``benchmarks/analysis.md`` are appended to the results. ``--only rooms,large`` runs some sections
(and writes ``benchmarks/out/RESULTS.md`` instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from benchmarks import procfs
from benchmarks.large_room import LargeRoomResults, measure_large_rooms
from benchmarks.pricing import PRICES, PRICES_AS_OF, REGION, CostInputs, cost_per_million_messages
from benchmarks.rooms import FillRun, fill_room, fill_targets, interrupt_during_storm, render_fills
from serverless_app.bench.load import BenchConfig, BenchResult, run_bench
from serverless_app.bench.report import plot_results, summary
from serverless_app.bench.stats import percentiles

__all__ = ["Scenario", "main"]

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
console = Console(stderr=True)


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
class Process:
    popen: subprocess.Popen[str]
    info: dict[str, Any]
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.info["pid"])


@contextmanager
def started(module: str, *args: str, timeout_s: float = 90.0) -> Iterator[Process]:
    """``python -m module`` until it prints its JSON line; terminated (then killed) on exit.

    Its output goes to ``benchmarks/out/<module>.log`` (a pipe nobody drains would fill up and
    block the process under test)."""
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"{module.rsplit('.', 1)[-1]}.log"
    with log_path.open("w") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=HERE.parent,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        info: dict[str, Any] | None = None
        while time.monotonic() < deadline and info is None:
            for line in log_path.read_text().splitlines():
                if line.startswith("{") and '"pid"' in line:
                    info = json.loads(line)
                    break
            else:
                if popen.poll() is not None:
                    raise RuntimeError(f"{module} exited with {popen.returncode}; see {log_path}")
                time.sleep(0.1)
        if info is None:
            raise RuntimeError(f"{module} was not ready within {timeout_s:g} s; see {log_path}")
        yield Process(popen, info, log_path)
    finally:
        popen.terminate()
        try:
            popen.wait(30)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)


class Stack:
    """The running local stack: its stats endpoint, its gateway process and its Lambda workers."""

    def __init__(self, process: Process, http: aiohttp.ClientSession) -> None:
        self.process = process
        self.http = http
        self.url = str(process.info["ws_url"])
        self.base = str(process.info["http_url"])

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/_local/stats") as response:
            return dict(await response.json())

    async def reset(self) -> None:
        async with self.http.post(f"{self.base}/_local/stats/reset") as response:
            await response.read()

    async def quiet(self, *, open_connections: int | None = None, timeout_s: float = 90.0) -> None:
        """Until no invocation runs or waits, the counts stop moving, and (optionally) the number of
        open connections is as given."""
        deadline = time.monotonic() + timeout_s
        previous: Any = None
        while time.monotonic() < deadline:
            stats = await self.stats()
            lambdas = stats.get("lambda", {})
            busy = any(
                f.get("waiting", 0) or f.get("idle_workers", 0) < f.get("workers", 0)
                for f in lambdas.values()
            )
            counts = [f.get("invocations", 0) for f in lambdas.values()], stats["connections_api"]
            if open_connections is not None and stats["connections"]["open"] != open_connections:
                busy = True
            if not busy and counts == previous:
                return
            previous = counts
            await asyncio.sleep(0.4)
        console.print(f"[yellow]stack not quiet after {timeout_s:g} s; going on[/yellow]")

    def log_offset(self) -> int:
        return self.process.log_path.stat().st_size

    def durations_ms(self, start: int, function: str = "websocket-default") -> list[float]:
        """Durations of ``function``'s invocations the gateway logged since byte ``start`` of its log."""
        with self.process.log_path.open("rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", "replace")
        found: list[float] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[2] == function and parts[4] == "ms":
                try:
                    found.append(float(parts[3]))
                except ValueError:
                    continue
        return found

    def workers(self, function: str) -> list[int]:
        return [pid for pid in procfs.children(self.process.pid) if procfs.function_name(pid) == function]

    def worker_cpu_s(self, function: str) -> float:
        return sum(procfs.cpu_seconds(pid) for pid in self.workers(function))

    def connection_records(self) -> int:
        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=self.process.info["dynamodb_endpoint"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        from serverless_app.definitions import CONNECTIONS_TABLE

        # the table also holds one ``user#<id>`` item per user (live connections, rate buckets) and
        # the ``budget#connections-api`` item, which outlive connections on purpose: only connection
        # records count (connection ids never contain ``#``)
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": CONNECTIONS_TABLE.name,
            "Select": "COUNT",
            "FilterExpression": "NOT contains(#id, :hash)",
            "ExpressionAttributeNames": {"#id": "connection_id"},
            "ExpressionAttributeValues": {":hash": {"S": "#"}},
        }
        for _ in range(1000):
            page = client.scan(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total


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

    console.rule(f"{scenario.name} · local stack")
    run.result = await run_bench(
        scenario.config(stack.url), console=console, on_connected=connected, on_drained=drained
    )
    closed_at = time.monotonic()
    console.print(summary(run.result))
    if count_records:
        await asyncio.sleep(max(0.0, closed_at + 10.0 - time.monotonic()))
        run.records_10s_after_close = await asyncio.to_thread(stack.connection_records)
    return run


async def through_floor(url: str, scenario: Scenario) -> BenchResult:
    console.rule(f"{scenario.name} · floor")
    result = await run_bench(scenario.config(url), console=console)
    console.print(summary(result))
    return result


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def render(
    fanout: list[tuple[StackRun, BenchResult]],
    cost: list[StackRun],
    floor_rss_per_connection: float,
    started_at: float,
    elapsed_s: float,
    machine: dict[str, str],
    fills: tuple[FillRun, FillRun] | None = None,
    large: LargeRoomResults | None = None,
    interrupt: dict[str, Any] | None = None,
) -> str:
    lines: list[str] = []
    add = lines.append
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started_at))
    add("# wschat benchmark results")
    add("")
    add(f"Measured by `make bench` (`python -m benchmarks.run`) on {stamp}, in {elapsed_s / 60:.1f} minutes.")
    add("")
    add(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']} RAM, {machine['kernel']}, "
        f"Python {sys.version.split()[0]}; load average at start {machine['load_average']} "
        "(the machine is shared: other work may have been running). The load tool, the local stack "
        "(gateway process, Lambda worker processes, DynamoDB Local on Java) and the floor server all "
        "share these cores, so every number here includes the client's own cost."
    )
    add("")

    if fanout and cost:
        lines += _issue6_sections(fanout, cost, floor_rss_per_connection)
    if fills is not None:
        lines += render_fills(*fills)
    if large:
        lines += large.markdown()
    rows = (fill_targets(*fills) if fills is not None else []) + (large.targets() if large else [])
    if interrupt is not None:
        exited = interrupt["exited_s"]
        rows.append(
            (
                "Ctrl-C (SIGINT) stops the stack within 5 s right after 500 distinct users left at once",
                f"{'did not exit' if exited is None else f'{exited:.1f} s'} "
                f"({interrupt['disconnects_busy_at_signal']} `$disconnect` invocations busy or queued at the signal)",
                exited is not None and exited <= 5.0,
            )
        )
    if rows:
        add("## Targets (issue 10), as measured in this run")
        add("")
        add("| target | measured | verdict |")
        add("|---|---|---|")
        for target, measured, ok in rows:
            add(f"| {target} | {measured} | {_verdict(ok)} |")
        add("")
    for note in ("model.md", "analysis.md"):
        if (HERE / note).exists():
            add((HERE / note).read_text().rstrip())
            add("")
    return "\n".join(lines)


def _issue6_sections(
    fanout: list[tuple[StackRun, BenchResult]], cost: list[StackRun], floor_rss_per_connection: float
) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add("## 1. Fan-out: through `wschat serve` and through the floor")
    add("")
    add(
        "One room of N members (N distinct users, connected at 100/s with one client per room "
        "first; the unseeded fill is section 5), "
        "10 senders, messages paced (rate below). *Fan-out* = send → the last member has it; "
        "*delivery* = send → each member. Floor = `benchmarks/floor_server.py`, a bare `websockets` "
        "broadcast server with the same load."
    )
    add("")
    add(
        "| room | messages @ rate | ours fan-out p50 / p95 / p99 / max (ms) | floor fan-out p50 / p99 (ms) "
        "| ratio p50 | ours delivery p50 / p99 (ms) | lost / dup (ours) | lost / dup (floor) |"
    )
    add("|---:|---:|---|---|---:|---|---|---|")
    for run, floor in fanout:
        ours = percentiles(run.result.accounting.fanout_ms)
        base = percentiles(floor.accounting.fanout_ms)
        delivery = percentiles(run.result.accounting.delivery_ms)
        ratio = ours.p50 / base.p50 if base.p50 else math.nan
        acc, facc = run.result.accounting, floor.accounting
        add(
            f"| {run.scenario.clients:,} | {acc.sent} @ {run.scenario.rate:g}/s "
            f"| {_fmt(ours.p50)} / {_fmt(ours.p95)} / {_fmt(ours.p99)} / {_fmt(ours.max)} "
            f"| {_fmt(base.p50)} / {_fmt(base.p99)} | {ratio:,.1f}× "
            f"| {_fmt(delivery.p50)} / {_fmt(delivery.p99)} "
            f"| {acc.lost:,} / {acc.duplicated:,} | {facc.lost:,} / {facc.duplicated:,} |"
        )
    add("")
    errors = {run.scenario.name: dict(run.result.errors) for run, _ in fanout if run.result.errors}
    if errors:
        add(f"Errors seen by the clients: `{json.dumps(errors)}`")
        add("")

    add("## 2. DynamoDB units per message as connections grow (rooms of 10)")
    add("")
    add(
        "Consumed capacity as DynamoDB reports it (`ReturnConsumedCapacity`, added by the local "
        "runtime's recording proxy), for the send phase only (counters reset after every client had its "
        "`welcome`)."
    )
    add("")
    add(
        "| connections | rooms | messages | read units / message | write units / message | by operation (calls) |"
    )
    add("|---:|---:|---:|---:|---:|---|")
    for run in cost:
        reads, writes = run.per_message()
        ops = ", ".join(
            f"{name} {op.get('calls', 0)}" for name, op in sorted(run.stats.get("dynamodb", {}).items())
        )
        add(
            f"| {run.scenario.clients:,} | {run.scenario.rooms:,} | {run.result.accounting.sent} "
            f"| {reads:.2f} | {writes:.2f} | {ops} |"
        )
    add("")

    add("## 3. Connections")
    add("")
    big = cost[-1]
    per_connection = (big.rss_connected - big.rss_before) / big.scenario.clients
    add("| measure | value |")
    add("|---|---:|")
    for run in cost:
        add(
            f"| set-up rate, {run.scenario.clients:,} clients (paced at ≤ 450/s, each until its `welcome`) "
            f"| {run.result.connections_per_s:,.0f} /s |"
        )
    add(
        f"| connect → `welcome`, 1,000 clients, p50 / p99 | {_fmt(big.result.connect_ms.p50)} / {_fmt(big.result.connect_ms.p99)} ms |"
    )
    add(
        f"| gateway RSS per idle connection at {big.scenario.clients:,} "
        f"({big.rss_before / 2**20:.1f} → {big.rss_connected / 2**20:.1f} MiB) | {per_connection / 1024:,.1f} KB |"
    )
    add(f"| floor server RSS per idle connection at 1,000 | {floor_rss_per_connection / 1024:,.1f} KB |")
    closing = [run for run, _ in fanout if run.records_10s_after_close is not None]
    for run in closing:
        add(
            f"| connection records 10 s after {run.scenario.clients:,} clients closed at once "
            f"| {run.records_10s_after_close} |"
        )
    add("")

    add("## 4. The Lambda side on AWS terms")
    add("")
    add(
        "`websocket-default` (512 MB) per message, durations from the gateway's per-invocation log; CPU = user + "
        "system time of the function's worker processes (`/proc`) over the send phase, divided by "
        "deliveries. Billed duration is the invocation's duration rounded up to 1 ms; locally a worker "
        "has a whole core, on AWS 512 MB buys about 0.29 vCPU (1,769 MB = 1 vCPU), so the CPU-bound "
        "part would take longer there."
    )
    add("")
    add(
        "| room | invocations | billed p50 / p99 / mean (ms) | CPU per invocation (ms) | CPU per delivery (ms) "
        "| gateway CPU per delivery (ms) |"
    )
    add("|---:|---:|---|---:|---:|---:|")
    for run, _ in fanout:
        billed = percentiles(run.billed_ms())
        invocations = billed.count
        delivered = max(1, run.result.accounting.delivered)
        add(
            f"| {run.scenario.clients:,} | {invocations} "
            f"| {billed.p50:.0f} / {billed.p99:.0f} / {billed.mean:.1f} "
            f"| {run.default_cpu_s * 1000 / max(1, invocations):,.1f} | {run.cpu_ms_per_delivery():.3f} "
            f"| {run.gateway_cpu_s * 1000 / delivered:.3f} |"
        )
    add("")
    add(
        f"Estimated AWS cost per million messages, {REGION}, list prices as of {PRICES_AS_OF} "
        "(arm64 Lambda at 512 MB billed at the measured mean billed duration; DynamoDB on-demand at the units "
        "measured per message in the room of 10 of section 2 for 10, and in the fan-out run otherwise; "
        "API Gateway: 1 message in + 1 out per member; connection-minutes assuming each room carries "
        "1 message/s while its members stay connected):"
    )
    add("")
    add("| room | Lambda | DynamoDB | API GW messages | API GW connection-minutes | total per 1M messages |")
    add("|---:|---:|---:|---:|---:|---:|")
    for run, _ in fanout:
        reads, writes = run.per_message()
        if run.scenario.clients == 10 and cost:
            reads, writes = cost[0].per_message()
        usd = cost_per_million_messages(
            CostInputs(
                room_size=run.scenario.clients,
                billed_ms=percentiles(run.billed_ms()).mean,
                read_units=reads,
                write_units=writes,
            )
        )
        add(
            f"| {run.scenario.clients:,} | ${usd['lambda']:,.2f} | ${usd['dynamodb']:,.2f} "
            f"| ${usd['apigw_messages']:,.2f} | ${usd['apigw_connection_minutes']:,.2f} | ${usd['total']:,.2f} |"
        )
    add("")
    add("Prices used:")
    add("")
    for key, price in PRICES.items():
        add(f"- `{key}`: ${price.usd:.10g} {price.unit} ({price.source}, read {PRICES_AS_OF})")
    add("")

    add("## Targets (issue #6)")
    add("")
    add("| target | measured | verdict |")
    add("|---|---|---|")
    by_size = {run.scenario.clients: run for run, _ in fanout}
    all_runs = [run for run, _ in fanout] + cost
    lost = sum(r.result.accounting.lost for r in all_runs)
    dup = sum(r.result.accounting.duplicated for r in all_runs)
    add(
        f"| zero lost and zero duplicated deliveries in every run | lost {lost:,}, duplicated {dup:,} | {_verdict(lost == 0 and dup == 0)} |"
    )

    def fan(size: int) -> Any:
        return percentiles(by_size[size].result.accounting.fanout_ms) if size in by_size else None

    checks = [(100, 50.0, 100.0), (500, 150.0, None), (1000, 350.0, 700.0)]
    for size, p50_target, p99_target in checks:
        stats = fan(size)
        if stats is None:
            continue
        text = f"p50 {_fmt(stats.p50)} ms" + (f", p99 {_fmt(stats.p99)} ms" if p99_target else "")
        ok = stats.p50 <= p50_target and (p99_target is None or stats.p99 <= p99_target)
        goal = f"p50 ≤ {p50_target:g} ms" + (f", p99 ≤ {p99_target:g} ms" if p99_target else "")
        add(f"| room of {size:,}: {goal} | {text} | {_verdict(ok)} |")
    cpu = max((run.cpu_ms_per_delivery() for run, _ in fanout if run.scenario.clients >= 100), default=0.0)
    add(f"| handler CPU per delivery ≤ 0.3 ms (rooms ≥ 100) | {cpu:.3f} ms | {_verdict(cpu <= 0.3)} |")
    if len(cost) >= 2:
        first, last = cost[0].per_message()[0], cost[-1].per_message()[0]
        ratio = last / first if first else math.nan
        add(
            f"| read units per message at {cost[-1].scenario.clients:,} connections ≤ 1.2× those at "
            f"{cost[0].scenario.clients} | {last:.2f} vs {first:.2f} ({ratio:.2f}×) | {_verdict(ratio <= 1.2)} |"
        )
    rate = big.result.connections_per_s
    add(
        f"| ≥ 300 new connections/s through the local runtime | {rate:,.0f}/s at 1,000 | {_verdict(rate >= 300)} |"
    )
    for run in closing:
        left = run.records_10s_after_close or 0
        add(
            f"| {run.scenario.clients:,} clients closing at once leave 0 records 10 s later | {left} | {_verdict(left == 0)} |"
        )
    add(
        f"| ≤ 64 KB gateway memory per idle connection | {per_connection / 1024:,.1f} KB | {_verdict(per_connection <= 64 * 1024)} |"
    )
    add("")
    return lines


SECTIONS = ("fanout", "cost", "rooms", "large")


async def measure(quick: bool, only: tuple[str, ...] = SECTIONS) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    started_at, clock = time.time(), time.monotonic()
    machine = procfs.machine()
    fanout_plan, cost_plan = FANOUT, COST
    if quick:  # a smoke run of the whole suite: small rooms only
        fanout_plan = [replace(s, messages=min(s.messages, 20)) for s in FANOUT[:2]]
        cost_plan = COST[:2]
    fanout_plan = fanout_plan if "fanout" in only else []
    cost_plan = cost_plan if "cost" in only else []
    fills: tuple[FillRun, FillRun] | None = None
    large: LargeRoomResults | None = None
    interrupt: dict[str, Any] | None = None
    fanout: list[tuple[StackRun, BenchResult]] = []
    cost: list[StackRun] = []
    floor_rss = 0.0
    with started("benchmarks.stack_process") as stack_process, started("benchmarks.floor_server") as floor:
        async with aiohttp.ClientSession() as http:
            stack = Stack(stack_process, http)
            console.rule("warm-up (spawns the Lambda workers)")
            await run_bench(WARMUP.config(stack.url), console=console)
            for scenario in fanout_plan:
                run = await through_stack(stack, scenario, count_records=scenario.clients == 500)
                rss0 = procfs.rss_bytes(floor.pid)
                base = await through_floor(str(floor.info["ws_url"]), scenario)
                if scenario.clients == 1000:
                    floor_rss = (procfs.rss_bytes(floor.pid) - rss0) / scenario.clients
                fanout.append((run, base))
            for scenario in cost_plan:
                cost.append(await through_stack(stack, scenario))
            if "rooms" in only:
                n = 100 if quick else 500
                console.rule(f"room of {n}: {n // 10} users × 10 tabs")
                same = await fill_room(stack, clients=n, users=n // 10)
                assert same.result is not None
                console.print(summary(same.result))
                console.rule(f"room of {n}: {n} distinct users, then all leave at once")
                distinct = await fill_room(stack, clients=n, users=n, storm=True)
                assert distinct.result is not None
                console.print(summary(distinct.result))
                fills = (same, distinct)
                if not quick:
                    console.rule(f"room of {n}: {n} distinct users leave at once, and Ctrl-C right then")
                    interrupt = await interrupt_during_storm(stack, clients=n)
                    console.print(interrupt)
            if interrupt is None:
                await stack.quiet()
    if "large" in only:
        large = await measure_large_rooms(quick=quick, console=console)
    if not floor_rss and fanout:
        floor_rss = 0.0
    documents = {
        "machine": machine,
        "started_at": started_at,
        "fanout": [{"ours": run.to_json(), "floor": base.to_json()} for run, base in fanout],
        "cost": [run.to_json() for run in cost],
        "rooms": [run.to_json() for run in fills] if fills else [],
        "large_rooms": large.to_json() if large else [],
        "interrupt_during_storm": interrupt,
    }
    (OUT / "results.json").write_text(json.dumps(documents, indent=2) + "\n")
    for run, base in fanout:
        (OUT / f"{run.scenario.name}.json").write_text(
            json.dumps({"ours": run.to_json(), "floor": base.to_json()}, indent=2)
        )
    if fanout:
        plot_results(
            [run.result for run, _ in fanout], OUT / "fanout-ours.png", title="wschat serve: fan-out"
        )
        plot_results(
            [base for _, base in fanout], OUT / "fanout-floor.png", title="floor: bare websockets broadcast"
        )
    text = render(
        fanout, cost, floor_rss, started_at, time.monotonic() - clock, machine, fills, large, interrupt
    )
    partial = quick or set(only) != set(SECTIONS)
    target = OUT / "RESULTS.md" if partial else HERE / "RESULTS.md"
    target.write_text(text + "\n")
    console.print(f"wrote {target} and {OUT}/*.json in {(time.monotonic() - clock) / 60:.1f} min")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="Small rooms only; writes benchmarks/out/RESULTS.md."
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"Comma-separated sections of {','.join(SECTIONS)}; a partial run writes benchmarks/out/RESULTS.md.",
    )
    args = parser.parse_args(argv)
    only = tuple(part.strip() for part in args.only.split(",") if part.strip())
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the stack and the floor
    asyncio.run(measure(args.quick, only))


if __name__ == "__main__":
    main()
