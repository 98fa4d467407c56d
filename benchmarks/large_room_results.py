"""What the simulated large room measured, and its section and targets in ``RESULTS.md``.

:class:`LargeRun` is one room size, sharded or not; :class:`LargeRoomResults` holds every run,
renders section 6 (:meth:`LargeRoomResults.markdown`) and issue 10's rows for the targets table
(:meth:`LargeRoomResults.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LargeRoomResults", "LargeRun"]


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


@dataclass
class LargeRoomResults:
    shard_size: int
    runs: list[LargeRun] = field(default_factory=list)
    load_average: str = ""

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
