"""A gateway + real Lambda runtime on a loopback port, run on a background thread's event loop.

Tests stay synchronous (no pytest-asyncio): they drive it with real clients — the ``websockets``
sync client and the unmodified boto3 ``apigatewaymanagementapi`` client — and read what the
handlers saw from the events file the fixture handlers append to.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from serverless_app.definitions import (
    AUTHORIZER_FUNCTION,
    CONNECT_FUNCTION,
    DEFAULT_FUNCTION,
    DISCONNECT_FUNCTION,
    FUNCTIONS,
    LIMITS,
    WELCOME_FUNCTION,
    GatewayLimits,
)
from serverless_app.local.gateway import Gateway
from serverless_app.local.lambda_runtime import LambdaRuntime
from serverless_app.local.server import bind_socket, management_client
from serverless_app.local.wiring import local_environments
from tests.support.waiting import eventually

__all__ = ["HANDLERS", "GatewayServer", "serve_gateway"]

_MODULE = "tests.local.gateway_fixtures.handlers"
HANDLERS = {
    CONNECT_FUNCTION.name: f"{_MODULE}.connect",
    DEFAULT_FUNCTION.name: f"{_MODULE}.default",
    DISCONNECT_FUNCTION.name: f"{_MODULE}.disconnect",
    WELCOME_FUNCTION.name: f"{_MODULE}.echo_route",
    AUTHORIZER_FUNCTION.name: f"{_MODULE}.authorizer",
}


@dataclass
class GatewayServer:
    port: int
    events_file: Path
    gateway: Gateway
    loop: asyncio.AbstractEventLoop
    clients: list[Any] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/prod"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def management(self) -> Any:
        """The unmodified boto3 client, pointed at this gateway's stage (no retries: tests see every answer)."""
        client = management_client(f"{self.http_url}/prod")
        self.clients.append(client)  # closed with the server
        return client

    def events(self, predicate: Callable[[dict[str, Any]], bool] = lambda e: True) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text(encoding="utf-8").splitlines()
        return [event for event in map(json.loads, lines) if predicate(event)]

    def wait_for_events(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            found = self.events(predicate)
            return found if len(found) >= count else None

        return eventually(enough, timeout_s=timeout_s, what=f"{count} matching event(s)")

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the server's loop (to read gateway state safely)."""

        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)


def route_events(route: str) -> Callable[[dict[str, Any]], bool]:
    """Events of ``route`` (not the authorizer's input, which shares the $connect context)."""
    return lambda event: "type" not in event and event.get("requestContext", {}).get("routeKey") == route


@contextmanager
def serve_gateway(
    tmp_path: Path,
    *,
    limits: GatewayLimits = LIMITS,
    routes: Mapping[str, str] | None = None,
    authorizer: bool = False,
    max_outbound_bytes: int = 1024 * 1024,
    slow_consumer_timeout_s: float = 10.0,
    static_dir: Path | None = None,
    max_concurrency: int = 4,
) -> Iterator[GatewayServer]:
    events_file = tmp_path / "events.jsonl"
    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    environments = local_environments(
        functions=FUNCTIONS,
        auth_mode="none",
        dynamodb_endpoint="http://127.0.0.1:9",
        gateway_url=f"http://127.0.0.1:{port}",
        token_secret=None,
    )
    for environment in environments.values():
        environment["GATEWAY_EVENTS_FILE"] = str(events_file)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping: list[asyncio.Event] = []
    holder: dict[str, Any] = {}

    async def main() -> None:
        runtime = LambdaRuntime(
            functions=FUNCTIONS,
            environments=environments,
            max_concurrency=max_concurrency,
            reload=False,
            handler_overrides=HANDLERS,
        )
        await runtime.start()
        gateway = Gateway(
            runtime,
            routes=routes,
            authorizer_function=AUTHORIZER_FUNCTION.name if authorizer else None,
            limits=limits,
            max_outbound_bytes=max_outbound_bytes,
            slow_consumer_timeout_s=slow_consumer_timeout_s,
            static_dir=static_dir,
        )
        app = web.Application()
        gateway.install(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        stop = asyncio.Event()
        stopping.append(stop)
        holder["gateway"] = gateway
        started.set()
        try:
            await stop.wait()
        finally:
            await gateway.shutdown()
            await runner.cleanup()
            await runtime.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError("the gateway did not start")
    server = GatewayServer(port=port, events_file=events_file, gateway=holder["gateway"], loop=loop)
    try:
        yield server
    finally:
        for client in server.clients:
            with suppress(Exception):
                client.close()
        loop.call_soon_threadsafe(stopping[0].set)
        thread.join(timeout=60)
        loop.close()
