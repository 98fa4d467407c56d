"""Issue 12's fidelity items on the wire: outbound fragmentation (32 KB frames), headers returned by
``$connect`` (subprotocol negotiation), non-UTF-8 ``@connections`` data, the ``DELETE`` close.

Real sockets throughout: the ``websockets`` client, a raw-socket frame reader, the unmodified boto3
``@connections`` client, the real Lambda runtime running the gateway fixtures' handlers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.local.gateway_fixtures import GatewayServer, route_events, serve_gateway

pytestmark = pytest.mark.timeout(120)
FRAME = 32 * 1024
OTHER = [Subprotocol("other")]


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with serve_gateway(tmp_path) as running:
        yield running


def connection_id_of(ws: Any) -> str:
    ws.send(json.dumps({"do": "echo"}))
    return str(json.loads(ws.recv(timeout=30))["echo"]["requestContext"]["connectionId"])


class RawClient:
    """A WebSocket client on a bare socket that reports every frame it reads: (fin, opcode, payload)."""

    def __init__(self, port: int, path: str = "/prod") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        return chunk

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> tuple[bool, int, bytes]:
        first, second = self._take(2)
        length = second & 0x7F
        assert not second & 0x80, "a server must not mask"
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        return bool(first & 0x80), first & 0x0F, self._take(length)

    def message(self) -> list[tuple[bool, int, bytes]]:
        """The frames of the next data message (control frames skipped)."""
        frames: list[tuple[bool, int, bytes]] = []
        while True:
            fin, opcode, payload = self.frame()
            if opcode >= 0x8:
                continue
            frames.append((fin, opcode, payload))
            if fin:
                return frames

    def close(self) -> None:
        self.sock.close()


def test_a_100_kb_message_arrives_whole_in_frames_of_at_most_32_kb(server: GatewayServer) -> None:
    """Item 3: API Gateway splits outbound messages into frames of at most 32 KB; the client sees
    one message (a text frame, then continuation frames, FIN on the last)."""
    client = server.management()
    body = json.dumps({"pad": "é" * 10 + "x" * 100_000}).encode()
    with connect(server.ws_url, max_size=None) as ws:
        connection_id = connection_id_of(ws)
        client.post_to_connection(ConnectionId=connection_id, Data=body)
        received = ws.recv(timeout=20)
    assert isinstance(received, str) and received.encode() == body

    raw = RawClient(server.port)
    try:
        [connection_id] = server.call(lambda: list(server.gateway.connections))
        client.post_to_connection(ConnectionId=connection_id, Data=body)
        frames = raw.message()
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"small": 1}')
        small = raw.message()
    finally:
        raw.close()
    assert len(frames) >= 4 and all(len(payload) <= FRAME for _, _, payload in frames)
    assert [opcode for _, opcode, _ in frames] == [0x1] + [0x0] * (len(frames) - 1)
    assert [fin for fin, _, _ in frames] == [False] * (len(frames) - 1) + [True]
    assert b"".join(payload for _, _, payload in frames) == body
    assert small == [(True, 0x1, b'{"small": 1}')]  # at most 32 KB: one frame, as before


def test_a_message_of_exactly_32_kib_is_one_frame_and_one_byte_more_is_two(server: GatewayServer) -> None:
    client = server.management()
    raw = RawClient(server.port)
    try:
        [connection_id] = server.call(lambda: list(server.gateway.connections))
        client.post_to_connection(ConnectionId=connection_id, Data=b"x" * FRAME)
        assert [len(p) for _, _, p in raw.message()] == [FRAME]
        client.post_to_connection(ConnectionId=connection_id, Data=b"y" * (FRAME + 1))
        assert [(fin, op, len(p)) for fin, op, p in raw.message()] == [(False, 1, FRAME), (True, 0, 1)]
    finally:
        raw.close()


def test_non_utf8_data_is_sent_as_a_binary_message(server: GatewayServer) -> None:
    """Item 6: bytes that are not UTF-8 leave as a binary message (fragmented like text past 32 KB)
    instead of a text frame the client must refuse with 1007; the connection stays open."""
    client = server.management()
    with connect(server.ws_url, max_size=None) as ws:
        connection_id = connection_id_of(ws)
        client.post_to_connection(ConnectionId=connection_id, Data=b"\xff\xfe\x00binary")
        assert ws.recv(timeout=10) == b"\xff\xfe\x00binary"
        large = b"\xff" + os.urandom(70_000)
        client.post_to_connection(ConnectionId=connection_id, Data=large)
        assert ws.recv(timeout=10) == large
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"still": "open"}')
        assert ws.recv(timeout=10) == '{"still": "open"}'


def test_connect_headers_negotiate_the_subprotocol(server: GatewayServer) -> None:
    """Item 4: ``Sec-WebSocket-Protocol`` returned by ``$connect`` completes the client's negotiation;
    other returned headers (``headers`` and ``multiValueHeaders``) reach the client too."""
    with connect(
        f"{server.ws_url}?mode=protocol&protocol=chat", subprotocols=[Subprotocol("chat"), *OTHER]
    ) as ws:
        assert ws.subprotocol == "chat"
        response = ws.response
        assert response is not None
        assert response.headers["Sec-WebSocket-Protocol"] == "chat"
        assert response.headers["X-Chat-Server"] == "local"
        assert response.headers.get_all("X-Chat-Tag") == ["a", "b"]
        assert response.headers["Upgrade"].lower() == "websocket"  # the handshake's own headers stay
        connection_id_of(ws)  # and the connection works


def test_a_protocol_the_handler_does_not_return_is_not_negotiated(server: GatewayServer) -> None:
    """AWS passes the integration's headers as they are: a client offering a protocol the handler
    does not return gets a handshake without ``Sec-WebSocket-Protocol`` (``websockets`` accepts it
    with no subprotocol; a browser fails such a handshake); a protocol the client did not offer,
    returned anyway, makes the client refuse the handshake."""
    with connect(f"{server.ws_url}?mode=protocol&protocol=chat", subprotocols=OTHER) as ws:
        assert ws.subprotocol is None
        assert ws.response is not None and "Sec-WebSocket-Protocol" not in ws.response.headers
        assert ws.response.headers["X-Chat-Server"] == "local"
    url = f"{server.ws_url}?mode=protocol&protocol=chat&always=1"
    with pytest.raises(InvalidHandshake), connect(url, subprotocols=OTHER):
        pass


def test_delete_closes_with_1000_and_an_empty_reason(server: GatewayServer) -> None:
    """Item 6: ``DELETE @connections/{id}``: the client sees close code 1000 with an empty reason;
    ``$disconnect`` says 1000 "Connection Closed Normally", as API Gateway's execution logs show."""
    client = server.management()
    with connect(server.ws_url) as ws:
        connection_id = connection_id_of(ws)
        client.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed) as caught:
            ws.recv(timeout=10)
    received = caught.value.rcvd
    assert received is not None and (received.code, received.reason) == (1000, "")
    [event] = server.wait_for_events(route_events("$disconnect"))
    context = event["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (
        1000,
        "Connection Closed Normally",
    )
