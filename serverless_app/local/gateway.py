"""API Gateway's WebSocket API, emulated on aiohttp: ``ws://HOST:PORT/{stage}``.

This is the WebSocket wire. The model both wires act on is :class:`~serverless_app.local.connections.Connections`
(a :class:`~serverless_app.local.connection.Connection` per client, with its bounded outbound queue);
the ``@connections`` HTTP wire is :mod:`serverless_app.local.connections_api`, the event shapes
:mod:`serverless_app.local.gateway_events`.
What is reproduced, and where AWS documents it, is listed in ``docs``/DESIGN.md §1:

* ``$connect`` holds the upgrade until the (optional) REQUEST authorizer and the handler return;
  a non-2xx ``statusCode`` rejects the handshake with that status, a failed integration (the
  handler raised or crashed, or answered something unreadable) with 502 as on AWS, a timeout with
  504. Until then the connection is not postable (410).
* Messages route by ``$request.body.action`` (exact match, else ``$default``); a failed integration
  sends ``{"message": "Internal server error", ...}``, one slower than the integration timeout
  ``{"message": "Endpoint request timed out", ...}``; the connection survives both.
* Frames over 32 KB or messages over 128 KB close with 1009; binary frames close with 1003;
  idle timeout and maximum duration close with 1001 "Going away".
* ``$disconnect`` fires exactly once per accepted connection, whatever ended it (unless
  ``--chaos disconnect-drop=P`` skips it, as AWS may: :mod:`serverless_app.local.chaos`).
* Outbound messages over 32 KB leave as several frames of at most 32 KB; data that is not UTF-8
  leaves as a binary message. Headers returned by ``$connect`` go into the 101 response
  (``Sec-WebSocket-Protocol`` included, as returned).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from serverless_app.definitions import LIMITS, ROUTES, STAGE_NAME, TOKEN_QUERY_PARAMETER, GatewayLimits
from serverless_app.local import gateway_events
from serverless_app.local.chaos import Chaos
from serverless_app.local.connection import Connection, install_frame_guard
from serverless_app.local.connections import Connections
from serverless_app.local.connections_api import add_connections_routes
from serverless_app.local.lambda_runtime import InvocationResult
from serverless_app.local.stats import EmfMetrics, GatewayStats, add_stats_routes
from serverless_app.local.throttle import TokenBucket

__all__ = ["DEFAULT_API_ID", "FunctionRunner", "Gateway", "StatsSource"]

log = logging.getLogger(__name__)
DEFAULT_API_ID = "l0ca1wsapi"
GOING_AWAY = (1001, "Going away")
_FAILED = InvocationResult(
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


class StatsSource(Protocol):
    """A part whose counters ``/_local/stats`` shows and resets (the DynamoDB proxy)."""

    def stats(self) -> dict[str, dict[str, Any]]: ...

    def reset(self) -> None: ...


SHUTDOWN_GRACE_S = 2.0
"""How long a stop waits for the ``$disconnect`` of every closed connection before it goes on (Ctrl-C
answers within seconds even during a disconnect storm)."""


_HANDSHAKE_HEADERS = frozenset(
    {
        "connection",
        "upgrade",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
        "content-type",
    }
)
"""Headers a ``$connect`` integration cannot set on the 101 response (the handshake's own)."""
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _integration_headers(payload: Any) -> list[tuple[str, str]]:
    """``headers`` and ``multiValueHeaders`` of a Lambda proxy response, as ``(name, value)`` pairs.

    ``multiValueHeaders`` wins for a name in both (as in API Gateway's proxy integrations); handshake
    headers and values with CR/LF (header injection; aiohttp would refuse them) are dropped.
    """
    if not isinstance(payload, dict):
        return []
    pairs: list[tuple[str, str]] = []
    multi = payload.get("multiValueHeaders")
    multi = multi if isinstance(multi, dict) else {}
    for name, values in multi.items():
        if isinstance(values, list):
            pairs += [(str(name), value) for value in values]
    single = payload.get("headers")
    if isinstance(single, dict):
        names = {str(name).lower() for name in multi}
        pairs += [(str(name), value) for name, value in single.items() if str(name).lower() not in names]
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, (str, int, float)):
            continue
        text = str(value)
        if name.lower() in _HANDSHAKE_HEADERS or not _TOKEN.match(name) or any(c in text for c in "\r\n\0"):
            continue
        kept.append((name, text))
    return kept


