"""The whole local stack in one async context manager: DynamoDB Local, proxy, Lambda runtime, gateway.

    async with run_local_stack(port=0, in_memory=True) as stack:
        stack.ws_url, stack.http_url, stack.dynamodb_endpoint, stack.stats()

Used by ``wschat serve``, the tests and the benchmarks. Everything it starts, it stops. Its defaults
suit tests (``auth_mode="none"``, ``in_memory=True``, any free port); ``wschat serve`` passes its
own (token authentication, data kept under ``.wschat/``, port 3001).

Two HTTP servers: the gateway on ``host:port`` (WebSocket, ``@connections``, the web client,
``/_local/*``) and the Lambda ``Invoke`` API on a loopback port of its own (``stack.lambda_url``), as
AWS's Lambda endpoint is separate from execute-api. Both refuse foreign ``Host`` headers and send
security headers (:mod:`serverless_app.local.http_guard`); ``/_local/token`` answers loopback peers
only unless ``remote_token`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from serverless_app.definitions import (
    AUTHORIZER_FUNCTION,
    FUNCTIONS,
    LIMITS,
    STAGE_NAME,
    AuthMode,
    FunctionDefinition,
    GatewayLimits,
)
from serverless_app.local.chaos import Chaos
from serverless_app.local.dynamodb_local import REPO_ROOT, DynamoDBLocal, start_dynamodb_local
from serverless_app.local.dynamodb_tables import create_tables, dynamodb_client
from serverless_app.local.errors import SetupError
from serverless_app.local.gateway import Gateway
from serverless_app.local.http_guard import HostPolicy, install_http_guard, is_wildcard_host

if TYPE_CHECKING:  # imported where the stack starts (the CLI's other commands never load them)
    from serverless_app.local.dynamodb_proxy import DynamoDBProxy
    from serverless_app.local.lambda_runtime import LambdaRuntime

log = logging.getLogger(__name__)

__all__ = [
    "LocalStack",
    "bind_socket",
    "management_client",
    "run_local_stack",
]


@dataclass
class LocalStack:
    """What a running stack exposes."""

    host: str
    port: int
    dynamodb_endpoint: str
    """DynamoDB Local itself (for ``aws dynamodb ... --endpoint-url``); handlers go through the proxy."""
    gateway: Gateway
    runtime: LambdaRuntime
    proxy: DynamoDBProxy
    token_secret: str | None
    lambda_url: str = ""
    """The Lambda ``Invoke`` API (loopback only), where the handlers' ``AWS_ENDPOINT_URL_LAMBDA`` points."""

    @property
    def client_host(self) -> str:
        """The host to reach the gateway at: loopback when listening on every interface."""
        return loopback_for(self.host)

    @property
    def http_url(self) -> str:
        return f"http://{self.client_host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.client_host}:{self.port}/{self.gateway.stage}"

    @property
    def connections_url(self) -> str:
        return f"{self.http_url}/{self.gateway.stage}"

    def stats(self) -> dict[str, Any]:
        return self.gateway.snapshot()

    def management_client(self) -> Any:
        """The unmodified boto3 ``@connections`` client, pointed at this stack's stage."""
        return management_client(self.connections_url)


