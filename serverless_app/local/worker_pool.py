"""One Lambda function's pool of worker processes in the local runtime.

A :class:`WorkerPool` holds up to ``max_concurrency`` workers
(:class:`~serverless_app.local.worker_channel.Worker`), each with exactly the function's environment,
started lazily (a cold start: process start and handler import, bounded by
``max(INIT_TIMEOUT_S, function timeout)``) and reused warm, most recently used first. A worker is
taken for one invocation at a time and given back healthy, or retired (killed and reaped in the
background). Each worker carries the source generation it started in
(:mod:`serverless_app.local.hot_reload`): idle workers of an older one are retired. The pool's
counters are a :class:`~serverless_app.local.stats.FunctionStats`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from serverless_app.definitions import FunctionDefinition
from serverless_app.local.errors import WorkerDied
from serverless_app.local.stats import EmfMetrics, FunctionStats
from serverless_app.local.worker_channel import DeadWorker, Worker

__all__ = ["INIT_TIMEOUT_S", "WorkerPool"]

INIT_TIMEOUT_S = 10.0
"""AWS's limit on the init phase (importing the handler); we allow ``max(10 s, function timeout)``."""

logger = logging.getLogger(__name__)


class WorkerPool:
    """One function's workers, concurrency bound and counters."""

    def __init__(
        self,
        definition: FunctionDefinition,
        environment: Mapping[str, str],
        *,
        max_concurrency: int,
        python: str,
        metrics: EmfMetrics,
    ) -> None:
        self.definition = definition
        self.environment = dict(environment)
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.stats = FunctionStats()
        self.reaping: set[asyncio.Task[Any]] = set()
        """Retired workers being killed and reaped."""
        self._python = python
        self._metrics = metrics

    def retire_stale(self, generation: int) -> None:
        """Retire the idle workers started before source generation ``generation``."""
        stale = [worker for worker in self.idle if worker.generation != generation]
        if stale:
            logger.info("[%s] source changed: retiring %d idle worker(s)", self.definition.name, len(stale))
            self.idle = [worker for worker in self.idle if worker.generation == generation]
            for worker in stale:
                self.retire(worker)

    def take_idle(self, handler: str, generation: int) -> Worker | None:
        """A warm worker running ``handler`` from source generation ``generation``, if there is one."""
        while self.idle:
            worker = self.idle.pop()  # most recently used first, as Lambda tends to
            alive = worker.process.returncode is None  # an idle worker may have been killed from outside
            if alive and worker.handler == handler and worker.generation == generation:
                return worker
            self.retire(worker)
        return None

    def release(self, worker: Worker, *, reuse: bool) -> None:
        """Give ``worker`` back after an invocation: idle again if ``reuse`` and still ours, else retired."""
        if reuse and worker in self.workers:
            self.idle.append(worker)
        else:
            self.retire(worker)

    def retire(self, worker: Worker) -> None:
        self.workers.discard(worker)
        task = asyncio.get_running_loop().create_task(worker.kill())
        self.reaping.add(task)
        task.add_done_callback(self.reaping.discard)

    def forget_workers(self) -> list[Worker]:
        """Forget every worker (idle or busy) and return them, for the caller to kill."""
        workers = list(self.workers)
        self.idle.clear()
        self.workers.clear()
        return workers

    async def spawn(self, handler: str, generation: int) -> Worker:
        """A cold start; a worker that dies or times out during init comes back as a
        :class:`~serverless_app.local.worker_channel.DeadWorker` whose invocation reports how."""
        environment = dict(self.environment)
        environment["_HANDLER"] = handler
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        started = time.perf_counter()
        environment["AWS_LAMBDA_LOG_STREAM_NAME"] = stream
        worker = await Worker.start(
            python=self._python,
            environment=environment,
            function_name=self.definition.name,
            handler=handler,
            generation=generation,
            metrics=self._metrics,
        )
        self.workers.add(worker)
        try:
            async with asyncio.timeout(max(INIT_TIMEOUT_S, float(self.definition.timeout_s))):
                ready = await worker.read()
        except (WorkerDied, TimeoutError) as exc:
            self.workers.discard(worker)
            await worker.kill()
            reason = "init timed out" if isinstance(exc, TimeoutError) else await worker.exit_reason()
            return DeadWorker.wrap(worker, reason)
        except BaseException:
            self.workers.discard(worker)
            await worker.kill()
            raise
        worker.init_ms = (time.perf_counter() - started) * 1000  # process start + handler import
        logger.debug(
            "[%s] cold start: pid %s ready in %.1f ms", self.definition.name, ready.get("pid"), worker.init_ms
        )
        return worker
