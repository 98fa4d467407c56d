"""Fault: 30% of a 300-member room lose their TCP connections, without a close frame, mid-burst.

Phones lose signal and laptops sleep: their sockets vanish without a WebSocket close. The gateway
must notice, ``$disconnect`` must clean their records up, and the 70% still connected must get
every message of the burst exactly once, with no handler failing on the way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.support.chat_client import ChatClient, answer_to, connect_many, run_clients, settle
from tests.support.stacks import lambda_failures
from tests.support.tables import connection_ids, member_ids
from tests.support.waiting import eventually_async

ROOM = "fault-drop"
MEMBERS = 300
DROPPED = 90  # 30%
SENDERS = 5
PER_SENDER = 8  # half before the drop, half after; closed loop (next send after the ack)


@pytest.mark.timeout(240)
def test_a_third_of_the_room_vanishing_mid_burst_loses_nothing_for_the_rest(
    local_stack: Any, ddb: Any
) -> None:
    """No handler error; the vanished are pruned; every survivor gets every message exactly once."""
    failures_before = lambda_failures(local_stack.stats())
    expected = {f"s{s}-{k}" for s in range(SENDERS) for k in range(PER_SENDER)}

    async def scenario() -> None:
        clients = await connect_many(local_stack.ws_url, MEMBERS, rooms=ROOM, user_id="crowd")
        ids = await asyncio.gather(*(c.connection_id(timeout_s=60) for c in clients))
        senders, survivors, victims = clients[:SENDERS], clients[: MEMBERS - DROPPED], clients[-DROPPED:]
        victim_ids = set(ids[-DROPPED:])
        survivor_ids = set(ids[: MEMBERS - DROPPED])
        assert member_ids(ddb, ROOM) == set(ids)

        async def send(sender: ChatClient, s: int, ks: range) -> None:
            for k in ks:
                mark = len(sender.frames)
                await sender.send(
                    action="sendMessage", room=ROOM, message=f"burst {s}-{k}", client_msg_id=f"s{s}-{k}"
                )
                answer = await sender.wait_for(
                    answer_to(f"s{s}-{k}"),
                    timeout_s=30,
                    start=mark,
                )
                assert answer["action"] == "ack", answer

        first_half = asyncio.gather(*(send(c, s, range(PER_SENDER // 2)) for s, c in enumerate(senders)))
        await senders[0].wait_for(lambda f: f.get("action") == "ack", timeout_s=30)
        for victim in victims:  # mid-burst: fan-outs are in flight
            victim.abort()
        await first_half
        await asyncio.gather(*(send(c, s, range(PER_SENDER // 2, PER_SENDER)) for s, c in enumerate(senders)))

        def everyone_has_everything() -> bool:
            return all({m.get("client_msg_id") for m in c.of("message")} >= expected for c in survivors)

        await eventually_async(everyone_has_everything, timeout_s=60, what="every survivor has every message")
        await settle(local_stack, *survivors)  # duplicates, if any, have arrived by now
        for client in survivors:
            counts = Counter(m.get("client_msg_id") for m in client.of("message"))
            assert counts == Counter(dict.fromkeys(expected, 1)), "exactly once, nothing else"
            assert client.of("error") == [] and client.gateway_errors() == []
            assert not client.closed

        await eventually_async(
            lambda: not (connection_ids(ddb) & victim_ids) and member_ids(ddb, ROOM) == survivor_ids,
            timeout_s=30,
            what="the vanished connections' records and memberships are pruned",
        )
        assert survivor_ids <= connection_ids(ddb), "no survivor was pruned"
        await asyncio.gather(*(c.close() for c in clients))
        await eventually_async(  # leave the shared stack clean for the next test
            lambda: not (connection_ids(ddb) & set(ids)),
            timeout_s=60,
            what="every record is gone after closing",
        )

    run_clients(scenario)
    assert lambda_failures(local_stack.stats()) == failures_before, "no handler failed or timed out"
