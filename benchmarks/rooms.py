"""Issue 10 §4: a room of 500 filled by 500 different people, beside the same room filled by
50 people × 10 tabs, in the same run, through the same stack; then the 500 leave at once.

For each fill (no seeding: every member joins while others are still inside ``$connect``):

* **fill rate** — connections/s until every client has its ``welcome``;
* **frames posted per member during the fill** — the gateway's ``@connections`` POSTs (welcome,
  presence, anything else) from the fill's start to the last ``welcome``, divided by N; and the
  ``presence`` frames the clients received, per join;
* **fan-out right after the fill** — messages sent as soon as the last ``welcome`` arrived (the
  stack is *not* left to go quiet first: a presence backlog counts), p50/p95 of send → last member;
* **disconnect storm** (distinct users only) — every client closes at once; then: ``@connections``
  POSTs and 410s (prunes) per member, DynamoDB calls per member, seconds until no connection
  record is left, seconds until the stack is idle.

Senders are distinct users, each far under the per-user message rate (5/s), and no user has more
than 10 connections (``MAX_CONNECTIONS_PER_USER``): nothing is refused by the per-user limits.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.markdown import fmt
from serverless_app.bench.config import BenchConfig
from serverless_app.bench.load import run_bench
from serverless_app.bench.result import BenchResult
from serverless_app.bench.stats import percentiles

if TYPE_CHECKING:
    from benchmarks.stack import Stack

__all__ = ["FillRun", "fill_room", "fill_targets", "interrupt_during_storm", "render_fills"]


@dataclass
class FillRun:
    name: str
    clients: int
    users: int
    result: BenchResult | None = None
    fill_stats: dict[str, Any] = field(default_factory=dict)
    send_stats: dict[str, Any] = field(default_factory=dict)
    storm_stats: dict[str, Any] = field(default_factory=dict)
    storm_records_s: float | None = None
    """Seconds from the close until no connection record was left (``None``: not within the bound)."""
    storm_idle_s: float | None = None
    records_left: int | None = None

    @property
    def fill_posts(self) -> int:
        return int(sum(self.fill_stats.get("connections_api", {}).get("posts", {}).values()))

    def posts(self, stats: dict[str, Any], status: str) -> int:
        return int(stats.get("connections_api", {}).get("posts", {}).get(status, 0))

    def dynamodb_calls(self, stats: dict[str, Any]) -> int:
        return int(sum(int(op.get("calls", 0)) for op in stats.get("dynamodb", {}).values()))

    def to_json(self) -> dict[str, Any]:
        assert self.result is not None
        return {
            "name": self.name,
            "clients": self.clients,
            "users": self.users,
            "bench": self.result.to_json(),
            "fill_stats": self.fill_stats,
            "send_stats": self.send_stats,
            "storm_stats": self.storm_stats,
            "storm_records_s": self.storm_records_s,
            "storm_idle_s": self.storm_idle_s,
            "records_left": self.records_left,
        }


async def fill_room(
    stack: Stack,
    *,
    clients: int = 500,
    users: int = 500,
    messages: int = 30,
    rate: float = 3.0,
    connect_rate: float = 200.0,
    storm: bool = False,
    storm_bound_s: float = 60.0,
) -> FillRun:
    """Fill one room with ``clients`` connections of ``users`` distinct users, send right after."""
    if clients % users:
        raise ValueError("clients must be a multiple of users")
    run = FillRun(name=f"room-{clients}-by-{users}-users", clients=clients, users=users)
    await stack.quiet()
    await stack.reset()
    marks: dict[str, float] = {}

    async def connected() -> None:
        run.fill_stats = await stack.stats()  # no wait for quiet: fan-out right after the fill
        await stack.reset()

    async def drained() -> None:
        run.send_stats = await stack.stats()
        await stack.reset()
        marks["closing"] = time.monotonic()

    config = BenchConfig(
        url=stack.url,
        clients=clients,
        rooms=1,
        senders=10,
        messages=messages,
        rate=rate,
        users_per_room=0 if users == clients else users,
        connect_rate=connect_rate,
        connect_timeout_s=60.0,
        drain_s=60.0,
        user_prefix=f"fill{users}",
    )
    run.result = await run_bench(config, on_connected=connected, on_drained=drained)
    if storm:
        closed = marks.get("closing", time.monotonic())
        deadline = closed + storm_bound_s
        while time.monotonic() < deadline:
            left = await asyncio.to_thread(stack.connection_records)
            if left == 0:
                run.storm_records_s = time.monotonic() - closed
                break
            await asyncio.sleep(0.25)
        await stack.quiet(timeout_s=max(1.0, deadline - time.monotonic()))
        run.storm_idle_s = time.monotonic() - closed
        run.records_left = await asyncio.to_thread(stack.connection_records)
        run.storm_stats = await stack.stats()
    else:
        await stack.quiet()
    return run


def render_fills(same: FillRun, distinct: FillRun) -> list[str]:
    """Section lines and the targets' rows (``(target, measured, ok)``) are returned as markdown."""
    lines: list[str] = []
    add = lines.append
    n = distinct.clients
    add(f"## 5. A room of {n} filled by {n} people, beside {same.users} people × 10 tabs (issue 10)")
    add("")
    add(
        "One room, no seeding (members join while others are still inside `$connect`), connections "
        "offered at 200/s, each counted when its `welcome` arrives; then 30 messages at 3/s from 10 "
        "senders who are distinct users, sent as soon as the last `welcome` arrived (the stack is not "
        "left to drain a presence backlog first). Posts = the gateway's `@connections` POSTs in the "
        "phase (welcome, presence, errors), whatever their answer. Same-user fill first, then the "
        "distinct-user fill, on the same stack, one after the other."
    )
    add("")
    add(
        "| room | fill (s) | fill rate (conn/s) | posts during fill / member | presence frames received / join "
        "| fan-out p50 / p95 / max (ms) | lost / dup | errors |"
    )
    add("|---|---:|---:|---:|---:|---|---|---|")
    for run in (same, distinct):
        assert run.result is not None
        res = run.result
        fan = percentiles(res.accounting.fanout_ms)
        presence = res.other_frames.get("presence", 0) + res.other_frames.get("presenceMode", 0)
        add(
            f"| {run.clients} by {run.users} users | {fmt(res.connect_s)} | {fmt(res.connections_per_s)} "
            f"| {run.fill_posts / max(1, res.connected):.2f} | {presence / max(1, res.connected):.2f} "
            f"| {fmt(fan.p50)} / {fmt(fan.p95)} / {fmt(fan.max)} "
            f"| {res.accounting.lost} / {res.accounting.duplicated} | `{dict(res.errors) or '-'}` |"
        )
    add("")
    storm = distinct
    assert storm.result is not None
    n = max(1, storm.result.connected)
    ok2 = storm.posts(storm.storm_stats, "2xx")
    gone = storm.posts(storm.storm_stats, "410")
    add(f"Disconnect storm: the {n} distinct users' connections closed at once.")
    add("")
    add("| measure | value |")
    add("|---|---:|")
    add(f"| `@connections` POSTs answered 2xx / member | {ok2 / n:.2f} ({ok2:,}) |")
    add(f"| POSTs answered 410 (each one a prune) / member | {gone / n:.2f} ({gone:,}) |")
    add(f"| posts or prunes / member | {(ok2 + gone) / n:.2f} |")
    add(f"| DynamoDB calls / member | {storm.dynamodb_calls(storm.storm_stats) / n:.1f} |")
    records = "not within the bound" if storm.storm_records_s is None else f"{storm.storm_records_s:.1f} s"
    add(f"| close → no connection record left | {records} |")
    add(f"| close → stack idle (no invocation running or queued) | {fmt(storm.storm_idle_s or 0.0)} s |")
    add(f"| connection records left at the end | {storm.records_left} |")
    add("")
    return lines


