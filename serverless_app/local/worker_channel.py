"""The channel to one Lambda worker process (:mod:`serverless_app.local.lambda_worker`).

A worker reads invocations on its stdin and answers on its stdout, one length-prefixed JSON message
each way (:data:`~serverless_app.local.lambda_container.HEADER`); a closed pipe means the process
exited or was killed (:class:`WorkerDied`), and :meth:`Worker.exit_reason` words how, as AWS does.
Everything the worker writes to stderr (handler ``print`` and logging) is logged here, each line
prefixed with ``[function-name]``, and the CloudWatch EMF lines among them (the handlers' metrics)
are totalled in an :class:`~serverless_app.local.stats.EmfMetrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Mapping
from typing import Any

from serverless_app.local.errors import WorkerDied
from serverless_app.local.lambda_container import HEADER, REPO_ROOT, encode_message
from serverless_app.local.stats import EmfMetrics

__all__ = ["DeadWorker", "Worker", "forward_stderr"]

logger = logging.getLogger(__name__)


class Worker:
    """One worker process and its two pipes."""

    def __init__(self, process: asyncio.subprocess.Process, handler: str, generation: int) -> None:
        self.process = process
        self.handler = handler
        self.generation = generation
        self.pid = process.pid
        self.init_ms = 0.0
        self.stderr_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        *,
        python: str,
        environment: Mapping[str, str],
        function_name: str,
        handler: str,
        generation: int,
        metrics: EmfMetrics,
    ) -> Worker:
        """Start ``python -m serverless_app.local.lambda_worker`` with exactly ``environment`` and
        forward its stderr; the caller then waits for its ready message (:meth:`read`)."""
        process = await asyncio.create_subprocess_exec(
            python,
            "-m",
            "serverless_app.local.lambda_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(environment),
            cwd=REPO_ROOT,
            start_new_session=True,  # Ctrl-C reaches the runtime, which then stops the workers
        )
        worker = cls(process, handler, generation)
        worker.stderr_task = asyncio.get_running_loop().create_task(
            forward_stderr(function_name, process, metrics)
        )
        return worker

    async def read(self) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            header = await stdout.readexactly(HEADER.size)
            message: dict[str, Any] = json.loads(await stdout.readexactly(HEADER.unpack(header)[0]))
        except asyncio.IncompleteReadError:
            raise WorkerDied from None
        return message

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(encode_message(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerDied from None

    async def exit_reason(self) -> str:
        """AWS's wording for how the process ended: ``exit status N`` or ``signal: killed``."""
        try:
            code = await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            return "unknown"
        if code < 0:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
            return "signal: killed" if name == "kill" else f"signal: {name}"
        return f"exit status {code}"

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 5)
        if self.stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.stderr_task, 2)


class DeadWorker(Worker):
    """A worker that died during init: every call reports how it ended, as ``Runtime.ExitError``."""

    reason = ""

    @classmethod
    def wrap(cls, worker: Worker, reason: str) -> DeadWorker:
        dead = cls(worker.process, worker.handler, worker.generation)
        dead.reason = reason
        return dead

    async def send(self, message: dict[str, Any]) -> None:
        raise WorkerDied

    async def exit_reason(self) -> str:
        return self.reason


async def forward_stderr(
    function_name: str, process: asyncio.subprocess.Process, metrics: EmfMetrics | None = None
) -> None:
    """Log every line the worker writes to stderr, prefixed with the function's name, and total the
    EMF metrics among them in ``metrics``."""
    stderr = process.stderr
    assert stderr is not None
    pending = b""
    while chunk := await stderr.read(65536):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            _forward_line(function_name, line.decode(errors="replace").rstrip("\r"), metrics)
    if pending:
        _forward_line(function_name, pending.decode(errors="replace"), metrics)


def _forward_line(function_name: str, text: str, metrics: EmfMetrics | None) -> None:
    logger.info("[%s] %s", function_name, text)
    if metrics is not None:
        metrics.observe(function_name, text)
