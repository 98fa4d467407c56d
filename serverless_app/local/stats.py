"""Local-only observability: counts since start (or the last reset), served at ``GET /_local/stats``.

The gateway owns a :class:`GatewayStats`; the snapshot adds the Lambda runtime's ``stats()`` (a
:class:`FunctionStats` per function) and the DynamoDB proxy's own when they are attached, and the runtime's :class:`EmfMetrics` under
``"metrics"``: the CloudWatch Embedded Metric Format lines the handlers print, totalled per metric,
per function and overall, so a developer sees locally the numbers the stack's alarms and dashboard
read on AWS.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["EmfMetrics", "FunctionStats", "GatewayStats", "MetricTotal", "add_stats_routes"]

EMF_MARKER = '"CloudWatchMetrics"'
"""Every EMF record names its metric directives under ``_aws.CloudWatchMetrics``; other log lines
(Powertools' JSON logs, plain prints) are skipped without being parsed."""
TIME_UNITS = frozenset({"Milliseconds", "Microseconds", "Seconds"})
"""Units whose percentiles are worth showing (latencies, durations)."""
SAMPLES_KEPT = 10_000
"""Values kept per metric and function for percentiles (the most recent ones)."""
DURATIONS_KEPT = 10_000
"""Invocation durations kept per function for percentiles (the most recent ones)."""


@dataclass
class MetricTotal:
    """One metric's values so far: their sum, how many, the largest, and (time units) recent samples."""

    unit: str = "None"
    sum: float = 0.0
    count: int = 0
    max: float = -math.inf
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    def add(self, value: float) -> None:
        self.sum += value
        self.count += 1
        self.max = max(self.max, value)
        if self.unit in TIME_UNITS:
            self.samples.append(value)

    def snapshot(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "unit": self.unit,
            "sum": _number(self.sum),
            "count": self.count,
            "max": _number(self.max) if self.count else 0,
        }
        if self.unit in TIME_UNITS:
            ordered = sorted(self.samples)
            report["p50"] = _number(_percentile(ordered, 0.50))
            report["p95"] = _number(_percentile(ordered, 0.95))
        return report


class EmfMetrics:
    """Totals of the EMF metrics found in functions' log lines: per function and over all of them.

    :meth:`observe` takes every line a worker writes; a line that is not an EMF record costs a
    substring test, and a malformed one is counted in ``malformed`` and otherwise ignored (it must
    never disturb the log forwarding that calls this). A metric's value may be a number or a list
    of numbers (EMF allows up to 100 per record); each number counts once.
    """

    def __init__(self) -> None:
        self.records = 0
        self.malformed = 0
        self.by_function: dict[str, dict[str, MetricTotal]] = {}
        self.since = time.time()

    def reset(self) -> None:
        self.records = 0
        self.malformed = 0
        self.by_function = {}
        self.since = time.time()

    def observe(self, function_name: str, line: str) -> bool:
        """Count ``line`` if it is an EMF record; ``True`` when it was one (well formed)."""
        if EMF_MARKER not in line:
            return False
        try:
            values = _emf_values(line)
        except Exception:  # anything a broken line can raise (bad JSON, wrong shapes, deep nesting)
            self.malformed += 1
            return False
        totals = self.by_function.setdefault(function_name, {})
        for name, unit, numbers in values:
            total = totals.get(name)
            if total is None:
                total = totals[name] = MetricTotal(unit=unit)
            for number in numbers:
                total.add(number)
        self.records += 1
        return True

    def snapshot(self) -> dict[str, Any]:
        overall: dict[str, MetricTotal] = {}
        for totals in self.by_function.values():
            for name, total in totals.items():
                merged = overall.setdefault(name, MetricTotal(unit=total.unit))
                merged.sum += total.sum
                merged.count += total.count
                merged.max = max(merged.max, total.max)
                merged.samples.extend(total.samples)
        return {
            "since": self.since,
            "records": self.records,
            "malformed": self.malformed,
            "totals": {name: overall[name].snapshot() for name in sorted(overall)},
            "functions": {
                function: {name: totals[name].snapshot() for name in sorted(totals)}
                for function, totals in sorted(self.by_function.items())
            },
        }


def _emf_values(line: str) -> list[tuple[str, str, list[float]]]:
    """``(name, unit, values)`` of each metric an EMF record declares; raises on anything malformed."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise TypeError("an EMF record is a JSON object")
    directives = record["_aws"]["CloudWatchMetrics"]
    if not isinstance(directives, list):
        raise TypeError("_aws.CloudWatchMetrics is a list")
    found: list[tuple[str, str, list[float]]] = []
    for directive in directives:
        for definition in directive["Metrics"]:
            name = definition["Name"]
            if not isinstance(name, str):
                raise TypeError("a metric's Name is a string")
            unit = definition.get("Unit", "None")
            raw = record[name]
            numbers = raw if isinstance(raw, list) else [raw]
            if not all(_is_number(number) for number in numbers):
                raise TypeError(f"metric {name}: values are numbers")
            found.append((name, str(unit), [float(number) for number in numbers]))
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else round(value, 3)


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class FunctionStats:
    """One Lambda function's invocation counters in the local runtime (``/_local/stats`` → ``lambda``)."""

    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    waiting: int = 0
    """Invocations waiting for a free worker right now."""
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATIONS_KEPT))

    def record(self, duration_ms: float, *, error: bool, timed_out: bool) -> None:
        """Count one finished invocation."""
        self.invocations += 1
        self.durations.append(duration_ms)
        if error:
            self.errors += 1
        if timed_out:
            self.timeouts += 1

    def snapshot(self, *, workers: int, idle_workers: int) -> dict[str, Any]:
        """The counters, the function's worker counts and its latency percentiles."""
        durations = sorted(self.durations)
        return {
            "invocations": self.invocations,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "cold_starts": self.cold_starts,
            "workers": workers,
            "idle_workers": idle_workers,
            "waiting": self.waiting,
            "p50_ms": _percentile(durations, 0.50),
            "p99_ms": _percentile(durations, 0.99),
            "max_ms": durations[-1] if durations else 0.0,
        }


