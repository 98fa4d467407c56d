"""``wschat bench [URL]``: load a wschat endpoint with real WebSocket clients and report fan-out.

Exit status: 0 when every delivery arrived exactly once; 1 when any was lost, duplicated or
delivered to a non-member; 2 when some clients could not connect (and nothing was lost).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.console import Console

from serverless_app.bench.config import BenchConfig
from serverless_app.bench.load import run_bench
from serverless_app.bench.report import plot_results, summary, write_json
from serverless_app.bench.tokens import TokenSource, command_tokens, secret_tokens
from serverless_app.clients.endpoint import DEFAULT_URL

__all__ = ["bench"]


@click.command("bench")
@click.argument("url", default=DEFAULT_URL)
@click.option("--clients", "-n", default=100, show_default=True, help="WebSocket clients to connect.")
@click.option("--rooms", "-r", default=10, show_default=True, help="Rooms; client i joins room i mod R.")
@click.option("--senders", "-s", default=10, show_default=True, help="Clients that send (spread over rooms).")
@click.option("--messages", "-m", default=100, show_default=True, help="Messages to send in total.")
@click.option(
    "--rate", type=float, help="Messages/s in total [default: closed loop, one in flight per sender]."
)
@click.option("--connect-rate", default=450.0, show_default=True, help="New connections per second.")
@click.option("--drain", "drain_s", default=10.0, show_default=True, help="Seconds to wait for stragglers.")
@click.option("--payload", "payload_bytes", default=0, help="Pad message text to this many characters.")
@click.option("--user-prefix", default="bench", show_default=True, help="User ids are PREFIX-<i>.")
@click.option(
    "--users-per-room",
    default=0,
    show_default=True,
    help="Distinct users per room, shared by its connections (0: one user per connection).",
)
@click.option(
    "--seed-rooms", is_flag=True, help="Connect one client per room (until its welcome) before the others."
)
@click.option(
    "--token-secret", envvar="WSCHAT_TOKEN_SECRET", help="Mint tokens with this secret (token mode)."
)
@click.option("--token-command", help="Command printing a token; {user} is replaced by the user id.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG here."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench(
    url: str,
    clients: int,
    rooms: int,
    senders: int,
    messages: int,
    rate: float | None,
    connect_rate: float,
    drain_s: float,
    payload_bytes: int,
    user_prefix: str,
    users_per_room: int,
    seed_rooms: bool,
    token_secret: str | None,
    token_command: str | None,
    json_path: Path | None,
    plot_path: Path | None,
    quiet: bool,
) -> None:
    """Connect CLIENTS WebSocket clients to URL over ROOMS rooms, send MESSAGES messages, and report
    per-delivery latency, fan-out completion, throughput, presence frames per join, errors, and lost
    or duplicated deliveries.

    A room of 500 filled by 500 people: ``-n 500 -r 1 -s 10 -m 30 --rate 3``; the same room as 50
    people × 10 tabs: add ``--users-per-room 50`` (the server allows 10 connections per user and
    5 messages/s per user, so one user's 500 tabs would be refused)."""
    if token_secret and token_command:
        raise click.UsageError("give --token-secret or --token-command, not both")
    if rooms > clients:
        raise click.UsageError("--rooms must not exceed --clients (a room would be empty)")
    if rate is not None and rate / max(1, senders) > 5.0:
        click.echo(
            f"note: {rate / senders:.1f} messages/s per sender exceeds the server's 5/s per connection; "
            "senders will be held back to 4.5/s (use more --senders)",
            err=True,
        )
    tokens: TokenSource | None = None
    if token_secret:
        tokens = secret_tokens(token_secret)
    elif token_command:
        tokens = command_tokens(token_command)
    config = BenchConfig(
        url=url,
        clients=clients,
        rooms=rooms,
        senders=min(senders, clients),
        messages=messages,
        rate=rate,
        connect_rate=connect_rate,
        drain_s=drain_s,
        payload_bytes=payload_bytes,
        user_prefix=user_prefix,
        users_per_room=users_per_room,
        seed_rooms=seed_rooms,
        progress=not quiet,
    )
    console = Console()
    result = asyncio.run(run_bench(config, tokens=tokens, console=Console(stderr=True)))
    console.print(summary(result))
    if json_path is not None:
        write_json(result, json_path)
    if plot_path is not None:
        plot_results([result], plot_path)
    if not result.accounting.ok:
        raise SystemExit(1)
    if result.connected < config.clients:
        raise SystemExit(2)
