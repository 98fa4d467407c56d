"""The load tool through the whole local stack (gateway, Lambda workers, DynamoDB Local; auth none)."""

from __future__ import annotations

import asyncio

import pytest

from serverless_app.bench.load import BenchConfig, run_bench, secret_tokens
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.server import run_local_stack

pytestmark = pytest.mark.slow


def test_every_member_gets_every_message_once_through_the_local_stack(dynamodb_local: DynamoDBLocal) -> None:
    """20 clients in 2 rooms, 20 messages: 200 deliveries, none lost or duplicated, no error frames.

    Each room is one user's connections and is seeded with one client first: joins then announce
    nothing to connections still inside ``$connect`` (whose 410 would prune them; see
    benchmarks/analysis.md), so this checks the fan-out path itself."""

    async def scenario() -> None:
        async with run_local_stack(
            port=0, dynamodb_endpoint=dynamodb_local.endpoint_url, reload=False, static_dir=None
        ) as stack:
            config = BenchConfig(
                url=stack.ws_url,
                clients=20,
                rooms=2,
                senders=4,
                messages=20,
                rate=20.0,
                users_per_room=1,
                seed_rooms=True,
                progress=False,
            )
            result = await run_bench(config)
            stats = stack.stats()
        acc = result.accounting
        assert result.connected == 20
        assert (acc.sent, acc.expected, acc.delivered) == (20, 200, 200)
        assert (acc.lost, acc.duplicated, acc.unexpected, acc.refused) == (0, 0, 0, 0)
        assert dict(result.errors) == {}
        assert stats["lambda"]["websocket-default"]["invocations"] >= 20

    asyncio.run(scenario())


@pytest.mark.parametrize("auth_mode", ["none", "token"])
def test_distinct_users_joining_while_others_connect_lose_nothing(
    dynamodb_local: DynamoDBLocal, auth_mode: str
) -> None:
    """20 distinct users connect at once into 2 rooms (presence fans out while others are still in
    $connect), 4 send 20 messages: nothing lost or duplicated; in token mode the tool mints tokens."""
    secret = "b" * 64

    async def scenario() -> None:
        async with run_local_stack(
            port=0,
            dynamodb_endpoint=dynamodb_local.endpoint_url,
            reload=False,
            static_dir=None,
            auth_mode=auth_mode,
            token_secret=secret if auth_mode == "token" else None,  # type: ignore[arg-type]
        ) as stack:
            config = BenchConfig(
                url=stack.ws_url, clients=20, rooms=2, senders=4, messages=20, rate=20.0, progress=False
            )
            tokens = secret_tokens(secret) if auth_mode == "token" else None
            result = await run_bench(config, tokens=tokens)
        acc = result.accounting
        assert result.connected == 20
        assert (acc.sent, acc.expected, acc.delivered) == (20, 200, 200)
        assert (acc.lost, acc.duplicated, acc.unexpected, acc.refused) == (0, 0, 0, 0)

    asyncio.run(scenario())
