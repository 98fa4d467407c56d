"""``benchmarks/RESULTS.md`` from the measurements of one ``make bench`` run.

:func:`render` writes the header (when, on what machine), sections 1–4 from the scenario runs,
section 5 (``benchmarks.rooms``) and section 6 (``benchmarks.large_room``) when they ran, the
targets table of issue 10, then ``model.md`` and ``analysis.md``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.large_room_results import LargeRoomResults
from benchmarks.markdown import fmt, verdict
from benchmarks.pricing import PRICES, PRICES_AS_OF, REGION, CostInputs, cost_per_million_messages
from benchmarks.rooms import FillRun, fill_targets, render_fills
from benchmarks.scenarios import StackRun
from serverless_app.bench.result import BenchResult
from serverless_app.bench.stats import percentiles

__all__ = ["render"]

NOTES = Path(__file__).resolve().parent
"""Where ``model.md`` and ``analysis.md`` are."""


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
    """The whole of ``RESULTS.md``: the header, the sections that ran, the targets, the notes."""
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
            add(f"| {target} | {measured} | {verdict(ok)} |")
        add("")
    for note in ("model.md", "analysis.md"):
        if (NOTES / note).exists():
            add((NOTES / note).read_text().rstrip())
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
            f"| {fmt(ours.p50)} / {fmt(ours.p95)} / {fmt(ours.p99)} / {fmt(ours.max)} "
            f"| {fmt(base.p50)} / {fmt(base.p99)} | {ratio:,.1f}× "
            f"| {fmt(delivery.p50)} / {fmt(delivery.p99)} "
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
        f"| connect → `welcome`, 1,000 clients, p50 / p99 | {fmt(big.result.connect_ms.p50)} / {fmt(big.result.connect_ms.p99)} ms |"
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
        f"| zero lost and zero duplicated deliveries in every run | lost {lost:,}, duplicated {dup:,} | {verdict(lost == 0 and dup == 0)} |"
    )

    def fan(size: int) -> Any:
        return percentiles(by_size[size].result.accounting.fanout_ms) if size in by_size else None

    checks = [(100, 50.0, 100.0), (500, 150.0, None), (1000, 350.0, 700.0)]
    for size, p50_target, p99_target in checks:
        stats = fan(size)
        if stats is None:
            continue
        text = f"p50 {fmt(stats.p50)} ms" + (f", p99 {fmt(stats.p99)} ms" if p99_target else "")
        ok = stats.p50 <= p50_target and (p99_target is None or stats.p99 <= p99_target)
        goal = f"p50 ≤ {p50_target:g} ms" + (f", p99 ≤ {p99_target:g} ms" if p99_target else "")
        add(f"| room of {size:,}: {goal} | {text} | {verdict(ok)} |")
    cpu = max((run.cpu_ms_per_delivery() for run, _ in fanout if run.scenario.clients >= 100), default=0.0)
    add(f"| handler CPU per delivery ≤ 0.3 ms (rooms ≥ 100) | {cpu:.3f} ms | {verdict(cpu <= 0.3)} |")
    if len(cost) >= 2:
        first, last = cost[0].per_message()[0], cost[-1].per_message()[0]
        ratio = last / first if first else math.nan
        add(
            f"| read units per message at {cost[-1].scenario.clients:,} connections ≤ 1.2× those at "
            f"{cost[0].scenario.clients} | {last:.2f} vs {first:.2f} ({ratio:.2f}×) | {verdict(ratio <= 1.2)} |"
        )
    rate = big.result.connections_per_s
    add(
        f"| ≥ 300 new connections/s through the local runtime | {rate:,.0f}/s at 1,000 | {verdict(rate >= 300)} |"
    )
    for run in closing:
        left = run.records_10s_after_close or 0
        add(
            f"| {run.scenario.clients:,} clients closing at once leave 0 records 10 s later | {left} | {verdict(left == 0)} |"
        )
    add(
        f"| ≤ 64 KB gateway memory per idle connection | {per_connection / 1024:,.1f} KB | {verdict(per_connection <= 64 * 1024)} |"
    )
    add("")
    return lines
