"""A small synchronous test client over a real WebSocket (`websocket-client`, the seed's library)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import websocket

WAIT_S = 15.0


class ChatClient:
    """One connection: sends frames, collects every frame received, waits for the ones it needs."""

    def __init__(self, ws_url: str, **query: str) -> None:
        self.ws = websocket.create_connection(f"{ws_url}?{urlencode(query)}", timeout=WAIT_S)
        self.frames: list[dict[str, Any]] = []

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.ws.send_binary(data)
        else:
            self.ws.send(data)

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = WAIT_S,
        *,
        start: int = 0,
    ) -> dict[str, Any]:
        """The first frame from position ``start`` on that satisfies ``predicate``, waiting for it."""
        for frame in self.frames[start:]:
            if predicate(frame):
                return frame
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            if not data:
                raise AssertionError(f"closed while waiting for {what}; got {self.frames[-5:]}")
            frame = json.loads(data)
            self.frames.append(frame)
            if predicate(frame):
                return frame
        raise AssertionError(f"timed out waiting for {what}; got {self.frames[-5:]}")

    def wait_action(self, action: str, **fields: Any) -> dict[str, Any]:
        return self.wait_for(
            lambda f: f.get("action") == action and all(f.get(k) == v for k, v in fields.items()),
            f"{action} {fields}",
        )

    def poll(self, wait_s: float) -> None:
        """Collect what arrives within ``wait_s`` (at most one frame); raise if the server closed."""
        self.ws.settimeout(wait_s)
        try:
            data = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        if not data:  # a close frame
            raise websocket.WebSocketConnectionClosedException("the server closed the connection")
        self.frames.append(json.loads(data))

    def drain(self, quiet_s: float = 0.5) -> list[dict[str, Any]]:
        """Everything that arrives until nothing has for ``quiet_s``."""
        self.ws.settimeout(quiet_s)
        while True:
            try:
                self.frames.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                return self.frames

    def close(self) -> None:
        """Close politely if the connection is still open; release the socket in every case."""
        try:
            self.ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass  # the server already closed it (1003/1009 tests)
        finally:
            self.ws.shutdown()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
