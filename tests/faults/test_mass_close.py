"""Fault: 500 clients close at the same instant (a deploy restarts a fleet of app servers).

``$disconnect`` fires 500 times at once. Ten seconds later no connection record and no room
membership may remain: a stale record costs a wasted post on every fan-out until it is pruned.
(The best existing local peer leaves 30–57% of the records behind here.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support.chat_client import connect_many, run_clients
from tests.support.stacks import lambda_failures
from tests.support.tables import connection_ids, member_ids

ROOM = "fault-mass-close"
CLIENTS = 500
WITHIN_S = 10.0


@pytest.mark.timeout(240)
def test_500_clients_closing_at_once_leave_no_record_10_s_later(local_stack: Any, ddb: Any) -> None:
    """Every record and membership is gone within 10 s of the simultaneous close; no handler failed."""
    failures_before = lambda_failures(local_stack.stats())

    async def scenario() -> None:
        clients = await connect_many(local_stack.ws_url, CLIENTS, rooms=ROOM, user_id="fleet")
        ids = set(await asyncio.gather(*(c.connection_id(timeout_s=90) for c in clients)))
        assert len(ids) == CLIENTS and member_ids(ddb, ROOM) == ids and ids <= connection_ids(ddb)

        await asyncio.gather(*(c.close() for c in clients))  # all at once
        closed_at = time.monotonic()
        while True:  # bounded: WITHIN_S
            left = (connection_ids(ddb) & ids) | member_ids(ddb, ROOM)
            if not left or time.monotonic() - closed_at > WITHIN_S:
                break
            await asyncio.sleep(0.25)
        assert not left, f"{len(left)} of {CLIENTS} records still there {WITHIN_S:.0f} s after the close"

    run_clients(scenario)
    assert lambda_failures(local_stack.stats()) == failures_before, "no handler failed or timed out"
