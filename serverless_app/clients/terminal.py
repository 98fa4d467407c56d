"""The terminal chat client behind ``wschat chat``: a connection loop and an input loop.

Lines typed are applied by :class:`~serverless_app.clients.commands.Commands` (messages to the
active room, pending until acknowledged, and ``/commands``); events are shown by the
:class:`~serverless_app.clients.render.Renderer`. The connection is re-opened with
exponential backoff whenever it drops (at once, with a fresh token, when the server says the
token expired), and each room is recovered without gaps or duplicates (see
:mod:`serverless_app.clients.session`). Works on a terminal or a pipe: stdin
is read line by line in a thread, and end of input quits like ``/quit``. The command line
itself is :mod:`serverless_app.clients.chat_cmd`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import threading
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from serverless_app.clients.commands import Commands
from serverless_app.clients.endpoint import Credentials, DevTokenError, connect_url, is_loopback
from serverless_app.clients.events import RECONNECT_FRESH_TOKEN, ServerError
from serverless_app.clients.render import Renderer
from serverless_app.clients.session import ChatSession

__all__ = ["FatalError", "TerminalClient", "backoff_delay"]

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 15.0
DRAIN_TIMEOUT_S = 5.0
"""On quit, how long to wait for unacknowledged messages to be acknowledged."""


class FatalError(Exception):
    """Reconnecting cannot help (e.g. the token was refused)."""


def backoff_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 15 s, each scaled by 0.5–1."""
    base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 10))
    return base * (rng or random).uniform(0.5, 1.0)


