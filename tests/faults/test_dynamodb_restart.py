"""Fault: DynamoDB Local is killed (SIGKILL) in the middle of a stream of sends, then restarted.

A chat that cannot store must say so. While storage is down every send still gets an answer
within a bound — an ``ack`` only for a message that was stored, otherwise an error frame — and
the gateway keeps serving. After the restart (same port, same files) everything acknowledged is
in the history, sends work again, and retrying the refused sends with their ``client_msg_id``
leaves every message in the history exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from serverless_app.local.dynamodb_local import DynamoDBLocal, free_port, start_dynamodb_local
from serverless_app.local.dynamodb_tables import dynamodb_client
from tests.support.chat_client import ChatClient, history, run_clients
from tests.support.stacks import run_stack
from tests.support.waiting import eventually_async

ROOM = "fault-ddb"
SENDERS = 3
PACE_S = 0.25  # under the per-connection limit of 5 messages/s
ANSWER_WITHIN_S = 20.0
"""Every send is answered within this: botocore gives up on an unreachable endpoint after its
retries, and the integration timeout (29 s) is the gateway's own bound."""
STORAGE_ERRORS = {"storage_unavailable", "internal_error"}
GATEWAY_ERRORS = {"Internal server error", "Endpoint request timed out"}


class Sender:
    """One connection sending one message at a time, each answered before the next."""

    def __init__(self, client: ChatClient, name: str) -> None:
        self.client, self.name = client, name
        self.answers: dict[str, dict[str, Any]] = {}
        self.sent = 0

    async def send_one(self, client_msg_id: str | None = None) -> dict[str, Any]:
        if client_msg_id is None:
            client_msg_id = f"{self.name}-{self.sent}"
            self.sent += 1
        mark = len(self.client.frames)
        started = time.monotonic()
        await self.client.send(
            action="sendMessage", room=ROOM, message=f"text of {client_msg_id}", client_msg_id=client_msg_id
        )
        # Ours: an ack or error naming the id. API Gateway's: a frame with no action (one send in flight).
        answer = await self.client.wait_for(
            lambda f: f.get("client_msg_id") == client_msg_id or "connectionId" in f,
            timeout_s=ANSWER_WITHIN_S,
            start=mark,
        )
        assert time.monotonic() - started <= ANSWER_WITHIN_S
        if "connectionId" in answer:
            assert answer["message"] in GATEWAY_ERRORS, answer
        elif answer["action"] == "error":
            assert answer["code"] in STORAGE_ERRORS, answer
        else:
            assert answer["action"] == "ack", answer
        self.answers[client_msg_id] = answer
        return answer

    async def stream(self, until: asyncio.Event) -> None:
        while not until.is_set() and self.sent < 200:  # bounded either way
            await self.send_one()
            await asyncio.sleep(PACE_S)

    def acked(self) -> dict[str, dict[str, Any]]:
        return {cid: a for cid, a in self.answers.items() if a.get("action") == "ack"}

    def refused(self) -> list[str]:
        return [cid for cid, a in self.answers.items() if a.get("action") != "ack"]


def kill(local: DynamoDBLocal) -> None:
    local.process.send_signal(signal.SIGKILL)
    local.process.wait(timeout=10)


