"""A recording stand-in for API Gateway's ``@connections`` API, speaking its wire protocol.

Used only until the local gateway exists in a test: POST records the frame, GET answers
``GetConnection``, DELETE closes; ids in ``gone`` answer 410 GoneException, ids in
``throttle`` answer 429 LimitExceededException a set number of times first.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


class ConnectionsDouble:
    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.throttle: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        """Connection id → how many more POSTs answer 503 first."""
        self.drop: dict[str, int] = {}
        """Connection id → how many more POSTs are cut off with no answer at all."""
        self.requests: list[tuple[str, str]] = []
        self.unsigned: int = 0
        self.lock = threading.Lock()
        self.url = ""

    def received(self, connection_id: str, action: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            frames = list(self.frames[connection_id])
        return [f for f in frames if action is None or f.get("action") == action]

    def clear(self) -> None:
        with self.lock:
            self.frames.clear()
            self.requests.clear()


def _handler(double: ConnectionsDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _connection_id(self) -> str | None:
            prefix = "/prod/@connections/"
            return unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else None

        def _answer(self, status: int, body: bytes = b"", error: str | None = None) -> None:
            self.send_response(status)
            if error:
                self.send_header("x-amzn-ErrorType", error)
                body = json.dumps({"message": None}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _common(self) -> str | None:
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
                double.unsigned += 1
            connection_id = self._connection_id()
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
            if connection_id is None:
                self._answer(404, error="NotFoundException")
                return None
            with double.lock:
                double.requests.append((self.command, connection_id))
                if connection_id in double.gone:
                    self._answer(410, error="GoneException")
                    return None
                if double.throttle.get(connection_id, 0) > 0:
                    double.throttle[connection_id] -= 1
                    self._answer(429, error="LimitExceededException")
                    return None
                if double.fail.get(connection_id, 0) > 0:
                    double.fail[connection_id] -= 1
                    self._answer(503, error="ServiceUnavailable")
                    return None
                if double.drop.get(connection_id, 0) > 0:
                    double.drop[connection_id] -= 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
            return connection_id

        def do_POST(self) -> None:
            connection_id = self._common()
            if connection_id is not None:
                with double.lock:
                    double.frames[connection_id].append(json.loads(self._body))
                self._answer(200)

        def do_GET(self) -> None:
            connection_id = self._common()
            if connection_id is not None:
                info = {
                    "connectedAt": "2026-01-01T00:00:00.000Z",
                    "lastActiveAt": "2026-01-01T00:00:00.000Z",
                    "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
                }
                self._answer(200, json.dumps(info).encode())

        def do_DELETE(self) -> None:
            connection_id = self._common()
            if connection_id is not None:
                with double.lock:
                    double.gone.add(connection_id)
                self._answer(204)

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the fan-out opens dozens of connections at once (the default is 5)


@contextmanager
def running_connections_double() -> Iterator[ConnectionsDouble]:
    double = ConnectionsDouble()
    server = _Server(("127.0.0.1", 0), _handler(double))
    server.daemon_threads = True
    double.url = f"http://127.0.0.1:{server.server_address[1]}/prod"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
