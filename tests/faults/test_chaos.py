"""``--chaos``: AWS's best-effort ``$disconnect`` and at-least-once async delivery, injected locally.

* ``disconnect-drop=1.0``: no ``$disconnect`` runs, so clients that close leave their connection
  records; the chat still works, and the next fan-out to the room gets 410 for the dead connections
  and prunes them (records and memberships) — cleanup does not rely on ``$disconnect``. (The chat
  ignores a 410 for a connection younger than 30 s, so the test ages the left-behind records.)
* ``async-retry=1``: every asynchronous invocation is delivered twice. ``websocket-welcome`` is not
  idempotent: a duplicated delivery posts the welcome frame again and announces the arrival again
  (a second ``presence`` join to the members already there). Clients must tolerate both, as on AWS.
* The option itself: parsed and validated (``wschat serve --chaos`` refuses a bad spec with a usage
  error), and draws are reproducible with a seed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from serverless_app.definitions import CONNECTIONS_TABLE, WELCOME_FUNCTION
from serverless_app.local.chaos import Chaos
from tests.support.chat_client import ChatClient, run_clients
from tests.support.stacks import run_stack
from tests.support.tables import connection_ids, member_ids
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.timeout(180)


def age_records(ddb: Any, connection_ids: set[str], *, seconds: int = 300) -> None:
    """Make connection records look ``seconds`` old (``connected_at``), as a missed $disconnect's are."""
    old = str(int((time.time() - seconds) * 1000))
    for connection_id in connection_ids:
        ddb.update_item(
            TableName=CONNECTIONS_TABLE.name,
            Key={"connection_id": {"S": connection_id}},
            UpdateExpression="SET connected_at = :old",
            ExpressionAttributeValues={":old": {"N": old}},
        )


def test_dropped_disconnects_leave_records_that_the_next_fanout_prunes(dynamodb_local: Any, ddb: Any) -> None:
    room = f"chaos-{uuid.uuid4().hex[:8]}"
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url, chaos="disconnect-drop=1.0", chaos_seed=7
    ) as stack:

        async def scenario() -> None:
            leavers = [await ChatClient.open(stack.ws_url, rooms=room, user_id=f"gone{i}") for i in range(3)]
            dead = {await client.connection_id() for client in leavers}
            for client in leavers:
                await client.close()
            await eventually_async(
                lambda: stack.stats()["chaos"]["disconnects_dropped"] == 3,
                timeout_s=20,
                what="three $disconnect invocations dropped",
            )
            await asyncio.sleep(1.0)  # a $disconnect that did run would have deleted its record by now
            assert dead <= connection_ids(ddb), "records of closed connections are left behind"
            assert dead <= member_ids(ddb, room)
            assert stack.stats()["lambda"]["websocket-disconnect"]["invocations"] == 0

            # The chat leaves a 410 for a connection younger than 30 s alone (API Gateway also answers
            # 410 while $connect runs): age the left-behind records instead of waiting half a minute.
            await asyncio.to_thread(age_records, ddb, dead)
            sender = await ChatClient.open(stack.ws_url, rooms=room, user_id="sender")
            await sender.connection_id()
            await sender.send(action="sendMessage", room=room, message="anyone there?", client_msg_id="m1")
            await sender.wait_for(lambda f: f.get("action") == "ack", timeout_s=30)
            await sender.wait_for(lambda f: f.get("action") == "message", timeout_s=30)
            await eventually_async(
                lambda: not dead & connection_ids(ddb),
                timeout_s=30,
                what="the dead connections' records pruned after 410",
            )
            await eventually_async(
                lambda: not dead & member_ids(ddb, room), timeout_s=30, what="memberships pruned"
            )
            assert stack.stats()["connections_api"]["posts"]["410"] >= 3

        run_clients(scenario)


