"""Fault: the ``$default`` handler runs too long.

Two ways to be too slow, both answered by API Gateway itself, and neither may cost the client its
connection: slower than the integration timeout (the gateway stops waiting: ``Endpoint request
timed out``), or slower than the function's own timeout (Lambda kills it: ``Internal server
error``). ``$default`` is swapped for :func:`tests.faults.fixtures.handlers.slow_default`, which
sleeps for ``{"action": "slow"}`` and hands every other frame to the real chat handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from serverless_app.definitions import DEFAULT_FUNCTION, FUNCTIONS, LIMITS
from tests.faults.fixtures.handlers import SLOW_SECONDS
from tests.support.chat_client import ChatClient, run_clients
from tests.support.stacks import run_stack

ROOM = "fault-timeout"
SLOW_HANDLER = "tests.faults.fixtures.handlers.slow_default"

CASES: dict[str, tuple[dict[str, Any], str]] = {
    # integration timeout < handler time < function timeout: the gateway stops waiting
    "integration-timeout": (
        dict(limits=dataclasses.replace(LIMITS, integration_timeout_s=2.0)),
        "Endpoint request timed out",
    ),
    # function timeout < handler time < integration timeout: Lambda kills the handler
    "function-timeout": (
        dict(
            functions=tuple(
                dataclasses.replace(f, timeout_s=1) if f.name == DEFAULT_FUNCTION.name else f
                for f in FUNCTIONS
            )
        ),
        "Internal server error",
    ),
}


async def open_past_cold_starts(ws_url: str) -> ChatClient:
    """Connect; a cold ``$connect`` may outlast the case's 2 s integration timeout (504), as a cold
    start can on AWS, so the handshake is retried a few times, as a client would."""
    for attempt in range(5):
        try:
            return await ChatClient.open(ws_url, rooms=ROOM, user_id="patient")
        except InvalidStatus as refused:
            if refused.response.status_code != 504 or attempt == 4:
                raise
    raise AssertionError("unreachable")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES)
def test_a_handler_too_slow_gets_api_gateways_error_frame_and_the_connection_survives(
    case: str, dynamodb_local: Any
) -> None:
    """One error frame naming the connection; the next frames are served on the same connection."""
    options, expected_message = CASES[case]
    with run_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        handler_overrides={DEFAULT_FUNCTION.name: SLOW_HANDLER},
        **options,
    ) as stack:

        async def scenario() -> None:
            client = await open_past_cold_starts(stack.ws_url)
            connection_id = await client.connection_id()
            # Warm a few workers first, so that no cold start later counts against the short timeouts.
            for _ in range(3):
                await client.send(action="getPresence", room=ROOM)
            await client.eventually_count("presenceList", 3, timeout_s=60)

            mark = len(client.frames)
            await client.send(action="slow")
            error = await client.wait_for(
                lambda f: "connectionId" in f, timeout_s=SLOW_SECONDS + 10, start=mark
            )
            assert error["message"] == expected_message
            assert error["connectionId"] == connection_id and error["requestId"]

            # The same connection is served on, while (or after) the slow invocation ends.
            resumed = len(client.frames)
            await client.send(action="sendMessage", room=ROOM, message="still here?", client_msg_id="after")
            ack = await client.wait_for(lambda f: f.get("action") == "ack", timeout_s=30, start=resumed)
            assert ack["client_msg_id"] == "after"
            await client.wait_for(lambda f: f.get("client_msg_id") == "after", timeout_s=10, start=resumed)

            await asyncio.sleep(SLOW_SECONDS + 0.5)  # the slow invocation has ended: nothing more arrives
            later = client.frames[mark:]
            assert [f for f in later if "connectionId" in f] == [error], "one error frame, for the slow frame"
            assert [f for f in later if f.get("action") == "error"] == []
            assert not client.closed
            await client.close()

        run_clients(scenario)
