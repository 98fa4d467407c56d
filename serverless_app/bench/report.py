"""How ``wschat bench`` shows a run: a summary table, the JSON document, and an optional PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table

from serverless_app.bench.result import BenchResult
from serverless_app.bench.stats import Percentiles, percentiles

__all__ = ["plot_results", "summary", "write_json"]


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def summary(result: BenchResult) -> RenderableType:
    """The latency table (p50/p95/p99/max) and the counts, ready for ``Console.print``."""
    acc = result.accounting
    latency = Table(title=f"wschat bench {result.run_id} → {result.config.url}", title_justify="left")
    latency.add_column("ms", style="bold")
    for column in ("count", "p50", "p95", "p99", "max"):
        latency.add_column(column, justify="right")

    def row(name: str, stats: Percentiles) -> None:
        latency.add_row(
            name, f"{stats.count:,}", _ms(stats.p50), _ms(stats.p95), _ms(stats.p99), _ms(stats.max)
        )

    row("delivery (send → each member)", percentiles(acc.delivery_ms))
    row("fan-out (send → last member)", percentiles(acc.fanout_ms))
    for size, values in sorted(acc.fanout_by_room_size.items()):
        row(f"  fan-out, room of {size:,}", percentiles(values))
    row("connect (→ welcome)", result.connect_ms)

    counts = Table(show_header=False, box=None, pad_edge=False)
    counts.add_column(style="bold")
    counts.add_column(justify="right")
    sizes = sorted(set(result.room_sizes.values()))
    counts.add_row("clients connected", f"{result.connected:,} / {result.config.clients:,}")
    counts.add_row("rooms × members", f"{result.config.rooms:,} × {', '.join(f'{s:,}' for s in sizes)}")
    counts.add_row("connections/s", f"{result.connections_per_s:,.0f}")
    counts.add_row("messages sent / refused", f"{acc.sent:,} / {acc.refused:,}")
    counts.add_row(
        "messages/s, deliveries/s", f"{result.messages_per_s:,.1f}, {result.deliveries_per_s:,.0f}"
    )
    counts.add_row("deliveries expected / received", f"{acc.expected:,} / {acc.delivered:,}")
    style = "green" if result.ok else "red"
    counts.add_row(
        "lost / duplicated / unexpected",
        f"[{style}]{acc.lost:,} / {acc.duplicated:,} / {acc.unexpected:,}[/{style}]",
    )
    presence = result.other_frames.get("presence", 0) + result.other_frames.get("presenceMode", 0)
    counts.add_row(
        "presence frames received / join",
        f"{presence:,} / {result.connected:,} = {presence / max(1, result.connected):.2f}",
    )
    errors = ", ".join(f"{code}: {n:,}" for code, n in sorted(result.errors.items())) or "none"
    counts.add_row("errors", errors)
    return Group(latency, counts)


def write_json(result: BenchResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")


def plot_results(results: Sequence[BenchResult], path: Path, *, title: str = "wschat bench") -> None:
    """Left: the delivery latency distribution (CDF) of each run; right: fan-out completion
    (p50, p99, max) against room size over all runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, fanout) = plt.subplots(1, 2, figsize=(11, 4.2))
    for result in results:
        values = sorted(result.accounting.delivery_ms)
        if not values:
            continue
        label = "/".join(str(s) for s in sorted(set(result.room_sizes.values())))
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        cdf.plot(values, fractions, label=f"room of {label} ({result.config.url.split('//')[-1]})")
    cdf.set_xscale("log")
    cdf.set_xlabel("delivery latency, send → member (ms)")
    cdf.set_ylabel("fraction of deliveries")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=7)

    by_size: dict[int, list[float]] = {}
    for result in results:
        for size, values in result.accounting.fanout_by_room_size.items():
            by_size.setdefault(size, []).extend(values)
    if by_size:
        sizes = sorted(by_size)
        stats = [percentiles(by_size[s]) for s in sizes]
        for size in sizes:
            fanout.scatter([size] * len(by_size[size]), by_size[size], s=6, alpha=0.25, color="grey")
        fanout.plot(sizes, [s.p50 for s in stats], marker="o", label="p50")
        fanout.plot(sizes, [s.p99 for s in stats], marker="o", label="p99")
        fanout.plot(sizes, [s.max for s in stats], marker=".", linestyle=":", label="max")
        fanout.set_xscale("log")
        fanout.legend(fontsize=8)
    fanout.set_xlabel("room size (members)")
    fanout.set_ylabel("fan-out completion, send → last member (ms)")
    fanout.grid(True, which="both", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
