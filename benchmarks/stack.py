"""The processes ``make bench`` measures, and the running local stack seen from outside.

:func:`started` runs ``python -m <module>`` (``benchmarks.stack_process``, ``benchmarks.floor_server``)
until it prints its JSON line; :class:`Stack` reads the stack's ``/_local/stats``, its gateway's
per-invocation log, its processes' ``/proc`` and the connection records left in DynamoDB Local.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from benchmarks import procfs
from serverless_app.chat.store.keys import is_connection_id
from serverless_app.definitions import CONNECTIONS_TABLE

__all__ = ["OUT", "Process", "Stack", "connection_records", "started"]

OUT = Path(__file__).resolve().parent / "out"
"""Where the benchmarks write their JSON, plots, partial results and the processes' logs."""


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
            cwd=OUT.parent.parent,
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

    def __init__(self, process: Process, http: aiohttp.ClientSession, console: Console) -> None:
        self.process = process
        self.http = http
        self.console = console
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
        self.console.print(f"[yellow]stack not quiet after {timeout_s:g} s; going on[/yellow]")

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
        """Connection records left in the stack's connections table (:func:`connection_records`)."""
        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=self.process.info["dynamodb_endpoint"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return connection_records(client)


def connection_records(client: Any) -> int:
    """Connection records in the connections table, read with the DynamoDB ``client`` (a Scan);
    users' items and the ``@connections`` budget's item outlive connections on purpose and do
    not count."""
    total = 0
    kwargs: dict[str, Any] = {
        "TableName": CONNECTIONS_TABLE.name,
        "ProjectionExpression": "#id",
        "ExpressionAttributeNames": {"#id": "connection_id"},
    }
    for _ in range(1000):
        page = client.scan(**kwargs)
        total += sum(is_connection_id(item["connection_id"]["S"]) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total
