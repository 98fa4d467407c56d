"""The load tool's clients: who they are, which room each joins, and their connections.

Client ``i`` joins room ``i mod R`` through the connect URL's ``?rooms=``, as user
``<prefix>-<i>`` (or, with ``users_per_room``, one of that many users of its room, round-robin).
:meth:`Population.connect` paces new connections (``connect_rate``, default 450/s, under API
Gateway's 500/s) with a bounded number of handshakes in flight, seeding every room with one client
first when asked; a client counts as connected when its ``welcome`` arrives.
:meth:`Population.close` closes every client (bounded) and stops their readers.

What a client receives is measured by the reader it is given (``serverless_app.bench.measure``).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from serverless_app.bench.config import BenchConfig
from serverless_app.bench.tokens import TokenSource
from serverless_app.clients.endpoint import connect_url
from serverless_app.local.throttle import TokenBucket

__all__ = ["Client", "ClosedBeforeWelcome", "Population", "Reader", "raise_fd_limit"]


class ClosedBeforeWelcome(Exception):
    """The server closed the connection before its ``welcome`` frame."""


@dataclass
class Client:
    index: int
    room: str
    user: str
    bucket: TokenBucket
    """Paces this client's sends under the chat's per-user rate."""
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    welcome: asyncio.Future[None] | None = None
    connected_ms: float | None = None
    awaiting: int = -1
    echo: asyncio.Event = field(default_factory=asyncio.Event)


Reader = Callable[[Client], Coroutine[Any, Any, None]]
"""Reads one client's connection until it closes; resolves ``client.welcome`` (or fails it with
:class:`ClosedBeforeWelcome`)."""


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-files limit towards ``needed`` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class Population:
    """One run's rooms and clients; connection failures are counted in ``errors``."""

    def __init__(self, config: BenchConfig, run_id: str, errors: Counter[str]) -> None:
        self.config = config
        self.errors = errors
        prefix = config.room_prefix or f"bench-{run_id}"
        self.rooms = [f"{prefix}-{i}" for i in range(config.rooms)]
        self.clients = [self._new_client(i) for i in range(config.clients)]

    def _new_client(self, index: int) -> Client:
        room_index = index % self.config.rooms
        if self.config.users_per_room > 0:
            slot = (index // self.config.rooms) % self.config.users_per_room
            user = f"{self.config.user_prefix}-{room_index}-{slot}"
        else:
            user = f"{self.config.user_prefix}-{index}"
        bucket = TokenBucket(self.config.sender_rate, self.config.sender_burst, clock=time.perf_counter)
        return Client(index=index, room=self.rooms[room_index], user=user, bucket=bucket)

    async def _connect_one(self, client: Client, url: str, slots: asyncio.Semaphore, read: Reader) -> None:
        loop = asyncio.get_running_loop()
        client.welcome = loop.create_future()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                client.ws = await connect(
                    url,
                    compression=None,
                    ping_interval=None,
                    proxy=None,
                    open_timeout=None,
                    close_timeout=2,
                    max_queue=1024,
                    user_agent_header=None,
                )
                client.reader = asyncio.create_task(read(client))
                await client.welcome
            client.connected_ms = (time.perf_counter() - started) * 1000
        except InvalidStatus as refused:
            self.errors[f"connect:http_{refused.response.status_code}"] += 1
        except TimeoutError:
            self.errors["connect:timeout" if client.ws is None else "welcome:timeout"] += 1
        except ClosedBeforeWelcome:
            self.errors["welcome:closed"] += 1
        except (OSError, InvalidHandshake) as error:
            self.errors[f"connect:{type(error).__name__}"] += 1
        finally:
            slots.release()

    async def connect(self, tokens: TokenSource | None, progress: Progress, read: Reader) -> float:
        """Connect every client (each read by ``read``); the seconds it took."""
        config = self.config
        urls: list[str] = []
        token_by_user: dict[str, str] = {}
        if tokens is not None:
            for client in self.clients:
                if client.user not in token_by_user:
                    token_by_user[client.user] = await tokens(client.user)
        for client in self.clients:
            token = token_by_user.get(client.user)
            urls.append(connect_url(config.url, [client.room], token=token, user_id=client.user))
        task = progress.add_task("connect", total=len(self.clients))
        slots = asyncio.Semaphore(config.connect_concurrency)
        interval = 1.0 / config.connect_rate
        order = list(zip(self.clients, urls, strict=True))
        waves = [order]
        if config.seed_rooms:
            waves = [order[: config.rooms], order[config.rooms :]]
        started = time.perf_counter()
        for wave in waves:
            pending: list[asyncio.Task[None]] = []
            wave_started = time.perf_counter()
            for position, (client, url) in enumerate(wave):
                delay = wave_started + position * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                one = asyncio.create_task(self._connect_one(client, url, slots, read))
                one.add_done_callback(lambda _: progress.advance(task))
                pending.append(one)
            await asyncio.gather(*pending)
        return time.perf_counter() - started

    def connected(self) -> list[Client]:
        """The clients that got their ``welcome``."""
        return [c for c in self.clients if c.connected_ms is not None]

    async def close(self) -> None:
        """Close every open client (waiting at most 10 s) and stop every reader."""
        open_clients = [c for c in self.clients if c.ws is not None]
        if open_clients:
            closes = [asyncio.create_task(c.ws.close()) for c in open_clients if c.ws is not None]
            await asyncio.wait(closes, timeout=10.0)
            for close in closes:
                if not close.done():
                    close.cancel()
        readers = [c.reader for c in self.clients if c.reader is not None]
        for reader in readers:
            if not reader.done():
                reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
