"""Keep-alive HTTP/1.1 over asyncio: h11 on a pool of connections, one event loop per process.

Called by :class:`serverless_app.chat.connections_api.ConnectionsApi`, which signs each request and
gives it meaning (retries, 410s, 429s); this module only carries bytes. It calls asyncio (streams,
TLS through :mod:`ssl`) and h11, a pure-Python, sans-I/O HTTP/1.1 implementation, so the Lambda
asset needs no compiled package for it.

The event loop runs on a daemon thread that lives for the whole Lambda container, and kept-alive
connections are pooled by ``(host, port, tls)``, shared by every pool of that endpoint.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import h11

__all__ = ["Http11Pool", "StaleConnection", "run_on_loop"]

_T = TypeVar("_T")


class StaleConnection(Exception):
    """A kept-alive connection turned out closed before any response arrived."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection

    def reusable(self) -> bool:
        return self.http.our_state is h11.IDLE and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class _LoopThread:
    """One event loop per process, on a daemon thread; survives between invocations."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    idle: ClassVar[dict[tuple[str, int, bool], list[_Connection]]] = {}
    """Kept-alive connections by (host, port, tls), shared by every client of that endpoint."""

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, _T]) -> _T:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="connections-api", daemon=True).start()
                cls._loop = loop
            loop = cls._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


def run_on_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on the process's connections loop (started on first use) and wait for it."""
    return _LoopThread.run(coroutine)


class Http11Pool:
    """Requests to one endpoint over up to ``concurrency`` kept-alive connections at a time."""

    def __init__(self, host: str, port: int, tls: bool, *, concurrency: int, timeout_s: float) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._concurrency = concurrency
        self._timeout_s = timeout_s
        self._idle = _LoopThread.idle.setdefault((host, port, tls), [])
        self._slots: asyncio.Semaphore | None = None

    async def request(
        self, method: str, path: str, headers: Callable[[], list[tuple[str, str]]], body: bytes
    ) -> tuple[int, bytes]:
        """The status and body of one request; ``headers`` is called once a connection slot is free."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        async with self._slots:
            sent_headers = headers()
            for _ in range(2):  # a stale kept-alive connection is replaced once
                connection, reused = await self._acquire()
                try:
                    result = await asyncio.wait_for(
                        self._exchange(connection, method, path, sent_headers, body), self._timeout_s
                    )
                except StaleConnection:
                    connection.close()
                    if reused:
                        continue
                    raise
                except BaseException:
                    connection.close()
                    raise
                self._release(connection)
                return result
        raise StaleConnection("no usable connection")

    async def _acquire(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection, True
            connection.close()
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, ssl=context), self._timeout_s
        )
        return _Connection(reader, writer, h11.Connection(h11.CLIENT)), False

    def _release(self, connection: _Connection) -> None:
        if connection.http.our_state is h11.DONE and connection.http.their_state is h11.DONE:
            connection.http.start_next_cycle()
            self._idle.append(connection)
        else:
            connection.close()

    @staticmethod
    async def _exchange(
        connection: _Connection, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes]:
        http = connection.http
        outgoing = http.send(h11.Request(method=method, target=path, headers=headers))
        if body:
            outgoing += http.send(h11.Data(data=body))
        outgoing += http.send(h11.EndOfMessage())
        connection.writer.write(outgoing)
        status = 0
        chunks: list[bytes] = []
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                data = await connection.reader.read(65536)
                if not data and status == 0:
                    raise StaleConnection("connection closed before the response")
                http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise StaleConnection("connection closed during the response")
