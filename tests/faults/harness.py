"""What the fault tests share: a chat client that records every frame, bounded waits, stacks, DynamoDB reads.

Tests stay synchronous (no pytest-asyncio): each runs its client side in ``asyncio.run`` while the
stack under test runs on its own loop in a :class:`LocalStackThread`. Every wait here has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from serverless_app.definitions import CONNECTIONS_TABLE, ROOMS_TABLE
from serverless_app.local.server import management_client as local_management_client
from tests.support.stacks import running_stack
from tests.support.waiting import eventually_async

__all__ = [
    "ChatClient",
    "answer_to",
    "connect_many",
    "connection_ids",
    "history",
    "lambda_failures",
    "management_client",
    "member_ids",
    "run_clients",
    "run_stack",
    "settle",
]

Frame = dict[str, Any]
_opened: list[ChatClient] = []


class ChatClient:
    """One WebSocket client; a reader task appends every frame it receives to :attr:`frames`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self.closed = False
        self._reader = asyncio.create_task(self._read())
        _opened.append(self)

    @classmethod
    async def open(cls, ws_url: str, *, timeout_s: float = 20.0, **query: str) -> ChatClient:
        url = f"{ws_url}?{urlencode(query)}" if query else ws_url
        ws = await connect(url, open_timeout=timeout_s, ping_interval=None, close_timeout=2, max_size=2**20)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.closed = True

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    def of(self, action: str) -> list[Frame]:
        return [frame for frame in self.frames if frame.get("action") == action]

    def gateway_errors(self) -> list[Frame]:
        """API Gateway's own error frames: ``{"message": ..., "connectionId": ..., "requestId": ...}``."""
        return [frame for frame in self.frames if "action" not in frame and "connectionId" in frame]

    async def wait_for(
        self, predicate: Callable[[Frame], bool], *, timeout_s: float, start: int = 0
    ) -> Frame:
        """The first frame from index ``start`` on matching ``predicate``, within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        index = start
        while True:
            while index < len(self.frames):
                if predicate(self.frames[index]):
                    return self.frames[index]
                index += 1
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching frame within {timeout_s} s (closed={self.closed}); last: {self.frames[-3:]}"
                )
            await asyncio.sleep(0.01)

    async def eventually_count(self, action: str, count: int, *, timeout_s: float) -> None:
        """Wait (bounded) until ``count`` frames of ``action`` have arrived."""
        deadline = time.monotonic() + timeout_s
        while len(self.of(action)) < count:
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"{len(self.of(action))}/{count} {action!r} frames within {timeout_s} s")
            await asyncio.sleep(0.01)

    async def connection_id(self, *, timeout_s: float = 20.0) -> str:
        welcome = await self.wait_for(lambda f: f.get("action") == "welcome", timeout_s=timeout_s)
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
        await client.wait_for(marker.__eq__, timeout_s=timeout_s)


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
        page = await client.wait_for(lambda f: f.get("action") == "history", timeout_s=15, start=mark)
        messages = page["messages"] + messages
        before = page["next_cursor"]
        if before is None:
            return messages
    raise AssertionError("history did not end within 20 pages")


def run_clients(scenario: Callable[[], Awaitable[None]]) -> None:
    """``asyncio.run(scenario())``, then close every client it opened, whether it passed or not."""

    async def main() -> None:
        try:
            await scenario()
        finally:
            clients = list(_opened)
            _opened.clear()
            await asyncio.gather(*(client.close() for client in clients))

    asyncio.run(main())


async def connect_many(ws_url: str, count: int, *, parallel: int = 40, **query: str) -> list[ChatClient]:
    """``count`` clients, at most ``parallel`` handshakes in flight (under API Gateway's 500/s)."""
    slots = asyncio.Semaphore(parallel)

    async def one() -> ChatClient:
        async with slots:
            return await ChatClient.open(ws_url, timeout_s=20.0, **query)

    return list(await asyncio.gather(*(one() for _ in range(count))))


@contextlib.contextmanager
def run_stack(*, dynamodb_endpoint: str | None, **options: Any) -> Iterator[Any]:
    """:func:`~tests.support.stacks.running_stack` without the web client."""
    with running_stack(dynamodb_endpoint=dynamodb_endpoint, **({"static_dir": None} | options)) as stack:
        yield stack


def lambda_failures(stats: dict[str, Any]) -> dict[str, int]:
    """Errors plus timeouts per function, from ``stack.stats()`` (``GET /_local/stats``)."""
    return {name: fn["errors"] + fn["timeouts"] for name, fn in stats["lambda"].items()}


def management_client(http_url: str) -> Any:
    """The unmodified boto3 ``@connections`` client for the ``prod`` stage; no retries, so every answer shows."""
    return local_management_client(f"{http_url}/prod")


def connection_ids(ddb: Any) -> set[str]:
    """Every connection record in the connections table (a Scan: tests only); users' items and the
    ``@connections`` budget's item are not connections (connection ids never contain ``#``)."""
    ids: set[str] = set()
    for page in ddb.get_paginator("scan").paginate(
        TableName=CONNECTIONS_TABLE.name, ProjectionExpression="connection_id", ConsistentRead=True
    ):
        ids.update(i["connection_id"]["S"] for i in page["Items"] if "#" not in i["connection_id"]["S"])
    return ids


def member_ids(ddb: Any, room: str) -> set[str]:
    """Connection ids with a ``member#`` item in ``room``."""
    ids: set[str] = set()
    for page in ddb.get_paginator("query").paginate(
        TableName=ROOMS_TABLE.name,
        KeyConditionExpression="#r = :r AND begins_with(#sk, :p)",
        ExpressionAttributeNames={"#r": "room", "#sk": "sk"},
        ExpressionAttributeValues={":r": {"S": room}, ":p": {"S": "member#"}},
        ConsistentRead=True,
    ):
        ids.update(item["sk"]["S"].removeprefix("member#") for item in page["Items"])
    return ids
