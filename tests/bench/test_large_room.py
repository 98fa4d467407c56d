"""The simulated large room (``benchmarks.large_room``): member records in DynamoDB Local, a 20 ms
``@connections`` sink, the real fan-out in processes of its own — small enough for ``make test``."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from benchmarks.large_room import measure_large_rooms
from benchmarks.sink import Sink
from serverless_app.local.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.slow


def test_every_member_of_a_sharded_room_is_posted_once(dynamodb_local: DynamoDBLocal) -> None:
    """120 members, shards of 50 (the sender's range and 2 shards, each in a process of its own):
    every member gets exactly one post; first and last post and peak memory are measured."""

    async def scenario() -> None:
        results = await measure_large_rooms(
            quick=True,
            console=Console(quiet=True),
            sizes=(120,),
            shard_size=50,
            dynamodb_endpoint=dynamodb_local.endpoint_url,
            modes=(True,),
        )
        (run,) = results.runs
        assert run.errors == []
        assert (run.posts, run.distinct, run.lost, run.duplicated) == (120, 120, 0, 0)
        assert 0 < run.first_post_ms <= run.last_post_ms
        assert run.sender_rss_peak >= run.sender_rss_base > 0
        assert run.shards == 2
        assert run.first_launch_ms is not None
        assert any("every member posted exactly once" in row[0] and row[2] for row in results.targets())
        assert "| 120 | yes |" in "\n".join(results.markdown())

    asyncio.run(scenario())


def test_the_sink_answers_after_its_latency() -> None:
    """POST /prod/@connections/{id} answers 200 after the fixed latency and is recorded."""
    import aiohttp

    async def scenario() -> None:
        sink = Sink(latency_s=0.05)
        await sink.start()
        try:
            async with aiohttp.ClientSession() as http:
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with http.post(f"{sink.url}/@connections/abc%3D", data=b"{}") as response:
                    assert response.status == 200
                assert loop.time() - started >= 0.05
        finally:
            await sink.stop()
        assert [cid for _, cid in sink.posts] == ["abc="]

    asyncio.run(scenario())
