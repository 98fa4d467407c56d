"""Fault: a client that never reads (a frozen tab, a stalled proxy): the slow consumer.

It completes the WebSocket handshake, reads its welcome, then never reads again, with a tiny
receive buffer. The rest of its room must not notice (they get every message, the same count
as in a control run without it); the gateway must hold at most ``max_outbound_bytes`` for it,
answer posts beyond that with 429 ``LimitExceededException`` (as AWS does when "the client side
buffer is full"), and finally disconnect it, which removes its records.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.chat_client import ChatClient, answer_to, run_clients
from tests.support.stacks import lambda_failures, management_client, run_stack
from tests.support.tables import connection_ids, member_ids
from tests.support.waiting import eventually_async

ROOM = "fault-slow"
MAX_OUTBOUND = 64 * 1024
SLOW_TIMEOUT_S = 3.0
READERS = 5
SENDERS = 3
PER_SENDER = 10
FLOOD_FRAME = b'{"action":"flood","pad":"' + b"x" * 16_000 + b'"}'


@dataclasses.dataclass
class Sloth:
    sock: socket.socket
    connection_id: str


def open_sloth(host: str, port: int) -> Sloth:
    """Handshake by hand, read the welcome frame, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(20)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /prod?rooms={ROOM}&user_id=sloth HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    while True:  # server frames are unmasked; the welcome is one small text frame
        flag = buffer[1] & 0x7F if len(buffer) >= 2 else 127
        if flag < 126 or (flag == 126 and len(buffer) >= 4):
            length, offset = (flag, 2) if flag < 126 else (int.from_bytes(buffer[2:4], "big"), 4)
            if len(buffer) >= offset + length:
                frame = json.loads(buffer[offset : offset + length])
                if frame.get("action") == "welcome":
                    return Sloth(sock, frame["connection_id"])
                buffer = buffer[offset + length :]
                continue
        chunk = sock.recv(4096)
        assert chunk, "closed before the welcome"
        buffer += chunk


def flood(stack: Any, sloth: Sloth) -> tuple[int, int, int]:
    """Post to the sloth until 429; return (posts accepted, 429s, most bytes the gateway queued)."""
    api = management_client(stack.http_url)
    accepted = throttled = most_queued = 0
    for _ in range(400):  # 400 x 16 KB at most
        try:
            api.post_to_connection(ConnectionId=sloth.connection_id, Data=FLOOD_FRAME)
            accepted += 1
        except ClientError as error:
            assert error.response["Error"]["Code"] == "LimitExceededException", error.response
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            throttled += 1
        connection = stack.gateway.connections.get(sloth.connection_id)
        if connection is not None:
            most_queued = max(most_queued, connection._queued_bytes)
        if throttled >= 3:
            break
    return accepted, throttled, most_queued


@pytest.mark.timeout(180)
def test_a_client_that_never_reads_costs_the_room_nothing_and_is_dropped(
    dynamodb_local: Any, ddb: Any
) -> None:
    """Others get every message; the sloth's buffer is capped (429) and it is disconnected."""
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        max_outbound_bytes=MAX_OUTBOUND,
        slow_consumer_timeout_s=SLOW_TIMEOUT_S,
    ) as stack:

        async def scenario() -> None:
            readers = [
                await ChatClient.open(stack.ws_url, rooms=ROOM, user_id=f"r{i}") for i in range(READERS)
            ]
            senders = [
                await ChatClient.open(stack.ws_url, rooms=ROOM, user_id=f"s{i}") for i in range(SENDERS)
            ]
            for client in (*readers, *senders):
                await client.connection_id()

            async def burst(phase: str) -> dict[str, int]:
                """Each sender sends its messages (next after the ack); then count what each member got."""

                async def send_all(s: int, sender: ChatClient) -> None:
                    for k in range(PER_SENDER):
                        mark = len(sender.frames)
                        cid = f"{phase}-{s}-{k}"
                        await sender.send(action="sendMessage", room=ROOM, message=cid, client_msg_id=cid)
                        answer = await sender.wait_for(
                            answer_to(cid),
                            timeout_s=30,
                            start=mark,
                        )
                        assert answer["action"] == "ack", answer
                        await asyncio.sleep(0.2)  # under 5 messages/s per connection

                await asyncio.gather(*(send_all(s, c) for s, c in enumerate(senders)))
                expected = SENDERS * PER_SENDER

                def count(client: ChatClient) -> int:
                    return sum(1 for m in client.of("message") if m["client_msg_id"].startswith(f"{phase}-"))

                deadline = time.monotonic() + 30  # the same bound for both phases
                while time.monotonic() < deadline and any(count(c) < expected for c in (*readers, *senders)):
                    await asyncio.sleep(0.05)
                return {f"member{i}": count(c) for i, c in enumerate((*readers, *senders))}

            control = await burst("control")
            everyone = SENDERS * PER_SENDER
            assert set(control.values()) == {everyone}, control

            sloth = await asyncio.to_thread(open_sloth, stack.host, stack.port)
            try:
                _accepted, throttled, most_queued = await asyncio.to_thread(flood, stack, sloth)
                assert throttled >= 1, "a full client buffer answers 429 LimitExceededException"
                assert most_queued <= MAX_OUTBOUND, f"the gateway queued {most_queued} bytes for it"

                with_sloth = await burst("sloth")
                assert with_sloth == control, "the room got exactly as much as without the slow consumer"

                await eventually_async(
                    lambda: sloth.connection_id not in stack.gateway.connections,
                    timeout_s=SLOW_TIMEOUT_S + 15,
                    what="the slow consumer is disconnected",
                )
                assert stack.stats()["connections"]["slow_consumers_disconnected"] == 1
                with pytest.raises(ClientError) as gone:
                    management_client(stack.http_url).get_connection(ConnectionId=sloth.connection_id)
                assert gone.value.response["Error"]["Code"] == "GoneException"
                await eventually_async(
                    lambda: (
                        sloth.connection_id not in connection_ids(ddb)
                        and sloth.connection_id not in member_ids(ddb, ROOM)
                    ),
                    timeout_s=15,
                    what="its records are removed",
                )
            finally:
                sloth.sock.close()
            for client in (*readers, *senders):
                assert client.of("error") == [] and client.gateway_errors() == [] and not client.closed
            await asyncio.gather(*(c.close() for c in (*readers, *senders)))

        run_clients(scenario)
        assert set(lambda_failures(stack.stats()).values()) == {0}, "no handler failed"
