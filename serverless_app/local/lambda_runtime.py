"""Lambda semantics on one machine: per-function pools of long-lived worker processes.

Each function gets up to ``max_concurrency`` workers (``python -m serverless_app.local.lambda_worker``),
started lazily (a cold start) and reused warm, each with exactly that function's environment and one
invocation at a time; excess invocations wait for a free worker, like reserved concurrency. A worker
that exceeds the timeout is killed (``Sandbox.Timedout``), one that dies yields ``Runtime.ExitError``;
either way the next invocation gets a fresh worker. With ``reload`` on, edits to ``*.py`` under
``source_roots`` retire idle workers so the next invocation runs the new code; in-flight invocations
finish on their old worker. This module logs each invocation's ``START``/``RESPONSE`` (with
``log_events``) and ``REPORT`` lines; worker stderr (handler ``print`` and logging) is logged by
:mod:`~serverless_app.local.worker_channel`, each line prefixed with ``[function-name]``, and the
CloudWatch EMF lines among them (the handlers' metrics) are also totalled in ``metrics``
(:class:`~serverless_app.local.stats.EmfMetrics`).

The parts: :mod:`~serverless_app.local.worker_pool` (one function's workers),
:mod:`~serverless_app.local.worker_channel` (one worker process and its pipes),
:mod:`~serverless_app.local.hot_reload` (source generations), :mod:`~serverless_app.local.lambda_async`
(``Event`` invocations, their retries and chaos redeliveries), and
:class:`~serverless_app.local.stats.FunctionStats` (the counters ``stats()`` reports).

Differences from AWS, on purpose: excess invocations queue instead of failing with 429; retry delays
are short; a cancelled caller kills the worker serving it. Hot reload's known limit is in
:mod:`~serverless_app.local.hot_reload`.

Measured on the shared 2-core box: an empty handler's warm round trip (frame out, handler, frame
back) is about 0.15-0.25 ms wall, ~0.1 ms CPU in the runtime's process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serverless_app.definitions import FunctionDefinition
from serverless_app.local.errors import FunctionNotFoundError, LocalRuntimeError, WorkerDied
from serverless_app.local.hot_reload import RELOAD_CHECK_INTERVAL_S, SourceWatcher
from serverless_app.local.lambda_async import AsyncInvocations
from serverless_app.local.lambda_container import REPO_ROOT, lambda_environment
from serverless_app.local.redact import redact
from serverless_app.local.stats import EmfMetrics, FunctionStats
from serverless_app.local.worker_channel import Worker
from serverless_app.local.worker_pool import WorkerPool

__all__ = ["InvocationResult", "LambdaRuntime"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation produced: the handler's return value, or the error Lambda would report."""

    function_name: str
    request_id: str
    duration_ms: float
    payload: Any
    error: dict[str, Any] | None
    timed_out: bool = False
    cold_start: bool = False
    init_duration_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaRuntime:
    """Runs functions' handlers in worker processes with Lambda's invocation semantics."""

    def __init__(
        self,
        *,
        functions: Sequence[FunctionDefinition],
        environments: Mapping[str, Mapping[str, str]],
        max_concurrency: int = 8,
        reload: bool = True,
        source_roots: Sequence[Path] = (REPO_ROOT / "serverless_app",),
        python: str = sys.executable,
        log_events: bool = False,
        handler_overrides: Mapping[str, str] | None = None,
        reload_interval_s: float = RELOAD_CHECK_INTERVAL_S,
        async_retry_delay_s: float = 1.0,
        async_redeliveries: int = 0,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._functions = {function.name: function for function in functions}
        self._environments = {name: dict(env) for name, env in environments.items()}
        self.max_concurrency = max_concurrency
        self.reload = reload
        self.source_roots = tuple(Path(root) for root in source_roots)
        self.python = python
        self.log_events = log_events
        self.reload_interval_s = reload_interval_s
        self.handler_overrides: dict[str, str] = dict(handler_overrides or {})
        """Function name → handler string to run instead of the definition's (tests use this)."""
        self._pools: dict[str, WorkerPool] = {}
        self._watcher: SourceWatcher | None = None
        self._async = AsyncInvocations(
            self._invoke, self._function, retry_delay_s=async_retry_delay_s, redeliveries=async_redeliveries
        )
        self._running = 0
        self._stopped = False
        self.metrics = EmfMetrics()
        """The EMF metrics the handlers printed (``/_local/stats`` → ``metrics``)."""

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Cheap: remembers the loop and snapshots the sources; workers start on first use."""
        self._async.loop = asyncio.get_running_loop()
        self._stopped = False
        if self.reload and self._watcher is None:
            self._watcher = SourceWatcher(self.source_roots, self.reload_interval_s)

    async def stop(self) -> None:
        """Drop queued and running async invocations, kill every worker and reap it. Idempotent."""
        self._stopped = True
        await self._async.cancel()
        workers = [worker for pool in self._pools.values() for worker in pool.forget_workers()]
        await asyncio.gather(*(worker.kill() for worker in workers), return_exceptions=True)
        while reaping := [task for pool in self._pools.values() for task in pool.reaping]:
            await asyncio.gather(*reaping, return_exceptions=True)

    # --- invoking ----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No invocation is running or waiting for a worker, and no asynchronous one (or its retry)
        is queued: every ``@connections`` post the handlers make has been made."""
        return self._running == 0 and not self._async.tasks

    @property
    def async_retries(self) -> int:
        """Asynchronous invocations retried after a failure (all functions)."""
        return self._async.retries

    @property
    def async_redelivered(self) -> int:
        """Asynchronous invocations delivered again by chaos ``async-retry=N``."""
        return self._async.redelivered

    def has_function(self, name: str) -> bool:
        return name in self._functions

    def handler_for(self, name: str) -> str:
        return self.handler_overrides.get(name) or self._function(name).handler

    async def invoke(
        self, function_name: str, event: dict[str, Any], *, timeout_s: float | None = None
    ) -> InvocationResult:
        """Run one invocation (RequestResponse); waits for a free worker when all are busy."""
        return await self._invoke(function_name, event, timeout_s=timeout_s, request_id=str(uuid.uuid4()))

    def invoke_async(self, function_name: str, event: dict[str, Any]) -> str:
        """Queue an ``Event`` invocation and return its request id; failures are logged, not raised."""
        return self._async.submit(function_name, event)

    async def _invoke(
        self, function_name: str, event: dict[str, Any], *, timeout_s: float | None, request_id: str
    ) -> InvocationResult:
        if self._stopped:
            raise LocalRuntimeError("the Lambda runtime is stopped")
        self._running += 1
        try:
            return await self._invoke_in_pool(
                function_name, event, timeout_s=timeout_s, request_id=request_id
            )
        finally:
            self._running -= 1

    async def _invoke_in_pool(
        self, function_name: str, event: dict[str, Any], *, timeout_s: float | None, request_id: str
    ) -> InvocationResult:
        pool = self._pool(function_name)
        limit_s = float(pool.definition.timeout_s)
        if timeout_s is not None:
            limit_s = min(limit_s, timeout_s)
        generation = self._current_generation(pool)
        handler = self.handler_for(function_name)
        pool.stats.waiting += 1
        try:
            await pool.semaphore.acquire()
        finally:
            pool.stats.waiting -= 1
        try:
            worker = pool.take_idle(handler, generation)
            cold = worker is None
            if worker is None:
                worker = await pool.spawn(handler, generation)
                pool.stats.cold_starts += 1
            result = await self._call(pool, worker, event, request_id, limit_s, cold)
        finally:
            pool.semaphore.release()
        pool.stats.record(result.duration_ms, error=result.error is not None, timed_out=result.timed_out)
        return result

    async def _call(
        self,
        pool: WorkerPool,
        worker: Worker,
        event: dict[str, Any],
        request_id: str,
        limit_s: float,
        cold: bool,
    ) -> InvocationResult:
        name = pool.definition.name
        if self.log_events:
            logger.info(
                "[%s] START RequestId: %s Version: $LATEST event=%s",
                name,
                request_id,
                json.dumps(redact(event)),
            )
        started = time.perf_counter()
        deadline_ms = int(time.time() * 1000 + limit_s * 1000)
        payload: Any = None
        error: dict[str, Any] | None = None
        timed_out = healthy = False
        try:
            async with asyncio.timeout(limit_s):
                await worker.send({"id": request_id, "event": event, "deadline_ms": deadline_ms})
                reply = await worker.read()
            payload, error, healthy = reply.get("payload"), reply.get("error"), True
        except TimeoutError:
            timed_out = True
            message = f"RequestId: {request_id} Error: Task timed out after {limit_s:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message, "stackTrace": []}
        except WorkerDied:
            reason = await worker.exit_reason()
            message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
            error = {"errorType": "Runtime.ExitError", "errorMessage": message, "stackTrace": []}
        finally:  # also on cancellation: a worker with a reply pending cannot be reused
            duration_ms = (time.perf_counter() - started) * 1000
            self._release(pool, worker, healthy)
        if self.log_events and error is None:
            logger.info(
                "[%s] RESPONSE RequestId: %s %s", name, request_id, json.dumps(redact(payload), default=str)
            )
        if self.log_events or error is not None:
            level = logging.WARNING if error is not None else logging.INFO
            logger.log(
                level,
                "[%s] REPORT RequestId: %s Duration: %.2f ms%s%s",
                name,
                request_id,
                duration_ms,
                f" Init Duration: {worker.init_ms:.2f} ms" if cold else "",
                f" Error: {error['errorType']}: {error['errorMessage']}" if error else "",
            )
        return InvocationResult(
            function_name=name,
            request_id=request_id,
            duration_ms=duration_ms,
            payload=payload if error is None else None,
            error=error,
            timed_out=timed_out,
            cold_start=cold,
            init_duration_ms=worker.init_ms if cold else None,
        )

    # --- workers -----------------------------------------------------------------

    def _function(self, name: str) -> FunctionDefinition:
        try:
            return self._functions[name]
        except KeyError:
            raise FunctionNotFoundError(name) from None

    def _pool(self, name: str) -> WorkerPool:
        pool = self._pools.get(name)
        if pool is None:
            definition = self._function(name)
            pool = WorkerPool(
                definition,
                self._worker_environment(definition),
                max_concurrency=self.max_concurrency,
                python=self.python,
                metrics=self.metrics,
            )
            self._pools[name] = pool
        return pool

    def _current_generation(self, pool: WorkerPool) -> int:
        if self._watcher is None:
            if not self.reload:
                return 0
            self._watcher = SourceWatcher(self.source_roots, self.reload_interval_s)
        generation = self._watcher.poll()
        pool.retire_stale(generation)
        return generation

    def _release(self, pool: WorkerPool, worker: Worker, healthy: bool) -> None:
        current = self._watcher.generation if self._watcher is not None else 0
        pool.release(worker, reuse=healthy and not self._stopped and worker.generation == current)

    def _worker_environment(self, definition: FunctionDefinition) -> dict[str, str]:
        """The function's environment plus what Lambda itself sets; nothing from this process leaks in."""
        environment = lambda_environment(definition)
        environment.update(self._environments.get(definition.name, {}))
        return environment

    # --- introspection -----------------------------------------------------------

    def reset_stats(self) -> None:
        """``POST /_local/stats/reset``: forget the EMF metrics totalled so far."""
        self.metrics.reset()

    def stats(self) -> dict[str, Any]:
        """Per function: invocations, errors, timeouts, cold starts, worker counts, latency percentiles."""
        report: dict[str, Any] = {}
        for name in self._functions:
            pool = self._pools.get(name)
            if pool is None:
                report[name] = FunctionStats().snapshot(workers=0, idle_workers=0)
            else:
                report[name] = pool.stats.snapshot(workers=len(pool.workers), idle_workers=len(pool.idle))
        return report