@dataclass
class GatewayStats:
    """Counters the gateway bumps on its hot paths (plain ints: no locks, one event loop)."""

    connections_total: int = 0
    connections_rejected: int = 0
    messages_in: int = 0
    messages_throttled: int = 0
    connects_throttled: int = 0
    disconnects: int = 0
    slow_consumers_disconnected: int = 0
    posts: Counter[str] = field(default_factory=Counter)
    """``@connections`` POST results by status: ``2xx``, ``403``, ``410``, ``413``, ``429``."""
    management: Counter[str] = field(default_factory=Counter)
    """Other ``@connections`` calls by ``METHOD status`` (GET/DELETE)."""
    since: float = field(default_factory=time.time)

    def reset(self) -> None:
        fresh = GatewayStats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def snapshot(self, *, open_connections: int) -> dict[str, Any]:
        return {
            "since": self.since,
            "connections": {
                "open": open_connections,
                "total": self.connections_total,
                "rejected": self.connections_rejected,
                "connects_throttled": self.connects_throttled,
                "disconnects": self.disconnects,
                "slow_consumers_disconnected": self.slow_consumers_disconnected,
            },
            "messages": {"in": self.messages_in, "throttled": self.messages_throttled},
            "connections_api": {
                "posts": {key: self.posts.get(key, 0) for key in ("2xx", "410", "413", "429")}
                | {
                    key: value for key, value in self.posts.items() if key not in ("2xx", "410", "413", "429")
                },
                "other": dict(self.management),
            },
        }


def add_stats_routes(
    app: web.Application,
    *,
    snapshot: Callable[[], dict[str, Any]],
    reset: Callable[[], None],
) -> None:
    """``GET /_local/stats`` (JSON snapshot) and ``POST /_local/stats/reset``."""

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(snapshot())

    async def post_reset(request: web.Request) -> web.Response:
        reset()
        return web.json_response({"reset": True})

    app.router.add_get("/_local/stats", get_stats)
    app.router.add_post("/_local/stats/reset", post_reset)