def test_duplicated_async_events_are_visible(dynamodb_local: Any, ddb: Any) -> None:
    room = f"chaos-{uuid.uuid4().hex[:8]}"
    with run_stack(dynamodb_endpoint=dynamodb_local.endpoint_url, chaos="async-retry=1") as stack:

        async def scenario() -> None:
            first = await ChatClient.open(stack.ws_url, rooms=room, user_id="alice")
            await first.eventually_count("welcome", 2, timeout_s=30)
            second = await ChatClient.open(stack.ws_url, rooms=room, user_id="bob")
            await second.eventually_count("welcome", 2, timeout_s=30)

            def bob_joined() -> int:
                frames = first.of("presence")
                return sum(1 for f in frames if f.get("user_id") == "bob" and f.get("event") == "join")

            await eventually_async(
                lambda: bob_joined() >= 2, timeout_s=30, what="bob's arrival announced twice"
            )
            await asyncio.sleep(1.0)  # no third copy
            assert len(first.of("welcome")) == 2 and len(second.of("welcome")) == 2
            assert bob_joined() == 2
            assert first.of("welcome")[0] == first.of("welcome")[1]  # the same event, delivered again
            welcome = stack.stats()["lambda"][WELCOME_FUNCTION.name]
            assert welcome["invocations"] == 4 and welcome["errors"] == 0
            assert stack.stats()["chaos"]["async_redelivered"] == 2

            mark = len(second.frames)  # the chat itself is unaffected: a message arrives once
            await first.send(action="sendMessage", room=room, message="hi", client_msg_id="m1")
            await second.wait_for(lambda f: f.get("action") == "message", timeout_s=30, start=mark)
            await asyncio.sleep(0.5)
            assert len([f for f in second.frames[mark:] if f.get("action") == "message"]) == 1

        run_clients(scenario)


def test_chaos_spec_parsing_and_seeded_draws() -> None:
    chaos = Chaos.parse("disconnect-drop=0.25, async-retry=2", seed=3)
    assert (chaos.disconnect_drop, chaos.async_retry, chaos.seed) == (0.25, 2, 3)
    assert Chaos.parse("").active is False
    draws = [Chaos.parse("disconnect-drop=0.5", seed=11).drop_disconnect() for _ in range(2)]
    assert draws[0] == draws[1]
    again = Chaos.parse("disconnect-drop=0.5", seed=11)
    sequence = [again.drop_disconnect() for _ in range(50)]
    replay = Chaos.parse("disconnect-drop=0.5", seed=11)
    assert [replay.drop_disconnect() for _ in range(50)] == sequence and 5 < sum(sequence) < 45
    for bad, message in [
        ("disconnect-drop=2", "probability from 0 to 1"),
        ("disconnect-drop=x", "must be a number from 0 to 1"),
        ("async-retry=1.5", "must be a whole number"),
        ("async-retry=-1", "whole number from 0 to 10"),
        ("latency=5", "unknown fault 'latency'"),
        ("async-retry", "expected NAME=VALUE"),
        ("async-retry=1,async-retry=2", "given twice"),
    ]:
        with pytest.raises(ValueError, match=message):
            Chaos.parse(bad)


def test_serve_refuses_a_bad_chaos_spec_and_passes_a_good_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from serverless_app.local import serve as serve_module

    seen: list[Any] = []

    def fake_run(coroutine: Any) -> None:  # what serve would run: record its options instead
        seen.append(coroutine.cr_frame.f_locals["options"].get("chaos"))
        coroutine.close()

    monkeypatch.setattr(serve_module.asyncio, "run", fake_run)
    runner = CliRunner()
    result = runner.invoke(serve_module.serve, ["--auth", "none", "--chaos", "disconnect-drop=1.5"])
    assert result.exit_code == 2 and "Invalid value for '--chaos'" in result.output
    assert "disconnect-drop must be a probability from 0 to 1" in result.output
    result = runner.invoke(
        serve_module.serve,
        ["--auth", "none", "--chaos", "disconnect-drop=0.1,async-retry=1", "--chaos-seed", "42"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(serve_module.serve, ["--auth", "none"])
    assert result.exit_code == 0, result.output
    assert seen == [Chaos(disconnect_drop=0.1, async_retry=1, seed=42), None]
