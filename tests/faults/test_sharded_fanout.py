"""Large rooms through the local runtime: a room above the shard size is split into shards handed to
``websocket-fanout`` by asynchronous invocation; a shard that fails mid-way is retried (once, as its
EventInvokeConfig says) and re-posts only its own range; the ``@connections`` budget paces posts
under a low account quota without losing any.

The shard size is lowered through the functions' environment (``FANOUT_SHARD_SIZE``), so a room of
a few dozen real WebSocket clients is "large". The clients share one user, so filling the room
makes no presence storm (one user's connections are one presence).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from serverless_app.definitions import FANOUT_FUNCTION, LIMITS, EnvVar
from tests.faults.fixtures.handlers import FAIL_AFTER_ENV, MARKS_ENV
from tests.faults.harness import ChatClient, connect_many, eventually, run_clients, run_stack

ROOM = f"fault-big-{uuid.uuid4().hex[:8]}"
"""Unique per run; each test below fills a room of its own (the session shares DynamoDB Local)."""
MEMBERS = 30
SHARD = 8
"""30 members in shards of 8: the sender posts 8, three shards post 8, 8 and 6."""
ENVIRONMENT = {
    EnvVar.MAX_CONNECTIONS_PER_USER: "1000",
    EnvVar.FANOUT_SHARD_SIZE: str(SHARD),
    EnvVar.FANOUT_PAGE_SIZE: "3",
}


def copies(clients: list[ChatClient]) -> list[Counter[str]]:
    """Per client: how many times each message id arrived."""
    return [Counter(str(f["message_id"]) for f in client.of("message")) for client in clients]


async def fill_and_send(stack: Any, messages: int) -> tuple[list[ChatClient], list[str]]:
    room = f"{ROOM}-{uuid.uuid4().hex[:6]}"
    clients = await connect_many(stack.ws_url, MEMBERS, parallel=10, rooms=room, user_id="crowd")
    await asyncio.gather(*(client.connection_id() for client in clients))
    sender = clients[0]
    sent: list[str] = []
    for index in range(messages):
        mark = len(sender.frames)
        await sender.send(
            action="sendMessage", room=room, message=f"hello {index}", client_msg_id=f"m{index}"
        )
        ack = await sender.wait_for(lambda f: f.get("action") == "ack", timeout_s=30, start=mark)
        sent.append(str(ack["message_id"]))
    return clients, sent


@pytest.mark.timeout(180)
def test_a_room_above_the_shard_size_gets_every_message_exactly_once(dynamodb_local: Any) -> None:
    """30 members, shards of 8, three messages: every member gets each message exactly once, and
    websocket-fanout ran three shards per message."""
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, function_environment=ENVIRONMENT) as stack:

        async def scenario() -> None:
            clients, sent = await fill_and_send(stack, 3)
            for client in clients:
                await client.eventually_count("message", 3, timeout_s=30)
            await asyncio.sleep(1.0)  # a duplicate would arrive by now
            assert all(counts == Counter({m: 1 for m in sent}) for counts in copies(clients))
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            assert fanout["invocations"] == 3 * 3 and fanout["errors"] == 0

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_a_shard_that_fails_midway_is_retried_and_duplicates_only_what_it_had_posted(
    dynamodb_local: Any, tmp_path: Path
) -> None:
    """Every shard's first attempt fails after 3 posts; Lambda retries it once. Every member gets the
    message; the only copies are the 3 posts of each failed attempt (at most twice per member,
    the documented bound), none outside the failed shards' ranges."""
    fail_after = 3
    environment = ENVIRONMENT | {FAIL_AFTER_ENV: str(fail_after), MARKS_ENV: str(tmp_path)}
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        function_environment=environment,
        handler_overrides={FANOUT_FUNCTION.name: "tests.faults.fixtures.handlers.failing_fanout"},
        async_retry_delay_s=0.3,
    ) as stack:

        async def scenario() -> None:
            clients, (message_id,) = await fill_and_send(stack, 1)
            for client in clients:
                await client.eventually_count("message", 1, timeout_s=30)
            await eventually(lambda: stack.runtime.async_retries == 3, timeout_s=30, what="three retries")
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            await eventually(
                lambda: stack.stats()["lambda"][FANOUT_FUNCTION.name]["invocations"] == 6,
                timeout_s=30,
                what="three failed shards and three retries",
            )
            await asyncio.sleep(1.0)
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            assert fanout["errors"] == 3
            counts = sorted(c[message_id] for c in copies(clients))
            assert counts == [1] * (MEMBERS - 3 * fail_after) + [2] * (3 * fail_after)

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_a_low_account_quota_paces_the_fanout_and_loses_nothing(dynamodb_local: Any) -> None:
    """The local @connections quota at 40 posts/s (burst 10) and the container budget at 15/s: three
    messages to 30 members take about as long as the budget says, every member gets each exactly
    once, and the gateway answered no 429 (the budget kept the fan-out under the quota)."""
    environment = ENVIRONMENT | {EnvVar.FANOUT_RATE_PER_S: "15", EnvVar.FANOUT_SHARD_SIZE: "1000"}
    limits = dataclasses.replace(LIMITS, connections_rate_limit=40.0, connections_burst_limit=10)
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        function_environment=environment,
        limits=limits,
        max_concurrency=2,  # 2 containers per function x 15/s stay under the 40/s quota
    ) as stack:

        async def scenario() -> None:
            clients = await connect_many(
                stack.ws_url, MEMBERS, parallel=10, rooms=f"{ROOM}-paced", user_id="crowd"
            )
            await asyncio.gather(*(client.connection_id() for client in clients))
            await asyncio.sleep(1.0)  # the welcomes are posted: the quota's bucket is full again
            throttled = stack.stats()["connections_api"]["posts"]["429"]
            started = time.monotonic()
            for index in range(3):  # one fan-out at a time: one container's budget
                await clients[0].send(action="sendMessage", room=f"{ROOM}-paced", message=f"paced {index}")
                for client in clients:
                    await client.eventually_count("message", index + 1, timeout_s=60)
            elapsed = time.monotonic() - started
            assert elapsed >= (3 * MEMBERS - 3 * 2) / 15 * 0.9, elapsed  # 90 posts at 15/s, small bursts
            await asyncio.sleep(1.0)
            assert all(sorted(c.values()) == [1, 1, 1] for c in copies(clients))
            assert stack.stats()["connections_api"]["posts"]["429"] == throttled

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_the_local_quota_answers_429_past_the_account_rate(dynamodb_local: Any) -> None:
    """Unpaced posts past the local account quota (5/s, burst 5) get 429 LimitExceededException."""
    limits = dataclasses.replace(LIMITS, connections_rate_limit=5.0, connections_burst_limit=5)
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, limits=limits) as stack:
        client = stack.management_client()
        answers = Counter()
        for _ in range(20):
            try:
                client.post_to_connection(ConnectionId="nobody", Data=b"x")
            except client.exceptions.GoneException:
                answers["410"] += 1
            except client.exceptions.LimitExceededException:
                answers["429"] += 1
        assert answers["410"] >= 5 and answers["429"] >= 10
