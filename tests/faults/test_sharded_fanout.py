"""Large rooms through the local runtime: a room above the shard size is split into shards handed to
``websocket-fanout`` by asynchronous invocation; a shard that fails mid-way is retried (once, as its
EventInvokeConfig says) and re-posts only its own range; the stack's ``@connections`` budget, shared
by every container, keeps concurrent fan-outs under a low account quota without losing any; and
posts throttled past their retries are delivered in later rounds.

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
from serverless_app.local.throttle import TokenBucket
from tests.faults.fixtures.handlers import FAIL_AFTER_ENV, MARKS_ENV
from tests.support.chat_client import ChatClient, connect_many, run_clients
from tests.support.stacks import run_stack
from tests.support.waiting import eventually_async

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
    websocket-fanout ran, per message, one planning shard and the three ranges it launched."""
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, function_environment=ENVIRONMENT) as stack:

        async def scenario() -> None:
            clients, sent = await fill_and_send(stack, 3)
            for client in clients:
                await client.eventually_count("message", 3, timeout_s=30)
            await asyncio.sleep(1.0)  # a duplicate would arrive by now
            assert all(counts == Counter({m: 1 for m in sent}) for counts in copies(clients))
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            assert fanout["invocations"] == 3 * (1 + 3) and fanout["errors"] == 0

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
            await eventually_async(
                lambda: stack.runtime.async_retries == 3, timeout_s=30, what="three retries"
            )
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            await eventually_async(
                lambda: stack.stats()["lambda"][FANOUT_FUNCTION.name]["invocations"] == 7,
                timeout_s=30,
                what="one planning shard, three failed ranges and three retries",
            )
            await asyncio.sleep(1.0)
            fanout = stack.stats()["lambda"][FANOUT_FUNCTION.name]
            assert fanout["errors"] == 3
            counts = sorted(c[message_id] for c in copies(clients))
            assert counts == [1] * (MEMBERS - 3 * fail_after) + [2] * (3 * fail_after)

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_the_budget_is_shared_by_every_container_and_keeps_concurrent_fanouts_under_the_quota(
    dynamodb_local: Any,
) -> None:
    """The local @connections quota at 40 posts/s (burst 10) and the stack's budget at 20/s: three
    senders in three rooms fan out at once, in different containers (each alone would be paced to
    20/s, together 60/s). They take about as long as the shared budget says, every member gets each
    message exactly once, and the gateway answered no 429."""
    environment = ENVIRONMENT | {EnvVar.FANOUT_RATE_PER_S: "20", EnvVar.FANOUT_SHARD_SIZE: "1000"}
    limits = dataclasses.replace(LIMITS, connections_rate_limit=40.0, connections_burst_limit=10)
    rooms = [f"{ROOM}-paced-{index}" for index in range(3)]
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        function_environment=environment,
        limits=limits,
        max_concurrency=4,
    ) as stack:

        async def scenario() -> None:
            groups = [
                await connect_many(stack.ws_url, 10, parallel=10, rooms=room, user_id=f"crowd-{index}")
                for index, room in enumerate(rooms)
            ]
            clients = [client for group in groups for client in group]
            await asyncio.gather(*(client.connection_id() for client in clients))
            await asyncio.sleep(1.0)  # the welcomes are posted: the quota's bucket is full again
            throttled = stack.stats()["connections_api"]["posts"]["429"]
            started = time.monotonic()
            for index in range(2):  # each round: the three rooms' fan-outs at once
                await asyncio.gather(
                    *(
                        group[0].send(action="sendMessage", room=room, message=f"paced {index}")
                        for group, room in zip(groups, rooms, strict=True)
                    )
                )
                for client in clients:
                    await client.eventually_count("message", index + 1, timeout_s=60)
            elapsed = time.monotonic() - started
            assert elapsed >= (2 * 30 - 2 * 4) / 20 * 0.9, elapsed  # 60 posts at 20/s, small bursts
            await asyncio.sleep(1.0)
            assert all(sorted(c.values()) == [1, 1] for c in copies(clients))
            assert stack.stats()["connections_api"]["posts"]["429"] == throttled
            busy = stack.stats()["lambda"]["websocket-default"]
            assert busy["invocations"] >= 6

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_posts_still_throttled_after_their_retries_are_delivered_in_a_later_round(
    dynamodb_local: Any,
) -> None:
    """No budget to speak of (10,000/s) and a local quota of 10 posts/s (burst 5): a message to 30
    members is throttled far past the client's own retries, yet every member gets it exactly once,
    from the later rounds."""
    environment = ENVIRONMENT | {EnvVar.FANOUT_RATE_PER_S: "10000", EnvVar.FANOUT_SHARD_SIZE: "1000"}
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, function_environment=environment) as stack:

        async def scenario() -> None:
            room = f"{ROOM}-throttled"
            clients = await connect_many(stack.ws_url, MEMBERS, parallel=10, rooms=room, user_id="crowd")
            await asyncio.gather(*(client.connection_id() for client in clients))
            stack.gateway.connections.quota = TokenBucket(10.0, 5)
            await clients[0].send(action="sendMessage", room=room, message="through the 429s")
            for client in clients:
                await client.eventually_count("message", 1, timeout_s=60)
            await asyncio.sleep(1.0)
            assert stack.stats()["connections_api"]["posts"]["429"] > 0
            assert all(sorted(c.values()) == [1] for c in copies(clients))

        run_clients(scenario)


@pytest.mark.timeout(180)
def test_the_local_quota_answers_429_past_the_account_rate(dynamodb_local: Any) -> None:
    """Unpaced posts past the local account quota (5/s, burst 5) get 429 LimitExceededException."""
    limits = dataclasses.replace(LIMITS, connections_rate_limit=5.0, connections_burst_limit=5)
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, limits=limits) as stack:
        client = stack.management_client()
        answers: Counter[str] = Counter()
        for _ in range(20):
            try:
                client.post_to_connection(ConnectionId="nobody", Data=b"x")
            except client.exceptions.GoneException:
                answers["410"] += 1
            except client.exceptions.LimitExceededException:
                answers["429"] += 1
        assert answers["410"] >= 5 and answers["429"] >= 10
