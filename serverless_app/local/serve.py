"""``wschat serve``: the whole chat stack on this machine, until Ctrl-C or SIGTERM.

Starts DynamoDB Local (or attaches to ``--dynamodb-endpoint``), the Lambda runtime and the
API Gateway emulation (:func:`serverless_app.local.server.run_local_stack`), prints the URLs and
commands to try, and stops the whole process tree (Java and Lambda workers included) on exit.
A missing prerequisite or a taken port is one clear line and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path

import click

from serverless_app.definitions import CONNECTIONS_TABLE, LIMITS, MESSAGES_TABLE, AuthMode
from serverless_app.local.chaos import Chaos
from serverless_app.local.dev_secret import local_token_secret
from serverless_app.local.errors import SetupError
from serverless_app.local.http_guard import is_loopback_host
from serverless_app.local.server import LocalStack, run_local_stack

__all__ = ["banner", "exposure_warning", "serve"]


class ChaosSpec(click.ParamType):
    """``--chaos``: validated by :meth:`Chaos.parse` (a bad spec is a usage error naming the fault)."""

    name = "chaos"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            Chaos.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return str(value)


def exposure_warning(host: str, *, remote_token: bool) -> str | None:
    """What a non-loopback ``--host`` exposes, or None on loopback."""
    if is_loopback_host(host):
        return None
    token = (
        "/_local/token mints a token for ANY user to anyone who can reach it (--allow-remote-token)"
        if remote_token
        else "/_local/token still answers this machine only (--allow-remote-token to change that)"
    )
    return "\n".join(
        [
            f"WARNING: --host {host} exposes the gateway beyond this machine: anyone who can reach "
            "this address can open WebSockets and read the web client.",
            "  This is a development stack: there is no TLS, and in --auth none anyone may claim to be anyone.",
            f"  {token}.",
            "  DynamoDB Local and the Lambda API stay on loopback. Browsers must use a name the gateway "
            "answers to (loopback, this address, any IP address when listening on all interfaces, "
            "or --allow-host NAME).",
        ]
    )


def banner(stack: LocalStack, *, data_dir: Path | None) -> str:
    ddb = stack.dynamodb_endpoint
    index = MESSAGES_TABLE.indexes[0].name
    storage = "in memory" if data_dir is None else f"data in {data_dir}"
    if stack.token_secret is not None:
        auth = "token (connect with ?token=; mint one with `wschat token USER`)"
        wscat = f'npx wscat -c "{stack.ws_url}?token=$(.venv/bin/wschat token user123)"'
    else:
        auth = "none (the seed's open mode: user_id comes from the client)"
        wscat = f'npx wscat -c "{stack.ws_url}?user_id=user123"'
    return "\n".join(
        [
            "wschat local stack is running",
            f"  Web client    {stack.http_url}/",
            f"  WebSocket     {stack.ws_url}",
            f"  @connections  {stack.connections_url}/@connections/{{connection_id}}",
            f"  DynamoDB      {ddb}  ({storage})",
            f"  Stats         {stack.http_url}/_local/stats",
            f"  Lambda API    {stack.lambda_url}  (loopback only, SigV4)",
            f"  Auth          {auth}",
            "Try:",
            f"  {wscat}",
            '  > {"action":"sendMessage","room":"general","user_id":"user123","message":"Hello!"}',
            f"  aws dynamodb scan --table-name {CONNECTIONS_TABLE.name} --endpoint-url {ddb}",
            f"  aws dynamodb query --table-name {MESSAGES_TABLE.name} --index-name {index} "
            '--key-condition-expression "user_id = :user_id" '
            '--expression-attribute-values \'{":user_id":{"S":"user123"}}\' '
            f"--endpoint-url {ddb}",
            f"  WS_ENDPOINT={stack.ws_url} python tests/websocket_chat/test_websocket_chat.py",
            "Ctrl-C stops everything.",
        ]
    )


async def _run(options: dict[str, object], data_dir: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with run_local_stack(**options) as stack:  # type: ignore[arg-type]
        click.echo(banner(stack, data_dir=data_dir), nl=True)
        sys.stdout.flush()
        await stop.wait()
        click.echo("stopping…")
    click.echo("stopped")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the gateway listens on.")
@click.option("--port", default=3001, show_default=True, type=int, help="Gateway port (0: any free port).")
@click.option("--dynamodb-port", default=8000, show_default=True, type=int, help="Port for DynamoDB Local.")
@click.option(
    "--dynamodb-endpoint", default=None, help="Use this running DynamoDB (Local) instead of starting one."
)
@click.option("--in-memory", is_flag=True, help="Keep DynamoDB Local's data in memory (lost on exit).")
@click.option(
    "--data-dir",
    default=".wschat/dynamodb",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where DynamoDB Local keeps its data.",
)
@click.option(
    "--auth",
    "auth_mode",
    type=click.Choice(["token", "none"]),
    default="token",
    show_default=True,
    help="token: $connect needs ?token= signed with .wschat/token-secret (wschat token USER); none: the seed's open mode.",
)
@click.option("--log-events", is_flag=True, help="Print every event and response as JSON.")
@click.option("--max-concurrency", default=8, show_default=True, type=int, help="Workers per function.")
@click.option(
    "--lambda-port", default=0, show_default=True, type=int, help="Loopback port of the Lambda API (0: any)."
)
@click.option(
    "--allow-host",
    multiple=True,
    metavar="NAME",
    help="Another Host name the gateway answers to (repeatable); others get 403 (DNS rebinding).",
)
@click.option(
    "--idle-timeout",
    default=LIMITS.idle_timeout_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without a frame in either direction before a connection is closed (AWS: 600).",
)
@click.option(
    "--max-duration",
    default=LIMITS.max_connection_s,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds after which every connection is closed (AWS: 7200).",
)
@click.option(
    "--chaos",
    "chaos_spec",
    type=ChaosSpec(),
    default=None,
    metavar="FAULT=VALUE,...",
    help="Fault injection: disconnect-drop=P skips each $disconnect with probability P (AWS: best "
    "effort); async-retry=N delivers every asynchronous invocation N more times (AWS: at least once).",
)
@click.option(
    "--chaos-seed",
    type=int,
    default=None,
    help="Seed for --chaos draws (reproducible runs); without it one is chosen and printed.",
)
@click.option(
    "--allow-remote-token",
    is_flag=True,
    help="Let /_local/token mint tokens for clients on other machines (off: loopback only).",
)
def serve(
    host: str,
    port: int,
    dynamodb_port: int,
    dynamodb_endpoint: str | None,
    in_memory: bool,
    data_dir: Path,
    auth_mode: AuthMode,
    log_events: bool,
    max_concurrency: int,
    lambda_port: int,
    allow_host: tuple[str, ...],
    allow_remote_token: bool,
    idle_timeout: float,
    max_duration: float,
    chaos_spec: str | None,
    chaos_seed: int | None,
) -> None:
    """Run the whole chat stack locally: DynamoDB Local, the Lambda handlers, API Gateway's WebSocket API."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "dynamodb_endpoint": dynamodb_endpoint,
        "dynamodb_port": dynamodb_port,
        "data_dir": data_dir.resolve(),
        "in_memory": in_memory,
        "auth_mode": auth_mode,
        "token_secret": local_token_secret() if auth_mode == "token" else None,
        "log_events": log_events,
        "max_concurrency": max_concurrency,
        "allowed_hosts": tuple(allow_host),
        "remote_token": allow_remote_token,
        "lambda_port": lambda_port,
        "limits": dataclasses.replace(LIMITS, idle_timeout_s=idle_timeout, max_connection_s=max_duration),
    }
    if chaos_spec:
        options["chaos"] = Chaos.parse(chaos_spec, seed=chaos_seed)
    warning = exposure_warning(host, remote_token=allow_remote_token)
    if warning is not None:
        click.echo(warning, err=True)
    try:
        asyncio.run(_run(options, None if in_memory or dynamodb_endpoint else data_dir))
    except SetupError as error:
        click.echo(f"wschat serve: {error}", err=True)
        sys.exit(2)