def port_has_listener(host: str, port: int) -> bool:
    """Whether something listens on ``port``. With ``SO_REUSEADDR``, as Java's own server socket binds,
    connections of a killed server lingering in TIME_WAIT do not count; a live listener does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def restart(port: int, data_dir: Path) -> DynamoDBLocal:
    """Start again on the same port and files, at once."""
    return start_dynamodb_local(port=port, data_dir=data_dir)


@pytest.mark.timeout(240)
def test_killing_dynamodb_mid_stream_never_loses_an_acknowledged_message(tmp_path: Path) -> None:
    """Every send is answered; no ack without storage; the gateway serves on; history survives."""
    data_dir = tmp_path / "dynamodb"
    port = free_port()
    local = start_dynamodb_local(port=port, data_dir=data_dir)
    try:
        with run_stack(dynamodb_endpoint=local.endpoint_url) as stack:

            async def scenario() -> None:
                nonlocal local
                observer = await ChatClient.open(stack.ws_url, rooms=ROOM, user_id="observer")
                clients = [
                    await ChatClient.open(stack.ws_url, rooms=ROOM, user_id=f"u{i}") for i in range(SENDERS)
                ]
                senders = [Sender(c, f"u{i}") for i, c in enumerate(clients)]
                for client in (observer, *clients):
                    await client.connection_id()

                stop = asyncio.Event()
                streams = asyncio.gather(*(s.stream(stop) for s in senders))
                await eventually_async(  # storage up
                    lambda: all(len(s.acked()) >= 2 for s in senders), timeout_s=30, what="sends acknowledged"
                )
                await asyncio.to_thread(kill, local)
                await eventually_async(  # storage down, sends go on
                    lambda: sum(len(s.refused()) for s in senders) >= SENDERS,
                    timeout_s=60,
                    what="sends refused during the outage",
                )

                # The gateway keeps serving: its health answers, and a new handshake is refused, not hung.
                with urllib.request.urlopen(f"{stack.http_url}/_local/health", timeout=5) as response:
                    assert response.status == 200
                with pytest.raises(InvalidStatus) as refused:
                    await ChatClient.open(
                        stack.ws_url, rooms=ROOM, user_id="latecomer", timeout_s=ANSWER_WITHIN_S
                    )
                assert refused.value.response.status_code == 500  # the $connect handler answers 500 itself

                local = await asyncio.to_thread(restart, port, data_dir)
                acked_before = [len(s.acked()) for s in senders]
                await eventually_async(  # storage back
                    lambda: all(
                        len(s.acked()) > before for s, before in zip(senders, acked_before, strict=True)
                    ),
                    timeout_s=60,
                    what="every sender acknowledged again after the restart",
                )
                stop.set()
                await streams

                refused_ids = {s.name: s.refused() for s in senders}
                assert any(refused_ids.values()), "the outage was noticed by at least one send"
                assert all(s.acked() for s in senders)
                for sender in senders:
                    assert not sender.client.closed, "the connection survived the outage"
                    last = await sender.send_one()
                    assert last["action"] == "ack", f"sends work again after the restart: {last}"

                stored = await history(observer, ROOM)
                stored_ids = Counter(m["client_msg_id"] for m in stored)
                for sender in senders:
                    for client_msg_id, ack in sender.acked().items():
                        assert stored_ids[client_msg_id] == 1, f"{client_msg_id} was acknowledged"
                        assert any(m["message_id"] == ack["message_id"] for m in stored)
                # Each acknowledged message also went out live, once, to the room.
                live = Counter(m["client_msg_id"] for m in observer.of("message"))
                for sender in senders:
                    for client_msg_id, ack in sender.acked().items():
                        if not ack["duplicate"]:
                            assert live[client_msg_id] == 1, client_msg_id

                # A client retries what was refused, with the same ids: now every message is stored once.
                for sender in senders:
                    for client_msg_id in sender.refused():
                        retried = await sender.send_one(client_msg_id)
                        assert retried["action"] == "ack", retried
                        await asyncio.sleep(PACE_S)
                stored_ids = Counter(m["client_msg_id"] for m in await history(observer, ROOM))
                every_id = {cid for s in senders for cid in s.answers}
                assert stored_ids == Counter(dict.fromkeys(every_id, 1))
                print(
                    "sends:", sum(s.sent for s in senders),
                    "refused during the outage:", sum(len(v) for v in refused_ids.values()),
                )  # fmt: skip
                await asyncio.gather(observer.close(), *(c.close() for c in clients))

            run_clients(scenario)
    finally:
        local.stop()


@pytest.mark.timeout(120)
def test_dynamodb_local_restarts_on_its_port_right_after_a_kill(tmp_path: Path) -> None:
    """A crashed DynamoDB Local can be started again on the same port at once (regression: the port
    probe used to bind without ``SO_REUSEADDR`` and refused the port for ~60 s of TIME_WAIT)."""
    port = free_port()
    local = start_dynamodb_local(port=port, data_dir=tmp_path)
    client = dynamodb_client(local.endpoint_url)
    client.list_tables()  # a kept-alive connection: the kill leaves it in TIME_WAIT on the server's port
    kill(local)
    assert not port_has_listener("127.0.0.1", port), "nothing listens any more"
    local = start_dynamodb_local(port=port, data_dir=tmp_path)
    local.stop()
