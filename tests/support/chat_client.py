"""The one test chat client: a real WebSocket whose reader task records every frame it receives,
and bounded waits on that record.

:class:`ChatClient` is asyncio (``websockets``). Tests stay synchronous (no pytest-asyncio): a test
with many clients runs its client side in :func:`run_clients`, while the stack under test runs on
its own loop in a :class:`~serverless_app.local.background.LocalStackThread`. A test that reads
better as plain calls uses :class:`SyncChatClient`, which drives the same client on one background
event loop. Every wait here has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.waiting import eventually_async

__all__ = [
    "WAIT_S",
    "ChatClient",
    "Frame",
    "SyncChatClient",
    "answer_to",
    "connect_many",
    "history",
    "run_clients",
    "settle",
    "unique",
]

Frame = dict[str, Any]
T = TypeVar("T")

WAIT_S = 15.0
"""How long a wait for a frame lasts unless the test says otherwise."""

_opened: ContextVar[list[ChatClient] | None] = ContextVar("opened", default=None)
"""The clients opened inside the current :func:`run_clients`, which closes them."""


class ChatClient:
    """One WebSocket client; a reader task appends every frame it receives to :attr:`frames`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self.closed = False
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        opened = _opened.get()
        if opened is not None:
            opened.append(self)

    @classmethod
    async def open(cls, ws_url: str, *, timeout_s: float = 20.0, **query: str) -> ChatClient:
        url = f"{ws_url}?{urlencode(query)}" if query else ws_url
        ws = await connect(url, open_timeout=timeout_s, ping_interval=None, close_timeout=2, max_size=2**20)
        return cls(ws)

    @classmethod
    async def handshake_status(cls, ws_url: str, **query: str) -> int:
        """The HTTP status of the opening handshake: 101 (then closed again) or the refusal's."""
        try:
            client = await cls.open(ws_url, timeout_s=WAIT_S, **query)
        except InvalidStatus as refused:
            return refused.response.status_code
        await client.close()
        return 101

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self._notify()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        """Wake every wait: a frame arrived or the connection closed."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes | Iterable[str]) -> None:
        """Send ``data`` as it is: text, a binary frame, or a text message in fragments."""
        await self.ws.send(data)

    def of(self, action: str) -> list[Frame]:
        return [frame for frame in self.frames if frame.get("action") == action]

    def gateway_errors(self) -> list[Frame]:
        """API Gateway's own error frames: ``{"message": ..., "connectionId": ..., "requestId": ...}``."""
        return [frame for frame in self.frames if "action" not in frame and "connectionId" in frame]

    async def until(self, check: Callable[[], T | None], what: str, *, timeout_s: float) -> T:
        """The first value of ``check()`` that is not ``None``, asked again whenever a frame arrives;
        fail after ``timeout_s``, or as soon as the connection is closed without it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            changed = self._changed
            value = check()
            if value is not None:
                return value
            remaining = deadline - loop.time()
            if self.closed or remaining <= 0:
                raise AssertionError(
                    f"{what}: not within {timeout_s} s (closed={self.closed}); last: {self.frames[-5:]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        what: str = "a matching frame",
        *,
        timeout_s: float = WAIT_S,
        start: int = 0,
    ) -> Frame:
        """The first frame from index ``start`` on matching ``predicate``, within ``timeout_s``."""
        index = start

        def first_match() -> Frame | None:
            nonlocal index
            while index < len(self.frames):
                frame = self.frames[index]
                index += 1
                if predicate(frame):
                    return frame
            return None

        return await self.until(first_match, what, timeout_s=timeout_s)

    async def wait_action(self, action: str, **fields: Any) -> Frame:
        """The first frame of ``action`` whose ``fields`` have these values."""
        return await self.wait_for(
            lambda f: f.get("action") == action and all(f.get(k) == v for k, v in fields.items()),
            f"{action} {fields}",
        )

    async def eventually_count(self, action: str, count: int, *, timeout_s: float) -> None:
        """Wait (bounded) until ``count`` frames of ``action`` have arrived."""
        await self.until(
            lambda: True if len(self.of(action)) >= count else None,
            f"{count} {action!r} frames (have {len(self.of(action))})",
            timeout_s=timeout_s,
        )

    async def drain(self, quiet_s: float = 0.5) -> list[Frame]:
        """Every frame, once none has arrived for ``quiet_s`` (or the connection is closed)."""
        while not self.closed:
            try:
                await asyncio.wait_for(self._changed.wait(), quiet_s)
            except TimeoutError:
                break
        return self.frames

    async def wait_closed(self, *, timeout_s: float = WAIT_S) -> int | None:
        """Wait until the connection is closed; the close code the server sent."""
        await self.until(
            lambda: True if self.closed else None, "the connection to close", timeout_s=timeout_s
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ws.wait_closed(), 5)
        return self.ws.close_code

    async def connection_id(self, *, timeout_s: float = 20.0) -> str:
        welcome = await self.wait_for(
            lambda f: f.get("action") == "welcome", "the welcome", timeout_s=timeout_s
        )
        return str(welcome["connection_id"])

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a crashed client, a pulled cable)."""
        self.ws.transport.abort()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), timeout=5)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


