"""Fault: ``wschat serve`` is stopped and started again on its persisted data.

The same ``run_local_stack`` that ``wschat serve`` runs, with DynamoDB Local persisting under a
data directory (not in memory) on a fixed port, is stopped and started again. The history must be
intact, the clean stop must have left no connection record behind (every connection got its
``$disconnect``), and new connections and sends must work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serverless_app.local.dynamodb_local import free_port
from serverless_app.local.dynamodb_tables import dynamodb_client
from tests.support.chat_client import ChatClient, history, run_clients
from tests.support.stacks import run_stack
from tests.support.tables import connection_ids

ROOM = "fault-serve"
MESSAGES = 12


async def send_acked(client: ChatClient, client_msg_id: str) -> dict[str, Any]:
    mark = len(client.frames)
    await client.send(
        action="sendMessage", room=ROOM, message=f"text {client_msg_id}", client_msg_id=client_msg_id
    )
    answer = await client.wait_for(
        lambda f: f.get("client_msg_id") == client_msg_id and f["action"] in ("ack", "error"),
        timeout_s=30,
        start=mark,
    )
    assert answer["action"] == "ack", answer
    return answer


@pytest.mark.timeout(180)
def test_serve_restarted_on_persisted_data_keeps_the_history_and_serves_again(tmp_path: Path) -> None:
    """Everything acknowledged before the stop is in the history after the start; new sends work."""
    options: dict[str, Any] = {
        "dynamodb_endpoint": None,  # a DynamoDB Local of its own, on disk, restarted with the stack
        "in_memory": False,
        "data_dir": tmp_path / "dynamodb",
        "dynamodb_port": free_port(),
    }
    acked: dict[str, str] = {}

    with run_stack(**options) as stack:

        async def before() -> None:
            writer = await ChatClient.open(stack.ws_url, rooms=ROOM, user_id="writer")
            await ChatClient.open(stack.ws_url, rooms=ROOM, user_id="lurker")  # left open across the stop
            for k in range(MESSAGES):
                acked[f"before-{k}"] = (await send_acked(writer, f"before-{k}"))["message_id"]

        run_clients(before)
    # stopped: every connection was closed by the gateway and got its $disconnect

    with run_stack(**options) as stack:
        assert connection_ids(dynamodb_client(stack.dynamodb_endpoint)) == set(), (
            "no record outlived the stop"
        )

        async def after() -> None:
            reader = await ChatClient.open(stack.ws_url, rooms=ROOM, user_id="reader")
            await reader.connection_id()
            stored = await history(reader, ROOM)
            assert [m["client_msg_id"] for m in stored] == list(acked), "the whole history, in order"
            assert [m["message_id"] for m in stored] == list(acked.values())
            fresh = await send_acked(reader, "after-0")
            await reader.wait_for(
                lambda f: f.get("action") == "message" and f["client_msg_id"] == "after-0", timeout_s=10
            )
            assert fresh["message_id"] not in acked.values()
            assert len(await history(reader, ROOM)) == MESSAGES + 1

        run_clients(after)