def fill_targets(same: FillRun, distinct: FillRun) -> list[tuple[str, str, bool]]:
    assert same.result is not None and distinct.result is not None
    rows: list[tuple[str, str, bool]] = []
    ratio = distinct.result.connections_per_s / max(1e-9, same.result.connections_per_s)
    rows.append(
        (
            "distinct-user fill rate ≥ 0.9× the same-user fill rate",
            f"{distinct.result.connections_per_s:.1f} vs {same.result.connections_per_s:.1f} conn/s ({ratio:.2f}×)",
            ratio >= 0.9,
        )
    )
    per = distinct.fill_posts / max(1, distinct.result.connected)
    rows.append(
        (f"frames posted during a {distinct.clients}-user fill ≤ 3 per member", f"{per:.2f}", per <= 3.0)
    )
    d, s = percentiles(distinct.result.accounting.fanout_ms), percentiles(same.result.accounting.fanout_ms)
    r50 = d.p50 / max(1e-9, s.p50)
    r95 = d.p95 / max(1e-9, s.p95)
    rows.append(
        (
            "fan-out p50 and p95 right after the distinct fill ≤ 1.2× the same-user room's",
            f"p50 {d.p50:.1f} vs {s.p50:.1f} ms ({r50:.2f}×), p95 {d.p95:.1f} vs {s.p95:.1f} ms ({r95:.2f}×)",
            r50 <= 1.2 and r95 <= 1.2,
        )
    )
    rows.append(
        (
            "fan-out p50 ≤ 150 ms right after the distinct fill (quiet machine)",
            f"{d.p50:.1f} ms",
            d.p50 <= 150,
        )
    )
    n = max(1, distinct.result.connected)
    work = (distinct.posts(distinct.storm_stats, "2xx") + distinct.posts(distinct.storm_stats, "410")) / n
    rows.append(("disconnect storm ≤ 3 posts or prunes per member", f"{work:.2f}", work <= 3.0))
    idle = distinct.storm_idle_s
    records = distinct.storm_records_s
    rows.append(
        (
            "disconnect storm: no records left and the stack idle within 10 s",
            f"records gone after {'-' if records is None else f'{records:.1f}'} s, idle after "
            f"{'-' if idle is None else f'{idle:.1f}'} s, {distinct.records_left} left",
            records is not None and idle is not None and idle <= 10.0 and records <= 10.0,
        )
    )
    lost = distinct.result.accounting.lost + same.result.accounting.lost
    dup = distinct.result.accounting.duplicated + same.result.accounting.duplicated
    rows.append(
        ("zero lost, zero duplicated (both fills)", f"lost {lost}, dup {dup}", lost == 0 and dup == 0)
    )
    return rows