class SyncChatClient:
    """A :class:`ChatClient` driven from synchronous code: each call runs the asynchronous one on
    one background event loop (shared by every synchronous client, from any thread)."""

    def __init__(self, ws_url: str, **query: str) -> None:
        self.client = _on_loop(ChatClient.open(ws_url, timeout_s=WAIT_S, **query))

    @property
    def frames(self) -> list[Frame]:
        return self.client.frames

    @staticmethod
    def handshake_status(ws_url: str, **query: str) -> int:
        return _on_loop(ChatClient.handshake_status(ws_url, **query))

    def send(self, **frame: Any) -> None:
        _on_loop(self.client.send(**frame))

    def send_raw(self, data: str | bytes | Iterable[str]) -> None:
        _on_loop(self.client.send_raw(data))

    def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        what: str = "a matching frame",
        *,
        timeout_s: float = WAIT_S,
        start: int = 0,
    ) -> Frame:
        return _on_loop(self.client.wait_for(predicate, what, timeout_s=timeout_s, start=start))

    def wait_action(self, action: str, **fields: Any) -> Frame:
        return _on_loop(self.client.wait_action(action, **fields))

    def drain(self, quiet_s: float = 0.5) -> list[Frame]:
        return _on_loop(self.client.drain(quiet_s))

    def wait_closed(self, *, timeout_s: float = WAIT_S) -> int | None:
        return _on_loop(self.client.wait_closed(timeout_s=timeout_s))

    def close(self) -> None:
        _on_loop(self.client.close())


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the synchronous clients' background loop (started on first use); its result."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="sync-chat-clients", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coroutine, _loop).result()


def unique(prefix: str) -> str:
    """A name no other test uses (rooms, users)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def answer_to(client_msg_id: str) -> Callable[[Frame], bool]:
    """A predicate for the server's answer (``ack`` or ``error``) to the send with ``client_msg_id``."""
    return lambda frame: (
        frame.get("client_msg_id") == client_msg_id and frame.get("action") in ("ack", "error")
    )


async def settle(stack: Any, *clients: ChatClient, timeout_s: float = 30.0) -> None:
    """Wait until nothing more can arrive: the stack's Lambda runtime is idle (every post its
    handlers make is queued), then a marker posted to each client through ``@connections`` comes
    back, behind whatever was queued for it before. Observes what a fixed sleep would only hope for."""
    await eventually_async(lambda: stack.runtime.idle, timeout_s=timeout_s, what="the Lambda runtime is idle")
    client_api = stack.management_client()
    for client in clients:
        marker = {"settled": uuid.uuid4().hex}
        connection_id = await client.connection_id(timeout_s=timeout_s)
        await asyncio.to_thread(
            client_api.post_to_connection, ConnectionId=connection_id, Data=json.dumps(marker).encode()
        )
        await client.wait_for(marker.__eq__, "the settling marker", timeout_s=timeout_s)


async def history(client: ChatClient, room: str) -> list[Frame]:
    """The room's whole history, oldest first, paging backwards with ``getHistory`` (bounded)."""
    messages: list[Frame] = []
    before = None
    for _ in range(20):
        mark = len(client.frames)
        request: dict[str, Any] = {"action": "getHistory", "room": room, "limit": 100}
        if before is not None:
            request["before"] = before
        await client.send(**request)
        page = await client.wait_for(
            lambda f: f.get("action") == "history", "a history page", timeout_s=15, start=mark
        )
        messages = page["messages"] + messages
        before = page["next_cursor"]
        if before is None:
            return messages
    raise AssertionError("history did not end within 20 pages")


def run_clients(scenario: Callable[[], Awaitable[None]]) -> None:
    """``asyncio.run(scenario())``, then close every client it opened, whether it passed or not."""

    async def main() -> None:
        opened: list[ChatClient] = []
        _opened.set(opened)
        try:
            await scenario()
        finally:
            await asyncio.gather(*(client.close() for client in opened))

    asyncio.run(main())


async def connect_many(ws_url: str, count: int, *, parallel: int = 40, **query: str) -> list[ChatClient]:
    """``count`` clients, at most ``parallel`` handshakes in flight (under API Gateway's 500/s)."""
    slots = asyncio.Semaphore(parallel)

    async def one() -> ChatClient:
        async with slots:
            return await ChatClient.open(ws_url, timeout_s=20.0, **query)

    return list(await asyncio.gather(*(one() for _ in range(count))))