def loopback_for(host: str) -> str:
    """``host`` as a URL host, with a wildcard (``0.0.0.0``, ``::``) replaced by its loopback address."""
    if is_wildcard_host(host):
        return "[::1]" if ":" in host else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def management_client(connections_url: str) -> Any:
    """boto3's ``apigatewaymanagementapi`` client for a local stage URL (``http://HOST:PORT/prod``).

    The local runtime's credentials (the gateway verifies the SigV4 signature against them) and no
    retries, so a caller sees every answer, 410 and 429 included.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=connections_url,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def bind_socket(host: str, port: int, *, what: str = "the gateway", option: str = "--port") -> socket.socket:
    """A listening-ready socket on ``host:port`` (0 = any free port), or one clear :class:`SetupError`."""
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise SetupError(
                f"Port {port} for {what} is taken on {host}: stop what uses it or pass {option} <free port>."
            ) from None
        raise SetupError(f"Cannot listen on {host}:{port} for {what}: {error.strerror}.") from None
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def run_local_stack(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dynamodb_endpoint: str | None = None,
    dynamodb_port: int | None = None,
    data_dir: Path | None = None,
    in_memory: bool = True,
    auth_mode: AuthMode = "none",
    log_events: bool = False,
    limits: GatewayLimits = LIMITS,
    max_concurrency: int = 8,
    functions: Sequence[FunctionDefinition] = FUNCTIONS,
    routes: Mapping[str, str] | None = None,
    handler_overrides: Mapping[str, str] | None = None,
    token_secret: str | None = None,
    reload: bool = True,
    static_dir: Path | None = REPO_ROOT / "web",
    max_outbound_bytes: int = 1024 * 1024,
    slow_consumer_timeout_s: float = 10.0,
    function_environment: Mapping[str, str] | None = None,
    async_retry_delay_s: float = 1.0,
    allowed_hosts: Sequence[str] = (),
    remote_token: bool = False,
    lambda_port: int = 0,
    chaos: Chaos | str | None = None,
    chaos_seed: int | None = None,
) -> AsyncIterator[LocalStack]:
    """Start (or attach to) DynamoDB Local, create the tables, then the proxy, runtime and gateway.

    ``allowed_hosts``: more names the gateway answers to (``Host`` header), besides the loopback
    names and ``host``. ``remote_token``: let ``/_local/token`` answer peers other than loopback.
    ``lambda_port``: the Lambda API's loopback port (0: any free port).
    ``chaos``: fault injection, a :class:`Chaos` or its spec (``"disconnect-drop=0.1,async-retry=1"``,
    seeded with ``chaos_seed``): see :mod:`serverless_app.local.chaos`.
    """
    if isinstance(chaos, str):
        chaos = Chaos.parse(chaos, seed=chaos_seed)
    if chaos is not None and chaos.active:
        log.warning("chaos: %s", chaos.describe())
    from serverless_app.local.dev_tokens import add_dev_token_routes
    from serverless_app.local.dynamodb_proxy import DynamoDBProxy
    from serverless_app.local.lambda_api import add_lambda_routes
    from serverless_app.local.lambda_runtime import LambdaRuntime
    from serverless_app.local.wiring import local_environments

    sock = bind_socket(host, port)  # first: a taken port fails before Java starts
    port = int(sock.getsockname()[1])
    lambda_sock = bind_socket("127.0.0.1", lambda_port, what="the Lambda API", option="--lambda-port")
    lambda_url = f"http://127.0.0.1:{lambda_sock.getsockname()[1]}"
    local: DynamoDBLocal | None = None
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(sock.close)
        stack.callback(lambda_sock.close)
        if dynamodb_endpoint is None:
            local = await asyncio.to_thread(
                start_dynamodb_local,
                port=dynamodb_port,
                data_dir=None if in_memory else (data_dir or REPO_ROOT / ".wschat" / "dynamodb"),
            )
            stack.callback(local.stop)
            dynamodb_endpoint = local.endpoint_url
        await asyncio.to_thread(create_tables, dynamodb_client(dynamodb_endpoint))

        proxy = DynamoDBProxy(dynamodb_endpoint)
        await proxy.start(host="127.0.0.1")
        stack.push_async_callback(proxy.stop)

        if auth_mode == "token" and token_secret is None:
            token_secret = secrets.token_urlsafe(48)
        runtime = LambdaRuntime(
            functions=functions,
            environments=local_environments(
                functions=functions,
                auth_mode=auth_mode,
                dynamodb_endpoint=proxy.endpoint_url,
                gateway_url=f"http://{loopback_for(host)}:{port}",
                lambda_url=lambda_url,
                token_secret=token_secret,
                extra=function_environment,
            ),
            max_concurrency=max_concurrency,
            reload=reload,
            log_events=log_events,
            handler_overrides=handler_overrides,
            async_retry_delay_s=async_retry_delay_s,
            async_redeliveries=chaos.async_retry if chaos is not None else 0,
        )
        await runtime.start()
        stack.push_async_callback(runtime.stop)

        gateway = Gateway(
            runtime,
            stage=STAGE_NAME,
            routes=routes,
            authorizer_function=AUTHORIZER_FUNCTION.name if auth_mode == "token" else None,
            limits=limits,
            static_dir=static_dir,
            dynamodb_proxy=proxy,
            max_outbound_bytes=max_outbound_bytes,
            slow_consumer_timeout_s=slow_consumer_timeout_s,
            chaos=chaos,
        )
        lambda_app = web.Application()
        install_http_guard(lambda_app, HostPolicy.loopback(int(lambda_sock.getsockname()[1])))
        add_lambda_routes(lambda_app, runtime)
        lambda_runner = web.AppRunner(
            lambda_app, access_log=None, handler_cancellation=False, shutdown_timeout=2.0
        )
        await lambda_runner.setup()
        stack.push_async_callback(lambda_runner.cleanup)
        await web.SockSite(lambda_runner, lambda_sock).start()

        app = web.Application(client_max_size=8 * 1024 * 1024)
        install_http_guard(app, HostPolicy(host, port, tuple(allowed_hosts)))
        if auth_mode == "token" and token_secret is not None:
            add_dev_token_routes(app, secret=token_secret, loopback_only=not remote_token)
        gateway.install(app)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=False, shutdown_timeout=2.0)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        stack.push_async_callback(gateway.shutdown)  # runs first: $disconnect while the runtime lives
        await web.SockSite(runner, sock).start()
        yield LocalStack(
            host=host,
            port=port,
            dynamodb_endpoint=dynamodb_endpoint,
            gateway=gateway,
            runtime=runtime,
            proxy=proxy,
            token_secret=token_secret,
            lambda_url=lambda_url,
        )
