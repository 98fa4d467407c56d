"""API Gateway's WebSocket API, emulated on aiohttp: ``ws://HOST:PORT/{stage}``.

This is the WebSocket wire: the upgrade, each connection's session loop and its end, the sweeper of
idle and overlong connections, the ``/_local`` routes. The model both wires act on is
:class:`~serverless_app.local.connections.Connections` (a :class:`~serverless_app.local.connection.Connection`
per client, with its bounded outbound queue); the ``@connections`` HTTP wire is
:mod:`serverless_app.local.connections_api`. What a connection's events do is
:mod:`serverless_app.local.gateway_connect` (``$connect``: authorizer, status and headers) and
:mod:`serverless_app.local.gateway_integrations` (route selection, integrations), the event shapes
:mod:`serverless_app.local.gateway_events`.
What is reproduced is listed in the README ("What the emulation reproduces"); here, in short:

* ``$connect`` holds the upgrade until the authorizer and the handler return; until then the
  connection is not postable (410).
* Frames over 32 KB or messages over 128 KB close with 1009; binary frames close with 1003;
  idle timeout and maximum duration close with 1001 "Going away".
* ``$disconnect`` fires exactly once per accepted connection, whatever ended it (unless
  ``--chaos disconnect-drop=P`` skips it, as AWS may: :mod:`serverless_app.local.chaos`).
* Outbound messages over 32 KB leave as several frames of at most 32 KB; data that is not UTF-8
  leaves as a binary message. Headers returned by ``$connect`` go into the 101 response
  (``Sec-WebSocket-Protocol`` included, as returned).
* Messages are throttled at the stage's rate; connection attempts too (429).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from serverless_app.definitions import LIMITS, ROUTES, STAGE_NAME, GatewayLimits
from serverless_app.local import gateway_events
from serverless_app.local.chaos import Chaos
from serverless_app.local.connection import Connection, install_frame_guard
from serverless_app.local.connections import Connections
from serverless_app.local.connections_api import add_connections_routes
from serverless_app.local.gateway_connect import ConnectRoute
from serverless_app.local.gateway_integrations import FunctionRunner, Integrations
from serverless_app.local.stats import GatewayStats, add_stats_routes
from serverless_app.local.throttle import TokenBucket

__all__ = ["DEFAULT_API_ID", "Gateway", "StatsSource"]

log = logging.getLogger(__name__)
DEFAULT_API_ID = "l0ca1wsapi"
GOING_AWAY = (1001, "Going away")


class StatsSource(Protocol):
    """A part whose counters ``/_local/stats`` shows and resets (the DynamoDB proxy)."""

    def stats(self) -> dict[str, dict[str, Any]]: ...

    def reset(self) -> None: ...


SHUTDOWN_GRACE_S = 2.0
"""How long a stop waits for the ``$disconnect`` of every closed connection before it goes on (Ctrl-C
answers within seconds even during a disconnect storm)."""


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
        self.limits = limits
        self.region = region
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
        self.integrations = Integrations(
            runtime,
            routes=self.routes,
            stage=stage,
            api_id=api_id,
            limits=limits,
            bucket=self.bucket,
            stats=self.stats,
            tasks=self._tasks,
        )
        self.connect_route = ConnectRoute(
            self.integrations, authorizer_function=authorizer_function, region=region, account_id=account_id
        )
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

    # --- the upgrade ----------------------------------------------------------------------------

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
            status, headers = await self.connect_route.connect(request, connection)
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

    # --- messages --------------------------------------------------------------------------------

    async def _receive_loop(self, connection: Connection, ws: web.WebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                connection.touch()
                self.stats.messages_in += 1
                self.integrations.spawn(self.integrations.dispatch(connection, message.data))
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
            **self.integrations.context(connection),
        )
        self.integrations.spawn(self.integrations.invoke("$disconnect", connection, function, event))

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
                    self.integrations.spawn(connection.close(*GOING_AWAY))
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
            # Cancel them rather than leave them to a closing event loop ("Task was destroyed but
            # it is pending"); a cancelled invocation's worker is stopped with the runtime.
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