async def interrupt_during_storm(
    stack: Stack, *, clients: int = 500, bound_s: float = 60.0
) -> dict[str, Any]:
    """Fill a room with ``clients`` distinct users, close them all at once, and send the stack's
    process SIGINT (Ctrl-C) as soon as the last client closed: seconds until the process exited,
    and how many ``$disconnect`` invocations were still running or queued at the signal."""
    import signal

    await stack.quiet()
    config = BenchConfig(
        url=stack.url,
        clients=clients,
        rooms=1,
        senders=1,
        messages=0,
        connect_rate=200.0,
        connect_timeout_s=60.0,
        drain_s=1.0,
        user_prefix="sigint",
        progress=False,
    )
    result = await run_bench(config)
    stats = await stack.stats()
    pending = stats.get("lambda", {}).get("websocket-disconnect", {})
    busy = (
        int(pending.get("waiting", 0)) + int(pending.get("workers", 0)) - int(pending.get("idle_workers", 0))
    )
    popen = stack.process.popen
    signalled = time.monotonic()
    popen.send_signal(signal.SIGINT)
    exited_s: float | None = None
    try:
        await asyncio.to_thread(popen.wait, bound_s)
        exited_s = time.monotonic() - signalled
    except Exception:  # subprocess.TimeoutExpired: the caller's context kills it
        exited_s = None
    return {
        "connected": result.connected,
        "disconnects_busy_at_signal": busy,
        "exited_s": exited_s,
        "returncode": popen.returncode,
    }
