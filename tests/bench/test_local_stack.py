"""The load tool through the whole local stack (gateway, Lambda workers, DynamoDB Local).

Two workers per function (not 8): 20 clients need no more, and each cold worker costs a second of
CPU on start-up, which is what made these tests slow."""

from __future__ import annotations

import asyncio

import pytest

from serverless_app.bench.config import BenchConfig
from serverless_app.bench.load import run_bench
from serverless_app.bench.result import BenchResult
from serverless_app.bench.tokens import secret_tokens
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.server import run_local_stack

pytestmark = pytest.mark.slow


def _exactly_once(result: BenchResult) -> None:
    acc = result.accounting
    assert result.connected == 20
    assert (acc.sent, acc.expected, acc.delivered) == (20, 200, 200)
    assert (acc.lost, acc.duplicated, acc.unexpected, acc.refused) == (0, 0, 0, 0)
    assert dict(result.errors) == {}


def test_every_member_gets_every_message_once_through_the_local_stack(dynamodb_local: DynamoDBLocal) -> None:
    """One stack (auth none), two scenes, each 20 clients in 2 rooms and 20 messages: 200
    deliveries, none lost or duplicated, no error frames.

    1. Each room is 2 users × 5 tabs (a user may hold 10 connections), seeded with one client
       first: joins then announce nothing to connections still inside ``$connect`` (whose 410 would
       prune them; see benchmarks/analysis.md), so this checks the fan-out path itself.
    2. 20 distinct users connect at once (presence fans out while others are still in
       ``$connect``), 4 of them send."""

    async def scenario() -> None:
        async with run_local_stack(
            port=0,
            dynamodb_endpoint=dynamodb_local.endpoint_url,
            reload=False,
            static_dir=None,
            max_concurrency=2,
        ) as stack:
            tabs = BenchConfig(
                url=stack.ws_url,
                clients=20,
                rooms=2,
                senders=4,
                messages=20,
                rate=20.0,
                users_per_room=2,
                seed_rooms=True,
                user_prefix="tabs",
                progress=False,
            )
            _exactly_once(await run_bench(tabs))
            stats = stack.stats()
            assert stats["lambda"]["websocket-default"]["invocations"] >= 20
            distinct = BenchConfig(
                url=stack.ws_url,
                clients=20,
                rooms=2,
                senders=4,
                messages=20,
                rate=20.0,
                user_prefix="people",
                progress=False,
            )
            _exactly_once(await run_bench(distinct))

    asyncio.run(scenario())


def test_in_token_mode_the_tool_mints_tokens_and_loses_nothing(dynamodb_local: DynamoDBLocal) -> None:
    """Token mode: 20 distinct users connect at once with tokens the tool mints, 4 send 20
    messages: nothing lost or duplicated."""
    secret = "b" * 64

    async def scenario() -> None:
        async with run_local_stack(
            port=0,
            dynamodb_endpoint=dynamodb_local.endpoint_url,
            reload=False,
            static_dir=None,
            auth_mode="token",
            token_secret=secret,
            max_concurrency=2,
        ) as stack:
            config = BenchConfig(
                url=stack.ws_url, clients=20, rooms=2, senders=4, messages=20, rate=20.0, progress=False
            )
            _exactly_once(await run_bench(config, tokens=secret_tokens(secret)))

    asyncio.run(scenario())
