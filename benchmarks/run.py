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

This module only orders the sections and writes the files: the processes are ``benchmarks.stack``,
sections 1–4 ``benchmarks.scenarios``, and ``RESULTS.md`` is written by ``benchmarks.render``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from benchmarks import procfs
from benchmarks.large_room import measure_large_rooms
from benchmarks.large_room_results import LargeRoomResults
from benchmarks.render import render
from benchmarks.rooms import FillRun, fill_room, interrupt_during_storm
from benchmarks.scenarios import COST, FANOUT, WARMUP, StackRun, through_floor, through_stack
from benchmarks.stack import OUT, Stack, started
from serverless_app.bench.load import run_bench
from serverless_app.bench.report import plot_results, summary
from serverless_app.bench.result import BenchResult

__all__ = ["SECTIONS", "main", "measure"]

HERE = Path(__file__).resolve().parent
console = Console(stderr=True)


SECTIONS = ("fanout", "cost", "rooms", "large")


async def measure(quick: bool, only: tuple[str, ...] = SECTIONS) -> None:
    """Run the sections in ``only`` (``quick``: small rooms only) and write the results."""
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
            stack = Stack(stack_process, http, console)
            console.rule("warm-up (spawns the Lambda workers)")
            await run_bench(WARMUP.config(stack.url), console=console)
            for scenario in fanout_plan:
                run = await through_stack(stack, scenario, count_records=scenario.clients == 500)
                rss0 = procfs.rss_bytes(floor.pid)
                base = await through_floor(str(floor.info["ws_url"]), scenario, console)
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
    """``python -m benchmarks.run [--quick] [--only SECTIONS]``."""
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
