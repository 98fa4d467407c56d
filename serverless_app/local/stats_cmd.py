"""``wschat stats``: the metrics the handlers recorded in a running local stack (``wschat serve``).

Reads ``GET /_local/stats`` over loopback HTTP and prints its ``metrics`` part, the CloudWatch EMF
metrics the handlers printed (``DeliveriesSucceeded``, ``FanoutDuration``, ``FramesRefused``, …),
totalled over all functions and per function: the numbers the stack's alarms and dashboard read on
AWS. ``--json`` prints the whole stats document instead.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click

__all__ = ["DEFAULT_SERVE_URL", "fetch_stats", "format_metrics", "stats"]

DEFAULT_SERVE_URL = "http://127.0.0.1:3001"
"""Where ``wschat serve`` listens by default."""
_COLUMNS = ("sum", "count", "p50", "p95", "max")


def fetch_stats(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The stats document of the local stack at ``url`` (its base URL, e.g. ``http://127.0.0.1:3001``)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy
    with opener.open(f"{url.rstrip('/')}/_local/stats", timeout=timeout_s) as response:
        document: dict[str, Any] = json.load(response)
    return document


def format_metrics(metrics: dict[str, Any]) -> str:
    """A plain-text table of the ``metrics`` part of ``/_local/stats``: totals, then each function."""
    lines = [
        f"EMF metrics: {metrics.get('records', 0)} record(s), {metrics.get('malformed', 0)} malformed line(s)"
    ]
    totals: dict[str, Any] = metrics.get("totals", {})
    if not totals:
        lines.append("  (none yet: the handlers print metrics when they run)")
        return "\n".join(lines)
    sections = [("all functions", totals)] + [
        (function, values) for function, values in metrics.get("functions", {}).items()
    ]
    width = max(len(name) for _, values in sections for name in values)
    header = f"  {'metric':<{width}}  {'unit':<12}" + "".join(f"{column:>10}" for column in _COLUMNS)
    for title, values in sections:
        lines += ["", title, header]
        for name, total in values.items():
            cells = "".join(f"{_cell(total.get(column)):>10}" for column in _COLUMNS)
            lines.append(f"  {name:<{width}}  {total.get('unit', ''):<12}{cells}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@click.command("stats")
@click.option(
    "--url",
    default=DEFAULT_SERVE_URL,
    show_default=True,
    envvar="WSCHAT_STATS_URL",
    help="Base URL of the local stack (wschat serve); also $WSCHAT_STATS_URL.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole /_local/stats document as JSON.")
def stats(url: str, as_json: bool) -> None:
    """Show the metrics the handlers recorded in a running local stack (GET /_local/stats)."""
    try:
        document = fetch_stats(url)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise click.ClickException(
            f"no local stack answered at {url}/_local/stats ({reason}); start one with `wschat serve`"
        ) from error
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    click.echo(format_metrics(document.get("metrics", {})))
