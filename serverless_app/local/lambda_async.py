"""Asynchronous (``Event``) invocations in the local Lambda runtime: queued, retried, redelivered.

:meth:`AsyncInvocations.submit` queues an event and returns its request id at once; the invocation
runs as a task on the runtime's event loop (also when submitted from another thread), and its failures
are logged, never raised. A failed asynchronous invocation is retried as the function's
EventInvokeConfig says (``async_retry_attempts``, ``async_max_event_age_s`` in its definition), after
``retry_delay_s`` (AWS waits about a minute, then two); functions without one are not retried
locally. Chaos ``async-retry=N`` (``redeliveries``) delivers every event N more times, even after a
success, as Lambda's at-least-once delivery may. The runtime is :mod:`serverless_app.local.lambda_runtime`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from serverless_app.definitions import FunctionDefinition
from serverless_app.local.errors import LocalRuntimeError

if TYPE_CHECKING:
    from serverless_app.local.lambda_runtime import InvocationResult

__all__ = ["AsyncInvocations", "Invoke"]

logger = logging.getLogger(__name__)


class Invoke(Protocol):
    """The runtime's own invocation, with the request id the event keeps across retries."""

    def __call__(
        self, function_name: str, event: dict[str, Any], *, timeout_s: float | None, request_id: str
    ) -> Awaitable[InvocationResult]: ...


class AsyncInvocations:
    """The queued ``Event`` invocations of one runtime, with their retries and counters."""

    def __init__(
        self,
        invoke: Invoke,
        definition: Callable[[str], FunctionDefinition],
        *,
        retry_delay_s: float,
        redeliveries: int,
    ) -> None:
        self._invoke = invoke
        self._definition = definition
        self.retry_delay_s = retry_delay_s
        self.retries = 0
        """Asynchronous invocations retried after a failure (all functions)."""
        self.redeliveries = redeliveries
        """Chaos ``async-retry=N``: every async event is delivered N more times, even after a success."""
        self.redelivered = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        """Queued and running deliveries (with their retries)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The runtime's event loop, once started: where a submit from another thread is scheduled."""

    def submit(self, function_name: str, event: dict[str, Any]) -> str:
        """Queue an ``Event`` invocation and return its request id; failures are logged, not raised."""
        self._definition(function_name)
        request_id = str(uuid.uuid4())
        coroutine = self._deliver(function_name, event, request_id)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and (self.loop is None or loop is self.loop):
            self._schedule(coroutine)
        elif self.loop is not None:  # called from another thread
            self.loop.call_soon_threadsafe(self._schedule, coroutine)
        else:
            coroutine.close()
            raise LocalRuntimeError("invoke_async needs a running event loop: call start() first")
        return request_id

    async def cancel(self) -> None:
        """Drop every queued and running delivery."""
        invocations = list(self.tasks)
        for task in invocations:
            task.cancel()
        await asyncio.gather(*invocations, return_exceptions=True)

    def _schedule(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, function_name: str, event: dict[str, Any], request_id: str) -> None:
        """One async event: its invocation (and retries), then ``redeliveries`` more, in turn."""
        await self._invoke_logged(function_name, event, request_id)
        for delivery in range(self.redeliveries):
            self.redelivered += 1
            logger.info(
                "[%s] async invocation %s delivered again (--chaos async-retry, %d of %d)",
                function_name,
                request_id,
                delivery + 1,
                self.redeliveries,
            )
            await self._invoke_logged(function_name, event, request_id)

    async def _invoke_logged(self, function_name: str, event: dict[str, Any], request_id: str) -> None:
        definition = self._definition(function_name)
        retries = definition.async_retry_attempts or 0
        max_age_s = definition.async_max_event_age_s or 6 * 3600
        queued = time.monotonic()
        for attempt in range(retries + 1):
            try:
                result = await self._invoke(function_name, event, timeout_s=None, request_id=request_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("[%s] async invocation %s failed", function_name, request_id)
                return
            if result.error is None:
                return
            logger.error(
                "[%s] async invocation %s failed (attempt %d of %d): %s: %s",
                function_name,
                request_id,
                attempt + 1,
                retries + 1,
                result.error.get("errorType"),
                result.error.get("errorMessage"),
            )
            if attempt == retries or time.monotonic() + self.retry_delay_s - queued > max_age_s:
                return
            await asyncio.sleep(self.retry_delay_s)
            self.retries += 1
