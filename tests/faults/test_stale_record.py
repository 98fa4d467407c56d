"""Fault: a connection record with no socket behind it (API Gateway missed its ``$disconnect``).

``$disconnect`` is best effort on AWS. A record it missed must be pruned by the next fan-out to
its room (the ``@connections`` POST answers 410 Gone), and nobody else may notice anything.
The record is minutes old: a 410 for a connection younger than the integration timeout is left
alone on purpose (API Gateway also answers 410 while ``$connect`` is still running).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from serverless_app.definitions import CONNECTION_TTL_SECONDS, CONNECTIONS_TABLE, ROOMS_TABLE
from tests.support.chat_client import ChatClient, run_clients, settle
from tests.support.stacks import lambda_failures
from tests.support.tables import connection_ids, member_ids
from tests.support.waiting import eventually_async

ROOM = "fault-stale"
STALE_ID = "c3RhbGUtZmFrZQ="  # shaped like API Gateway's ids, '=' included (URL-encoded on the wire)
STALE_USER = "ghost"


def insert_stale_connection(ddb: Any, connection_id: str) -> None:
    """What ``$connect`` would have written for a connection whose ``$disconnect`` never came."""
    now = int(time.time())
    connected_at_ms = (now - 300) * 1000  # five minutes ago
    ttl = {"N": str(now + CONNECTION_TTL_SECONDS)}
    ddb.put_item(
        TableName=CONNECTIONS_TABLE.name,
        Item={
            "connection_id": {"S": connection_id},
            "user_id": {"S": STALE_USER},
            "verified": {"BOOL": False},
            "connected_at": {"N": str(connected_at_ms)},
            "ttl": ttl,
            "rooms": {"SS": [ROOM]},
        },
    )
    ddb.put_item(
        TableName=ROOMS_TABLE.name,
        Item={
            "room": {"S": ROOM},
            "sk": {"S": f"member#{connection_id}"},
            "connection_id": {"S": connection_id},
            "user_id": {"S": STALE_USER},
            "ttl": ttl,
        },
    )
    ddb.put_item(
        TableName=ROOMS_TABLE.name,
        Item={"room": {"S": ROOM}, "sk": {"S": f"user#{STALE_USER}"}, "user_id": {"S": STALE_USER},
              "connections": {"N": "1"}, "ttl": ttl},
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_a_stale_record_is_pruned_by_the_next_fan_out_and_nobody_else_notices(
    local_stack: Any, ddb: Any
) -> None:
    """The next message to the room prunes the ghost (410), everyone real gets it exactly once."""
    failures_before = lambda_failures(local_stack.stats())
    gone_before = local_stack.stats()["connections_api"]["posts"]["410"]

    async def scenario() -> None:
        alice = await ChatClient.open(local_stack.ws_url, rooms=ROOM, user_id="alice")
        bob = await ChatClient.open(local_stack.ws_url, rooms=ROOM, user_id="bob")
        live = {await alice.connection_id(), await bob.connection_id()}
        insert_stale_connection(ddb, STALE_ID)
        assert member_ids(ddb, ROOM) == live | {STALE_ID}

        await alice.send(action="sendMessage", room=ROOM, message="anyone there?", client_msg_id="m1")
        ack = await alice.wait_for(lambda f: f.get("action") == "ack", timeout_s=15)
        assert ack["client_msg_id"] == "m1" and not ack["duplicate"]
        for client in (alice, bob):
            await client.wait_for(lambda f: f.get("client_msg_id") == "m1", timeout_s=15)

        await eventually_async(
            lambda: STALE_ID not in connection_ids(ddb) and STALE_ID not in member_ids(ddb, ROOM),
            timeout_s=10,
            what="the stale record and its membership are pruned",
        )
        assert member_ids(ddb, ROOM) == live, "only the stale membership was removed"
        assert live <= connection_ids(ddb), "the live connections' records are untouched"

        # Pruning announced the ghost's departure; nothing else reached anyone.
        await bob.wait_for(
            lambda f: f.get("action") == "presence" and f["user_id"] == STALE_USER and f["event"] == "leave",
            timeout_s=10,
        )
        await alice.send(action="sendMessage", room=ROOM, message="still here", client_msg_id="m2")
        for client in (alice, bob):
            await client.wait_for(lambda f: f.get("client_msg_id") == "m2", timeout_s=15)
        await settle(local_stack, alice, bob)  # a duplicate, if any, has arrived by now
        for client in (alice, bob):
            assert [m["client_msg_id"] for m in client.of("message")] == ["m1", "m2"]
            assert client.of("error") == [] and client.gateway_errors() == []
            assert not client.closed
        await asyncio.gather(alice.close(), bob.close())

    run_clients(scenario)
    stats = local_stack.stats()
    assert stats["connections_api"]["posts"]["410"] > gone_before, "the ghost was found by a 410"
    assert lambda_failures(stats) == failures_before, "no handler failed"
