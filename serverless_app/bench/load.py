"""The load generator behind ``wschat bench``: N real WebSocket clients on one asyncio loop.

Phases, each bounded in time:

1. **connect** — client ``i`` joins room ``i mod R`` through the connect URL's ``?rooms=``; new
   connections are paced (default 450/s, under API Gateway's 500/s) with a bounded number of
   handshakes in flight; a client counts as connected when its ``welcome`` arrives;
2. **send** — the first ``S`` clients send ``M`` messages in total, either at ``rate`` messages/s
   (round-robin over the senders) or, without a rate, closed-loop: each sender waits for its own
   echo before sending again. Each sender also keeps under the server's per-connection message
   rate (5/s, bursts of 20) with a client-side token bucket, so no refusal is self-inflicted;
3. **drain** — wait until every member of every room has every message, or ``drain_s`` passes;
4. **close** — close every client (bounded), then account with :mod:`serverless_app.bench.stats`.

The clients and their connections are :mod:`serverless_app.bench.population`, what they measure
:mod:`serverless_app.bench.measure`, the result :mod:`serverless_app.bench.result`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from websockets.exceptions import ConnectionClosed

from serverless_app.bench.config import BenchConfig
from serverless_app.bench.measure import Recorder
from serverless_app.bench.population import Client, Population, raise_fd_limit
from serverless_app.bench.result import BenchResult
from serverless_app.bench.stats import SentMessage, account, percentiles
from serverless_app.bench.tokens import TokenSource

__all__ = ["Hook", "run_bench"]

Hook = Callable[[], Awaitable[None]]
"""Called between phases (e.g. by the benchmark suite, to reset and read the server's counters)."""


class _Run:
    def __init__(
        self,
        config: BenchConfig,
        tokens: TokenSource | None,
        console: Console,
        *,
        on_connected: Hook | None = None,
        on_drained: Hook | None = None,
    ) -> None:
        if config.clients < 1 or config.rooms < 1 or config.senders < 1 or config.messages < 0:
            raise ValueError("clients, rooms and senders must be at least 1, messages at least 0")
        if config.rooms > config.clients:
            raise ValueError("more rooms than clients: some rooms would be empty")
        self.config = config
        self.tokens = tokens
        self.console = console
        self.on_connected, self.on_drained = on_connected, on_drained
        self.run_id = secrets.token_hex(3)
        self.recorder = Recorder(self.run_id, config.payload_bytes)
        self.population = Population(config, self.run_id, self.recorder.errors)

    # --- send --------------------------------------------------------------------------

    async def _take_token(self, client: Client) -> None:
        delay = client.bucket.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send(self, client: Client, seq: int) -> None:
        await self._take_token(client)
        data, sent_ns = self.recorder.frame(client, seq)
        assert client.ws is not None
        self.recorder.sent.append(
            SentMessage(seq=seq, room=client.room, sender=client.index, sent_ns=sent_ns)
        )
        try:
            await client.ws.send(data)
        except ConnectionClosed:
            self.recorder.errors["send:closed"] += 1
            self.recorder.refusals[client.index] += 1

    async def _send_paced(self, senders: Sequence[Client], rate: float, advance: Callable[[], None]) -> None:
        started = time.perf_counter()
        for seq in range(self.config.messages):
            delay = started + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._send(senders[seq % len(senders)], seq)
            advance()

    async def _send_closed_loop(self, senders: Sequence[Client], advance: Callable[[], None]) -> None:
        async def one_sender(position: int, client: Client) -> None:
            for seq in range(position, self.config.messages, len(senders)):
                client.echo.clear()
                client.awaiting = seq
                await self._send(client, seq)
                try:
                    await asyncio.wait_for(client.echo.wait(), self.config.echo_timeout_s)
                except TimeoutError:
                    self.recorder.errors["echo:timeout"] += 1
                client.awaiting = -1
                advance()

        await asyncio.gather(*(one_sender(i, c) for i, c in enumerate(senders)))

    async def _drain(self, members: dict[str, list[int]]) -> None:
        """Wait (bounded) until every accepted message reached every member of its room."""
        config = self.config
        deadline = time.perf_counter() + config.drain_s
        size = {room: len(ids) for room, ids in members.items()}
        recorder, clients = self.recorder, self.population.clients
        owed = sum(size[m.room] for m in recorder.sent)
        while time.perf_counter() < deadline:
            refused = sum(n * size[clients[i].room] for i, n in recorder.refusals.items())
            if len(recorder.receipts) >= owed - refused:
                break
            await asyncio.sleep(0.02)
        # a short grace period for duplicates arriving just after the last expected delivery
        await asyncio.sleep(min(0.3, max(0.0, deadline - time.perf_counter())))

    # --- the whole run -----------------------------------------------------------------

    async def run(self) -> BenchResult:
        config, population, recorder = self.config, self.population, self.recorder
        raise_fd_limit(config.clients + 256)
        started_at = time.time()
        with Progress(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not config.progress,
            transient=False,
        ) as progress:
            try:
                connect_s = await population.connect(self.tokens, progress, recorder.read)
                connected = population.connected()
                members: dict[str, list[int]] = {room: [] for room in population.rooms}
                for client in connected:
                    members[client.room].append(client.index)
                senders = [c for c in population.clients[: config.senders] if c.connected_ms is not None]
                if self.on_connected is not None:
                    await self.on_connected()
                send_task = progress.add_task("send", total=config.messages)

                def advance() -> None:
                    progress.advance(send_task)

                send_started = time.perf_counter()
                if senders and config.messages:
                    if config.rate:
                        await self._send_paced(senders, config.rate, advance)
                    else:
                        await self._send_closed_loop(senders, advance)
                send_s = time.perf_counter() - send_started
                await self._drain(members)
                if self.on_drained is not None:
                    await self.on_drained()
            finally:
                recorder.closing = True
                await population.close()
        accounting = account(recorder.sent, members, recorder.receipts, refusals=recorder.refusals)
        return BenchResult(
            config=config,
            run_id=self.run_id,
            accounting=accounting,
            errors=recorder.errors,
            other_frames=recorder.other,
            room_sizes={room: len(ids) for room, ids in members.items()},
            connected=len(connected),
            connect_ms=percentiles(c.connected_ms for c in connected if c.connected_ms is not None),
            connect_s=connect_s,
            send_s=send_s,
            first_send_ns=recorder.sent[0].sent_ns if recorder.sent else None,
            last_send_ns=recorder.sent[-1].sent_ns if recorder.sent else None,
            started_at=started_at,
        )


async def run_bench(
    config: BenchConfig,
    *,
    tokens: TokenSource | None = None,
    console: Console | None = None,
    on_connected: Hook | None = None,
    on_drained: Hook | None = None,
) -> BenchResult:
    """Run one benchmark against ``config.url``; never raises for lost messages (see ``result.ok``).

    ``on_connected`` runs once every client has its ``welcome`` (before the first send),
    ``on_drained`` after the drain (before any client closes)."""
    run = _Run(
        config, tokens, console or Console(stderr=True), on_connected=on_connected, on_drained=on_drained
    )
    return await run.run()
