"""The Lambda side of the local WebSocket API: route selection, events and integrations.

What happens between a connection (:class:`~serverless_app.local.connection.Connection`) and the
functions behind a stage's routes:

* Messages route by ``$request.body.action`` (exact match, else ``$default``); a failed integration
  sends ``{"message": "Internal server error", ...}``, one slower than the integration timeout
  ``{"message": "Endpoint request timed out", ...}``; the connection survives both. Messages over the
  stage's rate are answered ``Too Many Requests``, a body no route takes ``Forbidden``.
* An integration is given up after the integration timeout (``None``), but the invocation runs on,
  as a Lambda does; its task is kept with the gateway's, which a shutdown waits for.
* One log line per invocation: route, connection id, function, duration, outcome (the benchmarks
  read the durations from it).

The events are built by :mod:`serverless_app.local.gateway_events`; the ``$connect`` handshake is
:mod:`serverless_app.local.gateway_connect`, the WebSocket session loop :mod:`serverless_app.local.gateway`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from serverless_app.definitions import GatewayLimits
from serverless_app.local import gateway_events
from serverless_app.local.connection import Connection
from serverless_app.local.lambda_runtime import InvocationResult
from serverless_app.local.stats import EmfMetrics, GatewayStats
from serverless_app.local.throttle import TokenBucket

__all__ = ["FAILED", "FunctionRunner", "Integrations"]

log = logging.getLogger(__name__)
FAILED = InvocationResult(
    function_name="", request_id="", duration_ms=0.0, payload=None, error={"errorType": "LocalRuntimeError"}
)
"""What a route gets when the runtime itself failed (stopped, unknown function)."""


class FunctionRunner(Protocol):
    """What the gateway needs of the Lambda runtime (:class:`~serverless_app.local.lambda_runtime.LambdaRuntime`)."""

    async def invoke(
        self, function_name: str, event: dict[str, Any], *, timeout_s: float | None = None
    ) -> InvocationResult: ...

    def stats(self) -> dict[str, Any]: ...

    def reset_stats(self) -> None: ...

    @property
    def metrics(self) -> EmfMetrics: ...

    @property
    def async_redelivered(self) -> int: ...


class Integrations:
    """Invokes the functions behind one stage's routes for its connections."""

    def __init__(
        self,
        runtime: FunctionRunner,
        *,
        routes: Mapping[str, str],
        stage: str,
        api_id: str,
        limits: GatewayLimits,
        bucket: TokenBucket,
        stats: GatewayStats,
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self.runtime = runtime
        self.routes = routes
        self.stage, self.api_id = stage, api_id
        self.limits = limits
        self.bucket = bucket
        self.stats = stats
        self.tasks = tasks
        """Where work left running is kept (the gateway's shutdown waits for it)."""

    def context(self, connection: Connection) -> dict[str, Any]:
        """The ``requestContext`` fields every event of ``connection`` carries."""
        return {
            "connection_id": connection.connection_id,
            "connected_at": connection.connected_at_ms,
            "domain_name": connection.domain_name,
            "stage": self.stage,
            "api_id": self.api_id,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        }

    def select_route(self, body: str) -> str | None:
        """``$request.body.action``: exact match of a route key, else ``$default`` (or ``None``).

        A body the selection expression cannot be evaluated on (not JSON, not an object, nested
        too deeply to parse) goes to ``$default`` too, as on AWS, whose handler answers it.
        """
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError, RecursionError):
            action = None
        if isinstance(action, str) and action in self.routes and action not in ("$connect", "$disconnect"):
            return action
        return "$default" if "$default" in self.routes else None

    async def dispatch(self, connection: Connection, body: str) -> None:
        """One message: throttle, select its route, invoke it, answer a failure with the gateway's error."""
        request_id = gateway_events.new_id()
        if not self.bucket.try_acquire():
            self.stats.messages_throttled += 1
            connection.send_error("Too Many Requests", request_id)
            return
        route = self.select_route(body)
        if route is None:
            connection.send_error("Forbidden", request_id)
            return
        event = gateway_events.message_event(
            route_key=route, body=body, authorizer=connection.authorizer, **self.context(connection)
        )
        request_id = event["requestContext"]["requestId"]
        result = await self.invoke(route, connection, self.routes[route], event)
        if result is None:
            connection.send_error("Endpoint request timed out", request_id)
        elif not result.ok:
            connection.send_error("Internal server error", request_id)

    async def invoke(
        self, route: str, connection: Connection, function: str, event: Any
    ) -> InvocationResult | None:
        """Invoke ``function`` for ``route``; give up waiting after the integration timeout, ``None``
        (the invocation itself runs on, as a Lambda does). Logs one line."""
        started = time.monotonic()
        task = asyncio.ensure_future(self.runtime.invoke(function, event))
        done, _ = await asyncio.wait({task}, timeout=self.limits.integration_timeout_s)
        duration_ms = (time.monotonic() - started) * 1000
        if not done:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            log.info("%-12s %s %s %.1f ms timeout", route, connection.connection_id, function, duration_ms)
            return None
        try:
            result = task.result()
        except Exception as error:  # the runtime itself failed (stopped, unknown function)
            log.warning("%-12s %s %s failed: %s", route, connection.connection_id, function, error)
            return FAILED
        if not result.ok:
            status = "timeout" if result.timed_out else "error"
        elif isinstance(result.payload, dict) and "statusCode" in result.payload:
            status = str(result.payload["statusCode"])
        else:
            status = "ok"
        log.info(
            "%-12s %s %s %.1f ms %s", route, connection.connection_id, function, result.duration_ms, status
        )
        return result

    async def call(self, function: str, event: dict[str, Any]) -> InvocationResult | None:
        """Invoke ``function`` (the authorizer) with the integration timeout, without a log line."""
        task = asyncio.ensure_future(self.runtime.invoke(function, event))
        done, _ = await asyncio.wait({task}, timeout=self.limits.integration_timeout_s)
        if not done:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return None
        try:
            return task.result()
        except Exception:
            log.exception("authorizer %s failed", function)
            return FAILED

    def spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` in the background, kept with the tasks a shutdown waits for."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