class Gateway:
    """One WebSocket API stage. ``install(app)`` mounts it; ``shutdown()`` closes every connection."""

    def __init__(
        self,
        runtime: FunctionRunner,
        *,
        stage: str = STAGE_NAME,
        routes: Mapping[str, str] | None = None,
        authorizer_function: str | None = None,
        limits: GatewayLimits = LIMITS,
        api_id: str = DEFAULT_API_ID,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        max_outbound_bytes: int = 1024 * 1024,
        slow_consumer_timeout_s: float = 10.0,
        static_dir: Path | None = None,
        dynamodb_proxy: StatsSource | None = None,
        chaos: Chaos | None = None,
    ) -> None:
        self.runtime = runtime
        self.chaos = chaos
        self.disconnects_dropped = 0
        """``$disconnect`` invocations skipped by ``--chaos disconnect-drop``."""
        self.stage = stage
        self.routes = dict(routes if routes is not None else {r.route_key: r.function for r in ROUTES})
        self.authorizer_function = authorizer_function
        self.limits = limits
        self.api_id, self.region, self.account_id = api_id, region, account_id
        self.max_outbound_bytes = max_outbound_bytes
        self.slow_consumer_timeout_s = slow_consumer_timeout_s
        self.static_dir = static_dir
        self.dynamodb_proxy = dynamodb_proxy
        self.connections = Connections(
            max_message_bytes=limits.max_message_bytes,
            # the account-level @connections quota: POSTs past it get 429 (as on AWS)
            quota=TokenBucket(limits.connections_rate_limit, limits.connections_burst_limit),
        )
        self.stats = GatewayStats()
        self.bucket = TokenBucket(limits.stage_rate_limit, limits.stage_burst_limit)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    # --- mounting -------------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_get(f"/{self.stage}", self._handle_websocket)
        add_connections_routes(app, self.connections, stage=self.stage, region=self.region, stats=self.stats)
        add_stats_routes(app, snapshot=self.snapshot, reset=self.reset_stats)
        app.router.add_get("/_local/health", self._health)
        if self.static_dir is not None and self.static_dir.is_dir():
            app.router.add_get("/{path:.*}", self._static)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(lambda _app: self.shutdown())

    async def _on_startup(self, app: web.Application) -> None:
        self._sweeper = asyncio.create_task(self._sweep())

    def snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot(open_connections=len(self.connections))
        snapshot["lambda"] = self.runtime.stats()
        if self.chaos is not None and self.chaos.active:
            snapshot["chaos"] = {
                "spec": self.chaos.describe(),
                "disconnects_dropped": self.disconnects_dropped,
                "async_redelivered": self.runtime.async_redelivered,
            }
        snapshot["metrics"] = self.runtime.metrics.snapshot()  # the handlers' EMF metrics
        if self.dynamodb_proxy is not None:
            snapshot["dynamodb"] = self.dynamodb_proxy.stats()
        return snapshot

    def reset_stats(self) -> None:
        self.stats.reset()
        self.runtime.reset_stats()
        if self.dynamodb_proxy is not None:
            self.dynamodb_proxy.reset()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "connections": len(self.connections)})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        assert self.static_dir is not None
        root = self.static_dir.resolve()
        target = (root / request.match_info["path"]).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    # --- $connect ---------------------------------------------------------------------------------

    def _context(self, connection: Connection) -> dict[str, Any]:
        return {
            "connection_id": connection.connection_id,
            "connected_at": connection.connected_at_ms,
            "domain_name": connection.domain_name,
            "stage": self.stage,
            "api_id": self.api_id,
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        }

    async def _handle_websocket(self, request: web.Request) -> web.StreamResponse:
        ws = self._websocket_response()
        if not ws.can_prepare(request).ok:
            return web.json_response({"message": "Upgrade Required"}, status=426)
        if self._closing:
            return web.Response(status=503)
        if not self.bucket.try_acquire():
            self.stats.connects_throttled += 1
            return web.json_response({"message": "Too Many Requests"}, status=429)
        connection = Connection(
            connection_id=gateway_events.new_id(),
            connected_at_ms=int(time.time() * 1000),
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            domain_name=request.host,
        )
        self.connections.add(connection)  # known, but 410 until $connect returns
        try:
            status, headers = await self._connect(request, connection)
        except BaseException:
            self.connections.discard(connection.connection_id)
            raise
        if not 200 <= status < 300 or self._closing:
            self.connections.discard(connection.connection_id)
            self.stats.connections_rejected += 1
            return web.Response(status=status if status >= 300 else 503)
        ws = self._websocket_response(headers)
        await ws.prepare(request)
        install_frame_guard(request, ws, self.limits.max_frame_bytes)
        connection.open(
            ws, request.transport, max_bytes=self.max_outbound_bytes, max_frame=self.limits.max_frame_bytes
        )
        self.stats.connections_total += 1
        try:
            await self._receive_loop(connection, ws)
        finally:
            self._end(connection, ws)
        return ws

    def _websocket_response(self, headers: Sequence[tuple[str, str]] = ()) -> web.WebSocketResponse:
        """The 101 response, carrying the headers the ``$connect`` integration returned.

        ``Sec-WebSocket-Protocol`` is sent as the integration returned it (as API Gateway does,
        whether or not the client offered it: a client that did not offer it refuses the
        handshake); it is also aiohttp's only protocol, so ``ws.ws_protocol`` reflects it.
        """
        protocols = [value for name, value in headers if name.lower() == "sec-websocket-protocol"][:1]
        # No permessage-deflate: API Gateway does not negotiate it, and sizes are then wire sizes.
        # aiohttp refuses a message of exactly max_msg_size; API Gateway accepts 128 KiB (and refuses more).
        ws = web.WebSocketResponse(
            max_msg_size=self.limits.max_message_bytes + 1, timeout=2.0, compress=False, protocols=protocols
        )
        for name, value in headers:  # the handshake's own headers (Upgrade, Accept, ...) win at prepare()
            ws.headers.add(name, value)
        return ws

    async def _connect(
        self, request: web.Request, connection: Connection
    ) -> tuple[int, list[tuple[str, str]]]:
        """``(status, headers to return in the handshake)`` from the authorizer and ``$connect``."""
        headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            headers.setdefault(str(key), []).append(value)
        headers.setdefault("X-Forwarded-For", [connection.source_ip])
        headers.setdefault("X-Forwarded-Proto", [request.scheme])
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        event = gateway_events.connect_event(headers=headers, query=query, **self._context(connection))
        if self.authorizer_function is not None:
            status, authorizer = await self._authorize(event, query)
            if status is not None:
                log.info(
                    "$connect %s authorizer %s -> %d",
                    connection.connection_id,
                    self.authorizer_function,
                    status,
                )
                return status, []
            connection.authorizer = authorizer
            event["requestContext"]["authorizer"] = dict(authorizer or {})
        function = self.routes.get("$connect")
        if function is None:
            return 200, []
        result = await self._invoke("$connect", connection, function, event)
        if result is None or not result.ok:
            return (504 if result is None else 502), []  # AWS: an integration failure on $connect is a 502
        payload = result.payload
        returned = _integration_headers(payload)
        if isinstance(payload, dict) and "statusCode" in payload:
            try:
                return int(payload["statusCode"]), returned
            except (TypeError, ValueError):
                return 502, []
        return 200, returned

    async def _authorize(
        self, connect: gateway_events.WebSocketEvent, query: Mapping[str, list[str]]
    ) -> tuple[int | None, dict[str, Any] | None]:
        """Run the REQUEST authorizer: ``(None, context)`` to allow, else ``(status, None)``."""
        if not any(query.get(TOKEN_QUERY_PARAMETER, [])):
            return 401, None  # identity source missing: API Gateway answers 401 without invoking
        assert self.authorizer_function is not None
        event = gateway_events.authorizer_event(connect, region=self.region, account_id=self.account_id)
        started = time.monotonic()
        result = await self._call(self.authorizer_function, dict(event))
        if result is None:
            return 500, None
        if not result.ok:
            unauthorized = (result.error or {}).get("errorMessage") == "Unauthorized"
            return (401 if unauthorized else 500), None
        payload = result.payload
        try:
            statements = payload["policyDocument"]["Statement"]
            effects = {str(statement["Effect"]).lower() for statement in statements}
        except (KeyError, TypeError):
            return 500, None
        if not effects or effects != {"allow"}:
            return 403, None
        context = {"principalId": payload.get("principalId"), **(payload.get("context") or {})}
        context["integrationLatency"] = int((time.monotonic() - started) * 1000)
        return None, context

    # --- messages --------------------------------------------------------------------------------

    async def _receive_loop(self, connection: Connection, ws: web.WebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                connection.touch()
                self.stats.messages_in += 1
                self._spawn(self._dispatch(connection, message.data))
            elif message.type is WSMsgType.BINARY:
                # AWS: binary frames are not supported; the client is disconnected with 1003.
                connection.close_code, connection.close_reason = 1003, "Binary frames are not supported"
                await ws.close(code=1003, message=b"Binary frames are not supported")
                return
            elif message.type is WSMsgType.ERROR:
                if connection.close_code is None:
                    error = message.data
                    code = getattr(error, "code", None)  # WebSocketError: 1009 for oversize
                    connection.close_code = code if isinstance(code, int) else 1006
                    connection.close_reason = "" if code is None else str(error)
                return
            else:  # CLOSE / CLOSING / CLOSED
                if connection.close_code is None and message.type is WSMsgType.CLOSE:
                    connection.close_code = int(message.data or 1005)
                    connection.close_reason = message.extra or ""
                return

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

    async def _dispatch(self, connection: Connection, body: str) -> None:
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
            route_key=route, body=body, authorizer=connection.authorizer, **self._context(connection)
        )
        request_id = event["requestContext"]["requestId"]
        result = await self._invoke(route, connection, self.routes[route], event)
        if result is None:
            connection.send_error("Endpoint request timed out", request_id)
        elif not result.ok:
            connection.send_error("Internal server error", request_id)

    async def _invoke(
        self, route: str, connection: Connection, function: str, event: Any
    ) -> InvocationResult | None:
        """Invoke ``function`` for ``route``; give up waiting after the integration timeout, ``None``
        (the invocation itself runs on, as a Lambda does). Logs one line."""
        started = time.monotonic()
        task = asyncio.ensure_future(self.runtime.invoke(function, event))
        done, _ = await asyncio.wait({task}, timeout=self.limits.integration_timeout_s)
        duration_ms = (time.monotonic() - started) * 1000
        if not done:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            log.info("%-12s %s %s %.1f ms timeout", route, connection.connection_id, function, duration_ms)
            return None
        try:
            result = task.result()
        except Exception as error:  # the runtime itself failed (stopped, unknown function)
            log.warning("%-12s %s %s failed: %s", route, connection.connection_id, function, error)
            return _FAILED
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

    async def _call(self, function: str, event: dict[str, Any]) -> InvocationResult | None:
        task = asyncio.ensure_future(self.runtime.invoke(function, event))
        done, _ = await asyncio.wait({task}, timeout=self.limits.integration_timeout_s)
        if not done:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        try:
            return task.result()
        except Exception:
            log.exception("authorizer %s failed", function)
            return _FAILED

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the end of a connection -----------------------------------------------------------------

    def _end(self, connection: Connection, ws: web.WebSocketResponse) -> None:
        """Forget the connection and fire ``$disconnect`` for it, once."""
        if not connection.mark_closed():
            return
        self.connections.discard(connection.connection_id)
        self.stats.disconnects += 1
        code = connection.close_code or ws.close_code or 1006
        reason = connection.close_reason
        function = self.routes.get("$disconnect")
        if function is None:
            return
        if self.chaos is not None and self.chaos.drop_disconnect():
            self.disconnects_dropped += 1
            log.info(
                "%-12s %s %s dropped (--chaos disconnect-drop)",
                "$disconnect",
                connection.connection_id,
                function,
            )
            return
        event = gateway_events.disconnect_event(
            status_code=int(code),
            reason=reason,
            host=connection.domain_name,
            authorizer=connection.authorizer,
            **self._context(connection),
        )
        self._spawn(self._invoke("$disconnect", connection, function, event))

    async def close_connection(self, connection: Connection, code: int, reason: str) -> None:
        """Close from the gateway's side (DELETE, idle, max duration, slow consumer, shutdown)."""
        await connection.close(code, reason)

    async def _sweep(self) -> None:
        """Enforce idle timeout, maximum duration and the slow-consumer bound, on one timer."""
        limits = self.limits
        interval = max(
            0.05,
            min(
                1.0, limits.idle_timeout_s / 4, limits.max_connection_s / 4, self.slow_consumer_timeout_s / 4
            ),
        )
        while True:
            await asyncio.sleep(interval)
            now_ms = time.time() * 1000
            for connection in list(self.connections.values()):
                if not connection.is_open:
                    continue
                too_old = now_ms - connection.connected_at_ms >= limits.max_connection_s * 1000
                if too_old or now_ms - connection.last_active_ms >= limits.idle_timeout_s * 1000:
                    self._spawn(connection.close(*GOING_AWAY))
                elif connection.blocked_for_s() >= self.slow_consumer_timeout_s:
                    self.stats.slow_consumers_disconnected += 1
                    connection.abort(*GOING_AWAY)

    async def shutdown(self) -> None:
        """Close every connection with 1001 (firing ``$disconnect``) and wait for pending invocations."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.gather(
            *(c.close(*GOING_AWAY) for c in list(self.connections.values()) if c.is_open),
            return_exceptions=True,
        )
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE_S
        while True:  # bounded by the deadline: handler tasks fire $disconnect, which adds tasks
            pending = [task for task in self._tasks if not task.done()]
            left = deadline - asyncio.get_running_loop().time()
            if not pending or left <= 0:
                break
            await asyncio.wait(pending, timeout=left)
        if pending:
            # As on AWS, $disconnect is best effort: the records of connections whose $disconnect
            # did not run are pruned by the next fan-out that reaches them (410), or expire (TTL).
            log.warning(
                "stopping with %d invocation(s) unfinished ($disconnect is best effort)", len(pending)
            )
