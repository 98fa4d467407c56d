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

Each message's text is ``wsb:<run>:<seq>:<send ns>[:padding]``: the id and the send time travel in
the message itself, and receivers find the sequence number by string search; only non-message
frames are parsed as JSON. The client shares the machine with the server under test, so the hot
path (one delivery) is a prefix check, a ``find``, an ``int()`` and a tuple append.
"""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
import shlex
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from serverless_app.bench.stats import (
    Accounting,
    Percentiles,
    SentMessage,
    account,
    percentiles,
    summary_dict,
)
from serverless_app.clients.endpoint import DEFAULT_URL, connect_url
from serverless_app.local.throttle import TokenBucket

__all__ = [
    "BenchConfig",
    "BenchResult",
    "Hook",
    "TokenSource",
    "command_tokens",
    "raise_fd_limit",
    "run_bench",
    "secret_tokens",
]

_MESSAGE_PREFIX = '{"action":"message"'
_ERROR_PREFIX = '{"action":"error"'

TokenSource = Callable[[str], Awaitable[str]]
"""User id → a connection token (token mode), e.g. minted with a secret or read from a command."""

Hook = Callable[[], Awaitable[None]]
"""Called between phases (e.g. by the benchmark suite, to reset and read the server's counters)."""


@dataclass(frozen=True)
class BenchConfig:
    """What to run; the defaults are ``wschat bench``'s."""

    url: str = DEFAULT_URL
    clients: int = 100
    rooms: int = 10
    senders: int = 10
    messages: int = 100
    rate: float | None = None
    """Messages per second in total; ``None``: closed loop (each sender waits for its echo)."""
    connect_rate: float = 450.0
    """New connections per second (API Gateway's default quota is 500/s per account and region)."""
    connect_concurrency: int = 100
    """Handshakes (up to ``welcome``) in flight at once."""
    connect_timeout_s: float = 15.0
    echo_timeout_s: float = 10.0
    drain_s: float = 10.0
    sender_rate: float = 4.5
    """Per-sender client-side cap, below the server's 5 messages/s per connection."""
    sender_burst: int = 18
    """Per-sender burst, below the server's 20."""
    user_prefix: str = "bench"
    users_per_room: int = 0
    """Distinct users per room (connections share them round-robin); 0: one user per connection."""
    room_prefix: str | None = None
    """Room names are ``<prefix>-<i>``; default ``bench-<run id>`` so runs never share rooms."""
    seed_rooms: bool = False
    """Connect one client per room (and wait for its ``welcome``) before the others: a room then
    fills without any member being announced to connections still inside ``$connect``."""
    payload_bytes: int = 0
    """Pad each message's text to at least this many characters (at most 4,000)."""
    progress: bool = True


class _ClosedBeforeWelcome(Exception):
    """The server closed the connection before its ``welcome`` frame."""


@dataclass
class _Client:
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


@dataclass
class BenchResult:
    """One run's measurements; :meth:`to_json` is the ``--json`` document."""

    config: BenchConfig
    run_id: str
    accounting: Accounting
    errors: Counter[str]
    other_frames: Counter[str]
    room_sizes: dict[str, int]
    connected: int
    connect_ms: Percentiles
    connect_s: float
    send_s: float
    first_send_ns: int | None
    last_send_ns: int | None
    started_at: float

    @property
    def connections_per_s(self) -> float:
        return self.connected / self.connect_s if self.connect_s > 0 else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.accounting.sent / self.send_s if self.send_s > 0 else 0.0

    @property
    def deliveries_per_s(self) -> float:
        acc = self.accounting
        if self.first_send_ns is None or acc.last_receipt_ns is None:
            return 0.0
        span = (acc.last_receipt_ns - self.first_send_ns) / 1e9
        return acc.delivered / span if span > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No delivery lost or duplicated, nothing misdelivered, and every client connected."""
        return self.accounting.ok and self.connected == self.config.clients

    def to_json(self) -> dict[str, Any]:
        sizes = sorted(set(self.room_sizes.values()))
        return {
            "url": self.config.url,
            "run_id": self.run_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "clients": self.config.clients,
            "connected": self.connected,
            "rooms": self.config.rooms,
            "room_sizes": sizes,
            "senders": self.config.senders,
            "messages": self.config.messages,
            "rate": self.config.rate,
            "payload_bytes": self.config.payload_bytes,
            **summary_dict(self.accounting),
            "errors": dict(sorted(self.errors.items())),
            "other_frames": dict(sorted(self.other_frames.items())),
            "connections_per_s": round(self.connections_per_s, 1),
            "presence_frames_per_join": round(
                (self.other_frames.get("presence", 0) + self.other_frames.get("presenceMode", 0))
                / max(1, self.connected),
                2,
            ),
            "connect_ms": self.connect_ms.as_dict(),
            "messages_per_s": round(self.messages_per_s, 1),
            "deliveries_per_s": round(self.deliveries_per_s, 1),
            "ok": self.ok,
        }


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-files limit towards ``needed`` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def secret_tokens(secret: str, *, ttl_s: int = 3600) -> TokenSource:
    """Tokens minted locally with the stack's signing secret."""
    from serverless_app.chat.auth import mint_token

    async def token(user: str) -> str:
        return mint_token(user, secret, ttl_s=ttl_s)

    return token


def command_tokens(command: str, *, timeout_s: float = 30.0) -> TokenSource:
    """Tokens printed by a command: ``{user}`` in it is replaced by the user id, else the id is appended."""

    async def token(user: str) -> str:
        quoted = shlex.quote(user)
        line = command.replace("{user}", quoted) if "{user}" in command else f"{command} {quoted}"
        process = await asyncio.create_subprocess_shell(
            line, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"token command timed out after {timeout_s:g} s: {line}") from None
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"token command failed ({process.returncode}): {line}: {err.decode()[-300:]}")
        return out.decode().strip().splitlines()[-1].strip()

    return token


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
        prefix = config.room_prefix or f"bench-{self.run_id}"
        self.rooms = [f"{prefix}-{i}" for i in range(config.rooms)]
        self.clients = [self._new_client(i) for i in range(config.clients)]
        self.mark = f'"wsb:{self.run_id}:'
        self.receipts: list[tuple[int, int, int]] = []
        self.sent: list[SentMessage] = []
        self.errors: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()
        self.other: Counter[str] = Counter()
        self.closing = False

    def _new_client(self, index: int) -> _Client:
        room_index = index % self.config.rooms
        if self.config.users_per_room > 0:
            slot = (index // self.config.rooms) % self.config.users_per_room
            user = f"{self.config.user_prefix}-{room_index}-{slot}"
        else:
            user = f"{self.config.user_prefix}-{index}"
        bucket = TokenBucket(self.config.sender_rate, self.config.sender_burst, clock=time.perf_counter)
        return _Client(index=index, room=self.rooms[room_index], user=user, bucket=bucket)

    # --- receive: the hot path ---------------------------------------------------------

    async def _read(self, client: _Client) -> None:
        ws = client.ws
        assert ws is not None
        mark, skip = self.mark, len(self.mark)
        append, clock, index = self.receipts.append, time.perf_counter_ns, client.index
        try:
            async for raw in ws:
                now = clock()
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if text.startswith(_MESSAGE_PREFIX):
                    at = text.find(mark)
                    if at >= 0:
                        start = at + skip
                        seq = int(text[start : text.index(":", start)])
                        append((index, seq, now))
                        if client.awaiting == seq:
                            client.echo.set()
                        continue
                self._other_frame(client, text)
        except ConnectionClosed as closed:
            if not self.closing:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                self.errors[f"closed:{code}"] += 1
        finally:
            if client.welcome is not None and not client.welcome.done():
                client.welcome.set_exception(_ClosedBeforeWelcome())

    def _other_frame(self, client: _Client, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.errors["frame:not_json"] += 1
            return
        action = frame.get("action") if isinstance(frame, dict) else None
        if action == "welcome":
            if client.welcome is not None and not client.welcome.done():
                client.welcome.set_result(None)
            return
        if action == "error":
            self.errors[str(frame.get("code", "unknown"))] += 1
            self.refusals[client.index] += 1
            client.echo.set()
            return
        if action is None and isinstance(frame, dict) and "message" in frame:
            # API Gateway's own frame for a failed or timed-out integration
            self.errors[f"gateway:{frame['message']}"] += 1
            self.refusals[client.index] += 1
            client.echo.set()
            return
        self.other[str(action)] += 1

    # --- connect -----------------------------------------------------------------------

    async def _connect_one(self, client: _Client, url: str, slots: asyncio.Semaphore) -> None:
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
                client.reader = asyncio.create_task(self._read(client))
                await client.welcome
            client.connected_ms = (time.perf_counter() - started) * 1000
        except InvalidStatus as refused:
            self.errors[f"connect:http_{refused.response.status_code}"] += 1
        except TimeoutError:
            self.errors["connect:timeout" if client.ws is None else "welcome:timeout"] += 1
        except _ClosedBeforeWelcome:
            self.errors["welcome:closed"] += 1
        except (OSError, InvalidHandshake) as error:
            self.errors[f"connect:{type(error).__name__}"] += 1
        finally:
            slots.release()

    async def _connect_all(self, progress: Progress) -> float:
        config = self.config
        urls: list[str] = []
        token_by_user: dict[str, str] = {}
        if self.tokens is not None:
            for client in self.clients:
                if client.user not in token_by_user:
                    token_by_user[client.user] = await self.tokens(client.user)
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
                one = asyncio.create_task(self._connect_one(client, url, slots))
                one.add_done_callback(lambda _: progress.advance(task))
                pending.append(one)
            await asyncio.gather(*pending)
        return time.perf_counter() - started

    # --- send --------------------------------------------------------------------------

    def _frame(self, client: _Client, seq: int) -> tuple[str, int]:
        sent_ns = time.perf_counter_ns()
        text = f"wsb:{self.run_id}:{seq}:{sent_ns}"
        if len(text) < self.config.payload_bytes:
            text = f"{text}:{'x' * (min(self.config.payload_bytes, 4000) - len(text) - 1)}"
        return json.dumps({"action": "sendMessage", "room": client.room, "message": text}), sent_ns

    async def _take_token(self, client: _Client) -> None:
        delay = client.bucket.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send(self, client: _Client, seq: int) -> None:
        await self._take_token(client)
        data, sent_ns = self._frame(client, seq)
        assert client.ws is not None
        self.sent.append(SentMessage(seq=seq, room=client.room, sender=client.index, sent_ns=sent_ns))
        try:
            await client.ws.send(data)
        except ConnectionClosed:
            self.errors["send:closed"] += 1
            self.refusals[client.index] += 1

    async def _send_paced(self, senders: Sequence[_Client], rate: float, advance: Callable[[], None]) -> None:
        started = time.perf_counter()
        for seq in range(self.config.messages):
            delay = started + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._send(senders[seq % len(senders)], seq)
            advance()

    async def _send_closed_loop(self, senders: Sequence[_Client], advance: Callable[[], None]) -> None:
        async def one_sender(position: int, client: _Client) -> None:
            for seq in range(position, self.config.messages, len(senders)):
                client.echo.clear()
                client.awaiting = seq
                await self._send(client, seq)
                try:
                    await asyncio.wait_for(client.echo.wait(), self.config.echo_timeout_s)
                except TimeoutError:
                    self.errors["echo:timeout"] += 1
                client.awaiting = -1
                advance()

        await asyncio.gather(*(one_sender(i, c) for i, c in enumerate(senders)))

    async def _drain(self, members: dict[str, list[int]]) -> None:
        """Wait (bounded) until every accepted message reached every member of its room."""
        config = self.config
        deadline = time.perf_counter() + config.drain_s
        size = {room: len(ids) for room, ids in members.items()}
        owed = sum(size[m.room] for m in self.sent)
        while time.perf_counter() < deadline:
            refused = sum(n * size[self.clients[i].room] for i, n in self.refusals.items())
            if len(self.receipts) >= owed - refused:
                break
            await asyncio.sleep(0.02)
        # a short grace period for duplicates arriving just after the last expected delivery
        await asyncio.sleep(min(0.3, max(0.0, deadline - time.perf_counter())))

    async def _close_all(self) -> None:
        self.closing = True
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

    # --- the whole run -----------------------------------------------------------------

    async def run(self) -> BenchResult:
        config = self.config
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
                connect_s = await self._connect_all(progress)
                connected = [c for c in self.clients if c.connected_ms is not None]
                members: dict[str, list[int]] = {room: [] for room in self.rooms}
                for client in connected:
                    members[client.room].append(client.index)
                senders = [c for c in self.clients[: config.senders] if c.connected_ms is not None]
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
                await self._close_all()
        accounting = account(self.sent, members, self.receipts, refusals=self.refusals)
        return BenchResult(
            config=config,
            run_id=self.run_id,
            accounting=accounting,
            errors=self.errors,
            other_frames=self.other,
            room_sizes={room: len(ids) for room, ids in members.items()},
            connected=len(connected),
            connect_ms=percentiles(c.connected_ms for c in connected if c.connected_ms is not None),
            connect_s=connect_s,
            send_s=send_s,
            first_send_ns=self.sent[0].sent_ns if self.sent else None,
            last_send_ns=self.sent[-1].sent_ns if self.sent else None,
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
