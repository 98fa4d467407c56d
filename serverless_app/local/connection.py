"""One client connection of the emulated WebSocket API: state, bounded outbound queue, frame guard.

The ``@connections`` model (:mod:`serverless_app.local.connections`) only ever calls :meth:`Connection.post`
(a deque append: the hot path never awaits); a per-connection writer task drains the queue into the
socket. A client that stops reading fills the socket buffers, the writer blocks, the queue fills up to
``max_bytes`` and further posts raise :class:`~serverless_app.local.errors.LimitExceeded` (429, "the
WebSocket client side buffer is full"); if the writer stays
blocked past the slow-consumer timeout the gateway aborts the connection. Memory per connection is
therefore bounded by ``max_bytes`` plus the socket buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.helpers import set_exception
from aiohttp.http_websocket import WebSocketError

from serverless_app.local import gateway_events
from serverless_app.local.errors import ConnectionsError, Gone, LimitExceeded

__all__ = ["Connection", "install_frame_guard", "send_message"]


@dataclass(eq=False)
class Connection:
    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str
    domain_name: str
    authorizer: dict[str, Any] | None = None
    last_active_ms: float = 0.0
    close_code: int | None = None
    close_reason: str = ""
    max_bytes: int = 1024 * 1024
    max_frame: int = 32 * 1024
    """Outbound messages longer than this leave as several frames of at most this size (AWS: 32 KB)."""
    _ws: web.WebSocketResponse | None = None
    _transport: Any = None
    _queue: deque[bytes] = field(default_factory=deque)
    _queued_bytes: int = 0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.Task[None] | None = None
    _send_started: float = 0.0
    _state: str = "connecting"

    def __post_init__(self) -> None:
        self.last_active_ms = float(self.connected_at_ms)

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    def open(
        self,
        ws: web.WebSocketResponse,
        transport: Any,
        *,
        max_bytes: int | None = None,
        max_frame: int | None = None,
    ) -> None:
        """``$connect`` succeeded and the upgrade is done: the connection becomes postable."""
        self._ws, self._transport, self._state = ws, transport, "open"
        if max_bytes is not None:
            self.max_bytes = max_bytes
        if max_frame is not None:
            self.max_frame = max_frame
        self.last_active_ms = time.time() * 1000
        self._writer = asyncio.create_task(self._write_loop())

    def touch(self) -> None:
        self.last_active_ms = time.time() * 1000

    def mark_closed(self) -> bool:
        """Move to ``closed``; ``True`` only the first time (so ``$disconnect`` fires once)."""
        if self._state == "closed":
            return False
        self._state = "closed"
        if self._writer is not None:
            self._writer.cancel()
        self._queue.clear()
        self._queued_bytes = 0
        return True

    # --- outbound ---------------------------------------------------------------------------------

    def post(self, data: bytes) -> None:
        """Queue one message: :class:`Gone` unless open, :class:`LimitExceeded` when the client's
        buffer is full."""
        if self._state != "open":
            raise Gone()
        if self._queue and self._queued_bytes + len(data) > self.max_bytes:
            raise LimitExceeded()
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wakeup.set()

    def send_error(self, message: str, request_id: str) -> None:
        """API Gateway's own error message (``Internal server error``, ...) to this client, if it can take one."""
        frame = gateway_events.gateway_error_message(
            message, connection_id=self.connection_id, request_id=request_id
        )
        with contextlib.suppress(ConnectionsError):
            self.post(frame.encode())

    def blocked_for_s(self) -> float:
        """How long the writer has been stuck on one send (0 when idle)."""
        return time.monotonic() - self._send_started if self._send_started else 0.0

    async def _write_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        queue = self._queue
        while True:
            while not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            data = queue.popleft()
            self._send_started = time.monotonic()
            try:
                await send_message(ws, data, self.max_frame)
            except (ConnectionError, RuntimeError):
                return  # the socket is going away: the receive loop ends the connection
            finally:
                self._send_started = 0.0
                self._queued_bytes -= len(data)
            self.touch()  # AWS: traffic in either direction resets the idle timeout

    # --- closing ----------------------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        """Close from the gateway's side; the receive loop then ends the connection."""
        if self._state != "open" or self._ws is None:
            return
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        try:
            await asyncio.wait_for(self._ws.close(code=code, message=reason.encode()), timeout=2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort(code, reason)

    def abort(self, code: int, reason: str) -> None:
        """Drop the TCP connection (a client that stopped reading cannot take a close frame)."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.abort()


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_FIN = 0x80


def _frame_header(first_byte: int, length: int) -> bytes:
    if length < 126:
        return bytes((first_byte, length))
    if length < 65536:
        return bytes((first_byte, 126)) + length.to_bytes(2, "big")
    return bytes((first_byte, 127)) + length.to_bytes(8, "big")


async def send_message(ws: web.WebSocketResponse, data: bytes, max_frame: int) -> None:
    """Send ``data`` as one WebSocket message, as API Gateway does for an ``@connections`` POST.

    A text message (binary when ``data`` is not UTF-8: a text frame would make the client close
    with 1007); over ``max_frame`` bytes it leaves fragmented, a first frame with the opcode and
    continuation frames of at most ``max_frame`` bytes, FIN on the last. aiohttp's
    ``send_frame`` always sets FIN, so fragments are written to the writer's transport here, all
    in one go (no other data frame can come between them), then the writer's flow control is
    awaited as ``send_frame`` does. Requires an uncompressed server connection (no mask, no RSV1).
    """
    opcode = WSMsgType.TEXT if _is_utf8(data) else WSMsgType.BINARY
    if len(data) <= max_frame or max_frame <= 0:
        await ws.send_frame(data, opcode)
        return
    writer: Any = ws._writer  # aiohttp internals: WebSocketWriter
    if writer is None:
        raise RuntimeError("Call .prepare() first")
    transport = writer.transport
    if writer._closing or transport.is_closing():
        raise ConnectionResetError("Cannot write to closing transport")
    view = memoryview(data)
    last = len(data) - 1
    parts: list[bytes | memoryview] = []
    for offset in range(0, len(data), max_frame):
        chunk = view[offset : offset + max_frame]
        first_byte = (int(opcode) if offset == 0 else 0) | (_FIN if offset + max_frame > last else 0)
        parts += (_frame_header(first_byte, len(chunk)), chunk)
    transport.writelines(parts)
    protocol = writer.protocol
    if protocol._paused:
        await protocol._drain_helper()


class _FrameGuard:
    """Wraps aiohttp's WebSocket parser: closes with 1009 on a data frame over ``max_frame`` bytes.

    aiohttp's ``max_msg_size`` bounds whole messages (128 KB); API Gateway also bounds each frame
    (32 KB), so this reads just the frame headers and skips over payloads.
    """

    def __init__(self, inner: Any, queue: Any, max_frame: int) -> None:
        self._inner, self._queue, self._max = inner, queue, max_frame
        self._head = bytearray()
        self._skip = 0
        self._tripped = False

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._tripped:
            return False, b""
        if self._scan(data):
            result: tuple[bool, bytes] = self._inner.feed_data(data)
            return result
        self._tripped = True
        set_exception(self._queue, WebSocketError(1009, f"Frame size exceeds limit {self._max}"))
        return False, b""

    def _scan(self, data: bytes) -> bool:
        position, size = 0, len(data)
        while position < size:
            if self._skip:
                step = min(self._skip, size - position)
                self._skip -= step
                position += step
                continue
            head = self._head
            while position < size:
                head.append(data[position])
                position += 1
                if len(head) >= 2:
                    flag = head[1] & 0x7F
                    need = 2 + (2 if flag == 126 else 8 if flag == 127 else 0) + (4 if head[1] & 0x80 else 0)
                    if len(head) >= need:
                        break
            else:
                return True  # header continues in the next chunk
            flag = head[1] & 0x7F
            length = (
                flag
                if flag < 126
                else int.from_bytes(head[2:4], "big")
                if flag == 126
                else int.from_bytes(head[2:10], "big")
            )
            if head[0] & 0x0F in (0x0, 0x1, 0x2) and length > self._max:
                return False
            self._skip = length
            head.clear()
        return True


def install_frame_guard(request: web.Request, ws: web.WebSocketResponse, max_frame: int) -> None:
    """Put a :class:`_FrameGuard` in front of the parser ``ws.prepare()`` installed (aiohttp internals)."""
    protocol: Any = request.protocol
    inner = protocol._payload_parser
    if inner is None or max_frame <= 0:
        return
    protocol._payload_parser = _FrameGuard(inner, ws._reader, max_frame)
