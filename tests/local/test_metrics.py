"""The handlers' EMF metrics, locally: the runtime totals the EMF lines its workers print, per function and
overall, serves them in ``GET /_local/stats`` under ``metrics`` and ``wschat stats`` prints them; malformed
lines are counted and change nothing else."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

import pytest
from click.testing import CliRunner

from serverless_app.cli import main
from serverless_app.definitions import DEFAULT_FUNCTION, FunctionDefinition
from serverless_app.local.lambda_runtime import LambdaRuntime
from serverless_app.local.stats import EmfMetrics
from tests.local.fixtures.emf_handlers import MALFORMED
from tests.support.chat_client import SyncChatClient, unique
from tests.support.waiting import eventually

EMIT = FunctionDefinition("emit", "tests.local.fixtures.emf_handlers.emit", 128, 5, "prints EMF lines")


def _stats(stack: Any) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{stack.http_url}/_local/stats", timeout=10) as response:
        document: dict[str, Any] = json.load(response)
    return document


def _sum(stats: dict[str, Any], metric: str, function: str | None = None) -> float:
    metrics = stats["metrics"]
    values = metrics["totals"] if function is None else metrics["functions"].get(function, {})
    return float(values.get(metric, {}).get("sum", 0))


def test_a_message_and_a_refused_frame_show_in_local_stats(local_stack: Any) -> None:
    """A message to a room of two members adds at least 2 to DeliveriesSucceeded (in total and for
    websocket-default, with FanoutDuration in milliseconds and its percentiles); a frame that is not
    JSON adds 1 to FramesRefused."""
    room = unique("metrics")
    alice = SyncChatClient(local_stack.ws_url, user_id=unique("alice"), rooms=room)
    bob = SyncChatClient(local_stack.ws_url, user_id=unique("bob"), rooms=room)
    try:
        for client in (alice, bob):
            client.wait_action("welcome")
        alice.drain()
        before = _stats(local_stack)

        alice.send(action="sendMessage", room=room, message="counted")
        bob.wait_action("message", room=room, message="counted")
        wanted = _sum(before, "DeliveriesSucceeded", DEFAULT_FUNCTION.name) + 2

        def delivered() -> dict[str, Any] | None:
            stats = _stats(local_stack)
            return stats if _sum(stats, "DeliveriesSucceeded", DEFAULT_FUNCTION.name) >= wanted else None

        after = eventually(delivered)
        assert after is not None
        assert _sum(after, "DeliveriesSucceeded") >= _sum(before, "DeliveriesSucceeded") + 2
        duration = after["metrics"]["functions"][DEFAULT_FUNCTION.name]["FanoutDuration"]
        assert duration["unit"] == "Milliseconds"
        assert duration["count"] >= 1
        assert 0 <= duration["p50"] <= duration["p95"] <= duration["max"]
        assert after["metrics"]["malformed"] == before["metrics"]["malformed"]

        alice.send_raw("this is not JSON")
        alice.wait_action("error")
        eventually(lambda: _sum(_stats(local_stack), "FramesRefused") >= _sum(before, "FramesRefused") + 1)
    finally:
        alice.close()
        bob.close()


def test_wschat_stats_prints_the_metrics(local_stack: Any) -> None:
    """`wschat stats --url …` prints the totals and each function's metrics; --json the whole document."""
    eventually(lambda: _sum(_stats(local_stack), "DeliveriesSucceeded") > 0 or _send_one(local_stack))
    result = CliRunner().invoke(main, ["stats", "--url", local_stack.http_url])
    assert result.exit_code == 0, result.output
    assert "all functions" in result.output
    assert DEFAULT_FUNCTION.name in result.output
    assert "DeliveriesSucceeded" in result.output

    as_json = CliRunner().invoke(main, ["stats", "--url", local_stack.http_url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert "DeliveriesSucceeded" in json.loads(as_json.output)["metrics"]["totals"]


def _send_one(stack: Any) -> bool:
    room = unique("metrics")
    client = SyncChatClient(stack.ws_url, user_id=unique("solo"), rooms=room)
    try:
        client.wait_action("welcome")
        client.send(action="sendMessage", room=room, message="one")
        client.wait_action("message", message="one")
    finally:
        client.close()
    return False


def test_wschat_stats_without_a_stack_says_how_to_start_one() -> None:
    """Nothing listening: a one-line error naming `wschat serve`, exit status 1."""
    result = CliRunner().invoke(main, ["stats", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "wschat serve" in result.output


def test_malformed_emf_lines_are_counted_and_break_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A worker printing broken EMF lines still answers; each broken line is counted as malformed and
    still logged; its good record is totalled (a list value counts each number)."""
    caplog.set_level(logging.INFO, logger="serverless_app.local")

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        runtime = LambdaRuntime(functions=[EMIT], environments={}, reload=False)
        await runtime.start()
        try:
            results = [await runtime.invoke("emit", {}) for _ in range(2)]
            for _ in range(200):  # stderr is forwarded asynchronously
                if runtime.metrics.records == 2:
                    break
                await asyncio.sleep(0.02)
            return [result.payload for result in results], runtime.metrics.snapshot()
        finally:
            await runtime.stop()

    payloads, metrics = asyncio.run(scenario())
    assert payloads == [{"answer": "intact"}] * 2
    assert metrics["records"] == 2
    assert metrics["malformed"] == 2 * len(MALFORMED)
    assert metrics["functions"]["emit"]["Deliveries"] == {"unit": "Count", "sum": 6, "count": 2, "max": 3}
    latency = metrics["totals"]["Latency"]
    assert latency == {"unit": "Milliseconds", "sum": 80, "count": 4, "max": 30, "p50": 30, "p95": 30}
    assert any(
        message.startswith('[emit] {"_aws": {"CloudWatchMetrics": "not') for message in caplog.messages
    )


def test_emf_metrics_ignore_other_lines_and_reset() -> None:
    """Plain text and Powertools' JSON log lines are not metrics; reset forgets everything."""
    metrics = EmfMetrics()
    assert not metrics.observe("f", "hello")
    assert not metrics.observe("f", '{"level": "INFO", "message": "connected"}')
    assert metrics.observe(
        "f", '{"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "X", "Unit": "Count"}]}]}, "X": 1}'
    )
    assert not metrics.observe(
        "f", '{"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "X"}]}]}, "X": true}'
    )
    snapshot = metrics.snapshot()
    assert (snapshot["records"], snapshot["malformed"]) == (1, 1)
    assert snapshot["totals"]["X"] == {"unit": "Count", "sum": 1, "count": 1, "max": 1}
    metrics.reset()
    assert metrics.snapshot()["totals"] == {}