class TerminalClient:
    """The terminal chat: a :class:`ChatSession`, a :class:`Renderer`, a connection loop and an input loop."""

    def __init__(self, credentials: Credentials, session: ChatSession, renderer: Renderer) -> None:
        self.credentials = credentials
        self.session = session
        self.renderer = renderer
        self._ws: ClientConnection | None = None
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._resend_scheduled = False
        self._opened = False
        self._fresh_token = False
        """The server said the token expired: the next connection gets a fresh one."""
        renderer.label = session.label  # direct rooms are shown as @user
        self.commands = Commands(session, renderer, self)

    # --- entry point ------------------------------------------------------------------------

    async def run(self) -> int:
        """Chat until /quit or end of input (exit status 0), or a fatal error (1)."""
        self._start_stdin_reader()
        connection = asyncio.create_task(self._connection_loop())
        commands = asyncio.create_task(self._input_loop())
        done, _ = await asyncio.wait({connection, commands}, return_when=asyncio.FIRST_COMPLETED)
        self._stop.set()
        for task in (connection, commands):
            if task not in done:
                task.cancel()
        results = await asyncio.gather(connection, commands, return_exceptions=True)
        for result in results:
            if isinstance(result, FatalError):
                self.renderer.error(str(result))
                return 1
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        return 0

    # --- the connection ---------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._opened = False
            try:
                await self._connect_once()
            except FatalError:
                raise
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, DevTokenError) as error:
                reason = _describe(error)
            else:
                reason = "connection closed"
            if self._stop.is_set():
                return
            attempt = 0 if self._opened else attempt + 1
            delay = backoff_delay(attempt)
            if self._fresh_token:  # already told (token expired); the credentials mint or fetch a new one
                self._fresh_token = False
            else:
                self.renderer.warn(f"disconnected ({reason}); reconnecting in {delay:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _connect_once(self) -> None:
        """One connection, until it closes (``_opened`` tells whether the handshake succeeded)."""
        token, user_id = await self.credentials.resolve()
        self.session.send_user_id = token is None
        url = connect_url(self.credentials.url, self.session.connect_rooms(), token=token, user_id=user_id)
        proxy: Any = None if is_loopback(url) else True
        try:
            ws = await connect(url, proxy=proxy, open_timeout=10, close_timeout=2, max_size=2**20)
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403) and (self.credentials.fixed_token or token is None):
                raise FatalError(
                    f"the server refused the connection ({status}): "
                    + (
                        "the token is invalid or expired"
                        if token
                        else "it requires a token: pass --token, or --secret-arn with the stack's websocket-token-secret"
                    )
                ) from None
            if status == 400:
                raise FatalError(f"the server refused the connection (400): {_body(error)}") from None
            raise
        self._ws = ws
        self._opened = True
        self._connected.set()
        try:
            for frame in self.session.on_connected():
                await self._send_frame(frame)
            async for raw in ws:
                self._on_raw(raw)
        finally:
            self._ws = None
            self._connected.clear()
            if self._stop.is_set():
                await ws.close()

    def _on_raw(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.renderer.warn(f"unreadable frame: {raw[:200]!r}")
            return
        reply = self.session.receive(frame)
        for event in reply.events:
            self.renderer.event(event)
            if isinstance(event, ServerError) and event.code in (
                "rate_limited",
                "storage_unavailable",
                "internal_error",
            ):
                self._schedule_resend((event.retry_after_ms or 500) / 1000)
        if reply.reconnect is not None and self._ws is not None:
            # The server forgot this connection (unknown_connection: expired or pruned) or is
            # closing it (token_expired): the documented cure is a reconnect, which re-joins the
            # rooms, recovers what was missed and sends again what was refused.
            if reply.reconnect == RECONNECT_FRESH_TOKEN:
                if self.credentials.fixed_token:
                    raise FatalError(
                        "the token expired: pass a fresh --token, or a secret option so that tokens are minted"
                    )
                self._fresh_token = True
            ws, self._ws = self._ws, None
            asyncio.get_running_loop().create_task(ws.close(code=1000, reason="reconnecting"))
        for out in reply.send:
            self.send_soon(out)

    def send_soon(self, frame: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self._send_frame(frame))

    async def _send_frame(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame, ensure_ascii=False))
        except ConnectionClosed:
            return False
        return True

    def _schedule_resend(self, delay: float) -> None:
        if self._resend_scheduled:
            return
        self._resend_scheduled = True

        def resend() -> None:
            self._resend_scheduled = False
            for frame in self.session.resend_pending():
                self.send_soon(frame)

        asyncio.get_running_loop().call_later(delay, resend)

    # --- input ------------------------------------------------------------------------------

    def _start_stdin_reader(self) -> None:
        """Read stdin in a daemon thread with ``os.read`` (no buffered-reader lock held at exit)."""
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()

        def post(line: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the loop is closed: we are exiting
                return False
            return True

        def read() -> None:
            pending = b""
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    if pending:
                        post(pending.decode("utf-8", "replace"))
                    post(None)
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not post(line.decode("utf-8", "replace")):
                        return

        threading.Thread(target=read, name="wschat-stdin", daemon=True).start()

    async def _input_loop(self) -> None:
        while True:
            line = await self._lines.get()
            if line is None:
                await self.quit()
                return
            text = line.rstrip("\r\n")
            if sys.stdin.isatty():
                self.renderer.erase_input_echo()
            if not text.strip():
                continue
            if await self.command(text):
                return

    async def command(self, text: str) -> bool:
        """Apply one input line (see :class:`~serverless_app.clients.commands.Commands`); True to exit."""
        return await self.commands.apply(text)

    # --- the link the commands send through -------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether a connection is open."""
        return self._ws is not None

    async def request(self, frame: dict[str, Any]) -> None:
        """Send ``frame``, or say that the client is not connected."""
        if not await self._send_frame(frame):
            self.renderer.error("not connected; try again once reconnected")

    async def quit(self) -> None:
        """Wait (bounded) for pending messages to be acknowledged, then stop."""
        if self.session.pending:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DRAIN_TIMEOUT_S
            while self.session.pending and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.session.pending:
                self.renderer.warn(
                    f"{len(self.session.pending)} message(s) not acknowledged; they may be lost"
                )
        self._stop.set()
        ws = self._ws
        if ws is not None:
            await ws.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        rcvd = error.rcvd
        return (
            f"code {rcvd.code}{' ' + rcvd.reason if rcvd and rcvd.reason else ''}"
            if rcvd
            else "connection lost"
        )
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code}"
    if isinstance(error, ConnectionRefusedError):
        return "server not reachable"
    return str(error) or type(error).__name__


def _body(error: InvalidStatus) -> str:
    return error.response.body.decode("utf-8", "replace")[:300] if error.response.body else "bad request"
